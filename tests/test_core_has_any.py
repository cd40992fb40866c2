"""``has_any``: an array attribute holding one of the constants, on both evaluators.

The operator is defined by ``in``: an array matches where one of its elements, read
as a scalar attribute of its own, would match ``in`` with the same constants (and
``ignore_case``). The property tests check exactly that relation, element by element,
on both evaluators, bound and unbound contexts alike.
"""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.errors import SnapshotError
from tests.fuzz import examples
from tests.texts import any_text


def flag_when(cond):
    return {"flags": {"f": {"default": "off", "rules": [{"when": cond, "serve": "on"}]}}}


def check(make, cond, ctx):
    return make(flag_when(cond)).is_enabled("f", ctx)


GROUPS = {"attr": "groups", "has_any": ["beta", "staff", 7, True]}

CASES = [
    (GROUPS, {"groups": ["beta"]}, True),
    (GROUPS, {"groups": ["x", "y", "staff"]}, True),
    (GROUPS, {"groups": ("x", "staff")}, True),
    (GROUPS, {"groups": {"x", "staff"}}, True),
    (GROUPS, {"groups": frozenset({"beta"})}, True),
    (GROUPS, {"groups": ["x", "y"]}, False),
    (GROUPS, {"groups": []}, False),
    (GROUPS, {"groups": "beta"}, False),  # a scalar is not an array
    (GROUPS, {"groups": None}, False),
    (GROUPS, {}, False),
    (GROUPS, {"groups": {"beta": 1}}, False),  # a dict is not an array
    (GROUPS, {"groups": ["Beta"]}, False),
    (GROUPS, {"groups": [7.0]}, True),  # numbers by value
    (GROUPS, {"groups": ["7"]}, False),  # strict types
    (GROUPS, {"groups": [1]}, False),  # 1 is not True
    (GROUPS, {"groups": [True]}, True),
    (GROUPS, {"groups": [float("nan"), None, 7]}, True),
    (GROUPS, {"groups": [["beta"]]}, False),  # elements are scalars: no nesting
    (GROUPS, {"groups": [10**400, "staff"]}, True),  # an unusable element is skipped
    (GROUPS, {"groups": ["\ud800", "beta"]}, True),  # a lone surrogate too
    ({"attr": "groups", "has_any": []}, {"groups": ["beta"]}, False),
    ({"attr": "groups", "has_any": ["BETA"], "ignore_case": True}, {"groups": ["bEtA"]}, True),
    ({"attr": "groups", "has_any": ["straße"], "ignore_case": True}, {"groups": ["STRASSE"]}, True),
    ({"attr": "groups", "has_any": ["beta"], "ignore_case": True}, {"groups": ["x"]}, False),
    ({"attr": "groups", "has_any": ["beta"], "ignore_case": True}, {"groups": [5]}, False),
    ({"attr": "ids", "has_any": [2**53 + 1]}, {"ids": [2**53 + 1]}, True),
    ({"attr": "ids", "has_any": [2**53 + 1]}, {"ids": [2.0**53]}, False),  # exact ints
    ({"not": GROUPS}, {"groups": ["x"]}, True),
    ({"not": GROUPS}, {"groups": ["beta"]}, False),
    ({"attr": "groups", "exists": True}, {"groups": []}, True),
]
IDS = [str(i) for i in range(len(CASES))]


@pytest.mark.parametrize(("cond", "ctx", "expected"), CASES, ids=IDS)
def test_has_any(make, cond, ctx, expected):
    assert check(make, cond, ctx) is expected


@pytest.mark.parametrize(("cond", "ctx", "expected"), CASES, ids=IDS)
def test_has_any_bound(make, cond, ctx, expected):
    engine = make(flag_when(cond))
    bound = engine.context(ctx)
    assert engine.is_enabled("f", bound) is expected
    assert engine.is_enabled("f", bound) is expected  # read again from the bound slot


def test_an_array_is_unusable_to_the_other_operators_of_its_slot(make):
    # one slot read by has_any and by in/eq/ne/not_in: an array answers only has_any
    tests = {
        "has": GROUPS,
        "in": {"attr": "groups", "in": ["beta"]},
        "ne": {"attr": "groups", "ne": "x"},
        "nin": {"attr": "groups", "not_in": ["x"]},
    }
    rules = {k: {"default": "off", "rules": [{"when": c, "serve": "on"}]} for k, c in tests.items()}
    engine = make({"flags": rules})
    for ctx in ({"groups": ["beta"]}, engine.context({"groups": ["beta"]})):
        assert engine.is_enabled("has", ctx) is True
        assert engine.is_enabled("in", ctx) is False
        assert engine.is_enabled("ne", ctx) is False
        assert engine.is_enabled("nin", ctx) is False
    # and a scalar in the same slot answers the scalar operators, never has_any
    assert engine.is_enabled("has", {"groups": "beta"}) is False
    assert engine.is_enabled("in", {"groups": "beta"}) is True


