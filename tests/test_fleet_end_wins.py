"""The fleet's end of a guardrail stop wins over a host's older stop wherever the host
judges a document: at start against the document its cache file holds, and while
running against the live one.

A host that was down (or missed documents) while the test was deleted and created again
still holds the stopped document it served: in its cache file, or as its live document.
The fleet's stop register holds the end, later than that stop. The host judged the
re-created test's document against its stopped one, found the test's variants served
again without a resume, and refused it (serving only the control), although its start
had read the fleet's end. A real Redis (tests/redis_server.py), real managers."""

from __future__ import annotations

import time

import msgspec

from cfgcore.experiments.abtest import GUARDRAIL_STOPPED_AT, guardrail_stop
from cfgcore.experiments.stops import read_stops, stops_path
from tests.redis_server import wait_for
from tests.test_fix10_exp_guardrail_hold import TEST
from tests.test_fix12_experiments_fleet_hold import (
    _manager,
    _reactivated,
    _served,
    _stopped_then_down,
)
from tests.test_fix13_fleet_stop_register import _host
from tests.test_fleet_stop_resend import _deleted_and_created_again, _fleet_entry


def test_a_lagging_host_takes_the_re_created_test_over_its_cache_file(redis_server, tmp_path, impl):
    base = redis_server.url + "?namespace=ab&poll=0.1"
    url_a, state_a = _host(base, tmp_path, "a")
    _stopped_then_down(url_a, state_a, impl)  # A's cache file holds the stopped document
    url_c, state_c = _host(base, tmp_path, "c")
    _deleted_and_created_again(url_c, state_c, impl)
    end = _fleet_entry(redis_server)
    assert end is not None and end[1] is None
    version = int(redis_server.client().hget("{ab}:flags", "version"))
    a = _manager(url_a, state_a, impl)
    try:
        assert "variant_b" in _served(a), "the host's older stop won over the fleet's end"
        assert a._live.last_error is None
        assert TEST not in read_stops(stops_path(a._live.store, a.audit.path))
    finally:
        a.close()
    # nothing written back: the fleet serves the re-created test
    assert int(redis_server.client().hget("{ab}:flags", "version")) == version
    assert _fleet_entry(redis_server) == end


def test_a_cache_file_stop_the_fleet_never_ended_still_holds(redis_server, stores, tmp_path, impl):
    """The other side: the register holds no end (a document from before the stop put
    back), so the cache file's stop is judged as before and the variants stay off."""
    base = redis_server.url + "?namespace=ab&poll=0.1"
    url_a, state_a = _host(base, tmp_path, "a")
    before = _stopped_then_down(url_a, state_a, impl)
    writer = stores(redis_server.url + "?namespace=ab&cache=off")
    stopped = writer.read().snapshot
    writer.update(lambda _old: _reactivated(before, stopped))
    a = _manager(url_a, state_a, impl)
    try:
        assert _served(a) == {"control"}
    finally:
        a.close()


def _re_created(before, stopped, since):
    """``stopped`` with its test created again (another run: a later ``since``), its
    flag splitting users as before the stop."""
    snap = _reactivated(before, stopped)
    meta = {k: v for k, v in snap.experiments[TEST].items() if k not in (
        GUARDRAIL_STOPPED_AT, "stopped_at", "stopped_reason")}  # fmt: skip
    meta["since"] = since
    return msgspec.structs.replace(snap, experiments={**snap.experiments, TEST: meta})


def test_a_running_host_that_missed_the_deletion_takes_the_re_created_test(
    redis_server, stores, tmp_path, impl
):
    """A running host serving the stop gets the re-created test's document without the
    deletion's (it missed it): the fleet register's end, later than its stop, wins. The
    same document with no end in the register is refused, as before."""
    base = redis_server.url + "?namespace=ab&poll=0.1"
    url_a, state_a = _host(base, tmp_path, "a")
    before = _stopped_then_down(url_a, state_a, impl)
    writer = stores(redis_server.url + "?namespace=ab&cache=off")
    stopped = writer.read().snapshot
    stop = guardrail_stop(stopped.experiments[TEST])
    a = _manager(url_a, state_a, impl)
    try:
        assert _served(a) == {"control"}
        now = time.time()
        first = writer.update(lambda _old: _re_created(before, stopped, now))[1]
        wait_for(lambda: a._live.last_error is not None)  # no end: refused
        assert _served(a) == {"control"}
        # the deletion's end, recorded by the host that deleted it (this one missed it)
        assert writer.write_stop_register({TEST: (max(now, stop), None)}) == 1
        second = writer.update(lambda _old: _re_created(before, stopped, now + 1))[1]
        assert second.version == first.version + 1
        wait_for(lambda: a._live.document.version == second.version)
        assert "variant_b" in _served(a) and a._live.last_error is None
    finally:
        a.close()
