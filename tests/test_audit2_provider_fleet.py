"""OpenFeature provider on a Redis fleet store, second audit: a follower that loses its
server, cannot apply a newer version or goes quiet is STALE through the real SDK, and
READY again once it follows and is current. Real redis-server (tests/redis_server.py),
stopped and started again to lose it; real openfeature-sdk registry and client."""

from __future__ import annotations

import itertools
import logging
import time

import msgspec
import pytest

api = pytest.importorskip("openfeature.api", reason="openfeature-sdk is not installed")

from openfeature.event import ProviderEvent  # noqa: E402
from openfeature.provider import ProviderStatus  # noqa: E402

from cfgcore.openfeature import CfgcoreProvider  # noqa: E402
from cfgcore.snapshot import Flag  # noqa: E402
from tests.redis_server import RedisServer  # noqa: E402
from tests.waiting import wait_for  # noqa: E402

DURABLE = ("--appendonly", "yes", "--appendfsync", "always")  # a restart keeps the data
_domains = itertools.count()


@pytest.fixture(autouse=True)
def _quiet():
    # The follower logs every lost connection: expected here.
    logging.getLogger("cfgcore.fleet").setLevel(logging.CRITICAL)
    yield
    logging.getLogger("cfgcore.fleet").setLevel(logging.NOTSET)


def _set(flag, value):
    def change(snap):
        return msgspec.structs.replace(snap, flags={**snap.flags, flag: Flag(default=value)})

    return change


def _manager(url, tmp_path, impl):
    from cfgcore.dynamic_config import DynamicConfigurationManager
    from cfgcore.engine import engine_class

    return DynamicConfigurationManager(
        store=url, state_dir=tmp_path / "state", engine=engine_class(impl)()
    )


def _client(provider):
    domain = f"cfgcore-audit2-fleet-{next(_domains)}"
    api.set_provider_and_wait(provider, domain=domain)
    client = api.get_client(domain)
    events = []
    for ev in (ProviderEvent.PROVIDER_STALE, ProviderEvent.PROVIDER_READY):
        client.add_handler(ev, lambda d, ev=ev: events.append((ev, d)))
    # A handler added for the state the provider is in runs at once (on the SDK's
    # handler pool): that READY is not news.
    assert wait_for(lambda: events)
    events.clear()
    return client, events


def _kinds(events):
    return [e for e, _ in events]


def test_a_follower_that_loses_redis_is_stale_then_ready_when_it_follows_again(
    redis_binary, tmp_path, impl
):
    server = RedisServer(str(tmp_path / "redis"), args=DURABLE).start()
    url = server.url + f"?namespace=of&backoff_max=0.2&cache={tmp_path / 'cache.msgpack'}"
    manager = _manager(url, tmp_path, impl)
    provider = CfgcoreProvider(manager.engine)
    try:
        manager._live.update(_set("a", "on"), source="test")
        client, events = _client(provider)
        assert wait_for(lambda: manager.store.connected)
        assert client.get_provider_status() == ProviderStatus.READY

        server.kill()  # lost: no goodbye to the follower
        assert wait_for(lambda: ProviderEvent.PROVIDER_STALE in _kinds(events))
        assert client.get_provider_status() == ProviderStatus.STALE
        stale = next(d for e, d in events if e == ProviderEvent.PROVIDER_STALE)
        assert "not following" in stale.message and "127.0.0.1" in stale.message
        assert stale.metadata["stale_because"] == "disconnected"
        # The last good flags keep answering, without an error.
        d = client.get_boolean_details("a", False)
        assert (d.value, d.error_code) == (True, None)

        server.start()  # with its data (appendonly): the follower catches up
        assert wait_for(lambda: ProviderEvent.PROVIDER_READY in _kinds(events))
        assert client.get_provider_status() == ProviderStatus.READY
        # each change of state announced once (the SDK runs handlers on a pool: any order)
        assert sorted(e.value for e in _kinds(events)) == ["PROVIDER_READY", "PROVIDER_STALE"]
        # ... and follows again: another process's write reaches this one.
        from cfgcore.runtime.redis_store import RedisFlagStore

        with RedisFlagStore(url) as writer:
            writer.update(_set("a", "off"))
        assert wait_for(lambda: client.get_boolean_value("a", True) is False)
    finally:
        provider.shutdown()
        manager.close()
        server.stop()


