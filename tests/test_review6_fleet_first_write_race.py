"""Two processes of one host writing the first document of a new store at once.

A writer that reads an empty store checks its host's cache file (shared by every
process of the host) to tell a new store from one that lost its document. When
another process's first write lands between the read and that check, and a follower
of the host has cached it, the cache says a version was served while the writer's
read said empty: the writer refused ("the store lost its flag document") on a store
that lost nothing (seen once in CI, test_fleet_processes' concurrent writers). The
writer now reads again before declaring a loss.

Real Redis; the interleaving is made by running the other process's write (and the
cache file it leaves) at the moment the writer looks at its cache file.
"""

from __future__ import annotations

from cfgcore.runtime.redis_store import RedisFlagStore
from cfgcore.snapshot import Flag, Snapshot


def _add(name):
    def change(snap):
        return Snapshot(flags={**snap.flags, name: Flag(default="on")})

    return change


def test_a_first_write_landing_between_the_read_and_the_cache_check_is_no_loss(
    redis_server, tmp_path
):
    cache = tmp_path / "host-cache.msgpack"
    url = redis_server.url + f"?namespace=race&cache={cache}"
    writer = RedisFlagStore(url)
    other = RedisFlagStore(url)  # another process of this host: same cache file
    try:
        looked = []
        real = writer._cache_version

        def cache_version_after_the_other_write():
            if not looked:
                looked.append(True)
                other.update(_add("theirs"))  # the other process's first write...
                other._write_cache(other.read())  # ...cached by the host's follower
            return real()

        writer._cache_version = cache_version_after_the_other_write
        old, new = writer.update(_add("mine"))
        assert looked and old.version >= 1 and new.version == old.version + 1
        assert set(new.snapshot.flags) >= {"theirs", "mine"}  # built on theirs
        assert writer.last_error is None
    finally:
        writer.close()
        other.close()


def test_an_empty_store_with_a_served_version_in_the_cache_is_still_a_loss(redis_server, tmp_path):
    import pytest

    from cfgcore.errors import ConfigError

    cache = tmp_path / "host-cache.msgpack"
    url = redis_server.url + f"?namespace=lost&cache={cache}"
    first = RedisFlagStore(url)
    try:
        first.update(_add("a"))
        first._write_cache(first.read())
        first._client.delete(first.key)  # Redis lost it
    finally:
        first.close()
    writer = RedisFlagStore(url)
    try:
        with pytest.raises(ConfigError, match="lost its flag document"):
            writer.update(_add("b"))
    finally:
        writer.close()
