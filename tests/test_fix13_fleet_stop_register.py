"""Thirteenth round: the guardrail stop register kept fleet-wide. A Redis (fleet) store's
start judged its document against the stops on record on the host (the register beside
its cache file, its audit log) and the document's own records: a brand-new host (an
empty directory, a new container) that started from a fleet document in which the
stopped test was made active again by a tool or a host that never saw the stop (its
guardrail records dropped, or a document from before the stop published again) served
the harmful variant again. The stops in force are now kept in Redis too, beside the
document (``{NS}:flags:guardrail-stops``), written when a stop goes live, changes or
ends, read at every start and whenever a running process judges a fleet document, and
merged with the host's register. A real Redis (tests/redis_server.py), real managers and
the real CLI."""

from __future__ import annotations

import json
import logging
import os

import msgspec
import pytest

from cfgcore.experiments.abtest import GUARDRAIL_STOPPED_AT, RESUMED_AT
from cfgcore.experiments.stops import read_ended, read_stops, stops_path
from tests.conftest import run_cli
from tests.redis_server import wait_for
from tests.test_fix10_exp_guardrail_hold import TEST, _guarded_test
from tests.test_fix12_experiments_fleet_hold import (
    _manager,
    _publish,
    _served,
    _stopped_then_down,
)


def _stripped(before, stopped):
    """The stopped document as a tool that knows nothing of guardrails re-activates
    the test: its record active with the stop's fields dropped, its flag splitting users
    again."""
    meta = {
        k: v
        for k, v in stopped.experiments[TEST].items()
        if k not in ("stopped_reason", "stopped_at", GUARDRAIL_STOPPED_AT, RESUMED_AT)
    }
    meta["status"] = "active"
    return msgspec.structs.replace(
        stopped, flags={**stopped.flags, TEST: before.flags[TEST]},
        experiments={**stopped.experiments, TEST: meta},
    )  # fmt: skip


def _host(base, tmp_path, name):
    """A host's store URL (its own cache file) and state directory, both empty."""
    home = tmp_path / name
    home.mkdir()
    return base + f"&cache={home / 'cache.msgpack'}", home / "state"


def _register(m):
    return read_stops(stops_path(m._live.store, m.audit.path))


@pytest.mark.parametrize("edit", ["put_back", "stripped"])
def test_a_new_host_holds_a_stop_only_the_fleet_recorded(
    redis_server, stores, tmp_path, impl, edit, caplog, capsys
):
    base = redis_server.url + "?namespace=ab&poll=0.1"
    url_a, state_a = _host(base, tmp_path, "a")
    before = _stopped_then_down(url_a, state_a, impl)  # host A's guardrail stopped it
    reader = stores(redis_server.url + "?namespace=ab&cache=off")
    stopped = reader.read().snapshot
    at, record = reader.read_stop_register()[TEST]  # in force fleet-wide
    assert record is not None and record[GUARDRAIL_STOPPED_AT] == at
    assert record == stopped.experiments[TEST]
    # A publisher that never saw the stop makes the test active again.
    bad = before if edit == "put_back" else _stripped(before, stopped)
    published = _publish(stores, url_a, bad)
    # Host B: a new container, nothing on its disk.
    url_b, state_b = _host(base, tmp_path, "b")
    caplog.set_level("ERROR", logger="cfgcore")
    b = _manager(url_b, state_b, impl)
    try:
        assert _served(b) == {"control"}
        assert b.list_ab_tests()[TEST]["status"] == "stopped"
        said = " ".join(r.getMessage() for r in caplog.records)
        assert f"version {published.version}" in said and TEST in said
        errors = [a for a in b.audit.read(b.audit.path) if a.get("kind") == "error"]
        assert errors and f"cfgcore experiment start {TEST}" in json.dumps(errors[-1])
        # Written back with the test stopped: the whole fleet serves the stop.
        stored = reader.read()
        assert stored.version == published.version + 1
        assert stored.snapshot.experiments[TEST]["status"] == "stopped"
        assert TEST in _register(b)  # and B's own register holds it from now on
        # The explicit resume, from yet another host (the CLI): B follows it.
        url_c, state_c = _host(base, tmp_path, "c")
        code, _out, err = run_cli(
            capsys, "experiment", "start", TEST, "--store", url_c, "--state-dir", str(state_c)
        )
        assert code == 0, err
        wait_for(lambda: "variant_b" in _served(b))
        assert b._live.last_error is None
        wait_for(lambda: TEST not in _register(b))
    finally:
        b.close()
    ended, gone = reader.read_stop_register()[TEST]  # the end, fleet-wide
    assert gone is None and ended >= at
    # B after a restart, a brand-new host, and host A (whose register still held the
    # stop: the fleet's end wins, and clears it) all serve the test again.
    for url, state in ((url_b, state_b), (*_host(base, tmp_path, "d"),), (url_a, state_a)):
        m = _manager(url, state, impl)
        try:
            assert "variant_b" in _served(m) and m._live.last_error is None
            assert TEST not in _register(m)
        finally:
            m.close()


