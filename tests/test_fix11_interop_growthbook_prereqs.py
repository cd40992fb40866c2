"""GrowthBook prerequisites (``parentConditions`` gates) and the ``$all``/``$elemMatch``
operators, against the real SDK on both evaluators.

Hypothesis builds parents (values of every JSON type, null included, served by force
rules, rollouts and experiments) and children gated on them (leading gate rules,
several conditions, chains, unknown parents, cycles) with random conditions on the
parent's value; cfgcore's value and ``on`` must be the SDK's ``eval_feature`` answer
for random users. A feature the importer refuses is no disagreement, but the refusal
must name it; the counts are in ``STATS``.

CI runs a short profile. ``CFGCORE_FUZZ=soak`` runs ``CFGCORE_FUZZ_EXAMPLES`` examples
per test (20,000 by default) and prints the counts.
"""

from __future__ import annotations

import copy
import logging
import os
import sys
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfgcore.interop import InteropError, growthbook
from tests.fuzz import examples

gb_sdk = pytest.importorskip("growthbook")
from growthbook.core import evalCondition  # noqa: E402

SOAK = os.environ.get("CFGCORE_FUZZ") == "soak"
EXAMPLES = int(os.environ.get("CFGCORE_FUZZ_EXAMPLES", "20000")) if SOAK else examples(40)
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    print_blob=True,
)
STATS: dict[str, dict[str, int]] = {}


def _tally(target: str, outcome: str, n: int = 1) -> None:
    stats = STATS.setdefault(target, {})
    stats[outcome] = stats.get(outcome, 0) + n


@pytest.fixture(autouse=True)
def _quiet():
    logging.getLogger("growthbook").setLevel(logging.CRITICAL)


@pytest.fixture(autouse=True, scope="module")
def _report():
    yield
    if SOAK:
        print(f"\n{__name__} STATS: {STATS}", file=sys.stderr)


# -- strategies ------------------------------------------------------------------------

SCALARS = [None, True, False, 0, 1, -1, 1.5, 10, "", "a", "b", "A", "1", "10", "é", 2**53 + 1]
scalar = st.sampled_from(SCALARS)
json_value = st.one_of(
    scalar,
    st.lists(scalar, max_size=3),
    st.lists(st.one_of(scalar, st.lists(scalar, max_size=2)), max_size=3),  # nested arrays
    st.fixed_dictionaries({}, optional={"x": scalar, "y": st.lists(scalar, max_size=2)}),
)
no_null = st.sampled_from([s for s in SCALARS if s is not None])


def _value_test() -> st.SearchStrategy[Any]:
    """A test of one value: equality, or an operator object."""
    ops = st.one_of(
        st.builds(lambda v: {"$exists": v}, st.booleans()),
        st.builds(lambda v: {"$eq": v}, scalar),
        st.builds(lambda v: {"$ne": v}, scalar),
        st.builds(lambda op, v: {op: v}, st.sampled_from(["$in", "$nin"]), st.lists(no_null)),
        st.builds(
            lambda op, v: {op: v},
            st.sampled_from(["$gt", "$gte", "$lt", "$lte"]),
            st.sampled_from([0, 1, 1.5, "a", "b"]),
        ),
        st.builds(
            lambda v: {"$type": v},
            st.sampled_from(["null", "boolean", "number", "string", "array", "object"]),
        ),
        st.builds(lambda v: {"$size": v}, st.integers(0, 2)),
        st.builds(lambda v: {"$all": v}, st.lists(st.one_of(no_null, _element_ops()), max_size=2)),
        st.builds(lambda v: {"$elemMatch": v}, _element_ops()),
    )
    return st.one_of(
        scalar,
        ops,
        ops.map(lambda o: {"$not": o}),
        st.lists(ops, min_size=2, max_size=2).map(lambda p: {**p[0], **p[1]}),
    )


def _element_ops() -> st.SearchStrategy[dict[str, Any]]:
    """Operator objects ``$all`` and ``$elemMatch`` lower (membership)."""
    return st.one_of(
        st.builds(lambda v: {"$eq": v}, no_null),
        st.builds(lambda v: {"$in": v}, st.lists(no_null, max_size=3)),
        st.builds(lambda a, b: {"$eq": a, "$in": b}, no_null, st.lists(no_null, max_size=3)),
    )


