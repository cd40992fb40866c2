"""A Context's own slot storage (issue 15: binding a request context cheaper).

The compiled Context binds into slots it owns (no Binding object per request): an array
taken from a pool of freed ones, unbound slots tracked by bits (one word for slots 0-63,
more words past them), bound to the first snapshot that checks it and kept for that
snapshot until the context dies; a check on any other snapshot binds into a separate
binding. These cases attack that storage: arrays reused after contexts die, many
contexts alive at once, contexts bound to more than 64 (and more than 128) slots, swaps
and re-initialisation in the middle of a check, threads sharing a context across swaps,
deallocation that runs Python code, and references left behind. The answers are
compared with a plain dict's (a fresh binding every check) and with the reference
evaluator's, which must agree.
"""

from __future__ import annotations

import gc
import random
import sys
import threading

import pytest

from cfgcore.engine import engine_class
from tests.conftest import IMPLS
from tests.mappings import DictMapping

DOC = {
    "flags": {
        "eq": {"default": "off", "rules": [{"when": {"attr": "x", "eq": 1}, "serve": "on"}]},
        "seg": {
            "default": "off",
            "rules": [{"when": {"attr": "segment", "in": ["gold", "silver"]}, "serve": "on"}],
        },
        "ci": {
            "default": "off",
            "rules": [
                {"when": {"attr": "country", "eq": "se", "ignore_case": True}, "serve": "on"}
            ],
        },
        "roll": {
            "default": "off",
            "rules": [{"rollout": 50, "serve": "on"}],
            "bucket_by": "user_id",
        },
        "split": {
            "variants": {"a": 1, "b": 2, "c": 3},
            "default": "a",
            "rules": [{"split": {"a": 40, "b": 30, "c": 30}}],
            "bucket_by": "user_id",
        },
        "plain": {"default": "on"},
        "pre": {
            "default": "off",
            "prerequisites": ["eq"],
            "rules": [{"when": {"attr": "segment", "eq": "gold"}, "serve": "on"}],
        },
    }
}
# The same attributes, other meanings: a swap mid-request must answer with these.
DOC_B = {
    "flags": {
        "eq": {"default": "off", "rules": [{"when": {"attr": "x", "eq": 2}, "serve": "on"}]},
        "seg": {
            "default": "off",
            "rules": [{"when": {"attr": "segment", "eq": "bronze"}, "serve": "on"}],
        },
        "roll": {"default": "off", "rules": [{"rollout": 50, "serve": "on"}], "bucket_by": "x"},
        "new": {
            "default": "off",
            "rules": [{"when": {"attr": "user_id", "eq": "u1"}, "serve": "on"}],
        },
    }
}
KEYS = sorted(DOC["flags"])
KEYS_B = sorted(DOC_B["flags"])


def _attrs(i: int) -> dict:
    return {
        "x": i % 3,
        "segment": ["gold", "silver", "bronze", None][i % 4],
        "country": ["SE", "se", "NO", 5][i % 4],
        "user_id": f"u{i}",
    }


def _answers(engine, ctx, keys=KEYS):
    return [engine.variant(k, ctx) for k in keys]


def _engine(impl, doc=DOC):
    return engine_class(IMPLS[impl]).from_snapshot(doc)


# -- arrays reused after contexts die --------------------------------------------------------


@pytest.mark.parametrize("impl", sorted(IMPLS))
def test_reused_slot_arrays_never_answer_for_a_dead_context(impl):
    engine = _engine(impl)
    rng = random.Random(7)
    for i in range(400):
        attrs = _attrs(rng.randrange(1000))
        ctx = engine.context(attrs)
        keys = rng.sample(KEYS, rng.randrange(1, len(KEYS) + 1))  # a few slots, or all
        assert _answers(engine, ctx, keys) == _answers(engine, attrs, keys)
        if i % 5 == 0:
            assert engine.evaluate_all(ctx) == engine.evaluate_all(attrs)
        del ctx  # its array goes back to the pool, bound values and all


@pytest.mark.skipif("c" not in IMPLS, reason="the compiled evaluator is not built")
def test_the_pool_stays_bounded():
    import cfgcore._eval as ceval

    engine = _engine("c")
    contexts = [engine.context(_attrs(i)) for i in range(200)]
    for ctx in contexts:
        engine.is_enabled("seg", ctx)
    del contexts, ctx
    assert 0 <= ceval._slot_pool_size() <= 32
    # a context that never bound takes nothing from the pool and gives nothing back
    before = ceval._slot_pool_size()
    for i in range(50):
        engine.context(_attrs(i))
        engine.is_enabled("plain", engine.context(_attrs(i)))  # a flag reading no attribute
    assert ceval._slot_pool_size() == before


# -- many contexts alive at once ---------------------------------------------------------------


