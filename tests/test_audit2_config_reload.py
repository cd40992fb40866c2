"""Second audit, hot reload: the settle wait never holds the manager's lock.

A watcher waits for a burst of writes to finish before it reads (issue 10). That wait
used to run inside the activation, under the manager's lock, so update_config() and
every other activation waited with it (up to 20 settle windows while a writer kept
writing). Real files, a real watchfiles watcher and a writer thread that keeps
changing the environment file; the proof is an ordering of events, not a duration.
"""

from __future__ import annotations

import itertools
import os
import threading
import time

import pytest

from cfgcore.config import reload as reload_module
from cfgcore.config.manager import ConfigurationManager
from tests.waiting import wait_for


class SettleWaits:
    """Wraps the real ``wait_until_settled``: which waits are in progress right now."""

    def __init__(self, real):
        self.real = real
        self.lock = threading.Lock()
        self.ids = itertools.count()
        self.active: set[int] = set()
        self.started = threading.Event()

    def __call__(self, *args, **kwargs):
        with self.lock:
            me = next(self.ids)
            self.active.add(me)
        self.started.set()
        try:
            return self.real(*args, **kwargs)
        finally:
            with self.lock:
                self.active.discard(me)

    def in_progress(self) -> set[int]:
        with self.lock:
            return set(self.active)


def _write(path, text):
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


def test_update_config_completes_while_a_watcher_waits_for_files_to_settle(tmp_path, monkeypatch):
    env_file = tmp_path / "development.yaml"
    env_file.write_text("app:\n  name: svc\n  n: 0\n")
    m = ConfigurationManager(tmp_path, environment="development", environ={})
    m.load_environment_config()
    m.reloader.settle_ms = 200  # a writer 2 ms apart never lets it settle
    waits = SettleWaits(reload_module.wait_until_settled)
    monkeypatch.setattr(reload_module, "wait_until_settled", waits)
    stop = threading.Event()
    written = [0]

    def writer():
        i = 0
        while not stop.is_set():
            i += 1
            _write(env_file, f"app:\n  name: svc\n  n: {i}\n")
            written[0] = i
            stop.wait(0.002)

    m.enable_hot_reload(poll_interval=0.05)
    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    overlapped = []
    try:
        for attempt in range(10):
            assert wait_for(lambda: waits.in_progress(), timeout=30), "the watcher never waited"
            before = waits.in_progress()
            assert m.update_config("app.tag", f"t{attempt}") is True
            after = waits.in_progress()
            # The very wait in progress when update_config was called is still going on
            # when it returned: the update did not wait for it. Under the old code that
            # wait held the lock the update needs, so it had always ended by then.
            if before & after:
                overlapped.append(attempt)
                break
    finally:
        stop.set()
        thread.join()
    try:
        assert overlapped, "update_config always waited for the watcher's settle wait"
        # Nothing lost: once the writer stops, its last file goes live under the update.
        last = written[0]
        assert wait_for(lambda: m.get("app.n") == last, timeout=30)
        assert m.get("app.tag") == f"t{overlapped[0]}"
        assert m.last_error is None
    finally:
        m.close()


def _refusals(m):
    # The audit log records each refused reload as it happens (listeners of a
    # watcher's reload run later, on the notifier thread).
    return sum(1 for e in m.audit.entries() if e.get("kind") == "error")


def test_a_refused_file_is_read_again_once_its_permissions_change(tmp_path):
    """A file refused because it could not be read (written with the wrong owner or
    mode) was never read again after a chmod/chown fixed it: the poll remembered the
    refused input by (inode, size, mtime), which a chmod does not change, and served the
    old version until the contents changed again. (Tests here may run as root, whom
    modes do not stop, so the refusal is a bad value; what matters is the re-read.)"""
    path = tmp_path / "development.yaml"
    path.write_text("performance:\n  worker_threads: 1\n")
    m = ConfigurationManager(tmp_path, environment="development", environ={})
    m.load_environment_config()
    path.write_text("performance:\n  worker_threads: lots\n")
    settled = time.time_ns() - 10**9  # written a while ago: the poll judges it as read
    os.utime(path, ns=(settled, settled))
    m.reloader.poll()
    assert _refusals(m) == 1 and m.get("performance.worker_threads") == 1
    m.reloader.poll()
    assert _refusals(m) == 1  # refused as it is: not read again on every poll
    os.chmod(path, 0o600)  # the fix an operator makes for a file the service cannot read
    m.reloader.poll()
    assert _refusals(m) == 2  # read again (and, being a bad value here, refused again)
    m.reloader.poll()
    assert _refusals(m) == 2
    m.close()


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a mode 000 file; see the test above")
def test_permissions_fixed_on_an_unreadable_file_make_it_go_live(tmp_path):
    path = tmp_path / "development.yaml"
    path.write_text("performance:\n  worker_threads: 1\n")
    m = ConfigurationManager(tmp_path, environment="development", environ={})
    m.load_environment_config()
    path.write_text("performance:\n  worker_threads: 2\n")
    os.chmod(path, 0)
    settled = time.time_ns() - 10**9
    os.utime(path, ns=(settled, settled))
    m.reloader.poll()
    assert m.get("performance.worker_threads") == 1 and "ermission" in str(m.last_error)
    os.chmod(path, 0o644)
    m.reloader.poll()
    assert m.get("performance.worker_threads") == 2
    m.close()
