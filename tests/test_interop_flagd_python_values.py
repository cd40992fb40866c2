"""flagd contexts holding Python values JSON never gives, against flagd's Python
evaluator (openfeature-flagd-core, json-logic) on both evaluators.

json-logic's ``var`` reads into dicts and lists alone, ``in`` searches lists and
strings alone, ``!!`` calls any other value true, and ``to_number`` reads a
timezone-aware datetime as its milliseconds since 1970 and anything else by
``float()``; flagd's ``fractional`` buckets by the value's CBOR (cbor2: a datetime is
tag 0). Where the evaluator raises (``==`` of a tuple with a string, a naive
datetime's number), flagd answers with an error, which these tests leave out.
"""

from __future__ import annotations

import collections
import copy
import datetime
import decimal
import fractions
import logging
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfgcore.interop import flagd
from tests.fuzz import examples
from tests.mappings import DictMapping

core_mod = pytest.importorskip("openfeature.contrib.tools.flagd.core")
from openfeature.evaluation_context import EvaluationContext  # noqa: E402


class Record(DictMapping):
    """A read-only mapping that is no dict (json-logic's var does not read into it)."""


UTC = datetime.timezone.utc
WHEN = datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
WHEN_MS = (WHEN - datetime.datetime(1970, 1, 1, tzinfo=UTC)).total_seconds() * 1000.0
VALUES: dict[str, Any] = {
    "tuple": ("a", "b"),
    "tuple of one": ("y",),
    "empty tuple": (),
    "set": {"a"},
    "empty set": set(),
    "frozenset": frozenset({"a"}),
    "deque": collections.deque(["a"]),
    "mapping": Record({"x": "a"}),
    "empty mapping": Record({}),
    "OrderedDict": collections.OrderedDict(x="a"),
    "bytes": b"a",
    "list of tuples": [("a",), "b"],
    "dict of tuple": {"x": ("a",)},
    "datetime": WHEN,
    "datetime +02:00": WHEN.astimezone(datetime.timezone(datetime.timedelta(hours=2))),
    "datetime with microseconds": WHEN.replace(microsecond=250),
    "naive datetime": datetime.datetime(2024, 1, 2),
    "time": datetime.time(3, 4),
    "Fraction": fractions.Fraction(1, 2),
    "Decimal": decimal.Decimal("2.5"),
    "list": ["a", "b"],
    "dict": {"x": "a"},
}
TARGETINGS: list[Any] = [
    {"in": ["a", {"var": "k"}]},
    {"in": [{"var": "k"}, ["a", 1]]},
    {"==": [{"var": "k"}, "a"]},
    {"==": [{"var": "k"}, 2.5]},
    {"==": [{"var": "k"}, WHEN_MS]},
    {"===": [{"var": "k"}, "a"]},
    {"!=": [{"var": "k"}, 1]},
    {"!!": [{"var": "k"}]},
    {"!": [{"var": "k"}]},
    {"or": [{"var": "k"}, False]},
    {"and": [{"var": "k"}, True]},
    {"==": [{"var": "k.x"}, "a"]},
    {"!!": [{"var": "k.x"}]},
    {"<": [{"var": "k"}, 3]},
    {">": [{"var": "k"}, 0]},
    {"<": [{"var": "k"}, WHEN_MS + 1]},
    {"<": [WHEN_MS - 1, {"var": "k"}, WHEN_MS + 1]},
    {"<": [{"var": "$flagd.timestamp"}, {"var": "k"}]},
    {"starts_with": [{"var": "k"}, "a"]},
    {"ends_with": [{"var": "k"}, "b"]},
]


@pytest.fixture(autouse=True)
def _quiet():
    logging.getLogger("openfeature").setLevel(logging.CRITICAL)


def _doc(targeting: Any) -> dict[str, Any]:
    rule = targeting if "fractional" in targeting else {"if": [targeting, "y", "n"]}
    flag = {"state": "ENABLED", "variants": {"y": "Y", "n": "N"}, "defaultVariant": "n"}
    return {"flags": {"f": {**flag, "targeting": rule}}}


def _agree(make_py_and_c: Any, targeting: Any, users: list[dict[str, Any]]) -> int:
    """cfgcore answers as flagd for each user flagd answers without raising; returns how
    many it compared."""
    doc = _doc(targeting)
    core = core_mod.FlagdCore()
    core.set_flags(copy.deepcopy(doc))
    engines = [make(flagd.to_snapshot(copy.deepcopy(doc))) for make in make_py_and_c]
    compared = 0
    for attrs in users:
        try:
            want = core.resolve_string_value("f", "FB", EvaluationContext("u1", attrs)).value
        except Exception:  # json-logic raises on this value: flagd answers an error
            continue
        ctx = flagd.context("u1", attrs, now=1_700_000_000)
        for engine in engines:
            assert flagd.resolve(engine, "f", ctx, "FB").value == want, (targeting, attrs)
        compared += 1
    return compared


