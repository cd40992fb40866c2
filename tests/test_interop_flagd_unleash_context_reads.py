"""flagd's ``context(..., bucketing=engine)`` and Unleash's ``context(..., engine=engine)``
derive only what the engine's snapshot reads.

Given the engine or the Snapshot, flagd's ``context()`` walks only the paths the
snapshot's ``var``s, ``fractional`` entries and ``sem_ver`` checks read (an array's
``#items`` and ``#nulls`` only where read), and Unleash's puts only the fields and
properties its constraints, stickiness and overrides read, each with only the derived
keys read of it. The answers must be those of the context derived whole, for every flag
of that snapshot, on both evaluators: hypothesis builds flagd targeting and Unleash
payloads with the peer fuzz's strategies, and users holding hostile values (cycles,
objects past the key budget, versions past 256 characters, ``[variant, weight]``
entries, tuples, datetimes, Decimals, arrays nested past the stack, values whose own
methods raise), and compares every flag's answer; every key the snapshot reads is the
same in both contexts, and every key the limited one holds is the whole one's.
"""

from __future__ import annotations

import copy
import datetime
import decimal
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.interop import InteropError, flagd, unleash
from cfgcore.interop._derived import DerivedAttributes, read_names
from tests.fuzz import examples

pytest.importorskip("yggdrasil_engine.engine")
pytest.importorskip("openfeature.contrib.tools.flagd.core")
from tests.test_fix10_interop_peer_fuzz import (  # noqa: E402
    EXAMPLES,
    FD_EVALUATORS,
    FD_VARIANTS,
    FUZZ,
    UN_FIELDS,
    UN_VALS,
    fd_condition,
    fd_scalar,
    fd_targeting,
    fd_value,
    un_constraint,
    un_payload,
)

# the focused tests below: more examples than the peer fuzz's short profile, so that
# a derived key left out where it is read is found (each example is cheap)
FOCUSED = settings(FUZZ, max_examples=max(EXAMPLES, examples(200)))


