"""Round 4, files: what someone who can write a shared state or config directory can
plant where cfgcore writes."""

from __future__ import annotations

import logging
import os
import stat

import pytest

from cfgcore.runtime.atomicio import atomic_write
from cfgcore.runtime.audit import AuditLog


def _umask() -> int:
    # Read in a child: os.umask() twice here would change it process-wide for a moment.
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", "import os; print(os.umask(0))"],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(out.stdout)


def test_a_symlink_planted_at_the_target_does_not_lend_its_mode(tmp_path):
    theirs = tmp_path / "theirs"
    theirs.write_bytes(b"planted")
    os.chmod(theirs, 0o666)
    target = tmp_path / "state" / "flags.msgpack"
    target.parent.mkdir()
    target.symlink_to(theirs)
    atomic_write(target, b"ours")
    assert not target.is_symlink() and target.read_bytes() == b"ours"
    assert theirs.read_bytes() == b"planted"  # the link was replaced, not followed
    mode = stat.S_IMODE(target.stat().st_mode)
    assert not mode & stat.S_IWOTH  # was 0666: every user could rewrite our file
    assert mode == 0o644 & ~_umask()


def test_an_existing_regular_file_keeps_its_permission_bits_but_not_set_id_bits(tmp_path):
    target = tmp_path / "development.yaml"
    target.write_bytes(b"a: 1\n")
    os.chmod(target, 0o6640)
    atomic_write(target, b"a: 2\n")
    assert stat.S_IMODE(target.stat().st_mode) == 0o640


@pytest.mark.parametrize(
    ("env", "said"),
    [
        ({"CFGCORE_AUDIT_BACKUPS": "0", "CFGCORE_AUDIT_MAX_BYTES": "300"}, "BACKUPS=0"),
        ({"CFGCORE_AUDIT_BACKUPS": "-3", "CFGCORE_AUDIT_MAX_BYTES": "300"}, "BACKUPS=-3"),
        ({"CFGCORE_AUDIT_MAX_BYTES": "1", "CFGCORE_AUDIT_BACKUPS": "1"}, "MAX_BYTES=1:"),
    ],
)
def test_environment_settings_that_delete_audit_history_are_logged(
    tmp_path, monkeypatch, caplog, env, said
):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    path = tmp_path / "audit.jsonl"
    with caplog.at_level(logging.WARNING, logger="cfgcore"):
        log = AuditLog(path)
    [record] = [r for r in caplog.records if said in r.getMessage()]
    assert str(path) in record.getMessage() and record.levelno == logging.WARNING
    # What it warns of: an early entry is gone after a few more.
    for i in range(3):
        log.append({"kind": "update", "path": f"k{i}", "new": "x" * 100})
    kept = "".join(p.read_text() for p in tmp_path.glob("audit.jsonl*") if p.suffix != ".lock")
    assert '"k0"' not in kept


def test_audit_settings_that_keep_history_or_come_from_the_program_are_not_warned(
    tmp_path, monkeypatch, caplog
):
    monkeypatch.setenv("CFGCORE_AUDIT_MAX_BYTES", str(1024 * 1024))
    monkeypatch.setenv("CFGCORE_AUDIT_BACKUPS", "2")
    with caplog.at_level(logging.WARNING, logger="cfgcore"):
        AuditLog(tmp_path / "a.jsonl")
        AuditLog(tmp_path / "b.jsonl", max_bytes=100, backups=0)  # the program's choice
    assert not [r for r in caplog.records if "CFGCORE_AUDIT" in r.getMessage()]