@pytest.mark.parametrize("targeting", TARGETINGS, ids=repr)
def test_values_json_never_gives_answer_as_flagd(make_py_and_c, targeting, monkeypatch):
    monkeypatch.setattr("time.time", lambda: 1_700_000_000)  # flagd's $flagd.timestamp
    assert _agree(make_py_and_c, targeting, [{"k": v} for v in VALUES.values()]) >= 3


@pytest.mark.parametrize(
    "item",
    [WHEN, decimal.Decimal("1.5"), fractions.Fraction(3, 2), b"2", b"a", decimal.Decimal("NaN")],
    ids=repr,
)
@pytest.mark.parametrize("op", [">", "<"])
def test_a_one_item_array_compares_as_its_item_as_flagd(make_py_and_c, item, op):
    """json-logic's to_number of a one-item array is its item's, a datetime's
    milliseconds and a Decimal's value included (an array holding one datetime compared
    with a number was read as NaN here, where flagd reads the date)."""
    for bound in (0, 1, WHEN_MS - 1, WHEN_MS + 1):
        targeting = {op: [{"var": "k"}, bound]}
        assert _agree(make_py_and_c, targeting, [{"k": [item]}, {"k": [[item]]}]) == 2


def test_fractional_buckets_an_aware_datetime_as_flagd():
    """flagd buckets a datetime by its CBOR (tag 0, the ISO text cbor2 writes): over many
    datetimes both halves are served, by cfgcore as by flagd."""
    doc = _doc({"fractional": [{"var": "k"}, ["y", 50], ["n", 50]]})
    core = core_mod.FlagdCore()
    core.set_flags(copy.deepcopy(doc))
    from cfgcore.engine import Engine

    engine = Engine.from_snapshot(flagd.to_snapshot(copy.deepcopy(doc)))
    seen = set()
    for i in range(40):
        when = WHEN + datetime.timedelta(seconds=i * 7919, microseconds=i * 13)
        if i % 3 == 0:
            when = when.astimezone(datetime.timezone(datetime.timedelta(hours=-5)))
        attrs = {"k": when}
        want = core.resolve_string_value("f", "FB", EvaluationContext("u1", attrs)).value
        assert flagd.resolve(engine, "f", flagd.context("u1", attrs), "FB").value == want
        seen.add(want)
    assert seen == {"Y", "N"}


def test_the_evaluator_tells_these_values_apart():
    """The cases above are not vacuous: flagd's answers differ between a list and a
    tuple, a dict and another mapping, and an empty tuple is true where [] is not."""
    core = core_mod.FlagdCore()

    def answers(targeting: Any, values: list[Any]) -> list[str]:
        core.set_flags(_doc(targeting))
        ctx = [EvaluationContext("u1", {"k": v}) for v in values]
        return [core.resolve_string_value("f", "FB", c).value for c in ctx]

    assert answers({"in": ["a", {"var": "k"}]}, [["a"], ("a",)]) == ["Y", "N"]
    assert answers({"==": [{"var": "k.x"}, "a"]}, [{"x": "a"}, Record({"x": "a"})]) == ["Y", "N"]
    assert answers({"!!": [{"var": "k"}]}, [[], (), set()]) == ["N", "Y", "Y"]
    assert answers({">": [{"var": "k"}, 0]}, [WHEN, decimal.Decimal(1)]) == ["Y", "Y"]


_SCALARS = st.one_of(
    st.sampled_from(["a", "b", "", 0, 1, 2.5, True, None, b"a"]),
    st.sampled_from([WHEN, decimal.Decimal("0.5"), fractions.Fraction(3, 2)]),
)


def _containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    hashable = st.sampled_from(["a", "b", 1, 2.5])
    return st.one_of(
        st.lists(children, max_size=3),
        st.lists(children, max_size=3).map(tuple),
        st.sets(hashable, max_size=2),
        st.dictionaries(st.sampled_from(["x", "y"]), children, max_size=2),
        st.dictionaries(st.sampled_from(["x", "y"]), children, max_size=2).map(Record),
    )


_VALUES = st.recursive(_SCALARS, _containers, max_leaves=6)
_VARS = st.sampled_from(["k", "k.x", "k.x.y", "k.y.x"])
_TESTS = st.one_of(
    st.builds(lambda v, c: {"in": [c, {"var": v}]}, _VARS, st.sampled_from(["a", "b"])),
    st.builds(lambda v: {"!!": [{"var": v}]}, _VARS),
    st.builds(lambda v: {"!": [{"var": v}]}, _VARS),
    st.builds(lambda v, n: {"<": [{"var": v}, n]}, _VARS, st.sampled_from([0, 1, 3, WHEN_MS + 1])),
    st.builds(lambda v, n: {">": [{"var": v}, n]}, _VARS, st.sampled_from([0, 1, WHEN_MS - 1])),
    st.builds(lambda v: {"and": [{"var": v}, True]}, _VARS),
)


@settings(max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values=st.lists(_VALUES, min_size=1, max_size=4), targeting=_TESTS)
def test_nested_python_values_answer_as_flagd(make_py_and_c, values, targeting):
    _agree(make_py_and_c, targeting, [{"k": v} for v in values])
