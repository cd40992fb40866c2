"""Round 5 (security, follow-up): the audit log's lock held by someone who owns it.

Whoever can create ``audit.jsonl.lock`` in a fresh state directory (before the
service's first write) owns it: its mode does not keep them out, and they can hold it
forever. The entries then waited in memory (up to ``MAX_PENDING``, then the oldest
were dropped), with an error per append but nothing a health check could read, and
nothing said that the lock file was not the writers' own. Now ``AuditLog.last_error``
names the lock file, the holder's pid and, when it is not ours, the file's owner (None
again once an append reaches the file), and a foreign lock file is logged as an error
when a log first takes it. The lock itself is unchanged. Real lock-holding processes.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap

import pytest

from cfgcore.runtime.audit import AuditLog, verify
from cfgcore.runtime.events import ConfigChangeEvent

HOLDER = textwrap.dedent(
    """
    import fcntl, os, sys
    fd = os.open(sys.argv[1], os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    print("held", flush=True)
    sys.stdin.readline()
    """
)


def _event(i: int) -> ConfigChangeEvent:
    return ConfigChangeEvent(f"a.k{i}", i, i + 1, "update_config", i, 1.7e9 + i, actor="u")


@pytest.fixture
def hold():
    procs: list[subprocess.Popen[str]] = []

    def start(path: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, "-c", HOLDER, path],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        procs.append(proc)
        assert proc.stdout is not None and proc.stdout.readline() == "held\n"
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.communicate("\n", timeout=60)


@pytest.fixture(autouse=True)
def _no_key(monkeypatch):
    for var in ("CFGCORE_AUDIT_KEY", "CFGCORE_AUDIT_KEY_FILE"):
        monkeypatch.delenv(var, raising=False)


def test_last_error_names_the_holder_and_clears_once_written(tmp_path, hold):
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path, lock_timeout=0.1)
    log.record(_event(0))
    assert log.last_error is None
    holder = hold(str(path) + ".lock")
    log.record(_event(1))
    assert log.pending() == 1
    assert log.last_error is not None
    assert f"{path}.lock" in log.last_error and f"pid {holder.pid}" in log.last_error
    assert "1 entry waiting in memory" in log.last_error
    holder.communicate("\n", timeout=60)
    log.record(_event(2))
    assert log.last_error is None and log.pending() == 0
    assert [e["path"] for e in AuditLog.read(path)] == ["a.k0", "a.k1", "a.k2"]
    assert verify(path, keys=()).ok


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0,
    reason="making a lock file another user owns needs root (chown)",
)
def test_a_lock_file_another_user_owns_is_named_with_its_owner(tmp_path, hold, caplog):
    path = tmp_path / "audit.jsonl"
    lock = f"{path}.lock"
    fd = os.open(lock, os.O_CREAT | os.O_WRONLY, 0o644)  # planted before the first write
    os.close(fd)
    os.chown(lock, 65534, 65534)
    holder = hold(lock)
    log = AuditLog(path, lock_timeout=0.1)
    with caplog.at_level(logging.ERROR, logger="cfgcore.events"):
        log.record(_event(0))
        log.record(_event(1))
    said = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    owned = [m for m in said if "owned by uid 65534" in m and "hold every writer off" in m]
    assert len(owned) == 1, said  # said once, not per append
    assert log.last_error is not None
    assert "owned by uid 65534" in log.last_error and f"pid {holder.pid}" in log.last_error
    assert "2 entries waiting in memory" in log.last_error
    assert os.stat(lock).st_uid == 65534  # the lock is not taken over or replaced
