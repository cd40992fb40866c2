"""A variant value given as a subclass of str, int or float (an application's
``StrEnum`` or ``IntEnum`` member, its own ``Text(str)``, a ``numpy.float64``) in a
flag document built in Python is served as its base type's value, on both evaluators,
as a variant name, a flag key and a condition's constant already are. So is every key
and element inside an object or array value, and a dict, list or tuple subclass is
served as the read-only object or array of the items it stores.

The subclass instance itself was served to every caller: ``engine.value("f")`` gave
the ``StrEnum`` member (whose ``str()`` is ``"Color.RED"`` on Python 3.10, and whose
``json.dumps`` and equality are the class's), or a caller's type whose own
``__eq__``/``__hash__``/``__str__`` answered every comparison the application made,
and which held the caller's object alive in every request. An object value's key of
such a type could not even be looked up by its text.
"""

from __future__ import annotations

import enum
import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.errors import SnapshotError
from tests.fuzz import examples


class Liar(str):
    """A string type whose equality, hash and text say something else."""

    def __eq__(self, other):
        return True

    def __ne__(self, other):
        return False

    def __hash__(self):
        return 0

    def __str__(self):
        return "lie"

    def __repr__(self):
        return "Liar()"


class Raising(str):
    """A string type whose every own method raises."""

    def __eq__(self, other):
        raise RuntimeError("eq")

    def __ne__(self, other):
        raise RuntimeError("ne")

    def __hash__(self):
        # Once armed (a key already in its dict: inserting it hashed it), every later
        # hash raises.
        if getattr(self, "armed", False):
            raise RuntimeError("hash")
        return str.__hash__(self)

    def __str__(self):
        raise RuntimeError("str")

    def __repr__(self):
        return f"Raising({str.__repr__(self)})"

    def encode(self, *args, **kwargs):
        raise RuntimeError("encode")


class Count(int):
    def __eq__(self, other):
        return True

    def __hash__(self):
        return 0

    def __int__(self):
        return 99

    def __index__(self):
        return 99


class Ratio(float):
    def __eq__(self, other):
        return True

    def __hash__(self):
        return 0

    def __float__(self):
        return 99.0


