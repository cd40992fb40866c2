"""Third audit of the two evaluators: a KeyboardInterrupt (or any BaseException that
is not an Exception) raised while a context is read propagates from both evaluators
alike, and the compiled one releases what it had bound when it does.

Hostile contexts keep the never-raise promise for ordinary Exceptions (a colliding
key whose ``__eq__`` raises reads as missing, tests/test_core_hostile.py); a Ctrl-C
is not bad data and must reach the caller. The compiled evaluator used to clear it in
its C dict lookups (the reference evaluator's ``except Exception`` lets it through),
and a KeyboardInterrupt from a mapping's ``get()`` or a semver parse left the slots
bound so far (and, for a mapping context, the whole heap array) unreleased.
"""

from __future__ import annotations

import ctypes
import gc
import sys
from collections.abc import Mapping

import pytest

import cfgcore._lower
from cfgcore.engine import engine_class
from tests.conftest import IMPLS

# Few attributes: a dict context binds on the C stack (_run_dict).
SMALL = {
    "flags": {
        "seg": {
            "default": "off",
            "rules": [{"when": {"attr": "seg", "eq": "premium"}, "serve": "on"}],
        },
        "both": {
            "default": "off",
            "rules": [
                {"when": {"attr": "a0", "eq": "zz"}, "serve": "on"},
                {"when": {"attr": "a1", "eq": "zz"}, "serve": "on"},
                {"when": {"attr": "version", "semver_gt": "1.0.0"}, "serve": "on"},
                {"when": {"attr": "seg", "eq": "premium"}, "serve": "on"},
            ],
        },
        "t": {"variants": {"a": "A", "b": "B"}, "default": "a"},
    }
}
# More attributes than fit on the C stack: a dict context binds into the heap (_run_mapping).
NAMES = [f"a{i}" for i in range(40)]
LARGE = {
    "flags": {
        **SMALL["flags"],
        "many": {
            "default": "off",
            "rules": [{"when": {"any": [{"attr": a, "eq": "zz"} for a in NAMES]}, "serve": "on"}],
        },
    }
}


class Colliding:
    """A key hashing like an attribute name whose ``__eq__`` raises ``exc`` when armed."""

    exc: BaseException | None = None

    def __init__(self, name: str) -> None:
        self.name = name

    def __hash__(self) -> int:
        return hash(self.name)

    def __eq__(self, other: object) -> bool:
        if Colliding.exc is not None:
            raise Colliding.exc
        return self is other


class Interrupting(Mapping):
    """A mapping answering ``value`` for its first ``n`` reads, then raising ``exc``."""

    def __init__(self, value: object, n: int, exc: BaseException) -> None:
        self.value, self.n, self.exc, self.reads = value, n, exc, 0

    def __getitem__(self, key):
        self.reads += 1
        if self.reads > self.n:
            raise self.exc
        return self.value

    def __iter__(self):
        return iter(["seg", "version", *NAMES])

    def __len__(self):
        return 2 + len(NAMES)


@pytest.fixture
def armed():
    yield Colliding
    Colliding.exc = None


def _calls(engine, key, ctx):
    return {
        "is_enabled": lambda: engine.is_enabled(key, ctx),
        "variant": lambda: engine.variant(key, ctx),
        "value": lambda: engine.value(key, ctx, default="off"),
        "evaluate": lambda: engine.evaluate(key, ctx),
        "evaluate_all": lambda: engine.evaluate_all(ctx),
    }


def _colliding_dict(name: str) -> dict:
    d = {Colliding(name): "x", "version": "2.0.0"}
    d.update({a: "v" for a in NAMES})
    return d


@pytest.mark.parametrize("snapshot", [SMALL, LARGE], ids=["stack", "heap"])
@pytest.mark.parametrize("exc", [KeyboardInterrupt, SystemExit, GeneratorExit])
@pytest.mark.parametrize("bound", [False, True], ids=["dict", "context"])
def test_an_interrupt_from_a_colliding_key_propagates_from_both(make, armed, snapshot, exc, bound):
    engine = make(snapshot)
    for key in ("seg", "both"):
        for name in _calls(engine, key, None):
            ctx = _colliding_dict("seg")
            ctx = engine.context(ctx) if bound else ctx  # the copy compares no keys
            armed.exc = exc()
            with pytest.raises(exc):
                _calls(engine, key, ctx)[name]()
            armed.exc = None
            # Disarmed, the same context answers as usual: the colliding key is not "seg"
            # ("both" is on for the version 2.0.0).
            assert engine.is_enabled(key, ctx) is (key == "both")


@pytest.mark.parametrize("snapshot", [SMALL, LARGE], ids=["stack", "heap"])
def test_an_exception_from_a_colliding_key_still_reads_as_missing(make, armed, snapshot):
    engine = make(snapshot)
    ctx = _colliding_dict("seg")
    armed.exc = ValueError("eq")
    for bound in (ctx, engine.context(ctx)):
        assert engine.is_enabled("seg", bound) is False
        assert engine.evaluate("seg", bound).reason == "DEFAULT"
        assert engine.evaluate_all(bound)["seg"] is False


