"""Both evaluators read an array value (for ``has_any``) the same way when reading its
elements runs the elements' own code:

* the elements are read from a copy taken before any of them is bound: an element
  whose conversion compares a value of the caller's (a ``Fraction`` whose denominator
  is an object with its own ``__eq__``) may change the list or set it sits in; the
  reference evaluator read the list live and saw an element the compiled one never
  saw, and a set that changed size made the whole value unusable to it;
* a value whose class has a metaclass with its own ``__hash__`` is never hashed as a
  class: a list, tuple or set subclass with one was unusable to the compiled evaluator
  (the hash raised while it looked the class up among NumPy's scalar types) and read
  by its stored elements by the reference one. It is read by its elements on both,
  and the metaclass's ``__hash__`` is not called.

And the seed API's ``record_metric`` refuses (False, nothing recorded) a metric value
whose type check raises (a faked ``__class__``, a metaclass's ``__hash__``) instead of
raising it, on both evaluators.
"""

from __future__ import annotations

import fractions

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from cfgcore.engine import engine_class
from tests.conftest import IMPLS
from tests.fuzz import examples

pytestmark = pytest.mark.skipif("c" not in IMPLS, reason="the compiled extension is not built")

WORDS = ["premium", "free", "EU", "ß", "SS", "1.2.3", ""]
CONSTANTS = ["premium", "EU", "ss"]


def _document() -> dict:
    return {
        "flags": {
            "any": {"default": "off", "rules": [
                {"when": {"attr": "tags", "has_any": CONSTANTS}, "serve": "on"}]},
            "any_ci": {"default": "off", "rules": [
                {"when": {"attr": "tags", "has_any": CONSTANTS, "ignore_case": True},
                 "serve": "on"}]},
            "exists": {"default": "off", "rules": [
                {"when": {"attr": "tags", "exists": True}, "serve": "on"}]},
        }
    }  # fmt: skip


def _expected(words: list[str]) -> dict:
    return {
        "any": any(w in CONSTANTS for w in words),
        "any_ci": any(w.casefold() in {c.casefold() for c in CONSTANTS} for w in words),
        "exists": True,
    }


def _answers(impl: str, make) -> list[dict]:
    """Every entry point's answers, each on a fresh array from ``make()``: a dict, a
    bound context, evaluate_all on both."""
    engine = engine_class(IMPLS[impl]).from_snapshot(_document())
    keys = ("any", "any_ci", "exists")
    return [
        {k: engine.is_enabled(k, {"tags": make()}) for k in keys},
        {k: engine.is_enabled(k, engine.context({"tags": make()})) for k in keys},
        engine.evaluate_all({"tags": make()}),
        engine.evaluate_all(engine.context({"tags": make()})),
    ]


class _Grows:
    """A denominator whose comparison adds ``added`` to the container holding its
    Fraction (the Fraction then reads as no number: its float() fails)."""

    __hash__ = None  # type: ignore[assignment]

    def __init__(self, box: list | set, added: str) -> None:
        self.box, self.added = box, added

    def __eq__(self, other: object) -> bool:
        if isinstance(self.box, list):
            self.box.append(self.added)
        else:
            self.box.add(self.added)
        return False


def _growing(kind: str, words: list[str], at: int, added: str):
    """``words`` in a list or set with a Fraction at ``at`` that adds ``added`` to it
    when it is read."""
    box: list | set = [] if kind == "list" else set()
    odd = fractions.Fraction(1, 3)
    # set after the Fraction is made (and hashed, for the set): only a comparison runs it
    items = [*words[:at], odd, *words[at:]]
    if kind == "list":
        box.extend(items)
    else:
        box.update(items)
    object.__setattr__(odd, "_denominator", _Grows(box, added))
    return box


@settings(max_examples=examples(60), deadline=None)
@given(
    st.sampled_from(["list", "set"]),
    st.lists(st.sampled_from(WORDS), max_size=4),
    st.integers(0, 4),
    st.sampled_from(["premium", "SS", "none-of-them"]),
)
@example("list", [], 0, "premium")  # the reference saw the appended "premium"
@example("set", ["premium"], 0, "none-of-them")  # the reference: "set changed size"
def test_an_array_is_read_as_it_was_before_its_elements_are_bound(kind, words, at, added):
    want = _expected(words)
    for impl in ("c", "py"):
        for got in _answers(impl, lambda: _growing(kind, words, min(at, len(words)), added)):
            assert got == want, (impl, kind, words, added)


class _Meta(type):
    """A metaclass whose classes refuse to be hashed, counting the attempts."""

    calls = 0

    def __hash__(cls) -> int:
        _Meta.calls += 1
        raise RuntimeError("this class is not hashable")


