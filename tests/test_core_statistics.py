"""Distribution and stickiness of bucketing (100,000 users), on both evaluators."""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fuzz import examples

USERS = [f"user-{i}" for i in range(100_000)]


def test_split_is_within_one_point_of_its_weights(make):
    engine = make(
        {
            "flags": {
                "rec": {
                    "variants": {"control": 0, "variant_a": 1, "variant_b": 2},
                    "default": "control",
                    "rules": [{"split": {"control": 50, "variant_a": 30, "variant_b": 20}}],
                }
            }
        }
    )
    counts = Counter(engine.variant("rec", {"user_id": u}) for u in USERS)
    for name, weight in (("control", 50), ("variant_a", 30), ("variant_b", 20)):
        assert abs(100 * counts[name] / len(USERS) - weight) < 1.0, counts


def test_rollout_share_matches_percentage(make):
    engine = make({"flags": {"f": {"default": "off", "rules": [{"rollout": 25, "serve": "on"}]}}})
    on = sum(engine.is_enabled("f", {"user_id": u}) for u in USERS)
    assert abs(100 * on / len(USERS) - 25) < 1.0


def test_flags_bucket_independently(make):
    engine = make(
        {
            "flags": {
                "a": {"default": "off", "rules": [{"rollout": 50, "serve": "on"}]},
                "b": {"default": "off", "rules": [{"rollout": 50, "serve": "on"}]},
            }
        }
    )
    both = sum(
        engine.is_enabled("a", {"user_id": u}) and engine.is_enabled("b", {"user_id": u})
        for u in USERS[:20_000]
    )
    assert abs(both / 20_000 - 0.25) < 0.02  # independent halves overlap on a quarter


def _rollout(make, pct):
    return make({"flags": {"f": {"default": "off", "rules": [{"rollout": pct, "serve": "on"}]}}})


def test_raising_a_rollout_keeps_every_user(make):
    on_before = None
    for pct in (1, 5, 10, 20, 50, 99.999, 100):
        engine = _rollout(make, pct)
        on = {u for u in USERS[:30_000] if engine.is_enabled("f", {"user_id": u})}
        if on_before is not None:
            assert on_before <= on, f"raising to {pct}% dropped users"
        on_before = on
    assert len(on_before) == 30_000


@settings(max_examples=examples(50), deadline=None)
@given(
    st.floats(0, 100),
    st.floats(0, 100),
    st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=50),
)
def test_stickiness_property(make_py_and_c, low, high, users):
    low, high = sorted((low, high))
    for make in make_py_and_c:
        small, large = _rollout(make, low), _rollout(make, high)
        for u in users:
            if small.is_enabled("f", {"user_id": u}):
                assert large.is_enabled("f", {"user_id": u})