def test_subclasses_are_read_by_their_stored_elements(make):
    class Hostile(list):
        def __iter__(self):
            raise RuntimeError("never called")

        def __len__(self):
            raise RuntimeError("never called")

    class Tag(str):
        def __eq__(self, other):
            raise RuntimeError("never called")

        __hash__ = str.__hash__

    class HostileSet(frozenset):
        def __iter__(self):
            raise RuntimeError("never called")

    engine = make(flag_when(GROUPS))
    assert engine.is_enabled("f", {"groups": Hostile(["x", "staff"])}) is True
    assert engine.is_enabled("f", {"groups": Hostile(["x"])}) is False
    assert engine.is_enabled("f", {"groups": [Tag("beta")]}) is True
    assert engine.is_enabled("f", {"groups": HostileSet({"beta"})}) is True
    assert engine.is_enabled("f", engine.context({"groups": Hostile(["staff"])})) is True


def test_an_element_whose_casefold_fails_is_skipped(make):
    class Bad(str):
        def casefold(self):  # never called: the base value is folded
            raise ValueError

    cond = {"attr": "groups", "has_any": ["beta"], "ignore_case": True}
    assert check(make, cond, {"groups": [Bad("BETA")]}) is True


def test_a_frozen_config_list_is_an_array(make):
    from cfgcore._frozen import FrozenList

    assert check(make, GROUPS, {"groups": FrozenList(["staff"])}) is True


def test_a_large_array_and_a_large_constant_list(make):
    values = [f"g{i}" for i in range(10_000)]
    engine = make(flag_when({"attr": "groups", "has_any": values}))
    assert engine.is_enabled("f", {"groups": [f"x{i}" for i in range(5_000)] + ["g9999"]}) is True
    assert engine.is_enabled("f", {"groups": [f"x{i}" for i in range(5_000)]}) is False


def test_ignore_case_needs_string_constants(make):
    with pytest.raises(SnapshotError) as exc:
        make(flag_when({"attr": "groups", "has_any": ["a", 1], "ignore_case": True}))
    assert "flags.f.rules[0].when.has_any" in str(exc.value)
    assert "ignore_case needs string constants" in str(exc.value)


def test_has_any_reads_one_attribute_whatever_the_constants(make):
    engine = make(flag_when({"attr": "groups", "has_any": [f"g{i}" for i in range(1000)]}))
    reads = []

    class Recording(dict):
        def get(self, key, default=None):
            reads.append(key)
            return super().get(key, default)

    assert engine.is_enabled("f", Recording(groups=["g5"])) is True
    assert reads == ["groups"]


# -- the definition, as properties ------------------------------------------------------

scalars = st.one_of(
    st.sampled_from(["beta", "Beta", "BETA", "staff", "straße", "STRASSE", "x", "", "7"]),
    st.integers(min_value=-3, max_value=9),
    st.sampled_from([2**53, 2**53 + 1, 10**400, -(10**400)]),
    st.floats(allow_nan=True).filter(lambda f: abs(f) < 20 or not math.isfinite(f)),
    st.booleans(),
    st.none(),
    any_text(max_size=4),
)
constants = st.lists(
    st.one_of(
        st.sampled_from(["beta", "staff", "straße", "x", "7", ""]),
        st.integers(min_value=-3, max_value=9),
        st.sampled_from([2**53 + 1, 0.5, -0.0]),
        st.booleans(),
    ),
    max_size=6,
)
arrays = st.one_of(
    st.lists(st.one_of(scalars, st.lists(scalars, max_size=2)), max_size=6),
    st.lists(scalars, max_size=6).map(tuple),
    st.frozensets(st.sampled_from(["beta", "x", 7, True, 0.5, "STRASSE"]), max_size=4),
)


@settings(max_examples=examples(300), deadline=None)
@given(values=constants, array=arrays)
def test_has_any_is_in_over_the_elements(make_py_and_c, values, array):
    cond = {"attr": "a", "has_any": values}
    per_element = {"attr": "a", "in": values}
    for make in make_py_and_c:
        engine = make(flag_when(cond))
        element = make(flag_when(per_element))
        expected = any(element.is_enabled("f", {"a": e}) for e in array if not isinstance(e, list))
        assert engine.is_enabled("f", {"a": array}) is expected
        assert engine.is_enabled("f", engine.context({"a": array})) is expected


