"""A writer that never stops cannot keep the previous configuration live forever.

Hot reload reads the inputs only once they have stopped changing for the settle window
(60 ms), so a file rewritten continuously (a generator in a loop, two deploy tools
fighting over it) kept the old version for as long as the writes went on: no bound at
all. Past ``max_settle_wait_ms`` (5 s by default) the inputs are now read as they are;
what parses and validates goes live, what does not is refused and reported as usual,
and the watch goes on. Real files, the real watcher, a real writer thread; every wait
is on an observed state with a generous deadline, never on time.
"""

from __future__ import annotations

import asyncio
import os
import threading

import pytest

from cfgcore.config.manager import ConfigurationManager
from cfgcore.config.settle import DEFAULT_MAX_SETTLE_WAIT_MS, DEFAULT_SETTLE_MS
from cfgcore.runtime.atomicio import atomic_write_text
from tests.waiting import wait_for

WATCHER_ONLY = 3600.0  # poll_interval: the periodic poll never runs during a test
BOUND_MS = int(__import__("os").environ.get("STORM_BOUND", "1000"))


class Storm:
    """Rewrites ``path`` atomically, again and again, each time well within the settle
    window of the last write, until stopped; ``text(i)`` is the i-th content."""

    def __init__(self, path, text) -> None:
        self.path, self.text = path, text
        self.written = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        tmp = f"{self.path}.tmp"
        while not self.stop.is_set():
            # Atomic (a complete file renamed over the old one), without fsync: a few
            # ms apart, never still for the 60 ms settle window on a loaded machine.
            self.written += 1  # counted first: the file never holds more than this
            with open(tmp, "w", encoding="utf-8") as fh:
                fh.write(self.text(self.written))
            os.replace(tmp, self.path)
            self.stop.wait(0.002)

    def __enter__(self) -> Storm:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(30)


@pytest.fixture
def watched(tmp_path):
    root = tmp_path / "config"
    root.mkdir()
    (root / "development.yaml").write_text("app:\n  name: svc\n  n: 0\n")
    m = ConfigurationManager(root, environment="development", environ={})
    m.load_environment_config()
    m.reloader.max_settle_wait_ms = BOUND_MS
    events: list = []
    m.register_change_listener(events.append)
    m.enable_hot_reload(poll_interval=WATCHER_ONLY)
    yield root, m, events
    m.close()


def test_the_default_bound_is_seconds_not_forever():
    assert DEFAULT_SETTLE_MS < DEFAULT_MAX_SETTLE_WAIT_MS <= 10_000
    m = ConfigurationManager(environ={})
    try:
        assert m.reloader.max_settle_wait_ms == DEFAULT_MAX_SETTLE_WAIT_MS
    finally:
        m.close()


def test_a_continuously_rewritten_file_goes_live_while_the_writes_go_on(watched):
    root, m, events = watched
    with Storm(root / "development.yaml", lambda i: f"app:\n  name: svc\n  n: {i}\n") as storm:
        # Three versions in a row go live while the writer goes on writing: the watch
        # goes on after each. (Without the bound, each needed the writer to pause for a
        # whole settle window, which a loaded machine makes it do only now and then.)
        live = 0
        for _ in range(3):
            assert wait_for(lambda n=live: m.get("app.n") > n, timeout=30)
            live = m.get("app.n")
            assert storm.written >= live and storm.thread.is_alive()
    # Once the writes stop, the last version settles and goes live.
    assert wait_for(lambda: m.get("app.n") == storm.written, timeout=60)
    assert m.last_error is None
    assert not [e for e in events if e.kind == "error"]


def test_a_storm_of_invalid_content_is_refused_and_reported_the_last_good_serving(watched):
    root, m, events = watched
    env = root / "development.yaml"
    with Storm(env, lambda i: f"app:\n  name: svc\n  n: [{i}\n"):  # never parses
        assert wait_for(lambda: [e for e in events if e.kind == "error"], timeout=60)
        assert m.get("app.n") == 0
        assert "development.yaml" in str(m.last_error)
    atomic_write_text(env, "app:\n  name: svc\n  n: 7\n")
    assert wait_for(lambda: m.get("app.n") == 7, timeout=60)


def test_the_dynamic_managers_flag_file_watcher_is_bounded_too(tmp_path):
    from cfgcore.dynamic_config import DynamicConfigurationManager, FeatureFlag
    from tests.test_dynamic_watch import PREMIUM, edited
    from tests.waiting import wait_for_async

    async def scenario():
        m = DynamicConfigurationManager(state_dir=tmp_path, record_usage=False)
        m.set_feature_flag(FeatureFlag.PARENTAL_CONTROLS, True)  # creates the file
        m.max_settle_wait_ms = BOUND_MS
        off = edited(m, enhanced_anomaly_detection=False).decode()
        await m.start_file_watching(debounce_ms=20, poll_interval=WATCHER_ONLY)
        try:
            assert m.is_feature_enabled(FeatureFlag.ENHANCED_ANOMALY_DETECTION, PREMIUM)
            # The same document rewritten again and again: never still long enough.
            with Storm(m.flags_file, lambda i: off) as storm:
                assert await wait_for_async(
                    lambda: (
                        not m.is_feature_enabled(FeatureFlag.ENHANCED_ANOMALY_DETECTION, PREMIUM)
                    ),
                    timeout=30,
                )
                assert storm.thread.is_alive() and storm.written > 1
            assert m.last_error is None
        finally:
            await m.stop_file_watching()
            m.close()

    asyncio.run(scenario())
