"""Flag documents whose numbers are huge or of a subclass type, compiled on both
evaluators and checked against the README's semantics (tests/spec_interpreter.py).

* A split weight too large for its bucket count (``1e306``: no bucket count holds
  ``1e306 * 1000``) made the compile raise a bare ``OverflowError`` from the
  split's range ends, instead of the ``SnapshotError`` naming the split whose
  weights do not sum to 100.
* A float subclass constant (a ``numpy.float64`` rollout, split weight or bound, as
  a document built from a pandas frame holds them) was refused in a document of
  plain data (``expected int | float, got numpy.float64``), where an int or str
  subclass was taken. In a ``Snapshot`` built from Structs, any str, int or float
  subclass constant (a library's str type, a ``numpy.float64``) was refused at the
  flag with msgspec's ``Encoding objects of type ... is unsupported``. README "Types
  are strict": such a constant is its base type's value; its own methods are never
  called.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.errors import SnapshotError
from cfgcore.snapshot import Condition, Flag, Rule, Snapshot, snapshot_from_dict
from tests.fuzz import examples
from tests.spec_interpreter import Interpreter, comparable


class Weight(float):
    """A float subclass whose own conversions raise: only its stored value may be read."""

    def __float__(self):
        raise RuntimeError("read through __float__")

    def __repr__(self):
        return f"Weight({float.__repr__(self)})"


class Count(int):
    def __int__(self):
        raise RuntimeError("read through __int__")

    def __index__(self):
        raise RuntimeError("read through __index__")

    def __float__(self):
        raise RuntimeError("read through __float__")


class Text(str):
    def __str__(self):
        raise RuntimeError("read through __str__")

    def __hash__(self):
        return 7


def _flag(rule: dict) -> dict:
    return {"flags": {"f": {"rules": [rule], "default": "off"}}}


@settings(max_examples=examples(40))
@given(
    big=st.floats(min_value=1e303, max_value=1.7976931348623157e308),
    other=st.sampled_from([None, 0, 50, 1e306]),
    first=st.booleans(),
)
def test_a_split_weight_past_any_bucket_count_is_refused_by_its_sum(
    make_py_and_c, big, other, first
):
    weights = {"on": big} if other is None else {"on": big, "off": other}
    if not first and other is not None:
        weights = {"off": other, "on": big}
    for build in make_py_and_c:
        with pytest.raises(SnapshotError) as err:
            build(_flag({"split": weights}))
        assert [p.path for p in err.value.problems] == ["flags.f.rules[0].split"]
        assert "not 100" in err.value.problems[0].message


def test_a_split_weight_past_any_bucket_count_in_a_yaml_file(make_py_and_c, tmp_path):
    path = tmp_path / "flags.yaml"
    path.write_text(
        "flags:\n  f:\n    rules:\n      - split: {on: 1e306, off: 0}\n    default: off\n"
    )
    for build in make_py_and_c:
        engine = build({"flags": {"f": {"default": "on"}}})
        with pytest.raises(SnapshotError) as err:
            engine.load_file(path)
        want = "flags.yaml:4: flags.f.rules[0].split: weights sum to 1e+306, not 100"
        assert want in str(err.value)
        assert engine.is_enabled("f") is True  # the previous flags serve on


def _plain(value):
    return float.__float__(value) if isinstance(value, float) else value


numbers = st.sampled_from([0.0, 12.5, 33.3333, 50.0, 99.999, 100.0])


def _weights(first: float) -> tuple[float, float]:
    return first, 100.0 - first


@settings(max_examples=examples(40))
@given(
    rollout=numbers,
    first=numbers,
    bound=st.sampled_from([-0.0, 0.5, 17.999999999999996, 18.0, 1e308, -math.inf]),
    kind=st.sampled_from([np.float64, Weight]),
    users=st.lists(st.text(max_size=6), min_size=1, max_size=6),
    ages=st.lists(
        st.one_of(st.integers(-5, 40), st.floats(allow_nan=False)), min_size=1, max_size=4
    ),
)
def test_float_subclass_constants_are_their_float_values(
    make_py_and_c, rollout, first, bound, kind, users, ages
):
    """A document of plain data holding float subclass constants compiles and answers
    as the same document holding floats, on both evaluators and against the spec."""

    def document(cast):
        a, b = _weights(first)
        return {
            "segments": {"adult": {"attr": "age", "ge": cast(bound)}},
            "flags": {
                "roll": {"rules": [{"rollout": cast(rollout), "serve": "on"}], "default": "off"},
                "split": {
                    "variants": {"a": "A", "b": "B"},
                    "rules": [{"split": {"a": cast(a), "b": cast(b)}}],
                    "default": "a",
                },
                "age": {
                    "rules": [
                        {"when": {"attr": "age", "lt": cast(bound)}, "serve": "on"},
                        {"when": {"attr": "age", "in": [cast(bound), "x"]}, "serve": "on"},
                        {"when": {"segment": "adult"}, "serve": "off"},
                    ],
                    "default": "off",
                },
            },
        }

    plain, odd = document(float), document(lambda x: kind(x))
    spec = Interpreter(snapshot_from_dict(plain))
    for build in make_py_and_c:
        want, got = build(plain), build(odd)
        for user in users:
            for age in ages:
                ctx = {"user_id": user, "age": age}
                for key in plain["flags"]:
                    assert got.evaluate(key, ctx) == want.evaluate(key, ctx)
                    assert comparable(got.evaluate(key, ctx)) == comparable(spec.evaluate(key, ctx))


@settings(max_examples=examples(30))
@given(
    rollout=numbers,
    first=numbers,
    bound=st.sampled_from([0.5, 18.0, -1e300]),
    users=st.lists(st.text(max_size=6), min_size=1, max_size=6),
)
def test_subclass_constants_of_a_snapshot_built_from_structs(
    make_py_and_c, rollout, first, bound, users
):
    """str, int and float subclasses in Condition and Rule fields of a Snapshot built in
    Python compile as their base values (their own methods raise if called)."""

    def snapshot(f, i, s):
        a, b = _weights(first)
        return Snapshot(
            flags={
                "roll": Flag(default="off", rules=[Rule(rollout=f(rollout), serve=s("on"))]),
                "split": Flag(default="off", rules=[Rule(split={s("on"): f(a), "off": f(b)})]),
                "cond": Flag(
                    default="off",
                    rules=[
                        Rule(when=Condition(attr=s("age"), lt=f(bound)), serve="on"),
                        Rule(when=Condition(attr="n", in_=[i(3), s("x")]), serve="on"),
                        Rule(when=Condition(attr="n", starts_with=s("ab")), serve="on"),
                    ],
                    bucket_by=[s("user_id")],
                ),
            }
        )

    plain = snapshot(float, int, str)
    odd = snapshot(Weight, Count, Text)
    spec = Interpreter(plain)
    for build in make_py_and_c:
        want, got = build(plain), build(odd)
        for user in users:
            ctxs = ({"user_id": user, "age": 1}, {"user_id": user, "n": 3}, {"n": "ab"}, {"n": "x"})
            for ctx in ctxs:
                for key in plain.flags:
                    assert got.evaluate(key, ctx) == want.evaluate(key, ctx)
                    assert comparable(got.evaluate(key, ctx)) == comparable(spec.evaluate(key, ctx))


def test_a_numpy_float_split_of_a_snapshot_built_from_structs(make_py_and_c):
    weights = np.array([25.0, 75.0])
    odd_rule = Rule(split={"on": weights[0], "off": weights[1]})
    snap = Snapshot(flags={"f": Flag(default="on", rules=[odd_rule])})
    plain_rule = Rule(split={"on": 25.0, "off": 75.0})
    plain = Snapshot(flags={"f": Flag(default="on", rules=[plain_rule])})
    for build in make_py_and_c:
        odd, want = build(snap), build(plain)
        for user in range(200):
            assert odd.evaluate("f", {"user_id": user}) == want.evaluate("f", {"user_id": user})


@pytest.mark.parametrize(
    "rule, path, message",
    [
        (
            {"rollout": np.int64(5), "serve": "on"},
            "rules[0].rollout",
            "expected int | float, got numpy.int64",
        ),
        ({"rollout": Weight(101.0), "serve": "on"}, "rules[0].rollout", "must be within 0..100"),
        (
            {"when": {"attr": "a", "lt": "5"}, "serve": "on"},
            "rules[0].when.lt",
            "expected int | float, got str",
        ),
        (
            {"split": {"on": Weight(50.0), "off": True}},
            "rules[0].split.off",
            "expected int | float, got bool",
        ),
        (
            {"when": {"attr": "a", "eq": np.float64("nan")}, "serve": "on"},
            "rules[0].when.eq",
            "NaN never equals",
        ),
    ],
)
def test_what_a_float_subclass_document_still_refuses(make_py_and_c, rule, path, message):
    """Only float subclasses are read as floats: other types (a NumPy int, a bool, text)
    and values out of range are refused as before, at their key path."""
    for build in make_py_and_c:
        with pytest.raises(SnapshotError) as err:
            build(_flag(rule))
        assert [p.path for p in err.value.problems] == [f"flags.f.{path}"]
        assert message in err.value.problems[0].message


class Name(str):
    """A str subclass key whose own str() raises (and whose hash is its own)."""

    def __str__(self):
        raise RuntimeError("read through __str__")

    def __hash__(self):
        return 7


def test_str_subclass_variant_names_and_split_keys_of_structs(make_py_and_c):
    """Variant names and split keys of a Snapshot built in Python that are str
    subclasses compile as their text: the compile raised the key's own RuntimeError."""
    odd = Snapshot(
        flags={
            "s": Flag(default="off", rules=[Rule(split={Name("on"): 50.0, "off": 50.0})]),
            "v": Flag(
                default=Name("b"),
                variants={Name("a"): 1, Name("b"): 2},
                rules=[Rule(when=Condition(attr="x", exists=True), serve=Name("a"))],
            ),
        }
    )
    plain = Snapshot(
        flags={
            "s": Flag(default="off", rules=[Rule(split={"on": 50.0, "off": 50.0})]),
            "v": Flag(
                default="b",
                variants={"a": 1, "b": 2},
                rules=[Rule(when=Condition(attr="x", exists=True), serve="a")],
            ),
        }
    )
    for build in make_py_and_c:
        got, want = build(odd), build(plain)
        for user in range(100):
            for ctx in ({"user_id": user}, {"user_id": user, "x": 1}):
                for key in ("s", "v"):
                    assert got.evaluate(key, ctx) == want.evaluate(key, ctx)


