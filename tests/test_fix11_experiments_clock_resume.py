"""Eleventh round (review): a guardrail stop and its resume judged by clocks that
disagree. The resume recorded ``resumed_at`` as the resuming host's now: a clock
stepped back since the stop (NTP, a restored VM), or a host behind the one whose
guardrail stopped the test, wrote a resume older than the stop, which every other
process refused as undoing the stop, setting the resumed file aside and writing the
stop back (the resuming process kept serving the variants: a split fleet). And a
second guardrail stop by a host behind the resuming one left the earlier
``resumed_at`` in the record, later than the stop, so the stop was not held: a file put
back from before it was served. Now a resume is never older than the stop it ends,
and a guardrail stop comes after the resume it ends (which leaves the record). Real
files, two managers (each its own flag set, as two processes) on one directory, their
clocks set apart."""

from __future__ import annotations

import glob
import json

import pytest

from cfgcore.dynamic_config import DynamicConfigurationManager
from cfgcore.engine import engine_class
from cfgcore.experiments.abtest import GUARDRAIL_STOPPED_AT, RESUMED_AT
from tests.test_experiments import NOW, USERS, Clock, _simulate, seed_test, variants_of

TEST = "recommendation_algorithm_v2"
HARMFUL = {"control": 0.02, "variant_a": 0.02, "variant_b": 0.30}


def _manager(tmp_path, impl, clock):
    return DynamicConfigurationManager(
        state_dir=tmp_path, engine=engine_class(impl)(), clock=clock, guardrail_check_every=10**9
    )


def _served(m):
    return set(variants_of(m, TEST, USERS[:600]).values())


def _stop_by_guardrail(m, seed=1):
    _simulate(m, TEST, HARMFUL, metric="playback_errors", seed=seed)
    assert m.check_guardrails(TEST)
    assert m.list_ab_tests()[TEST]["status"] == "stopped"


@pytest.mark.parametrize("behind", [1, 60, 86_400])
def test_a_resume_by_a_clock_behind_the_stop_is_served_everywhere(tmp_path, impl, behind):
    ahead, late = Clock(NOW), Clock(NOW)
    a = _manager(tmp_path, impl, ahead)
    try:
        assert a.create_ab_test(seed_test(guardrail_metrics={"playback_errors": "lower_is_better"}))
        ahead.t += 3600
        _stop_by_guardrail(a)
        b = _manager(tmp_path, impl, late)  # another host, its clock behind a's
        try:
            late.t = ahead.t - behind
            assert b.list_ab_tests()[TEST]["status"] == "stopped"
            assert b.create_ab_test(b.get_ab_test(TEST))  # the explicit resume, on b
            record = b.list_ab_tests()[TEST]
            assert record[RESUMED_AT] >= a.list_ab_tests()[TEST][GUARDRAIL_STOPPED_AT]
            assert "variant_b" in _served(b)
            # a takes the resumed document: no refusal, nothing set aside, no stop
            # written back over the resume.
            assert a.reload() is True
            assert a._live.last_error is None
            assert "variant_b" in _served(a)
            assert not glob.glob(f"{a.flags_file}.refused-*")
            with open(a.flags_file) as fh:
                assert json.load(fh)["experiments"][TEST]["status"] == "active"
        finally:
            b.close()
    finally:
        a.close()


def test_a_second_guardrail_stop_by_a_clock_behind_the_resume_is_held(tmp_path, impl):
    ahead, late = Clock(NOW), Clock(NOW)
    a = _manager(tmp_path, impl, ahead)
    try:
        assert a.create_ab_test(seed_test(guardrail_metrics={"playback_errors": "lower_is_better"}))
        ahead.t += 3600
        _stop_by_guardrail(a)
        ahead.t += 3600
        assert a.create_ab_test(a.get_ab_test(TEST))  # resumed at a's time
        with open(a.flags_file, "rb") as fh:
            resumed = fh.read()
        b = _manager(tmp_path, impl, late)
        try:
            late.t = ahead.t - 600  # b's clock ten minutes behind a's
            _stop_by_guardrail(b, seed=2)  # the variant is still harmful
            record = b.list_ab_tests()[TEST]
            assert RESUMED_AT not in record and record[GUARDRAIL_STOPPED_AT] > ahead.t
            # The file as it was before this stop (resumed) put back: refused by a
            # running process, as any undoing of a guardrail stop.
            assert a.reload() is True and _served(a) == {"control"}
            with open(a.flags_file, "wb") as fh:
                fh.write(resumed)
            assert b.reload() is False
            assert f"cfgcore experiment start {TEST}" in str(b._live.last_error)
            assert _served(b) == {"control"}
            assert len(glob.glob(f"{a.flags_file}.refused-*")) == 1
        finally:
            b.close()
    finally:
        a.close()
