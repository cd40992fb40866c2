"""GrowthBook import audit: constructs the importer accepts must answer as the real
``growthbook`` SDK does (value and ``on``) on both evaluators, for odd attribute values
too (arrays, objects, null, dotted keys, huge ints, non-ASCII text); what it cannot
lower is refused naming the feature and the construct.
"""

from __future__ import annotations

import copy
import logging
import random
from typing import Any

import growthbook as gb_sdk  # the real SDK: the reference for every answer
import pytest
from growthbook.core import evalCondition
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfgcore.interop import InteropError, growthbook
from tests.fuzz import examples
from tests.test_interop_growthbook import holds

GROUPS = {"vips": ["u1", 1, True, "US"], "typed": {"type": "list", "values": ["u2", 2]}}


@pytest.fixture(autouse=True)
def _quiet_sdk():
    logging.getLogger("growthbook").setLevel(logging.CRITICAL)


def _agree(make, features, users, forced=None, groups=None):
    engine = make(growthbook.to_snapshot(copy.deepcopy(features), saved_groups=groups))
    for attrs in users:
        sdk = gb_sdk.GrowthBook(
            attributes=copy.deepcopy(attrs), features=copy.deepcopy(features),
            forced_variations=dict(forced or {}), saved_groups=copy.deepcopy(groups),
        )  # fmt: skip
        try:
            ctx = growthbook.context(attrs, forced_variations=forced)
            for key in features:
                want = sdk.eval_feature(key)
                got = engine.evaluate(key, ctx)
                value = growthbook.thaw(got.value)
                assert (value, type(value)) == (want.value, type(want.value)), (key, attrs)
                assert engine.is_enabled(key, ctx) is want.on, (key, attrs)
        finally:
            sdk.destroy()


def _when(condition):
    return {"f": {"defaultValue": False, "rules": [{"condition": condition, "force": True}]}}


USERS = [{"id": f"u{i}", "dev": f"d{i}"} for i in range(200)]
USERS += [{"dev": f"d{i}"} for i in range(40)]


# -- values the SDK reads that context() used to miss or misread ----------------------


@pytest.mark.parametrize(
    "condition, attrs",
    [
        ({"tags": {"$exists": True}}, {"tags": ["x"]}),  # arrays and objects exist
        ({"company": {"$exists": True}}, {"company": {"size": 1}}),
        ({"tags": None}, {"tags": []}),  # an array is not null
        ({"tags": {"$eq": None}}, {"tags": {}}),
        ({"age": {"$type": "null"}}, {}),  # a missing value's type is "null"
        ({"tags": {"$in": ["x", "y"]}}, {"tags": ["y", "z"]}),  # arrays intersect
        ({"tags": {"$nin": ["x"]}}, {"tags": ["x", "US"]}),
        ({"tags": {"$in": [1]}}, {"tags": [1.0]}),
        ({"tags": {"$ini": ["US"]}}, {"tags": ["x", "us"]}),
        ({"id": {"$inGroup": "vips"}}, {"id": ["u9", "u1"]}),
        ({"id": {"$inGroup": "typed"}}, {"id": "u2"}),  # a typed list group
        ({"id": {"$notInGroup": "unknown"}}, {"id": "u1"}),  # an unknown group is empty
        ({"tags.0": "x"}, {"tags": ["x", "y"]}),  # getPath reads array indices
        ({"tags.length": {"$gt": 1}}, {"tags": ["x", "y"]}),
        ({"a.b": 1}, {"a": {"b": 1}}),
        ({"country": {"$ini": ["ss"]}}, {"country": "ß"}),  # $ini folds with lower()
        ({"country": {"$gt": "\ue000"}}, {"country": "\U0001f600"}),  # UTF-16 order
        ({"country": {"$lt": "\U0001f600"}}, {"country": "\ud7ff"}),
        ({"id": {"$exists": True}}, {"id": 10**400}),  # no OverflowError in context()
        ({"v": {"$vgt": "1"}}, {"v": 10**400}),
    ],
)
def test_condition_agrees_with_the_sdk(make, condition, attrs):
    engine = make(growthbook.to_snapshot(_when(condition), saved_groups=GROUPS))
    want = evalCondition(attrs, condition, GROUPS)
    assert engine.is_enabled("f", growthbook.context(attrs)) is want
    # and the opposite attributes, so a constant answer cannot pass
    assert engine.is_enabled("f", growthbook.context({})) is evalCondition({}, condition, GROUPS)


def test_a_top_level_key_with_a_dot_is_not_a_path(make):
    # getPath("a.b") reads attributes["a"]["b"], never attributes["a.b"]
    engine = make(growthbook.to_snapshot(_when({"a.b": 1})))
    assert engine.is_enabled("f", growthbook.context({"a.b": 1})) is False
    assert engine.is_enabled("f", growthbook.context({"a": {"b": 1}})) is True


