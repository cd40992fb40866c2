"""Compiled evaluation core vs the reference evaluator vs peer engines.

Every benchmark times a *batch* of calls (``BATCH`` or one pass over the 10,000 user
ids) so that pytest-benchmark's own per-round overhead does not swamp operations of a
few dozen nanoseconds; ``extra_info["calls"]`` holds the batch size and
``benchmarks/report.py`` divides by it. The loop itself (~10-15 ns per call) is paid
equally by every participant, the hand-written floor included.

Run::

    python -m pytest benchmarks/bench_core.py --benchmark-enable --benchmark-json=core.json -q
    python benchmarks/report.py core.json
"""

from __future__ import annotations

import gc
import json
import random
import string
import tracemalloc

import pytest

from cfgcore import _automaton
from cfgcore._compat import implementations
from cfgcore.compiler import compile_snapshot
from cfgcore.engine import engine_class
from cfgcore.snapshot import decode_snapshot, encode_snapshot, snapshot_from_dict
from peers import (
    FLAG_ON,
    FLAG_ROLLOUT,
    FLAG_RULE,
    FLAG_SPLIT,
    PREMIUM_EU,
    SPLIT_WEIGHTS,
    available_peers,
    scenario_flags,
    user_ids,
)

IMPLS = implementations()
BATCH = 1000
USERS = user_ids()
CTX = dict(PREMIUM_EU)


def cfgcore_snapshot(n_flags: int = 1000) -> dict:
    """The peers' scenario flags (benchmarks/peers.py) as a cfgcore snapshot."""
    rule = {
        "all": [{"attr": "user_segment", "eq": "premium"}, {"attr": "region", "in": ["EU", "UK"]}]
    }
    flags: dict[str, dict] = {}
    for spec in scenario_flags(n_flags):
        if spec.kind == "on":
            flags[spec.name] = {"default": "on"}
        elif spec.kind == "off":
            flags[spec.name] = {"default": "off"}
        elif spec.kind == "rollout":
            flags[spec.name] = {"default": "off", "rules": [{"rollout": 25, "serve": "on"}]}
        elif spec.kind == "rule":
            flags[spec.name] = {"default": "off", "rules": [{"when": rule, "serve": "on"}]}
        else:
            flags[spec.name] = {
                "variants": {name: name for name, _ in SPLIT_WEIGHTS},
                "default": "control",
                "rules": [{"split": dict(SPLIT_WEIGHTS)}],
            }
    return {"flags": flags}


SNAPSHOT_1K = cfgcore_snapshot(1000)


@pytest.fixture(scope="module", params=sorted(IMPLS), ids=lambda k: f"cfgcore-{k}")
def engine(request):
    return engine_class(IMPLS[request.param]).from_snapshot(SNAPSHOT_1K)


@pytest.fixture(scope="module", params=available_peers(), ids=lambda c: c.name)
def peer(request):
    with request.param() as p:
        p.setup(1000)
        yield p


def _run(benchmark, group, fn, calls):
    benchmark.group = group
    benchmark.extra_info["calls"] = calls
    return benchmark(fn)


def _repeat(call, *args):
    r = range(BATCH)

    def run():
        for _ in r:
            call(*args)

    return run


def _over(call, items):
    def run():
        for x in items:
            call(x)

    return run


def _over_ctx(call, key, items):
    def run():
        for x in items:
            call(key, x)

    return run


def _timed(benchmark, items):
    """``items`` when timing; their first ``BATCH`` in a smoke run (--benchmark-disable,
    as in the test suite), which proves the timed loop: the answers were checked on all
    of them before it."""
    return items if benchmark.enabled else items[:BATCH]


# (a) plain on-flag --------------------------------------------------------------------
def test_a_plain_on_bound(benchmark, engine):
    ctx = engine.context(CTX)
    assert engine.is_enabled(FLAG_ON, ctx) is True
    _run(benchmark, "a-plain-on", _repeat(engine.is_enabled, FLAG_ON, ctx), BATCH)


def test_a_plain_on_peer(benchmark, peer):
    fn = peer.plain_on()
    assert fn() is True
    _run(benchmark, "a-plain-on", _repeat(fn), BATCH)


# (b) plain on-flag, plain dict context ---------------------------------------------------
def test_b_plain_on_dict(benchmark, engine):
    assert engine.is_enabled(FLAG_ON, CTX) is True
    _run(benchmark, "b-plain-on-dict", _repeat(engine.is_enabled, FLAG_ON, CTX), BATCH)


