"""flagd import, second audit, against flagd's in-process evaluator (``FlagdCore`` from
openfeature-flagd-core, what flagd's Python provider runs): null variant values, bucketing
keys that are the same for every user, ``$flagd.flagKey`` in ``in``, hostile context
values (Infinity, ints past 64 bits and past a double, -0.0 and 1e20 as versions).
"""

from __future__ import annotations

import copy
import logging
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfgcore.interop import InteropError, flagd
from tests.fuzz import examples
from tests.texts import any_text

core_mod = pytest.importorskip("openfeature.contrib.tools.flagd.core")
from openfeature.evaluation_context import EvaluationContext  # noqa: E402
from openfeature.exception import OpenFeatureError  # noqa: E402

VARIANTS = {"yes": "yes", "no": "no", "maybe": "maybe"}


@pytest.fixture(autouse=True)
def _quiet():
    logging.getLogger("openfeature").setLevel(logging.CRITICAL)


def _doc(targeting: Any, key: str = "f", default: str | None = "no") -> dict[str, Any]:
    flag: dict[str, Any] = {"state": "ENABLED", "variants": dict(VARIANTS), "targeting": targeting}
    if default is not None:
        flag["defaultVariant"] = default
    return {"flags": {key: flag}}


def _peer(doc: dict[str, Any], key: str, tk: str | None, attrs: dict[str, Any]) -> tuple:
    core = core_mod.FlagdCore()
    core.set_flags(copy.deepcopy(doc))  # FlagdCore renames keys of the document it is given
    try:
        p = core.resolve_string_value(key, "FB", EvaluationContext(tk, copy.deepcopy(attrs)))
    except OpenFeatureError as exc:  # flagd raises where a variant is unknown
        return ("FB", None, "ERROR", str(exc.error_code).split(".")[-1])
    code = p.error_code and str(p.error_code).split(".")[-1]
    return (p.value, p.variant, str(p.reason).split(".")[-1], code)


def _mine(engine: Any, key: str, tk: str | None, attrs: dict[str, Any]) -> tuple:
    r = flagd.resolve(engine, key, flagd.context(tk, attrs), "FB")
    return (r.value, r.variant, r.reason, r.error_code)


# -- a variant whose value is null ----------------------------------------------------


@pytest.mark.parametrize(
    ("targeting", "attrs", "code"),
    [
        (None, {}, "TYPE_MISMATCH"),  # the null default variant, no targeting
        ({"if": [{"var": "x"}, "b", None]}, {}, "TYPE_MISMATCH"),  # targeting -> default
        ({"if": [{"var": "x"}, "a", "b"]}, {"x": 1}, "GENERAL"),  # targeting picks it
    ],
)
def test_a_null_variant_value_is_refused_where_flagd_answers_an_error(targeting, attrs, code):
    # flagd's docs and schema: variant values are booleans, strings, numbers or objects.
    # flagd's evaluator answers an error for a null one; cfgcore served null, which
    # the OpenFeature provider turned into the caller's default with reason DEFAULT.
    flag: dict[str, Any] = {"state": "ENABLED", "variants": {"a": None, "b": "x"}}
    flag["defaultVariant"] = "a"
    if targeting is not None:
        flag["targeting"] = targeting
    doc = {"flags": {"nullish": flag, "fine": {"state": "ENABLED", "variants": {"on": "v"},
                                               "defaultVariant": "on"}}}  # fmt: skip
    assert _peer(doc, "nullish", "u1", attrs)[2:] == ("ERROR", code)
    with pytest.raises(InteropError) as err:
        flagd.to_snapshot(doc, source="flags.json")
    text = str(err.value)
    assert "flags.json" in text and "flags.nullish" in text and "'a'" in text
    assert "null" in text and "flags.fine" not in text
    snap = flagd.to_snapshot(doc, on_error="skip")
    assert list(snap.flags) == ["fine"] and "nullish" in snap.metadata["refused"]


def test_a_null_default_variant_still_defers_to_the_callers_default(make):
    # the way flagd spells "use the code default": defaultVariant null
    doc = _doc({"if": [{"var": "x"}, "yes", None]}, default=None)
    engine = make(flagd.to_snapshot(doc))
    for attrs in ({}, {"x": 1}):
        assert _mine(engine, "f", "u1", attrs) == _peer(doc, "f", "u1", attrs)


