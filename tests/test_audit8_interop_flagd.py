"""flagd import, eighth audit: JSONLogic operand forms and variant names, checked
against flagd's Python evaluator (``FlagdCore``) on both cfgcore evaluators.

Found by differential fuzzing against the peer:

* an operation whose argument is not an array (``{"if": "on"}``,
  ``{"and": {"var": "a"}}``): json-logic, as JSONLogic's reference json-logic-js,
  reads it as the only operand; cfgcore iterated it (the characters of a string, the
  keys of an object), importing a flag that answered ``GENERAL`` errors or the wrong
  branch;
* ``{"and": []}``: null to json-logic (undefined to json-logic-js), false to every
  test; cfgcore read it as true, as flagd's Go evaluator does (diegoholiveira/
  jsonlogic). cfgcore now follows the Python evaluator and JSONLogic's reference;
* ``{"!": []}``/``{"!!": []}``: a test of null (true/false); refused with a bare
  ``IndexError`` message;
* a ``var`` naming a variant with a value that is no string: flagd names the variant
  by its text (``1`` -> "1", ``1.5`` -> "1.5", ``1.0`` -> "1.0", ``true`` -> "true");
  cfgcore answered an error (GENERAL) for every such value;
* a variant named "": flagd's Python evaluator reads it as no variant (the caller's
  default for ``defaultVariant: ""``, an error where targeting names it), its Go
  evaluator serves it; cfgcore served it. Now refused, naming the flag;
* ``{"var": "$flagd"}``, flagd's own object (always set, truthy, "[object Object]" to
  ``==`` and ``cat``, hashed with its timestamp): cfgcore read it as missing. Refused;
* ``starts_with``/``ends_with`` whose prefix (suffix) is a ``var``
  (``{"starts_with": ["abc", {"var": "a"}]}``): json-logic evaluates it first, cfgcore
  read it as a malformed argument (false for everyone);
* ``flagd.resolve``'s type check: an int default was served a float value;
* ``sem_ver`` with the context value third (``["1.2.3", "<", {"var": "v"}]``) or a
  number as the version (``[{"var": "v"}, ">", 1]``, read as "1"): false for everyone
  in cfgcore. ``sem_ver`` of ``$flagd.timestamp`` (flagd reads the seconds as a
  version) is refused;
* a three-operand comparison whose third operand is null (a missing or null ``var``, a
  literal null): json-logic compares only the first two (``op_less_than(a, b, c=None)``);
  cfgcore compared the second with null too;
* a whole targeting ``{"$ref": e}`` whose evaluator is no object: flagd judges the
  substituted targeting (a falsy one is none, STATIC; another is PARSE_ERROR); cfgcore
  served the value as a variant name.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfgcore import Engine
from cfgcore.interop import InteropError, flagd
from tests.fuzz import examples

core_mod = pytest.importorskip("openfeature.contrib.tools.flagd.core")
from openfeature.evaluation_context import EvaluationContext  # noqa: E402
from openfeature.exception import OpenFeatureError  # noqa: E402

VARIANTS = {"yes": "Y", "no": "N", "maybe": "M", "1": "one", "1.0": "one-float",
            "1.5": "one-and-a-half", "-3": "minus-three", "0": "zero", "true": "T",
            "false": "F", "nan": "not-a-number", "1e+20": "big"}  # fmt: skip


@pytest.fixture(autouse=True)
def _quiet():
    logging.getLogger("openfeature").setLevel(logging.CRITICAL)


def _doc(targeting: Any, default: str | None = "no") -> dict[str, Any]:
    flag: dict[str, Any] = {"state": "ENABLED", "variants": dict(VARIANTS), "targeting": targeting}
    if default is not None:
        flag["defaultVariant"] = default
    return {"flags": {"f": flag}}


def _peer(doc: dict[str, Any], tk: str | None, attrs: dict[str, Any]) -> tuple:
    core = core_mod.FlagdCore()
    core.set_flags(copy.deepcopy(doc))
    try:
        p = core.resolve_string_value("f", "FB", EvaluationContext(tk, copy.deepcopy(attrs)))
    except OpenFeatureError as exc:
        return ("FB", None, "ERROR", str(exc.error_code).split(".")[-1])
    code = p.error_code and str(p.error_code).split(".")[-1]
    return (p.value, p.variant, str(p.reason).split(".")[-1], code)


def _agree(make_py_and_c, doc: dict[str, Any], contexts: list[tuple[Any, dict]]) -> None:
    snap = flagd.to_snapshot(copy.deepcopy(doc))
    engines = [make(snap) for make in make_py_and_c]
    for tk, attrs in contexts:
        want = _peer(doc, tk, attrs)
        for engine in engines:
            r = flagd.resolve(engine, "f", flagd.context(tk, attrs), "FB")
            got = (r.value, r.variant, r.reason, r.error_code)
            assert got == want, (doc["flags"]["f"]["targeting"], tk, attrs)


CONTEXTS = [("u", {}), ("u", {"a": "yes"}), ("u", {"a": ""}), ("u", {"a": 0}),
            ("u", {"a": "maybe"}), ("u", {"a": [1]}), ("u", {"a": []})]  # fmt: skip


@pytest.mark.parametrize(
    "targeting, answers",
    [
        # the operand of "if" that is no array is its only operand: the else branch
        ({"if": "yes"}, {"u": "Y"}),
        ({"if": {"var": "a"}}, {"yes": "Y", "maybe": "M"}),
        ({"if": [{"and": {"var": "a"}}, "yes", "no"]}, {"yes": "Y", "": "N"}),
        ({"if": [{"or": {"var": "a"}}, "yes", "no"]}, {"yes": "Y", "": "N"}),
        ({"if": [{"and": ""}, "yes", "no"]}, {"yes": "N"}),
        ({"if": [{"and": []}, "yes", "no"]}, {"yes": "N"}),
        ({"if": [{"!": [{"and": []}]}, "yes", "no"]}, {"yes": "Y"}),
        ({"if": [{"or": []}, "yes", "no"]}, {"yes": "N"}),
        ({"if": [{"!": []}, "yes", "no"]}, {"yes": "Y"}),
        ({"if": [{"!!": []}, "yes", "no"]}, {"yes": "N"}),
    ],
)
def test_operands_that_are_not_arrays_and_empty_ones(make_py_and_c, targeting, answers):
    doc = _doc(targeting)
    _agree(make_py_and_c, doc, CONTEXTS)
    snap = flagd.to_snapshot(copy.deepcopy(doc))
    for make in make_py_and_c:  # the peer's answers, spelled out (a peer change shows)
        engine = make(snap)
        for a, value in answers.items():
            attrs = {} if a == "u" else {"a": a}
            assert flagd.resolve(engine, "f", flagd.context("u", attrs), "FB").value == value


@pytest.mark.parametrize(
    "value, variant",
    [(1, "1"), (1.0, "1.0"), (1.5, "1.5"), (-3, "-3"), (-3.0, None), (0, "0"), (0.0, None),
     (True, "true"), (False, "false"), (float("nan"), "nan"), (1e20, "1e+20"),
     (10**20, None), ("1", "1"), ("true", "true"), (2, None), ([1], None)],
)  # fmt: skip
def test_a_var_naming_a_variant_by_a_value_that_is_no_string(make_py_and_c, value, variant):
    doc = _doc({"var": "a"})
    _agree(make_py_and_c, doc, [("u", {"a": value})])
    snap = flagd.to_snapshot(copy.deepcopy(doc))
    for make in make_py_and_c:
        r = flagd.resolve(make(snap), "f", flagd.context("u", {"a": value}), "FB")
        if variant is None:
            assert (r.reason, r.error_code) == ("ERROR", "GENERAL")
        else:
            assert (r.variant, r.value) == (variant, VARIANTS[variant])


def test_a_variant_named_like_an_array_under_a_var_is_refused():
    doc = {"flags": {"f": {"state": "ENABLED", "variants": {"d": 1, "[1]": 2},
                           "defaultVariant": "d", "targeting": {"var": "a"}}}}  # fmt: skip
    with pytest.raises(InteropError, match=r"flags\.f\S*: a var names a variant .*'\[1\]'"):
        flagd.to_snapshot(doc)
    doc["flags"]["f"]["targeting"] = {"if": [{"var": "a"}, "[1]", "d"]}  # named literally
    assert set(flagd.to_snapshot(doc).flags) == {"f"}


@pytest.mark.parametrize(
    "flag",
    [
        {"variants": {"": "E", "d": "D"}, "defaultVariant": ""},
        {"variants": {"": "E", "d": "D"}, "defaultVariant": "d",
         "targeting": {"if": [{"==": [{"var": "a"}, ""]}, ""]}},
        {"variants": {"": "E", "d": "D"}, "defaultVariant": "d", "targeting": {"var": "a"}},
    ],
)  # fmt: skip
def test_a_variant_named_empty_is_refused(flag):
    doc = {"flags": {"f": {"state": "ENABLED", **flag}}}
    # flagd's Python evaluator never serves it: the caller's default or an error
    for attrs in ({"a": ""}, {"a": "d"}, {}):
        value, variant, _, _ = _peer(doc, "u", attrs)
        assert variant != "" and value != "E"
    with pytest.raises(InteropError, match=r"flags\.f\S*: variant name '' is read as no variant"):
        flagd.to_snapshot(doc)


FLAGD = {"var": "$flagd"}


@pytest.mark.parametrize(
    "targeting, peer_answer",
    [
        ({"if": [FLAGD, "yes", "no"]}, "Y"),
        ({"if": [{"!": FLAGD}, "yes", "no"]}, "N"),
        ({"if": [{"==": [FLAGD, "[object Object]"]}, "yes", "no"]}, "Y"),
        ({"if": [{"!=": [FLAGD, None]}, "yes", "no"]}, "Y"),
        ({"fractional": [{"cat": [FLAGD, "q"]}, ["yes", 1], ["no", 1]]}, "Y"),
        ({"var": ["$flagd", "yes"]}, "FB"),  # an object names no variant: an error
    ],
)
def test_a_var_of_flagds_own_object_is_refused(targeting, peer_answer):
    doc = _doc(targeting)
    assert _peer(doc, "u", {})[0] == peer_answer  # never "missing", as cfgcore read it
    with pytest.raises(InteropError, match=r"flags\.f\S*: var '\$flagd' \(flagd's own object\)"):
        flagd.to_snapshot(doc)
    # its fields stay readable
    flagd.to_snapshot(_doc({"if": [{"==": [{"var": "$flagd.flagKey"}, "f"]}, "yes", "no"]}))


@pytest.mark.parametrize("op", ["starts_with", "ends_with"])
@pytest.mark.parametrize("subject", ["abc", "", "é😀x", 5, None, "f", "xf"])
@pytest.mark.parametrize(
    "affix", [{"var": "a"}, {"var": ["a", "ab"]}, {"var": ["a", ""]}, {"var": "$flagd.flagKey"}]
)
def test_an_affix_read_from_the_context(make_py_and_c, op, subject, affix):
    values = ["a", "ab", "abc", "bc", "c", "", "é", 1, True, ["a"], None]
    contexts = [("u", {"a": v}) for v in values]
    doc = _doc({"if": [{op: [subject, affix]}, "yes", "no"]})
    _agree(make_py_and_c, doc, [*contexts, ("u", {})])
    if subject == "abc" and affix == {"var": "a"}:  # (the peer's answers, spelled out)
        want = {"a", "ab", "abc", ""} if op == "starts_with" else {"c", "bc", "abc", ""}
        snap = flagd.to_snapshot(copy.deepcopy(doc))
        for make in make_py_and_c:
            engine = make(snap)
            for _, attrs in contexts:
                value = flagd.resolve(engine, "f", flagd.context("u", attrs), "FB").value
                a = attrs["a"]
                assert (value == "Y") is (isinstance(a, str) and a in want), attrs


def test_an_affix_test_of_two_context_values_is_refused():
    doc = _doc({"if": [{"starts_with": [{"var": "a"}, {"var": "b"}]}, "yes", "no"]})
    with pytest.raises(InteropError, match=r"flags\.f\S*: 'starts_with' of a context value by"):
        flagd.to_snapshot(doc)


SEMVER_VALUES = ["1.2.3", "v1.2.3", "1.2", "1", "1.2.3-rc.1", "1.2.3+b", "2.0.0", "1.10.0",
                 "0.9.9", "x", "", 1, 1.5, 2.0, True, None, "1.2.3-01"]  # fmt: skip


@pytest.mark.parametrize("literal", ["1.2.3", "v1.2", "1.2.3-rc.1", 1, 1.5, True, "x"])
@pytest.mark.parametrize("op", ["=", "!=", "<", "<=", ">", ">=", "^", "~"])
@pytest.mark.parametrize("var_first", [True, False])
def test_sem_ver_with_the_context_value_on_either_side(make_py_and_c, literal, op, var_first):
    var = {"var": ["a", "1.2.3"]} if literal == "v1.2" else {"var": "a"}
    args = [var, op, literal] if var_first else [literal, op, var]
    doc = _doc({"if": [{"sem_ver": args}, "yes", "no"]})
    contexts = [("u", {"a": v}) for v in SEMVER_VALUES] + [("u", {})]
    _agree(make_py_and_c, doc, contexts)
    if (var_first and op == ">" and type(literal) is int) or (
        not var_first and op == "<" and literal == "1.2.3"
    ):
        snap = flagd.to_snapshot(copy.deepcopy(doc))
        for make in make_py_and_c:  # (the peer's answer, spelled out)
            r = flagd.resolve(make(snap), "f", flagd.context("u", {"a": "2.0.0"}), "FB")
            assert r.value == "Y"


@pytest.mark.parametrize(
    "args, message",
    [
        ([{"var": "$flagd.timestamp"}, ">", "1.0.0"], "sem_ver of \\$flagd.timestamp"),
        (["1.0.0", "<", {"var": "$flagd.timestamp"}], "sem_ver of \\$flagd.timestamp"),
        ([{"var": "a"}, ">", {"var": "b"}], "sem_ver of two context values"),
        ([{"var": "a"}, {"var": "b"}, "1.0.0"], "sem_ver with an operator read from the context"),
    ],
)
def test_sem_ver_forms_that_are_refused(args, message):
    with pytest.raises(InteropError, match=rf"flags\.f\S*: {message}"):
        flagd.to_snapshot(_doc({"if": [{"sem_ver": args}, "yes", "no"]}))


@pytest.mark.parametrize("op", ["<", "<=", ">", ">="])
@pytest.mark.parametrize(
    "args",
    [
        [{"var": "b"}, "", {"var": "a"}],
        [{"var": "a"}, True, {"var": "a"}],
        [{"var": "b"}, "1.2.3", {"var": "a"}],
        [0, {"var": "b"}, None],
        [{"var": "b"}, 5, None],
        [{"var": "b"}, 5, {"var": ["a", None]}],
        [{"var": "b"}, 1, {"var": "targetingKey"}],
    ],
)
def test_between_with_a_null_third_operand(make_py_and_c, op, args):
    doc = _doc({"if": [{op: args}, "yes", "no"]})
    values = [None, "", "2", 0, 3, 10, True, "1.2.4"]
    contexts = [(tk, {"a": a, "b": b}) for a in values for b in values for tk in ("u", None)]
    _agree(make_py_and_c, doc, [*contexts, ("u", {}), ("u", {"b": 3})])


@pytest.mark.parametrize("evaluator", [0, None, [], {}, False, ""])
def test_a_whole_targeting_ref_to_a_falsy_evaluator_is_no_targeting(make_py_and_c, evaluator):
    doc = {**_doc({"$ref": "e"}), "$evaluators": {"e": evaluator}}
    _agree(make_py_and_c, doc, [("u", {}), ("u", {"a": "yes"})])
    snap = flagd.to_snapshot(copy.deepcopy(doc))
    for make in make_py_and_c:
        assert flagd.resolve(make(snap), "f", flagd.context("u", {}), "FB").reason == "STATIC"


@pytest.mark.parametrize("evaluator", ["yes", True, ["yes"]])
def test_a_whole_targeting_ref_to_a_scalar_is_a_parse_error(evaluator):
    doc = {**_doc({"$ref": "e"}), "$evaluators": {"e": evaluator}}
    assert _peer(doc, "u", {})[3] == "PARSE_ERROR"
    with pytest.raises(InteropError, match=r"flags\.f\S*: targeting must be a JSONLogic object"):
        flagd.to_snapshot(copy.deepcopy(doc))
    snap = flagd.to_snapshot(copy.deepcopy(doc), on_error="keep")
    engine = Engine.from_snapshot(snap)
    assert flagd.resolve(engine, "f", flagd.context("u", {}), "FB").error_code == "PARSE_ERROR"


# -- differential fuzz over the same forms ---------------------------------------------
SCALARS = ["", "yes", "maybe", "1", "true", 0, 1, -3, 1.0, 1.5, -3.0, True, False, None]
scalar = st.sampled_from(SCALARS)
var = st.one_of(
    st.sampled_from(["a", "b"]).map(lambda n: {"var": n}),
    st.builds(lambda n, d: {"var": [n, d]}, st.sampled_from(["a", "zz"]),
              st.sampled_from(["yes", 1, True, 1.5])),
)  # fmt: skip


@st.composite
def leaf(draw: Any) -> Any:
    x = draw(var)
    kind = draw(st.integers(0, 6))
    if kind == 0:
        return {draw(st.sampled_from(["==", "!="])): [x, draw(scalar)]}
    if kind == 1:
        return {"in": [x, draw(st.lists(scalar, max_size=3))]}
    if kind == 2:
        return {draw(st.sampled_from(["!", "!!"])): draw(st.sampled_from([[], x, [x]]))}
    if kind == 3:
        return {draw(st.sampled_from(["and", "or"])): []}
    if kind == 4:
        op = draw(st.sampled_from(["starts_with", "ends_with"]))
        return {op: [draw(st.sampled_from(["yes", "maybe", "", 1])), x]}
    if kind == 5:
        op = draw(st.sampled_from(["=", "<", ">=", "^", "~"]))
        return {"sem_ver": [draw(st.sampled_from(["1", "1.5.0", 1, "yes"])), op, x]}
    return x


condition = st.recursive(
    leaf(),
    lambda inner: st.one_of(
        st.builds(lambda op, cs: {op: cs}, st.sampled_from(["and", "or"]),
                  st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda op, c: {op: c}, st.sampled_from(["and", "or", "!", "!!"]), inner),
    ),
    max_leaves=4,
)  # fmt: skip
outcome = st.one_of(st.sampled_from(["yes", "no", "maybe", "1", "true", None]), var)


@st.composite
def targeting(draw: Any, depth: int = 0) -> Any:
    if depth >= 2 or draw(st.integers(0, 3)) == 0:
        return draw(outcome)
    args: list[Any] = []
    for i in range(draw(st.integers(0, 5))):  # any arity, odd or even
        args.append(draw(condition) if i % 2 == 0 else draw(targeting(depth + 1)))
    if len(args) == 1 and draw(st.booleans()):
        return {"if": args[0]}  # the short form of a one-operand if
    return {"if": args}


@settings(max_examples=examples(150), deadline=None, suppress_health_check=list(HealthCheck))
@given(
    t=targeting(),
    default=st.sampled_from(["no", None]),
    contexts=st.lists(
        st.tuples(st.sampled_from([None, "u"]),
                  st.fixed_dictionaries({}, optional={"a": scalar, "b": scalar})),
        min_size=1, max_size=6,
    ),
)  # fmt: skip
def test_operand_forms_and_variant_names_agree_with_flagd_core(make_py_and_c, t, default, contexts):
    doc = _doc(t, default)
    try:
        snap = flagd.to_snapshot(copy.deepcopy(doc))
    except InteropError as exc:
        # what is still refused is named, never mis-evaluated
        assert "flags.f" in str(exc)
        return
    engines = [make(snap) for make in make_py_and_c]
    for tk, attrs in contexts:
        want = _peer(doc, tk, attrs)
        for engine in engines:
            r = flagd.resolve(engine, "f", flagd.context(tk, attrs), "FB")
            assert (r.value, r.variant, r.reason, r.error_code) == want, (t, tk, attrs)


def test_a_variant_value_past_64_bits_is_an_import_error_naming_the_flag():
    # flagd serves it; cfgcore cannot (its documents hold 64-bit integers). It was
    # imported and refused only when an engine compiled it, for the whole snapshot
    big = {"state": "ENABLED", "variants": {"a": {"x": [2**64]}, "b": 1}, "defaultVariant": "b"}
    ok = {"state": "ENABLED", "variants": {"a": 1}, "defaultVariant": "a"}
    doc = {"flags": {"f": big, "ok": ok}}
    with pytest.raises(
        InteropError, match=r"flags\.f\S*: variant 'a'\.x\[0\]: integer out of range"
    ):
        flagd.to_snapshot(doc)
    snap = flagd.to_snapshot(doc, on_error="keep")  # one flag refused, the rest served
    assert "f" in snap.metadata["refused"]
    engine = Engine.from_snapshot(snap)
    assert flagd.resolve(engine, "ok", flagd.context("u", {}), 0).value == 1
    assert flagd.resolve(engine, "f", flagd.context("u", {}), 0).error_code == "PARSE_ERROR"


TYPED = {"s": ("resolve_string_value", "FB"), "b": ("resolve_boolean_value", False),
         "i": ("resolve_integer_value", -7), "f": ("resolve_float_value", -7.5),
         "o": ("resolve_object_value", {"fb": 1})}  # fmt: skip


@pytest.mark.parametrize("value", ["A", True, 1, 2**40, 2.0, 2.5, 0.0, {"x": 1}, [1], []])
@pytest.mark.parametrize("kind", sorted(TYPED))
def test_resolve_checks_the_default_type_as_flagd_does(make_py_and_c, value, kind):
    # an int default asks for an integer: 2.0 and 2.5 were served to it (both are
    # TYPE_MISMATCH to flagd's Python evaluator); a float default serves ints as floats
    method, default = TYPED[kind]
    doc = {"flags": {"f": {"state": "ENABLED", "variants": {"a": value, "b": "B"},
                           "defaultVariant": "a"}}}  # fmt: skip
    core = core_mod.FlagdCore()
    core.set_flags(copy.deepcopy(doc))
    try:
        p = getattr(core, method)("f", default, EvaluationContext("u", {}))
        want = (p.value, type(p.value), p.variant, None)
    except OpenFeatureError as exc:
        want = (default, type(default), None, str(exc.error_code).split(".")[-1])
    if kind == "f" and value is True:  # FlagdCore's 1.0 (bool is int); flagd in Go: a mismatch
        want = (default, float, None, "TYPE_MISMATCH")
    snap = flagd.to_snapshot(copy.deepcopy(doc))
    for make in make_py_and_c:
        r = flagd.resolve(make(snap), "f", flagd.context("u", {}), default)
        assert (r.value, type(r.value), r.variant, r.error_code) == want