value_leaf = st.one_of(
    st.builds(lambda t: {"value": t}, _value_test()),
    st.builds(lambda t: {"value.x": t}, _value_test()),
    st.builds(lambda t: {"value.0": t}, _value_test()),
)
value_condition = st.one_of(
    st.just({}),
    value_leaf,
    st.builds(lambda cs: {"$or": cs}, st.lists(value_leaf, max_size=2)),
    st.builds(lambda cs: {"$and": cs}, st.lists(value_leaf, max_size=2)),
    st.builds(lambda c: {"$not": c}, value_leaf),
)
attr_condition = st.one_of(
    st.builds(lambda v: {"country": v}, st.sampled_from(["NL", "DE", "FR"])),
    st.builds(lambda v: {"tags": {"$all": v}}, st.lists(st.sampled_from(["a", "b", 1]))),
    st.builds(
        lambda v: {"tags": {"$elemMatch": {"$in": v}}}, st.lists(st.sampled_from(["a", "b", 1]))
    ),
)

PARENTS = ["p0", "p1", "p2"]
CHILDREN = ["c0", "c1", "c2"]


@st.composite
def plain_rule(draw: Any) -> dict[str, Any]:
    """A rule that can serve: a forced value (maybe for a share of users) or an experiment."""
    rule: dict[str, Any] = {}
    if draw(st.booleans()):
        rule["condition"] = draw(attr_condition)
    kind = draw(st.sampled_from(["force", "rollout", "experiment"]))
    if kind == "experiment":
        rule["key"] = draw(st.sampled_from(["e1", "e2"]))
        rule["variations"] = draw(st.lists(json_value, min_size=2, max_size=3))
        rule["hashVersion"] = draw(st.sampled_from([1, 2]))
        return rule
    rule["force"] = draw(json_value)
    if kind == "rollout":
        rule["coverage"] = draw(st.sampled_from([0, 0.3, 0.7, 1]))
    return rule


@st.composite
def gate(draw: Any, parents: list[str]) -> dict[str, Any]:
    pc: dict[str, Any] = {"id": draw(st.sampled_from(parents)), "gate": True}
    if draw(st.integers(0, 9)):  # now and then no condition (the SDK skips the test)
        pc["condition"] = draw(value_condition)
    return pc


@st.composite
def parent_condition(draw: Any, parents: list[str]) -> dict[str, Any]:
    """A gate or not (``gate`` read with Python truthiness by the SDK, or absent)."""
    pc = draw(gate(parents))
    how = draw(st.sampled_from(["gate", "not", "absent", "one", "zero"]))
    if how == "absent":
        del pc["gate"]
    else:
        pc["gate"] = {"gate": True, "not": False, "one": 1, "zero": 0}[how]
    return pc


@st.composite
def gated_feature(draw: Any, parents: list[str]) -> dict[str, Any]:
    rules: list[dict[str, Any]] = []
    for _ in range(draw(st.integers(0, 2))):  # leading gate rules
        gr: dict[str, Any] = {
            "parentConditions": draw(st.lists(gate(parents), min_size=1, max_size=3))
        }
        if draw(st.integers(0, 3)) == 0:  # a gate rule that also serves
            gr.update(draw(plain_rule()))
        rules.append(gr)
        if "force" in gr or "variations" in gr:
            break
    # then rules with parent conditions of their own: gates and other conditions mixed,
    # after rules that can serve, on rules that serve or only test their parents
    for _ in range(draw(st.integers(0, 3))):
        rule = draw(plain_rule()) if draw(st.integers(0, 3)) else {}
        if draw(st.booleans()) or not rule:
            pcs = draw(st.lists(parent_condition(parents), min_size=1, max_size=3))
            rule["parentConditions"] = pcs
        rules.append(rule)
    return {"defaultValue": draw(json_value), "rules": rules}


@st.composite
def payload(draw: Any) -> dict[str, Any]:
    features: dict[str, Any] = {}
    for p in PARENTS[: draw(st.integers(1, 3))]:
        rules = draw(st.lists(plain_rule(), max_size=2))
        if draw(st.integers(0, 3)) == 0:  # a parent with a gate of its own
            rules.insert(0, {"parentConditions": [draw(gate(["p0", "zz"]))]})
        features[p] = {"defaultValue": draw(json_value), "rules": rules}
    # children gate on parents, earlier children, unknown features, and (rarely) on
    # themselves or later children: cycles, which the importer refuses
    for i, c in enumerate(CHILDREN[: draw(st.integers(1, 3))]):
        pool = [*features, "zz"]
        if draw(st.integers(0, 7)) == 0:
            pool += CHILDREN[i:]
        features[c] = draw(gated_feature(pool))
    return features