class _MetaList(list, metaclass=_Meta):
    pass


class _MetaTuple(tuple, metaclass=_Meta):
    pass


class _MetaSet(set, metaclass=_Meta):
    pass


class _MetaFrozenset(frozenset, metaclass=_Meta):
    pass


class _MetaStr(str, metaclass=_Meta):
    pass


_META_ARRAYS = {
    "list": _MetaList, "tuple": _MetaTuple, "set": _MetaSet, "frozenset": _MetaFrozenset,
}  # fmt: skip


@settings(max_examples=examples(60), deadline=None)
@given(
    st.sampled_from(sorted(_META_ARRAYS)),
    st.lists(st.sampled_from(WORDS), max_size=4),
    st.booleans(),
)
@example("list", ["premium"], False)  # the compiled evaluator: no match
@example("tuple", ["ß"], True)
def test_an_array_whose_class_has_a_hashing_metaclass_is_read_by_its_elements(
    kind, words, as_str_subclass
):
    cls = _META_ARRAYS[kind]
    items = [_MetaStr(w) for w in words] if as_str_subclass else list(words)
    want = _expected(words)
    before = _Meta.calls
    for impl in ("c", "py"):
        for got in _answers(impl, lambda: cls(items)):
            assert got == want, (impl, kind, words)
    assert _Meta.calls == before  # never hashed as a class


# -- a metric value whose type check raises ---------------------------------------------
# record_metric (and the manager's track_metric, through details.metric_event_parts) reads
# a value as a number by isinstance() against numbers.Real, which reads a __class__ the
# value may fake and hashes the value's class (a metaclass's own __hash__): either raised
# out of the call on both evaluators, where the request path refuses the value.


class _FakedClass:
    @property
    def __class__(self):  # type: ignore[override]
        raise RuntimeError("no class to tell")


class _MetaObject(metaclass=_Meta):
    pass


class _MetaFloat(float, metaclass=_Meta):
    pass


class _MetaInt(int, metaclass=_Meta):
    pass


_ODD_VALUES = {
    "faked class": _FakedClass,
    "metaclass object": _MetaObject,
    "metaclass float": lambda: _MetaFloat(1.5),
    "metaclass int": lambda: _MetaInt(3),
}
SEED_SNAPSHOT = {
    "flags": {
        "t": {"variants": {"a": "a", "b": "b"}, "default": "a",
              "rules": [{"split": {"a": 50, "b": 50}}]},
    }
}  # fmt: skip


def _seed_api(impl_name: str):
    from cfgcore._layout import DEDUP_SHARDS

    impl = IMPLS[impl_name]
    engine = engine_class(impl).from_snapshot(SEED_SNAPSHOT)
    log: list = []
    tests = {"t": tuple(set() for _ in range(DEDUP_SHARDS))}
    seed = impl.SeedAPI(engine, tests, lambda test, v, ctx: log.append(("expose", test, v)))
    seed.log_to(lambda record: log.append(("append", *record[:3])), lambda: 7.0, 10)
    seed.metrics_to(None, lambda *event: log.append(("record", *event)))
    seed.metas = {"t": {}}
    return seed, log


@settings(max_examples=examples(40), deadline=None)
@given(
    st.sampled_from(sorted(_ODD_VALUES)),
    st.sampled_from(["u1", "u2", 7]),
    st.sampled_from(["user_id", "user_context", "variant"]),
)
@example("faked class", "u1", "user_id")
@example("metaclass float", "u1", "user_context")
def test_record_metric_refuses_a_value_whose_type_check_raises(kind, user, how):
    from cfgcore._numbers import real_number, whole_number
    from cfgcore.details import metric_event_parts, metric_value

    make = _ODD_VALUES[kind]
    assert real_number(make()) is None
    assert whole_number(make()) is None
    assert metric_value(make()) is None
    assert metric_event_parts("t", "m", make(), None, user) is None  # track_metric's reading
    for impl in ("c", "py"):
        seed, log = _seed_api(impl)
        if how == "user_id":
            got = seed.record_metric("t", "m", make(), user_id=user)
        elif how == "user_context":
            got = seed.record_metric("t", "m", make(), user_context={"user_id": user})
        else:
            got = seed.record_metric("t", "m", make(), user_id=user, variant="a")
        assert got is False, impl
        assert log == [], impl  # refused before the lookup: no exposure, no event
        # the same call with a plain number is recorded: only the value was refused
        assert seed.record_metric("t", "m", 1.5, user_id=user) is True, impl
