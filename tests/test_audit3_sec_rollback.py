"""Round 3 (security): a signed audit log cut back or rolled back.

With ``CFGCORE_AUDIT_KEY`` every entry was signed but the ``.head`` record (the last
entry written) was not: someone who can write the state directory but holds no key cut
the log at an entry boundary, wrote a head naming the new last entry (its seq and hash
are in the log) and ``cfgcore audit verify`` said ok; another log signed with the same
key put in place (files and head) passed too. The head is now signed with the log's
name. A whole log and head replaced by an older copy cannot be seen in the state
directory: ``verify --checkpoint FILE`` (a file kept elsewhere) records the last entry
verified and fails a later verify of a log that no longer holds it.

Real audit logs written by AuditLog, the real verifier and CLI.
"""

from __future__ import annotations

import json
import shutil

import pytest

from cfgcore.cli import main
from cfgcore.runtime.audit import GENESIS, HEAD_SUFFIX, AuditLog, entry_hash, verify
from cfgcore.runtime.events import ConfigChangeEvent
from cfgcore.runtime.secrets import generate_key


def _event(i: int) -> ConfigChangeEvent:
    return ConfigChangeEvent(f"a.k{i}", i, i + 1, "update_config", i, 1.7e9 + i, actor=f"u{i}")


@pytest.fixture
def key(monkeypatch):
    k = generate_key("audit1")
    monkeypatch.setenv("CFGCORE_AUDIT_KEY", k)
    monkeypatch.delenv("CFGCORE_AUDIT_KEY_FILE", raising=False)
    monkeypatch.delenv("CFGCORE_AUDIT_CHECKPOINT", raising=False)
    return k


@pytest.fixture
def unkeyed(monkeypatch):
    for var in ("CFGCORE_AUDIT_KEY", "CFGCORE_AUDIT_KEY_FILE", "CFGCORE_AUDIT_CHECKPOINT"):
        monkeypatch.delenv(var, raising=False)


def _write(path, n: int, start: int = 0) -> AuditLog:
    log = AuditLog(path)
    for i in range(start, start + n):
        log.record(_event(i))
    return log


def _lines(path) -> list[str]:
    return path.read_text().splitlines(keepends=True)


def _head(path):
    return path.parent / (path.name + HEAD_SUFFIX)


def test_a_signed_log_cut_at_an_entry_boundary_with_a_matching_head_fails(tmp_path, key):
    path = tmp_path / "state" / "audit.jsonl"
    _write(path, 6)
    lines = _lines(path)
    path.write_text("".join(lines[:3]))  # the last three entries removed
    last = json.loads(lines[2])
    _head(path).write_text(json.dumps({"seq": last["seq"], "hash": last["hash"]}) + "\n")
    result = verify(path)
    assert not result.ok and "not signed with the audit key" in str(result)
    # A head that claims a signature it does not have fails as well.
    forged = {"seq": last["seq"], "hash": last["hash"], "ts": "2026-01-01T00:00:00+00:00",
              "log": "audit.jsonl", "alg": "hmac-sha256", "kid": "audit1",
              "mac": "0" * 64}  # fmt: skip
    _head(path).write_text(json.dumps(forged) + "\n")
    result = verify(path)
    assert not result.ok and "signature does not match" in str(result)


def test_another_signed_log_put_in_place_fails(tmp_path, key):
    config = tmp_path / "state" / "audit.jsonl"
    flags = tmp_path / "state" / "flags.audit.jsonl"
    _write(config, 3)
    _write(flags, 3)
    assert verify(config).ok and verify(flags).ok
    shutil.copyfile(flags, config)  # the flag log's (valid, signed) entries and head
    shutil.copyfile(_head(flags), _head(config))
    result = verify(config)
    assert not result.ok and "record of another log ('flags.audit.jsonl')" in str(result)