user = st.fixed_dictionaries(
    {},
    optional={
        "id": st.sampled_from(["u1", "u2", "u3", "é", "42", "x9"]),
        "country": st.sampled_from(["NL", "DE", "FR"]),
        "tags": st.lists(st.sampled_from(["a", "b", 1, True]), max_size=3),
    },
)


def _check_features(
    make_py_and_c: Any, features: dict[str, Any], users: list[Any], *, lowered: bool = False
) -> None:
    """cfgcore's answers on ``features`` are the SDK's (``lowered``: and none is refused)."""
    snap = growthbook.to_snapshot(copy.deepcopy(features), on_error="skip")
    refused = snap.metadata.get("refused", {})
    assert not (lowered and refused), refused
    _tally("prerequisites", "features refused", len(refused))
    for key, why in refused.items():
        # the generators write only gates cfgcore lowers: a feature is refused only on a
        # prerequisite cycle, or for a parent refused for one
        assert "a prerequisite cycle" in why, (key, why)
        _tally("prerequisites", "refused: inherited" if "is refused" in why else "refused: cycle")
    imported = [k for k in features if k not in refused]
    _tally("prerequisites", "features imported", len(imported))
    _tally("prerequisites", "gated features imported", sum(1 for k in imported if k[0] == "c"))
    if not imported:
        return
    engines = [make(snap) for make in make_py_and_c]
    for attrs in users:
        sdk = gb_sdk.GrowthBook(attributes=copy.deepcopy(attrs), features=copy.deepcopy(features))
        try:
            ctx = growthbook.context(attrs)
            for key in imported:
                want = sdk.eval_feature(key)
                for engine in engines:
                    got = growthbook.thaw(engine.evaluate(key, ctx).value)
                    assert (got, type(got)) == (want.value, type(want.value)), (key, attrs)
                    assert engine.is_enabled(key, ctx) is want.on, (key, attrs)
                _tally("prerequisites", "evaluations")
                if want.source == "prerequisite":
                    _tally("prerequisites", "gated off")
        finally:
            sdk.destroy()


@FUZZ
@given(features=payload(), users=st.lists(user, min_size=1, max_size=6))
def test_prerequisites_agree_with_the_sdk(make_py_and_c, features, users):
    _check_features(make_py_and_c, features, users)


@FUZZ
@given(
    parent_values=st.lists(json_value, min_size=1, max_size=3),
    conditions=st.lists(value_condition, min_size=1, max_size=3),
    users=st.lists(user, min_size=1, max_size=4),
)
def test_value_conditions_agree_with_the_sdk(make_py_and_c, parent_values, conditions, users):
    """One parent serving each of ``parent_values`` (by country), one child per
    condition: every condition is tested on every value."""
    countries = ["NL", "DE", "FR"]
    rules = [
        {"condition": {"country": c}, "force": v}
        for c, v in zip(countries, parent_values, strict=False)
    ]
    features: dict[str, Any] = {"p": {"defaultValue": parent_values[0], "rules": rules}}
    for i, cond in enumerate(conditions):
        gate = {"id": "p", "gate": True, "condition": cond}
        features[f"c{i}"] = {"defaultValue": i + 1, "rules": [{"parentConditions": [gate]}]}
    users = [*users, *({"country": c} for c in countries)]
    _check_features(make_py_and_c, features, users, lowered=True)


# -- $all and $elemMatch ---------------------------------------------------------------

