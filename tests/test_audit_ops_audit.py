"""The audit log under operational faults: a full disk, a writer killed halfway through
its line, several processes writing (and rotating) one log at once."""

from __future__ import annotations

import errno
import json
import multiprocessing
import os
import subprocess
import sys

import pytest

from cfgcore.runtime.audit import HEAD_SUFFIX, AuditLog, entry_hash, log_files, verify

SRC = os.path.dirname(os.path.dirname(os.path.abspath(__import__("cfgcore").__file__)))


def _entry(name: str, size: int = 10) -> dict:
    return {"kind": "change", "source": "test", "path": name, "new": "x" * size}


class _Disk:
    """A small filesystem that can be filled up: a real tmpfs where this process may
    mount one, else ``os.write`` refusing bytes past the room left in the directory
    (short writes, then ENOSPC, as the kernel does)."""

    def __init__(self, root, monkeypatch):
        self.root = str(root)
        os.makedirs(self.root)
        self.tmpfs = (
            subprocess.run(
                ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", self.root],
                capture_output=True,
            ).returncode
            == 0
        )
        self._room: int | None = None  # the emulation's free bytes (None: not full)
        if not self.tmpfs:
            real = os.write

            def write(fd, data):
                if self._room is None or not self._ours(fd):
                    return real(fd, data)
                if self._room == 0:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                n = real(fd, bytes(data[: self._room]))
                self._room -= n
                return n

            monkeypatch.setattr(os, "write", write)

    def _ours(self, fd):
        try:
            return os.readlink(f"/proc/self/fd/{fd}").startswith(self.root)
        except OSError:
            return False

    def fill(self, leave: int) -> None:
        """Fill the disk, leaving about ``leave`` bytes."""
        if not self.tmpfs:
            self._room = leave
            return
        fd = os.open(os.path.join(self.root, "filler"), os.O_WRONLY | os.O_CREAT)
        try:
            while True:
                os.write(fd, b"f" * 4096)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
        finally:
            os.close(fd)
        filler = os.path.join(self.root, "filler")
        os.truncate(filler, os.path.getsize(filler) - leave)

    def free(self) -> None:
        self._room = None
        if self.tmpfs:
            os.unlink(os.path.join(self.root, "filler"))

    def close(self) -> None:
        if self.tmpfs:
            subprocess.run(["umount", "-l", self.root], capture_output=True)


@pytest.fixture
def disk(tmp_path, monkeypatch):
    d = _Disk(tmp_path / "disk", monkeypatch)
    yield d
    d.close()


def _file_entries(path):
    with open(path, "rb") as fh:
        return [json.loads(line) for line in fh.read().splitlines()]


def test_a_full_disk_loses_the_batch_it_could_not_write_never_the_chain(disk):
    path = os.path.join(disk.root, "audit.jsonl")
    log = AuditLog(path, max_bytes=0)
    log.append_all([_entry(f"before.{i}", 500) for i in range(5)])
    # Room for part of the next batch: the kernel writes what fits, then refuses.
    disk.fill(leave=1500)
    log.append_all([_entry(f"lost.{i}", 700) for i in range(5)])  # logged, never raises
    full = verify(path)
    assert full.ok, full  # no half entry left in the file
    assert [e["path"] for e in _file_entries(path)] == [f"before.{i}" for i in range(5)]
    disk.free()
    log.append(_entry("after"))
    AuditLog(path, max_bytes=0).append(_entry("other process"))
    result = verify(path)
    assert result.ok and result.tail, result
    entries = _file_entries(path)
    assert [e["path"] for e in entries][-2:] == ["after", "other process"]
    assert [e["seq"] for e in entries] == list(range(1, 8))
    with open(path + HEAD_SUFFIX) as fh:
        head = json.load(fh)
    assert (head["seq"], head["hash"], head["log"]) == (7, entries[-1]["hash"], "audit.jsonl")


_DIE_MID_LINE = """
import os, sys
sys.path.insert(0, {src!r})
from cfgcore.runtime import audit
log = audit.AuditLog({path!r}, max_bytes=0)
log.append({{"kind": "change", "source": "test", "path": "complete", "new": 1}})
real = os.write
def dying_write(fd, data):
    real(fd, bytes(data[: len(data) // 2]))
    os._exit(9)  # killed halfway through the line
os.write = dying_write
log.append({{"kind": "change", "source": "test", "path": "torn", "new": "x" * 200}})
"""


def test_a_writer_killed_mid_line_does_not_swallow_the_next_writers_entries(tmp_path):
    path = str(tmp_path / "audit.jsonl")
    code = _DIE_MID_LINE.format(src=SRC, path=path)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert proc.returncode == 9, proc.stderr
    with open(path, "rb") as fh:
        assert not fh.read().endswith(b"\n")  # the torn line
    AuditLog(path, max_bytes=0).append(_entry("next"))
    AuditLog(path, max_bytes=0).append(_entry("after that"))
    with open(path, "rb") as fh:
        lines = fh.read().splitlines()
    assert len(lines) == 4
    complete = json.loads(lines[0])
    later = [json.loads(line) for line in lines[2:]]  # each on its own line, readable
    assert [e["path"] for e in later] == ["next", "after that"]
    # they continue the chain from the last complete entry, one after the other
    assert [e["seq"] for e in later] == [2, 3]
    assert later[0]["prev"] == complete["hash"] and later[1]["prev"] == later[0]["hash"]
    assert all(e["hash"] == entry_hash(e) for e in later)
    result = verify(path)  # the torn entry is what verify reports, and only it
    assert not result.ok and (result.file, result.line) == (path, 2), result


def _write_many(path: str, who: int, count: int) -> None:
    log = AuditLog(path, max_bytes=3000, backups=1000)
    for i in range(count):
        if i % 4 == 0:
            log.append_all([_entry(f"w{who}.{i}.{k}", 40) for k in range(3)])
        else:
            log.append(_entry(f"w{who}.{i}", 40))


def test_processes_writing_and_rotating_one_log_keep_one_chain(tmp_path):
    path = str(tmp_path / "audit.jsonl")
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_write_many, args=(path, who, 60)) for who in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    result = verify(path)
    assert result.ok and result.tail, result
    entries = [e for f in log_files(path) for e in _file_entries(f)]
    written = [e["path"] for e in entries if e["kind"] == "change"]
    assert len(written) == len(set(written)) == 3 * (15 * 3 + 45)
    for who in range(3):  # each writer's own entries in the order it wrote them
        mine = [p for p in written if p.startswith(f"w{who}.")]
        assert mine == sorted(mine, key=lambda p: tuple(int(x) for x in p[1:].split(".")))
