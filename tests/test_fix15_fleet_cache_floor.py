"""A cache file moved the fleet's floor, fifteenth pass.

The cache file (the document a process serves when Redis is unreachable) is this
host's record of what it served, and a start judged the store by it: a stored document
older than it, or of another epoch, was not served, and the floor key rose to the cache
file's version, with its epoch recorded beside it. Two things were trusted that nothing
had checked:

* the version and epoch were read from the file without its document being checked:
  a damaged or planted file (its data not matching its checksum), which a restore
  refuses to serve, still made a start refuse the store's document (and then fail: no
  cache file to serve) and raised the fleet's floor key to whatever it said (2**53 - 1:
  no process of the fleet could write again);
* a valid file of another store (copied from another host, baked into an image, of a
  Redis at the same URL) recorded its epoch beside the floor key: every other process
  of the fleet, a new one too, then refused the store's real document.

Now a cache file counts only when its document passes the checks a restore makes, and
the epoch recorded beside the floor is only ever one the process read from Redis or
wrote. Real redis-server.
"""

from __future__ import annotations

import shutil

import msgspec
import pytest

from cfgcore.errors import ConfigError
from cfgcore.runtime.redis_store import RedisFlagStore
from tests.fleet_helpers import add, quiet_fleet  # noqa: F401 - autouse fixture

FLOOR, RECORD = "{cf}:flags:floor", "{cf}:flags:floor:epoch"


def _blob(path) -> dict:
    with open(path, "rb") as f:
        return msgspec.msgpack.decode(f.read())


def _put(path, blob: dict) -> None:
    with open(path, "wb") as f:
        f.write(msgspec.msgpack.encode(blob))


@pytest.mark.parametrize("damage", ["checksum", "data"])
def test_a_damaged_cache_file_moves_nothing(redis_server, tmp_path, damage):
    cache = tmp_path / "c.msgpack"
    url = f"{redis_server.url}?namespace=cf&cache={cache}"
    r = redis_server.client()
    with RedisFlagStore(url) as writer:
        writer.update(add("a"))  # version 1, cached
    blob = _blob(cache)
    blob["version"] = 2**53 - 1
    if damage == "checksum":
        blob["checksum"] = "0" * 64
    else:
        blob["data"] = b"\x80"
    _put(cache, blob)
    with RedisFlagStore(url) as store:
        with pytest.raises(ConfigError):
            store.read_cache()  # (a restore refuses it)
        assert store._cache_version() == 0
        assert store.read().version == 1  # the store's document serves
        assert r.get(FLOOR) is None and r.get(RECORD) is None  # the fleet's floor: unmoved
        _, new = store.update(add("b"))
        assert new.version == 2  # nor did its numbering


def test_a_cache_file_of_another_store_does_not_make_the_fleet_refuse(redis_server, tmp_path):
    """A cache file written for the same namespace in another Redis (here: another
    database of the server), at a higher version and of another epoch, copied to this
    host: this host does not build on the store's document (it cannot tell that file
    from one of a store re-created since), but no epoch is recorded beside the floor
    key, so every other process takes the store's document as before. (The floor's
    version rises to the file's: writes are numbered above it, which costs nothing.)"""
    cache = tmp_path / "c.msgpack"
    other_cache = tmp_path / "other.msgpack"
    base = redis_server.url.rsplit("/", 1)[0]
    url = f"{base}/0?namespace=cf&cache={cache}"
    elsewhere = f"{base}/1?namespace=cf&cache={other_cache}"
    r = redis_server.client()
    with RedisFlagStore(elsewhere) as there:
        for name in "wxyz":
            there.update(add(name))  # version 4 of another epoch
    with RedisFlagStore(f"{base}/0?namespace=cf&cache=off") as writer:
        writer.update(add("a"))
        writer.update(add("b"))  # version 2, this store's
    shutil.copy(other_cache, cache)
    with RedisFlagStore(url) as host:
        doc = host.read()  # its cache file's, as before
        assert doc.version == 4 and sorted(doc.snapshot.flags) == list("wxyz")
        with pytest.raises(ConfigError, match="re-created"):
            host.update(add("c"))
        assert r.get(RECORD) is None
    with RedisFlagStore(f"{base}/0?namespace=cf&cache=off") as fresh:
        doc = fresh.read()
        assert doc.version == 2 and sorted(doc.snapshot.flags) == ["a", "b"]
        _, new = fresh.update(add("c"))
        assert new.version > 2 and sorted(new.snapshot.flags) == ["a", "b", "c"]
    assert r.get(RECORD) is None


def test_an_epoch_this_process_read_from_redis_is_recorded(redis_server, tmp_path):
    """What the record is for stays: a process that served an epoch from Redis and
    finds the store re-created records it, and a new process refuses the new one."""
    url = f"{redis_server.url}?namespace=cf&cache={tmp_path / 'c.msgpack'}"
    r = redis_server.client()
    with RedisFlagStore(url) as served:
        served.update(add("a"))
        epoch = served.read().epoch
        r.flushall()
        with RedisFlagStore(f"{redis_server.url}?namespace=cf&cache=off") as new:
            new.update(add("x"))
        with pytest.raises(ConfigError, match="re-created"):
            served.read()
        assert r.get(RECORD) == f"1 {epoch}".encode()
    with RedisFlagStore(f"{redis_server.url}?namespace=cf&cache=off") as fresh:
        with pytest.raises(ConfigError, match="re-created after Redis lost its data"):
            fresh.read()
