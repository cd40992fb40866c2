"""The fleet's epoch recorded beside the floor key.

After Redis loses its data, nothing of the old store survives in Redis: a process that
starts with no cache file cannot tell a re-created store from a new one, and the first
write of such a process (before any process of the old fleet looked) cannot be told
either. But as soon as a process that served the old epoch sees the store (the
document gone, or one of another epoch), it raises the floor key and now records beside
it the epoch it served at that version (``{NS}:flags:floor:epoch``, "VERSION EPOCH").
From then on every process, a new one and the one that re-created the store included,
refuses to serve or build on a document of another epoch that no forced write began,
until ``cfgcore publish`` (a forced write) gives the fleet a document to take. A floor
raised later without a record (an earlier release's process) voids the record: the
store is then judged as before. Real redis-server.
"""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfgcore.errors import ConfigError
from cfgcore.runtime.redis_store import RedisFlagStore
from cfgcore.snapshot import Flag, Snapshot
from tests.fuzz import examples
from tests.redis_server import wait_for

NS = "fe"
KEY, FLOOR, RECORD = "{fe}:flags", "{fe}:flags:floor", "{fe}:flags:floor:epoch"
KEEP = ["keep_a", "keep_b"]


def add(name: str):
    return lambda s: msgspec.structs.replace(s, flags={**s.flags, name: Flag(default="on")})


def flags(*names: str):
    return lambda s: Snapshot(flags={n: Flag(default="on") for n in names})


@pytest.fixture
def url(redis_server):
    return redis_server.url + f"?namespace={NS}"


@pytest.fixture
def open_store(url, tmp_path):
    opened: list[RedisFlagStore] = []

    def open_(name: str | None, poll: float = 30.0) -> RedisFlagStore:
        cache = "off" if name is None else tmp_path / f"{name}.msgpack"
        store = RedisFlagStore(url + f"&poll={poll}&cache={cache}")
        store.docs, store.errors = [], []  # type: ignore[attr-defined]
        opened.append(store)
        return store

    yield open_
    for s in opened:
        s.close()


def follow(store: RedisFlagStore) -> RedisFlagStore:
    store.read()
    store.watch(store.docs.append, on_error=store.errors.append)  # type: ignore[attr-defined]
    return store


def recreate(redis_server, open_store) -> tuple[RedisFlagStore, RedisFlagStore]:
    """A fleet process ``a`` serves epoch A at version 2; Redis loses everything; a new
    process ``b`` (no cache file) writes versions 1 to 3 of epoch B before anyone looked;
    ``a`` hears of version 3 and refuses it. Returns (a, b).

    Epoch A is written by another process, before ``a`` follows: ``a``'s follower is idle
    (nothing of its own announced, its first read done) when Redis loses the data. Had it
    still been taking its own writes' announcements, it could read the store emptied and
    raise the floor before ``b`` wrote anything (``b`` then refused to write over a lost
    document). Its lock, which it takes before each read, is held while ``b`` writes: it
    hears of ``b``'s first version at once, and would otherwise look before the third."""
    writer = open_store(None)
    for name in KEEP:
        writer.update(add(name))
    a = follow(open_store("a"))
    wait_for(lambda: a._cached == 2 and a.connected)
    with a._lock:
        redis_server.client().flushall()
        b = open_store(None)
        for n in ("b_1", "b_2", "b_3"):
            b.update(add(n))
    wait_for(lambda: a.errors)
    return a, b


