"""The end of a guardrail stop made through the experiment API is recorded in the flag
document itself (``metadata.ended_guardrail_stops``), so it outlives the fleet's stop
register entry.

A host that was down with the stop in its own register (a lagging host) learned of the
end only from the fleet's register. When that entry was lost (deleted, a value no
reader takes, the key removed) while no host that recorded the end ran, or within one
poll of the loss, the lagging host's start held its old stop and stopped the test again
for the whole fleet. Now the document that deleted (or resumed) the test records the
end, every judge of a document takes a stop no later than an end it records as over,
the lagging host's start drops its stop and sends the end back to the register, and a
later stop of the test is always stamped after that end, so the end never covers it.
What is left: an end the document does not record (the test removed by a document
published or edited by hand, not through the API; a document written without the field)
still lives in the register only (tests/test_fleet_stop_resend.py, the harm). A real
Redis (tests/redis_server.py), real managers; the ordering checked with hypothesis."""

from __future__ import annotations

import math

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.dynamic_config import DynamicConfigurationManager
from cfgcore.engine import engine_class
from cfgcore.experiments.abtest import (
    GUARDRAIL_ENDS,
    GUARDRAIL_STOPPED_AT,
    RESUMED_AT,
    _stopped,
    guardrail_reactivations,
    guardrail_stop,
    recorded_end,
)
from cfgcore.snapshot import Flag, Rule, Snapshot
from tests.fuzz import examples
from tests.test_fix10_exp_guardrail_hold import TEST
from tests.test_fix12_experiments_fleet_hold import _manager, _served, _stopped_then_down
from tests.test_fix13_fleet_stop_register import _host
from tests.test_fleet_stop_poll import _spoil
from tests.test_fleet_stop_resend import (
    REG,
    _deleted_and_created_again,
    _fleet_entry,
    _lagging_host_serves_the_test,
)


def _stored(redis_server, stores):
    return stores(redis_server.url + "?namespace=ab&cache=off").read().snapshot


@pytest.mark.parametrize("spoil", ["deleted", "unreadable", "removed"])
def test_a_lagging_host_reads_the_end_the_document_records(
    redis_server, stores, tmp_path, impl, spoil
):
    """No host that recorded the end runs when the register loses it: the lagging host's
    start takes the end from the document, serves the re-created test, drops its stop
    and writes the end back to the register."""
    base = redis_server.url + "?namespace=ab&poll=0.1"
    url_a, state_a = _host(base, tmp_path, "a")
    _stopped_then_down(url_a, state_a, impl)  # A's register holds the stop; A is down
    stop = _fleet_entry(redis_server)[0]
    url_c, state_c = _host(base, tmp_path, "c")
    _deleted_and_created_again(url_c, state_c, impl)  # C recorded the end; C is down
    ended = _fleet_entry(redis_server)
    assert recorded_end(_stored(redis_server, stores).metadata, TEST) == ended[0] >= stop
    _spoil(redis_server, spoil)
    assert _fleet_entry(redis_server) is None
    version = int(redis_server.client().hget("{ab}:flags", "version"))
    _lagging_host_serves_the_test(
        url_a, state_a, impl, redis_server, version, planted=spoil == "unreadable"
    )
    assert _fleet_entry(redis_server) == ended  # (sent back by the lagging host)


def test_a_resume_outlives_a_later_replacement_of_the_test(redis_server, stores, tmp_path, impl):
    """Resumed, then replaced (the new record keeps no ``resumed_at``): the document
    still records the end, so the lagging host's start serves the test."""
    base = redis_server.url + "?namespace=ab&poll=0.1"
    url_a, state_a = _host(base, tmp_path, "a")
    _stopped_then_down(url_a, state_a, impl)
    url_c, state_c = _host(base, tmp_path, "c")
    c = _manager(url_c, state_c, impl)
    try:
        assert c.create_ab_test(c.get_ab_test(TEST))  # the explicit resume
        resumed = c.list_ab_tests()[TEST][RESUMED_AT]
        edited = c.get_ab_test(TEST)
        edited.description = "resumed, then described again"
        assert c.create_ab_test(edited)
        assert RESUMED_AT not in c.list_ab_tests()[TEST]
        assert recorded_end(_stored(redis_server, stores).metadata, TEST) == resumed
    finally:
        c.close()
    redis_server.client().hdel(REG, TEST)  # the register's end lost; no host runs
    version = int(redis_server.client().hget("{ab}:flags", "version"))
    _lagging_host_serves_the_test(url_a, state_a, impl, redis_server, version)


