"""Hostile objects never make the hot path raise, and both evaluators agree
(issue 10, item 8). A str/int/float subclass is evaluated as its base type's value,
whatever it overrides; other objects are unusable values or unknown flag keys."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.details import ErrorCode, Reason
from cfgcore.engine import engine_class
from tests.conftest import IMPLS
from tests.fuzz import examples

SNAPSHOT = {
    "flags": {
        "seg": {"default": "off",
                "rules": [{"when": {"attr": "seg", "eq": "premium"}, "serve": "on"}]},
        "ci": {"default": "off",
               "rules": [{"when": {"attr": "seg", "starts_with": "PREM", "ignore_case": True},
                          "serve": "on"}]},
        "num": {"default": "off", "rules": [{"when": {"attr": "n", "ge": 10}, "serve": "on"}]},
        "ids": {"default": "off",
                "rules": [{"when": {"attr": "n", "in": [7, 2.5]}, "serve": "on"}]},
        "roll": {"default": "off", "rules": [{"rollout": 50, "serve": "on"}]},
        "split": {"variants": {"a": "A", "b": "B", "c": "C"}, "default": "a",
                  "rules": [{"split": {"a": 30, "b": 30, "c": 40}}]},
    }
}  # fmt: skip


class Boom(Exception):
    pass


class EvilStr(str):
    def __hash__(self):
        raise Boom("hash")

    def __eq__(self, other):
        raise Boom("eq")

    __ne__ = __eq__

    def encode(self, *a, **k):
        return b"evil"

    def casefold(self):
        return "evil"

    def __str__(self):
        return "evil"


class EvilInt(int):
    def __hash__(self):
        raise Boom("hash")

    def __eq__(self, other):
        raise Boom("eq")

    def __float__(self):
        return 12345.0

    def __index__(self):
        return 99

    def __str__(self):
        return "evil"

    __repr__ = __str__


class EvilFloat(float):
    def __hash__(self):
        raise Boom("hash")

    def __eq__(self, other):
        raise Boom("eq")

    def __float__(self):
        return -1.0


class FakeClass:
    @property
    def __class__(self):
        raise Boom("__class__")


class CollidingKey:
    """Hashes like an attribute name; compares by raising once armed."""

    armed = False

    def __init__(self, name):
        self.name = name

    def __hash__(self):
        return hash(self.name)

    def __eq__(self, other):
        if CollidingKey.armed:
            raise Boom("eq")
        return self is other


class NoRepr:
    def __repr__(self):
        raise Boom("repr")

    def __hash__(self):
        raise Boom("hash")


def _engines():
    return [engine_class(mod).from_snapshot(SNAPSHOT) for mod in IMPLS.values()]


def _everything(engine, ctx, key):
    """Every hot-path entry point, with a dict and with a bound context."""
    out = []
    for c in (ctx, engine.context(ctx)):
        out += [
            engine.is_enabled(key, c),
            engine.variant(key, c),
            engine.value(key, c, default=None),
            engine.evaluate(key, c),
            engine.evaluate_all(c),
        ]
    return out


def test_subclasses_evaluate_as_their_base_value(make):
    engine = make(SNAPSHOT)
    plain = {"seg": "premium", "n": 7, "user_id": "u-17"}
    evil = {"seg": EvilStr("premium"), "n": EvilInt(7), "user_id": EvilStr("u-17")}
    for key in SNAPSHOT["flags"]:
        assert _everything(engine, evil, key) == _everything(engine, plain, key), key
    assert engine.is_enabled("num", {"n": EvilFloat(10.5)}) is True
    assert engine.is_enabled("ids", {"n": EvilFloat(2.5)}) is True
    assert engine.is_enabled("roll", {"user_id": EvilInt(17)}) is engine.is_enabled(
        "roll", {"user_id": 17}
    )


def test_flag_keys_that_raise_or_subclass(make):
    engine = make(SNAPSHOT)
    ctx = {"seg": "premium"}
    assert engine.is_enabled(EvilStr("seg"), ctx) is True  # found by its exact value
    details = engine.evaluate(EvilStr("seg"), ctx)
    assert type(details.flag_key) is str and details.flag_key == "seg"
    for bad in (NoRepr(), FakeClass(), EvilInt(3), ["seg"], None, b"seg"):
        assert engine.is_enabled(bad, ctx) is False
        assert engine.variant(bad, ctx) is None
        assert engine.value(bad, ctx, default=5) == 5
        d = engine.evaluate(bad, ctx, default=5)
        assert (d.value, d.reason, d.error_code) == (5, Reason.ERROR, ErrorCode.FLAG_NOT_FOUND)
        assert isinstance(d.flag_key, str)
        assert bad not in engine.snapshot()


def test_context_keys_whose_eq_raises(make):
    engine = make(SNAPSHOT)
    ctx = {CollidingKey("seg"): 1, "seg": "premium", CollidingKey("n"): 2, "n": 12}
    CollidingKey.armed = True
    try:
        results = _everything(engine, ctx, "seg") + _everything(engine, ctx, "num")
    finally:
        CollidingKey.armed = False
    # the attributes behind a raising key read as missing: every rule misses
    assert results[0] is False and results[10] is False


def test_hostile_contexts_and_values(make):
    engine = make(SNAPSHOT)

    class RaisingMapping(dict):
        def get(self, *a):
            raise Boom("get")

        def __iter__(self):
            raise Boom("iter")

        def keys(self):
            raise Boom("keys")

    for ctx in (FakeClass(), RaisingMapping(seg="premium"), {"seg": FakeClass()}, 42, "seg"):
        for key in SNAPSHOT["flags"]:
            _everything(engine, ctx, key)  # must not raise
            assert engine.evaluate(key, ctx).reason in (Reason.DEFAULT, Reason.STATIC)
    assert engine.value("seg", {}, default=FakeClass()) is not None  # default of no kind


def test_a_clock_that_raises_once_is_read_once_per_evaluation():
    window = {"start": "2020-01-01T00:00:00Z", "end": "2030-01-01T00:00:00Z"}
    snapshot = {
        "flags": {
            "a": {"default": "on", "schedule": window},
            "b": {"default": "on", "schedule": window, "prerequisites": ["a"]},
            "c": {"default": "on", "schedule": window},
        }
    }
    results = []
    for mod in IMPLS.values():
        engine = engine_class(mod).from_snapshot(snapshot)
        calls = itertools.count()

        def clock(calls=calls):
            if next(calls) == 0:
                raise OSError("clock unavailable")
            return 1.8e9  # inside the window

        engine.set_clock(clock)
        first = engine.evaluate_all({})
        again = engine.evaluate_all({})
        results.append((first, again, engine.evaluate("b").reason))
    for first, again, reason in results:
        assert first == {"a": False, "b": False, "c": False}  # unknown time: out of window
        assert again == {"a": True, "b": True, "c": True}
        assert reason == Reason.TARGETING_MATCH or reason == Reason.STATIC
    assert len({repr(r) for r in results}) == 1


def _wrap(value, how):
    if how == 0:
        return value
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, str):
        return EvilStr(value)
    if isinstance(value, int):
        return EvilInt(value)
    if isinstance(value, float):
        return EvilFloat(value)
    return value


values = st.one_of(
    st.sampled_from(["premium", "PREMIUM", "free", "u-1", "", "ß"]),
    st.integers(-20, 20),
    st.floats(-20, 20),
    st.booleans(),
    st.none(),
)


@settings(max_examples=examples(150), deadline=None)
@given(st.dictionaries(st.sampled_from(["seg", "n", "user_id"]), values), st.integers(0, 1))
def test_wrapped_values_agree_with_plain_values_on_both_evaluators(ctx, how):
    wrapped = {k: _wrap(v, how) for k, v in ctx.items()}
    engines = _engines()
    for key in SNAPSHOT["flags"]:
        want = [e.evaluate(key, ctx) for e in engines]
        assert len(set(map(repr, want))) == 1
        for e in engines:
            assert e.evaluate(key, wrapped) == want[0]
            assert e.evaluate(key, e.context(wrapped)) == want[0]