class Color(enum.StrEnum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


class Fields(dict):
    def items(self):
        raise RuntimeError("items")

    def __iter__(self):
        raise RuntimeError("iter")


class Items(list):
    def __iter__(self):
        raise RuntimeError("iter")


def armed(pairs):
    """A dict of ``pairs`` whose Raising keys raise from every hash after insertion."""
    out = dict(pairs)
    for key in out:
        if type(key) is Raising:
            key.armed = True
    return out


def arm_all(value):
    """Arm every Raising key in ``value`` (drawn unarmed: the drawing hashes them)."""
    kind = type(value)
    if issubclass(kind, dict):
        for k, v in dict.items(value):
            if type(k) is Raising:
                k.armed = True
            arm_all(v)
    elif issubclass(kind, (list, tuple)):
        for v in list.__iter__(value) if issubclass(kind, list) else tuple.__iter__(value):
            arm_all(v)


def exact(value):
    """True when ``value`` holds nothing but the base types (and the read-only object
    and array types every served value has)."""
    kind = type(value)
    if kind.__name__ == "FrozenDict":
        return all(type(k) is str and exact(v) for k, v in dict.items(value))
    if kind.__name__ == "FrozenList":
        return all(exact(v) for v in list.__iter__(value))
    return value is None or kind in (str, int, float, bool)


# (variant value, the plain value it serves)
CASES = {
    "liar": (Liar("x"), "x"),
    "raising": (Raising("x"), "x"),
    "strenum": (Color.RED, "red"),
    "intenum": (Level.HIGH, 3),
    "int": (Count(7), 7),
    "float": (Ratio(1.5), 1.5),
    "true": (True, True),
    "false": (False, False),
    "nested": ({"k": Liar("v"), Color.RED: [Count(1), Ratio(2.5)]}, {"k": "v", "red": [1, 2.5]}),
    "tuple": ((Color.RED, Level.HIGH), ["red", 3]),
    "dict_subclass": (Fields(a=Liar("b")), {"a": "b"}),
    "list_subclass": (Items([Liar("b"), 1]), ["b", 1]),
    "deep": ({"a": [{"b": (Raising("c"),)}]}, {"a": [{"b": ["c"]}]}),
}


def _served(engine, key="f"):
    details = engine.evaluate(key)
    everything = engine.evaluate_all()
    return [engine.value(key), details.value, everything[key]]


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_subclass_variant_value_is_served_as_its_base_value(make, case):
    given_value, want = CASES[case]
    engine = make({"flags": {"f": {"variants": {"a": given_value, "b": 0}, "default": "a"}}})
    for served in _served(engine):
        assert exact(served), (case, type(served))
        assert served == want
        assert json.dumps(served) == json.dumps(want)  # (the caller's __str__ unread)
    # The served value's kind is its base type's: a default of that type gets it.
    default = {"k": 1} if isinstance(want, dict) else [1] if isinstance(want, list) else want
    assert engine.value("f", default=default) == want


def test_true_stays_true_not_one(make):
    engine = make({"flags": {"f": {"variants": {"on": True, "n": Count(1)}, "default": "on"}}})
    assert engine.value("f") is True
    assert engine.is_enabled("f") is False  # a number variant: no boolean flag
    engine = make({"flags": {"f": {"variants": {"on": True, "off": False}, "default": "on"}}})
    assert engine.value("f") is True and engine.is_enabled("f") is True


def test_a_served_object_value_is_looked_up_by_its_text(make):
    engine = make({"flags": {"f": {"variants": {"a": {Liar("k"): 1}}, "default": "a"}}})
    value = engine.value("f")
    assert value["k"] == 1 and list(value) == ["k"]
    assert type(next(iter(value))) is str


def test_a_served_float_keeps_nan_and_infinities(make):
    value = [Ratio(math.inf), Ratio(math.nan)]
    engine = make({"flags": {"f": {"variants": {"a": value}, "default": "a"}}})
    inf, nan = engine.value("f")
    assert type(inf) is float and inf == math.inf
    assert type(nan) is float and math.isnan(nan)


def test_served_values_of_a_flag_struct_and_an_incremental_compile(make):
    from cfgcore.snapshot import Flag, Snapshot

    flag = Flag(variants={"a": Color.RED, "b": {"x": Level.HIGH}}, default="a")
    engine = make(Snapshot(flags={"f": flag}))
    assert type(engine.value("f")) is str and engine.value("f") == "red"
    previous = engine.snapshot()
    changed = Flag(variants={"a": Color.RED, "b": {"x": Level.HIGH}}, default="b")
    compiled = engine.compile(Snapshot(flags={"f": changed, "g": flag}), previous=previous)
    engine.swap(compiled)
    assert exact(engine.value("f")) and engine.value("f") == {"x": 3}
    assert exact(engine.value("g")) and engine.value("g") == "red"


def test_a_pickled_snapshot_serves_the_base_values(make):
    import pickle

    engine = make({"flags": {"f": {"variants": {"a": {"k": Color.RED}}, "default": "a"}}})
    again = make(pickle.loads(pickle.dumps(engine.snapshot().tables)))
    assert exact(again.value("f")) and again.value("f") == {"k": "red"}


def test_the_same_object_key_written_twice_is_refused_at_its_path(make):
    # Two keys that are one text once read by value: which one served would be an
    # accident of the dict's order.
    value = {"k": 1, Liar("k"): 2}
    with pytest.raises(SnapshotError) as err:
        make({"flags": {"f": {"variants": {"a": {"o": value}}, "default": "a"}}})
    assert "flags.f.variants.a.o.k: the same key written twice" in str(err.value)


def test_a_key_whose_hash_raises_is_served_by_its_text(make):
    value = armed([(Raising("k"), Raising("v")), (Raising("k2"), 1)])
    engine = make({"flags": {"f": {"variants": {"a": value}, "default": "a"}}})
    assert engine.value("f") == {"k": "v", "k2": 1} and exact(engine.value("f"))


def test_a_variant_name_written_twice_by_a_str_subclass_is_refused(make):
    # {Liar("a"): 1, "a": 2} holds two variants named "a": which one a rule or the
    # default served was the dict's order.
    with pytest.raises(SnapshotError) as err:
        make({"flags": {"f": {"variants": {Liar("a"): 1, "a": 2}, "default": "a"}}})
    assert "flags.f.variants.a: the same variant written twice" in str(err.value)


def test_a_variant_name_whose_hash_raises_is_refused_at_its_path(make):
    names = armed([(Raising("a"), 1)])
    with pytest.raises(SnapshotError) as err:
        make({"flags": {"f": {"variants": names, "default": "a"}}})
    assert "flags.f.variants: not a flag document's value: reading key 'a' raised" in str(err.value)


def test_a_flag_struct_of_raising_containers_is_served_by_its_items(make):
    from cfgcore.snapshot import Flag, Snapshot

    names = armed([(Raising("a"), Fields(k=Items([Liar("v")])))])
    engine = make(Snapshot(flags={"f": Flag(variants=Fields(names), default=Raising("a"))}))
    assert engine.value("f") == {"k": ["v"]} and exact(engine.value("f"))
    assert engine.variant("f") == "a" and type(engine.variant("f")) is str


# -- hostile values: compile refuses with the key path, or serves plain values -----------
# Drawn as plain specs and built in the test: a lying __eq__/__hash__ inside a drawn
# value would confuse the test generator's own caches.

_texts = st.text(max_size=4)
_INTS = st.integers(-(2**63), 2**64 - 1)
_leaves = st.one_of(
    st.none(),
    st.booleans(),
    _INTS,
    st.floats(),
    _texts,
    st.tuples(st.sampled_from(["liar", "raising"]), _texts),
    st.tuples(st.just("count"), _INTS),
    st.tuples(st.just("ratio"), st.floats()),
    st.tuples(st.just("enum"), st.sampled_from(["red", "high"])),
)
_keys = st.tuples(st.sampled_from(["str", "liar", "raising"]), _texts)
_specs = st.recursive(
    _leaves,
    lambda inner: (
        st.tuples(st.sampled_from(["list", "tuple", "items"]), st.lists(inner, max_size=3))
        | st.tuples(
            st.sampled_from(["object", "fields"]), st.lists(st.tuples(_keys, inner), max_size=3)
        )
    ),
    max_leaves=10,
)
_ENUMS = {"red": Color.RED, "high": Level.HIGH}
_LEAF_TYPES = {"liar": Liar, "raising": Raising, "count": Count, "ratio": Ratio}


def build(spec):
    """The value ``spec`` stands for, hostile types and all (Raising keys armed)."""
    if not isinstance(spec, tuple):
        return spec
    tag, body = spec
    if tag in _LEAF_TYPES:
        return _LEAF_TYPES[tag](body)
    if tag == "enum":
        return _ENUMS[body]
    if tag in ("list", "tuple", "items"):
        items = [build(s) for s in body]
        return items if tag == "list" else tuple(items) if tag == "tuple" else Items(items)
    out, kinds = {}, {}
    for (kind, text), value in body:
        if tag == "fields" or not text:
            kind = "str"  # (hash("") is a Liar's hash: a Raising "" would be compared)
        if text in kinds and "raising" in (kind, kinds[text]):
            continue  # a Raising key compared while the dict is built: left out
        key = {"str": str, "liar": Liar, "raising": Raising}[kind](text)
        out[key] = build(value)
        kinds[text] = kind
    for key in out:
        if type(key) is Raising:
            key.armed = True
    return Fields(out) if tag == "fields" else out


def _plain(value):
    """The value a document of the base types would hold; KeyError when two keys of an
    object are one text (refused)."""
    kind = type(value)
    if value is None or kind is bool:
        return value
    if issubclass(kind, str):
        return str.__str__(value)
    if issubclass(kind, int):
        return int.__int__(value)
    if issubclass(kind, float):
        return float.__float__(value)
    if issubclass(kind, dict):
        out = {}
        for k, v in dict.items(value):
            text = str.__str__(k)
            if text in out:
                raise KeyError(text)
            out[text] = _plain(v)
        return out
    return [_plain(v) for v in (list.__iter__(value) if issubclass(kind, list) else value)]


def _same(a, b):
    """Equal as JSON holds them (NaN equal to itself, 1 not 1.0, True not 1)."""
    if type(a) is float and type(b) is float:
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(map(_same, a, b))
    return type(a) is type(b) and a == b


@settings(max_examples=examples(200), deadline=None)
@given(spec=_specs, name=st.sampled_from(["plain", "enum", "liar"]))
def test_any_subclass_value_is_served_plain_or_refused_at_its_path(make_py_and_c, spec, name):
    variant = {"plain": "a", "enum": Color.RED, "liar": Liar("a")}[name]
    value = build(spec)
    try:
        want = _plain(value)
    except KeyError:
        want = KeyError
    for make in make_py_and_c:
        doc = {"flags": {"f": {"variants": {variant: value}, "default": variant}}}
        if want is KeyError:
            with pytest.raises(SnapshotError) as err:
                make(doc)
            assert "the same key written twice" in str(err.value)
            assert f"flags.f.variants.{str.__str__(variant)}" in str(err.value)
            continue
        engine = make(doc)
        for served in _served(engine):
            assert exact(served)
            assert _same(served, want)
        assert engine.variant("f") == str.__str__(variant) and type(engine.variant("f")) is str


@settings(max_examples=examples(200), deadline=None)
@given(parent=st.sampled_from(["", "flags", "flags.f.variants"]), text=st.text(max_size=6))
def test_a_key_path_names_a_str_subclass_key_by_its_text(parent, text):
    # Naming a key in a refusal read a str subclass key with its own methods: a Raising
    # key's __ne__ made the refusal raise, a Liar's __str__ named another key.
    from cfgcore.errors import child_key_path, format_key_path, key_segment

    for cls in (Liar, Raising):
        key = cls(text)
        assert child_key_path(parent, key) == child_key_path(parent, text)
        assert format_key_path((parent or "x", key, 0)) == format_key_path((parent or "x", text, 0))
        assert key_segment(key) == key_segment(text)


@settings(max_examples=examples(100), deadline=None)
@given(
    spec=_specs,
    user=st.one_of(
        st.text(max_size=4), st.integers(), st.none(), st.tuples(st.just("liar"), _texts)
    ),
)
def test_serving_hostile_values_never_raises_and_both_evaluators_agree(make_py_and_c, spec, user):
    value = build(spec)
    try:
        _plain(value)
    except KeyError:
        return  # refused: the property above
    variants = {Color.RED: value, Liar("b"): [Count(1)], "c": Ratio(0.5)}
    rules = [
        {"when": {"attr": "plan", "eq": Liar("gold")}, "serve": Liar("b")},
        {"split": {Color.RED: 50, Liar("b"): 25, "c": 25}},
    ]
    doc = {"flags": {"f": {"variants": variants, "default": "c", "rules": rules}}}
    uid = build(user)
    answers = []
    for make in make_py_and_c:
        engine = make(doc)
        got = []
        for ctx in ({"user_id": uid}, {"user_id": uid, "plan": "gold"}, {"plan": Liar("x")}):
            details = engine.evaluate("f", ctx)
            assert exact(details.value) and type(details.variant) is str
            got.append((details.variant, details.reason, json.dumps(details.value)))
            assert exact(engine.value("f", ctx)) and exact(engine.evaluate_all(ctx)["f"])
        answers.append(got)
    assert all(a == answers[0] for a in answers)