array_value = st.one_of(
    json_value,
    st.lists(st.one_of(scalar, st.lists(scalar, max_size=3), st.just({"x": 1})), max_size=4),
)
array_condition = st.one_of(
    st.builds(lambda v: {"$all": v}, st.lists(st.one_of(no_null, _element_ops()), max_size=3)),
    st.builds(lambda v: {"$elemMatch": v}, _element_ops()),
)
array_leaf = st.builds(
    lambda a, t: {a: t},
    st.sampled_from(["tags", "obj.y", "tags.0"]),
    st.one_of(array_condition, array_condition.map(lambda c: {"$not": c})),
)
array_conditions = st.one_of(
    array_leaf,
    st.builds(lambda cs: {"$or": cs}, st.lists(array_leaf, max_size=3)),
    st.builds(lambda cs: {"$nor": cs}, st.lists(array_leaf, max_size=2)),
)
array_attrs = st.fixed_dictionaries(
    {},
    optional={
        "tags": array_value,
        "obj": st.fixed_dictionaries({}, optional={"y": array_value}),
    },
)


@FUZZ
@given(condition=array_conditions, contexts=st.lists(array_attrs, min_size=1, max_size=8))
def test_all_and_elem_match_agree_with_the_sdk(make_py_and_c, condition, contexts):
    features = {"f": {"defaultValue": 0, "rules": [{"condition": condition, "force": 1}]}}
    snap = growthbook.to_snapshot(copy.deepcopy(features))  # membership: every one lowers
    _tally("array operators", "imported")
    engines = [make(snap) for make in make_py_and_c]
    for attrs in contexts:
        want = evalCondition(copy.deepcopy(attrs), copy.deepcopy(condition))
        ctx = growthbook.context(attrs)
        for engine in engines:
            assert engine.is_enabled("f", ctx) is want, (condition, attrs, type(engine))
        _tally("array operators", "contexts")
        _tally("array operators", "true" if want else "false")


# -- plain cases -----------------------------------------------------------------------


def _sdk(features: dict[str, Any], attrs: dict[str, Any], key: str) -> Any:
    sdk = gb_sdk.GrowthBook(attributes=dict(attrs), features=copy.deepcopy(features))
    try:
        return sdk.eval_feature(key)
    finally:
        sdk.destroy()


def _gated(parent: str, test: Any = None, *, gate: Any = True, **rule: Any) -> dict:
    pc: dict[str, Any] = {"id": parent, "gate": gate}
    if test is not None:
        pc["condition"] = test
    return {"parentConditions": [pc], **rule}


PARENT = {
    "defaultValue": "free",
    "rules": [
        {"condition": {"country": "NL"}, "force": "pro"},
        {"condition": {"country": "DE"}, "force": {"tier": "gold"}},
    ],
}


def test_a_gate_is_a_prerequisite_on_the_passing_variants(make):
    features = {
        "plan": PARENT,
        "beta": {
            "defaultValue": True,
            "rules": [_gated("plan", {"value": {"$in": ["pro", "team"]}})],
        },
    }
    snap = growthbook.to_snapshot(copy.deepcopy(features))
    flag = snap.flags["beta"]
    assert [(p.flag, p.variants) for p in flag.prerequisites] == [("plan", ["rules[0]"])]
    assert flag.variants[flag.off_variant] is None
    engine = make(snap)
    for attrs in ({"country": "NL"}, {"country": "DE"}, {}):
        want = _sdk(features, attrs, "beta")
        ctx = growthbook.context(attrs)
        assert engine.evaluate("beta", ctx).value == want.value
        assert engine.is_enabled("beta", ctx) is want.on
    assert engine.evaluate("beta", growthbook.context({})).value is None  # gated: null


def test_a_gated_parent_is_null_to_its_children(make):
    features = {
        "plan": PARENT,
        "beta": {"defaultValue": "on", "rules": [_gated("plan", {"value": "pro"})]},
        "not-beta": {
            "defaultValue": 7,
            "rules": [_gated("beta", {"value": {"$exists": False}})],
        },
    }
    engine = make(growthbook.to_snapshot(copy.deepcopy(features)))
    for attrs in ({"country": "NL"}, {"country": "DE"}, {}):
        want = _sdk(features, attrs, "not-beta")
        assert engine.evaluate("not-beta", growthbook.context(attrs)).value == want.value
    assert engine.evaluate("not-beta", growthbook.context({})).value == 7


