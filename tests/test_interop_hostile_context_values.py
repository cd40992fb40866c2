"""``growthbook.context()``, ``flagd.context()`` and ``unleash.context()`` never raise
an Exception on an application's own value types, and read one whose methods raise as
the evaluators do.

A context is built from the values as given (an ordinary context pays nothing more);
where that raises, the attributes are read again carefully: a ``str``, ``int`` or
``float`` subclass as its exact value, a ``dict`` or ``list`` subclass by the items it
stores (GrowthBook, flagd), whatever its own ``__eq__``, ``__hash__``, ``lower``,
``__str__``, ``items``, ``__iter__``, ``get``, ``__float__`` or ``__lt__`` do: the
context is the one the plain values give, and every check answers on it as on theirs,
on both evaluators. Unleash reads a value as its ``str()`` (as UnleashClient sends it):
a value whose ``str()`` raises is left out, as if not given. Anything a context() still
cannot read (an object whose ``__class__`` raises) is left out too. An interrupt (a
BaseException that is no Exception) propagates, and so do the caller's TypeErrors (a
forced variation's index, a wrong option). Before, each of these raised from the
override. A subclass whose methods answer is read through them for derived keys (the
documented consequence: the last test)."""

from __future__ import annotations

import enum
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.details import exact_value
from cfgcore.interop import flagd, growthbook, unleash
from tests.fuzz import examples


class Refused(Exception):
    pass


def _refuse(*args: Any, **kwargs: Any) -> Any:
    raise Refused


_STR_METHODS = (
    "__eq__ __ne__ __lt__ __le__ __gt__ __ge__ __hash__ __str__ __repr__ __format__ "
    "__contains__ __len__ __getitem__ __iter__ __add__ __radd__ __mul__ __mod__ __bool__ "
    "lower upper casefold strip lstrip rstrip startswith endswith encode isdigit isascii "
    "replace split partition find count join"
).split()
_NUM_METHODS = (
    "__eq__ __ne__ __lt__ __le__ __gt__ __ge__ __hash__ __str__ __repr__ __format__ "
    "__bool__ __float__ __int__ __index__ __abs__ __neg__ __round__ __trunc__ __add__ "
    "__sub__ __mul__ __truediv__ __mod__ __and__ __rshift__ is_integer hex bit_length"
).split()
_MAP_METHODS = (
    "__eq__ __repr__ __str__ __iter__ __len__ __bool__ __getitem__ __contains__ items "
    "keys values get copy pop setdefault"
).split()
_LIST_METHODS = (
    "__eq__ __repr__ __str__ __iter__ __len__ __bool__ __getitem__ __contains__ copy index count"
).split()


def _hostile(base: type, methods: list[str], keep: tuple[str, ...] = ()) -> type:
    return type(
        f"Hostile{base.__name__.title()}",
        (base,),
        {m: _refuse for m in methods if hasattr(base, m) and m not in keep},
    )


HStr = _hostile(str, _STR_METHODS)
# A key has to be put in a dict: its __hash__ and __eq__ work, the rest raises.
HKey = _hostile(str, _STR_METHODS, keep=("__hash__", "__eq__"))
HInt = _hostile(int, _NUM_METHODS)
HFloat = _hostile(float, _NUM_METHODS)
HDict = _hostile(dict, _MAP_METHODS)
HList = _hostile(list, _LIST_METHODS)
HOSTILE = (HStr, HKey, HInt, HFloat, HDict, HList)


def hostile_of(value: Any, rng: random.Random) -> Any:
    """``value`` with some of its strings, numbers, dicts, lists and keys as hostile
    subclass instances holding the same values (built here, not by hypothesis, which
    would call their methods to show or compare them)."""
    wrap = rng.random() < 0.5
    kind = type(value)
    if kind is str:
        return HStr(value) if wrap else value
    if kind is int:
        return HInt(value) if wrap else value
    if kind is float:
        return HFloat(value) if wrap else value
    if kind is list:
        items = [hostile_of(v, rng) for v in value]
        return HList(items) if wrap else items
    if kind is dict:
        pairs = {
            (HKey(k) if rng.random() < 0.5 else k): hostile_of(v, rng) for k, v in value.items()
        }
        return HDict(pairs) if wrap else pairs
    return value  # True, None


