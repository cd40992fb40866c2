"""A host's own write that the fleet's guardrail stop register makes stopped keeps the
rest of what it changed.

The write was made with the test's whole record replaced by the register's copy, so
everything else it changed in the test was lost without a word: a description, an end
date or the success metrics edited with ``create_ab_test`` went back to what they were
when the guardrail stopped the test, and a test created again under a deleted one's
name lost its ``since`` (so every analysis counted the deleted test's exposures as its
own). Now only the stop comes from the register (status, reason, its times, no resume
before it) and the rest is the write's; a write whose test cannot be stopped
consistently (its flag splitting users without a record, and the register's control no
variant of that flag) is refused naming the test, and nothing is written. A real Redis
(tests/redis_server.py), real managers; the merge itself checked over arbitrary records
with hypothesis."""

from __future__ import annotations

from datetime import timedelta

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.errors import ConfigError
from cfgcore.experiments.abtest import (
    GUARDRAIL_STOPPED_AT,
    RESUMED_AT,
    RETIRED,
    guardrail_reactivations,
    guardrail_stop,
)
from cfgcore.experiments.stops import _stopped_write
from cfgcore.runtime.flags import derive
from cfgcore.snapshot import Flag, Rule, Snapshot
from tests.fuzz import examples
from tests.test_fix10_exp_guardrail_hold import TEST, _guarded_test
from tests.test_fix12_experiments_fleet_hold import _manager, _served
from tests.test_fix13_fleet_stop_register import _host
from tests.test_fleet_own_write_stops import _stopped_in_register

STOP_FIELDS = ("status", "stopped_reason", "stopped_at", GUARDRAIL_STOPPED_AT)


def _edited(test):
    """``test`` with what a replacement may change without moving its users."""
    test.description = "collaborative filtering, second look"
    test.end_date = test.end_date + timedelta(days=7)
    test.success_metrics = [*test.success_metrics, "skips_per_session"]
    return test


def test_a_replacement_written_stopped_keeps_what_it_changed(redis_server, stores, tmp_path, impl):
    base = redis_server.url + "?namespace=ab&poll=0.1"
    url, state = _host(base, tmp_path, "a")
    a = _manager(url, state, impl)
    try:
        assert a.create_ab_test(_guarded_test())
        writer, at = _stopped_in_register(stores, redis_server, dict(a.list_ab_tests()[TEST]))
        edited = _edited(a.get_ab_test(TEST))
        assert a.create_ab_test(edited, start=True) is False  # written stopped
        assert "was written stopped, not started" in a.last_error
        record = writer.read().snapshot.experiments[TEST]
        # the stop, as the register holds it
        assert record["status"] == "stopped"
        assert record["stopped_reason"] == "guardrail: errors"
        assert guardrail_stop(record) == at and record[GUARDRAIL_STOPPED_AT] == at
        # the rest, as written
        assert record["description"] == edited.description
        assert record["end_date"] == edited.to_metadata()["end_date"]
        assert record["success_metrics"] == edited.success_metrics
        assert a.list_ab_tests()[TEST] == record
        assert _served(a) == {"control"}
        # the explicit resume starts it with those changes
        assert a.create_ab_test(a.get_ab_test(TEST)) is True
        resumed = a.list_ab_tests()[TEST]
        assert resumed["status"] == "active" and resumed[RESUMED_AT] >= at
        assert resumed["description"] == edited.description
        assert "variant_b" in _served(a)
    finally:
        a.close()


def test_a_test_created_again_written_stopped_keeps_its_since(redis_server, stores, tmp_path, impl):
    """The run of a test created again under a deleted one's name is its ``since``
    (the deletion's time): the register's copy, of the deleted run, has none, and the
    analysis of the new run then counted the deleted one's exposures and events."""
    base = redis_server.url + "?namespace=ab&poll=0.1"
    url, state = _host(base, tmp_path, "a")
    a = _manager(url, state, impl)
    try:
        assert a.create_ab_test(_guarded_test())
        writer, at = _stopped_in_register(stores, redis_server, dict(a.list_ab_tests()[TEST]))
        assert a.delete_ab_test(TEST)  # (the document had it active: deleting ends nothing)
        retired = writer.read().snapshot.metadata[RETIRED][TEST]
        assert a.create_ab_test(_guarded_test(), start=True) is False
        record = writer.read().snapshot.experiments[TEST]
        assert record["since"] == retired
        assert guardrail_stop(record) == at and record["stopped_reason"] == "guardrail: errors"
        assert _served(a) == {"control"}
    finally:
        a.close()