def test_once_the_fleet_noticed_a_new_process_refuses_the_recreated_store(
    redis_server, url, open_store
):
    a, b = recreate(redis_server, open_store)
    r = redis_server.client()
    assert r.get(FLOOR) == b"2" and r.get(RECORD) == f"2 {a._epoch}".encode()

    # A process started now, without a cache file: refused, naming the record.
    fresh = open_store(None)
    with pytest.raises(ConfigError) as err:
        fresh.read()
    msg = str(err.value)
    assert "re-created after Redis lost its data" in msg
    assert f"the fleet served epoch {a._epoch[:12]}" in msg and FLOOR in msg
    assert "cfgcore publish --store" in msg
    with pytest.raises(ConfigError, match="re-created after Redis lost its data"):
        fresh.update(add("new"))
    # The process that re-created it is refused too, and its follower reports it while
    # it keeps serving its own version.
    b.watch(b.docs.append, on_error=b.errors.append)  # type: ignore[attr-defined]
    wait_for(lambda: b.errors)
    assert "the fleet served epoch" in str(b.errors[0]) and b.version == 3
    with pytest.raises(ConfigError, match="re-created after Redis lost its data"):
        b.update(add("b_4"))
    assert r.hget(KEY, "version") == b"3"  # nothing built on it
    # b's refusal raised the floor to the 3 it serves, the fleet's record with it
    assert r.get(FLOOR) == b"3" and r.get(RECORD) == f"3 {a._epoch}".encode()

    # The repair: a forced write (cfgcore publish) everyone takes and builds on.
    with RedisFlagStore(url + "&cache=off") as publisher:
        _, published = publisher.update(flags(*KEEP), force=True)
    assert published.version == 4
    for s in (a, b):
        wait_for(lambda s=s: s.version == 4)
    assert fresh.read().forced
    _, later = fresh.update(add("after"))
    wait_for(lambda: a.version == later.version == b.version)
    assert sorted(a.docs[-1].snapshot.flags) == sorted([*KEEP, "after"])


def test_after_a_lost_publish_new_processes_refuse_the_older_document(
    redis_server, url, open_store
):
    r = redis_server.client()
    f = follow(open_store("f", poll=0.05))
    with RedisFlagStore(url + "&cache=off") as writer:
        writer.update(add("old_a"))
        saved = r.dump(KEY)
        _, published = writer.update(add("published"), force=True)  # without wait=1
    wait_for(lambda: f.version == 2)
    r.restore(KEY, 0, saved, replace=True)  # the replica had not received it
    wait_for(lambda: f.errors)
    assert r.get(RECORD) == f"2 {published.epoch}".encode()
    # A process started now no longer serves the older document beside a fleet
    # serving the publish (the fleet would be split); nor builds on it.
    fresh = open_store(None)
    with pytest.raises(ConfigError, match="the fleet served epoch"):
        fresh.read()
    with pytest.raises(ConfigError, match="the fleet served epoch"):
        fresh.update(add("new"))
    assert r.hget(KEY, "version") == b"1"


def test_a_lost_document_then_a_publish_is_no_refusal(redis_server, url, open_store):
    """The ordinary repair after Redis restarted empty: the floor records the epoch,
    the publish begins another by force, and every process takes it and builds on it."""
    a = follow(open_store("a", poll=0.05))
    for name in KEEP:
        a.update(add(name))
    r = redis_server.client()
    r.flushall()
    wait_for(lambda: a.errors)  # the store lost its document
    assert r.get(RECORD) == f"2 {a._epoch}".encode()
    with RedisFlagStore(url + "&cache=off") as publisher:
        publisher.update(flags(*KEEP), force=True)
    wait_for(lambda: a.version == 3)
    fresh = open_store(None)
    assert fresh.read().version == 3
    fresh.update(add("x"))
    wait_for(lambda: a.docs[-1].version == 4)  # taken by the fleet
    a.update(add("y"))  # and built on
    assert sorted(fresh.read().snapshot.flags) == [*KEEP, "x", "y"]


def test_a_floor_raised_without_a_record_voids_it(redis_server, open_store):
    a, _ = recreate(redis_server, open_store)
    r = redis_server.client()
    r.set(FLOOR, 7)  # an earlier release's process raised the floor (it records nothing)
    fresh = open_store(None)
    assert fresh.read().version == 3  # judged as before this release: no record
    assert r.get(RECORD) == f"2 {a._epoch}".encode()  # (left, and void)


@settings(
    max_examples=examples(40),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    record=st.one_of(st.binary(max_size=80), st.from_regex(r"\A2 [0-9a-f]{0,70}\Z").map(str.encode))
)
def test_a_damaged_record_is_ignored(redis_server, url, record):
    """Whatever another program left in the record's key: never an error of its own; a
    document is refused only for a record of the floor's version naming an epoch id."""
    r = redis_server.client()
    r.flushall()
    with RedisFlagStore(url + "&cache=off") as store:
        store.update(add("x"))
        r.set(FLOOR, 2)
        r.set(RECORD, record)
        epoch = record[2:].decode("latin-1")
        names_epoch = (
            record[:2] == b"2 "
            and 16 <= len(epoch) <= 64
            and all(c in "0123456789abcdef" for c in epoch)
        )
        try:
            store.read()
            refused = False
        except ConfigError as exc:
            assert "the fleet served epoch" in str(exc)
            refused = True
        assert refused == names_epoch