def test_an_unsigned_head_after_signed_entries_is_not_continued_silently(tmp_path, key):
    # No cfgcore release wrote an unsigned head after signed entries (heads and entry
    # signing came together): such a head is what a cut of the log's end plus a forged
    # head looks like. The next writer must not sign over it as if nothing happened
    # (round 5; this test used to expect exactly that).
    path = tmp_path / "audit.jsonl"
    _write(path, 2)
    entries = [json.loads(line) for line in _lines(path)]
    _head(path).write_text(json.dumps({"seq": 2, "hash": entries[-1]["hash"]}) + "\n")
    assert not verify(path).ok  # unsigned: refused (a downgrade would look the same)
    _write(path, 1, start=2)
    result = verify(path)
    assert not result.ok
    assert "a writer found this log tampered with" in str(result)
    assert "not signed" in str(result)


def test_a_checkpoint_catches_a_rollback_to_an_older_copy(tmp_path, key):
    path = tmp_path / "state" / "audit.jsonl"
    checkpoint = tmp_path / "verifier" / "audit.checkpoint"
    checkpoint.parent.mkdir()
    _write(path, 3)
    old_log, old_head = path.read_bytes(), _head(path).read_bytes()  # the attacker's copy
    _write(path, 3, start=3)
    assert verify(path, checkpoint=checkpoint).ok  # records seq 6
    assert json.loads(checkpoint.read_text())["seq"] == 6
    path.write_bytes(old_log)  # rolled back: log and head of an earlier moment
    _head(path).write_bytes(old_head)
    assert verify(path).ok  # the files alone cannot show it (documented) ...
    result = verify(path, checkpoint=checkpoint)  # ... the checkpoint does
    assert not result.ok
    assert "rolled back: the log ends at seq 3, but seq 6 was verified at" in str(result)
    assert json.loads(checkpoint.read_text())["seq"] == 6  # not moved back


def test_a_checkpoint_catches_an_unkeyed_log_rewritten_with_the_same_length(tmp_path, unkeyed):
    path = tmp_path / "state" / "audit.jsonl"
    checkpoint = tmp_path / "verifier.checkpoint"
    _write(path, 4)
    assert verify(path, checkpoint=checkpoint).ok
    # Without a key anyone may recompute the chain: edit entry 2, rewrite 2..4 and head.
    entries = [json.loads(line) for line in _lines(path)]
    entries[1]["actor"] = "someone-else"
    prev = GENESIS
    for e in entries:
        e["prev"] = prev
        e["hash"] = entry_hash(e)
        prev = e["hash"]
    path.write_text("".join(json.dumps(e) + "\n" for e in entries))
    _head(path).write_text(json.dumps({"seq": 4, "hash": prev}) + "\n")
    assert verify(path).ok  # a chain without a key is no signature (documented)
    result = verify(path, checkpoint=checkpoint)
    assert not result.ok and "replaced: entry seq 4 is not the one verified" in str(result)


def test_a_signed_checkpoint_cannot_be_edited_or_stripped(tmp_path, key):
    path = tmp_path / "state" / "audit.jsonl"
    checkpoint = tmp_path / "audit.checkpoint"
    _write(path, 3)
    assert verify(path, checkpoint=checkpoint).ok
    record = json.loads(checkpoint.read_text())
    assert record["kid"] == "audit1" and record["log"] == "audit.jsonl"
    edited = {**record, "seq": 1}  # moved back, to allow a rollback later
    checkpoint.write_text(json.dumps(edited) + "\n")
    assert "the checkpoint was edited" in str(verify(path, checkpoint=checkpoint))
    stripped = {k: record[k] for k in ("seq", "hash", "log")}
    checkpoint.write_text(json.dumps(stripped) + "\n")
    assert "the checkpoint is not signed" in str(verify(path, checkpoint=checkpoint))


def test_a_checkpoint_beside_the_log_is_refused(tmp_path, unkeyed):
    path = tmp_path / "audit.jsonl"
    _write(path, 1)
    result = verify(path, checkpoint=tmp_path / "audit.checkpoint")
    assert not result.ok and "rolled back with it" in str(result)


