"""Cache files written by the release before the seventh audit, after an upgrade.

887dfde gave a published configuration's cache file a path of its own
(``ROOT.config:ENV.EXT`` beside the ``cache=ROOT.EXT`` of the store URL) and a record of
its document. The previous release wrote every document of the URL, flags and
published configurations, to the given path itself, without that record:

* after the upgrade, a ``RedisConfigStore`` started while Redis is unreachable looked
  only for its new file, which no process had written yet, and refused to start although
  the given path held its own environment's configuration (the previous release served
  it);
* a flag store took a previous-release file there holding a published configuration as
  its own (no record to say otherwise): that configuration's version counted as one the
  flag store had served, and, when higher than the flag document's, the file was judged
  "ahead" and never replaced with the flags, so the next outage found no usable flags.

A previous-release file's document is now told by its contents (a published
configuration names its environment), and a configuration store falls back to the given
path while its own file does not exist yet, for its own environment's document only.

Real redis-server, killed to make it unreachable.
"""

from __future__ import annotations

import msgspec
import pytest

from cfgcore.errors import ConfigError
from cfgcore.runtime.redis_store import PublishedConfig, RedisConfigStore, RedisFlagStore
from cfgcore.snapshot import Flag, Snapshot
from tests.redis_server import wait_for

DOWN = "&socket_connect_timeout=0.5"


def _write_as_previous_release(path, store, doc) -> None:
    """The cache file as the release before 887dfde wrote it: no 'document' field."""
    blob = {
        "url": store.url,
        "version": doc.version,
        "checksum": doc.checksum,
        "writer": dict(doc.writer),
        "data": doc.data,
        "epoch": doc.epoch,
        "forced": doc.forced,
    }
    path.write_bytes(msgspec.msgpack.encode(blob))


def _publish(url: str, env: str, times: int = 1):
    with RedisConfigStore(url, env) as store:
        for i in range(times):
            doc = PublishedConfig(environment=env, config={"db": {"host": f"{env}-db"}, "i": i})
            _, new = store.update(lambda _, doc=doc: doc, force=True)
        return store, new


def test_a_configuration_store_serves_the_previous_release_file_after_an_upgrade(
    redis_server, tmp_path
):
    cache = tmp_path / "cache.msgpack"
    url = f"{redis_server.url}?namespace=upgrade&cache={cache}"
    store, new = _publish(url, "production")
    # (this release's publish leaves the configuration in its own file: the previous
    # release wrote none there)
    (tmp_path / "cache.config:production.msgpack").unlink()
    _write_as_previous_release(cache, store, new)  # what the old release left there
    redis_server.kill()
    with RedisConfigStore(url + DOWN, "production") as store:
        assert not (tmp_path / "cache.config:production.msgpack").exists()
        doc = store.read()
        assert doc.version == new.version
        assert doc.snapshot.environment == "production"
        assert doc.snapshot.config["db"] == {"host": "production-db"}
        assert store.serving_cache
    # another environment's configuration in it is never served in its place
    with RedisConfigStore(url + DOWN, "staging") as other:
        with pytest.raises(ConfigError, match="no usable cache file"):
            other.read()
    # nor is a previous-release file of another namespace (one path in two URLs)
    other_ns = f"{redis_server.url}?namespace=elsewhere&cache={cache}{DOWN}"
    with RedisConfigStore(other_ns, "production") as other:
        with pytest.raises(ConfigError, match="no usable cache file"):
            other.read()


def test_a_flag_store_replaces_a_previous_release_file_holding_a_configuration(
    redis_server, tmp_path
):
    cache = tmp_path / "cache.msgpack"
    url = f"{redis_server.url}?namespace=upgrade&cache={cache}"
    store, new = _publish(url, "production", times=3)  # version 3
    with RedisFlagStore(url) as flags:
        flags.update(lambda _: Snapshot(flags={"beta": Flag(default="on")}))  # version 1
    _write_as_previous_release(cache, store, new)  # written last by the old release
    with RedisFlagStore(url) as flags:
        assert flags._cache_version() == 0  # not the configuration's version 3
        doc = flags.read()
        flags.watch(lambda d: None)
        wait_for(lambda: flags._cached == doc.version)
    redis_server.kill()
    with RedisFlagStore(url + DOWN) as flags:
        served = flags.read()  # the flags, from the file it wrote
        assert set(served.snapshot.flags) == {"beta"}
        assert flags.serving_cache


def test_a_previous_release_file_holding_flags_still_serves_flags_and_restores(
    redis_server, tmp_path
):
    cache = tmp_path / "cache.msgpack"
    url = f"{redis_server.url}?namespace=upgrade&cache={cache}"
    with RedisFlagStore(url) as flags:
        _, new = flags.update(lambda _: Snapshot(flags={"beta": Flag(default="on")}))
        _write_as_previous_release(cache, flags, new)
        assert flags._cache_version() == new.version
        assert flags.read_cache(cache).version == new.version  # --flags-from-cache
    redis_server.kill()
    with RedisFlagStore(url + DOWN) as flags:
        assert set(flags.read().snapshot.flags) == {"beta"}
    with RedisConfigStore(url + DOWN, "production") as store:
        with pytest.raises(ConfigError, match="no usable cache file"):
            store.read()  # flags are no configuration