@pytest.mark.parametrize(
    "flag, segment, path",
    [
        (Flag(default="off", enabled=np.bool_(False)), None, "flags.f.enabled"),
        (
            Flag(default="off", rules=[Rule(when=Condition(attr="a", exists=np.bool_(True)))]),
            None,
            "flags.f.rules[0].when.exists",
        ),
        (
            Flag(default="off", rules=[Rule(when=Condition(attr="a", in_=["x", object()]))]),
            None,
            "flags.f.rules[0].when.in[1]",
        ),
        (
            Flag(default="off", rules=[Rule(when=Condition(not_=Condition(attr="a", eq=1j)))]),
            None,
            "flags.f.rules[0].when.not.eq",
        ),
        (
            Flag(default="off"),
            Condition(
                all=[
                    Condition(attr="a", starts_with=np.str_("x")),
                    Condition(attr="a", lt=np.int64(3)),
                ]
            ),
            "segments.s.all[1].lt",
        ),
    ],
)
def test_a_struct_value_no_document_holds_is_named_at_its_field(make_py_and_c, flag, segment, path):
    """A value of a type no flag document holds, in a Snapshot built from Structs, is
    refused at its own key path (it was named by its flag or segment only)."""
    snap = Snapshot(flags={"f": flag}, segments={} if segment is None else {"s": segment})
    for build in make_py_and_c:
        with pytest.raises(SnapshotError) as err:
            build(snap)
        assert [p.path for p in err.value.problems] == [path]
        assert "not a flag document's value: Encoding objects of type" in str(err.value)