def test_redis_back_empty_stays_stale_until_the_document_is_restored(redis_server, tmp_path, impl):
    """Restarted without persistence: connected again, but the store lost its document
    (the follower keeps the flags and reports it): still STALE; READY once republished."""
    url = redis_server.url + f"?namespace=of2&backoff_max=0.2&cache={tmp_path / 'c.msgpack'}"
    manager = _manager(url, tmp_path, impl)
    provider = CfgcoreProvider(manager.engine)
    try:
        manager._live.update(_set("a", "on"), source="test")
        client, events = _client(provider)
        redis_server.kill()
        assert wait_for(lambda: ProviderEvent.PROVIDER_STALE in _kinds(events))
        redis_server.start()  # empty
        assert wait_for(lambda: manager.store.connected and manager._live.last_error is not None)
        assert wait_for(lambda: len(events) >= 2)
        assert ProviderEvent.PROVIDER_READY not in _kinds(events)
        assert client.get_provider_status() == ProviderStatus.STALE
        assert "lost its flag document" in events[-1][1].message
        assert client.get_boolean_value("a", False) is True

        from cfgcore.runtime.redis_store import RedisFlagStore

        with RedisFlagStore(url) as repair:
            repair.update(_set("a", "off"), force=True)
        assert wait_for(lambda: ProviderEvent.PROVIDER_READY in _kinds(events))
        assert client.get_provider_status() == ProviderStatus.READY
        assert client.get_boolean_value("a", True) is False
    finally:
        provider.shutdown()
        manager.close()


def test_a_follower_that_goes_quiet_is_stale(redis_server, tmp_path, impl):
    """Connected, but Redis has confirmed nothing for longer than max_staleness beyond
    the poll interval (a follower stuck in a listener): STALE; its next confirmation
    makes it READY again. (The quiet spell is made by moving the confirmation time
    back, as a stuck follower thread would leave it.)"""
    url = redis_server.url + "?namespace=of3&poll=0.2&cache=off"
    manager = _manager(url, tmp_path, impl)
    provider = CfgcoreProvider(manager.engine, max_staleness=5)
    try:
        client, events = _client(provider)
        assert wait_for(lambda: manager.store.connected)
        store = manager.store
        stuck = store._lock  # the follower's next catch-up waits on it: it is stuck
        with stuck:
            store.confirmed_at = time.monotonic() - 60
            assert wait_for(lambda: ProviderEvent.PROVIDER_STALE in _kinds(events))
            stale = next(d for e, d in events if e == ProviderEvent.PROVIDER_STALE)
            assert "has not confirmed" in stale.message
            assert client.get_provider_status() == ProviderStatus.STALE
        assert wait_for(lambda: ProviderEvent.PROVIDER_READY in _kinds(events))
        assert client.get_provider_status() == ProviderStatus.READY
    finally:
        provider.shutdown()
        manager.close()


def test_max_staleness_must_be_a_positive_number(make):
    engine = make({"flags": {"a": {"default": "on"}}})
    for bad in (0, -1, float("nan")):
        with pytest.raises(ValueError, match="max_staleness"):
            CfgcoreProvider(engine, max_staleness=bad)


