"""What a refused document's "read once" compares: everything its refusal depended on.

A follower that refused the stored document is answered 'refused' by the read script,
without the document, while the store holds the same one. Two refusals depend on more
than the version, epoch, checksum and forced mark it compared:

* a document whose data did not match its checksum (or was missing): an operator who
  puts the right data back (same version, same checksum) must see it taken, not
  refused forever;
* a document refused by the floor key's record (the fleet served another epoch): once
  the record is void (the floor raised by an earlier release's process, which records
  nothing), the store is judged as before, and a follower's standing refusal of the
  document it serves ends.

Real redis-server.
"""

from __future__ import annotations

import msgspec
import pytest

from cfgcore.runtime.redis_store import RedisFlagStore
from cfgcore.snapshot import Flag
from tests.redis_server import wait_for

NS = "ri"
KEY, FLOOR, RECORD = "{ri}:flags", "{ri}:flags:floor", "{ri}:flags:floor:epoch"


def add(name: str):
    return lambda s: msgspec.structs.replace(s, flags={**s.flags, name: Flag(default="on")})


def follower(url: str, tmp_path, name: str) -> RedisFlagStore:
    store = RedisFlagStore(url + f"&poll=0.05&cache={tmp_path / name}")
    store.docs, store.errors = [], []  # type: ignore[attr-defined]
    return store


@pytest.mark.parametrize("damage", ["corrupted", "missing"])
def test_data_put_back_by_hand_is_taken(redis_server, tmp_path, damage):
    url = redis_server.url + f"?namespace={NS}"
    r = redis_server.client()
    f = follower(url, tmp_path, "f.msgpack")
    try:
        with RedisFlagStore(url + "&cache=off") as writer:
            writer.update(add("a"))
            f.read()
            writer.update(add("b"))
        good = r.hget(KEY, "data")
        if damage == "missing":
            r.hdel(KEY, "data")
        else:
            r.hset(KEY, "data", b"\x00" * len(good))
        f.watch(f.docs.append, on_error=f.errors.append)
        wait_for(lambda: f.errors)
        assert f.version == 1
        r.hset(KEY, "data", good)  # the operator puts the right data back
        wait_for(lambda: f.version == 2)
        assert sorted(f.docs[-1].snapshot.flags) == ["a", "b"]
        assert len(f.errors) == 1
    finally:
        f.close()


def test_a_refusal_by_a_record_ends_when_the_record_is_void(redis_server, tmp_path):
    url = redis_server.url + f"?namespace={NS}"
    r = redis_server.client()
    c = follower(url, tmp_path, "c.msgpack")
    try:
        with RedisFlagStore(url + "&cache=off") as writer:
            writer.update(add("a"))
            writer.update(add("b"))
        c.read()
        c.watch(c.docs.append, on_error=c.errors.append)
        wait_for(lambda: c.connected)
        # a process of another epoch recorded it beside the floor (as after Redis lost
        # its data and this store was re-created before that process looked)
        r.set(FLOOR, 2)
        r.set(RECORD, "2 " + "ab" * 16)
        wait_for(lambda: c.errors)
        assert "the fleet served epoch abababababab" in str(c.errors[0])
        assert c.last_error is not None
        r.set(FLOOR, 7)  # an earlier release's process raised the floor: the record is void
        wait_for(lambda: c.last_error is None)
        assert c.version == 2
    finally:
        c.close()