def test_an_interrupt_from_a_mapping_propagates_from_both(make):
    engine = make(LARGE)
    for name, call in _calls(engine, "many", Interrupting("v", 3, KeyboardInterrupt())).items():
        with pytest.raises(KeyboardInterrupt):
            call()
        ctx = engine.context(Interrupting("v", 3, KeyboardInterrupt()))
        with pytest.raises(KeyboardInterrupt):
            _calls(engine, "many", ctx)[name]()


def _seed(impl, engine, clock=None):
    from cfgcore._layout import DEDUP_SHARDS

    shards = tuple(set() for _ in range(DEDUP_SHARDS))
    seed = impl.SeedAPI(engine, {"t": shards}, lambda *a: None)
    seed.log_to(lambda record: None, clock)
    seed.metrics_to(None, lambda *a: None)
    seed.metas = {"t": {}}
    return seed


def test_the_seed_api_lets_an_interrupt_through_on_both(impl, armed):
    engine = engine_class(impl).from_snapshot(SMALL)
    seed = _seed(impl, engine)
    # Flag "t" reads no attribute: the colliding key is met first by the user-id lookups.
    for exc in (KeyboardInterrupt, SystemExit):
        armed.exc = exc()
        with pytest.raises(exc):
            seed.get_ab_test_variant("t", {Colliding("user_id"): 1})
        with pytest.raises(exc):
            seed.record_metric("t", "m", 1.0, user_context={Colliding("user_id"): 1})
        with pytest.raises(exc):
            seed.record_metric("t", "m", 1.0, user_context={Colliding("targeting_key"): 1})
    armed.exc = ValueError("eq")  # an Exception: no id, the request goes on
    assert seed.get_ab_test_variant("t", {Colliding("user_id"): 1}) == "a"
    assert seed.record_metric("t", "m", 1.0, user_context={Colliding("user_id"): 1}) is True


def test_an_interrupt_from_the_exposure_clock_propagates_from_both(impl):
    def clock():
        raise KeyboardInterrupt

    seed = _seed(impl, engine_class(impl).from_snapshot(SMALL), clock)
    with pytest.raises(KeyboardInterrupt):
        seed.get_ab_test_variant("t", {"user_id": "u1"})


# -- the compiled evaluator releases what it bound -----------------------------------------


class _Mallinfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost"
        ).split()
    ]


def _heap_in_use():
    """Bytes malloc() has handed out (glibc), or None elsewhere."""
    try:
        fn = ctypes.CDLL(None).mallinfo2
    except (AttributeError, OSError):
        return None
    fn.restype = _Mallinfo2
    return fn().uordblks


def _interrupt_in(function_name: str):
    """A tracer raising KeyboardInterrupt when ``function_name`` starts: a Ctrl-C that
    arrives while that Python function runs (the trace is removed when it raises)."""

    def tracer(frame, event, arg):
        if event == "call" and frame.f_code.co_name == function_name:
            raise KeyboardInterrupt
        return None

    return tracer


def _leaks(run, values, rounds: int = 2000) -> tuple[list[int], int | None]:
    for _ in range(50):
        run()
    gc.collect()
    refs, heap = [sys.getrefcount(v) for v in values], _heap_in_use()
    for _ in range(rounds):
        run()
    gc.collect()
    after, after_refs = _heap_in_use(), [sys.getrefcount(v) for v in values]
    # Each leaked binding holds a value (and the heap path a whole array): a leak
    # shows as thousands of references; the allowance is for allocator noise.
    return [a - r for a, r in zip(after_refs, refs, strict=True)], (
        None if heap is None else after - heap
    )


@pytest.mark.skipif("c" not in IMPLS, reason="the compiled extension is not built")
@pytest.mark.parametrize("how", ["mapping", "context-mapping", "dict", "context", "dict-heap"])
def test_an_interrupt_while_binding_leaks_nothing(how, armed):
    engine = engine_class(IMPLS["c"]).from_snapshot(LARGE if how != "dict" else SMALL)
    # One object each, counted by sys.getrefcount: the version is held by its
    # binding while the semver parse runs.
    value, version = "".join(["held-", "by-", "bindings"]), "".join(["2.", "0.0"])

    def run():
        if how in ("mapping", "context-mapping"):
            ctx = Interrupting(value, 3, KeyboardInterrupt())
            if how == "context-mapping":
                ctx = engine.context(ctx)
            calls = _calls(engine, "many", ctx)
        else:
            d = {"a0": value, "a1": value, "seg": value, "version": version}
            d.update({a: value for a in NAMES[2:]})
            ctx = engine.context(d) if how == "context" else d
            calls = _calls(engine, "both", ctx)
        for call in calls.values():
            if how in ("mapping", "context-mapping"):
                with pytest.raises(KeyboardInterrupt):
                    call()
                continue
            # A Ctrl-C in the middle of the semver parse of "version", after "a0" and
            # "a1" are bound (evaluate_all: after them and "seg").
            sys.settrace(_interrupt_in(cfgcore._lower.semver_key.__name__))
            try:
                with pytest.raises(KeyboardInterrupt):
                    call()
            finally:
                sys.settrace(None)

    refs, heap = _leaks(run, [value, version])
    assert refs == [0, 0]
    if heap is not None:
        assert heap < 200_000  # a leaked heap array per call: megabytes