def test_the_host_register_is_written_to_the_fleet_at_start(redis_server, stores, tmp_path, impl):
    """A stop recorded on a host while the fleet's register could not be written (or
    before it existed) is written to it at that host's next start; a new host then
    holds it."""
    base = redis_server.url + "?namespace=ab&poll=0.1"
    url_a, state_a = _host(base, tmp_path, "a")
    before = _stopped_then_down(url_a, state_a, impl)
    redis_server.client().delete("{ab}:flags:guardrail-stops")
    m = _manager(url_a, state_a, impl)  # A's start: its register, copied to the fleet's
    m.close()
    reader = stores(redis_server.url + "?namespace=ab&cache=off")
    assert reader.read_stop_register()[TEST][1] is not None
    _publish(stores, url_a, before)
    url_b, state_b = _host(base, tmp_path, "b")
    b = _manager(url_b, state_b, impl)
    try:
        assert _served(b) == {"control"}
    finally:
        b.close()


def test_a_running_host_that_missed_the_stop_refuses_a_document_serving_it(
    redis_server, stores, tmp_path, impl
):
    """A running process judges each fleet document against the fleet's register too:
    one that never served the stop (it missed the document holding it) refuses a
    document that serves the test's variants."""
    base = redis_server.url + "?namespace=ab&poll=0.1"
    url_b, state_b = _host(base, tmp_path, "b")
    b = _manager(url_b, state_b, impl)
    try:
        assert b.create_ab_test(_guarded_test())
        assert "variant_b" in _served(b)
        reader = stores(redis_server.url + "?namespace=ab&cache=off")
        live = reader.read().snapshot
        # Another host's guardrail stopped it; B never saw that document.
        meta = {**live.experiments[TEST], "status": "stopped", "stopped_reason": "guardrail: x"}
        meta[GUARDRAIL_STOPPED_AT] = 2e9
        reader.write_stop_register({TEST: (2e9, meta)})
        # A publisher's next document serves the test as B does.
        changed = msgspec.structs.replace(live, metadata={**live.metadata, "note": "x"})
        _publish(stores, url_b, changed)
        wait_for(lambda: b._live.last_error is not None)
        assert TEST in str(b._live.last_error)
        assert f"cfgcore experiment start {TEST}" in str(b._live.last_error)
    finally:
        b.close()


def test_redis_down_at_start_does_not_block_it(redis_server, stores, tmp_path, impl, caplog):
    """Redis unreachable at a start of host B (which held the stop at its first start
    from the fleet's register): its own register still holds the stop, its cache file
    serves, and the fleet's register costs a warning, not the start."""
    base = redis_server.url + "?namespace=ab&poll=0.1&socket_connect_timeout=0.5"
    url_a, state_a = _host(base, tmp_path, "a")
    before = _stopped_then_down(url_a, state_a, impl)
    _publish(stores, url_a, before)
    url_b, state_b = _host(base, tmp_path, "b")
    b = _manager(url_b, state_b, impl)
    try:
        assert _served(b) == {"control"}
        wait_for(lambda: os.path.exists(b._live.store.cache_path))  # (its follower's)
    finally:
        b.close()
    redis_server.stop()
    caplog.set_level(logging.WARNING, logger="cfgcore")
    b = _manager(url_b, state_b, impl)
    try:
        assert b._live.store.serving_cache
        assert _served(b) == {"control"}
        assert TEST in _register(b)
    finally:
        b.close()
    said = " ".join(r.getMessage() for r in caplog.records)
    assert "fleet's guardrail stop register" in said


def test_the_fleet_register_orders_stops_and_ends(redis_server, stores):
    """One atomic script per write: an entry replaces the stored one only when later, or
    as late and an end (a resume at the stop's time ends it); a value that is no entry,
    or a key of another type, is replaced; unreadable entries are passed over."""
    store = stores(redis_server.url + "?namespace=ord&cache=off")
    rec = {"status": "stopped", GUARDRAIL_STOPPED_AT: 10.0}
    assert store.write_stop_register({"t": (10.0, rec)}) == 1
    assert store.write_stop_register({"t": (5.0, {**rec, GUARDRAIL_STOPPED_AT: 5.0})}) == 0
    assert store.write_stop_register({"t": (9.0, None)}) == 0  # an end before the stop
    assert store.read_stop_register() == {"t": (10.0, rec)}
    assert store.write_stop_register({"t": (10.0, None)}) == 1  # as late: the end wins
    assert store.write_stop_register({"t": (10.0, rec)}) == 0
    assert store.read_stop_register() == {"t": (10.0, None)}
    later = {**rec, GUARDRAIL_STOPPED_AT: 11.0}
    assert store.write_stop_register({"t": (11.0, later), "u": (3.0, rec)}) == 2
    assert store.read_stop_register() == {"t": (11.0, later), "u": (3.0, rec)}
    client = redis_server.client()
    client.hset(store.stops_key, "junk", b"not json")
    assert set(store.read_stop_register()) == {"t", "u"}
    assert store.write_stop_register({"junk": (1.0, rec)}) == 1
    client.delete(store.stops_key)
    client.set(store.stops_key, "a string")
    assert store.write_stop_register({"t": (1.0, rec)}) == 1
    assert store.read_stop_register() == {"t": (1.0, rec)}