def _same(a: Any, b: Any, seen: set[tuple[int, int]] | None = None) -> bool:
    """Two derived values alike (equal and of one type; NaN as NaN; cycles alike; a
    str subclass as its text)."""
    if a is b:
        return True
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, str) and isinstance(b, str):
        # (a str subclass and its exact text: where another attribute's own method
        # raises, the whole context reads every value again as its exact value, as
        # the evaluators read it; the limited one need not read that attribute)
        return str.__eq__(a, b)
    if type(a) is not type(b):
        return False
    if isinstance(a, (list, tuple, dict)):
        seen = set() if seen is None else seen
        if (id(a), id(b)) in seen:
            return True  # (a cycle: compared where it started)
        seen.add((id(a), id(b)))
        if isinstance(a, dict):
            return a.keys() == b.keys() and all(_same(a[k], b[k], seen) for k in a)
        return len(a) == len(b) and all(_same(x, y, seen) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _read_alike(snap: Any, limited: Any, whole: Any) -> None:
    """Every key ``snap`` reads has the same value in both contexts, and every key the
    limited one holds is the whole one's."""
    for name in read_names(snap) or ():
        got, want = limited.get(name), whole.get(name)
        assert _same(got, want), (name, got, want)
    for k, v in dict.items(limited):
        assert _same(v, whole.get(k)), (k, v, whole.get(k))


# -- flagd ----------------------------------------------------------------------------------
LONG_VERSION = "1.2.3-" + "a" * 300  # past 256 characters: #semlong, #semcmp:


def _cyclic() -> dict[str, Any]:
    obj: dict[str, Any] = {"x": "a", "y": {}}
    obj["y"]["x"] = obj
    return obj


def _nested(depth: int) -> list[Any]:
    out: list[Any] = ["a"]
    for _ in range(depth):
        out = [out, "b"]
    return out


class _Raising(str):
    """A str subclass whose own methods raise: context() reads it again carefully."""

    def encode(self, *args: Any, **kwargs: Any) -> bytes:
        raise ValueError("no")

    def __str__(self) -> str:
        raise ValueError("no")


class _Odd:
    """A hostile value drawn by its name (a short repr where hypothesis shows it; a
    cycle, an object past the key budget or an array nested past the stack would
    not print): :func:`_real` puts the value in its place."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<{self.name}>"


ODD: dict[str, Any] = {
    "cycle": _cyclic,
    # past the key budget (MAX_CONTEXT_KEYS): the whole context derives on read
    "big object": lambda: {f"k{i}": {"x": i, "y": str(i)} for i in range(1500)} | {"x": {"y": "a"}},
    "nested list": lambda: _nested(1500),
    "raising str": lambda: _Raising("a"),
    "200 tags": lambda: [f"t{i}" for i in range(200)] + [None],
}


def _real(v: Any) -> Any:
    """``v`` with each :class:`_Odd` replaced by its value."""
    if isinstance(v, _Odd):
        return ODD[v.name]()
    if isinstance(v, dict):
        return {k: _real(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_real(x) for x in v]
    return v


def _odd_names(v: Any) -> set[str]:
    """The names of the :class:`_Odd` values in ``v``."""
    if isinstance(v, _Odd):
        return {v.name}
    inner = v.values() if isinstance(v, dict) else v if isinstance(v, list) else ()
    return set().union(*(_odd_names(x) for x in inner))


fd_odd = st.one_of(
    st.sampled_from(sorted(ODD)).map(_Odd),
    st.sampled_from(
        [
            LONG_VERSION,
            ["yes", 5],
            ["maybe"],
            ("no", 3),
            ["yes", True],
            datetime.datetime(2024, 1, 2, tzinfo=datetime.timezone.utc),
            datetime.date(2024, 1, 2),
            decimal.Decimal("1.5"),
            {"x": [1, None, "a"], "y": {"x": "a", "0": 1}},
        ]
    ),
)
fd_any = st.one_of(fd_value, fd_odd, st.lists(st.one_of(fd_scalar, fd_odd), max_size=3))
fd_user = st.fixed_dictionaries(
    {},
    optional={
        k: fd_any
        for k in ("a", "b", "n", "v", "é", "$flagd.flagKey", "a.0", "w", "x#num", "", "wide")
    }
    | {
        "obj": st.one_of(
            st.fixed_dictionaries({}, optional={"x": fd_any, "y": fd_any, "0": fd_any}),
            fd_any,
        )
    },
)
fd_tk = st.sampled_from([None, "", "u1", "user-2", "é"])


def _resolutions(engine: Any, keys: list[str], ctx: Any) -> list[tuple[Any, ...]]:
    out = []
    for key in keys:
        r = flagd.resolve(engine, key, ctx, "FB")
        out.append((r.value, r.variant, r.reason, r.error_code))
    return out


@FUZZ
@given(
    targetings=st.lists(
        st.one_of(fd_targeting(), st.builds(lambda c: {"if": [c, "yes", "no"]}, fd_condition)),
        min_size=1,
        max_size=3,
    ),
    contexts=st.lists(st.tuples(fd_tk, fd_user), min_size=1, max_size=4),
)
def test_flagd_limited_context_answers_as_the_whole_one(make_py_and_c, targetings, contexts):
    flags = {
        f"f{i}": {
            "state": "ENABLED",
            "variants": dict(FD_VARIANTS),
            "defaultVariant": "no",
            "targeting": t,
        }
        for i, t in enumerate(targetings)
    }
    doc = {"flags": flags, "$evaluators": FD_EVALUATORS}
    snap = flagd.to_snapshot(copy.deepcopy(doc), on_error="skip")
    engines = [make(snap) for make in make_py_and_c]
    keys = list(snap.flags)
    for tk, drawn in contexts:
        if {"big object", "raising str"} <= _odd_names(drawn):
            # Known, and no matter of the limit: past its key budget the whole context
            # reads a value whose own method raises as missing (its reading on demand
            # answers nothing where deriving raises), where under the budget it reads
            # the exact value, as the limited one (under its budget) does.
            continue
        attrs = _real(drawn)
        whole = flagd.context(tk, attrs, now=1_700_000_000)
        for given_as in (engines[0], snap):
            limited = flagd.context(tk, attrs, now=1_700_000_000, bucketing=given_as)
            for engine in engines:
                want = _resolutions(engine, keys, whole)
                assert _resolutions(engine, keys, limited) == want, (targetings, tk, drawn)
                # bound once per request, as a server does
                bound = _resolutions(engine, keys, engine.context(limited))
                assert bound == _resolutions(engine, keys, engine.context(whole))
            _read_alike(snap, limited, whole)


# conditions on the paths and derived keys a limited context could leave out, over a few
# values the users hold too, so that they often match: membership in arrays (``#items``,
# ``#nulls``) and in text, equality and order with coercions (``#num``, ``#snum``,
# ``#lnum``, ``#str``, ``#cat``), versions, truthiness, nested paths, escaped names, and
# ``fractional`` bucketing by a value (``#cbor``) or weighing an entry it holds
FEW = ["a", "b", "A", "1.2.3", "v1.2", "10", 1, 0, 2.5, None, True, ""]
few = st.sampled_from(FEW)
few_value = st.recursive(
    few,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(["x", "y", "0"]), inner)
    ),
    max_leaves=5,
)
FEW_VARS = ["tags", "obj", "obj.x", "obj.y.x", "n", "x#num", "é", "tags.0"]
few_var = st.sampled_from(FEW_VARS).map(lambda name: {"var": name})
few_leaf = st.one_of(
    st.builds(lambda n, v: {"in": [n, v]}, few, few_var),
    st.builds(lambda v, h: {"in": [v, h]}, few_var, st.lists(few, max_size=3)),
    st.builds(lambda v: {"in": [v, "abc 1.2.3 10"]}, few_var),
    st.builds(
        lambda op, v, c: {op: [v, c]},
        st.sampled_from(["==", "!=", "===", "<", ">=", "starts_with"]),
        few_var,
        st.sampled_from(["a", "1.2.3", 1, 0, "10", ""]),
    ),
    st.builds(lambda op, v: {op: [v]}, st.sampled_from(["!", "!!"]), few_var),
    st.builds(
        lambda v, op: {"sem_ver": [v, op, "1.2.3"]}, few_var, st.sampled_from(["=", ">", "^"])
    ),
)
few_targeting = st.one_of(
    st.builds(lambda c: {"if": [c, "yes", "no"]}, few_leaf),
    st.builds(
        lambda v: {"fractional": [v, ["yes", 1], ["no", 1]]},
        st.one_of(few_var, st.builds(lambda v: {"cat": ["p", v]}, few_var)),
    ),
)
few_user = st.fixed_dictionaries(
    {},
    optional={
        "tags": st.one_of(st.lists(few, max_size=4), few_value, st.just(["yes", 5])),
        "obj": st.one_of(
            st.fixed_dictionaries({}, optional={"x": few_value, "y": few_value}), few_value
        ),
        "n": st.one_of(few_value, st.just(("no", 2))),
        "x#num": few_value,
        "é": few_value,
        "wide": few_value,
    },
)


@FOCUSED
@given(
    targetings=st.lists(few_targeting, min_size=1, max_size=4),
    contexts=st.lists(st.tuples(fd_tk, few_user), min_size=1, max_size=6),
)
def test_flagd_limited_context_answers_conditions_as_the_whole_one(
    make_py_and_c, targetings, contexts
):
    """The conditions above, one flag each, on users holding the values they test."""
    flags = {
        f"f{i}": {"state": "ENABLED", "variants": dict(FD_VARIANTS), "defaultVariant": "no",
                  "targeting": t}
        for i, t in enumerate(targetings)
    }  # fmt: skip
    snap = flagd.to_snapshot({"flags": flags}, on_error="skip")
    engines = [make(snap) for make in make_py_and_c]
    keys = list(snap.flags)
    for tk, attrs in contexts:
        whole = flagd.context(tk, attrs, now=0)
        limited = flagd.context(tk, attrs, now=0, bucketing=snap)
        for engine in engines:
            assert _resolutions(engine, keys, limited) == _resolutions(engine, keys, whole)
        _read_alike(snap, limited, whole)


def _flagd_snapshot(targeting: Any) -> Any:
    flag = {"state": "ENABLED", "variants": {"a": "A", "b": "B"}, "defaultVariant": "a"}
    return flagd.to_snapshot({"flags": {"f": {**flag, "targeting": targeting}}})


def test_flagd_a_wide_user_costs_the_paths_read(make_py_and_c):
    snap = _flagd_snapshot(
        {
            "if": [
                {"and": [{"in": ["t5", {"var": "tags"}]}, {">": [{"var": "user.age"}, 30]}]},
                "b",
                "a",
            ]
        }  # fmt: skip
    )
    attrs = {
        "tags": [f"t{i}" for i in range(200)],
        "user": {"age": 31, "name": "Ann", "address": {"city": "Amsterdam"}},
        "email": "a@b.example",
        "version": "1.2.3",
        "groups": ["admin", None],
    }
    whole = flagd.context("u1", attrs)
    limited = flagd.context("u1", attrs, bucketing=snap)
    assert type(limited) is dict
    # the paths read alone: not user.name, user.address.city, email, version, groups
    tops = {k.split("#")[0] for k in limited}
    assert tops == {"tags", "user", "user.age", "targetingKey", flagd.TIMESTAMP}
    assert "tags#items" in limited and "tags#nulls" not in limited  # read by "in" alone
    assert "groups#nulls" in whole and "email#cbor" in whole
    for make in make_py_and_c:
        engine = make(snap)
        assert flagd.resolve(engine, "f", limited).value == "B"
        assert flagd.resolve(engine, "f", whole).value == "B"


def test_flagd_an_entry_read_by_fractional_keeps_the_mapping(make_py_and_c):
    snap = _flagd_snapshot({"fractional": [{"var": "entry"}, ["a", 1], ["b", 1]]})
    attrs = {"entry": ["b", 100], "other": ["a", 3]}
    limited = flagd.context("u1", attrs, bucketing=snap)
    assert isinstance(limited, DerivedAttributes) and "other" not in limited
    for make in make_py_and_c:
        engine = make(snap)
        want = flagd.resolve(engine, "f", flagd.context("u1", attrs))
        assert flagd.resolve(engine, "f", limited) == want


def test_flagd_an_engine_given_follows_its_current_snapshot():
    from cfgcore import Engine

    engine = Engine.from_snapshot(_flagd_snapshot({"if": [{"var": "beta"}, "b", "a"]}))
    attrs = {"beta": True, "company": {"size": 12, "name": "ACME"}}
    assert "company.size" not in flagd.context("u1", attrs, bucketing=engine)
    engine.swap(_flagd_snapshot({"if": [{">": [{"var": "company.size"}, 10]}, "b", "a"]}))
    limited = flagd.context("u1", attrs, bucketing=engine)
    assert limited["company.size#num"] == 12 and "company.name" not in limited
    assert flagd.resolve(engine, "f", limited).value == "B"


def test_flagd_names_given_limit_only_the_bucketing_mapping():
    attrs = {"entry": ["b", 1], "n": 5}
    limited = flagd.context("u1", attrs, now=0, bucketing=frozenset())
    assert type(limited) is dict and limited == flagd.context("u1", attrs, now=0)
    assert isinstance(flagd.context("u1", attrs, bucketing={"entry"}), DerivedAttributes)


# -- Unleash --------------------------------------------------------------------------------
class _NoText:
    def __str__(self) -> str:
        raise ValueError("no text")


un_odd = st.sampled_from(
    [
        None,
        True,
        5,
        2.5,
        -0.0,
        10**30,
        ["a", 1],
        {"x": 1},
        datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc),
        datetime.datetime(2024, 1, 2, 3, 4, 5),
        "raising",
        "notext",
    ]
).map(lambda v: _Raising("a") if v == "raising" else _NoText() if v == "notext" else v)
un_value = st.one_of(st.sampled_from(UN_VALS), st.sampled_from(UN_VALS), un_odd)
UN_NAMES = ["age", "version", "tier", "country", "userId", "age#num", "", "é", "wide", "ip"]
# the fields the peer fuzz's constraints read held often, mostly as its values
un_user = st.fixed_dictionaries(
    {
        "userId": un_value,
        "properties": st.dictionaries(st.sampled_from(UN_NAMES), un_value, min_size=3),
    },
    optional={
        "sessionId": un_value,
        "remoteAddress": un_value,
        "environment": un_value,
        "appName": un_value,
        "currentTime": st.one_of(
            st.sampled_from(["2024-02-01T00:00:00Z", "2023-01-01T00:00:00", "x"]), un_odd
        ),
        "tier": un_value,  # a top-level field of the application's own: a property
    },
)


def _variants(engine: Any, keys: list[str], ctx: Any) -> list[Any]:
    return [(engine.is_enabled(k, ctx), unleash.get_variant(engine, k, ctx)) for k in keys]


@FUZZ
@given(payload=un_payload(), contexts=st.lists(un_user, min_size=1, max_size=6))
def test_unleash_limited_context_answers_as_the_whole_one(make_py_and_c, payload, contexts):
    try:
        snap = unleash.to_snapshot(copy.deepcopy(payload), on_error="skip")
    except InteropError:
        return
    engines = [make(snap) for make in make_py_and_c]
    keys = list(snap.flags)
    for ctx in contexts:
        whole = unleash.context(ctx, now=1_700_000_000)
        for given_as in (engines[0], snap):
            limited = unleash.context(ctx, now=1_700_000_000, engine=given_as)
            # a fresh random stickiness value each: the same one in both
            limited[unleash.RANDOM] = whole[unleash.RANDOM]
            for engine in engines:
                want = _variants(engine, keys, whole)
                assert _variants(engine, keys, limited) == want, ctx
                bound = _variants(engine, keys, engine.context(limited))
                assert bound == _variants(engine, keys, engine.context(whole)), ctx
            _read_alike(snap, limited, whole)


# every field the peer fuzz's constraints read, mostly as one of its values (its dates
# more often: a date constraint compares few others)
un_field = st.one_of(
    un_value,
    st.sampled_from(["2024-01-01T00:00:00Z", "2023-12-31T23:59:59.999Z", "2025-01-01 00:00:00z"]),
)
un_full_user = st.fixed_dictionaries(
    {"properties": st.fixed_dictionaries({k: un_field for k in UN_FIELDS})},
    optional={"userId": un_field, "currentTime": un_field},
)


@FOCUSED
@given(
    constraints=st.lists(un_constraint(), min_size=1, max_size=6),
    contexts=st.lists(un_full_user, min_size=1, max_size=6),
)
def test_unleash_limited_context_answers_constraints_as_the_whole_one(
    make_py_and_c, constraints, contexts
):
    """The peer fuzz's constraints, one feature each, on users holding every field."""
    features = [
        {"name": f"f{i}", "enabled": True,
         "strategies": [{"name": "default", "parameters": {}, "constraints": [c]}]}
        for i, c in enumerate(constraints)
    ]  # fmt: skip
    snap = unleash.to_snapshot({"version": 2, "features": features}, on_error="skip")
    engines = [make(snap) for make in make_py_and_c]
    keys = list(snap.flags)
    for ctx in contexts:
        whole = unleash.context(ctx, now=1_700_000_000)
        limited = unleash.context(ctx, now=1_700_000_000, engine=snap)
        limited[unleash.RANDOM] = whole[unleash.RANDOM]  # a fresh one each
        for engine in engines:
            got = [engine.is_enabled(k, limited) for k in keys]
            assert got == [engine.is_enabled(k, whole) for k in keys], ctx
        _read_alike(snap, limited, whole)


def _unleash_snapshot(constraints: list[dict[str, Any]]) -> Any:
    params = {"rollout": "100", "stickiness": "default", "groupId": "g"}
    strategy = {"name": "flexibleRollout", "parameters": params, "constraints": constraints}
    feature = {"name": "f", "enabled": True, "strategies": [strategy]}
    return unleash.to_snapshot({"version": 2, "features": [feature]})


def test_unleash_a_wide_context_costs_the_properties_read(make_py_and_c):
    snap = _unleash_snapshot(
        [
            {"contextName": "age", "operator": "NUM_GT", "value": "30"},
            {
                "contextName": "country",
                "operator": "STR_STARTS_WITH",
                "values": ["nl"],
                "caseInsensitive": True,
            },
        ]  # fmt: skip
    )
    props = {"age": "31", "country": "NL", "signup": "2024-01-02T00:00:00Z", "ip": "10.0.0.1"}
    props |= {f"p{i}": f"{i}.2.3" for i in range(40)}
    ctx = {"userId": "42", "properties": props}
    whole = unleash.context(ctx)
    limited = unleash.context(ctx, engine=snap)
    assert "p7#semver" in whole and "signup#date" in whole and "ip#ip" in whole
    # userId: the default stickiness reads it; age's number, country's lower case
    assert set(limited) - {unleash.RANDOM, "currentTime", "currentTime#date",
                           "currentTime#lower"} == {"userId", "age", "age#num",
                                                    "country", "country#lower"}  # fmt: skip
    for make in make_py_and_c:
        engine = make(snap)
        assert engine.is_enabled("f", limited) and engine.is_enabled("f", whole)


def test_unleash_an_engine_given_follows_its_current_snapshot():
    from cfgcore import Engine

    engine = Engine.from_snapshot(_unleash_snapshot([]))
    ctx = {"userId": "42", "properties": {"age": "31"}}
    assert "age" not in unleash.context(ctx, engine=engine)
    engine.swap(_unleash_snapshot([{"contextName": "age", "operator": "NUM_GT", "value": "30"}]))
    limited = unleash.context(ctx, engine=engine)
    assert limited["age#num"] == 31.0 and engine.is_enabled("f", limited)


def test_unleash_engine_takes_an_engine_or_a_snapshot():
    with pytest.raises(TypeError, match="engine"):
        unleash.context({"userId": "1"}, engine={"userId"})
    with pytest.raises(TypeError, match="engine"):
        unleash.context({"userId": "1"}, engine="userId")


@pytest.mark.parametrize("wrong", ["flags", b"flags", 5, 1.5, object()])
def test_a_wrong_engine_option_is_a_type_error_naming_it(wrong):
    # It was read as "an engine without a snapshot", which reads nothing: a context
    # without the keys its flags read, answering wrongly without a word.
    from cfgcore.interop import growthbook

    with pytest.raises(TypeError, match=r"^engine: an engine or a Snapshot, got "):
        unleash.context({"userId": "1"}, engine=wrong)
    with pytest.raises(TypeError, match=r"^bucketing: an engine, a Snapshot or a collection"):
        flagd.context("u", {"a": 1}, bucketing=wrong)
    with pytest.raises(TypeError, match=r"^elements: an engine, a Snapshot or a collection"):
        growthbook.context({"id": "u"}, elements=wrong)
    with pytest.raises(TypeError, match=r"^engine: an engine or a Snapshot, got list"):
        unleash.context({"userId": "1"}, engine=["userId"])  # names: flagd's and GrowthBook's only
