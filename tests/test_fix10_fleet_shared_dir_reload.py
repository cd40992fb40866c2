"""A hot reload of the shared published directory takes a configuration with its flags.

A process following ``config_source=URL`` materialises each published configuration as
``ENV.json`` in a directory of the state directory that every process of the host
following the URL shares. Another process's follower writes a new version there before
this process's own followers bring it; a hot reload (or a runtime update) of this
process then activated that configuration beside the flags it served, while the flags
published with it were held back for the configuration's own delivery. Now a file this
process did not take itself is confirmed against the store in one transaction: the
stored configuration goes live with the flags stored beside it, in one swap, and any
other (an older one, or one overtaken by a newer publish) is refused while the live pair
keeps serving. Real redis-server, real followers; the other process's write is the same
atomic write of the same bytes its follower makes."""

from __future__ import annotations

import pytest

from cfgcore.config.files import typed_json
from cfgcore.config.manager import ConfigurationManager
from cfgcore.config.published import decode_temporal
from cfgcore.runtime.atomicio import atomic_write
from cfgcore.runtime.redis_store import PublishedConfig, RedisConfigStore, RedisFlagStore
from cfgcore.snapshot import Flag, Snapshot
from tests.waiting import wait_for

ENV = "development"


def _flags(gen: int) -> Snapshot:
    return Snapshot(flags={"gen": Flag(variants={"g": gen}, default="g")})


def _config(gen: int) -> PublishedConfig:
    tree = {"app": {"name": "svc"}, "svc": {"gen": gen}}
    return PublishedConfig(environment=ENV, config=tree, flags=_flags(gen))


def _publish_pair(url: str, gen: int) -> None:
    with RedisConfigStore(url, ENV) as cstore, RedisFlagStore(url) as fstore:
        cstore.publish_with_flags(_config(gen), fstore, lambda _stored: _flags(gen))


def _another_process_writes(m: ConfigurationManager, gen: int) -> None:
    """What another process's follower writes into the shared directory for ``gen``."""
    data = typed_json(decode_temporal(_config(gen).config, "test"))
    atomic_write(m._published.path(ENV), data)


def _pair(m: ConfigurationManager) -> tuple[int, int]:
    snap, flags = m.pinned()
    return snap.config["svc"]["gen"], flags.evaluate("gen").value


@pytest.fixture
def following(redis_server, tmp_path, monkeypatch):
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    url = redis_server.url + "?namespace=shareddir&cache=off"
    _publish_pair(url, 1)
    m = ConfigurationManager(config_source=url, flag_store=url, environment=ENV, environ={})
    m.load_environment_config()
    assert _pair(m) == (1, 1)
    yield url, m
    m.close()


def _while_own_delivery_waits(m, url, gens):
    """Publish the pairs ``gens`` while this process's configuration delivery waits for
    the manager's lock (a slow validation, say); the flag follower takes the last flags
    and holds them back for their configuration. Returns the lock, held."""
    follower = m._flags._live.store
    accepted = follower.stats["accepted"]
    for gen in gens:
        _publish_pair(url, gen)
    assert wait_for(lambda: follower.stats["accepted"] > accepted, timeout=10)
    assert m.flags.evaluate("gen").value == 1  # held back, as before


def test_a_reload_of_another_process_file_takes_it_with_its_flags(following):
    url, m = following
    with m._lock:  # this process's own configuration delivery waits
        _while_own_delivery_waits(m, url, [2])
        _another_process_writes(m, 2)
        assert m.reload() is True
        assert _pair(m) == (2, 2)
        assert m.get("svc.gen") == 2 and m.flags.evaluate("gen").value == 2
    # the own delivery that follows changes nothing, and a runtime update of the
    # file this process now took goes live alone, as always
    m.update_config("svc.extra", 1)
    assert _pair(m) == (2, 2) and m.get("svc.extra") == 1


def test_a_file_that_is_not_the_stored_configuration_is_refused(following):
    url, m = following
    with m._lock:
        _while_own_delivery_waits(m, url, [2, 3])
        _another_process_writes(m, 2)  # overtaken by the publish of 3 already
        assert m.reload() is False
        assert "written by another process" in str(m.last_error)
        assert _pair(m) == (1, 1)
    # the own follower's delivery brings the stored pair
    assert wait_for(lambda: _pair(m) == (3, 3), timeout=10)
