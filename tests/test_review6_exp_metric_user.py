"""record_metric files an event under the user its exposure is logged under.

The engine buckets by a ``user_id`` that is a str or an int (not a bool); for any
other ``user_id`` (a float, a bool, bytes) it takes the ``targeting_key``, and so does
the exposure log. ``record_metric`` filed the event under ``str(user_id)`` ("3.5")
while the exposure went under the targeting key: the variant counted two users, one
exposed and never converting, one converting and never exposed. Both evaluators (the
compiled SeedAPI reads the context in C).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.details import metric_user_id
from cfgcore.dynamic_config import ABTestConfiguration, DynamicConfigurationManager
from cfgcore.engine import engine_class
from cfgcore.experiments.exposures import exposure_user
from tests.fuzz import examples
from tests.texts import any_text

NOW = datetime.now(timezone.utc)


def _test():
    return ABTestConfiguration(
        "t", "", NOW - timedelta(days=1), NOW + timedelta(days=9),
        {"control": 50.0, "b": 50.0}, {"control": {"x": 1}, "b": {"x": 2}}, ["buy"],
    )  # fmt: skip


@pytest.mark.parametrize("odd_id", [3.5, True, b"raw", None])
def test_a_metric_event_joins_its_exposure_for_any_user_id(tmp_path, impl, odd_id):
    manager = DynamicConfigurationManager(
        state_dir=tmp_path, engine=engine_class(impl)(), record_usage=False
    )
    try:
        assert manager.create_ab_test(_test())
        users = [f"user-{i}" for i in range(10)]
        for u in users:
            ctx = {"user_id": odd_id, "targeting_key": u}
            assert manager.get_ab_test_variant("t", ctx) in ("control", "b")
            manager.record_metric("t", "buy", 1.0, user_context=ctx)
        manager.exposures.flush()
        manager.metrics.flush()
        variants = ("control", "b")
        assert sum(manager.metrics.exposures("t").values()) == len(users)
        assert sum(manager.metrics.users("t", v) for v in variants) == len(users)
    finally:
        manager.close()


ids = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
    any_text(max_size=5), st.binary(max_size=3),
)  # fmt: skip


@settings(max_examples=examples(300), deadline=None)
@given(user_id=ids, key=ids, with_key=st.booleans())
def test_the_metric_user_is_the_exposure_user(user_id, key, with_key):
    ctx = {"user_id": user_id, **({"targeting_key": key} if with_key else {})}
    assert metric_user_id(ctx) == exposure_user(ctx)
