"""flagd ``sem_ver`` on versions past 256 characters, third audit, against flagd's
in-process evaluator (``FlagdCore``).

cfgcore reads versions of at most 256 characters; flagd (the ``semver`` package) reads
any length, so ``sem_ver`` on a longer context value was null in cfgcore and a
comparison in flagd. ``flagd.context()`` now puts a stand-in of at most 256 characters
in ``#semver`` that orders as the version does against every constant of at most
``SEMVER_KEEP`` characters; a longer constant is compared with the version itself
(fourth audit).
"""

from __future__ import annotations

import copy
import functools
import logging
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfgcore.compiler import compile_snapshot
from cfgcore.interop import flagd
from tests.fuzz import examples

core_mod = pytest.importorskip("openfeature.contrib.tools.flagd.core")
from openfeature.evaluation_context import EvaluationContext  # noqa: E402

OPS = ["=", "!=", "<", "<=", ">", ">=", "^", "~"]


@pytest.fixture(autouse=True)
def _quiet():
    logging.getLogger("openfeature").setLevel(logging.CRITICAL)


def _doc(op: str, constant: str) -> dict[str, Any]:
    cond = {"sem_ver": [{"var": "a"}, op, constant]}
    flag = {"state": "ENABLED", "variants": {"yes": "yes", "no": "no", "null": "null"},
            "defaultVariant": "null", "targeting": {"if": [cond, "yes", "no"]}}  # fmt: skip
    return {"flags": {"f": flag}}


def _core(doc: dict[str, Any]) -> Any:
    """flagd's evaluator holding ``doc`` (a copy): it answers every context asked of it
    from the flags it parsed, changing none."""
    core = core_mod.FlagdCore()
    core.set_flags(copy.deepcopy(doc))
    return core


def _peer(doc: dict[str, Any], value: Any, core: Any = None) -> Any:
    core = _core(doc) if core is None else core
    return core.resolve_string_value("f", "FB", EvaluationContext("u", {"a": value})).value


def _mine(engine: Any, value: Any) -> Any:
    return flagd.resolve(engine, "f", flagd.context("u", {"a": value}), "FB").value


_NUMBER = st.one_of(
    st.sampled_from(["0", "1", "2", "10"]),
    st.integers(1, 9).flatmap(lambda d: st.integers(1, 400).map(lambda n: str(d) * n)),
)
_ALNUM = st.text("0129az-", min_size=1, max_size=300).filter(lambda t: not t.isdigit())
_IDENT = st.one_of(_NUMBER, _ALNUM)


@st.composite
def _long_version_and_constant(draw):
    parts = [draw(_NUMBER) for _ in range(3)]
    pre = draw(st.lists(_IDENT, max_size=8))
    # a constant that shares a prefix of the version's parts, then may differ
    keep = draw(st.integers(0, 3 + len(pre)))
    c_parts = (parts + pre)[:keep] + draw(st.lists(_IDENT, max_size=3))
    c_parts = [p[: draw(st.integers(1, 40))] for p in c_parts]
    c_parts = [p if not p.isdigit() else (p.lstrip("0") or "0") for p in c_parts]
    c_nums = [p if p.isdigit() else "1" for p in (c_parts + ["0", "0", "0"])[:3]]
    constant = ".".join(c_nums) + ("-" + ".".join(c_parts[3:]) if len(c_parts) > 3 else "")
    version = ".".join(parts) + ("-" + ".".join(pre) if pre else "")
    if len(version) <= 256:
        version += ("." if pre else "-") + "b" * draw(st.integers(257, 400))
    if draw(st.booleans()):
        version += "+build." + "x" * draw(st.integers(0, 300))
    if draw(st.booleans()):
        version = "v" + version
    return version, constant[: flagd.SEMVER_KEEP - 4].rstrip(".-")


@settings(max_examples=examples(250), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pair=_long_version_and_constant(), op=st.sampled_from(OPS))
def test_long_versions_compare_as_flagd_compares_them(make_py_and_c, pair, op):
    version, constant = pair
    doc = _doc(op, constant)
    want = _peer(doc, version)
    tables = compile_snapshot(flagd.to_snapshot(doc))  # each engine installs the tables
    for make in make_py_and_c:
        engine = make(tables)
        assert _mine(engine, version) == want, (op, constant, version[:80])


