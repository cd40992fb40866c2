"""A refused fleet document is read once, not on every poll.

While a follower refuses the store's document (another epoch: the store was re-created;
a document that does not decode or that the flag set refuses; a version older than the
one served), every poll used to download the whole document again, to refuse it again:
~5.6 MB/s out of Redis at 10,000 followers of a large document. Now a poll that finds
the refused document still there costs a few bytes, and a new document after the
refusal is still read and taken. Measured with the real server's own counters (INFO
stats, commandstats), not with time.
"""

from __future__ import annotations

import hashlib

import msgspec
import pytest

from cfgcore.errors import ConfigError
from cfgcore.runtime.redis_store import RedisFlagStore
from cfgcore.snapshot import Flag, Snapshot, encode_snapshot
from tests.redis_server import wait_for

NS = "rr"
KEY = "{rr}:flags"


def big(prefix: str):
    def change(snap: Snapshot) -> Snapshot:
        flags = {f"{prefix}_{i}": Flag(default="on", description="d" * 400) for i in range(600)}
        return msgspec.structs.replace(snap, flags=flags)

    return change


def only(name: str):
    return lambda snap: msgspec.structs.replace(snap, flags={name: Flag(default="on")})


def counters(r) -> tuple[int, int]:
    sent = r.info("stats")["total_net_output_bytes"]
    scripts = r.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0)
    return sent, scripts


def polls_cost(r, *, polls: int = 20) -> int:
    """Bytes Redis sent while the follower ran at least ``polls`` read scripts."""
    sent0, scripts0 = counters(r)
    # (counted sparingly: INFO's own replies count as sent)
    wait_for(lambda: counters(r)[1] >= scripts0 + polls, every=0.25)
    return counters(r)[0] - sent0


@pytest.fixture
def url(redis_server):
    return redis_server.url + f"?namespace={NS}"


@pytest.fixture
def follower(url, tmp_path):
    """A follower polling every 50 ms with its own cache file, its deliveries in
    ``.docs`` and reports in ``.errors``; ``.refuse`` names flags its listener refuses
    (as the live flag set refuses a document that does not compile)."""
    store = RedisFlagStore(url + f"&poll=0.05&cache={tmp_path / 'f.msgpack'}")
    store.docs, store.errors, store.refuse = [], [], set()  # type: ignore[attr-defined]

    def listener(doc) -> None:
        bad = store.refuse & set(doc.snapshot.flags)  # type: ignore[attr-defined]
        if bad:
            raise ConfigError(f"refused: {sorted(bad)}")
        store.docs.append(doc)  # type: ignore[attr-defined]

    yield store, listener
    store.close()


def start(follower, writer: RedisFlagStore) -> RedisFlagStore:
    store, listener = follower
    writer.update(big("a"))
    store.read()
    store.watch(listener, on_error=store.errors.append)
    wait_for(lambda: store.connected and store._cached == store.version)
    return store


def size(r) -> int:
    n = r.hstrlen(KEY, "data")
    assert n > 200_000
    return n


def test_a_recreated_store_is_read_once_and_a_forced_publish_is_taken(redis_server, url, follower):
    r = redis_server.client()
    with RedisFlagStore(url + "&cache=off") as writer:
        f = start(follower, writer)
    # The store re-created by a process that never saw it: its own first write on an
    # empty store (made elsewhere, then put in place in one step, so that no poll of
    # the follower sees the store empty in between).
    with RedisFlagStore(redis_server.url + "?namespace=elsewhere&cache=off") as fresh:
        fresh.update(big("b"))
    r.restore(KEY, 0, r.dump("{elsewhere}:flags"), replace=True)
    r.publish("{rr}:flags:changes", "1 x")
    wait_for(lambda: f.errors)
    assert "re-created" in str(f.errors[0]) and f.version == 1
    # every poll of the refused document: a few bytes, not the document again (each
    # poll sent all of it before)
    assert polls_cost(r) < size(r) // 2
    assert len(f.errors) == 1 and f.docs == []
    # the repair (what cfgcore publish does: a forced write) is read and taken
    with RedisFlagStore(url + "&cache=off") as publisher:
        publisher.update(only("restored"), force=True)
    wait_for(lambda: f.docs and set(f.docs[-1].snapshot.flags) == {"restored"})