def test_hashing_reads_top_level_keys_only(make):
    # GrowthBook hashes attributes[hashAttribute]: a nested value is not found, a
    # top-level key holding a dot is
    features = {"f": {"defaultValue": 0, "rules": [{"force": 1, "hashAttribute": "c.id"}]}}
    features["f"]["rules"][0]["coverage"] = 0.5
    users = [{"c": {"id": f"u{i}"}} for i in range(60)] + [{"c.id": f"u{i}"} for i in range(60)]
    _agree(make, features, users)


# -- rules ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "rule",
    [
        # a feature rule has no active/status: the SDK runs the experiment
        {"key": "e", "variations": [1, 2], "active": False},
        {"key": "e", "variations": [1, 2], "status": "draft"},
        # a null force is no force: the rule is skipped
        {"force": None, "coverage": 0.5},
        # sticky bucketing disabled: no fallback attribute
        {"force": 1, "coverage": 0.5, "fallbackAttribute": "dev", "disableStickyBucketing": True},
        # hashAttribute "" is the key "", not "id"; hashVersion "2" is no version
        {"force": 1, "coverage": 0.5, "hashAttribute": ""},
        {"force": 1, "coverage": 0.5, "hashVersion": "2"},
        {"force": 1, "filters": [{"attribute": "", "seed": "s", "ranges": [[0, 0.5]]}]},
        # explicit ranges past the variations: not in the experiment
        {"key": "e", "variations": [1, 2], "ranges": [[0, 0.3], [0.3, 0.6], [0.6, 1]]},
    ],
)
def test_rule_agrees_with_the_sdk(make, rule):
    _agree(make, {"f": {"defaultValue": 0, "rules": [rule]}}, USERS)


def test_variants_of_two_experiments_with_one_key_stay_apart(make):
    # both experiments named their variations "e:0", "e:1": the second replaced the
    # first's values (and a falsy value kept an "on" entry)
    rules = [
        {"key": "e", "variations": [1, 2], "coverage": 0.5},
        {"key": "e", "variations": [0, ""], "seed": "x"},
    ]
    _agree(make, {"f": {"defaultValue": 0, "rules": rules}}, USERS)
    dup_meta = {"key": "e", "variations": [1, 0], "meta": [{"key": "a"}, {"key": "a"}]}
    _agree(make, {"f": {"defaultValue": 0, "rules": [dup_meta]}}, USERS)


def test_forced_variation_true_is_index_1(make):
    features = {"f": {"defaultValue": 0, "rules": [{"key": "e", "variations": [1, 2, 3]}]}}
    features["f"]["rules"][0]["coverage"] = 0
    _agree(make, features, USERS[:3], forced={"e": True})


@pytest.mark.parametrize(
    "rule, words",
    [
        ({"key": "e", "contextualVariations": [1, 2]}, ["rules[0]", "contextualVariations"]),
        ({"force": 1, "coverage": 0.5, "hashAttribute": [5]}, ["rules[0]", "hashAttribute"]),
        ({"condition": {"k": {"a.b": 1}}, "force": 1}, ["rules[0]", "a.b"]),
    ],
)
def test_unsupported_rules_are_refused_with_the_feature_and_key(rule, words):
    with pytest.raises(InteropError) as err:
        growthbook.to_snapshot({"feat": {"defaultValue": 0, "rules": [rule]}})
    assert "features.feat" in str(err.value)
    for word in words:
        assert word in str(err.value)


# -- generated conditions and users --------------------------------------------------

_SCALARS = [None, "", "US", "us", "1.2.0", "v2.0.0-rc.1", 0, 1, -1, 2.5, 30, 30.0, True,
            False, "30", "ü", "\U0001f600", "\ue000", "ß", "SS"]  # fmt: skip
_VALUES = _SCALARS + [[], ["x"], ["x", "US"], [1, 2], [True], {"size": 10}, {}, 10**20]
_PATHS = ["country", "age", "tags", "company", "company.size", "version", "x.y", "tags.0",
          "tags.length"]  # fmt: skip
_OPS = ["$eq", "$ne", "$in", "$nin", "$ini", "$nini", "$gt", "$gte", "$lt", "$lte", "$veq",
        "$vne", "$vgt", "$vlte", "$exists", "$size", "$type", "$not", "$inGroup",
        "$notInGroup"]  # fmt: skip


def _operand(rng: random.Random, op: str) -> Any:
    if op in ("$in", "$nin", "$ini", "$nini"):
        return [rng.choice(_SCALARS[1:]) for _ in range(rng.randint(0, 3))]
    if op == "$exists":
        return rng.choice([True, False])
    if op == "$size":
        return rng.choice([0, 1, 2, {"$gt": 0}, None])
    if op == "$type":
        return rng.choice(["string", "number", "boolean", "null", "array", "object"])
    if op == "$not":
        return rng.choice([rng.choice(_SCALARS), {"$in": ["US", 1]}])
    if op in ("$inGroup", "$notInGroup"):
        return rng.choice(["vips", "typed", "nope"])
    return rng.choice(_SCALARS)