@pytest.mark.parametrize(
    "value",
    [
        "1.0.0-" + "a" * 300,
        "1.0.0-" + "9" * 300,
        "1" * 300 + ".0.0",
        "1.0.0-" + ".".join(["a"] * 200),
        "1.0.0+" + "b" * 300,
        "1.0.0-" + "1" * 5000,
        "1" * 5000,  # past Python's int digits: the semver package raises, flagd is null
        10**400,  # a number: its text is the version
        "1.0.0-" + "0" + "1" * 300,  # a numeric identifier with a leading zero: no version
        "1.0.0-01",  # the same, short: flagd's sem_ver is null, cfgcore's was a version
        "\u0661.0.0",  # an Arabic-Indic digit: no version to the semver package either
    ],
    ids=lambda v: f"{str(v)[:10]}..{len(str(v))}",
)
@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize(
    "constant", ["1.0.0", "1.0.0-a", "2.0.0", "1.0.0-" + "a" * 100], ids=["c1", "c2", "c3", "c4"]
)
def test_hostile_long_versions_agree_with_flagd(make, value, op, constant):
    doc = _doc(op, constant)
    tables, core = _hostile_flag(op, constant)
    engine = make(tables)
    assert _mine(engine, value) == _peer(doc, value, core)


@functools.cache
def _hostile_flag(op: str, constant: str) -> tuple[Any, Any]:
    """The flag of ``_doc(op, constant)`` imported and compiled, and flagd's evaluator
    holding it: built once for the values and evaluators of the test above (each case
    installs the tables in a new engine; flagd's evaluator changes nothing it answers)."""
    doc = _doc(op, constant)
    return compile_snapshot(flagd.to_snapshot(doc)), _core(doc)


def test_a_constant_past_the_stand_ins_reach_compares_as_flagd(make):
    # this was the difference left (null, which "if" reads as false); the fourth audit
    # compares such a constant with the long version itself (test_audit4_interop_flagd)
    constant = "1.0.0-" + "a" * 200
    doc = _doc(">", constant)
    engine = make(flagd.to_snapshot(doc))
    assert _mine(engine, "1.0.0-" + "a" * 300) == _peer(doc, "1.0.0-" + "a" * 300) == "yes"
    assert _mine(engine, "1.0.0-" + "a" * 250) == _peer(doc, "1.0.0-" + "a" * 250) == "yes"


def test_a_constant_flagd_reads_no_version_of_is_null_not_an_import_error(make):
    # '1.0.0-01' (a numeric identifier with a leading zero) made a SnapshotError
    for op in OPS:
        doc = _doc(op, "1.0.0-01")
        engine = make(flagd.to_snapshot(doc))
        for value in ["1.0.0", "1.0.0-01", "0.9.0"]:
            assert _mine(engine, value) == _peer(doc, value) == "no"


# -- fractional: an array as the bucketing value, and a null fractional in "if" --------


def _frac_doc(targeting: Any) -> dict[str, Any]:
    variants = {"yes": "Y", "no": "N", "maybe": "M", "true": "T", "1": "one"}
    flag = {"state": "ENABLED", "variants": variants, "defaultVariant": "no",
            "targeting": targeting}  # fmt: skip
    return {"flags": {"f": flag}}


def _peer_full(doc: dict[str, Any], tk: str | None, attrs: dict[str, Any]) -> tuple:
    from openfeature.exception import OpenFeatureError

    core = _core(doc)
    try:
        p = core.resolve_string_value("f", "FB", EvaluationContext(tk, copy.deepcopy(attrs)))
    except OpenFeatureError as exc:  # a variant flagd does not have
        return ("FB", None, "ERROR", str(exc.error_code).split(".")[-1])
    code = p.error_code and str(p.error_code).split(".")[-1]
    return (p.value, p.variant, str(p.reason).split(".")[-1], code)


def _mine_full(engine: Any, tk: str | None, attrs: dict[str, Any]) -> tuple:
    r = flagd.resolve(engine, "f", flagd.context(tk, attrs), "FB")
    return (r.value, r.variant, r.reason, r.error_code)


