"""The host's shared cache file never goes back to an older version, seventh audit.

The processes of a host share a store's cache file (the same default path). Each wrote
every version it accepted unless it had written that version itself, so a lagging
process (still applying version 1 when another had cached version 2) put the older
version back, and a process started while Redis was unreachable served it. A process
now leaves a cache file that holds its document or a newer version of the store's.

Real redis-server; the lagging process's late write is its follower's own call.
"""

from __future__ import annotations

from cfgcore.runtime.redis_store import RedisFlagStore
from cfgcore.snapshot import Flag, Snapshot
from tests.redis_server import wait_for


def _doc(default: str) -> Snapshot:
    return Snapshot(flags={"beta": Flag(default=default, variants={"on": True, "off": False})})


def test_a_lagging_process_does_not_put_an_older_version_back(redis_server, tmp_path):
    cache = tmp_path / "host.msgpack"
    url = f"{redis_server.url}?namespace=host&cache={cache}"
    writer = RedisFlagStore(f"{redis_server.url}?namespace=host&cache=off")
    ahead, lagging = RedisFlagStore(url), RedisFlagStore(url)
    try:
        _, v1 = writer.update(lambda _: _doc("off"))
        first = lagging.read()  # the lagging process took version 1...
        ahead.read()
        ahead.watch(lambda d: None)
        _, v2 = writer.update(lambda _: _doc("on"))
        wait_for(lambda: ahead._cached == v2.version)
        lagging._write_cache(first)  # ...and caches it only now
        assert lagging.read_cache().version == v2.version
        assert ahead.read_cache().checksum == v2.checksum
        assert v1.version < v2.version
    finally:
        for s in (writer, ahead, lagging):
            s.close()


def test_a_newer_version_still_replaces_the_file(redis_server, tmp_path):
    cache = tmp_path / "host.msgpack"
    url = f"{redis_server.url}?namespace=host2&cache={cache}"
    writer = RedisFlagStore(f"{redis_server.url}?namespace=host2&cache=off")
    a, b = RedisFlagStore(url), RedisFlagStore(url)
    try:
        writer.update(lambda _: _doc("off"))
        a.read()
        a.watch(lambda d: None)
        wait_for(lambda: a._cached == 1)
        b.read()
        b.watch(lambda d: None)
        _, v2 = writer.update(lambda _: _doc("on"))
        wait_for(lambda: a._cached == 2 and b._cached == 2)
        assert a.read_cache().checksum == v2.checksum
    finally:
        for s in (writer, a, b):
            s.close()