# -- bucketing keys every user shares -------------------------------------------------


@pytest.mark.parametrize(
    "key_expr",
    [{"var": "$flagd.flagKey"}, "literal", "", "\u00e9\U0001f600", 7, 1.5, True, 2**70],
)
@pytest.mark.parametrize("flag_key", ["f", "promo-b", "k\u00e9y"])
def test_a_constant_bucketing_key_is_hashed_at_import(make, key_expr, flag_key):
    # flagd hashes the same value for everyone: one bucket, decided by the value
    entries = [["yes", 3], ["no", 0], ["maybe", 5], ["no", 2]]
    doc = _doc({"fractional": [key_expr, *entries]}, key=flag_key)
    engine = make(flagd.to_snapshot(doc))
    for tk, attrs in (("u1", {}), ("u2", {"a": 1}), (None, {}), ("", {"x": "y"})):
        mine = _mine(engine, flag_key, tk, attrs)
        assert mine == _peer(doc, flag_key, tk, attrs), (key_expr, tk)
        assert mine[2] == "TARGETING_MATCH"


@pytest.mark.parametrize("flag_key", ["ab", "xyz", "a-b"])
def test_flag_key_buckets_agree_for_many_keys(make, flag_key):
    # the bucket moves with the flag's own key
    docs = [_doc({"fractional": [{"var": "$flagd.flagKey"}, ["yes", w], ["no", 10 - w]]},
                 key=flag_key) for w in range(1, 10)]  # fmt: skip
    for doc in docs:
        engine = make(flagd.to_snapshot(doc))
        assert _mine(engine, flag_key, "u", {}) == _peer(doc, flag_key, "u", {})


def test_a_non_string_literal_key_under_v2_is_refused():
    with pytest.raises(InteropError, match="flags.f.*v2"):
        flagd.to_snapshot(_doc({"fractional": [7, ["yes", 1]]}), "v2")


# -- $flagd.flagKey in "in" -----------------------------------------------------------


@pytest.mark.parametrize(
    "cond",
    [
        {"in": ["", {"var": "$flagd.flagKey"}]},
        {"in": ["x", {"var": "$flagd.flagKey"}]},
        {"in": ["pro", {"var": "$flagd.flagKey"}]},
        {"in": [{"var": "$flagd.flagKey"}, ["promo", "x"]]},
        {"in": [{"var": "$flagd.flagKey"}, ["pro", 1, True]]},
    ],
)
def test_flag_key_in_in_is_decided_at_import(make, cond):
    doc = _doc({"if": [cond, "yes", "maybe"]}, key="promo")
    engine = make(flagd.to_snapshot(doc))
    assert _mine(engine, "promo", "u1", {}) == _peer(doc, "promo", "u1", {})


# -- hostile context values -----------------------------------------------------------

_HOSTILE = st.sampled_from(
    [
        float("inf"), float("-inf"), float("nan"), -0.0, 0.0, 1.0, 1.5, 1e20, 1e16, 2.0,
        2**63, 2**64 - 1, 2**64, 2**70, -(2**64) - 1, 10**400, -(10**400),
        "Infinity", "-Infinity", "1e400", "\U0001f600", "", "1.0", "v1", "1.2.3-rc.1",
    ]
)  # fmt: skip
_CONDS = [
    {">": [{"var": "a"}, -1]},
    {"<": [{"var": "a"}, 1e20]},
    {">=": [{"var": "a"}, 0]},
    {"<=": [-5, {"var": "a"}, 5]},
    {"sem_ver": [{"var": "a"}, "<", "2.0.0"]},
    {"sem_ver": [{"var": "a"}, "=", "1.0.0"]},
    {"sem_ver": [{"var": "a"}, ">=", "0.0.0"]},
    {"!!": [{"var": "a"}]},
]


