"""Slow consumers of change events, third audit. A listener that never returns (or is
far slower than the changes: a fleet publishing all day) used to make every batch
emitted meanwhile wait in memory without bound. Now at most ``MAX_BACKLOG`` batches
wait per bus: beyond it the oldest are dropped (counted in ``EventBus.dropped``,
logged once per stall), and a listener that comes back gets the latest changes, in
order. The background dispatcher (the fleet follower's path) keeps one delivery
request queued at most instead of one per change. Real flag sets on real files."""

from __future__ import annotations

import json
import logging
import threading

import pytest

from cfgcore.runtime import events as events_mod
from cfgcore.runtime.events import ConfigChangeEvent, EventBus, deferred_delivery
from tests.waiting import wait_for


def _event(i: int) -> ConfigChangeEvent:
    return ConfigChangeEvent(f"k{i}", i - 1, i, "test", i, 0.0)


@pytest.fixture
def small_backlog(monkeypatch):
    monkeypatch.setattr(events_mod, "MAX_BACKLOG", 50)
    return 50


def _stuck_bus():
    """A bus whose listener blocks on its first event until ``release`` is set; the
    events it saw."""
    bus = EventBus()
    release = threading.Event()
    entered = threading.Event()
    seen: list[int] = []

    def listener(event):
        entered.set()
        release.wait(30)
        seen.append(event.new_value)

    bus.register(listener)
    return bus, release, entered, seen


def test_a_stuck_listener_keeps_at_most_max_backlog_batches_the_latest(small_backlog, caplog):
    bus, release, entered, seen = _stuck_bus()
    first = threading.Thread(target=bus.emit, args=([_event(0)],))
    first.start()
    assert entered.wait(10)
    with caplog.at_level(logging.WARNING, logger="cfgcore.events"):
        for i in range(1, 1001):
            bus.emit([_event(i)])  # returns at once: another thread is delivering
        assert len(bus._outbox) == small_backlog
        assert bus.dropped == 1000 - small_backlog
        release.set()
        first.join(10)
    # The first event, then the latest MAX_BACKLOG ones, in order.
    assert seen == [0, *range(1001 - small_backlog, 1001)]
    stalls = [r for r in caplog.records if "stuck or too slow" in r.getMessage()]
    assert len(stalls) == 1
    assert any("caught up (950 batches dropped" in r.getMessage() for r in caplog.records)


def test_background_delivery_requests_do_not_pile_up_behind_a_stuck_listener(small_backlog):
    bus, release, entered, seen = _stuck_bus()
    try:
        with deferred_delivery(background=True):
            bus.emit([_event(0)])
        assert entered.wait(10)  # the dispatcher thread is stuck in the listener
        for i in range(1, 1001):
            with deferred_delivery(background=True):
                bus.emit([_event(i)])
        assert bus._inflight <= 2  # the one being delivered and at most one waiting
        assert len(bus._outbox) == small_backlog
        release.set()
        assert bus.wait_idle(10)
        assert seen == [0, *range(1001 - small_backlog, 1001)]
    finally:
        release.set()
        bus.close()


def test_emit_in_background_delivers_in_order_and_after_close_starts_again():
    bus = EventBus()
    seen: list[int] = []
    bus.register(lambda e: seen.append(e.new_value))
    for i in range(200):
        bus.emit_in_background([_event(i)])
    assert bus.wait_idle(10) and seen == list(range(200))
    bus.close()
    bus.emit_in_background([_event(200)])
    assert bus.wait_idle(10) and seen == list(range(201))
    bus.close()


def test_a_stuck_flag_listener_does_not_hold_up_flag_changes(tmp_path, small_backlog):
    """Through a real manager: a listener stuck on a flag change; 200 more changes go
    live at once (the flags serve them), and only the latest MAX_BACKLOG batches wait."""
    from cfgcore.dynamic_config import DynamicConfigurationManager

    path = tmp_path / "flags.json"
    path.write_text(json.dumps({"flags": {"a": {"default": "off"}}}))
    m = DynamicConfigurationManager(flags_file=path)
    release = threading.Event()
    seen: list[str] = []

    def listener(event):
        release.wait(30)
        seen.append(event.new_value)

    try:
        m.register_change_listener(listener)
        worker = threading.Thread(target=m.set_feature_flag, args=("a", True))
        worker.start()
        assert wait_for(lambda: m.events._delivering.locked())
        for i in range(200):  # each a change: False, True, False, ...
            m.set_feature_flag("a", i % 2 == 1)
            assert m.is_feature_enabled("a", {}) is (i % 2 == 1)
        assert len(m.events._outbox) == small_backlog
        assert m.events.dropped == 200 - small_backlog
        release.set()
        worker.join(10)
        assert wait_for(lambda: len(seen) == 1 + small_backlog)
    finally:
        release.set()
        m.close()
