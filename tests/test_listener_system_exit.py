"""A listener's SystemExit or KeyboardInterrupt on one of cfgcore's threads.

On the event bus's dispatcher thread (hot reload delivers there) it ended the thread
without a word: every later change reached no listener. It is now logged like any
listener error and the other listeners still get the event; on the caller's own thread
(``emit`` from ``update_config``) it propagates, as Python's own do.
"""

from __future__ import annotations

import logging
import threading

import pytest

from cfgcore.config.manager import ConfigurationManager
from cfgcore.runtime.atomicio import atomic_write_text
from cfgcore.runtime.events import ConfigChangeEvent, EventBus
from tests.waiting import wait_for


def _event(path: str) -> ConfigChangeEvent:
    return ConfigChangeEvent(path, 1, 2, "test", 1, 0.0)


class _ExitsOnce:
    def __init__(self, exc: type[BaseException]) -> None:
        self.exc, self.raised = exc, 0

    def __call__(self, event: ConfigChangeEvent) -> None:
        if not self.raised:
            self.raised += 1
            raise self.exc()


@pytest.mark.parametrize("exc", [SystemExit, KeyboardInterrupt])
def test_the_dispatcher_thread_survives_a_listener_that_exits(exc, caplog):
    bus = EventBus()
    seen: list[str] = []
    exits = _ExitsOnce(exc)
    bus.register(exits)
    bus.register(lambda e: seen.append(e.config_path))
    try:
        with caplog.at_level(logging.ERROR, logger="cfgcore.events"):
            bus.emit_in_background([_event("a")])
            bus.emit_in_background([_event("b")])
            assert wait_for(lambda: seen == ["a", "b"])
        assert exits.raised == 1
        assert any("raised on a" in r.getMessage() for r in caplog.records)
    finally:
        bus.close()


def test_on_the_callers_thread_it_propagates():
    bus = EventBus()
    bus.register(_ExitsOnce(SystemExit))
    with pytest.raises(SystemExit):
        bus.emit([_event("a")])
    seen: list[str] = []
    bus.register(seen.append)
    bus.emit([_event("b")])  # the bus still delivers
    assert [e.config_path for e in seen] == ["b"]


def test_hot_reload_keeps_announcing_after_a_listener_exits(tmp_path):
    root = tmp_path / "config"
    root.mkdir()
    (root / "base.yaml").write_text("svc:\n  a: 0\n")
    (root / "development.yaml").write_text("svc:\n  a: 1\n")
    m = ConfigurationManager(root, environment="development", environ={})
    m.load_environment_config()
    exits = _ExitsOnce(SystemExit)
    values: list[object] = []
    m.register_change_listener(exits)
    m.register_change_listener(lambda e: values.append(e.new_value))
    m.enable_hot_reload(poll_interval=0.2)
    try:
        atomic_write_text(root / "development.yaml", "svc:\n  a: 2\n")
        assert wait_for(lambda: 2 in values)
        atomic_write_text(root / "development.yaml", "svc:\n  a: 3\n")
        assert wait_for(lambda: 3 in values)
        assert exits.raised == 1
        assert threading.main_thread().is_alive()
    finally:
        m.close()