def test_b_plain_on_dict_peer(benchmark, peer):
    fn = peer.plain_on_dict(PREMIUM_EU)
    assert fn() is True
    _run(benchmark, "b-plain-on-dict", _repeat(fn), BATCH)


# (b') value() with and without a default: the default's kind check -------------------
@pytest.mark.parametrize("default", [None, False], ids=["no-default", "bool-default"])
def test_b_value_default(benchmark, engine, default):
    assert engine.value(FLAG_ON, CTX, default) is True
    assert engine.evaluate(FLAG_ON, CTX, default).error_code is None
    _run(benchmark, "b-value-default", _repeat(engine.value, FLAG_ON, CTX, default), BATCH)


# (c) 25% rollout over 10,000 users ------------------------------------------------------
def test_c_rollout_bound(benchmark, engine):
    contexts = [engine.context({"user_id": u}) for u in USERS]
    share = sum(engine.is_enabled(FLAG_ROLLOUT, c) for c in contexts) / len(USERS)
    assert 0.22 < share < 0.28
    timed = _timed(benchmark, contexts)
    _run(benchmark, "c-rollout", _over_ctx(engine.is_enabled, FLAG_ROLLOUT, timed), len(timed))


def test_c_rollout_dict(benchmark, engine):
    dicts = [{"user_id": u} for u in USERS]
    share = sum(engine.is_enabled(FLAG_ROLLOUT, d) for d in dicts) / len(USERS)
    assert 0.22 < share < 0.28
    timed = _timed(benchmark, dicts)
    _run(benchmark, "c-rollout-dict", _over_ctx(engine.is_enabled, FLAG_ROLLOUT, timed), len(timed))


def test_c_rollout_peer(benchmark, peer):
    fn = peer.rollout()
    assert 0.22 < sum(fn(u) for u in USERS) / len(USERS) < 0.28  # the same work as cfgcore
    timed = _timed(benchmark, USERS)
    _run(benchmark, "c-rollout", _over(fn, timed), len(timed))


# (d) segment == premium AND region in [EU, UK] ------------------------------------------
def test_d_rule_bound(benchmark, engine):
    ctx = engine.context(CTX)
    assert engine.is_enabled(FLAG_RULE, ctx) is True
    _run(benchmark, "d-rule", _repeat(engine.is_enabled, FLAG_RULE, ctx), BATCH)


def test_d_rule_dict(benchmark, engine):
    assert engine.is_enabled(FLAG_RULE, CTX) is True
    _run(benchmark, "d-rule-dict", _repeat(engine.is_enabled, FLAG_RULE, CTX), BATCH)


def test_d_rule_peer(benchmark, peer):
    fn = peer.rule(PREMIUM_EU)
    assert fn() is True
    _run(benchmark, "d-rule", _repeat(fn), BATCH)


# (e) 50/30/20 split returning the variant name -------------------------------------------
def test_e_split_bound(benchmark, engine):
    contexts = [engine.context({"user_id": u}) for u in USERS]
    assert engine.variant(FLAG_SPLIT, contexts[0]) in {n for n, _ in SPLIT_WEIGHTS}
    timed = _timed(benchmark, contexts)
    _run(benchmark, "e-split", _over_ctx(engine.variant, FLAG_SPLIT, timed), len(timed))


def test_e_split_dict(benchmark, engine):
    dicts = [{"user_id": u} for u in USERS]
    assert {engine.variant(FLAG_SPLIT, d) for d in dicts} == {n for n, _ in SPLIT_WEIGHTS}
    timed = _timed(benchmark, dicts)
    _run(benchmark, "e-split-dict", _over_ctx(engine.variant, FLAG_SPLIT, timed), len(timed))


def test_e_split_peer(benchmark, peer):
    fn = peer.split()
    assert {fn(u) for u in USERS[:2000]} == {n for n, _ in SPLIT_WEIGHTS}
    timed = _timed(benchmark, USERS)
    _run(benchmark, "e-split", _over(fn, timed), len(timed))


# (f) evaluate_all over 1,000 flags ---------------------------------------------------------
def test_f_all_flags(benchmark, engine):
    ctx = engine.context(CTX)
    values = engine.evaluate_all(ctx)
    assert len(values) == 1000 and values[FLAG_RULE] is True
    _run(benchmark, "f-all-1000", lambda: engine.evaluate_all(ctx), 1)


def test_f_all_flags_peer(benchmark, peer):
    fn = peer.all_flags(PREMIUM_EU)
    assert len(fn()) == 1000
    _run(benchmark, "f-all-1000", fn, 1)