_TEXT = st.text("aAbB1. ßİ-", max_size=6)
_SCALARS = st.one_of(
    _TEXT, st.integers(-(2**70), 2**70), st.floats(allow_nan=False), st.sampled_from([True, None])
)
VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=4),
    max_leaves=10,
)
ATTRIBUTES = st.dictionaries(_TEXT, VALUES, max_size=5)
SEEDS = st.integers(0, 2**32)


def _no_hostile(value: Any, seen: set[int] | None = None) -> bool:
    """Nothing of a hostile type in the context (reached without calling one's methods)."""
    seen = set() if seen is None else seen
    if isinstance(value, HOSTILE):
        return False
    if type(value) in (dict, list) or isinstance(value, dict):
        if id(value) in seen:
            return True
        seen.add(id(value))
        items = dict.items(value) if isinstance(value, dict) else enumerate(value)
        return all(_no_hostile(k, seen) and _no_hostile(v, seen) for k, v in items)
    return True


def _exact(value: Any) -> Any:
    """``value`` as the evaluators read it (never through a subclass's own methods)."""
    kind = type(value)
    if issubclass(kind, (str, int, float)) and kind is not bool:
        return exact_value(value)
    if issubclass(kind, dict):
        return {_exact(k): _exact(v) for k, v in dict.items(value)}
    if issubclass(kind, list):
        return [_exact(v) for v in list.copy(value)]
    return value


def _same(got: Any, want: Any) -> None:
    assert type(got) is type(want)
    assert _exact(dict(got)) == dict(want)


@settings(max_examples=examples(300), deadline=None)
@given(plain=ATTRIBUTES, tk=_TEXT, seed=SEEDS)
def test_growthbook_and_flagd_read_subclasses_as_their_plain_values(plain, tk, seed):
    hostile = hostile_of(plain, random.Random(seed))
    _same(growthbook.context(hostile), growthbook.context(plain))
    _same(
        growthbook.context(hostile, forced_variations={HKey("e"): HInt(1)}),
        growthbook.context(plain, forced_variations={"e": 1}),
    )
    _same(flagd.context(HStr(tk), hostile, now=0), flagd.context(tk, plain, now=0))


def _has_text(v: Any) -> bool:
    try:
        str(v)
    except Refused:
        return False
    return True


@settings(max_examples=examples(300), deadline=None)
@given(plain_props=ATTRIBUTES, plain_user=_SCALARS, seed=SEEDS)
def test_unleash_reads_a_value_as_its_text_and_leaves_out_one_without(
    plain_props, plain_user, seed
):
    rng = random.Random(seed)
    hostile_props, hostile_user = hostile_of(plain_props, rng), hostile_of(plain_user, rng)
    hostile = {"userId": hostile_user, "properties": hostile_props}
    kept = {k: plain_props[k] for k, v in dict.items(hostile_props) if _has_text(v)}
    plain = {"properties": kept}
    if _has_text(hostile_user):
        plain["userId"] = plain_user
    got, want = unleash.context(hostile, now=0), unleash.context(plain, now=0)
    got.pop("#random"), want.pop("#random")
    assert _exact(got) == want


# -- the answers of both evaluators --------------------------------------------------------

GB_FEATURES = {
    f"g{i}": {"defaultValue": False, "rules": [{"condition": cond, "force": True}]}
    for i, cond in enumerate(
        [
            {"a": "x"},
            {"a": {"$in": ["x", 1, 2.5]}},
            {"a": {"$gt": 1}},
            {"a": {"$regex": "^x"}},
            {"a.b": "x"},
            {"a.0": 1},
            {"a": {"$size": 2}},
            {"a": {"$elemMatch": {"$eq": "x"}}},
            {"a": {"$type": "object"}},
            {"a": {"$exists": True}},
            {"a": {"$vgt": "1.0.0"}},
        ]
    )
}
GB_FEATURES["r"] = {
    "defaultValue": False,
    "rules": [{"force": True, "coverage": 0.5, "hashAttribute": "a"}],
}