def test_retention_dropping_the_checkpointed_entry_is_not_a_rollback(tmp_path, key):
    path = tmp_path / "state" / "audit.jsonl"
    checkpoint = tmp_path / "audit.checkpoint"
    log = AuditLog(path, max_bytes=900, backups=1)
    log.record(_event(0))
    assert verify(path, checkpoint=checkpoint).ok
    for i in range(1, 12):  # several rotations: seq 1's file is dropped
        log.record(_event(i))
    first = json.loads(_lines(tmp_path / "state" / "audit.jsonl.1")[0])
    assert first["seq"] > 1
    result = verify(path, checkpoint=checkpoint)
    assert result.ok, result


def test_cli_verify_uses_the_checkpoint(tmp_path, key, capsys, monkeypatch):
    path = tmp_path / "state" / "audit.jsonl"
    checkpoint = tmp_path / "audit.checkpoint"
    _write(path, 2)
    old_log, old_head = path.read_bytes(), _head(path).read_bytes()
    _write(path, 1, start=2)
    assert main(["audit", "verify", str(path), "--checkpoint", str(checkpoint)]) == 0
    path.write_bytes(old_log)
    _head(path).write_bytes(old_head)
    monkeypatch.setenv("CFGCORE_AUDIT_CHECKPOINT", str(checkpoint))
    capsys.readouterr()
    assert main(["audit", "verify", str(path)]) == 1
    assert "rolled back" in capsys.readouterr().out


@pytest.mark.parametrize("signed", [True, False])
def test_a_cut_is_not_hidden_by_the_next_append(tmp_path, monkeypatch, signed):
    for var in ("CFGCORE_AUDIT_KEY", "CFGCORE_AUDIT_KEY_FILE"):
        monkeypatch.delenv(var, raising=False)
    if signed:
        monkeypatch.setenv("CFGCORE_AUDIT_KEY", generate_key("audit1"))
    path = tmp_path / "audit.jsonl"
    writer = _write(path, 6)
    path.write_text("".join(_lines(path)[:3]))  # entries 4..6 removed, head left alone
    assert "entries seq 4..6 are missing: removed from the end" in str(verify(path))
    writer.record(_event(6))  # the service's next change (the same writer) ...
    _write(path, 1, start=7)  # ... and another process's
    result = verify(path)  # the cut is still reported, not covered by the new head
    assert not result.ok
    assert "entry seq 4: a writer found this log tampered with" in str(result)
    assert "ended at seq 3, but its .head record says seq 6" in str(result)
    entries = AuditLog.read(path)
    assert [e["seq"] for e in entries] == [1, 2, 3, 4, 5, 6]  # the chain itself is whole
    assert entries[3]["kind"] == "tamper" and entries[4]["path"] == "a.k6"


def test_a_removed_log_is_recorded_by_the_next_append(tmp_path, key):
    path = tmp_path / "audit.jsonl"
    _write(path, 3)
    path.unlink()  # the log gone, its head left
    _write(path, 1, start=3)
    result = verify(path)
    assert not result.ok and "ended at seq 0, but its .head record says seq 3" in str(result)


def test_writers_taking_turns_and_rotating_record_no_tampering(tmp_path, key):
    path = tmp_path / "audit.jsonl"
    a = AuditLog(path, max_bytes=1500, backups=3)
    b = AuditLog(path, max_bytes=1500, backups=3)
    for i in range(12):
        (a if i % 3 else b).record(_event(i))
    result = verify(path)
    assert result.ok and result.tail, result
    everything = [e for f in reversed(sorted(tmp_path.glob("audit.jsonl.*"))) for e in
                  AuditLog.read(f) if f.suffix != ".head" and f.suffix != ".lock"]  # fmt: skip
    assert all(e["kind"] != "tamper" for e in everything + AuditLog.read(path))