# (k) what evaluation counting costs: the same calls with set_counting(False) / (True) ----
COUNTING_CASES = {
    "plain": lambda e, ctx, ctxs: _repeat(e.is_enabled, FLAG_ON, ctx),
    "rule": lambda e, ctx, ctxs: _repeat(e.is_enabled, FLAG_RULE, ctx),
    "rollout": lambda e, ctx, ctxs: _over_ctx(e.is_enabled, FLAG_ROLLOUT, ctxs),
    "split": lambda e, ctx, ctxs: _over_ctx(e.variant, FLAG_SPLIT, ctxs),
    "all": lambda e, ctx, ctxs: lambda: e.evaluate_all(ctx),
}
COUNTING_CALLS = {"plain": BATCH, "rule": BATCH, "rollout": len(USERS), "split": len(USERS),
                  "all": 1}  # fmt: skip


@pytest.mark.skipif("c" not in IMPLS, reason="the compiled extension is not built")
@pytest.mark.parametrize("counting", [False, True], ids=["counting-off", "counting-on"])
@pytest.mark.parametrize("case", list(COUNTING_CASES))
def test_k_counting(benchmark, case, counting):
    """The compiled engine with counting off (the floor) and on, in one run: the cost
    of the per-evaluation counter increment (target: at most 5%)."""
    engine = engine_class(IMPLS["c"]).from_snapshot(SNAPSHOT_1K)
    engine.set_counting(counting)
    ctx = engine.context(CTX)
    ctxs = [engine.context({"user_id": u}) for u in USERS]
    _run(
        benchmark,
        f"k-counting-{case}",
        COUNTING_CASES[case](engine, ctx, ctxs),
        COUNTING_CALLS[case],
    )
    took = engine.take_evaluation_counts()
    assert (took.total > 0) is counting


# (l) the observer switch: engine.is_enabled with no hook vs the pinned snapshot's ---------
@pytest.mark.skipif("c" not in IMPLS, reason="the compiled extension is not built")
@pytest.mark.parametrize("via", ["snapshot", "engine", "engine-hooked"])
def test_l_observer_gate(benchmark, via):
    """engine.is_enabled tests one attribute (hooks, exposure callbacks, debug mode)
    before the compiled call; engine.snapshot().is_enabled skips it; with a no-op hook
    the call takes the Python observed path."""
    from cfgcore.observability.hooks import Hook

    engine = engine_class(IMPLS["c"]).from_snapshot(SNAPSHOT_1K)
    if via == "engine-hooked":
        engine.add_hook(Hook())
    check = engine.snapshot().is_enabled if via == "snapshot" else engine.is_enabled
    ctx = engine.context(CTX)
    assert check(FLAG_RULE, ctx) is True
    _run(benchmark, "l-observer-gate", _repeat(check, FLAG_RULE, ctx), BATCH)


def paired_counting_cost(pairs: int = 300) -> dict[str, dict[str, float]]:
    """The counting cost measured in pairs: each round times one batch with counting off
    and one with it on, in alternating order, on the same engine and the same contexts
    (set_counting between the batches), so load that comes and goes on a shared machine
    falls on both alike and memory layout cannot differ. Per case: the median seconds
    per call of each, and the median of the per-round ratios on/off."""
    import statistics
    import time

    e = engine_class(IMPLS["c"]).from_snapshot(SNAPSHOT_1K)
    ctx = e.context(CTX)
    ctxs = [e.context({"user_id": u}) for u in USERS[:BATCH]]
    out = {}
    for case, make in COUNTING_CASES.items():
        fn = make(e, ctx, ctxs)
        calls = 1 if case == "all" else BATCH
        fn()  # warm: contexts bound, evaluate_all's template built
        times: dict[bool, list[float]] = {False: [], True: []}
        for r in range(pairs):
            for counting in (False, True) if r % 2 else (True, False):
                e.set_counting(counting)
                start = time.perf_counter()
                fn()
                times[counting].append((time.perf_counter() - start) / calls)
        ratios = [on / off for on, off in zip(times[True], times[False], strict=True)]
        out[case] = {
            "off_s": statistics.median(times[False]),
            "on_s": statistics.median(times[True]),
            "ratio": statistics.median(ratios),
        }
    return out


