"""A host writes its own entries of the fleet's guardrail stop register back when the
register lost them: an end it recorded (a test deleted, or resumed) as well as a stop it
holds, at its start and when it judges a fleet document while running.

The end of a stop is what keeps a host that was down when the test was deleted (its
register still holding the stop) from stopping the test again at its start. Whoever can
write Redis could replace that end with a value too long to read (passed over unread)
or delete it: the host that recorded the end had forgotten it once told, so nobody put
it back, and the next start of the lagging host stopped the re-created test for the
whole fleet (the document written back with the test stopped). Now the host keeps the
ends it told and sends them again wherever the register lacks them or holds an older
entry; the register's script keeps the later entry. A real Redis (tests/redis_server.py),
real managers."""

from __future__ import annotations

import json

import msgspec
import pytest

from cfgcore.errors import StopRegisterError
from cfgcore.experiments.abtest import GUARDRAIL_ENDS
from cfgcore.experiments.stops import read_ended, read_stops, stops_path
from cfgcore.snapshot import Flag
from tests.redis_server import wait_for
from tests.test_fix10_exp_guardrail_hold import TEST, _guarded_test
from tests.test_fix12_experiments_fleet_hold import _manager, _served, _stopped_then_down
from tests.test_fix13_fleet_stop_register import _host

BIG = b"x" * 3_000_000  # over MAX_STOP_ENTRY_BYTES: passed over, never read
REG = "{ab}:flags:guardrail-stops"


def _deleted_and_created_again(url, state, impl):
    """Host C deletes the stopped test (its stop ends, told to the fleet) and creates it
    again; C closes. The end's time, as the fleet's register holds it."""
    c = _manager(url, state, impl)
    try:
        assert c.delete_ab_test(TEST)
        assert c.create_ab_test(_guarded_test())
        assert "variant_b" in _served(c)
        register = stops_path(c._live.store, c.audit.path)
        assert read_ended(register) == {}  # told: no longer "untold"
    finally:
        c.close()
    return register


def _fleet_entry(redis_server):
    raw = redis_server.client().hget(REG, TEST)
    try:
        entry = json.loads(raw)
        return entry["at"], entry["record"]
    except (TypeError, ValueError, KeyError):
        return None  # none, or what whoever wrote Redis put there


def _setup(redis_server, tmp_path, impl, spoil):
    base = redis_server.url + "?namespace=ab&poll=0.1"
    url_a, state_a = _host(base, tmp_path, "a")
    # A's register and cache file hold the stop; A is down (its cache file's stop is
    # over once the register holds the later end: tests/test_fleet_end_wins.py)
    _stopped_then_down(url_a, state_a, impl)
    url_c, state_c = _host(base, tmp_path, "c")
    _deleted_and_created_again(url_c, state_c, impl)
    ended = _fleet_entry(redis_server)
    assert ended is not None and ended[1] is None  # the end, fleet-wide
    client = redis_server.client()
    if spoil == "oversized":
        client.hset(REG, TEST, BIG)
    elif spoil == "unreadable":
        client.hset(REG, TEST, b"{not json")
    elif spoil == "deleted":
        client.hdel(REG, TEST)
    return (url_a, state_a), (url_c, state_c), ended


def _lagging_host_serves_the_test(url, state, impl, redis_server, version_before, planted=False):
    """``planted``: the register holds an entry of TEST that is no entry cfgcore writes
    when the host starts, which it reports (once) and writes its own over."""
    a = _manager(url, state, impl)
    try:
        assert "variant_b" in _served(a), "the lagging host stopped the re-created test"
        if planted:
            assert isinstance(a._live.last_error, StopRegisterError)
            assert f"'{TEST}' is no entry cfgcore writes" in str(a._live.last_error)
        else:
            assert a._live.last_error is None
        assert TEST not in read_stops(stops_path(a._live.store, a.audit.path))
    finally:
        a.close()
    # the fleet's document was not written back with the test stopped
    stored = redis_server.client().hget("{ab}:flags", "version")
    assert int(stored) == version_before


@pytest.mark.parametrize("spoil", ["oversized", "unreadable", "deleted"])
def test_the_host_that_ended_a_stop_writes_the_end_back_at_its_start(
    redis_server, tmp_path, impl, spoil
):
    (url_a, state_a), (url_c, state_c), ended = _setup(redis_server, tmp_path, impl, spoil)
    c = _manager(url_c, state_c, impl)  # C's next start: its own end sent again
    c.close()
    assert _fleet_entry(redis_server) == ended
    version = int(redis_server.client().hget("{ab}:flags", "version"))
    _lagging_host_serves_the_test(url_a, state_a, impl, redis_server, version)


def test_a_running_host_writes_its_end_back_when_it_judges_a_fleet_document(
    redis_server, stores, tmp_path, impl
):
    (url_a, state_a), (url_c, state_c), ended = _setup(redis_server, tmp_path, impl, "oversized")
    c = _manager(url_c, state_c, impl)
    try:
        assert _fleet_entry(redis_server) == ended  # (its start wrote it back already)
        redis_server.client().hset(REG, TEST, BIG)  # spoiled again while C runs
        # another host changes another flag: a fleet document C judges against the
        # register as its follower takes it
        writer = stores(redis_server.url + "?namespace=ab&cache=off")
        writer.update(
            lambda s: msgspec.structs.replace(s, flags={**s.flags, "extra": Flag(default="on")})
        )
        wait_for(lambda: "extra" in c._live.source.flags)
        wait_for(lambda: _fleet_entry(redis_server) == ended)
    finally:
        c.close()
    version = int(redis_server.client().hget("{ab}:flags", "version"))
    _lagging_host_serves_the_test(url_a, state_a, impl, redis_server, version)


def test_a_later_stop_is_not_undone_by_an_end_sent_again(redis_server, stores, tmp_path, impl):
    """The register's script keeps the later entry: the host's end, sent again, does not
    replace a stop recorded after it (the test stopped again by its guardrail)."""
    (url_a, state_a), (url_c, state_c), ended = _setup(redis_server, tmp_path, impl, "deleted")
    later = {"status": "stopped", "guardrail_stopped_at": ended[0] + 100.0}
    reader = stores(redis_server.url + "?namespace=ab&cache=off")
    assert reader.write_stop_register({TEST: (ended[0] + 100.0, later)}) == 1
    c = _manager(url_c, state_c, impl)
    c.close()
    assert _fleet_entry(redis_server) == (ended[0] + 100.0, later)


def test_the_harm_when_no_host_writes_the_end_back(redis_server, stores, tmp_path, impl):
    """What the end protects (and what losing it did): the lagging host, starting while
    the register lacks the end, holds its old stop and stops the re-created test for
    the whole fleet. (The host that recorded the end must come back, or judge a fleet
    document, first: a host that never recorded the end cannot tell it was lost.) Here
    the document does not record the end either (written by a tool that does not carry
    ``ended_guardrail_stops``): with it, the lagging host reads the end there
    (tests/test_fleet_stop_end_in_document.py)."""
    (url_a, state_a), _c, _ended = _setup(redis_server, tmp_path, impl, "deleted")
    writer = stores(redis_server.url + "?namespace=ab&cache=off")
    writer.update(
        lambda s: msgspec.structs.replace(
            s, metadata={k: v for k, v in s.metadata.items() if k != GUARDRAIL_ENDS}
        )
    )
    a = _manager(url_a, state_a, impl)
    try:
        assert _served(a) == {"control"}
    finally:
        a.close()
