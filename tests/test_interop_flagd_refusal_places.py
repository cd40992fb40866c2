"""A flagd refusal names the place of the refused construct in the source document,
found by the lowering itself as the refusal leaves each node it was raised in: the
construct wherever it is nested (an ``if`` branch, an ``and`` operand, a ``fractional``
entry's variant or weight), inside a ``$ref`` evaluator by the evaluator's own path
and the ``$ref`` that reached it (the one being lowered where two reach it), in the
``"raise"`` and ``"skip"`` modes alike.

The import used to find the place after the fact, from the Python frames the refusal
passed through, by the ids of the nodes their variables held. It named the last entry
of a fractional (or its bucketing key) for a bad weight in another entry, the first
``$ref`` to an evaluator for a refusal reached through a later one, and, once an
evaluator's expansion had failed part way, a freed node's id reused by another
flag's lowering could name that flag's refusal by a place in the evaluator."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfgcore.errors import parse_key_path
from cfgcore.interop import InteropError, flagd
from tests.fuzz import examples
from tests.key_paths import resolves

_FLAG = {"state": "ENABLED", "variants": {"on": True, "off": False}, "defaultVariant": "off"}


def _refusals(doc: dict[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    """(skip mode's reasons by flag key, raise mode's messages by path)."""
    skipped = dict(flagd.to_snapshot(doc, on_error="skip").metadata["refused"])
    with pytest.raises(InteropError) as info:
        flagd.to_snapshot(doc)
    return skipped, {p.path: p.message for p in info.value.problems}


def _check(doc: dict[str, Any], key: str, path: str, reason: str) -> None:
    skipped, raised = _refusals(doc)
    assert skipped[key] == f"{path}: {reason}"
    assert raised[path] == reason
    assert resolves(doc, list(parse_key_path(path))), path


# -- places the frames got wrong -----------------------------------------------------------
@pytest.mark.parametrize(
    ("targeting", "path", "reason"),
    [
        # a bad weight in an entry other than the last, or after a bucketing key: the
        # frames held the last entry, or the key, not the entry being weighed
        (
            {"fractional": [["on", "x"], ["off", 1]]},
            "targeting.fractional[0]",
            "fractional weight 'x' is not an integer",
        ),
        (
            {"fractional": [{"var": "k"}, ["on", 1], ["off", True], ["on", 2]]},
            "targeting.fractional[2]",
            "fractional weight True is not an integer",
        ),
        (
            {"fractional": [{"var": "k"}, ["on", 1], "bad"]},
            "targeting.fractional[2]",
            "fractional entry 'bad' is not [variant, weight]",
        ),
        # a literal the test cannot use: the literal, not the var beside it
        (
            {"if": [{">": [None, {"var": "a"}]}, "on", "off"]},
            "targeting.if[0].>[0]",
            "'>' with a non-numeric literal None",
        ),
        (
            {"if": [{"in": [{"var": "a"}, [1, {"z": 1}]]}, "on", "off"]},
            "targeting.if[0].in[1]",
            "'in' with a non-literal list",
        ),
        # the operator read from the context: the operator, not the version's var
        (
            {"if": [{"sem_ver": [{"var": "v"}, {"var": "o"}, "1.2.3"]}, "on", "off"]},
            "targeting.if[0].sem_ver[1]",
            "sem_ver with an operator read from the context",
        ),
        # a test of two operands: the operation, not the first of them
        (
            {"if": [{"==": [{"var": ["a", 1]}, {"var": ["b", 2]}]}, "on", "off"]},
            "targeting.if[0].==",
            "'==' over two vars with default values",
        ),
        (
            {"if": [{"<": [{"var": "a"}, {"var": "b"}]}, "on", "off"]},
            "targeting.if[0].<",
            "'<' comparing two context values",
        ),
    ],
)
def test_the_refused_construct_is_named_where_the_frames_named_another(targeting, path, reason):
    doc = {"flags": {"f": {**_FLAG, "targeting": targeting}}}
    _check(doc, "f", f"flags.f.{path}", reason)


def test_a_refusal_through_the_second_ref_to_an_evaluator_names_that_ref():
    # the evaluator is a fine condition (if[0]) and no variant name (if[1])
    evaluators = {"e": {"and": [{"var": "a"}, 1]}}
    doc = {
        "$evaluators": evaluators,
        "flags": {"f": {**_FLAG, "targeting": {"if": [{"$ref": "e"}, {"$ref": "e"}, "off"]}}},
    }
    why = "'and' naming a variant with an operand that is not true or false"
    skipped, raised = _refusals(doc)
    assert skipped["f"].startswith(f"$evaluators.e.and: {why}")
    assert skipped["f"].endswith("(through the $ref at flags.f.targeting.if[1])")
    assert list(raised) == ["$evaluators.e.and"]
    # as a fractional's bucketing key and as an entry's weight
    evaluators = {"e": {"!=": [True, {"var": ["a", 1]}]}}
    targeting = {"fractional": [{"$ref": "e"}, ["on", {"$ref": "e"}], ["off"]]}
    doc = {"$evaluators": evaluators, "flags": {"f": {**_FLAG, "targeting": targeting}}}
    skipped, _ = _refusals(doc)
    assert skipped["f"] == (
        "$evaluators.e.!=: '!=' cannot name a variant here "
        "(through the $ref at flags.f.targeting.fractional[1][1])"
    )


def test_a_failed_evaluator_expansion_does_not_name_a_later_flag():
    # the evaluator's expansion stops at its inner $ref, after building some of its
    # arrays and objects; the next flag reads no evaluator at all
    bad = {"or": [[[{"var": "a"}, [1, 2]], [3]], {"and": [[5], [6]]}, {"$ref": "x"}]}
    doc = {
        "$evaluators": {"e_with_a_long_name": bad, "x": True},
        "flags": {
            "a": {**_FLAG, "targeting": {"if": [{"$ref": "e_with_a_long_name"}, "on", "off"]}},
            "b": {
                **_FLAG,
                "variants": {"on": 1, "off": 2, "[x]": 3},
                "targeting": {"var": "color"},
            },
        },
    }
    skipped, raised = _refusals(doc)
    assert skipped["b"].startswith("flags.b.targeting: a var names a variant and variant '[x]'")
    assert skipped["a"].startswith("$evaluators.e_with_a_long_name.or[2]: $ref to 'x' inside")
    assert skipped["a"].endswith("(through the $ref at flags.a.targeting.if[0])")
    assert set(raised) == {"flags.b.targeting", "$evaluators.e_with_a_long_name.or[2]"}


def test_a_targeting_too_large_is_named_by_the_targeting(monkeypatch):
    monkeypatch.setattr(flagd, "MAX_LOWERED_NODES", 50)
    chain: Any = "off"
    for i in range(40):
        chain = {"if": [{"==": [{"var": "a"}, i]}, "on", chain]}
    for doc in (
        {"flags": {"f": {**_FLAG, "targeting": chain}}},
        {"$evaluators": {"e": chain}, "flags": {"f": {**_FLAG, "targeting": {"$ref": "e"}}}},
    ):
        skipped, raised = _refusals(doc)
        # (lowered, or through the $ref, expanded past the bound)
        assert skipped["f"].startswith("flags.f.targeting: ")
        assert "more than 50 " in skipped["f"] and "(through the $ref" not in skipped["f"]
        assert list(raised) == ["flags.f.targeting"]


# -- wherever it is nested -----------------------------------------------------------------
# (refused condition, its path below it, the reason)
_LEAVES = [
    ({"nope": [1]}, "nope", "JSONLogic operator 'nope'"),
    ({"sem_ver": [{"var": "v"}, {"var": "o"}, "1.0.0"]}, "sem_ver[1]",
     "sem_ver with an operator read from the context"),
    ({"sem_ver": ["1.0.0", "=", {"var": "$flagd.timestamp"}]}, "sem_ver[2]",
     "sem_ver of $flagd.timestamp"),
    ({"starts_with": ["x" * (flagd.MAX_AFFIX_SUBJECT + 1), {"var": "s"}]}, "starts_with[0]",
     f"'starts_with' of a literal longer than {flagd.MAX_AFFIX_SUBJECT} characters by a "
     "context value"),
    ({"<": [{"var": "n"}, [2]]}, "<[1]", "'<' with a non-numeric literal [2]"),
    ({"var": ["a", "b", "c"]}, "var", "var with 3 arguments (a name and a default at most)"),
    ({"var": "a.length"}, "", "var 'a.length': 'length' is an item or the length of an array"),
]  # fmt: skip
_OK = {"==": [{"var": "z"}, 1]}


def _wrap(kind: str, inner: Any, at: int) -> tuple[Any, str, bool]:
    """(an expression holding ``inner``, ``inner``'s path below it, whether the
    expression is a condition): ``kind`` says how (``at``: its operand's place)."""
    if kind == "and":
        items = [_OK, _OK, _OK][: at % 3] + [inner] + [_OK]
        return {"and": items}, f"and[{at % 3}]", True
    if kind == "not":
        return {"!": [inner]}, "![0]", True
    if kind == "cond":  # an if's condition: an expression naming a variant
        return {"if": [inner, "on", "off"]}, "if[0]", False
    if kind == "then":
        return {"if": [_OK, inner, "off"]}, "if[1]", False
    if kind == "else":
        return {"if": [_OK, "on", inner]}, "if[2]", False
    if kind == "variant":  # a fractional entry's variant decided by a condition
        entries = [["on", 1]] * (at % 2) + [[{"if": [inner, "on", "off"]}, 1], ["off", 1]]
        return {"fractional": entries}, f"fractional[{at % 2}][0].if[0]", False
    # a fractional entry's weight decided by a condition, after a bucketing key
    entries = [{"var": "k"}, ["off", 1], ["on", {"if": [inner, 5, 7]}]]
    return {"fractional": entries}, "fractional[2][1].if[0]", False


_KINDS = ["and", "not", "cond", "then", "else", "variant", "weight"]


@settings(max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    leaf=st.sampled_from(_LEAVES),
    kinds=st.lists(st.sampled_from(_KINDS), min_size=1, max_size=5),
    ats=st.lists(st.integers(0, 5), min_size=5, max_size=5),
    ref=st.booleans(),
    data=st.data(),
)
def test_a_refusal_is_named_wherever_it_is_nested(leaf, kinds, ats, ref, data):
    expr, below, why = leaf
    paths = [below]  # the refused construct's path below each level, the leaf's first
    condition = True
    for kind, at in zip(kinds, ats, strict=False):
        if condition and kind in ("then", "else"):
            kind = "cond"
        elif not condition and kind not in ("then", "else"):
            kind = "then"  # (an expression naming a variant is no test's operand)
        expr, step, condition = _wrap(kind, expr, at)
        paths.append(_join(step, paths[-1]))
    if condition:
        expr, step, _ = _wrap("cond", expr, 0)
        paths.append(_join(step, paths[-1]))
    evaluators: dict[str, Any] = {}
    path, via = _join("flags.f.targeting", paths[-1]), None
    if ref:
        # the node of one level (the whole targeting: the last) moved to an evaluator
        # and a $ref to it written in its place
        level = data.draw(st.integers(0, len(paths) - 1), label="level")
        place = _strip(paths[-1], paths[level])
        expr = _with_ref(expr, place, evaluators)
        path = _join("$evaluators.e", paths[level])
        via = _join("flags.f.targeting", place)
    doc = {"$evaluators": evaluators, "flags": {"f": {**_FLAG, "targeting": expr}}}
    skipped, raised = _refusals(doc)
    assert skipped["f"].startswith(f"{path}: {why}"), (skipped["f"], path)
    if via is not None:
        assert skipped["f"].endswith(f" (through the $ref at {via})")
    assert list(raised) == [path]
    assert resolves(doc, list(parse_key_path(path))), path


def _join(outer: str, inner: str) -> str:
    if not outer or not inner:
        return outer or inner
    return f"{outer}.{inner}"


def _strip(whole: str, tail: str) -> str:
    """``whole`` without its suffix ``tail``: where the level ``tail`` is below is."""
    if not tail:
        return whole
    assert whole.endswith(tail), (whole, tail)
    return whole[: len(whole) - len(tail)].rstrip(".")


def _with_ref(expr: Any, place: str, evaluators: dict[str, Any]) -> Any:
    """``expr`` with its node at ``place`` moved to the evaluator ``e`` and a ``$ref``
    to it in its place (the containers on the way are the test's own)."""
    keys = list(parse_key_path(place))
    if not keys:
        evaluators["e"] = expr
        return {"$ref": "e"}
    node = expr
    for key in keys[:-1]:
        node = node[int(key)] if isinstance(node, list) else node[key]
    last: Any = int(keys[-1]) if isinstance(node, list) else keys[-1]
    evaluators["e"] = node[last]
    node[last] = {"$ref": "e"}
    return expr


@pytest.mark.parametrize("through_ref", [False, True])
def test_nesting_deeper_than_the_stack_is_named_by_its_first_levels(through_ref):
    # The whole path to where the interpreter's stack ran out is thousands of keys long
    # (one "![0]" per level): it is named by its first twelve keys, a place that
    # resolves in the document, and the reason says what is wrong.
    deep: Any = {"var": "x"}
    for _ in range(3000):
        deep = {"!": [deep]}
    doc: dict[str, Any] = {"flags": {"f": {**_FLAG, "targeting": {"if": [deep, "on", "off"]}}}}
    if through_ref:
        doc["$evaluators"] = {"e": deep}
        doc["flags"]["f"]["targeting"] = {"if": [{"and": [True, {"$ref": "e"}]}, "on", "off"]}
        want = ("$evaluators", "e", *["!", "0"] * 6)  # twelve below the evaluator
        reason = "nested too deeply (through the $ref at flags.f.targeting.if[0].and[1])"
    else:
        want = ("flags", "f", "targeting", "if", "0", *["!", "0"] * 4, "!")  # twelve below f
        reason = "nested too deeply"
    skipped, raised = _refusals(doc)
    path, said = skipped["f"].split(": ", 1)
    assert parse_key_path(path) == want and said == reason
    assert raised == {path: reason}
    assert resolves(doc, list(parse_key_path(path)))