def paired_gate_cost(pairs: int = 400) -> dict[str, float]:
    """engine.is_enabled / engine.snapshot().is_enabled, paired as above (median of the
    per-pair ratios): what the engine's own call adds, the observer test included. Runs
    on any cfgcore (set PYTHONPATH to compare builds)."""
    import statistics
    import time

    e = engine_class(IMPLS["c"]).from_snapshot(SNAPSHOT_1K)
    ctx, snap = e.context(CTX), e.snapshot()
    out = {}
    for key in (FLAG_ON, FLAG_RULE):
        runs: dict[str, list[float]] = {"engine": [], "snapshot": []}
        for r in range(pairs):
            order = (("engine", e.is_enabled), ("snapshot", snap.is_enabled))
            for who, fn in order if r % 2 else order[::-1]:
                run = _repeat(fn, key, ctx)
                start = time.perf_counter()
                run()
                runs[who].append(time.perf_counter() - start)
        out[key] = statistics.median(
            a / b for a, b in zip(runs["engine"], runs["snapshot"], strict=True)
        )
    return out


if __name__ == "__main__":  # python benchmarks/bench_core.py [gate]
    import sys

    if sys.argv[1:] == ["gate"]:
        for flag, ratio in paired_gate_cost().items():
            print(f"{flag:12} engine/snapshot {ratio:.3f}")
    else:  # the paired counting cost
        for name, row in paired_counting_cost().items():
            print(f"{name:8} off {row['off_s'] * 1e9:9.1f} ns  on {row['on_s'] * 1e9:9.1f} ns"
                  f"  on/off {row['ratio']:.3f}")  # fmt: skip


# (m) an any of many contains tests of one attribute (one automaton, 8 or more) ---------
def _contains_any_doc(count: int) -> dict:
    needles = [f"token-{i:05d}-x" for i in range(count)]
    when = {"any": [{"attr": "ua", "contains": n} for n in needles]}
    return {"flags": {"ua": {"default": "off", "rules": [{"when": when, "serve": "on"}]}}}