def test_retire_deletes_the_fleet_register(redis_server, stores):
    from cfgcore.runtime.redis_store import retire_namespace

    url = redis_server.url + "?namespace=gone&cache=off"
    store = stores(url)
    store.update(lambda snap: snap)
    store.write_stop_register({"t": (1.0, {GUARDRAIL_STOPPED_AT: 1.0})})
    store.close()
    assert b"{gone}:flags:guardrail-stops" in retire_namespace(url)
    assert not redis_server.client().exists("{gone}:flags:guardrail-stops")


@pytest.mark.parametrize("told_by", ["next_change", "next_start"])
def test_an_end_the_fleet_was_not_told_is_told_later(redis_server, stores, tmp_path, impl, told_by):
    """A test deleted while its stop was in force, the fleet's register unreachable for
    that write: this host's register keeps the end, so the test created again under the
    name is served, here and, once the fleet's register is told (by the next change of
    the test, or else the host's next start), by every host; told, the host forgets it."""
    import redis

    base = redis_server.url + "?namespace=ab&poll=0.1"
    url_a, state_a = _host(base, tmp_path, "a")
    _stopped_then_down(url_a, state_a, impl)
    reader = stores(redis_server.url + "?namespace=ab&cache=off")
    url_b, state_b = _host(base, tmp_path, "b")
    b = None
    m = _manager(url_a, state_a, impl)  # alone: a follower would tell the fleet the end
    try:
        store = m._live.store

        def down(_entries):
            raise redis.ConnectionError("down for this write")

        store.write_stop_register = down
        assert m.delete_ab_test(TEST)
        assert reader.read_stop_register()[TEST][1] is not None  # the fleet: still stopped
        assert TEST in read_ended(stops_path(store, m.audit.path))
        if told_by == "next_change":
            del store.write_stop_register
        assert m.create_ab_test(_guarded_test())
        assert "variant_b" in _served(m)
        if told_by == "next_change":
            assert reader.read_stop_register()[TEST][1] is None
            b = _manager(url_b, state_b, impl)  # a host of the fleet
            assert "variant_b" in _served(b) and b._live.last_error is None
        else:
            assert reader.read_stop_register()[TEST][1] is not None
    finally:
        m.close()
        if b is not None:
            b.close()
    m = _manager(url_a, state_a, impl)  # its next start tells the fleet, if not told yet
    try:
        assert reader.read_stop_register()[TEST][1] is None
        assert read_ended(stops_path(m._live.store, m.audit.path)) == {}
    finally:
        m.close()
    url_c, state_c = _host(base, tmp_path, "c")
    for url, state in ((url_b, state_b), (url_c, state_c)):
        h = _manager(url, state, impl)
        try:
            assert "variant_b" in _served(h) and h._live.last_error is None
        finally:
            h.close()


def test_register_entries_no_replica_acknowledged_are_not_reported_written(redis_server, stores):
    """With wait=N, as for a document: entries the primary took but no replica
    acknowledged could vanish in a failover, so the write raises (the host keeps them
    and writes them again); a write that changes nothing has nothing to wait for."""
    from cfgcore.errors import ConfigError

    store = stores(redis_server.url + "?namespace=waits&wait=1&wait_timeout=50&cache=off")
    rec = {"status": "stopped", GUARDRAIL_STOPPED_AT: 10.0}
    with pytest.raises(ConfigError, match="acknowledged by 0 of 1 replicas"):
        store.write_stop_register({"t": (10.0, rec)})
    assert store.read_stop_register() == {"t": (10.0, rec)}  # on the primary all the same
    assert store.write_stop_register({"t": (9.0, None)}) == 0  # nothing written: no wait


def test_signed_register_entries_over_tls(redis_binary, tmp_path):
    """The stop register over ``rediss://`` (a real TLS redis-server, its own CA): signed
    entries written and read back through another connection; a reader trusting
    another key passes over them."""
    from cfgcore.runtime.redis_store import RedisFlagStore
    from cfgcore.runtime.signing import FleetKeys, generate_signing_pair
    from tests.test_fleet_store import tls_server

    tls, port, cert = tls_server(tmp_path)
    signing, verify = generate_signing_pair("k1")
    url = f"rediss://127.0.0.1:{port}/0?namespace=tlss&ssl_ca_certs={cert}&cache=off"
    rec = {"status": "stopped", GUARDRAIL_STOPPED_AT: 10.0}
    try:
        with RedisFlagStore(url, keys=FleetKeys(signing, [verify])) as writer:
            assert writer.write_stop_register({"t": (10.0, rec)}) == 1
        with RedisFlagStore(url, keys=FleetKeys(None, [verify])) as reader:
            assert reader.read_stop_register() == {"t": (10.0, rec)}
        stranger = FleetKeys(None, [generate_signing_pair("k1")[1]])
        with RedisFlagStore(url, keys=stranger) as other:
            assert other.read_stop_register() == {}
        assert set(tls.client().hgetall("{tlss}:flags:guardrail-stops")) == {b"t"}
    finally:
        tls.stop()