def test_a_later_stop_is_stamped_after_the_end_and_holds(redis_server, stores, tmp_path, impl):
    """The re-created test stopped again by its guardrail on a host whose clock is
    behind the end's: the stop is stamped after the end, so a document from before it
    (which records the end, and serves the test) is still refused."""
    base = redis_server.url + "?namespace=ab&poll=0.1"
    url_a, state_a = _host(base, tmp_path, "a")
    _stopped_then_down(url_a, state_a, impl)
    url_c, state_c = _host(base, tmp_path, "c")
    _deleted_and_created_again(url_c, state_c, impl)
    writer = stores(redis_server.url + "?namespace=ab&cache=off")
    active = writer.read().snapshot
    end = recorded_end(active.metadata, TEST)
    behind = end - 600.0
    b = DynamicConfigurationManager(
        store=url_c, state_dir=state_c, engine=engine_class(impl)(),
        guardrail_check_every=10**9, clock=lambda: behind,
    )  # fmt: skip
    try:
        assert b.stop_ab_test(TEST, "guardrail: again", source="guardrail_rollback")
        stop = b.list_ab_tests()[TEST][GUARDRAIL_STOPPED_AT]
        assert stop > end
        assert _fleet_entry(redis_server)[0] == stop  # (the register takes it: later)
        # the document from before the stop, put back by another tool: refused
        version = b._live.document.version
        writer.update(lambda _s: active)
        assert guardrail_reactivations(b._live.source, active)
        assert not b.reload()
        assert b._live.last_error is not None and TEST in str(b._live.last_error)
        assert _served(b) == {"control"}
        assert b._live.document.version == version
    finally:
        b.close()


# -- the ordering, over arbitrary times --------------------------------------------------

_T = st.floats(1.0, 4e9, allow_nan=False)


def _doc(active: bool, end: float | None) -> Snapshot:
    flag = Flag(
        variants={"control": 1, "treatment": 2, "__none__": None},
        default="__none__", off_variant="__none__", salt=TEST,
        rules=[Rule(split={"control": 50.0, "treatment": 50.0})],
    )  # fmt: skip
    record = {"status": "active" if active else "stopped", "control": "control",
              "traffic_split": {"control": 50.0, "treatment": 50.0}}  # fmt: skip
    metadata = {} if end is None else {GUARDRAIL_ENDS: {TEST: end}}
    return Snapshot(flags={TEST: flag}, experiments={TEST: record}, metadata=metadata)


@settings(max_examples=examples(300), deadline=None)
@given(stop=_T, end=st.one_of(st.none(), _T), now=_T, resumed=st.one_of(st.none(), _T))
def test_an_end_in_the_document_ends_exactly_the_stops_not_after_it(stop, end, now, resumed):
    held = Snapshot(experiments={TEST: {"status": "stopped", GUARDRAIL_STOPPED_AT: stop}})
    found = guardrail_reactivations(held, _doc(True, end))
    assert (found == []) == (end is not None and end >= stop)
    # a stop made on a document that records an end (and a resume) comes after both,
    # whatever the clock says: that end never covers it
    base = _doc(True, end)
    meta = dict(base.experiments[TEST])
    if resumed is not None:
        meta[RESUMED_AT] = resumed
    record, flag = _stopped(
        meta, base.flags[TEST], "guardrail: x", now, guardrail=True,
        after=recorded_end(base.metadata, TEST),
    )  # fmt: skip
    at = guardrail_stop(record)
    assert at is not None and at >= now
    assert all(at > t for t in (end, resumed) if t is not None)
    assert at == now or at == math.nextafter(
        max(t for t in (end, resumed) if t is not None), math.inf
    )
    # the base document (it records the end, and serves the test) undoes that stop
    assert guardrail_reactivations(Snapshot(experiments={TEST: record}), base) != []
    # the stopped document itself does not
    stopped = msgspec.structs.replace(base, flags={TEST: flag}, experiments={TEST: record})
    assert guardrail_reactivations(Snapshot(experiments={TEST: record}), stopped) == []
