"""A ``user_id`` that is not text (a lone surrogate, as ``json.loads`` makes of a
client's ``"\\ud800"``) is no id the engine buckets by: the engine assigns the user by
``targeting_key``, so the exposure and the metric events must be filed under that
user too, or they never join.

Today both seed APIs and the exposure logger take any ``str`` for an id: the
exposure is filed under ``"\\ud800"`` (the writer then leaves it out, "a record JSON
cannot hold") and ``record_metric`` returns True for an event filed under no user
(``"user": null``), so the user's events count for nobody and the user is never
exposed. The fix is in the compiled ``SeedAPI`` as well (``_bucketable`` and the
exposure fast path in ``_eval_seed.pxi``), so both evaluators are marked here until it
is made (see the report of the red-team branch).
"""

from __future__ import annotations

import json

import pytest

from tests.test_exp_event_ids import _lines, _manager

CTX = {"user_id": "\ud800", "targeting_key": "tk-1"}


@pytest.mark.xfail(
    strict=True,
    reason="details.bucketable_id, exposures.exposure_user and both SeedAPIs (the compiled "
    "one in _eval_seed.pxi) take a str that is not text for a user id; the engine does not",
)
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