_ENTRY = st.one_of(
    st.tuples(
        st.sampled_from(["maybe", "yes", "zzz", "", True, False, 1, 1.5, None, ["x"]]),
        st.one_of(st.integers(-3, 10**6), st.just(2**31), st.sampled_from([5.0, True, "3"])),
    ).map(list),
    st.sampled_from([["maybe"], [], ["a", 1, 2], [True]]),
)
_TARGETINGS = [
    {"fractional": [{"var": "a"}, ["yes", 1], ["no", 1]]},
    {"fractional": [{"var": "a"}, ["yes", 0], ["no", 0]]},
    {"fractional": [{"var": "a"}, ["yes", 3], ["maybe", 2], ["no", 5]]},
    {"if": [{"fractional": [{"var": "a"}, ["yes", 1], ["no", 1]]}, "yes", "maybe"]},
    {"if": [{"fractional": [{"var": "a"}, [True, 1], [False, 1]]}, "maybe", "yes"]},
    {
        "if": [
            {"===": [{"var": "t"}, 1]},
            {"fractional": [{"var": "a"}, ["yes", 1], ["no", 1]]},
            "maybe",
        ]
    },  # fmt: skip
    {"if": [{"fractional": [["yes", 1], ["no", 1]]}, "yes", "maybe"]},
]


@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    which=st.integers(0, len(_TARGETINGS) - 1),
    entry=st.one_of(_ENTRY, st.sampled_from([None, "u9", 7])),
    tk=st.sampled_from(["u1", "u2", "user-3", "", None]),
    t=st.sampled_from([1, 0]),
)
def test_fractional_with_array_or_null_values_answers_as_flagd(make_py_and_c, which, entry, tk, t):
    doc = _frac_doc(_TARGETINGS[which])
    attrs = {"t": t} if entry is None else {"a": entry, "t": t}
    want = _peer_full(doc, tk, attrs)
    tables = compile_snapshot(flagd.to_snapshot(doc))  # each engine installs the tables
    for make in make_py_and_c:
        engine = make(tables)
        assert _mine_full(engine, tk, attrs) == want, (_TARGETINGS[which], entry, tk)


def test_an_array_entry_lands_in_each_bucket_as_in_flagd(make):
    doc = _frac_doc(_TARGETINGS[2])
    engine = make(flagd.to_snapshot(doc))
    seen = set()
    for i in range(200):
        attrs = {"a": ["maybe", 4]}
        want = _peer_full(doc, f"user-{i}", attrs)
        assert _mine_full(engine, f"user-{i}", attrs) == want
        seen.add(want[1])
    assert seen == {"yes", "maybe", "no"}


@pytest.mark.parametrize("which", [3, 4, 5])
def test_export_keeps_a_null_fractional_condition_false(make, which):
    doc = _frac_doc(_TARGETINGS[which])
    exported = flagd.from_snapshot(flagd.to_snapshot(doc))
    assert "#fraction" not in str(exported)
    again = make(flagd.to_snapshot(exported))
    for attrs, tk in [({}, "u1"), ({"a": None}, "u1"), ({"a": "k"}, ""), ({"a": "k"}, "u2"),
                      ({"a": ["maybe", 9]}, "u3"), ({"a": [1, 2, 3]}, "u1")]:  # fmt: skip
        attrs = {**attrs, "t": 1}
        want = _peer_full(doc, tk, attrs)
        assert _peer_full(exported, tk, attrs) == want, (attrs, tk)
        assert _mine_full(again, tk, attrs) == want, (attrs, tk)


@pytest.mark.parametrize("targeting", ["maybe", 1, ["yes"], True, "", [], 0, False, None, {}])
def test_targeting_that_is_no_object_answers_as_flagd(make, targeting):
    # flagd's evaluator: a falsy targeting is none (STATIC); any other that is no
    # JSONLogic object is "Invalid 'targeting' value" (PARSE_ERROR). cfgcore served
    # "maybe" for the targeting "maybe".
    doc = _frac_doc(targeting)
    want = _peer_full(doc, "u1", {})
    engine = make(flagd.to_snapshot(doc, on_error="keep"))
    assert _mine_full(engine, "u1", {}) == want
    if want[3] == "PARSE_ERROR":
        with pytest.raises(flagd.InteropError, match="targeting must be a JSONLogic object"):
            flagd.to_snapshot(doc)
