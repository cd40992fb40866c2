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