class Indexed:
    """An object read by msgspec through its own ``__getitem__`` where a flag, rule or
    condition goes (as it reads a NumPy scalar or array), which raises."""

    def __getitem__(self, key):
        raise RuntimeError("read through __getitem__")


ODD_OBJECTS = [np.int64(3), np.bool_(True), np.array([1, 2]), np.float32(1), Indexed()]
PLACES = [
    (lambda v: {"flags": {"f": v}}, "flags.f"),
    (lambda v: {"flags": {"f": {"default": "on", "rules": [v]}}}, "flags.f.rules[0]"),
    (
        lambda v: {"flags": {"f": {"default": "on", "rules": [{"when": {"not": v}}]}}},
        "flags.f.rules[0].when.not",
    ),
    (lambda v: {"flags": {"f": {"default": "on", "schedule": v}}}, "flags.f.schedule"),
    (
        lambda v: {"flags": {}, "segments": {"s": {"all": [{"attr": "a", "exists": True}, v]}}},
        "segments.s.all[1]",
    ),
]


@settings(max_examples=examples(25))
@given(odd=st.integers(0, len(ODD_OBJECTS) - 1), place=st.integers(0, len(PLACES) - 1))
def test_an_object_where_a_flag_rule_or_condition_goes_is_refused_at_its_path(
    make_py_and_c, odd, place
):
    """A NumPy scalar or array (or any object msgspec indexes) where a flag, rule or
    condition goes made the compile raise IndexError (or the object's own error)."""
    shape, path = PLACES[place]
    for build in make_py_and_c:
        engine = build({"flags": {"g": {"default": "on"}}})
        with pytest.raises(SnapshotError) as err:
            engine.swap(shape(ODD_OBJECTS[odd]))
        assert [p.path for p in err.value.problems] == [path]
        assert err.value.problems[0].message.startswith("expected object, got ")
        assert engine.is_enabled("g") is True


