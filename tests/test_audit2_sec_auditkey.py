"""Second security round: a keyed audit chain (``CFGCORE_AUDIT_KEY``).

The SHA-256 chain only shows edits by someone who does not recompute the later hashes:
anyone with write access to the state directory could edit an entry, recompute the
chain and the head file, and ``cfgcore audit verify`` said ok. With an audit key (kept
outside that directory) each link is an HMAC, so a rewrite without the key, a
downgrade to plain hashes, or entries signed with another key all fail verification.
"""

from __future__ import annotations

import json
import os

import pytest

from cfgcore.cli import main
from cfgcore.errors import ConfigError
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
    return k


@pytest.fixture
def signed(tmp_path, key):
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path)
    for i in range(4):
        log.record(_event(i))
    return path


def _rewrite(path, edit, *, strip_signature: bool = False) -> None:
    """What an attacker with the files but not the key does: edit an entry, recompute
    every later link and the head record."""
    entries = [json.loads(line) for line in path.read_text().splitlines()]
    edit(entries)
    prev, seq = GENESIS, 0
    for e in entries:
        if strip_signature:
            e.pop("alg", None)
            e.pop("kid", None)
        e["seq"], e["prev"] = seq + 1, prev
        e["hash"] = entry_hash(e)
        prev, seq = e["hash"], e["seq"]
    path.write_text("".join(json.dumps(e) + "\n" for e in entries))
    (tmp_path_head := path.parent / (path.name + HEAD_SUFFIX)).write_text(
        json.dumps({"seq": seq, "hash": prev}) + "\n"
    )
    assert tmp_path_head.exists()


def _verify_cli(capsys, path) -> tuple[int, str]:
    code = main(["audit", "verify", str(path)])
    return code, capsys.readouterr().out


def test_a_signed_log_verifies(signed, capsys):
    result = verify(signed)
    assert result.ok and result.tail and result.entries == 4, result
    entries = AuditLog.read(signed)
    assert {e["alg"] for e in entries} == {"hmac-sha256"} and {e["kid"] for e in entries} == {
        "audit1"
    }
    assert _verify_cli(capsys, signed)[0] == 0


def test_an_entry_rewritten_with_recomputed_hashes_is_caught(signed, capsys):
    def edit(entries):
        entries[1]["actor"] = "someone-else"

    _rewrite(signed, edit)
    code, out = _verify_cli(capsys, signed)
    assert code == 1
    assert f"{signed}:1: " in out and "edited" in out


def test_a_downgrade_to_plain_hashes_is_caught(signed, capsys):
    _rewrite(signed, lambda entries: entries.pop(2), strip_signature=True)
    code, out = _verify_cli(capsys, signed)
    assert code == 1
    assert "not signed with the audit key" in out and f"{signed}:1: " in out


def test_a_signed_log_checked_without_the_key_says_so(signed, monkeypatch, capsys):
    monkeypatch.delenv("CFGCORE_AUDIT_KEY")
    code, out = _verify_cli(capsys, signed)
    assert code == 1
    assert "CFGCORE_AUDIT_KEY" in out and "audit1" in out


def test_a_wrong_key_fails_and_a_ring_with_the_old_key_verifies(signed, key, monkeypatch,
                                                                capsys):  # fmt: skip
    other = generate_key("audit2")
    monkeypatch.setenv("CFGCORE_AUDIT_KEY", other)
    code, out = _verify_cli(capsys, signed)
    assert code == 1 and "audit1" in out
    monkeypatch.setenv("CFGCORE_AUDIT_KEY", f"{other},{key}")
    assert _verify_cli(capsys, signed) == (0, "ok: 4 entries in 1 file(s), chain intact\n")


def test_audit_key_rotation(tmp_path, monkeypatch, capsys):
    old, new = generate_key("a-old"), generate_key("a-new")
    monkeypatch.setenv("CFGCORE_AUDIT_KEY", old)
    path = tmp_path / "audit.jsonl"
    AuditLog(path).record(_event(1))
    monkeypatch.setenv("CFGCORE_AUDIT_KEY", f"{new},{old}")
    AuditLog(path).record(_event(2))
    assert [e["kid"] for e in AuditLog.read(path)] == ["a-old", "a-new"]
    assert _verify_cli(capsys, path)[0] == 0
    monkeypatch.setenv("CFGCORE_AUDIT_KEY", new)
    code, out = _verify_cli(capsys, path)
    assert code == 1 and "a-old" in out


def test_a_removed_head_record_of_a_signed_log_is_reported(signed, capsys):
    lines = signed.read_text().splitlines(keepends=True)
    signed.write_text("".join(lines[:-1]))  # the last entry removed, and its head record
    os.unlink(f"{signed}{HEAD_SUFFIX}")
    code, out = _verify_cli(capsys, signed)
    assert code == 1 and HEAD_SUFFIX in out and "missing" in out


def test_entries_from_before_the_key_fail_a_keyed_verify(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("CFGCORE_AUDIT_KEY", raising=False)
    path = tmp_path / "audit.jsonl"
    AuditLog(path).record(_event(1))
    monkeypatch.setenv("CFGCORE_AUDIT_KEY", generate_key("k"))
    AuditLog(path).record(_event(2))
    code, out = _verify_cli(capsys, path)
    assert code == 1 and "entry seq 1 is not signed with the audit key" in out


def test_a_keyed_log_rotates_and_stays_verifiable(tmp_path, key):
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path, max_bytes=1500, backups=2)
    for i in range(40):
        log.record(_event(i))
    assert os.path.exists(f"{path}.2")
    result = verify(path)
    assert result.ok and result.tail, result
    assert all(e["alg"] == "hmac-sha256" for e in AuditLog.read(path))


def test_a_bad_audit_key_is_an_error_naming_the_variable_not_the_key(tmp_path, monkeypatch,
                                                                    capsys):  # fmt: skip
    monkeypatch.setenv("CFGCORE_AUDIT_KEY", "not-a-key-material-zzzz")
    path = tmp_path / "audit.jsonl"
    with pytest.raises(ConfigError) as err:
        AuditLog(path)  # at startup, not as unsigned entries found later
    assert "CFGCORE_AUDIT_KEY" in str(err.value) and "not-a-key-material" not in str(err.value)
    code = main(["audit", "verify", str(path)])
    out = capsys.readouterr()
    assert code != 0 and "CFGCORE_AUDIT_KEY" in out.err
    assert "not-a-key-material" not in out.err + out.out
