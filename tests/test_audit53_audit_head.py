"""The audit log's ``.head`` record when it cannot be written, what ``verify`` says of an
older one, and reading a damaged log with ``AuditLog.read``.

* "cannot record the audit log head" said which file, not why (a full disk, a
  directory in the way, no permission): the OSError's reason was dropped.
* The Python steps of the head write (used without the compiled ``_atomic``) left their
  temporary file behind when the close failed; the compiled steps remove it.
* ``verify`` of a log whose ``.head`` names an earlier entry (entries cut from the end
  and an older head put back, or a head that could not be written) said "no .head
  record", sending the operator to look for a missing file that is there.
* ``AuditLog.read`` of a line that is no JSON (cut short by a crash, edited) raised
  json's message, "line 1 column N" whatever the line, without the file.
"""

from __future__ import annotations

import errno
import logging
import os

import pytest

from cfgcore.cli import main
from cfgcore.runtime import atomicio, audit
from cfgcore.runtime.audit import AuditLog, verify

NATIVE = getattr(atomicio, "NATIVE", False)
PATHS = ["c", "py"] if NATIVE else ["py"]
posix_only = pytest.mark.skipif(os.name == "nt", reason="POSIX renames and modes")


@pytest.fixture(params=PATHS)
def steps(request, monkeypatch):
    """Which steps write the head: "c" (cfgcore._atomic) or "py" (the reference)."""
    if request.param == "py":
        monkeypatch.setattr(atomicio, "_native", None, raising=False)
    return request.param


def _temps(directory) -> list[str]:
    return [n for n in os.listdir(directory) if n.endswith(".tmp")]


@posix_only
def test_the_head_warning_says_why_it_could_not_be_written(tmp_path, steps, caplog):
    path = tmp_path / "audit.jsonl"
    (tmp_path / "audit.jsonl.head").mkdir()
    (tmp_path / "audit.jsonl.head" / "x").write_bytes(b"")
    with caplog.at_level(logging.WARNING, logger="cfgcore.events"):
        entry = AuditLog(path).append({"kind": "update", "path": "a"})
    assert entry["seq"] == 1
    said = [m for r in caplog.records if "audit log head" in (m := r.getMessage())]
    assert said and os.strerror(errno.EISDIR) in said[0], said
    assert str(path) + ".head" in said[0]
    assert not _temps(tmp_path)


@posix_only
def test_a_failed_close_of_the_heads_temp_file_removes_it(tmp_path, monkeypatch, caplog):
    """The Python steps: the close failing (a network file system reports a write's
    error there) leaves no temporary file and keeps the old head, as the C steps do."""
    monkeypatch.setattr(atomicio, "_native", None, raising=False)
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path)
    log.append({"kind": "update", "path": "a"})
    head = (tmp_path / "audit.jsonl.head").read_bytes()
    created: list[int] = []  # the head's temp file (the one file made O_EXCL)
    real_open, real_close = audit._open_regular, os.close

    def open_regular(name: str, flags: int, **kw) -> int:
        fd = real_open(name, flags, **kw)
        if flags & os.O_EXCL:
            created.append(fd)
        return fd

    def close(fd: int) -> None:
        real_close(fd)
        if fd in created:
            created.remove(fd)
            raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(audit, "_open_regular", open_regular)
    monkeypatch.setattr(os, "close", close)
    with caplog.at_level(logging.WARNING, logger="cfgcore.events"):
        entry = log.append({"kind": "update", "path": "b"})
    monkeypatch.undo()
    assert not created  # the head's temp file was made, and its close failed
    assert entry["seq"] == 2 and b'"path":"b"' in path.read_bytes()
    assert not _temps(tmp_path), _temps(tmp_path)
    assert (tmp_path / "audit.jsonl.head").read_bytes() == head  # the old record stays
    assert any(os.strerror(errno.EIO) in r.getMessage() for r in caplog.records)


def _log(tmp_path, n: int = 5):
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path, keys=())
    for i in range(n):
        log.append({"kind": "update", "path": f"k{i}", "new": i})
    return path


def test_verify_names_an_older_head_as_such_not_as_missing(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("CFGCORE_AUDIT_KEY", raising=False)
    monkeypatch.delenv("CFGCORE_AUDIT_KEY_FILE", raising=False)
    path = _log(tmp_path, 3)
    older = (tmp_path / "audit.jsonl.head").read_bytes()
    AuditLog(path, keys=()).append({"kind": "update", "path": "k9"})
    (tmp_path / "audit.jsonl.head").write_bytes(older)  # put back: seq 3 of 4
    result = verify(path, keys=())
    assert result.ok and not result.tail and result.head == 3, result
    assert main(["audit", "verify", str(path)]) == 0
    out = capsys.readouterr().out
    assert "no .head record" not in out and ".head record names an earlier entry, seq 3" in out
    os.unlink(tmp_path / "audit.jsonl.head")
    result = verify(path, keys=())
    assert result.ok and result.head is None and "no .head record" in str(result)


@pytest.mark.parametrize(
    "damage, line, why",
    [
        (lambda raw: raw[:-20], 5, "last line is cut short"),  # a crash mid-write
        (lambda raw: raw[:-20] + b"\n" + b'{"kind":"x"}\n', 5, "not JSON"),  # then appended to
        (lambda raw: raw.replace(b'"path":"k1"', b'"path":k1', 1), 2, "not JSON"),
    ],
    ids=["cut-last", "cut-then-appended", "edited"],
)
def test_read_names_the_file_and_line_of_a_line_that_is_no_json(tmp_path, damage, line, why):
    path = _log(tmp_path)
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(ValueError, match=f"^{path}:{line}: {why}") as caught:
        AuditLog.read(path)
    assert "line 1 column" not in str(caught.value)


@pytest.mark.parametrize("how", ["rename", "copytruncate"])
def test_an_outside_rotation_of_the_audit_log_reads_as_tampering(tmp_path, how):
    """What the README says of logrotate and the audit log: the next writer finds the
    live file behind its ``.head`` record and records it, and verify fails there."""
    path = _log(tmp_path, 3)
    if how == "rename":
        os.rename(path, f"{path}.1")
    else:
        (tmp_path / "audit.jsonl.1").write_bytes(path.read_bytes())
        path.write_bytes(b"")
    AuditLog(path, keys=()).append({"kind": "update", "path": "after"})
    result = verify(path, keys=())
    assert not result.ok and "tampered with" in str(result), result


@posix_only
def test_a_rotation_that_fails_names_the_file_in_the_way(tmp_path, caplog):
    """A directory where a rotated file goes: every append failed, each time "cannot
    append to audit log <log> (Is a directory)", naming the log, a regular file."""
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path, keys=(), max_bytes=600, backups=2)
    (tmp_path / "audit.jsonl.2" / "x").mkdir(parents=True)
    with caplog.at_level(logging.ERROR, logger="cfgcore.events"):
        for i in range(8):
            log.append({"kind": "update", "path": f"k{i}", "new": "x" * 50})
    assert log.last_error is not None
    assert f"{os.strerror(errno.EISDIR)} ({path}.2)" in log.last_error, log.last_error
    assert any(f"({path}.2)" in r.getMessage() for r in caplog.records)