def test_several_conditions_must_all_hold(make):
    features = {
        "plan": PARENT,
        "beta": {
            "defaultValue": "yes",
            "rules": [
                {
                    "parentConditions": [
                        {"id": "plan", "gate": True, "condition": {"value": {"$ne": "free"}}},
                        {"id": "plan", "gate": True, "condition": {"value.tier": "gold"}},
                    ]
                }
            ],
        },
    }
    snap = growthbook.to_snapshot(copy.deepcopy(features))
    assert [p.variants for p in snap.flags["beta"].prerequisites] == [["rules[1]"]]
    engine = make(snap)
    for attrs in ({"country": "NL"}, {"country": "DE"}, {}):
        want = _sdk(features, attrs, "beta")
        assert engine.evaluate("beta", growthbook.context(attrs)).value == want.value


def test_an_unknown_parent_is_null(make):
    features = {
        "passes": {"defaultValue": 1, "rules": [_gated("gone", {"value": {"$exists": False}})]},
        "fails": {"defaultValue": 2, "rules": [_gated("gone", {"value": {"$exists": True}})]},
    }
    snap = growthbook.to_snapshot(copy.deepcopy(features))
    assert not snap.flags["passes"].prerequisites and snap.flags["passes"].enabled
    assert snap.flags["fails"].enabled is False
    engine = make(snap)
    assert engine.evaluate("passes", growthbook.context({})).value == 1
    assert engine.evaluate("fails", growthbook.context({})).value is None
    assert _sdk(features, {}, "fails").value is None


def test_no_value_passing_makes_the_feature_null_for_everyone(make):
    features = {
        "plan": PARENT,
        "never": {"defaultValue": True, "rules": [_gated("plan", {"value": "enterprise"})]},
    }
    snap = growthbook.to_snapshot(copy.deepcopy(features))
    assert snap.flags["never"].enabled is False
    engine = make(snap)
    for attrs in ({"country": "NL"}, {"country": "DE"}, {}):
        assert _sdk(features, attrs, "never").value is None
        assert engine.evaluate("never", growthbook.context(attrs)).value is None
        assert engine.is_enabled("never", growthbook.context(attrs)) is False


def test_a_gate_rule_may_serve_once_its_gates_pass(make):
    features = {
        "plan": PARENT,
        "beta": {
            "defaultValue": 0,
            "rules": [_gated("plan", {"value": "pro"}, condition={"id": "u1"}, force=5)],
        },
    }
    engine = make(growthbook.to_snapshot(copy.deepcopy(features)))
    for attrs in ({"country": "NL", "id": "u1"}, {"country": "NL"}, {"id": "u1"}):
        want = _sdk(features, attrs, "beta")
        assert engine.evaluate("beta", growthbook.context(attrs)).value == want.value


# -- refusals: each names the feature, the rule and why -----------------------------------


def _refusal(features: dict[str, Any], key: str) -> str:
    with pytest.raises(InteropError) as info:
        growthbook.to_snapshot(copy.deepcopy(features))
    # named by the key path of what is refused, below the feature's: "path: why"
    found = {p.path.split(".")[1]: f"{p.path}: {p.message}" for p in info.value.problems}
    assert key in found, found
    return found[key].removeprefix(f"features.{key}.")


USERS = ({"country": "NL"}, {"country": "DE"}, {"country": "FR"}, {})


def _agrees(make: Any, features: dict[str, Any], keys: list[str]) -> Any:
    snap = growthbook.to_snapshot(copy.deepcopy(features))
    engine = make(snap)
    for attrs in USERS:
        ctx = growthbook.context(attrs)
        for key in keys:
            want = _sdk(features, attrs, key)
            got = growthbook.thaw(engine.evaluate(key, ctx).value)
            assert (got, type(got)) == (want.value, type(want.value)), (key, attrs)
            assert engine.is_enabled(key, ctx) is want.on, (key, attrs)
    return snap


def test_a_condition_that_is_not_a_gate_skips_only_its_rule(make):
    """Not a gate: failing, GrowthBook skips the rule; cfgcore's rule requires a
    ``prerequisite`` test on the parent's passing variants (the feature is not null)."""
    rules = [_gated("p", {"value": "pro"}, gate=False, force=1), {"force": 2}]
    snap = _agrees(make, {"p": PARENT, "c": {"defaultValue": 0, "rules": rules}}, ["c"])
    flag = snap.flags["c"]
    assert not flag.prerequisites
    assert msgspec.to_builtins(flag.rules[0].when) == {
        "prerequisite": {"flag": "p", "variants": ["rules[0]"]}
    }


