"""An int is an id only up to ``details.ID_FORM_CHARS`` (4,300) characters of text.

An int id buckets as its decimal text (``42`` and ``"42"`` are one user). That text
costs time superlinear in the int's size, and it was made at any size: a context with
a million-digit ``user_id`` cost about half a second on every check of a plain dict,
and in every ``record_metric``. A JSON reader refuses such a number, but a CBOR or
MessagePack one, or a Python caller, does not. Now an int whose text is longer than
Python's default conversion limit is no id, as a float is not: bucketing tries the
next ``bucket_by`` attribute, the exposure log files the user under the targeting key,
and metric events do not file it. Both evaluators, their ``SeedAPI`` and the exposure
log draw the line at the same place (tested at the boundary, both signs).
"""

from __future__ import annotations

import sys
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.details import (
    ID_FORM_CHARS,
    bucketable_id,
    int_id_sized,
    int_text,
    metric_user_id,
    user_id_text,
)
from cfgcore.dynamic_config import ABTestConfiguration, DynamicConfigurationManager
from cfgcore.engine import engine_class
from cfgcore.experiments.exposures import exposure_user, read_exposures
from cfgcore.experiments.metrics import read_metrics
from tests.fuzz import examples

LONGEST = 10**ID_FORM_CHARS - 1  # 4,300 nines: an id
TOO_LONG = 10**ID_FORM_CHARS  # 4,301 characters: no id
LONGEST_NEG = -(10 ** (ID_FORM_CHARS - 1) - 1)  # "-" and 4,299 nines: an id
TOO_LONG_NEG = -(10 ** (ID_FORM_CHARS - 1))  # "-" and 4,300 digits: no id

DOC = {
    "flags": {
        "ramp": {
            "rules": [{"rollout": 50, "serve": "on"}],
            "bucket_by": ["user_id", "targeting_key"],
            "default": "off",
        },
        "split": {
            "variants": {"a": 1, "b": 2, "c": 3, "d": 4},
            "rules": [{"split": {"a": 25, "b": 25, "c": 25, "d": 25}}],
            "bucket_by": ["user_id", "targeting_key"],
            "default": "a",
        },
    }
}


class Sneaky(int):
    """An int subclass whose comparisons lie and whose text raises: read by its value."""

    def __lt__(self, other):
        raise RuntimeError("compared")

    __gt__ = __le__ = __ge__ = __lt__

    def __str__(self):
        raise RuntimeError("str")


def _text(n: int) -> str:
    return int_text(n)  # whatever sys.set_int_max_str_digits says


def test_the_boundary_is_the_texts_length():
    for n in (LONGEST, LONGEST_NEG):
        assert len(_text(n)) == ID_FORM_CHARS
        assert int_id_sized(n) and bucketable_id(n) and bucketable_id(Sneaky(n))
        assert user_id_text(n) == _text(n)
        assert user_id_text(Sneaky(n)) == _text(n)
    for n in (TOO_LONG, TOO_LONG_NEG):
        assert len(_text(n)) == ID_FORM_CHARS + 1
        assert not int_id_sized(n)
        assert not bucketable_id(n) and not bucketable_id(Sneaky(n))
        assert user_id_text(n) is None and user_id_text(Sneaky(n)) is None
    assert bucketable_id(True) is False and bucketable_id(3.0) is False


@pytest.mark.parametrize(
    "huge",
    [TOO_LONG, TOO_LONG_NEG, 10**100_000, Sneaky(TOO_LONG)],
    ids=["4301-chars", "negative-4301-chars", "100001-digits", "subclass"],
)
def test_a_huge_int_id_is_passed_over_for_the_next_attribute(impl, huge):
    engine = engine_class(impl).from_snapshot(DOC)
    for key in ("k1", "k2", "k3", "k4", "k5", "k6", "k7", "k8"):
        alone = {"targeting_key": key}
        with_huge = {"user_id": huge, "targeting_key": key}
        for flag in ("ramp", "split"):
            want = engine.evaluate(flag, alone)
            got = engine.evaluate(flag, with_huge)
            assert (got.variant, got.reason) == (want.variant, want.reason)
            assert engine.variant(flag, engine.context(with_huge)) == want.variant
    # no other attribute: no bucket at all, the rule does not match
    assert engine.evaluate("ramp", {"user_id": huge}).reason == "DEFAULT"
    assert metric_user_id({"user_id": huge, "targeting_key": "k1"}) == "k1"
    assert metric_user_id({"user_id": huge}) is None
    assert exposure_user({"user_id": huge, "targeting_key": "k1"}) == "k1"


