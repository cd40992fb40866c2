"""A published configuration (``{NS}:config:ENV``) nested hundreds of levels deep, stored
by another program or by hand (tiny, and within MessagePack's own nesting limit),
against a real redis-server.

The store decoded it and its follower wrote its tree out for the manager, recursing
once per level (``decode_temporal``): a RecursionError. A running manager reported
``version N not applied, retrying`` and read it again at every poll, and a process
starting on it failed with a bare RecursionError. A configuration nested deeper than
every document is held to (``MAX_VALUE_DEPTH``, what the configuration files are held
to as well) is now refused as it is decoded, like a flag document nested too deeply:
the last good configuration keeps serving, reported once, and a start fails with a
ConfigError naming the store and the key path."""

from __future__ import annotations

import hashlib

import msgspec
import pytest

from cfgcore.config.manager import ConfigurationManager
from cfgcore.errors import ConfigError
from cfgcore.runtime.redis_store import PublishedConfig, RedisConfigStore, RedisFlagStore
from cfgcore.snapshot import MAX_VALUE_DEPTH, Snapshot
from tests.waiting import wait_for

ENV = "development"
KEY = "{deep}:config:development"


def published(levels: int) -> PublishedConfig:
    """A configuration whose ``svc`` section holds ``levels`` maps, one in the other."""
    tree: dict = {"app": {"name": "svc"}, "svc": {"gen": levels}}
    node = tree["svc"]
    for _ in range(levels):
        node["d"] = {}
        node = node["d"]
    return PublishedConfig(environment=ENV, config=tree, flags=Snapshot())


def store_by_hand(redis_server, levels: int) -> int:
    """The configuration written into the key as another program would (no checks):
    the next version, its checksum right. Returns that version."""
    r = redis_server.client()
    data = msgspec.msgpack.encode(published(levels))
    version = int(r.hget(KEY, "version") or 0) + 1
    checksum = hashlib.sha256(data).hexdigest()
    r.hset(KEY, mapping={"data": data, "checksum": checksum, "version": version})
    r.publish(KEY + ":changes", f"{version} {checksum}")
    return version


@pytest.fixture
def url(redis_server, tmp_path, monkeypatch):
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    url = redis_server.url + "?namespace=deep&poll=0.2"
    with RedisConfigStore(url, ENV) as cstore, RedisFlagStore(url) as fstore:
        cstore.publish_with_flags(published(1), fstore, lambda _stored: Snapshot())
    return url


@pytest.fixture
def manager(url):
    m = ConfigurationManager(config_source=url, environment=ENV, environ={})
    m.load_environment_config()
    yield m
    m.close()


def test_a_running_manager_refuses_it_and_keeps_serving(redis_server, url, manager, caplog):
    store = manager._published.store(ENV)
    store_by_hand(redis_server, 600)
    assert wait_for(lambda: store.stats["rejected"]), store.stats
    # (said of what keeps serving: a configuration, not flags; logged by the follower's
    # thread just after it counts the refusal)
    said = "rejected version 2, the last good configuration keeps serving"
    assert wait_for(lambda: said in caplog.text), caplog.text
    assert manager.get("svc.gen") == 1
    assert f"nested deeper than {MAX_VALUE_DEPTH} levels" in store.last_error
    assert "svc.d.d.d" in store.last_error
    assert store.stats["failed"] == 0  # refused, not retried at every poll
    # a configuration within the bound is taken next
    store_by_hand(redis_server, MAX_VALUE_DEPTH - 2)
    assert wait_for(lambda: manager.get("svc.gen") == MAX_VALUE_DEPTH - 2)


def test_a_start_on_it_fails_with_a_config_error(redis_server, url):
    store_by_hand(redis_server, 600)
    m = ConfigurationManager(config_source=url, environment=ENV, environ={})
    try:
        with pytest.raises(ConfigError, match=f"nested deeper than {MAX_VALUE_DEPTH} levels"):
            m.load_environment_config()
    finally:
        m.close()


@pytest.mark.parametrize("levels", [MAX_VALUE_DEPTH - 2, MAX_VALUE_DEPTH - 1])
def test_the_bound_is_the_configuration_files_bound(redis_server, url, levels):
    """The deepest configuration the store takes is the deepest one a process builds
    (its files are held to the same depth); one level more is refused by the store."""
    store_by_hand(redis_server, levels)
    m = ConfigurationManager(config_source=url, environment=ENV, environ={})
    try:
        if levels == MAX_VALUE_DEPTH - 2:
            assert m.load_environment_config()["svc"]["gen"] == levels
        else:
            with pytest.raises(ConfigError, match="nested"):
                m.load_environment_config()
    finally:
        m.close()