def test_a_gate_after_a_serving_rule_makes_the_feature_null_from_there(make):
    """A failing gate on a later rule makes the feature null where GrowthBook reaches
    that rule (a rule serving the null variant), and no earlier."""
    rules = [{"condition": {"country": "FR"}, "force": 1}, _gated("p", {"value": "pro"}, force=3)]
    snap = _agrees(make, {"p": PARENT, "c": {"defaultValue": 0, "rules": rules}}, ["c"])
    engine = make(snap)
    fr, other = growthbook.context({"country": "FR"}), growthbook.context({"country": "DE"})
    assert engine.evaluate("c", fr).value == 1
    assert engine.evaluate("c", other).value is None
    assert engine.evaluate("c", other).variant == "prerequisite"


def test_the_first_failing_condition_decides(make):
    """GrowthBook tests the conditions in order: a failing non-gate before a failing
    gate skips the rule; a failing gate before it makes the feature null."""
    skip_first = {
        "parentConditions": [
            {"id": "p", "condition": {"value": "pro"}},  # no gate
            {"id": "p", "condition": {"value": {"$ne": "free"}}, "gate": True},
        ],
        "force": "a",
    }
    gate_first = {"parentConditions": skip_first["parentConditions"][::-1], "force": "b"}
    features = {
        "p": PARENT,
        "skips": {"defaultValue": "d", "rules": [{"condition": {"country": "FR"}, "force": 1},
                                                 skip_first]},
        "nulls": {"defaultValue": "d", "rules": [{"condition": {"country": "FR"}, "force": 1},
                                                 gate_first]},
    }  # fmt: skip
    snap = _agrees(make, features, ["skips", "nulls"])
    engine = make(snap)
    de = growthbook.context({"country": "DE"})  # p serves {"tier": "gold"}: the gate holds
    assert engine.evaluate("skips", de).value == "d"  # ... and "pro" fails: skipped
    assert engine.evaluate("nulls", de).value == "d"
    nl = growthbook.context({"country": "NL"})  # p serves "pro": both hold
    assert engine.evaluate("skips", nl).value == "a"
    assert engine.evaluate("nulls", nl).value == "b"
    nobody = growthbook.context({})  # p serves "free": both conditions fail
    assert engine.evaluate("skips", nobody).value == "d"
    assert engine.evaluate("nulls", nobody).value is None


def test_rule_level_conditions_on_unknown_and_chained_parents(make):
    features = {
        "p": PARENT,
        "c": {"defaultValue": 1,
              "rules": [{"condition": {"country": "FR"}, "force": 5},
                        _gated("p", {"value": {"$ne": "free"}}, gate=True)]},
        "g": {"defaultValue": "x",
              "rules": [{"force": "y", "parentConditions": [
                  {"id": "gone", "condition": {"value": {"$exists": False}}},
                  {"id": "c", "condition": {"value": {"$exists": False}}, "gate": False}]}]},
    }  # fmt: skip
    _agrees(make, features, ["c", "g"])


def test_a_gate_after_a_rule_that_never_serves_is_lowered(make):
    rules = [{"force": 1, "coverage": 0}, _gated("p", {"value": "pro"})]
    features = {"p": PARENT, "c": {"defaultValue": 2, "rules": rules}}
    engine = make(growthbook.to_snapshot(copy.deepcopy(features)))
    for attrs in ({"country": "NL"}, {}):
        want = _sdk(features, attrs, "c")
        assert engine.evaluate("c", growthbook.context(attrs)).value == want.value


def test_a_refused_parent_refuses_its_children_naming_it():
    features = {
        "p": {"rules": [{"condition": {"a": {"$elemMatch": 1}}, "force": 1}]},
        "c": {"rules": [_gated("p", {"value": 1})]},
        "g": {"rules": [_gated("c", {"value": 1})]},
    }
    why = _refusal(features, "c")
    assert why.startswith("rules[0].parentConditions[0]: the prerequisite 'p' is refused")
    assert "'$elemMatch'" in why
    why = _refusal(features, "g")
    assert "the prerequisite 'c' is refused, through 'p'" in why and "'$elemMatch'" in why
    snap = growthbook.to_snapshot(copy.deepcopy(features), on_error="skip")
    assert set(snap.metadata["refused"]) == {"p", "c", "g"}