@settings(max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=_HOSTILE, which=st.integers(0, len(_CONDS) - 1), tk=st.sampled_from(["u1", ""]))
def test_hostile_numbers_agree_with_flagd(make_py_and_c, value, which, tk):
    cond = _CONDS[which]
    doc = _doc({"if": [cond, "yes", "no"]})
    want = _peer(doc, "f", tk, {"a": value})
    for make in make_py_and_c:
        engine = make(flagd.to_snapshot(doc))
        assert _mine(engine, "f", tk, {"a": value}) == want, (_CONDS[which], value)


@settings(max_examples=examples(100), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    value=st.one_of(
        st.integers(-(2**80), 2**80),
        st.sampled_from([2**64, -(2**64) - 1, 10**400, -(10**400), float("inf"), 1e300]),
        st.floats(allow_nan=False),
        any_text(max_size=4),  # a lone surrogate too: flagd cannot encode it (null)
        st.booleans(),
        st.dictionaries(any_text(max_size=2), st.integers(-(2**70), 2**70), max_size=2),
        st.dictionaries(st.text(max_size=2), any_text(max_size=2), max_size=2),
        st.lists(any_text(max_size=2), min_size=1, max_size=1),  # a [variant] entry
    )
)
def test_any_bucketing_value_hashes_as_flagd(make_py_and_c, value):
    # v3 hashes the deterministic CBOR of the value: ints past 64 bits are bignums
    doc = _doc({"fractional": [{"var": "a"}, ["yes", 1], ["no", 1], ["maybe", 1]]})
    want = _peer(doc, "f", "u1", {"a": value})
    for make in make_py_and_c:
        engine = make(flagd.to_snapshot(doc))
        assert _mine(engine, "f", "u1", {"a": value}) == want, value


def test_context_never_raises_on_numbers_past_a_double():
    for value in (10**400, -(10**400), [10**400], {"k": -(10**400)}):
        ctx = flagd.context("u", {"a": value})
        assert ctx["targetingKey"] == "u"


@pytest.mark.parametrize("op", ["<", "<=", ">", ">="])
@pytest.mark.parametrize("lit", [2**53, 2**53 + 1, 2**60 + 1, -(2**53) - 1, 1e16])
def test_numbers_past_2_53_order_exactly_as_flagd(make, op, lit):
    # flagd's evaluator orders Python numbers exactly: a context int, a numeric string's
    # float, a one-item array's number
    doc = _doc({"if": [{op: [{"var": "a"}, lit]}, "yes", "no"]})
    engine = make(flagd.to_snapshot(doc))
    for value in ["9007199254740992", "9007199254740993", [2**53 + 1], [9007199254740992],
                  2**53 + 1, 2**53, -(2**53) - 2, "1152921504606846977", [2**60 + 1],
                  2.0**53, 2**60]:  # fmt: skip
        assert _mine(engine, "f", "u1", {"a": value}) == _peer(doc, "f", "u1", {"a": value})


# -- cat as a bucketing key: JSONLogic's text of the value ------------------------------

_MANY = {f"v{i}": f"v{i}" for i in range(20)}


def _cat_doc(key_expr: Any) -> dict[str, Any]:
    entries = [[name, 1] for name in _MANY]
    return {"flags": {"f": {"state": "ENABLED", "variants": dict(_MANY), "defaultVariant": "v0",
                            "targeting": {"fractional": [key_expr, *entries]}}}}  # fmt: skip


@pytest.mark.parametrize(
    "key_expr",
    [
        {"cat": [{"var": "a"}]},
        {"cat": ["p-", {"var": "a"}]},
        {"cat": [{"var": "$flagd.flagKey"}, {"var": "a"}, "-s"]},
        {"cat": [{"var": "a.b"}]},
        {"cat": ["only", "literals"]},
    ],
)
def test_cat_bucketing_keys_hash_the_text_flagd_makes(make, key_expr):
    # ints as their digits (not a CBOR integer), floats as text, null or missing as
    # "null", objects as "[object Object]", arrays joined by ","
    doc = _cat_doc(key_expr)
    engine = make(flagd.to_snapshot(doc))
    values: list[Any] = [*range(-20, 20), 2**63, 2**64, 2**70, -(2**64), 10**400, 1.5, 2.0]
    values += [None, {"k": [1]}, {"b": 3}, [1, "x"], "s", "", "\u00e9"]
    for value in [*values, "MISSING"]:
        attrs = {} if value == "MISSING" else {"a": value}
        assert _mine(engine, "f", "tk", attrs) == _peer(doc, "f", "tk", attrs), value