FLAGD = {
    "flags": {
        f"f{i}": {
            "state": "ENABLED",
            "variants": {"y": True, "n": False},
            "defaultVariant": "n",
            "targeting": {"if": [cond, "y", "n"]},
        }
        for i, cond in enumerate(
            [
                {"==": [{"var": "a"}, "x"]},
                {"<": [1, {"var": "a"}]},
                {"in": ["x", {"var": "a"}]},
                {"==": [{"var": "a.b"}, "x"]},
                {"starts_with": [{"var": "a"}, "x"]},
                {"sem_ver": [{"var": "a"}, ">=", "1.0.0"]},
                {"!!": [{"var": "a"}]},
            ]
        )
    }
}

UNLEASH = {
    "version": 2,
    "features": [
        {
            "name": f"u{i}",
            "enabled": True,
            "strategies": [{"name": "default", "constraints": [{"contextName": "a", **c}]}],
        }
        for i, c in enumerate(
            [
                {"operator": "IN", "values": ["x", "1", "2.5"]},
                {"operator": "NUM_GT", "value": "1"},
                {"operator": "STR_CONTAINS", "values": ["X"], "caseInsensitive": True},
                {"operator": "SEMVER_GT", "value": "1.0.0"},
            ]
        )
    ],
}

_A = st.sampled_from(
    ["x", "xy", "X", "1.2.3", "2", 0, 1, 2, 7, 0.5, 1.0, 2.5, -3.0, {"b": "x"}, ["x", 1], [1, 2.0]]
)


@pytest.fixture(scope="module")
def engines(make_py_and_c):
    snaps = {
        "growthbook": growthbook.to_snapshot(GB_FEATURES),
        "flagd": flagd.to_snapshot(FLAGD),
        "unleash": unleash.to_snapshot(UNLEASH),
    }
    return {name: [make(snap) for make in make_py_and_c] for name, snap in snaps.items()}


@settings(max_examples=examples(100), deadline=None)
@given(plain=_A, seed=SEEDS)
def test_every_check_answers_as_on_the_plain_value_on_both_evaluators(engines, plain, seed):
    hostile = hostile_of(plain, random.Random(seed))
    contexts = {
        "growthbook": (growthbook.context({"a": hostile}), growthbook.context({"a": plain})),
        "flagd": (
            flagd.context("u", {"a": hostile}, now=0),
            flagd.context("u", {"a": plain}, now=0),
        ),
    }
    if _has_text(hostile):  # Unleash: a value is its text (HStr has none: left out)
        contexts["unleash"] = (unleash.context({"a": hostile}), unleash.context({"a": plain}))
    else:
        contexts["unleash"] = (unleash.context({"a": hostile}), unleash.context({}))
    for name, (got, want) in contexts.items():
        for engine in engines[name]:
            for key in engine.snapshot().keys:
                assert engine.is_enabled(key, got) is engine.is_enabled(key, want), (name, key)


class _NoClass:
    """An object whose __class__ raises: isinstance() consults it."""

    @property
    def __class__(self):  # type: ignore[override]
        raise Refused


def test_an_attribute_that_cannot_be_read_is_left_out():
    attrs = {"a": "x", "b": _NoClass(), "c": [1, _NoClass()]}
    rest = {"a": "x"}
    assert growthbook.context(attrs) == growthbook.context(rest)
    assert flagd.context("u", attrs, now=0) == flagd.context("u", rest, now=0)
    got = unleash.context({"a": "x", "properties": {"b": _NoClass()}}, now=0)
    assert "a" in got
    # a targeting key flagd cannot read: none
    assert flagd.context(_NoClass(), rest, now=0) == flagd.context(None, rest, now=0)


class _Mapping:
    """A mapping of the application's own whose items() raises ``error``."""

    def __init__(self, error: BaseException) -> None:
        self.error = error

    def items(self):
        raise self.error

    def __getitem__(self, key):
        raise self.error

    def __iter__(self):
        raise self.error

    def __len__(self):
        raise self.error


from collections.abc import Mapping  # noqa: E402

Mapping.register(_Mapping)