def _text(length: int) -> str:
    base = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    return (base * (length // len(base) + 1))[:length]


@pytest.mark.parametrize("impl", sorted(IMPLS))
# 5: below the automaton's threshold (tests one by one); 8: at it, where a short value
# gains and a long one may lose a little; 1,000: what it is for.
@pytest.mark.parametrize(
    "count, length", [(5, 50), (8, 50), (8, 4096), (1000, 4096), (1000, 65536)]
)
def test_m_contains_any(benchmark, impl, count, length):
    """A check whose rule is an any of ``count`` contains tests on a ``length``-character
    value that holds none of them (the whole value is searched)."""
    engine = engine_class(IMPLS[impl]).from_snapshot(_contains_any_doc(count))
    ctx = engine.context({"ua": _text(length)})
    assert engine.is_enabled("ua", ctx) is False
    calls = BATCH if length <= 4096 else 10
    if not benchmark.enabled:  # a smoke run proves the loop: the answer is checked above
        calls = min(calls, 10)
    r = range(calls)

    def run():
        for _ in r:
            engine.is_enabled("ua", ctx)

    _run(benchmark, f"m-contains-any-{count}x{length}", run, calls)


# (n) compiling an any of many contains tests: the automaton's build ---------------------
def _constants(count: int, shape: str) -> list[str]:
    """``count`` constants of 20 characters: ``tokens`` share long prefixes (a numbered
    list); ``random`` letters and digits share little (many fail links into the first
    levels)."""
    if shape == "tokens":
        return [f"Token-{i:05d}-abcdefgh" for i in range(count)]
    rnd = random.Random(count)
    return ["".join(rnd.choices(string.ascii_letters + string.digits, k=20)) for _ in range(count)]


def _encoded(values: list[str], ci: bool) -> list[bytes]:
    """The constants as the compiler hands them to the builder (contains_runs)."""
    return sorted({(v.casefold() if ci else v).encode("utf-8", "surrogatepass") for v in values})


@pytest.mark.parametrize("builder", ["current", "previous"])
@pytest.mark.parametrize("ci", [False, True], ids=["cs", "ci"])
@pytest.mark.parametrize("count, shape", [(8, "tokens"), (50, "random"), (10_000, "tokens"),
                                          (10_000, "random")])  # fmt: skip
def test_n_automaton_build(benchmark, builder, ci, count, shape):
    """_automaton.build, and the builder before its rewrite (tests/automaton_reference.py),
    which must write the same cells."""
    # Imported here: bench_core is imported by scripts (instructions.py) run from
    # elsewhere, where the repository's tests package is not importable.
    from tests import automaton_reference

    build = _automaton.build if builder == "current" else automaton_reference.build
    other = automaton_reference.build if builder == "current" else _automaton.build
    consts = _encoded(_constants(count, shape), ci)
    group = f"n-automaton-build-{count}-{shape}-{'ci' if ci else 'cs'}"
    pool = _automaton.new_pool()
    if benchmark.enabled:  # timed on new pools; the pool compared below is built after
        _run(benchmark, group, lambda: build(consts, _automaton.new_pool()), 1)
        built = build(consts, pool)
    else:  # a smoke run (--benchmark-disable, as in the test suite) builds that pool
        built = _run(benchmark, group, lambda: build(consts, pool), 1)
    _offset, states = built
    assert states > len(consts)
    theirs = _automaton.new_pool()
    assert other(consts, theirs) == built
    assert pool == theirs


@pytest.mark.parametrize("ci", [False, True], ids=["cs", "ci"])
def test_n_compile_contains_any_10k(benchmark, ci):
    """compile_snapshot of one flag whose rule is an any of 10,000 contains tests of 20
    characters (random), one automaton."""
    cond = {"any": [{"attr": "ua", "contains": v, "ignore_case": ci}
                    for v in _constants(10_000, "random")]}  # fmt: skip
    snap = snapshot_from_dict(
        {"flags": {"f": {"default": "off", "rules": [{"when": cond, "serve": "on"}]}}}
    )
    tables = _run(
        benchmark, f"n-compile-contains-any-10k-{'ci' if ci else 'cs'}",
        lambda: compile_snapshot(snap), 1
    )  # fmt: skip
    assert len(tables.acpool) > 10_000


# (g) compile and (h) decode 10,000 flags ------------------------------------------------------
SNAPSHOT_10K = cfgcore_snapshot(10_000)
# A smoke run (--benchmark-disable, as in the test suite) proves the code on the
# 1,000-flag document: the 10,000-flag runs cost the suite some 60 s (tracemalloc
# triples a compile) and time nothing there.


def _large(benchmark):
    """The 10,000-flag document when timing, else the 1,000-flag one; and its size."""
    return (SNAPSHOT_10K, 10_000) if benchmark.enabled else (SNAPSHOT_1K, 1_000)


def test_g_compile_10k(benchmark):
    doc, n = _large(benchmark)
    snap = snapshot_from_dict(doc)
    tables = _run(benchmark, "g-compile-10k", lambda: compile_snapshot(snap), 1)
    assert len(tables.keys) == n


@pytest.mark.parametrize("fmt", ["json", "msgpack", "yaml"])
def test_h_decode_10k(benchmark, fmt):
    doc, n = _large(benchmark)
    data = encode_snapshot(snapshot_from_dict(doc), fmt)
    benchmark.extra_info["bytes"] = len(data)
    snap = _run(benchmark, f"h-decode-10k-{fmt}", lambda: decode_snapshot(data, fmt), 1)
    assert len(snap.flags) == n


@pytest.mark.parametrize("impl", sorted(IMPLS))
def test_h_msgpack_scan_10k(benchmark, impl):
    """The duplicate-key scan a MessagePack document passes before msgspec decodes it
    (part of h-decode-10k-msgpack), compiled and reference."""
    doc, _n = _large(benchmark)
    data = encode_snapshot(snapshot_from_dict(doc), "msgpack")
    scan = IMPLS[impl].msgpack_duplicate_at
    assert _run(benchmark, "h-msgpack-scan-10k", lambda: scan(data), 1) == -1


@pytest.mark.parametrize("impl", sorted(IMPLS))
def test_compiled_10k_memory(benchmark, impl):
    """Bytes held by a compiled 10,000-flag snapshot (tables plus evaluator arrays)."""
    doc, n = _large(benchmark)
    snap = decode_snapshot(json.dumps(doc), "json")
    cls = engine_class(IMPLS[impl])
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    engine = cls.from_snapshot(snap)
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    t = engine.snapshot().tables
    c_arrays = 0
    if impl == "c":  # malloc'ed copies of the tables, which tracemalloc does not see
        ints = (
            len(t.nodes)
            + len(t.ipool)
            + len(t.flags)
            + len(t.rules)
            + len(t.prereqs)
            + len(t.splits)
            + len(t.acpool)
        )
        c_arrays = 4 * ints + 8 * (len(t.nums) + 2 * len(t.keys)) + 3 * len(t.slots) + len(t.values)
    benchmark.extra_info["compiled_bytes"] = after - before + c_arrays
    assert len(engine.snapshot()) == n
    _run(benchmark, "memory-10k", lambda: None, 1)