@settings(max_examples=examples(200), deadline=None)
@given(
    values=st.lists(st.sampled_from(["beta", "Straße", "STAFF", "x", "İ", "ǅ"]), max_size=4),
    array=st.lists(
        st.one_of(st.sampled_from(["BETA", "strasse", "staff", "i̇", "ǆ", "X"]), st.integers(0, 3)),
        max_size=5,
    ),
)
def test_has_any_ignore_case_is_in_ignore_case_over_the_elements(make_py_and_c, values, array):
    cond = {"attr": "a", "has_any": values, "ignore_case": True}
    per_element = {"attr": "a", "in": values, "ignore_case": True}
    for make in make_py_and_c:
        engine = make(flag_when(cond))
        element = make(flag_when(per_element))
        expected = any(element.is_enabled("f", {"a": e}) for e in array)
        assert engine.is_enabled("f", {"a": array}) is expected
        assert engine.is_enabled("f", engine.context({"a": array})) is expected


def test_flagd_export_refuses_has_any_naming_the_flag():
    # JSONLogic's own "in" and "some" compare with their own equality; nothing in flagd
    # reads an array the way has_any does, so the export says so instead of guessing
    from cfgcore.interop import InteropError
    from cfgcore.interop._flagd_export import export
    from cfgcore.snapshot import decode_snapshot

    snap = decode_snapshot(json.dumps(flag_when(GROUPS)), "json")
    with pytest.raises(InteropError) as exc:
        export(snap)
    assert "flags.f" in str(exc.value)
    assert "has_any" in str(exc.value)


def test_an_array_past_max_array_is_unusable_in_the_reference(monkeypatch):
    # The compiled evaluator's bound (2**30 elements, int32 counts) cannot be reached in a
    # test's memory; the reference reads the same constant from the layout, lowered here.
    from cfgcore import _eval_py
    from cfgcore import _layout as L
    from cfgcore.engine import engine_class

    engine = engine_class(_eval_py).from_snapshot(flag_when(GROUPS))
    monkeypatch.setattr(L, "MAX_ARRAY", 3)
    assert engine.is_enabled("f", {"groups": ["x", "y", "beta"]}) is True
    assert engine.is_enabled("f", {"groups": ["x", "y", "z", "beta"]}) is False


@pytest.mark.parametrize(
    ("cond", "message"),
    [
        ({"attr": "g", "has_any": "beta"}, "when.has_any: expected array, got str"),
        ({"has_any": ["a"]}, "when: 'has_any' needs an 'attr'"),
        ({"attr": "g", "has_any": [["a"]]}, "when.has_any[0]: expected bool | int | float | str"),
        ({"attr": "g", "has_any": [float("nan")]}, "when.has_any: NaN never equals anything"),
        ({"attr": "g", "has_any": ["a"], "in": ["b"]}, "more than one operator (in, has_any)"),
        ({"attr": "g", "has_any": [10**400]}, "when.has_any: number out of range"),
    ],
)
def test_a_bad_has_any_is_refused_with_its_path(make, cond, message):
    with pytest.raises(SnapshotError) as exc:
        make(flag_when(cond))
    assert "flags.f.rules[0]." in str(exc.value) and message in str(exc.value)


def test_an_incremental_compile_that_adds_has_any_to_a_known_attribute(impl):
    # the slot exists already (read by `in`); the changed flag makes it an array slot
    from cfgcore.compiler import compile_incremental, compile_snapshot
    from cfgcore.engine import engine_class
    from cfgcore.snapshot import snapshot_from_dict

    def snap(cond):
        return snapshot_from_dict(
            {
                "flags": {
                    "a": {
                        "default": "off",
                        "rules": [{"when": {"attr": "g", "in": ["x"]}, "serve": "on"}],
                    },
                    "b": {"default": "off", "rules": [{"when": cond, "serve": "on"}]},
                }
            }
        )

    before = compile_snapshot(snap({"attr": "h", "eq": 1}))
    tables = compile_incremental(before, snap({"attr": "g", "has_any": ["beta"]}))
    engine = engine_class(impl)()
    engine.swap(impl.CompiledSnapshot(tables))
    assert engine.is_enabled("b", {"g": ["y", "beta"]}) is True
    assert engine.is_enabled("a", {"g": "x"}) is True
    assert engine.is_enabled("a", {"g": ["x"]}) is False


def test_a_context_bound_before_a_swap_reads_its_array_on_the_new_snapshot(make):
    # the context was bound to a snapshot where "groups" was a scalar slot (or absent):
    # on the new one it binds again (a Binding), this time as an array slot
    engine = make(
        {
            "flags": {
                "x": {
                    "default": "off",
                    "rules": [{"when": {"attr": "groups", "eq": "beta"}, "serve": "on"}],
                }
            }
        }
    )
    ctx = engine.context({"groups": ["beta", "staff"]})
    assert engine.is_enabled("x", ctx) is False  # an array is not eq "beta"
    engine.swap(flag_when(GROUPS))
    assert engine.is_enabled("f", ctx) is True
    assert engine.evaluate_all(ctx)["f"] is True
    engine.swap(flag_when({"attr": "groups", "has_any": ["nobody"]}))
    assert engine.is_enabled("f", ctx) is False
