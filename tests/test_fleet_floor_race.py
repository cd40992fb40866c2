"""The floor a process records when it finds the document gone is the highest version
it knows at that moment, not the one its follower read before a write of its own.

Seen under load (tests/test_review6_fleet_lost_publish_forced.py): the follower's poll
read the version it served (1), this process then wrote 2, Redis was flushed, and the
poll recorded 1 as the floor. A repair numbered 2 would then collide with the 2 this
process holds. Real redis-server; the race is taken at the method that records it.
"""

from __future__ import annotations

import msgspec
import pytest

from cfgcore.runtime.redis_store import RedisFlagStore
from cfgcore.snapshot import Flag, Snapshot

NS = "flr"
FLOOR, RECORD = "{flr}:flags:floor", "{flr}:flags:floor:epoch"


def add(name: str):
    return lambda s: msgspec.structs.replace(s, flags={**s.flags, name: Flag(default="on")})


@pytest.fixture
def url(redis_server):
    return redis_server.url + f"?namespace={NS}"


def test_a_floor_read_before_this_processes_write_is_raised_to_it(redis_server, url, tmp_path):
    r = redis_server.client()
    store = RedisFlagStore(url + f"&cache={tmp_path / 'a.msgpack'}")
    try:
        store.update(lambda _: Snapshot(flags={"seeded": Flag(default="on")}), force=True)
        served_by_poll = store.read().version  # what a poll read: 1
        _, written = store.update(add("more"))  # then this process wrote 2
        assert (served_by_poll, written.version) == (1, 2)
        r.flushall()
        store._mark_lost(store._client, served_by_poll, written.epoch)  # the poll, late
        assert r.get(FLOOR) == b"2"
        assert r.get(RECORD) == f"2 {written.epoch}".encode()
    finally:
        store.close()


def test_a_floor_above_what_this_process_knows_is_kept(redis_server, url, tmp_path):
    r = redis_server.client()
    store = RedisFlagStore(url + f"&cache={tmp_path / 'a.msgpack'}")
    try:
        _, doc = store.update(lambda _: Snapshot(flags={"a": Flag(default="on")}), force=True)
        r.flushall()
        store._mark_lost(store._client, 7, doc.epoch)  # a cache file's higher version
        assert r.get(FLOOR) == b"7" and r.get(RECORD) == f"7 {doc.epoch}".encode()
    finally:
        store.close()