@pytest.mark.parametrize(
    "value", [True, False, -0.0, 1e20, 0.1 + 0.2, 2.5e-7, float("inf"), [None]]
)
def test_cat_of_a_value_whose_text_the_evaluators_disagree_on_is_pythons(make, value):
    # Python's json-logic writes True, -0, 1e+20, 0.3, 2.5e-07, inf, "null"; JavaScript
    # true, 0, 100000000000000000000, 0.30000000000000004, 2.5e-7, Infinity, "". These
    # were null (no bucket, the default); since the fourth audit cfgcore hashes the text
    # flagd's Python in-process evaluator makes (README, Interop)
    doc = _cat_doc({"cat": ["p-", {"var": "a"}]})
    engine = make(flagd.to_snapshot(doc))
    assert _mine(engine, "f", "tk", {"a": value}) == _peer(doc, "f", "tk", {"a": value})


@pytest.mark.parametrize("value", [[], [1, 2, 3], ["yes", "x"], ["yes", True], [None, 1, 2]])
@pytest.mark.parametrize("tk", ["u1", "", None])
def test_an_array_bucketing_value_is_a_bucket_entry_not_a_key(make, value, tk):
    # flagd's ADR: a first argument evaluating to an array is part of the distribution;
    # one that is no valid [variant, weight] entry makes the fractional null (the default)
    doc = _doc({"fractional": [{"var": "a"}, ["yes", 1], ["no", 1], ["maybe", 1]]})
    engine = make(flagd.to_snapshot(doc))
    mine = _mine(engine, "f", tk, {"a": value})
    assert mine == _peer(doc, "f", tk, {"a": value}) == ("no", "no", "DEFAULT", None)


def test_a_valid_entry_array_as_bucketing_value_is_weighed_as_flagd_weighs_it(make):
    # once a documented difference (cfgcore answered the default): flagd buckets by
    # flagKey and targetingKey with the array as one more entry, first
    doc = _doc({"fractional": [{"var": "a"}, ["yes", 1], ["no", 1]]})
    engine = make(flagd.to_snapshot(doc))
    entry = {"a": ["maybe", 5]}
    for tk in ["u1", "u2", "u3", "u4"]:
        assert _mine(engine, "f", tk, entry) == _peer(doc, "f", tk, entry)
    mine = _mine(engine, "f", "u1", {"a": ["maybe", 10**6]})
    assert mine[:3] == ("maybe", "maybe", "TARGETING_MATCH")


@pytest.mark.parametrize(
    "value",
    ["\ud800", "a\udfffb", {"k": "\ud800"}, {"\ud800": 1}, ["\ud800"], ["x\udc00", 9]],
)
def test_a_bucketing_value_holding_a_lone_surrogate_answers_as_flagd(make_py_and_c, value):
    # flagd's CBOR encoder refuses the text: its fractional is null (the default), and a
    # [variant] entry naming such a variant fails its lookup (a GENERAL error); cfgcore
    # bucketed the text as if it were encodable
    doc = _doc({"fractional": [{"var": "a"}, ["yes", 1], ["no", 1], ["maybe", 1]]})
    for make in make_py_and_c:
        engine = make(flagd.to_snapshot(doc))
        for tk in ("u1", "u2", "u3", "u4"):
            assert _mine(engine, "f", tk, {"a": value}) == _peer(doc, "f", tk, {"a": value})


@pytest.mark.parametrize(
    "fractional",
    [["k\ud800", ["yes", 1], ["no", 1]], [{"cat": ["p\ud800", {"var": "a"}]}, ["yes", 1]]],
)
def test_a_document_bucketing_key_holding_a_lone_surrogate_is_refused(fractional):
    # (a document built in Python: no file holds the text) flagd answers the default
    # for every user; cfgcore refuses the flag, naming why
    doc = _doc({"fractional": fractional})
    assert _peer(doc, "f", "u1", {"a": "q"})[2] == "DEFAULT"
    with pytest.raises(InteropError) as err:
        flagd.to_snapshot(doc)
    assert "holds a lone surrogate: flagd cannot encode it" in str(err.value)