@pytest.mark.parametrize("impl", sorted(IMPLS))
def test_many_contexts_alive_at_once_each_answer_for_their_own(impl):
    engine = _engine(impl)
    attrs = [_attrs(i) for i in range(300)]
    contexts = [engine.context(a) for a in attrs]
    rng = random.Random(3)
    order = [(i, k) for i in range(len(attrs)) for k in KEYS]
    rng.shuffle(order)  # slots bound in every order, interleaved across contexts
    for i, k in order:
        assert engine.variant(k, contexts[i]) == engine.variant(k, attrs[i])
    for ctx, a in zip(contexts, attrs, strict=True):
        assert engine.evaluate_all(ctx) == engine.evaluate_all(a)


# -- contexts bound to more than 64 slots ----------------------------------------------------


def _wide_doc(n: int) -> dict:
    flags = {
        f"f{i}": {"default": "off", "rules": [{"when": {"attr": f"a{i}", "eq": i}, "serve": "on"}]}
        for i in range(n)
    }
    flags["across"] = {  # slots in the first word and past it
        "default": "off",
        "rules": [
            {
                "when": {
                    "all": [
                        {"attr": "a0", "eq": 0},
                        {"attr": f"a{n // 2}", "eq": n // 2},
                        {"attr": f"a{n - 1}", "eq": n - 1},
                    ]
                },
                "serve": "on",
            }
        ],
    }
    flags["roll"] = {
        "default": "off",
        "rules": [{"rollout": 50, "serve": "on"}],
        "bucket_by": f"a{n - 1}",
    }
    return {"flags": flags}


@pytest.mark.parametrize("n", [63, 64, 65, 130, 300])
@pytest.mark.parametrize("impl", sorted(IMPLS))
def test_contexts_bound_to_many_slots(impl, n):
    engine = _engine(impl, _wide_doc(n))
    keys = sorted(engine.snapshot().keys)
    rng = random.Random(n)
    for trial in range(6):
        attrs = {f"a{i}": i if rng.random() < 0.5 else str(i) for i in range(n)}
        if trial % 2:
            attrs = {k: v for k, v in attrs.items() if rng.random() < 0.7}  # some missing
        ctx = engine.context(attrs)
        picked = rng.sample(keys, len(keys) // 3)  # bound lazily, in a random order
        assert [engine.is_enabled(k, ctx) for k in picked] == [
            engine.is_enabled(k, attrs) for k in picked
        ]
        assert engine.evaluate(picked[0], ctx) == engine.evaluate(picked[0], attrs)
        assert engine.evaluate_all(ctx) == engine.evaluate_all(attrs)  # the rest at once
        assert [engine.is_enabled(k, ctx) for k in keys] == [
            engine.is_enabled(k, attrs) for k in keys
        ]


# -- swaps and a second engine ----------------------------------------------------------------


@pytest.mark.parametrize("impl", sorted(IMPLS))
def test_a_context_across_swaps_and_two_engines(impl):
    a, b = _engine(impl), _engine(impl, DOC_B)
    for i in range(40):
        attrs = _attrs(i)
        ctx = a.context(attrs)
        want_a, want_b = _answers(a, attrs), _answers(b, attrs, KEYS_B)
        for _ in range(3):  # own slots for a, another binding for b, back and forth
            assert _answers(a, ctx) == want_a
            assert _answers(b, ctx, KEYS_B) == want_b
        old = a.swap(DOC_B)  # the engine a now serves DOC_B: the context rebinds
        assert _answers(a, ctx, KEYS_B) == want_b
        a.swap(old)
        assert _answers(a, ctx) == want_a
        assert a.evaluate_all(ctx) == a.evaluate_all(attrs)


class _SwappingMapping(DictMapping):
    """A mapping whose get() swaps the engine (or re-initialises the context) while a
    check is binding its attributes."""

    def __init__(self, data, action):
        self.data, self.action, self.calls = data, action, 0

    def get(self, key, default=None):
        self.calls += 1
        self.action(self.calls)
        return self.data.get(key, default)


def test_a_swap_during_a_check_answers_as_the_reference():
    results = {}
    for name in sorted(IMPLS):  # the same sequence on both evaluators
        engine = _engine(name)
        snaps = [engine.snapshot(), engine.compile(DOC_B)]

        def swap(calls, engine=engine, snaps=snaps):
            if calls % 2 == 0:
                engine.swap(snaps[calls // 2 % 2])

        mapping = _SwappingMapping(_attrs(5), swap)
        ctx = engine.context(mapping)
        out = []
        for k in KEYS + KEYS_B + KEYS:
            out.append(engine.variant(k, ctx))
        out.append(engine.evaluate_all(ctx))
        results[name] = out
    assert len({repr(r) for r in results.values()}) == 1, results


@pytest.mark.parametrize("impl", sorted(IMPLS))
def test_reinit_during_a_check_does_not_break_the_check(impl):
    engine = _engine(impl)
    holder = {}

    def reinit(calls):
        if calls == 2:
            holder["ctx"].__init__(_attrs(8))  # while the check binds its slots

    ctx = engine.context(_SwappingMapping(_attrs(1), reinit))
    holder["ctx"] = ctx
    engine.evaluate_all(ctx)  # answers for some mix: only that it neither raises nor crashes
    assert engine.evaluate_all(ctx) == engine.evaluate_all(_attrs(8))
    assert _answers(engine, ctx) == _answers(engine, _attrs(8))


@pytest.mark.parametrize("impl", sorted(IMPLS))
def test_an_interrupt_while_binding_leaves_the_context_usable(impl):
    engine = _engine(impl)
    state = {"raise": True}

    def interrupt(calls):
        if calls == 2 and state.pop("raise", False):
            raise KeyboardInterrupt

    attrs = _attrs(4)
    ctx = engine.context(_SwappingMapping(attrs, interrupt))
    with pytest.raises(KeyboardInterrupt):
        engine.evaluate_all(ctx)
    assert engine.evaluate_all(ctx) == engine.evaluate_all(attrs)
    assert _answers(engine, ctx) == _answers(engine, attrs)


# -- threads ------------------------------------------------------------------------------------


@pytest.mark.parametrize("impl", sorted(IMPLS))
def test_threads_sharing_contexts_across_swaps_see_old_or_new(impl):
    engine = _engine(impl)
    snaps = [engine.snapshot(), engine.compile(DOC_B)]
    attrs = [_attrs(i) for i in range(8)]
    allowed = [
        {k: {engine.snapshot().variant(k, a), snaps[1].variant(k, a)} for k in KEYS + KEYS_B}
        for a in attrs
    ]
    errors: list[str] = []
    stop = threading.Event()

    def swapper():
        i = 0
        while not stop.is_set():
            engine.swap(snaps[i % 2])
            i += 1

    def reader(seed):
        rng = random.Random(seed)
        for _ in range(300):
            j = rng.randrange(len(attrs))
            ctx = shared[j] if rng.random() < 0.7 else engine.context(attrs[j])
            k = rng.choice(KEYS + KEYS_B)
            got = engine.variant(k, ctx)
            if got not in allowed[j][k]:
                errors.append(f"{k} for {attrs[j]}: {got!r}")

    shared = [engine.context(a) for a in attrs]
    old_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    try:
        threads = [threading.Thread(target=reader, args=(s,)) for s in range(4)]
        swap_thread = threading.Thread(target=swapper)
        swap_thread.start()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        stop.set()
        swap_thread.join()
    finally:
        sys.setswitchinterval(old_interval)
    assert not errors, errors[:5]


# -- deallocation and references ----------------------------------------------------------------


class _Clock:
    """A clock whose release runs Python code that binds other contexts."""

    def __init__(self, other):
        self.other = other
        self.ran = 0

    def __call__(self):
        return 1_800_000_000.0

    def __del__(self):
        engine = self.other
        for i in range(5):
            engine.is_enabled("seg", engine.context(_attrs(i)))
        self.ran += 1
        _Clock.released += 1

    released = 0


@pytest.mark.parametrize("impl", sorted(IMPLS))
def test_a_context_holding_the_last_reference_to_a_snapshot(impl):
    other = _engine(impl)
    for i in range(20):
        engine = _engine(impl)
        engine.set_clock(_Clock(other))  # the snapshot's clock, released with it
        ctx = engine.context(_attrs(i))
        assert _answers(engine, ctx) == _answers(engine, _attrs(i))
        engine.swap(DOC_B)  # the old snapshot now lives on in ctx's binding
        engine.set_clock(None)
        assert _answers(engine, ctx, KEYS_B) == _answers(engine, _attrs(i), KEYS_B)
        del engine
        del ctx  # releases the old snapshot, whose clock binds contexts meanwhile
    gc.collect()
    assert _answers(other, other.context(_attrs(3))) == _answers(other, _attrs(3))


@pytest.mark.parametrize("impl", sorted(IMPLS))
def test_bound_values_and_snapshots_are_released(impl):
    engine = _engine(impl)
    other = _engine(impl, DOC_B)
    value = "".join(["user-", "unique-7"])  # a str object of its own
    attrs = {"x": 1, "segment": "gold", "country": "se", "user_id": value}
    snap = engine.snapshot()
    gc.collect()
    base_value, base_snap = sys.getrefcount(value), sys.getrefcount(snap)
    for i in range(300):
        ctx = engine.context(attrs)
        engine.evaluate_all(ctx)
        other.evaluate_all(ctx)  # a second binding
        if i % 3 == 0:
            ctx.__init__(attrs)  # its own slots retired, kept until it dies
            engine.evaluate_all(ctx)
        del ctx
    gc.collect()
    assert sys.getrefcount(value) == base_value
    assert sys.getrefcount(snap) == base_snap


@pytest.mark.parametrize("impl", sorted(IMPLS))
def test_a_context_in_a_reference_cycle_is_collected(impl):
    import weakref

    engine = _engine(impl)

    class Attrs(dict):
        pass

    refs = []
    for i in range(20):
        attrs = Attrs(_attrs(i))
        ctx = engine.context(attrs)  # a dict subclass: read as it is, not copied
        attrs["self"] = ctx  # attrs -> ctx -> attrs
        assert _answers(engine, ctx) == _answers(engine, dict(_attrs(i)))
        refs.append(weakref.ref(attrs))
        del attrs, ctx
    gc.collect()
    assert all(r() is None for r in refs)
