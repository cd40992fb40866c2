"""A slow or stuck change listener never holds up a flag swap: not another thread's
change, not a change the listener itself waits for, not the fleet follower. Events
still arrive in the order the documents went live, and the audit log records them in
that order."""

from __future__ import annotations

import threading

import pytest

from cfgcore.experiments.dynamic import DynamicConfigurationManager
from cfgcore.experiments.features import rollout_change
from cfgcore.runtime.audit import AuditLog
from tests.waiting import wait_for


@pytest.fixture
def dyn(tmp_path):
    m = DynamicConfigurationManager(tmp_path / "flags.yaml", state_dir=tmp_path)
    yield m
    m.close()


def _two_flags(m):
    first, second = sorted(m._live.source.flags)[:2]
    return first, second


class _Blocking:
    """A listener that blocks on the event for ``flag`` until released, recording
    (thread, path, version) of every event it gets."""

    def __init__(self, flag: str):
        self.path = f"flags.{flag}"
        self.entered = threading.Event()
        self.release = threading.Event()
        self.seen: list[tuple[str, int]] = []

    def __call__(self, event):
        self.seen.append((event.config_path, event.version))
        if event.config_path == self.path and not self.release.is_set():
            self.entered.set()
            self.release.wait(30)


def test_a_blocked_listener_does_not_hold_up_another_threads_change(dyn):
    first, second = _two_flags(dyn)
    listener = _Blocking(first)
    dyn.register_change_listener(listener)
    a = threading.Thread(target=dyn.set_feature_flag, args=(first, False, 0.0))
    a.start()
    try:
        assert listener.entered.wait(10)
        before = dyn._live.document.version
        b = threading.Thread(target=dyn.set_feature_flag, args=(second, False))
        b.start()
        b.join(10)
        assert not b.is_alive(), "a change waited for another change's listener"
        assert dyn._live.document.version == before + 1  # live already
        assert dyn.snapshot is dyn._live.source  # the manager's own state swapped with it
        assert dyn.is_feature_enabled(second, "u1") is False
    finally:
        listener.release.set()
        a.join(10)
    # delivered in the order the documents went live, once each
    assert [p for p, _ in listener.seen] == [f"flags.{first}", f"flags.{second}"]
    assert listener.seen[0][1] < listener.seen[1][1]
    audit = [(e["path"], e["version"]) for e in AuditLog.read(dyn.audit.path)]
    assert audit[-2:] == listener.seen


def test_a_listener_waiting_for_a_thread_that_changes_flags_does_not_deadlock(dyn):
    first, second = _two_flags(dyn)
    seen: list[str] = []
    outcome: dict[str, bool] = {}

    def listener(event):
        seen.append(event.config_path)
        if event.config_path == f"flags.{first}":
            # e.g. handing the follow-up change to a worker and waiting for it
            worker = threading.Thread(target=dyn.set_feature_flag, args=(second, False))
            worker.start()
            worker.join(10)
            outcome["worker finished"] = not worker.is_alive()

    dyn.register_change_listener(listener)
    dyn.set_feature_flag(first, False)
    assert outcome == {"worker finished": True}
    assert dyn.is_feature_enabled(second, "u1") is False
    assert seen == [f"flags.{first}", f"flags.{second}"]  # the follow-up after


def test_a_listener_that_raises_does_not_stop_the_others_or_later_changes(dyn):
    first, second = _two_flags(dyn)
    got: list[str] = []

    def broken(event):
        raise RuntimeError("listener bug")

    dyn.register_change_listener(broken)
    dyn.register_change_listener(lambda event: got.append(event.config_path))
    dyn.set_feature_flag(first, False)
    dyn.set_feature_flag(second, False)
    assert got == [f"flags.{first}", f"flags.{second}"]


def test_a_blocked_listener_does_not_stop_the_fleet_follower(redis_server, tmp_path):
    from cfgcore.runtime.flagstore import bundled_seed
    from cfgcore.runtime.redis_store import RedisFlagStore

    url = redis_server.url + f"?namespace=slow&cache={tmp_path / 'cache.msgpack'}&poll=0.2"
    (tmp_path / "state").mkdir()
    dyn = DynamicConfigurationManager(store=url, state_dir=tmp_path / "state")
    # another process's store object, seeded as the managers' are
    writer = RedisFlagStore(redis_server.url + "?namespace=slow&cache=off", seed=bundled_seed())
    try:
        wait_for(lambda: dyn.store.connected)
        first, second = _two_flags(dyn)
        listener = _Blocking(first)
        dyn.register_change_listener(listener)
        writer.update(rollout_change(first, False, 0.0, "redis"))
        assert listener.entered.wait(15)  # the follower's document, listener stuck on it
        writer.update(rollout_change(second, False, 0.0, "redis"))
        # the follower swaps the next version in while the listener is still blocked
        assert wait_for(lambda: dyn._live.document.version == writer.version)
        assert dyn.is_feature_enabled(second, "u1") is False
        assert not listener.release.is_set()
        listener.release.set()
        assert wait_for(lambda: len(listener.seen) == 2)
        assert [p for p, _ in listener.seen] == [f"flags.{first}", f"flags.{second}"]
    finally:
        listener.release.set()
        writer.close()
        dyn.close()
        dyn.store.close()


def test_a_stuck_background_listener_on_one_bus_does_not_hold_up_another_bus():
    # Background sections (the watchers, the fleet follower) deliver on each bus's own
    # dispatcher thread: one manager's stuck listener leaves the others' events flowing.
    import threading

    from cfgcore.runtime.events import ConfigChangeEvent, EventBus, deferred_delivery

    a, b = EventBus(), EventBus()
    entered, release, seen = threading.Event(), threading.Event(), []

    def stuck(event):
        entered.set()
        release.wait(30)

    a.register(stuck)
    b.register(lambda event: seen.append(event.config_path))
    try:
        with deferred_delivery(background=True):
            a.emit([ConfigChangeEvent("a.x", 1, 2, "reload", 1, 0.0)])
        assert entered.wait(10)
        with deferred_delivery(background=True):
            b.emit([ConfigChangeEvent("b.x", 1, 2, "reload", 1, 0.0)])
        assert wait_for(lambda: seen == ["b.x"])
    finally:
        release.set()
        a.close()
        b.close()