# -- a clock that raises an interrupt --------------------------------------------------------

WINDOW = {"start": "2024-01-01T00:00:00Z", "end": "2030-01-01T00:00:00Z"}
SCHEDULED = {
    "flags": {
        "timed": {"default": "off", "schedule": WINDOW, "rules": [{"serve": "on"}]},
        "plain": {"default": "off", "rules": [{"when": {"attr": "seg", "eq": "x"}, "serve": "on"}]},
        # a prerequisite on a scheduled flag: the clock is read one level down
        "gated": {
            "default": "off",
            "prerequisites": [{"flag": "timed", "variant": "on"}],
            "rules": [{"serve": "on"}],
        },
        **{a: {"default": "off", "rules": [{"when": {"attr": a, "eq": "z"}, "serve": "on"}]}
           for a in NAMES},
    }
}  # fmt: skip


@pytest.mark.parametrize("exc", [KeyboardInterrupt, SystemExit])
def test_an_interrupt_from_the_clock_propagates_from_both(make, exc):
    engine = make(SCHEDULED)
    raised = exc()

    def clock():
        raise raised

    engine.set_clock(clock)
    contexts = [
        None,
        {"seg": "x"},
        engine.context({"seg": "x"}),
        Interrupting("x", 10**9, KeyboardInterrupt()),
        "not a mapping",
    ]
    refs = sys.getrefcount(raised)
    for ctx in contexts:
        for key in ("timed", "gated"):
            for name, call in _calls(engine, key, ctx).items():
                with pytest.raises(exc) as info:
                    call()
                assert info.value is raised, name
                del info
    assert sys.getrefcount(raised) == refs  # nothing keeps the interrupt afterwards
    engine.set_clock(lambda: 1.8e9)  # inside the window: the engine answers as usual
    assert engine.is_enabled("gated", {"seg": "x"}) is True
    assert engine.evaluate_all({"seg": "x"})["plain"] is True


def test_an_exception_from_the_clock_still_reads_as_out_of_window(make):
    engine = make(SCHEDULED)
    engine.set_clock(lambda: 1 / 0)
    assert engine.is_enabled("timed", {}) is False
    assert engine.evaluate("gated", {}).reason == "PREREQUISITE_FAILED"
    assert engine.evaluate_all({})["timed"] is False


def test_an_interrupt_propagates_on_the_observed_path_too(make, armed):
    """With an exposure callback the checks go through the observer (snap._observe)."""
    engine = make(SCHEDULED)
    engine.on_exposure(lambda *args: None)
    for name in _calls(engine, "plain", None):
        for ctx in ({Colliding("seg"): 1}, engine.context({Colliding("seg"): 1})):
            armed.exc = KeyboardInterrupt()
            with pytest.raises(KeyboardInterrupt):
                _calls(engine, "plain", ctx)[name]()
            armed.exc = None

    def clock():
        raise KeyboardInterrupt

    engine.set_clock(clock)
    for call in _calls(engine, "gated", {"seg": "x"}).values():
        with pytest.raises(KeyboardInterrupt):
            call()


@pytest.mark.skipif("c" not in IMPLS, reason="the compiled extension is not built")
def test_an_evaluate_all_interrupted_by_the_clock_counts_alike_on_both():
    """The flags evaluated before the interrupt are counted, the rest are not, on both
    (the compiled evaluate_all counts the flags that cannot vary apart from the rest)."""
    snapshot = {
        "flags": {
            "a_const": {"default": "off"},
            "b_rule": {"default": "off", "rules": [{"when": {"attr": "seg", "eq": "x"},
                                                   "serve": "on"}]},
            "c_off": {"default": "off", "enabled": False},
            "d_timed": {"default": "off", "schedule": WINDOW, "rules": [{"serve": "on"}]},
            "e_const": {"default": "on"},
            "f_rule": {"default": "off", "rules": [{"when": {"attr": "seg", "eq": "x"},
                                                   "serve": "on"}]},
        }
    }  # fmt: skip
    counts = []
    for impl in ("c", "py"):
        engine = engine_class(IMPLS[impl]).from_snapshot(snapshot)

        def clock():
            raise KeyboardInterrupt

        engine.set_clock(clock)
        for ctx in ({"seg": "x"}, engine.context({"seg": "x"})):
            with pytest.raises(KeyboardInterrupt):
                engine.evaluate_all(ctx)
        taken = engine.take_evaluation_counts()
        counts.append((taken.evaluations, taken.errors))
    assert counts[0] == counts[1]
    assert {flag for flag, _, _ in counts[1][0]} == {"a_const", "b_rule", "c_off"}
