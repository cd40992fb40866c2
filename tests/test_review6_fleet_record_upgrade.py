"""The floor key's epoch record does not refuse documents the fleet means to serve.

After a loss and its repair (``cfgcore publish``), the record stays beside the floor.
Writes of the previous release's processes during a rolling upgrade (their script keeps
the epoch and forced fields), new processes and writers of this release, and several
processes raising the floor at once (each with the epoch it served) must all go on
taking and building on the published epoch. Real redis-server; the previous release's
write script is the one shipped (tests/test_audit5_fleet_epoch.py).
"""

from __future__ import annotations

import threading

import pytest

from cfgcore.runtime.redis_store import RedisFlagStore
from cfgcore.snapshot import Flag, Snapshot
from tests.redis_server import wait_for
from tests.test_audit5_fleet_epoch import NS, add, names, old_release_write

FLOOR, RECORD = f"{{{NS}}}:flags:floor", f"{{{NS}}}:flags:floor:epoch"


@pytest.fixture
def url(redis_server):
    return redis_server.url + f"?namespace={NS}"


def test_old_release_writes_after_a_repair_are_taken(redis_server, url, tmp_path):
    r = redis_server.client()
    a = RedisFlagStore(url + f"&poll=0.05&cache={tmp_path / 'a.msgpack'}")
    errors: list[Exception] = []
    docs: list = []
    try:
        a.read()
        a.watch(docs.append, on_error=errors.append)
        a.update(add("keep_a"))
        a.update(add("keep_b"))
        r.delete(f"{{{NS}}}:flags")  # the document alone is lost (evicted, deleted)
        wait_for(lambda: errors)
        assert r.get(RECORD) == f"2 {a._epoch}".encode()
        with RedisFlagStore(url + "&cache=off") as ops:
            _, pub = ops.update(
                lambda _: Snapshot(flags={"keep_a": Flag(default="on")}), force=True
            )
        wait_for(lambda: a.version == 3)
        # an old process writes on the published document, twice
        assert old_release_write(redis_server, ["keep_a", "old_b"]) == 4
        assert old_release_write(redis_server, ["keep_a", "old_b", "old_c"]) == 5
        wait_for(lambda: a.version == 5)
        assert names(docs[-1].snapshot) == ["keep_a", "old_b", "old_c"]
        with RedisFlagStore(url + "&cache=off") as fresh:
            doc = fresh.read()
            assert doc.version == 5 and doc.epoch == pub.epoch and doc.forced
            fresh.update(add("new_d"))
        wait_for(lambda: a.version == 6)
        _, last = a.update(add("new_e"))
        assert last.epoch == pub.epoch and not errors[1:]
    finally:
        a.close()


def test_processes_raising_the_floor_at_once_keep_the_highest_record(redis_server, url):
    """Processes that served versions 1..8 of the same epoch raise the floor at once
    (their scripts run one after another): the floor is the highest, recorded with
    that epoch; a publish is then taken by a new process."""
    with RedisFlagStore(url + "&cache=off") as w:
        for i in range(8):
            w.update(add(f"keep_{i}"))
        epoch = w._epoch
    r = redis_server.client()
    r.delete(f"{{{NS}}}:flags")
    stores = [RedisFlagStore(url + "&cache=off") for _ in range(8)]
    try:
        barrier = threading.Barrier(len(stores))

        def mark(i: int) -> None:
            # (as if each had read version i + 1 from Redis: only an epoch a process
            # read from Redis or wrote is recorded, never one only its cache file names)
            stores[i]._confirmed, stores[i]._confirmed_epoch = i + 1, epoch
            barrier.wait()
            stores[i]._mark_lost(stores[i]._client, i + 1, epoch)

        threads = [threading.Thread(target=mark, args=(i,)) for i in range(len(stores))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert r.get(FLOOR) == b"8" and r.get(RECORD) == f"8 {epoch}".encode()
        with RedisFlagStore(url + "&cache=off") as ops:
            _, pub = ops.update(lambda _: Snapshot(flags={"x": Flag(default="on")}), force=True)
        assert pub.version == 9
        with RedisFlagStore(url + "&cache=off") as fresh:
            assert fresh.read().version == 9
            fresh.update(add("y"))
    finally:
        for s in stores:
            s.close()
