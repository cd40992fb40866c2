"""Which id an A/B test assigns by: ``user_id``, else ``targeting_key``, each skipped
when it is neither a string nor an int or is text holding a lone surrogate, as flag
bucketing skips it; a user left with no id gets no variant (docs/experiments.md)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from cfgcore import ABTestConfiguration, DynamicConfigurationManager
from cfgcore.engine import engine_class

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def manager(tmp_path, impl):
    m = DynamicConfigurationManager(
        state_dir=tmp_path, engine=engine_class(impl)(), clock=NOW.timestamp
    )
    test = ABTestConfiguration(
        test_name="t",
        description="",
        start_date=NOW - timedelta(days=1),
        end_date=NOW + timedelta(days=3),
        traffic_split={"a": 50.0, "b": 50.0},
        configurations={"a": {}, "b": {}},
        success_metrics=["m"],
    )
    assert m.create_ab_test(test) is True
    yield m
    m.close()


@pytest.mark.parametrize("bad", ["\ud800", "a\udfffb", 1.5, True, None, [1], b"u"])
def test_an_id_of_no_usable_kind_is_skipped_for_the_next(manager, bad):
    for fallback in (f"u{i}" for i in range(8)):
        want = manager.get_ab_test_variant("t", {"user_id": fallback})
        assert want in ("a", "b")
        got = manager.get_ab_test_variant("t", {"user_id": bad, "targeting_key": fallback})
        assert got == want, (bad, fallback)
    assert manager.get_ab_test_variant("t", {"user_id": bad}) is None


def test_an_int_and_its_text_are_one_user(manager):
    for n in (0, 7, 42, 10**12):
        assert manager.get_ab_test_variant("t", {"user_id": n}) == manager.get_ab_test_variant(
            "t", {"user_id": str(n)}
        )