def test_a_document_the_listener_refuses_is_read_once_and_the_next_is_taken(
    redis_server, url, follower
):
    r = redis_server.client()
    with RedisFlagStore(url + "&cache=off") as writer:
        f = start(follower, writer)
        f.refuse.add("c_0")
        writer.update(big("c"))  # version 2: refused by the listener
        wait_for(lambda: f.stats["rejected"] == 1)
        assert polls_cost(r) < size(r) // 2
        assert f.version == 1 and f.stats["rejected"] == 1
        writer.update(only("next"))  # version 3
        wait_for(lambda: f.version == 3)
    assert set(f.docs[-1].snapshot.flags) == {"next"}


def test_a_corrupt_document_is_read_once_and_a_repair_is_taken(redis_server, url, follower):
    r = redis_server.client()
    with RedisFlagStore(url + "&cache=off") as writer:
        f = start(follower, writer)
    nine = Snapshot(flags={f"d_{i}": Flag(default="on") for i in range(9)})
    data = encode_snapshot(nine, "msgpack")
    # version 2 whose checksum does not match its data (damaged, or written by hand)
    r.hset(KEY, mapping={"version": 2, "checksum": "0" * 64})
    r.publish("{rr}:flags:changes", "2 x")
    wait_for(lambda: f.errors)
    assert "checksum mismatch in version 2" in str(f.errors[0])
    assert polls_cost(r) < size(r) // 2
    # repaired by hand (data and checksum of version 2 put right): read again, taken
    r.hset(KEY, mapping={"data": data, "checksum": hashlib.sha256(data).hexdigest()})
    wait_for(lambda: f.version == 2)
    assert len(f.docs[-1].snapshot.flags) == 9 and len(f.errors) == 1


def test_an_older_version_is_read_once_and_a_newer_write_is_taken(redis_server, url, follower):
    r = redis_server.client()
    with RedisFlagStore(url + "&cache=off") as writer:
        f = start(follower, writer)
        writer.update(big("e"))
        wait_for(lambda: f.version == 2)
        r.hset(KEY, "version", 1)  # writes lost in a failover: the store went back
        wait_for(lambda: f.errors)
        assert "older than the 2 served" in str(f.errors[0])
        assert polls_cost(r) < size(r) // 2
        assert f.stats["backwards"] == 1 and f.version == 2
        writer.update(only("after"))  # numbered above the floor the follower raised
    wait_for(lambda: f.version == 3)
    assert set(f.docs[-1].snapshot.flags) == {"after"}


def test_a_manager_refusing_a_document_that_does_not_compile_reads_it_once(
    redis_server, url, tmp_path
):
    from cfgcore.experiments.dynamic import DynamicConfigurationManager

    r = redis_server.client()
    m = DynamicConfigurationManager(
        store=url + f"&poll=0.05&cache={tmp_path / 'm.msgpack'}", log_exposures=False
    )
    try:
        with RedisFlagStore(url + "&cache=off") as writer:
            writer.update(big("a"))
            wait_for(lambda: m.store.version == 1 and m.store._cached == 1)

            def broken(snap: Snapshot) -> Snapshot:  # a default no variant has
                flags = {**big("g")(snap).flags, "g_0": Flag(default="nope")}
                return msgspec.structs.replace(snap, flags=flags)

            writer.update(broken)
            wait_for(lambda: any("g_0" in x for x in m.health().reasons))
            assert polls_cost(r) < size(r) // 2
            assert m.store.version == 1 and "a_0" in m.snapshot.flags
            writer.update(only("fixed"))
        wait_for(lambda: m.store.version == 3)
        assert "fixed" in m.snapshot.flags and not any("g_0" in x for x in m.health().reasons)
    finally:
        m.close()