def test_a_mapping_whose_items_raise_gives_no_attributes():
    assert growthbook.context(_Mapping(Refused())) == growthbook.context({})
    assert flagd.context("u", _Mapping(Refused()), now=0) == flagd.context("u", {}, now=0)
    got = unleash.context(_Mapping(Refused()), now=0)
    assert got.keys() == unleash.context({}, now=0).keys()
    got = unleash.context({"userId": "u", "properties": _Mapping(Refused())}, now=0)
    assert got["userId"] == "u"


@pytest.mark.parametrize(
    "call",
    [
        lambda m: growthbook.context(m),
        lambda m: flagd.context("u", m),
        lambda m: unleash.context(m),
        lambda m: unleash.context({"properties": m}),
        lambda m: growthbook.context({}, forced_variations=m),
    ],
)
def test_an_interrupt_propagates(call):
    with pytest.raises(KeyboardInterrupt):
        call(_Mapping(KeyboardInterrupt()))


def test_an_interrupt_from_a_values_text_propagates():
    class Stop(str):
        def __str__(self):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        unleash.context({"userId": Stop("u")})


def test_a_non_integer_forced_variation_still_raises_type_error():
    with pytest.raises(TypeError, match="a variation index is an integer") as raised:
        growthbook.context({}, forced_variations={HKey("e"): HFloat(1.0)})
    assert raised.value.__context__ is None  # (no override's error chained to it)
    with pytest.raises(TypeError, match=r"forced_variations\['e'\]"):
        growthbook.context({"a": HStr("x")}, forced_variations={"e": 1.0})


def test_a_wrong_option_still_raises_with_values_read_carefully():
    with pytest.raises(TypeError, match="elements"):
        growthbook.context({"a": HList(["x"])}, elements="a")
    with pytest.raises(TypeError, match="bucketing"):
        flagd.context("u", {"a": HList(["v", 1])}, bucketing="a")
    with pytest.raises(ValueError):
        flagd.context("u", {"a": HStr("x")}, now="soon")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        unleash.context({"a": HDict()}, now="soon")  # type: ignore[arg-type]


def test_a_subclass_whose_methods_answer_is_read_through_them_for_derived_keys(engines):
    """The documented consequence of reading carefully only after a raise: a subclass
    whose methods answer otherwise than its stored value gives the keys derived
    through them, while a check of the value itself reads its exact value."""

    class Shouting(str):
        def lower(self) -> str:
            return "shouting"

    got = growthbook.context({"a": Shouting("x")})
    assert got["a#lower"] == "shouting"  # through its own lower()
    for engine in engines["growthbook"]:  # {"a": "x"} and {"a": {"$in": [...]}}
        assert engine.is_enabled("g0", got) and engine.is_enabled("g1", got)


def test_a_cycle_through_subclasses_reads_as_the_plain_cycle():
    plain: dict[str, Any] = {"a": "x", "l": [1]}
    plain["self"] = plain
    plain["l"].append(plain["l"])
    hostile = HDict({HKey("a"): HStr("x"), "l": HList([HInt(1)])})
    dict.__setitem__(hostile, "self", hostile)
    list.append(dict.__getitem__(hostile, "l"), dict.__getitem__(hostile, "l"))
    # (the cyclic list is a value of both: compared by its keys, not by ==)
    for got, want in [
        (growthbook.context({"d": hostile}), growthbook.context({"d": plain})),
        (flagd.context("u", {"d": hostile}, now=0), flagd.context("u", {"d": plain}, now=0)),
    ]:
        assert type(got) is type(want)
        assert got.keys() == want.keys()
        assert _no_hostile(got)
        assert got["d.a"] == "x" and type(got["d.a"]) is str


def test_a_str_subclass_in_an_array_is_an_item_for_in(engines):
    """flagd's ``in`` finds a ``str`` subclass item of an array attribute (an enum of
    the application's) by its text, as a plain string; it left such items out."""

    class Tag(str, enum.Enum):
        X = "x"

    got = flagd.context("u", {"a": [Tag.X, 1]}, now=0)
    for engine in engines["flagd"]:  # {"in": ["x", {"var": "a"}]}
        assert engine.is_enabled("f2", got)
