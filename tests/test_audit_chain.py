"""The tamper-evident, bounded audit log and ``cfgcore audit verify`` (issue 14)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from cfgcore.cli import main
from cfgcore.runtime.audit import GENESIS, AuditLog, entry_hash, log_files, verify
from cfgcore.runtime.events import ConfigChangeEvent

SRC = os.path.dirname(os.path.dirname(os.path.abspath(__import__("cfgcore").__file__)))


def _event(i: int) -> ConfigChangeEvent:
    return ConfigChangeEvent(f"a.k{i}", i, i + 1, "update_config", i, 1.7e9 + i, actor=f"u{i}")


@pytest.fixture
def rotated(tmp_path):
    """A log written across several rotations (small files, 3 kept)."""
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path, max_bytes=2000, backups=3)
    i = 0
    # Until 3 old files exist (one more was rotated away) and the live file has 5 lines.
    while not (os.path.exists(f"{path}.3") and log.entries()[-1]["seq"] > 20 and
               len(path.read_bytes().splitlines()) >= 5):  # fmt: skip
        log.record(_event(i))
        i += 1
        assert i < 200
    return path


def test_chain_runs_across_rotated_files_and_retention_holds(rotated):
    files = log_files(rotated)
    assert [os.path.basename(f) for f in files] == [
        "audit.jsonl.3", "audit.jsonl.2", "audit.jsonl.1", "audit.jsonl"
    ]  # fmt: skip
    assert not os.path.exists(f"{rotated}.4")
    assert all(os.path.getsize(f) <= 2000 for f in files)
    result = verify(rotated)
    assert result.ok, result
    entries = [e for f in files for e in AuditLog.read(f)]
    assert result.entries == len(entries)
    assert [e["seq"] for e in entries] == list(range(entries[0]["seq"], entries[-1]["seq"] + 1))
    for older, newer in zip(files, files[1:], strict=False):
        first = AuditLog.read(newer)[0]
        assert first["kind"] == "rotation"
        assert first["prev"] == AuditLog.read(older)[-1]["hash"]  # starts with the last hash
    assert entries[-1]["actor"].startswith("u") and entries[-1]["hash"] == entry_hash(entries[-1])


def _lines(path):
    with open(path, "rb") as fh:
        return fh.read().split(b"\n")[:-1]


def _write(path, lines, *, newline=True):
    with open(path, "wb") as fh:
        fh.write(b"\n".join(lines) + (b"\n" if newline else b""))


def _edit(lines, i):
    entry = json.loads(lines[i])
    entry["actor"] = "someone-else"
    lines[i] = json.dumps(entry).encode()


@pytest.mark.parametrize("which", ["audit.jsonl", "audit.jsonl.2"])
@pytest.mark.parametrize(
    ("tamper", "expected"),
    [
        ("edit", "was edited"),
        ("delete", "missing: removed"),
        ("reorder", "out of order"),
        ("truncate", "cut short"),
    ],
)
def test_verify_reports_the_first_tampered_entry(rotated, capsys, which, tamper, expected):
    target = rotated.parent / which
    lines = _lines(target)
    assert len(lines) >= 4
    newline = True
    if tamper == "edit":
        _edit(lines, 2)
        line = 3
    elif tamper == "delete":
        del lines[2]
        line = 3
    elif tamper == "reorder":
        lines[1], lines[2] = lines[2], lines[1]
        line = 2
    else:
        lines[-1] = lines[-1][: len(lines[-1]) // 2]
        newline, line = False, len(lines)
    _write(target, lines, newline=newline)
    result = verify(rotated)
    assert not result.ok
    assert (os.path.basename(result.file), result.line) == (which, line), result
    assert expected in result.problem
    assert main(["audit", "verify", str(rotated)]) == 1
    out = capsys.readouterr().out
    assert f"{which}:{line}:" in out and expected in out


def test_removing_a_whole_rotated_file_or_the_last_entry_of_one_is_caught(rotated):
    lines = _lines(f"{rotated}.1")
    _write(f"{rotated}.1", lines[:-1])
    result = verify(rotated)
    assert not result.ok and result.file == str(rotated) and result.line == 1
    _write(f"{rotated}.1", lines)
    assert verify(rotated).ok
    os.rename(f"{rotated}.2", f"{rotated}.2.bak")  # .3 is still there: a hole, not retention
    assert not verify(rotated).ok  # (tests/test_hardening_audit_removal.py has the rest)
    os.rename(f"{rotated}.2.bak", f"{rotated}.2")
    os.unlink(f"{rotated}.1")
    os.rename(f"{rotated}.2", f"{rotated}.1")  # ... but a hole in the middle is not
    assert not verify(rotated).ok


def test_an_edit_with_a_recomputed_hash_still_breaks_the_next_link(rotated):
    lines = _lines(rotated)
    entry = json.loads(lines[1])
    entry["new"] = 999
    entry["hash"] = entry_hash(entry)
    lines[1] = json.dumps(entry).encode()
    _write(rotated, lines)
    result = verify(rotated)
    assert not result.ok and result.line == 3 and "does not follow" in result.problem


def test_in_memory_log_chains_too():
    log = AuditLog(None)
    a, b = log.record(_event(1)), log.record(_event(2))
    assert a["prev"] == GENESIS and b["prev"] == a["hash"] and b["seq"] == a["seq"] + 1


def test_concurrent_processes_keep_one_chain_through_rotation(tmp_path):
    path = tmp_path / "audit.jsonl"
    script = textwrap.dedent(
        f"""
        import sys
        from cfgcore.runtime.audit import AuditLog
        from cfgcore.runtime.events import ConfigChangeEvent
        log = AuditLog({str(path)!r}, max_bytes=4000, backups=50)
        for i in range(60):
            log.record(ConfigChangeEvent("k", 0, i, "p" + sys.argv[1], i, 1.7e9))
        """
    )
    env = {**os.environ, "PYTHONPATH": SRC}
    procs = [subprocess.Popen([sys.executable, "-c", script, str(n)], env=env) for n in range(3)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0]
    result = verify(path)
    assert result.ok, result
    entries = [e for f in log_files(path) for e in AuditLog.read(f) if e["kind"] != "rotation"]
    assert len(entries) == 180
    assert sorted(e["source"] for e in entries) == sorted(
        f"p{n}" for n in range(3) for _ in range(60)
    )
    assert len(log_files(path)) > 2


def test_an_unwritable_audit_log_is_one_error_line_without_a_traceback(tmp_path, caplog):
    # CFGCORE_AUDIT_LOG=/tmp (a directory) or a read-only path: the CLI's one-line error
    # rule holds for the audit log's own complaint; the entries stay chained in memory.
    import logging

    from cfgcore.runtime.audit import AuditLog

    log = AuditLog(tmp_path)  # a directory: opening it for append fails
    caplog.set_level(logging.ERROR, logger="cfgcore")
    entries = log.append_all([{"kind": "load", "source": "t"}, {"kind": "load", "source": "u"}])
    assert [e["seq"] for e in entries] == [1, 2]
    records = [r for r in caplog.records if "cannot append to audit log" in r.getMessage()]
    assert len(records) == 1 and records[0].exc_info is None
    assert str(tmp_path) in records[0].getMessage() and "2 entries" in records[0].getMessage()
