"""Unleash context field names holding '#', against yggdrasil (the engine of the
Unleash Python SDK).

They were refused on import (a constraint's ``contextName``, a stickiness, an override's
``contextName``) and left out of ``context()``, because context() derives keys under
such names (``a#num``, ``a#date``, ``a#ip``, ``a#semver``, ``#random``) that a property
named so would have stood for. Now they are escaped as GrowthBook's are
(cfgcore.interop._escaped_names: each '#' in a name written '#!'; every derived suffix puts a
letter after its '#'), in context() and in the imported conditions alike: a field named
``a#num`` is read as Unleash reads it, and no context, however hostile its names, can
forge a derived key (answers equal yggdrasil's)."""

from __future__ import annotations

import copy
import itertools
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfgcore.interop import unleash
from cfgcore.interop._escaped_names import escape_name, split_derived, unescape_name
from tests.fuzz import examples
from tests.texts import any_text

ygg = pytest.importorskip("yggdrasil_engine.engine")

NAMES = ["a", "a#num", "a#date", "a#ip", "a#semver", "#random", "a#!num", "#", "##", "a#"]
SUFFIXES = ["#num", "#date", "#ip", "#semver", ""]
VALUES = ["x", "5", "1.5", "2.0.0", "0.1.0", "10.0.0.1", "2030-01-01T00:00:00.000Z",
          "2000-01-01T00:00:00.000Z", "9.9.9", "-3"]  # fmt: skip


def _sdk(doc: dict) -> object:
    engine = ygg.UnleashEngine()
    engine.take_state(json.dumps(doc))
    return engine


def _feature(constraints=(), params=None, variants=None) -> dict:
    strategy: dict = {"name": "flexibleRollout" if params else "default",
                      "constraints": list(constraints)}  # fmt: skip
    if params:
        strategy["parameters"] = params
    feature: dict = {"name": "f", "enabled": True, "strategies": [strategy]}
    if variants:
        feature["variants"] = variants
    return {"version": 1, "features": [feature]}


CONSTRAINTS = [
    ("IN", {"values": ["x", "5"]}),
    ("NUM_GT", {"value": "3"}),
    ("NUM_LT", {"value": "3"}),
    ("DATE_AFTER", {"value": "2020-01-01T00:00:00.000Z"}),
    ("SEMVER_GT", {"value": "1.0.0"}),
    ("IN_CIDR", {"values": ["10.0.0.0/8"]}),
    ("STR_STARTS_WITH", {"values": ["x", "5"]}),
]


def _hostile(name: str, value: str, forged: str) -> list[dict]:
    """Contexts giving ``name`` (or not) ``value``, with properties named like every key
    context() derives for it, or escapes of them, holding ``forged``."""
    props_forged = {escape: forged for escape in {
        *(name + s for s in SUFFIXES), *(escape_name(name) + s for s in SUFFIXES),
        "#random", "#!random", "a#!num", "a#num"}}  # fmt: skip
    props_forged.pop(name, None)
    return [
        {"properties": {name: value}},
        {"properties": {name: value, **props_forged}},
        {"properties": props_forged},
        {"userId": "u1", name: value, **props_forged},  # top-level custom fields
    ]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(("op", "spec"), CONSTRAINTS)
@pytest.mark.parametrize("inverted", [False, True])
def test_a_constraint_on_a_name_holding_hash_answers_as_yggdrasil(
    name, op, spec, inverted, make_py_and_c
):
    doc = _feature([{"contextName": name, "operator": op, "inverted": inverted, **spec}])
    snap = unleash.to_snapshot(copy.deepcopy(doc))
    sdk = _sdk(doc)
    engines = [make(snap) for make in make_py_and_c]
    for value, forged in itertools.product(
        VALUES, ["9.9.9", "99", "x", "2030-01-01T00:00:00.000Z"]
    ):
        for ctx in _hostile(name, value, forged):
            want = sdk.is_enabled("f", copy.deepcopy(ctx)).is_enabled
            # one mapped context for both evaluators (they only read it; no stickiness here)
            mapped = unleash.context(copy.deepcopy(ctx))
            for engine in engines:
                assert engine.is_enabled("f", mapped) == want, ctx


def _stable(sdk, ctx) -> tuple[bool, str] | None:
    """The SDK's answer for ``ctx`` if it gives it 12 times in a row, else None (a random
    stickiness value). It is given one copy of ``ctx``: it only serialises a context
    (``json.dumps``), so a fresh copy per call would ask the same; the first answer that
    differs decides None."""
    mine = copy.deepcopy(ctx)
    first = None
    for _ in range(12):
        answer = (sdk.is_enabled("f", mine).is_enabled, sdk.get_variant("f", mine).variant.name)
        if first is None:
            first = answer
        elif answer != first:
            return None
    assert mine == ctx, "the SDK changed the context it was given"
    return first


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("where", ["strategy", "variant", "override"])
def test_stickiness_and_overrides_naming_hash_answer_as_yggdrasil(name, where, make_py_and_c):
    variants = [{"name": v, "weight": 250, "weightType": "variable"} for v in "abcd"]
    params = {"rollout": "50", "groupId": "g"}
    if where == "strategy":
        params["stickiness"] = name
    elif where == "variant":
        params = {"rollout": "100", "groupId": "g"}
        for v in variants:
            v["stickiness"] = name
    else:
        variants[2]["overrides"] = [{"contextName": name, "values": ["t7", "5"]}]
    doc = _feature(params=params, variants=variants)
    snap = unleash.to_snapshot(copy.deepcopy(doc))
    sdk = _sdk(doc)
    engines = [make(snap) for make in make_py_and_c]
    compared = 0
    for i in range(40):
        for ctx in _hostile(name, f"t{i}", "5"):
            ctx.setdefault("userId", f"u{i}")
            want = _stable(sdk, ctx)
            if want is None:
                continue  # a random stickiness value: nothing to compare
            compared += 1
            for engine in engines:
                c = unleash.context(copy.deepcopy(ctx))
                assert (engine.is_enabled("f", c), unleash.get_variant(engine, "f", c)["name"]) \
                    == want, ctx  # fmt: skip
    assert compared >= 40


_NAME = st.text(alphabet="a#!:", max_size=6)


@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=_NAME, props=st.dictionaries(_NAME, st.sampled_from(VALUES), max_size=5),
       op=st.sampled_from(CONSTRAINTS))  # fmt: skip
def test_any_names_answer_as_yggdrasil(name, props, op, make_py_and_c):
    doc = _feature([{"contextName": name, "operator": op[0], **op[1]}])
    try:
        snap = unleash.to_snapshot(copy.deepcopy(doc))
    except unleash.InteropError:
        return  # (a name yggdrasil's rule text cannot hold: refused for another reason)
    ctx = {"properties": props}
    want = _sdk(doc).is_enabled("f", copy.deepcopy(ctx)).is_enabled
    for make in make_py_and_c:
        assert make(snap).is_enabled("f", unleash.context(copy.deepcopy(ctx))) == want


@given(name=any_text(max_size=8), suffix=st.sampled_from(["", "#num", "#size#vn", "#a"]))
def test_the_escape_is_injective_and_splits_where_the_suffix_starts(name, suffix):
    key = escape_name(name)
    assert unescape_name(key) == name
    assert split_derived(key + suffix) == (key, suffix)
