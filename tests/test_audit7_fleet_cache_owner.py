"""A cache file serves only the store and document that wrote it, seventh audit.

``cache=PATH`` in a store URL named one file for every store opened with that URL: the
flag document's, and the published configuration of each environment a manager
follows with ``config_source=`` (the same URL, one ``RedisConfigStore`` per
environment). Whichever document was written last was in it, and while Redis was
unreachable a store of another environment served it: production started on
staging's configuration. A flag store given another namespace's file (one path in two
URLs) served that service's flags. Now a published configuration's cache file is its
own (beside the given path, named after the document), a cache file records its
document, and a store refuses one of another document or namespace.

Real redis-server, killed to make it unreachable.
"""

from __future__ import annotations

import pytest

from cfgcore.errors import ConfigError
from cfgcore.runtime.redis_store import PublishedConfig, RedisConfigStore, RedisFlagStore
from cfgcore.snapshot import Flag, Snapshot
from tests.redis_server import wait_for


def _follow_once(store) -> None:
    """Read and follow until the cache file holds the store's document."""
    doc = store.read()
    store.watch(lambda d: None)
    wait_for(lambda: store._cached == doc.version)


def test_each_environment_and_the_flags_keep_their_own_cache_file(redis_server, tmp_path):
    cache = tmp_path / "cache.msgpack"
    url = f"{redis_server.url}?namespace=shared&cache={cache}"
    for env in ("staging", "production"):
        with RedisConfigStore(url, env) as store:
            doc = PublishedConfig(environment=env, config={"db": {"host": f"{env}-db"}})
            store.update(lambda _, doc=doc: doc, force=True)
    with RedisFlagStore(url) as store:
        store.update(lambda _: Snapshot(flags={"beta": Flag(default="on")}))
    opened = [RedisConfigStore(url, "staging"), RedisConfigStore(url, "production")]
    opened.append(RedisFlagStore(url))
    try:
        for store in opened:
            _follow_once(store)
    finally:
        for store in opened:
            store.close()
    assert len({s.cache_path for s in opened}) == 3
    assert opened[2].cache_path == str(cache)  # the flag document's: as given
    redis_server.kill()
    for env in ("staging", "production"):
        with RedisConfigStore(url + "&socket_connect_timeout=0.5", env) as store:
            doc = store.read()  # from its own cache file
            assert doc.snapshot.environment == env
            assert doc.snapshot.config == {"db": {"host": f"{env}-db"}}
    with RedisFlagStore(url + "&socket_connect_timeout=0.5") as store:
        assert set(store.read().snapshot.flags) == {"beta"}


def test_a_cache_file_of_another_document_or_namespace_is_refused(redis_server, tmp_path):
    cache = tmp_path / "one.msgpack"
    with RedisFlagStore(f"{redis_server.url}?namespace=svc-a&cache={cache}") as a:
        a.update(lambda _: Snapshot(flags={"a_only": Flag(default="on")}))
        _follow_once(a)
    redis_server.kill()
    down = "&socket_connect_timeout=0.5"
    with RedisFlagStore(f"{redis_server.url}?namespace=svc-b&cache={cache}{down}") as b:
        with pytest.raises(ConfigError, match="namespace 'svc-a', not 'svc-b'"):
            b.read()
        assert b._cache_version() == 0  # nor is its version one svc-b has seen
    # a published configuration's file given where a flag document's is expected
    env_cache = tmp_path / "env.msgpack"
    env_cache.write_bytes(cache.read_bytes().replace(b"\xa5flags", b"\xa5other"))
    with RedisFlagStore(f"{redis_server.url}?namespace=svc-a&cache={env_cache}{down}") as c:
        with pytest.raises(ConfigError, match="holds the 'other' document, not 'flags'"):
            c.read()
