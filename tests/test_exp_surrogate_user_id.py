"""A ``user_id`` that is not text (a lone surrogate, as ``json.loads`` makes of a
client's ``"\\ud800"``) is no id the engine buckets by: the engine assigns the user by
``targeting_key``, so the exposure and the metric events are filed under that user
too, or they would never join.

Before, both seed APIs and the exposure logger took any ``str`` for an id: the
exposure was filed under ``"\\ud800"`` (the writer then left it out, "a record JSON
cannot hold") and ``record_metric`` returned True for an event filed under no user
(``"user": null``), so the user's events counted for nobody and the user was never
exposed.
"""

from __future__ import annotations

import json
import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfgcore.details import metric_user_id
from cfgcore.experiments.exposures import exposure_user
from tests.fuzz import examples
from tests.test_exp_event_ids import _lines, _manager

CTX = {"user_id": "\ud800", "targeting_key": "tk-1"}


def test_a_user_id_that_is_not_text_files_events_under_the_bucketed_user(tmp_path, impl):
    m = _manager(impl, tmp_path / "state")
    try:
        variant = m.get_ab_test_variant("exp", CTX)
        # the engine assigned the user by the targeting key
        assert variant == m.get_ab_test_variant("exp", {"targeting_key": "tk-1"})
        assert variant is not None
        assert m.record_metric("exp", "ctr", 1.0, user_context=CTX)
        assert m.exposures.flush() and m.metrics.flush()
        (log,) = (tmp_path / "state").glob("*.exposures.jsonl")
        exposures = [(r["user"], r["variant"]) for r in _lines(log)]
        metrics = [(r["user"], r["variant"]) for r in _lines(m.metrics.path)]
        assert exposures == [("tk-1", variant)], json.dumps(exposures)
        assert metrics == [("tk-1", variant)], json.dumps(metrics)
    finally:
        m.close()


_PIECES = st.sampled_from(["a", "7", "é", "\ud800", "\udfff", "\U0001f3b5", " "])
_IDS = st.one_of(
    st.lists(_PIECES, max_size=4).map("".join),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.none(),
    st.booleans(),
)


@settings(
    max_examples=examples(40),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(user_id=_IDS, targeting_key=_IDS)
def test_exposures_and_metric_events_are_filed_under_the_user_the_engine_buckets(
    tmp_path_factory, impl, user_id, targeting_key
):
    """Whatever the two ids are, the exposure, the metric event and the seed API's own
    dedup agree with the engine on who the user is: the first of ``user_id`` and
    ``targeting_key`` the engine buckets by, as text (details.metric_user_id)."""
    ctx = {"user_id": user_id, "targeting_key": targeting_key}
    who = metric_user_id(ctx)
    assert who == exposure_user(ctx)
    state = tmp_path_factory.mktemp("state")
    m = _manager(impl, state)
    try:
        variant = m.get_ab_test_variant("exp", ctx)
        assert m.get_ab_test_variant("exp", ctx) == variant  # the second: deduplicated
        recorded = m.record_metric("exp", "ctr", 1.0, user_context=ctx)
        assert m.exposures.flush() and m.metrics.flush()
        logs = list(state.glob("*.exposures.jsonl"))
        exposures = [(r["user"], r["variant"]) for log in logs for r in _lines(log)]
        written = os.path.exists(m.metrics.path)
        metrics = [(r["user"], r["variant"]) for r in _lines(m.metrics.path)] if written else []
        if who is None:
            assert exposures == []
        else:
            assert exposures == [(who, variant)]
            # the user alone, as the events name it, is served the same variant
            assert m.get_ab_test_variant("exp", {"user_id": who}) == variant
        assert metrics == ([(who, variant)] if recorded else [])
    finally:
        m.close()
