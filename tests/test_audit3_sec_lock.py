"""Round 3 (security): the audit log's lock held by someone else.

Readers (``cfgcore audit verify``, the history reader) took the writers' lock shared,
so its file was mode 0640 and anyone in the log's group could open it read-only and
take it exclusively: every later ``AuditLog.append`` of the service (under the
manager's change path) then blocked forever. Readers now take no lock (they open every
file and check that no rotation moved one meanwhile), the lock file is the writers'
own (0600, an older 0640 one narrowed), and a writer waits for it at most
``lock_timeout``: then the entries wait in memory, in order, and the next append (or
``flush()``, or the process's exit) writes them; the change never hangs.

Real lock-holding processes, real files, the real verifier.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import stat
import subprocess
import sys
import textwrap
import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfgcore.runtime import audit as audit_mod
from cfgcore.runtime.atomicio import FileLock, LockTimeout
from cfgcore.runtime.audit import AuditLog, log_files, open_log_files, verify
from cfgcore.runtime.events import ConfigChangeEvent
from tests.fuzz import examples

SRC = os.path.dirname(os.path.dirname(os.path.abspath(__import__("cfgcore").__file__)))
ENV = {**os.environ, "PYTHONPATH": SRC}
# A hang shows as a thread still running after this long (never a timing assertion on
# how fast anything is: the old code never returned at all).
HANG = 60

HOLDER = textwrap.dedent(
    """
    import fcntl, os, sys
    fd = os.open(sys.argv[1], os.O_RDONLY)  # read-only: all a group member needed
    fcntl.flock(fd, fcntl.LOCK_EX)
    print("held", flush=True)
    sys.stdin.readline()
    """
)


def _event(i: int, source: str = "update_config") -> ConfigChangeEvent:
    return ConfigChangeEvent(f"a.k{i}", i, i + 1, source, i, 1.7e9 + i, actor=f"u{i}")


class Holder:
    """Another process holding ``path`` locked exclusively until :meth:`release`."""

    def __init__(self, path: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", HOLDER, path],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None and self.proc.stdout.readline() == "held\n"

    def release(self) -> None:
        if self.proc.poll() is None:
            self.proc.communicate("\n", timeout=HANG)


@pytest.fixture
def holders():
    made: list[Holder] = []

    def hold(path: str) -> Holder:
        made.append(Holder(path))
        return made[-1]

    yield hold
    for h in made:
        if h.proc.poll() is None:
            h.proc.kill()
        h.proc.communicate()


def _in_thread(fn):
    """Run ``fn`` in a thread; its result (or exception), or fail if it is still running
    after HANG."""
    out: list = []

    def run() -> None:
        try:
            out.append((True, fn()))
        except BaseException as exc:
            out.append((False, exc))

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(HANG)
    assert not t.is_alive(), "blocked on the lock another process holds"
    ok, value = out[0]
    if not ok:
        raise value
    return value


def _seqs(path) -> list[int]:
    return [e["seq"] for f in log_files(path) for e in AuditLog.read(f)]


def test_a_change_never_hangs_on_a_lock_another_process_holds(tmp_path, holders, caplog):
    path = tmp_path / "flags.audit.jsonl"
    log = AuditLog(path, lock_timeout=0.2)
    log.record(_event(0))
    holder = holders(f"{path}.lock")
    caplog.set_level(logging.ERROR, logger="cfgcore")

    entry = _in_thread(lambda: log.record(_event(1)))

    # Not written (the lock is not ours), not lost: waiting in memory, and said so.
    assert entry["seq"] == 2 and log.pending() == 1
    assert [e["path"] for e in AuditLog.read(path)] == ["a.k0"]
    message = " ".join(r.getMessage() for r in caplog.records)
    assert f"{path}.lock" in message and f"pid {holder.proc.pid}" in message
    assert "1 entry waiting" in message
    # Further changes do not hang either, and queue behind it in order.
    _in_thread(lambda: log.record(_event(2)))
    assert log.pending() == 2

    holder.release()
    log.record(_event(3))
    assert log.pending() == 0
    assert [e["path"] for e in AuditLog.read(path)] == ["a.k0", "a.k1", "a.k2", "a.k3"]
    assert _seqs(path) == [1, 2, 3, 4]
    result = verify(path)
    assert result.ok and result.tail, result
    # What the log keeps in memory is what the file holds.
    assert [e["hash"] for e in log.entries()] == [e["hash"] for e in AuditLog.read(path)]


def test_flush_writes_the_waiting_entries_once_the_lock_is_free(tmp_path, holders):
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path, lock_timeout=0.1)
    log.record(_event(0))
    holder = holders(f"{path}.lock")
    _in_thread(lambda: log.record(_event(1)))
    assert _in_thread(lambda: log.flush(timeout=0.1)) is False
    holder.release()
    assert log.flush() is True
    assert _seqs(path) == [1, 2] and verify(path).ok


def test_readers_do_not_wait_for_the_writers_lock(tmp_path, holders):
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path, max_bytes=600, backups=3)
    for i in range(8):
        log.record(_event(i))
    holders(f"{path}.lock")

    result = _in_thread(lambda: verify(path))
    assert result.ok and result.tail, result
    files = _in_thread(lambda: open_log_files(path))
    try:
        assert [name for name, _ in files] == log_files(path)
        seqs = [json.loads(line)["seq"] for _, fh in files for line in fh.read().splitlines()]
    finally:
        for _, fh in files:
            fh.close()
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    assert seqs[-1] == AuditLog.read(path)[-1]["seq"] and len(files) > 1


def test_cfgcore_audit_verify_does_not_wait_for_the_writers_lock(tmp_path, holders, capsys):
    from cfgcore.cli import main

    path = tmp_path / "audit.jsonl"
    AuditLog(path).record(_event(0))
    holders(f"{path}.lock")
    assert _in_thread(lambda: main(["audit", "verify", str(path)])) == 0
    assert capsys.readouterr().out.startswith("ok: 1 entries")


def test_the_lock_file_is_the_writers_own(tmp_path):
    fresh = tmp_path / "a.jsonl"
    AuditLog(fresh).record(_event(0))
    assert stat.S_IMODE(os.stat(f"{fresh}.lock").st_mode) == 0o600

    # Left group-readable by an older version: narrowed by the next append.
    older = tmp_path / "b.jsonl"
    lock = f"{older}.lock"
    os.close(os.open(lock, os.O_CREAT | os.O_WRONLY, 0o640))
    os.chmod(lock, 0o640)
    AuditLog(older).record(_event(0))
    assert stat.S_IMODE(os.stat(lock).st_mode) == 0o600


def test_file_lock_timeout_names_the_file_and_the_holder(tmp_path, holders):
    path = str(tmp_path / "x.lock")
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    holder = holders(path)
    with pytest.raises(LockTimeout) as info:
        _in_thread(lambda: FileLock(path, timeout=0.05).acquire())
    assert info.value.path == path and info.value.holder == holder.proc.pid
    assert path in str(info.value) and f"pid {holder.proc.pid}" in str(info.value)
    holder.release()
    with FileLock(path, timeout=0.05):
        pass


def test_entries_waiting_at_exit_are_written_if_the_lock_is_free_by_then(tmp_path, holders):
    path = tmp_path / "audit.jsonl"
    AuditLog(path).record(_event(0))
    holder = holders(f"{path}.lock")
    script = textwrap.dedent(
        f"""
        import sys
        from cfgcore.runtime.audit import AuditLog
        from cfgcore.runtime.events import ConfigChangeEvent
        log = AuditLog({str(path)!r}, lock_timeout=0.1)
        log.record(ConfigChangeEvent("a.exit", 0, 1, "t", 1, 1.7e9))
        print(log.pending(), flush=True)
        sys.stdin.readline()
        log.lock_timeout = 30  # the exit's try waits for it (bounded)
        """
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script], env=ENV, stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert child.stdout is not None and child.stdout.readline() == "1\n"
        holder.release()
        child.communicate("\n", timeout=HANG)
    finally:
        child.kill()
    assert [e["path"] for e in AuditLog.read(path)] == ["a.k0", "a.exit"]
    assert verify(path).ok


def test_entries_past_the_cap_are_recorded_as_lost(tmp_path, monkeypatch):
    monkeypatch.setattr(audit_mod, "MAX_PENDING", 3)
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path, lock_timeout=0)
    log.record(_event(0))
    fd = os.open(f"{path}.lock", os.O_RDONLY)  # another open file: its flock conflicts
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        for i in range(1, 6):
            log.record(_event(i))
        assert log.pending() == 3
    finally:
        os.close(fd)
    log.record(_event(6))
    kinds = [(e["kind"], e.get("path")) for e in AuditLog.read(path)]
    assert kinds[0] == ("change", "a.k0") and kinds[1][0] == "tamper"
    assert [p for _, p in kinds[2:]] == ["a.k3", "a.k4", "a.k5", "a.k6"]
    result = verify(path)
    assert not result.ok and "2 entries were never written" in result.problem


@settings(
    max_examples=examples(40),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(steps=st.lists(st.tuples(st.booleans(), st.integers(1, 3)), min_size=1, max_size=12))
def test_entries_are_written_in_order_whenever_the_lock_comes_free(tmp_path_factory, steps):
    # Each step: the lock held by another open file or not, then a batch of changes.
    path = tmp_path_factory.mktemp("lock") / "audit.jsonl"
    log = AuditLog(path, lock_timeout=0, max_bytes=900, backups=20)
    n = 0
    for held, size in steps:
        fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if held:
                fcntl.flock(fd, fcntl.LOCK_EX)
            log.record_all([_event(n + i) for i in range(size)])
            n += size
        finally:
            os.close(fd)
    log.flush()
    written = [e for f in log_files(path) for e in AuditLog.read(f) if e["kind"] == "change"]
    assert [e["path"] for e in written] == [f"a.k{i}" for i in range(n)]
    result = verify(path)
    assert result.ok and result.tail, result


def test_a_forked_child_does_not_write_its_parents_waiting_entries(tmp_path):
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path, lock_timeout=0)
    log.record(_event(0))
    fd = os.open(f"{path}.lock", os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    log.record(_event(1))  # waits in the parent
    os.close(fd)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            log.record(_event(2))
            code = 0
        finally:
            os._exit(code)
    assert os.waitpid(pid, 0)[1] == 0
    assert log.flush()
    assert sorted(e["path"] for e in AuditLog.read(path)) == ["a.k0", "a.k1", "a.k2"]
    assert verify(path).ok


def test_verify_while_other_processes_rotate_never_reports_a_removal(tmp_path):
    # The guarantee the shared lock gave readers, now without it: files renamed under a
    # verify (each to the next number) are neither missed nor read twice.
    path = tmp_path / "audit.jsonl"
    script = textwrap.dedent(
        f"""
        import sys
        from cfgcore.runtime.audit import AuditLog
        from cfgcore.runtime.events import ConfigChangeEvent
        log = AuditLog({str(path)!r}, max_bytes=6000, backups=3)
        for i in range(150):
            log.record(ConfigChangeEvent("k", 0, "x" * (i % 7) * 700, "p" + sys.argv[1], i, 1.7e9))
        """
    )
    AuditLog(path).record(_event(0))
    procs = [subprocess.Popen([sys.executable, "-c", script, str(n)], env=ENV) for n in range(2)]
    checked = 0
    try:
        while any(p.poll() is None for p in procs):
            result = verify(path)
            assert result.ok, result
            checked += 1
    finally:
        codes = [p.wait(timeout=HANG) for p in procs]
    assert codes == [0, 0] and checked > 0
    final = verify(path)
    assert final.ok and final.tail, final


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("CFGCORE_AUDIT_LOCK_TIMEOUT", "abc"),
        ("CFGCORE_AUDIT_LOCK_TIMEOUT", "-1"),
        ("CFGCORE_AUDIT_LOCK_TIMEOUT", "inf"),
        ("CFGCORE_AUDIT_MAX_BYTES", "10MB"),
    ],
)
def test_an_unusable_setting_is_named_and_the_default_used(
    tmp_path, monkeypatch, caplog, name, raw
):
    monkeypatch.setenv(name, raw)
    with caplog.at_level("WARNING", logger="cfgcore"):
        log = AuditLog(str(tmp_path / "a.jsonl"))
    assert log.lock_timeout == audit_mod.DEFAULT_LOCK_TIMEOUT
    assert log.max_bytes == audit_mod.DEFAULT_MAX_BYTES
    assert any(name in r.getMessage() and repr(raw) in r.getMessage() for r in caplog.records)
