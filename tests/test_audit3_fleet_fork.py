"""fork() after the fleet store and the OpenFeature provider started, third audit.

* A Redis store's follower thread was started again from its after-fork repair, so in
  the child it could run (and deliver a document to the flag set, the managers and
  their subscribers) before the repairs registered after it had replaced the locks a
  parent's thread held. It now starts in the restart phase, after every repair.
* An OpenFeature provider's locks were not repaired: a parent's thread holding one at
  the fork (the status monitor announcing, a follower's refusal) left the child's
  provider, and the flag change path that notifies it, blocked forever.

Each child reports through its exit status; a deadlock becomes SIGALRM."""

from __future__ import annotations

import json
import os
import signal
import threading
import warnings

import msgspec
import pytest

from cfgcore.runtime import redis_store, usage  # noqa: F401  (their fork hooks come first)
from cfgcore.runtime.forks import after_fork_in_child
from cfgcore.snapshot import Flag
from tests.waiting import wait_for

api = pytest.importorskip("openfeature.api", reason="openfeature-sdk is not installed")

from cfgcore.openfeature import CfgcoreProvider  # noqa: E402

# A repair registered after the Redis store's: what it sees of the probed store.
_PROBE: dict[str, object] = {}


@after_fork_in_child
def _probe_after_fork() -> None:
    store = _PROBE.get("store")
    if store is not None:
        _PROBE["started_during_repairs"] = getattr(store, "_thread", None) is not None
    recorder = _PROBE.get("recorder")
    if recorder is not None:
        _PROBE["usage_started_during_repairs"] = recorder._thread is not None


def _fork(child, then=None):
    """Run ``child()`` (returns an exit status) in a forked child, and ``then()`` in
    the parent meanwhile; the child's exit status."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # 3.12: fork with threads
        pid = os.fork()
    if pid == 0:
        code = 1
        try:
            signal.alarm(20)
            code = child()
        finally:
            os._exit(code)
    if then is not None:
        then()
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def _set(flag, value):
    def change(snap):
        return msgspec.structs.replace(snap, flags={**snap.flags, flag: Flag(default=value)})

    return change


def test_a_forked_child_restarts_its_follower_after_every_repair_and_follows(
    redis_server, tmp_path
):
    from cfgcore.dynamic_config import DynamicConfigurationManager

    url = redis_server.url + f"?namespace=fork3&poll=0.2&cache={tmp_path / 'c.msgpack'}"
    m = DynamicConfigurationManager(store=url, state_dir=tmp_path / "state")
    publisher = DynamicConfigurationManager(store=url, state_dir=tmp_path / "state2")
    go = os.pipe()
    try:
        m._live.update(_set("a", "off"), source="test")
        assert wait_for(lambda: m.store._thread is not None and m.store.connected)
        _PROBE["store"] = m.store

        def child():
            if _PROBE.get("started_during_repairs") is not False:
                return 2  # the follower ran before the repairs registered after it
            os.close(go[1])
            os.read(go[0], 1)  # the parent has published
            if not wait_for(lambda: m.is_feature_enabled("a", {}), timeout=15):
                return 3  # the child does not follow the store
            return 0

        def publish():
            os.close(go[0])
            publisher._live.update(_set("a", "on"), source="test")
            os.write(go[1], b"x")
            os.close(go[1])

        assert _fork(child, publish) == 0
    finally:
        _PROBE.clear()
        publisher.close()
        m.close()


def test_a_forked_child_counts_its_store_from_zero(redis_server, tmp_path):
    # Each worker of a pre-fork server reported the parent's store counts again (writes,
    # documents accepted...), so a sum over the workers counted them once per worker.
    from cfgcore.dynamic_config import DynamicConfigurationManager

    url = redis_server.url + f"?namespace=fork4&poll=0.2&cache={tmp_path / 'c.msgpack'}"
    m = DynamicConfigurationManager(store=url, state_dir=tmp_path / "state")
    try:
        m._live.update(_set("a", "off"), source="test")
        m._live.update(_set("b", "on"), source="test")
        assert m.store.stats["writes"] == 2

        def child():
            # the child writes nothing; its follower may take a document meanwhile
            return 0 if m.store.stats["writes"] == 0 else 6

        assert _fork(child) == 0
        assert m.store.stats["writes"] == 2  # the parent's own stay
    finally:
        m.close()


def test_a_provider_lock_held_by_a_parent_thread_at_fork_does_not_block_the_child(tmp_path):
    from cfgcore.dynamic_config import DynamicConfigurationManager

    path = tmp_path / "flags.json"
    path.write_text(json.dumps({"flags": {"a": {"default": "on"}}}))
    m = DynamicConfigurationManager(flags_file=path)
    provider = CfgcoreProvider(m.engine)
    api.set_provider_and_wait(provider, domain="cfgcore-audit3-fork")
    held, release = threading.Event(), threading.Event()

    def hold():  # as the status monitor does while it announces
        with provider._status_lock:
            held.set()
            release.wait(10)

    t = threading.Thread(target=hold)
    t.start()
    assert held.wait(5)

    def child():
        path.write_text("{broken")  # refused: the provider hears of it (STALE)
        if m.reload() is not False:
            return 4
        client = api.get_client("cfgcore-audit3-fork")
        return 0 if client.get_boolean_value("a", False) is True else 5

    try:
        assert _fork(child) == 0
    finally:
        release.set()
        t.join(5)
        provider.shutdown()
        m.close()


def test_a_forked_child_restarts_its_usage_recorder_after_every_repair(tmp_path):
    recorder = usage.UsageRecorder(tmp_path / "flag-usage.json", interval=0.05)
    recorder.start()
    usage._RECORDERS[recorder.path] = recorder
    _PROBE["recorder"] = recorder
    (tmp_path / "flag-usage.json").unlink(missing_ok=True)

    def child():
        if _PROBE.get("usage_started_during_repairs") is not False:
            return 2  # the recorder's thread ran before the repairs registered after it
        if not wait_for(lambda: recorder.running, timeout=10):
            return 3
        return 0 if wait_for(lambda: (tmp_path / "flag-usage.json").exists(), 10) else 4

    try:
        assert _fork(child) == 0
    finally:
        _PROBE.clear()
        with usage._RECORDERS_LOCK:
            usage._RECORDERS.pop(recorder.path, None)
        recorder.close()