def test_a_process_started_while_redis_is_down_is_stale_until_it_follows(
    redis_binary, tmp_path, impl
):
    """Redis unreachable at start: the manager serves the cache file, and the provider
    says STALE (the cache may be old), not READY; READY once the follower reaches
    Redis."""
    server = RedisServer(str(tmp_path / "redis"), args=DURABLE).start()
    cache = tmp_path / "cache.msgpack"
    url = server.url + f"?namespace=of4&backoff_max=0.2&cache={cache}"
    first = _manager(url, tmp_path, impl)
    try:
        first._live.update(_set("a", "on"), source="test")
        assert wait_for(lambda: cache.exists())
    finally:
        first.close()
    server.kill()
    manager = _manager(url, tmp_path, impl)
    provider = CfgcoreProvider(manager.engine)
    try:
        assert manager.store.serving_cache and manager.is_feature_enabled("a")
        domain = f"cfgcore-audit2-fleet-{next(_domains)}"
        api.set_provider_and_wait(provider, domain=domain)
        client = api.get_client(domain)
        assert wait_for(lambda: client.get_provider_status() == ProviderStatus.STALE)
        assert client.get_boolean_value("a", False) is True
        server.start()
        assert wait_for(lambda: client.get_provider_status() == ProviderStatus.READY)
        assert not manager.store.serving_cache
    finally:
        provider.shutdown()
        manager.close()
        server.stop()


def test_a_key_replaced_then_restored_as_it_was_is_ready_again(redis_server, tmp_path, impl):
    """Another program replaces the key (STALE: the flag set refuses it and keeps its
    flags), then the hash is restored byte for byte (DUMP/RESTORE): no new version is
    written, yet the refusal is over: READY, and health no longer warns."""
    url = redis_server.url + f"?namespace=of5&poll=0.1&cache={tmp_path / 'c.msgpack'}"
    manager = _manager(url, tmp_path, impl)
    provider = CfgcoreProvider(manager.engine)
    try:
        manager._live.update(_set("a", "on"), source="test")
        client, events = _client(provider)
        r = redis_server.client()
        saved = r.dump("{of5}:flags")
        r.delete("{of5}:flags")
        r.set("{of5}:flags", "not a document")
        assert wait_for(lambda: client.get_provider_status() == ProviderStatus.STALE)
        assert "holds a Redis string" in str(manager._live.last_error)
        r.delete("{of5}:flags")
        r.restore("{of5}:flags", 0, saved)
        assert wait_for(lambda: client.get_provider_status() == ProviderStatus.READY)
        assert manager._live.last_error is None and manager.store.last_error is None
        flags = next(c for c in manager.health().readiness if c.name == "flags")
        assert flags.status == "ok"
        assert client.get_boolean_value("a", False) is True
    finally:
        provider.shutdown()
        manager.close()


def test_a_follower_that_cannot_apply_a_newer_version_is_stale_until_it_does(
    redis_server, tmp_path, impl
):
    """A listener of the store fails on a new version (a bug, MemoryError): the
    process keeps serving the older version and retries at every poll. Until it
    applies it, the provider is STALE ("behind"), then READY."""
    url = redis_server.url + "?namespace=of6&poll=0.1&cache=off"
    manager = _manager(url, tmp_path, impl)
    provider = CfgcoreProvider(manager.engine)
    failing = {"on": True}

    def flaky(doc):
        if failing["on"] and doc.version >= 2:
            raise RuntimeError("listener bug")

    try:
        manager._live.update(_set("a", "on"), source="test")
        manager.store.watch(flaky)
        client, events = _client(provider)
        from cfgcore.runtime.redis_store import RedisFlagStore

        with RedisFlagStore(url) as writer:
            writer.update(_set("a", "off"))
        assert wait_for(lambda: ProviderEvent.PROVIDER_STALE in _kinds(events))
        assert client.get_provider_status() == ProviderStatus.STALE
        stale = next(d for e, d in events if e == ProviderEvent.PROVIDER_STALE)
        assert stale.metadata["stale_because"] == "behind" and "version 2" in stale.message
        failing["on"] = False  # the next retry applies it
        assert wait_for(lambda: client.get_provider_status() == ProviderStatus.READY)
        assert manager.store.failing_version is None
        assert client.get_boolean_value("a", True) is False
    finally:
        provider.shutdown()
        manager.close()
