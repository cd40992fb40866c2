"""Audit entries a ``multiprocessing`` child recorded while another process held the
writers' lock wait in memory; the child's exit writes them once the lock is free.
Such a child ends with ``os._exit`` (``atexit`` never runs there): before, those entries
were lost without a word. Real processes, a real lock holder, the real verifier."""

from __future__ import annotations

import multiprocessing

from cfgcore.runtime.audit import AuditLog, verify
from cfgcore.runtime.events import ConfigChangeEvent
from tests.test_audit3_sec_lock import HANG, holders  # noqa: F401  (the fixture)


def _child(path: str, recorded, released) -> None:
    log = AuditLog(path, lock_timeout=0.1)
    log.record(ConfigChangeEvent("a.child", 0, 1, "t", 1, 1.7e9))
    assert log.pending() == 1  # the lock is held elsewhere: waiting in memory
    recorded.set()
    assert released.wait(HANG)
    log.lock_timeout = 30  # the exit's try waits for it (bounded)
    _keep.append(log)  # alive at exit, as a service's audit log is
    # returns: multiprocessing ends the child with os._exit


_keep: list[AuditLog] = []


def test_a_multiprocessing_childs_waiting_entries_are_written_at_its_exit(
    tmp_path,
    holders,  # noqa: F811
):
    path = tmp_path / "audit.jsonl"
    AuditLog(path).record(ConfigChangeEvent("a.parent", 0, 1, "t", 1, 1.7e9))
    holder = holders(f"{path}.lock")
    ctx = multiprocessing.get_context("fork")
    recorded, released = ctx.Event(), ctx.Event()
    child = ctx.Process(target=_child, args=(str(path), recorded, released))
    child.start()
    try:
        assert recorded.wait(HANG)
        holder.release()
        released.set()
        child.join(HANG)
    finally:
        if child.is_alive():
            child.kill()
    assert child.exitcode == 0
    assert [e["path"] for e in AuditLog.read(path)] == ["a.parent", "a.child"]
    assert verify(path).ok