def _condition(rng: random.Random, depth: int = 0) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for _ in range(rng.randint(1, 2)):
        r = rng.random()
        if depth < 2 and r < 0.15:
            out[rng.choice(["$or", "$and", "$nor"])] = [
                _condition(rng, depth + 1) for _ in range(rng.randint(0, 2))
            ]
        elif depth < 2 and r < 0.2:
            out["$not"] = _condition(rng, depth + 1)
        elif r < 0.4:
            out[rng.choice(_PATHS)] = rng.choice(_SCALARS)
        else:
            ops = rng.sample(_OPS, rng.randint(1, 2))
            out[rng.choice(_PATHS)] = {op: _operand(rng, op) for op in ops}
    return out


def _attrs(rng: random.Random) -> dict[str, Any]:
    keys = ["id", "country", "age", "tags", "company", "version", "x.y", "x"]
    return {k: rng.choice(_VALUES) for k in keys if rng.random() < 0.6}


@settings(max_examples=examples(25), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2**32))
def test_generated_conditions_agree_with_the_sdk(make_py_and_c, seed):
    rng = random.Random(seed)
    conditions = [_condition(rng) for _ in range(12)]
    features = {f"f{i}": _when(c)["f"] for i, c in enumerate(conditions)}
    engines = [make(growthbook.to_snapshot(features, saved_groups=GROUPS)) for make in
               make_py_and_c]  # fmt: skip
    for _ in range(25):
        attrs = _attrs(rng)
        ctx = growthbook.context(attrs)
        for i, c in enumerate(conditions):
            want = evalCondition(attrs, c, GROUPS)
            for engine in engines:
                assert engine.is_enabled(f"f{i}", ctx) is want, (c, attrs)


# characters on both sides of each boundary where UTF-16 order leaves code point order
_EDGES = st.sampled_from(["a", "\x00", "\ud7ff", "\ue000", "\uffff", "\U00010000", "\U0010ffff"])


@settings(max_examples=examples(300), deadline=None)
@given(st.text(alphabet=_EDGES, max_size=3), st.text(alphabet=_EDGES, max_size=3))
def test_string_order_is_utf16_order(value, constant):
    # GrowthBook orders strings as JavaScript does, by UTF-16 code unit
    def units(s):
        return s.encode("utf-16-be", "surrogatepass")

    a, b = units(value), units(constant)
    for op, want in (("gt", a > b), ("ge", a >= b), ("lt", a < b), ("le", a <= b)):
        assert holds(growthbook.string_order("x", op, constant), value) is want


# -- $regex: the SDK searches with Python's re, cfgcore with RE2 where installed ------


@pytest.mark.parametrize(
    "op, pattern, value",
    [
        ("$regex", "^\\d+$", "\u0661\u0662"),  # Python's \d is every Unicode decimal digit
        ("$regex", "^\\w$", "\u00e9"),
        ("$regex", "x\\sy", "x\u00a0y"),
        ("$notRegex", "\\D", "\u0661"),
        ("$regex", "[\\d.]+$", "1.\u0663"),
        ("$regex", "^a$", "a\n"),  # Python's '$' also matches before a final newline
        ("$regex", "b$|^x", "ab\n"),
        ("$notRegex", "a$", "a\n"),
        ("$regexi", "^K$", "\u212a"),  # Kelvin sign folds to k in both engines
    ],
)
def test_regex_answers_as_python_re(make, op, pattern, value):
    engine = make(growthbook.to_snapshot(_when({"x": {op: pattern}})))
    for attrs in ({"x": value}, {"x": value + "z"}, {"x": "zz"}, {}):
        want = evalCondition(attrs, {"x": {op: pattern}})
        assert engine.is_enabled("f", growthbook.context(attrs)) is want, attrs


@pytest.mark.parametrize(
    "pattern",
    ["a\\b", "(?=a)", "(?i)a", "x{,3}", "[[:alpha:]]", "(a)\\1", "a\\Z", "(a$|b)\\n", "a$\\n?"],
)
def test_regex_meaning_differently_is_refused_naming_the_feature(pattern):
    features = {"feat": {"defaultValue": 0, "rules": [{"condition": {"x": {"$regex": pattern}},
                                                       "force": 1}]}}  # fmt: skip
    with pytest.raises(InteropError) as err:
        growthbook.to_snapshot(features)
    text = str(err.value)
    assert "features.feat" in text and "rules[0]" in text and "'x'" in text
    # and with on_error="skip" the other features still import
    features["ok"] = {"defaultValue": 1}
    snap = growthbook.to_snapshot(features, on_error="skip")
    assert list(snap.flags) == ["ok"] and "feat" in snap.metadata["refused"]