@pytest.mark.parametrize(
    "flag, path",
    [
        (Flag(default={Name("on"): 100}), "flags.f.default.on"),
        (
            Flag(default="on", rules=[Rule(when=Condition(attr="a", in_={Name("x"): 1}))]),
            "flags.f.rules[0].when.in.x",
        ),
    ],
)
def test_a_mapping_with_a_str_subclass_key_where_no_mapping_goes(make_py_and_c, flag, path):
    """A mapping whose str subclass key msgspec reads through the key's own ``__str__``,
    given where no mapping goes in a Snapshot built from Structs: the compile raised
    that key's error; it is refused at the key's path."""
    for build in make_py_and_c:
        with pytest.raises(SnapshotError) as err:
            build(Snapshot(flags={"f": flag}))
        assert [p.path for p in err.value.problems] == [path]
        assert "reading it raised RuntimeError: read through __str__" in str(err.value)


class ArmedKey(str):
    """A flag or segment key whose own hash raises once armed (after the document is built)."""

    armed = False

    def __hash__(self):
        if ArmedKey.armed:
            raise RuntimeError("read through __hash__")
        return str.__hash__(self)


@pytest.mark.parametrize("section", ["flags", "segments"])
def test_a_document_key_whose_hash_raises_is_refused_at_its_path(make_py_and_c, section):
    """A flag or segment key of plain data whose own ``__hash__`` raises made the
    compile raise that error; it is refused, named by the key."""
    body = {"default": "on"} if section == "flags" else {"attr": "a", "exists": True}
    doc = {"flags": {}, section: {ArmedKey("k"): body}}
    for build in make_py_and_c:
        engine = build({"flags": {"g": {"default": "on"}}})
        ArmedKey.armed = True
        try:
            with pytest.raises(SnapshotError) as err:
                engine.swap(doc)
        finally:
            ArmedKey.armed = False
        assert [p.path for p in err.value.problems] == [f"{section}.k"]
        assert "reading it raised RuntimeError: read through __hash__" in str(err.value)
        assert engine.is_enabled("g") is True