@pytest.mark.parametrize(
    "n",
    [LONGEST, LONGEST_NEG, 10**400 + 7, -(2**70)],
    ids=["4300", "neg-4300", "401", "neg-70-bits"],
)
def test_the_longest_int_id_buckets_as_its_text(impl, n):
    engine = engine_class(impl).from_snapshot(DOC)
    for flag in ("ramp", "split"):
        by_text = engine.evaluate(flag, {"user_id": _text(n), "targeting_key": "x"})
        by_int = engine.evaluate(flag, {"user_id": n, "targeting_key": "x"})
        assert (by_int.variant, by_int.reason) == (by_text.variant, by_text.reason)
        assert engine.variant(flag, engine.context({"user_id": n})) == by_text.variant


@settings(max_examples=examples(60), deadline=None)
@given(
    digits=st.integers(ID_FORM_CHARS - 3, ID_FORM_CHARS + 2),
    negative=st.booleans(),
    tail=st.integers(0, 10**6),
)
def test_both_evaluators_draw_the_line_alike(digits, negative, tail):
    from tests.conftest import IMPLS

    n = 10 ** (digits - 1) + tail
    n = -n if negative else n
    is_id = len(_text(n)) <= ID_FORM_CHARS
    assert int_id_sized(n) is is_id
    answers = []
    for impl in IMPLS.values():
        engine = engine_class(impl).from_snapshot(DOC)
        ctx = {"user_id": n, "targeting_key": "tk"}
        want_ctx = {"user_id": _text(n)} if is_id else {"targeting_key": "tk"}
        got = engine.variant("split", ctx)
        assert got == engine.variant("split", want_ctx)
        answers.append(got)
    assert len(set(answers)) == 1


@pytest.fixture
def manager(tmp_path, impl):
    now = datetime.now(timezone.utc)
    engine = engine_class(impl).from_snapshot({"flags": {}})
    m = DynamicConfigurationManager(state_dir=tmp_path, engine=engine, record_usage=False)
    assert m.create_ab_test(
        ABTestConfiguration(
            "t",
            "huge ids",
            now - timedelta(days=1),
            now + timedelta(days=1),
            {"control": 50.0, "b": 50.0},
            {"control": {}, "b": {}},
            ["buy"],
        )  # fmt: skip
    )
    yield m
    m.close()


def _logged(m):
    assert m.exposures.flush(10)
    return sorted((e.variant, e.user) for e in read_exposures(m.exposures.sinks[0].path))


def test_a_huge_int_id_is_exposed_under_the_targeting_key(manager):
    keys = [f"user-{i}" for i in range(20)]
    want = {}
    for key in keys:
        v = manager.get_ab_test_variant("t", {"user_id": TOO_LONG, "targeting_key": key})
        assert v == manager.get_ab_test_variant("t", {"targeting_key": key})
        want[key] = v
    # the longest id is one user with its text
    v = manager.get_ab_test_variant("t", {"user_id": LONGEST})
    assert manager.get_ab_test_variant("t", {"user_id": _text(LONGEST)}) == v
    # no other attribute: no variant, nothing logged
    assert manager.get_ab_test_variant("t", {"user_id": TOO_LONG}) is None
    assert _logged(manager) == sorted([*((v_, k) for k, v_ in want.items()), (v, _text(LONGEST))])


def test_a_huge_int_metric_user_is_not_filed(manager):
    ctx = {"user_id": TOO_LONG, "targeting_key": "user-1"}
    v = manager.get_ab_test_variant("t", ctx)
    manager.record_metric("t", "buy", 1.0, user_context=ctx)  # filed under the targeting key
    manager.record_metric("t", "buy", 2.0, user_id=TOO_LONG)  # no user: not filed
    manager.record_metric("t", "buy", 3.0, user_id=LONGEST)  # filed as its text
    assert manager.metrics.flush(10)
    events = sorted((e["user"], e["value"]) for e in read_metrics(manager.metrics.path))
    assert events == sorted([("user-1", 1.0), (_text(LONGEST), 3.0)])
    assert v is not None


def test_conversion_limits_do_not_change_the_answer(impl):
    engine = engine_class(impl).from_snapshot(DOC)
    n = 10**2000 + 12345
    want = engine.variant("split", {"user_id": _text(n)})
    old = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(640)
    try:
        assert engine.variant("split", {"user_id": n}) == want
        assert user_id_text(n) == _text(n)
    finally:
        sys.set_int_max_str_digits(old)