def test_a_write_that_cannot_be_stopped_consistently_is_refused_naming_the_test(
    redis_server, stores, tmp_path, impl
):
    """The write keeps the test's flag splitting users between variants of other names
    and drops its record: the register's record is the only one, and its control is no
    variant of that flag. Refused, naming the test; the store keeps its document."""
    base = redis_server.url + "?namespace=ab&poll=0.1"
    url, state = _host(base, tmp_path, "a")
    a = _manager(url, state, impl)
    try:
        assert a.create_ab_test(_guarded_test())
        writer, _at = _stopped_in_register(stores, redis_server, dict(a.list_ab_tests()[TEST]))
        version = writer.read().version

        def renamed(snap):
            flag = snap.flags[TEST]
            variants = {f"v_{k}": v for k, v in flag.variants.items()}
            rule = flag.rules[0]
            split = {f"v_{k}": w for k, w in rule.split.items()}
            flag = msgspec.structs.replace(
                flag, variants=variants, default=f"v_{flag.default}",
                off_variant=f"v_{flag.off_variant}",
                rules=[msgspec.structs.replace(rule, split=split)],
            )  # fmt: skip
            experiments = {k: v for k, v in snap.experiments.items() if k != TEST}
            return msgspec.structs.replace(
                snap, flags={**snap.flags, TEST: flag}, experiments=experiments
            )

        with pytest.raises(ConfigError) as caught:
            a._live.update(renamed, source="test")
        message = str(caught.value)
        assert f"A/B test {TEST!r}" in message and "cannot be written stopped" in message
        assert f"no variant of flags.{TEST}" in message and "the register names it" in message
        assert writer.read().version == version  # nothing written
        assert a.list_ab_tests()[TEST]["status"] == "active"  # (this host: as before)
    finally:
        a.close()


# -- the merge itself, over arbitrary records ------------------------------------------

_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**6), 10**6), st.text(max_size=8),
    st.lists(st.text(max_size=4), max_size=3),
)  # fmt: skip
# Fields cfgcore gives no meaning to (those it reads are checked by the tests above),
# and the meaningful ones a replacement may change, with values of their kind.
_EXTRA = st.fixed_dictionaries(
    {},
    optional={
        "description": st.text(max_size=12),
        "since": st.floats(0, 4e9),
        "served_at": st.floats(0, 4e9),
        "success_metrics": st.lists(st.text(max_size=6), max_size=3),
        "end_date": st.sampled_from(["2030-01-01T00:00:00+00:00", "2031-06-01T00:00:00+00:00"]),
    },
).flatmap(
    lambda known: st.dictionaries(st.text(max_size=8).map("x-".__add__), _VALUES, max_size=4).map(
        lambda other: {**known, **other}
    )
)
_TIME = st.floats(1.0, 4e9, allow_nan=False)


def _document(record):
    flag = Flag(
        variants={"control": 1, "treatment": 2, "__none__": None},
        default="__none__", off_variant="__none__", salt=TEST,
        rules=[Rule(split={"control": 50.0, "treatment": 50.0})],
    )  # fmt: skip
    return derive(Snapshot(flags={TEST: flag}, experiments={TEST: record}), "t.json")


@settings(max_examples=examples(150), deadline=None)
@given(
    written=_EXTRA,
    registered=_EXTRA,
    stop=_TIME,
    resumed=st.one_of(st.none(), _TIME),
    reason=st.one_of(st.none(), st.text(max_size=12)),
)
def test_only_the_stop_comes_from_the_register(written, registered, stop, resumed, reason):
    mine = {**written, "traffic_split": {"control": 50.0, "treatment": 50.0},
            "control": "control", "status": "active"}  # fmt: skip
    if resumed is not None and resumed < stop:
        mine[RESUMED_AT] = resumed  # (a resume of an earlier stop: no end of this one)
    theirs = {**registered, "status": "stopped", "stopped_at": stop, GUARDRAIL_STOPPED_AT: stop,
              "traffic_split": {"control": 10.0, "other": 90.0}}  # fmt: skip
    if reason is not None:
        theirs["stopped_reason"] = reason
    doc = _document(mine)
    out = derive(_stopped_write(doc, {TEST: theirs}, "t.json"), "t.json")
    record = out.experiments[TEST]
    # the write's own fields, untouched
    assert {k: v for k, v in record.items() if k not in STOP_FIELDS} == {
        k: v for k, v in mine.items() if k not in STOP_FIELDS and k != RESUMED_AT
    }
    # the stop's, from the register
    assert record["status"] == "stopped" and guardrail_stop(record) == stop
    assert record["stopped_at"] == stop
    assert record["stopped_reason"] == (reason if reason is not None else "guardrail")
    # the flag serves the control to everyone, its variants as written
    assert out.flags[TEST].variants == doc.flags[TEST].variants
    assert [r.serve for r in out.flags[TEST].rules] == ["control"]
    # and the document no longer serves the stopped test's variants
    assert guardrail_reactivations(Snapshot(experiments={TEST: theirs}), out) == []
