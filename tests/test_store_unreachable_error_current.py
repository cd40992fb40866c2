"""A Redis flag store's ``last_error`` stops saying Redis is unreachable once it is read.

``read()`` with Redis down serves the cache file and says ``Redis unreachable, serving
the cache file: ...``; the follower says ``connection lost: ...``. Both kept saying it
after Redis answered again (a later read, the follower reconnected), so the store
described an outage long over. A read from Redis now ends that message; a problem
standing before the outage (a document refused and still stored, a write that failed
and was not followed by a later one) is said again, by its own rule. Real
redis-server, stopped and started again (with its data: append-only file)."""

from __future__ import annotations

import logging

import msgspec
import pytest

from cfgcore.dynamic_config import DynamicConfigurationManager
from cfgcore.engine import Engine
from cfgcore.errors import ConfigError
from cfgcore.runtime.redis_store import RedisFlagStore
from cfgcore.snapshot import Flag
from tests.redis_server import RedisServer
from tests.waiting import wait_for

DURABLE = ("--appendonly", "yes", "--appendfsync", "always")  # a restart keeps the data


@pytest.fixture(autouse=True)
def _quiet():
    # Every lost connection and cache read is logged: expected here.
    logging.getLogger("cfgcore.fleet").setLevel(logging.CRITICAL)
    yield
    logging.getLogger("cfgcore.fleet").setLevel(logging.NOTSET)


@pytest.fixture
def server(redis_binary, tmp_path):
    server = RedisServer(str(tmp_path / "redis"), args=DURABLE).start()
    yield server
    server.stop()


def _add(name):
    def change(snap):
        return msgspec.structs.replace(
            snap, flags={**snap.flags, name: Flag(variants={"on": True}, default="on")}
        )

    return change


def test_a_read_that_reaches_redis_again_ends_the_unreachable_message(server, tmp_path):
    url = server.url + f"?namespace=u1&cache={tmp_path / 'cache.msgpack'}"
    with RedisFlagStore(url) as store:
        store.update(_add("a"))
        server.kill()
        assert store.read().version == 1
        assert store.serving_cache
        assert str(store.last_error).startswith("Redis unreachable, serving the cache file")
        server.start()
        assert store.read().version == 1
        assert not store.serving_cache
        assert store.last_error is None, store.last_error


def test_a_failed_write_before_the_outage_ends_with_the_read(server, tmp_path):
    # (the read gives a document: a write's failure is over then, as without an outage)
    url = server.url + f"?namespace=u2&cache={tmp_path / 'cache.msgpack'}"
    with RedisFlagStore(url) as store:
        store.update(_add("a"))
        server.kill()
        with pytest.raises(ConfigError, match="cannot write"):
            store.update(_add("b"))
        assert str(store.last_error).startswith("write failed")
        store.read()
        assert str(store.last_error).startswith("Redis unreachable")
        server.start()
        store.read()
        assert store.last_error is None, store.last_error


def test_a_process_started_while_redis_is_down_says_nothing_once_it_follows(server, tmp_path):
    url = server.url + f"?namespace=u3&backoff_max=0.2&cache={tmp_path / 'cache.msgpack'}"
    first = DynamicConfigurationManager(store=url, state_dir=tmp_path / "s1",
                                        record_usage=False, engine=Engine())  # fmt: skip
    try:
        first._live.update(_add("a"), source="test")
    finally:
        first.close()
    server.kill()
    manager = DynamicConfigurationManager(store=url, state_dir=tmp_path / "s2",
                                          record_usage=False, engine=Engine())  # fmt: skip
    try:
        store = manager.store
        assert store.serving_cache and manager.is_feature_enabled("a")
        assert store.last_error is not None
        server.start()
        assert wait_for(lambda: store.connected)
        assert wait_for(lambda: store.last_error is None), store.last_error
        check = next(c for c in manager.health().readiness if c.name == "flag_store")
        assert check.status == "ok", check
    finally:
        manager.close()


def test_a_document_refused_before_the_outage_is_said_again_after_it(server, tmp_path):
    url = server.url + f"?namespace=u4&poll=0.05&backoff_max=0.2&cache={tmp_path / 'c.msgpack'}"
    manager = DynamicConfigurationManager(store=url, state_dir=tmp_path / "s",
                                          record_usage=False, engine=Engine())  # fmt: skip
    try:
        store = manager.store
        manager._live.update(_add("a"), source="test")
        r = server.client()
        r.delete("{u4}:flags")
        r.set("{u4}:flags", "not a document")  # another program's key: refused
        assert wait_for(lambda: "holds a Redis string" in str(store.last_error))
        refused = store.last_error
        server.kill()
        assert wait_for(lambda: str(store.last_error).startswith("connection lost"))
        server.start()
        assert wait_for(lambda: store.connected)
        # (the follower reads the key at once when it reconnects: still the string)
        assert wait_for(lambda: store.last_error == refused), store.last_error
        assert manager.is_feature_enabled("a")
    finally:
        manager.close()


def test_a_read_while_the_follower_cannot_follow_says_the_followers_problem(redis_binary, tmp_path):
    """The follower cannot subscribe (its user may not use channels) while reads work:
    once Redis answers reads again, the store says why it is not followed (health
    quotes it), not that Redis is unreachable."""
    user = ("--user", "nosub", "on", ">pw", "~*", "+@all", "resetchannels")
    server = RedisServer(str(tmp_path / "redis"), args=(*DURABLE, *user)).start()
    try:
        url = server.url.replace("redis://", "redis://nosub:pw@") + (
            f"?namespace=u5&backoff_max=0.2&cache={tmp_path / 'cache.msgpack'}"
        )
        with RedisFlagStore(url) as store:
            store.update(_add("a"))
            store.watch(lambda doc: None)
            assert wait_for(lambda: "no permissions" in str(store.last_error)), store.last_error
            following = store.last_error
            server.kill()
            store.read()
            assert str(store.last_error).startswith("Redis unreachable")
            server.start()
            assert store.read().version == 1
            assert not store.connected
            assert store.last_error == following
    finally:
        server.stop()
