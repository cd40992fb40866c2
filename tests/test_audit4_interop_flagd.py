"""flagd, fourth audit: JSONLogic comparisons as flagd's Python in-process evaluator
(``FlagdCore``, json-logic) answers them, on both cfgcore evaluators.

* ``==``/``!=``: null's number is 0, so ``{"==": [{"var": "a"}, 0]}`` (or ``false``)
  holds for a missing or null ``a``; a null literal equals null, a missing value and
  the numbers equal to 0 (it was refused).
* ``===``/``!==`` and ``in`` a literal list: Python's ``==``, where ``True`` equals
  ``1`` and ``False`` equals ``0``; ``=== null`` holds for a missing or null value.
* A string's number is Python's ``float(text)`` (``"1_0"``, ``"infinity"``, Unicode
  digits), not JavaScript's ``Number(text)``; an array's text is json-logic's
  (``[True]`` is ``"True"``).
* ``<``, ``<=``, ``>``, ``>=`` with a boolean literal order it as 0 or 1 (refused before).
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

core_mod = pytest.importorskip("openfeature.contrib.tools.flagd.core")
from openfeature.evaluation_context import EvaluationContext  # noqa: E402
from openfeature.exception import OpenFeatureError  # noqa: E402

MISSING = object()


@pytest.fixture(autouse=True)
def _quiet():
    logging.getLogger("openfeature").setLevel(logging.CRITICAL)


def _doc(cond: Any) -> dict[str, Any]:
    flag = {"state": "ENABLED", "variants": {"yes": "Y", "no": "N", "d": "D"},
            "defaultVariant": "d", "targeting": {"if": [cond, "yes", "no"]}}  # fmt: skip
    return {"flags": {"f": flag}}


def _peer(core: Any, attrs: dict[str, Any]) -> tuple:
    try:
        p = core.resolve_string_value("f", "FB", EvaluationContext("u1", copy.deepcopy(attrs)))
    except OpenFeatureError as exc:
        return ("FB", None, str(exc.error_code).split(".")[-1])
    return (p.value, p.variant, str(p.reason).split(".")[-1])


def _mine(engine: Any, attrs: dict[str, Any]) -> tuple:
    r = flagd.resolve(engine, "f", flagd.context("u1", attrs), "FB")
    return (r.value, r.variant, r.reason)


LITERALS = [None, 0, 1, -1, 1.5, 0.0, True, False, "", "1", "0", "a", "true", " 1 ", "1_0",
            "Infinity", "1e3", "\u0661", 2**60]  # fmt: skip
VALUES = [MISSING, None, 0, 1, 1.0, -1, 1.5, True, False, "", "0", "1", "a", "true", [], [1],
          ["1"], [None], [0], ["a"], ["a", "b"], {}, {"a": 1}, "Infinity", "infinity", "1_0",
          " 1 ", "1e3", "\u0661", 2**60, float("inf"), "inf", "nan", [[1]], [True], [1.5, None],
          "-0"]  # fmt: skip


def _check(cond: Any, make_py_and_c: Any) -> None:
    doc = _doc(cond)
    try:
        snap = flagd.to_snapshot(doc)
    except InteropError:
        return  # refused (string ordering, null in "<"): checked below that it says so
    core = core_mod.FlagdCore()
    core.set_flags(copy.deepcopy(doc))
    engines = [make(snap) for make in make_py_and_c]
    for v in VALUES:
        attrs = {} if v is MISSING else {"a": v}
        want = _peer(core, attrs)
        for engine in engines:
            assert _mine(engine, attrs) == want, (cond, "missing" if v is MISSING else v)


@pytest.mark.parametrize("op", ["==", "!=", "===", "!=="])
@pytest.mark.parametrize("lit", LITERALS, ids=repr)
def test_equality_answers_as_flagds_python_evaluator(make_py_and_c, op, lit):
    _check({op: [{"var": "a"}, lit]}, make_py_and_c)
    _check({op: [lit, {"var": "a"}]}, make_py_and_c)


@pytest.mark.parametrize("op", ["<", "<=", ">", ">="])
@pytest.mark.parametrize("lit", [0, 1, -1, 1.5, 0.0, True, False, 2**60], ids=repr)
def test_ordering_answers_as_flagds_python_evaluator(make_py_and_c, op, lit):
    _check({op: [{"var": "a"}, lit]}, make_py_and_c)
    _check({op: [lit, {"var": "a"}]}, make_py_and_c)


@pytest.mark.parametrize(
    "hay",
    [[0], [1], [0.0], [True], [False], [0, "a"], [True, "1"], [1.0, False], ["", "a b"], [1.5]],
    ids=repr,
)
def test_in_a_literal_list_answers_as_flagds_python_evaluator(make_py_and_c, hay):
    _check({"in": [{"var": "a"}, hay]}, make_py_and_c)


def test_the_cases_that_differed_before(make_py_and_c):
    # each of these answered the other branch before (or the import refused the flag)
    cases = [
        ({"==": [{"var": "a"}, 0]}, {}, "Y"),  # null's number is 0
        ({"==": [{"var": "a"}, False]}, {"a": None}, "Y"),
        ({"!=": [{"var": "a"}, 0]}, {}, "N"),
        ({"==": [{"var": "a"}, None]}, {"a": 0}, "Y"),
        ({"===": [{"var": "a"}, None]}, {}, "Y"),
        ({"===": [{"var": "a"}, 1]}, {"a": True}, "Y"),  # Python: True == 1
        ({"!==": [{"var": "a"}, False]}, {"a": 0}, "N"),
        ({"in": [{"var": "a"}, [1, "x"]]}, {"a": True}, "Y"),
        ({"==": [{"var": "a"}, 10]}, {"a": "1_0"}, "Y"),  # float("1_0") is 10.0
        ({">": [{"var": "a"}, 0]}, {"a": "infinity"}, "Y"),
        ({"==": [{"var": "a"}, 1]}, {"a": "\u0661"}, "Y"),  # an Arabic-Indic one
        ({"==": [{"var": "a"}, "true"]}, {"a": [True]}, "N"),  # str([True]) is "True"
        ({"==": [{"var": "a"}, "True"]}, {"a": [True]}, "Y"),
        ({"<": [{"var": "a"}, True]}, {"a": 0}, "Y"),
    ]
    for cond, attrs, want in cases:
        core = core_mod.FlagdCore()
        core.set_flags(_doc(cond))
        assert _peer(core, attrs)[0] == want, cond
        for make in make_py_and_c:
            assert _mine(make(flagd.to_snapshot(_doc(cond))), attrs)[0] == want, cond


@pytest.mark.parametrize("cond", [{">=": [None, {"var": "a"}]}])
def test_null_ordering_is_still_refused_naming_the_flag(cond):
    # json-logic orders null as "null" text against a string: not lowered, refused
    # with the flag named (ordering against a string literal is lowered since the
    # fifth audit: tests/test_audit5_interop_flagd_order.py)
    with pytest.raises(InteropError, match=r"flags\.f\S*: '(<|>=)' with a non-numeric literal"):
        flagd.to_snapshot(_doc(cond))


# -- export: a v3 shorthand fractional inside "if" ----------------------------------------
_SHORTHAND = {"fractional": [["yes", 1], ["no", 1]]}
_SHORTHAND_TARGETINGS = [
    {"if": [{"===": [{"var": "t"}, "x"]}, _SHORTHAND, "maybe"]},
    {"if": [{"===": [{"var": "t"}, "x"]}, _SHORTHAND]},
    {"if": [{"fractional": [["yes", 1], ["no", 1]]}, "yes", "maybe"]},
    {"if": [{"fractional": [["yes", 1], ["maybe", 3]]}, "no", "maybe"]},
    {"if": [{"===": [{"var": "t"}, "x"]}, _SHORTHAND, {"===": [{"var": "t"}, "y"]},
            {"if": [{"fractional": [[False, 1], [True, 3]]}, "no", "maybe"]}, "maybe"]},
    {"if": [{"in": [{"var": "t"}, ["x", "y"]]},
            {"fractional": [["yes", 1], ["maybe", 2], ["no", 3]]}, "no"]},
    _SHORTHAND,
]  # fmt: skip


def _full(core_or_engine: Any, tk: str | None, attrs: dict[str, Any]) -> tuple:
    if isinstance(core_or_engine, core_mod.FlagdCore):
        try:
            ctx = EvaluationContext(tk, copy.deepcopy(attrs))
            p = core_or_engine.resolve_string_value("f", "FB", ctx)
        except OpenFeatureError as exc:
            return ("FB", None, str(exc.error_code).split(".")[-1])
        return (p.value, p.variant, str(p.reason).split(".")[-1])
    r = flagd.resolve(core_or_engine, "f", flagd.context(tk, attrs), "FB")
    return (r.value, r.variant, r.reason)


@pytest.mark.parametrize("which", range(len(_SHORTHAND_TARGETINGS)))
def test_a_shorthand_fractional_inside_if_exports_and_answers_as_flagd(make_py_and_c, which):
    flag = {"state": "ENABLED", "variants": {"yes": "Y", "no": "N", "maybe": "M"},
            "defaultVariant": "no", "targeting": _SHORTHAND_TARGETINGS[which]}  # fmt: skip
    doc = {"flags": {"f": flag}}
    exported = flagd.from_snapshot(flagd.to_snapshot(doc))  # refused before
    original, written = core_mod.FlagdCore(), core_mod.FlagdCore()
    original.set_flags(copy.deepcopy(doc))
    written.set_flags(copy.deepcopy(exported))
    engines = [make(flagd.to_snapshot(exported)) for make in make_py_and_c]
    seen = set()
    for tk in [None, "", *(f"user-{i}" for i in range(40))]:
        for t in ["x", "y", "z", None]:
            attrs = {} if t is None else {"t": t}
            want = _full(original, tk, attrs)
            seen.add(want)
            assert _full(written, tk, attrs) == want, (exported, tk, t)
            for engine in engines:
                assert _full(engine, tk, attrs) == want, (exported, tk, t)
    assert len(seen) > 1  # the cases do reach different answers


# -- context(bucketing=...): the entry-reading mapping only where a flag reads it -----------
_ENTRY_DOC = {
    "flags": {
        "by-a": {"state": "ENABLED", "variants": {"yes": "Y", "no": "N", "maybe": "M"},
                 "defaultVariant": "no",
                 "targeting": {"fractional": [{"var": "a"}, ["yes", 1], ["no", 2]]}},
        "by-u-g": {"state": "ENABLED", "variants": {"yes": "Y", "no": "N", "maybe": "M"},
                   "defaultVariant": "no",
                   "targeting": {"if": [{"fractional": [{"var": "u.g"}, ["yes", 1], ["no", 1]]},
                                        "maybe", "yes"]}},
        "in-groups": {"state": "ENABLED", "variants": {"yes": "Y", "no": "N", "maybe": "M"},
                      "defaultVariant": "no",
                      "targeting": {"if": [{"in": ["admin", {"var": "groups"}]}, "yes", "no"]}},
    }
}  # fmt: skip


def test_bucketing_attributes_names_what_the_flags_bucket_by():
    snap = flagd.to_snapshot(_ENTRY_DOC)
    assert flagd.bucketing_attributes(snap) == {"a", "u.g"}


def test_an_array_no_flag_buckets_by_leaves_a_plain_dict(make):
    engine = make(flagd.to_snapshot(_ENTRY_DOC))
    attrs = {"groups": ["admin"], "b": ["maybe", 3]}
    # before: any one-item list or [value, int] pair made the slower entry-reading mapping
    assert type(flagd.context("u1", attrs, bucketing=engine)) is dict
    assert type(flagd.context("u1", attrs, bucketing=engine.source)) is dict
    assert type(flagd.context("u1", attrs, bucketing={"a"})) is dict
    assert type(flagd.context("u1", attrs)) is not dict  # no bucketing given: as before
    assert type(flagd.context("u1", {"a": ["maybe", 3]}, bucketing=engine)) is not dict
    assert type(flagd.context("u1", {"u": {"g": ["yes"]}}, bucketing=engine)) is not dict


_ARRAYS = st.one_of(
    st.sampled_from([["maybe"], ["yes", 5], ["no", 0], ["zzz", 2], [True, 1], ["admin"], []]),
    st.text("ab", max_size=3),
    st.none(),
)


@settings(max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    a=_ARRAYS,
    g=_ARRAYS,
    groups=_ARRAYS,
    tk=st.sampled_from(["u1", "u2", "user-3", "", None]),
)
def test_contexts_with_bucketing_answer_as_flagd(make_py_and_c, a, g, groups, tk):
    attrs: dict[str, Any] = {"a": a, "u": {"g": g}, "groups": groups}
    core = core_mod.FlagdCore()
    core.set_flags(copy.deepcopy(_ENTRY_DOC))
    for make in make_py_and_c:
        engine = make(flagd.to_snapshot(_ENTRY_DOC))
        for bucketing in (None, engine, engine.source):
            ctx = flagd.context(tk, attrs, bucketing=bucketing)
            for key in _ENTRY_DOC["flags"]:
                try:
                    p = core.resolve_string_value(key, "FB", EvaluationContext(tk, attrs))
                    want: tuple = (p.value, p.variant)
                except OpenFeatureError:
                    want = ("FB", None)
                r = flagd.resolve(engine, key, ctx, "FB")
                assert (r.value, r.variant) == want, (key, attrs, tk, bucketing)


# -- sem_ver: a constant over 116 characters against a version over 256 -------------------
def _semver_doc(op: str, constant: str) -> dict[str, Any]:
    cond = {"sem_ver": [{"var": "a"}, op, constant]}
    flag = {"state": "ENABLED", "variants": {"yes": "yes", "no": "no", "null": "null"},
            "defaultVariant": "null", "targeting": {"if": [cond, "yes", "no"]}}  # fmt: skip
    return {"flags": {"f": flag}}


_IDENT = st.one_of(
    st.sampled_from(["0", "1", "2", "10", "a", "b", "alpha", "rc"]),
    st.text("0129az-", min_size=1, max_size=60).filter(
        lambda t: not (t.isdigit() and len(t) > 1 and t[0] == "0")
    ),
)


@st.composite
def _long_pair(draw):
    nums = [draw(st.sampled_from(["0", "1", "2", "11", "1" * 130])) for _ in range(3)]
    shared = draw(st.lists(_IDENT, min_size=0, max_size=8))
    v_pre = shared + draw(st.lists(_IDENT, max_size=6))
    c_pre = shared[: draw(st.integers(0, len(shared)))] + draw(st.lists(_IDENT, max_size=4))
    c_nums = (
        nums if draw(st.booleans()) else [draw(st.sampled_from(["0", "1", "2"])) for _ in "xyz"]
    )
    version = ".".join(nums) + ("-" + ".".join(v_pre) if v_pre else "")
    if len(version) <= 256:
        version += ("." if v_pre else "-") + "b" * draw(st.integers(257, 300))
    constant = ".".join(c_nums) + ("-" + ".".join(c_pre) if c_pre else "")
    if len(constant) <= 116:
        constant += ("." if c_pre else "-") + "c" * (117 - len(constant))
    if len(constant) > 250:  # (its normal form, at most 4 characters longer, <= 256)
        constant = constant[:250].rstrip(".-")
    return version, constant


@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pair=_long_pair(), op=st.sampled_from(["=", "!=", "<", "<=", ">", ">=", "^", "~"]))
def test_long_constants_against_long_versions_answer_as_flagd(make_py_and_c, pair, op):
    version, constant = pair
    assert 116 < len(constant) <= 250 and len(version) > 256
    doc = _semver_doc(op, constant)
    core = core_mod.FlagdCore()
    core.set_flags(copy.deepcopy(doc))
    want = core.resolve_string_value("f", "FB", EvaluationContext("u", {"a": version})).value
    for make in make_py_and_c:
        engine = make(flagd.to_snapshot(doc))
        got = flagd.resolve(engine, "f", flagd.context("u", {"a": version}), "FB").value
        assert got == want, (op, constant[:60], version[:60])
        short = "1.0.0-" + "a" * 20  # a short version still compares through #semver
        want_short = core.resolve_string_value(
            "f", "FB", EvaluationContext("u", {"a": short})
        ).value
        got_short = flagd.resolve(engine, "f", flagd.context("u", {"a": short}), "FB").value
        assert got_short == want_short


def test_the_long_constant_case_that_differed_before(make_py_and_c):
    constant = "1.0.0-" + "a" * 150
    for op, value, want in [(">", "1.0.0-" + "a" * 300, "yes"), ("<", "1.0.0-" + "a" * 300, "no"),
                            ("=", "1.0.0-" + "a" * 300, "no"),
                            ("<", "1.0.0-" + "a" * 140 + "b" * 200, "no")]:  # fmt: skip
        doc = _semver_doc(op, constant)
        core = core_mod.FlagdCore()
        core.set_flags(copy.deepcopy(doc))
        assert (
            core.resolve_string_value("f", "FB", EvaluationContext("u", {"a": value})).value == want
        )
        for make in make_py_and_c:
            engine = make(flagd.to_snapshot(doc))
            got = flagd.resolve(engine, "f", flagd.context("u", {"a": value}), "FB").value
            assert got == want, (op, value[:50])


def test_a_constant_over_256_characters_is_refused_naming_the_flag():
    doc = _semver_doc(">", "1.0.0-" + "a" * 300)
    with pytest.raises(
        InteropError, match=r"flags\.f\S*: sem_ver with a version constant over 256"
    ):
        flagd.to_snapshot(doc)


# -- cat: the text flagd's Python evaluator hashes -----------------------------------------
@pytest.mark.parametrize(
    "value",
    [True, False, 2.5, 0.1 + 0.2, 1e20, -0.0, [True, None], [1.5, "x"], None, "s", 7, {"k": 1}],
    ids=repr,
)
def test_cat_bucketing_keys_hash_the_text_flagd_makes(make_py_and_c, value):
    # a boolean is "True"/"False" and a float "%.15g" in json-logic's cat; cfgcore
    # hashed no text for them (the default variant) or JavaScript's
    frac = {"fractional": [{"cat": [{"var": "$flagd.flagKey"}, "-", {"var": "a"}]},
                           ["on", 1], ["off", 1], ["mid", 1]]}  # fmt: skip
    flag = {"state": "ENABLED", "variants": {"on": "ON", "off": "OFF", "mid": "MID"},
            "defaultVariant": None, "targeting": frac}  # fmt: skip
    doc = {"flags": {f"f{i}": flag for i in range(12)}}
    core = core_mod.FlagdCore()
    core.set_flags(copy.deepcopy(doc))
    for make in make_py_and_c:
        engine = make(flagd.to_snapshot(doc))
        for key in doc["flags"]:
            p = core.resolve_string_value(key, "FB", EvaluationContext("u", {"a": value}))
            r = flagd.resolve(engine, key, flagd.context("u", {"a": value}), "FB")
            assert (r.value, r.variant) == (p.value, p.variant), (key, value)


# -- export: what flagd's context does not have is refused --------------------------------
@pytest.mark.parametrize(
    ("targeting", "words"),
    [
        ({"if": [{"!=": [{"var": "a"}, 1]}, "off"]}, "attribute 'a#num': derived"),
        ({"if": [{"<": [{"var": "a"}, 3]}, "on", "off"]}, "derived by cfgcore's flagd import"),
        ({"if": [{"sem_ver": [{"var": "a"}, ">=", "1.2.3"]}, "on"]}, "'a#semver': derived"),
        ({"fractional": [{"var": "a"}, ["on", 0], ["off", 0]]}, "weights are all 0"),
    ],
)
def test_export_refuses_what_flagd_would_read_differently(targeting, words):
    # the derived attributes (a#num, ...) were written as {"var": "a#num"}, which
    # flagd reads as a missing value; a fractional with no weight lost the entry that
    # flagd weighs from an array value: each exported document answered otherwise
    flag = {"state": "ENABLED", "variants": {"on": "ON", "off": "OFF"},
            "defaultVariant": "off", "targeting": targeting}  # fmt: skip
    snap = flagd.to_snapshot({"flags": {"f": flag}})
    with pytest.raises(InteropError, match=r"flags\.f: does not fit flagd: .*" + words):
        flagd.from_snapshot(snap)


def test_the_derived_attribute_export_answered_otherwise_in_flagd():
    # what the old export wrote for {"!=": [{"var": "a"}, 1]}, run in flagd
    num = {"or": [{"===": [{"var": "a#num"}, 1]}, {"===": [{"var": "a#snum"}, 1]}]}
    written = {"if": [{"!": [num]}, "on", "off"]}
    original = {"if": [{"!=": [{"var": "a"}, 1]}, "on", "off"]}
    answers = []
    for targeting in (original, written):
        flag = {"state": "ENABLED", "variants": {"on": "ON", "off": "OFF"},
                "defaultVariant": "off", "targeting": targeting}  # fmt: skip
        core = core_mod.FlagdCore()
        core.set_flags({"flags": {"f": flag}})
        ctx = EvaluationContext("u", {"a": 1})
        answers.append(core.resolve_string_value("f", "FB", ctx).value)
    assert answers == ["OFF", "ON"]


@pytest.mark.parametrize(
    ("tk", "attrs"),
    [(None, {"targetingKey": "x"}), ("y", {"targetingKey": "x"}), ("x", {"targetingKey": "y"}),
     (None, {"$flagd": {"flagKey": "f", "other": "x"}}), ("x", {"$flagd": "x"})],
)  # fmt: skip
def test_attributes_named_like_flagds_own_are_overridden_as_in_flagd(make_py_and_c, tk, attrs):
    # an attribute "targetingKey" stood in for a missing targeting key (flagd: null)
    cond = {"or": [{"==": [{"var": "targetingKey"}, "x"]}, {"==": [{"var": "$flagd.other"}, "x"]}]}
    flag = {"state": "ENABLED", "variants": {"on": "ON", "off": "OFF"}, "defaultVariant": "off",
            "targeting": {"if": [cond, "on", "off"]}}  # fmt: skip
    doc = {"flags": {"f": flag}}
    core = core_mod.FlagdCore()
    core.set_flags(copy.deepcopy(doc))
    want = core.resolve_string_value("f", "FB", EvaluationContext(tk, copy.deepcopy(attrs))).value
    for make in make_py_and_c:
        engine = make(flagd.to_snapshot(doc))
        assert flagd.resolve(engine, "f", flagd.context(tk, attrs), "FB").value == want
