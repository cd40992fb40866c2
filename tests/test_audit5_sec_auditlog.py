"""Round 5 (security): the audit chain across an entry longer than 64 KiB.

The next writer found the last entry from the log's last 64 KiB only. After an entry
longer than that (a large configuration value: anyone allowed one update can make
one) the next process's entries restarted the chain at seq 1, and ``verify`` reported
the intact log as reordered; a cut back to such an entry was not recorded as tampering
either (no last entry to compare the head with). Real logs, real verifier.
"""

from __future__ import annotations

import pytest

from cfgcore.runtime import audit
from cfgcore.runtime.audit import GENESIS, AuditLog, verify
from cfgcore.runtime.events import ConfigChangeEvent
from cfgcore.runtime.secrets import generate_key


@pytest.fixture(params=[False, True], ids=["unkeyed", "signed"])
def signed(request, monkeypatch):
    for var in ("CFGCORE_AUDIT_KEY", "CFGCORE_AUDIT_KEY_FILE", "CFGCORE_AUDIT_CHECKPOINT"):
        monkeypatch.delenv(var, raising=False)
    if request.param:
        monkeypatch.setenv("CFGCORE_AUDIT_KEY", generate_key("audit1"))
    return request.param


def _event(i: int, value: object = None) -> ConfigChangeEvent:
    new = i + 1 if value is None else value
    return ConfigChangeEvent(f"a.k{i}", i, new, "update_config", i, 1.7e9 + i, actor=f"u{i}")


def test_the_next_writer_continues_the_chain_after_a_large_entry(tmp_path, signed):
    path = tmp_path / "audit.jsonl"
    first = AuditLog(path)
    first.record(_event(0))
    first.record(_event(1, {"catalog": ["t" * 100 for _ in range(3000)]}))  # ~300 KiB
    AuditLog(path).record(_event(2))  # another process's writer: it reads the chain back
    result = verify(path)
    assert result.ok, result
    assert [e["seq"] for e in AuditLog.read(path)] == [1, 2, 3]


def test_a_cut_back_to_a_large_entry_is_recorded_by_the_next_writer(tmp_path, signed):
    path = tmp_path / "audit.jsonl"
    first = AuditLog(path)
    first.record(_event(0, "v" * 200_000))
    for i in range(1, 4):
        first.record(_event(i))
    lines = path.read_bytes().split(b"\n")
    path.write_bytes(b"\n".join(lines[:1]) + b"\n")  # entries 2..4 removed, head left
    AuditLog(path).record(_event(9))
    result = verify(path)
    assert not result.ok
    assert "a writer found this log tampered with" in str(result)
    assert "ended at seq 1, but its .head record says seq 4" in str(result)
    assert [e["seq"] for e in AuditLog.read(path)] == [1, 2, 3]  # the chain itself whole


def test_reading_back_is_bounded_by_a_huge_line_and_by_lines_that_are_no_entry(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(audit, "_MAX_LINE", 1 << 20)
    path = tmp_path / "audit.jsonl"
    AuditLog(path, keys=()).record(_event(0))
    with open(path, "ab") as fh:  # one line of 3 MiB planted after it
        fh.write(b"x" * (3 << 20))
    assert audit._last_link(str(path)) == (GENESIS, 0)  # not read back past 1 MiB
    path.write_bytes(path.read_bytes()[: -(3 << 20)] + b"no entry\n" * 5000)
    assert audit._last_link(str(path)) == (GENESIS, 0)  # gave up after _MAX_TRIED lines
    path.write_bytes(path.read_bytes()[: -9 * 4000])
    assert audit._last_link(str(path))[1] == 1  # 1,000 lines back: still found


def test_a_directory_planted_at_the_heads_temporary_name_does_not_freeze_the_head(tmp_path, signed):
    # One directory in the state directory: the head's temporary name was fixed, and
    # unlink cannot remove a directory, so every head write failed from then on and
    # entries appended after it could be cut from the end with verify saying ok.
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path)
    for i in range(3):
        log.record(_event(i))
    (tmp_path / "audit.jsonl.head.tmp").mkdir()
    for i in range(3, 6):
        log.record(_event(i))
    assert verify(path).tail  # the head records the last entry written
    lines = path.read_bytes().split(b"\n")
    path.write_bytes(b"\n".join(lines[:3]) + b"\n")  # entries 4..6 cut from the end
    result = verify(path)
    assert not result.ok and "entries seq 4..6 are missing: removed from the end" in str(result)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp") and p.is_file()]
