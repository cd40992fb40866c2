"""Round 5 (security, follow-up): a writer with the audit key refuses a ``.head`` record
it cannot check.

A writer that found the log other than its head records appends a ``tamper`` entry,
but it checked the head's signature only when the head named the writer's own key: a
head rewritten without the key (unsigned, or signed with a key of the intruder's own)
to match a log cut at an entry boundary was accepted, the writer continued the chain
from the cut and signed a new head over it, and ``verify`` with the key then passed:
the removed entries were gone without a trace. Real logs, real writers, real verifier.
"""

from __future__ import annotations

import json
import logging

import pytest

from cfgcore.runtime import audit
from cfgcore.runtime.audit import AuditLog, verify
from cfgcore.runtime.events import ConfigChangeEvent
from cfgcore.runtime.secrets import generate_key


@pytest.fixture(autouse=True)
def _no_env(monkeypatch):
    for var in ("CFGCORE_AUDIT_KEY", "CFGCORE_AUDIT_KEY_FILE", "CFGCORE_AUDIT_CHECKPOINT"):
        monkeypatch.delenv(var, raising=False)


def _event(i: int) -> ConfigChangeEvent:
    return ConfigChangeEvent(f"a.k{i}", i, i + 1, "update_config", i, 1.7e9 + i, actor="u")


def _keys(*names: str) -> tuple[audit.AuditKey, ...]:
    return audit.audit_keys({"CFGCORE_AUDIT_KEY": ",".join(generate_key(n) for n in names)})


def _cut(path, keep: int, head_key: audit.AuditKey | None) -> None:
    """Cut the log to its first ``keep`` entries and write a head matching the cut,
    unsigned or signed with ``head_key`` (a key the writers do not hold)."""
    lines = path.read_bytes().split(b"\n")[:keep]
    path.write_bytes(b"\n".join(lines) + b"\n")
    last = json.loads(lines[-1])
    record = audit._head_record(str(path), last["seq"], last["hash"], head_key)
    (path.parent / (path.name + ".head")).write_text(json.dumps(record))


@pytest.mark.parametrize("forger", ["unsigned", "own-key"])
def test_a_cut_hidden_by_a_head_the_writer_cannot_check_is_recorded(tmp_path, caplog, forger):
    keys = _keys("audit1")
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path, keys=keys)
    for i in range(5):
        log.record(_event(i))
    _cut(path, 2, None if forger == "unsigned" else _keys("intruder")[0])
    with caplog.at_level(logging.ERROR, logger="cfgcore.events"):
        AuditLog(path, keys=keys).record(_event(9))  # the next process's writer
    said = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any(str(path) in m and "cannot be ruled out" in m for m in said), said
    result = verify(path, keys)
    assert not result.ok
    assert "a writer found this log tampered with" in str(result)
    assert "head record" in str(result)
    want = "not signed" if forger == "unsigned" else "does not hold"
    assert want in str(result)


def test_a_head_signed_with_a_retired_key_of_the_ring_is_accepted(tmp_path):
    old, new = _keys("old")[0], _keys("new")[0]
    path = tmp_path / "audit.jsonl"
    AuditLog(path, keys=(old,)).record(_event(0))
    AuditLog(path, keys=(new, old)).record(_event(1))  # key rotated: old kept to verify
    assert verify(path, (new, old)).ok


def test_setting_the_key_on_an_unsigned_log_records_no_tamper(tmp_path):
    # The head of an unsigned log is unsigned: nothing was cut (verify with the key
    # still refuses the unsigned entries, as before).
    path = tmp_path / "audit.jsonl"
    AuditLog(path, keys=()).record(_event(0))
    keys = _keys("audit1")
    AuditLog(path, keys=keys).record(_event(1))
    assert [e["kind"] for e in AuditLog.read(path)] == ["change", "change"]  # no tamper entry
    result = verify(path, keys)
    assert not result.ok and "entry seq 1 is not signed" in str(result)