@pytest.mark.parametrize(
    "features,cycle",
    [
        (
            {
                "a": {"rules": [_gated("b", {"value": {"$exists": False}})]},
                "b": {"rules": [_gated("a", {"value": {"$exists": False}})]},
            },
            "'a' -> 'b' -> 'a'",
        ),
        ({"a": {"rules": [_gated("a")]}}, "'a' -> 'a'"),
    ],
)
def test_a_prerequisite_cycle_is_refused_naming_it(features, cycle):
    why = _refusal(features, "a")
    assert why.startswith(f"rules[0].parentConditions[0]: a prerequisite cycle ({cycle})")


def test_malformed_parent_conditions_are_refused():
    cases = [
        (
            {"parentConditions": {"id": "p"}},
            "rules[0].parentConditions: 'parentConditions' must be an array",
        ),
        (
            {"parentConditions": ["p"]},
            "rules[0].parentConditions[0]: parentConditions[0] must be an object",
        ),
        ({"parentConditions": [{"id": 3, "gate": True}]}, "parentConditions[0].id must be a"),
        (
            _gated("p", {"value": {"$elemMatch": 1}}),
            "rules[0].parentConditions[0].condition.value.$elemMatch: '$elemMatch' at 'value'",
        ),
    ]
    for rule, start in cases:
        why = _refusal({"p": PARENT, "c": {"rules": [rule]}}, "c")
        assert start in why, why


def test_a_chain_past_the_compilers_depth_is_refused():
    off = {"condition": {"country": "NL"}, "force": False}
    features: dict[str, Any] = {"f0": {"defaultValue": True, "rules": [off]}}
    for i in range(1, 40):
        features[f"f{i}"] = {
            "defaultValue": True,
            "rules": [_gated(f"f{i - 1}", {"value": True}), off],
        }
    why = _refusal(features, "f32")
    assert "chain 33 features deep" in why
    snap = growthbook.to_snapshot(copy.deepcopy(features), on_error="skip")
    assert "f31" in snap.flags and "f39" not in snap.flags


@pytest.mark.parametrize(
    "condition,start",
    [
        ({"$elemMatch": 1}, "'$elemMatch' at 't': a number, where GrowthBook's SDK raises"),
        ({"$elemMatch": {"$or": 1}}, "'$elemMatch' at 't': its condition makes GrowthBook's"),
        ({"$elemMatch": {"x": 1, "$not": 2}}, "'$elemMatch' at 't': its condition makes"),
        (
            {"$all": [{"$regex": "(?=a)"}]},
            "'$all' at 't', each element read as 'e': regex '(?=a)' at 'e': the group",
        ),
        (
            {"$elemMatch": {"x": {"$regex": "\\b"}}},
            "'$elemMatch' at 't', each element read as 'e': regex '\\\\b' at 'e.x'",
        ),
        (
            {"$elemMatch": {"$elemMatch": {"$elemMatch": {"$elemMatch": {"$elemMatch": {}}}}}},
            "'$elemMatch' at 't', each element read as 'e': '$elemMatch' at 'e', each element "
            "read as 'e': '$elemMatch' at 'e', each element read as 'e': '$elemMatch' at 'e', "
            "each element read as 'e': '$elemMatch' at 'e': element conditions nested more "
            "than 4 deep",
        ),
    ],
)
def test_array_operators_the_sdk_raises_on_or_cfgcore_cannot_run_are_refused(condition, start):
    features = {"f": {"rules": [{"condition": {"t": condition}, "force": 1}]}}
    why = _refusal(features, "f")
    assert why.startswith("rules[0].condition.t.$"), why  # the operator refused
    assert f": {start}" in why, why


def test_elem_match_in_reads_one_level_into_nested_arrays(make):
    cond = {"t": {"$elemMatch": {"$in": ["a", 1]}}}
    engine = make(growthbook.to_snapshot({"f": {"rules": [{"condition": cond, "force": True}]}}))
    big = [[str(i)] for i in range(3000)]  # past context()'s budget: keys derived when read
    cases = ([["a"]], [[True]], [[1.0], None], ["b", [["a"]]], [{"x": "a"}], [], big, [*big, [1]])
    for t in cases:
        ctx = growthbook.context({"t": t})
        assert engine.is_enabled("f", ctx) is evalCondition({"t": t}, cond), t
    assert type(growthbook.context({"t": big})) is not dict  # the lazy mapping answered
