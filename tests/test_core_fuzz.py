"""Fuzz targets (hypothesis) for the flag loaders (YAML, JSON, MessagePack), the
compiler and the evaluator with hostile contexts.

Each target asserts the core's promises on arbitrary input: loading and compiling
either succeed or raise ``SnapshotError`` (never another exception, never a hang of
the process), and whatever compiles evaluates without raising, identically on both
evaluators. CI runs a short profile; a longer local soak run sets
``CFGCORE_FUZZ=soak`` (and ``CFGCORE_FUZZ_EXAMPLES``) and reads the tallies that
``FUZZ_STATS`` collects (inputs, rejections, slowest input).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfgcore.engine import bundled_flags_path, engine_class
from cfgcore.errors import SnapshotError
from cfgcore.snapshot import decode_snapshot, encode_snapshot
from tests.conftest import IMPLS
from tests.fuzz import examples
from tests.test_core_hostile import CollidingKey, EvilFloat, EvilInt, EvilStr, FakeClass, NoRepr
from tests.texts import any_text

settings.register_profile(
    "fuzz-ci", max_examples=examples(40), deadline=None, suppress_health_check=list(HealthCheck)
)
settings.register_profile(
    "fuzz-soak",
    max_examples=int(os.environ.get("CFGCORE_FUZZ_EXAMPLES", "20000")),
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
PROFILE = settings.get_profile(
    "fuzz-soak" if os.environ.get("CFGCORE_FUZZ") == "soak" else "fuzz-ci"
)

pytestmark = pytest.mark.skipif("c" not in IMPLS, reason="the compiled extension is not built")

BUNDLED_YAML = Path(bundled_flags_path()).read_bytes()
BUNDLED = decode_snapshot(BUNDLED_YAML, "yaml")
BUNDLED_JSON = encode_snapshot(BUNDLED, "json")
BUNDLED_MSGPACK = encode_snapshot(BUNDLED, "msgpack")
ENGINES = [engine_class(mod) for mod in IMPLS.values()]
CONTEXTS = [
    {"user_id": "u1", "user_segment": "premium", "region": "EU"},
    {"user_id": 7, "user_segment": "free", "region": "US"},
    {"targeting_key": "k", "user_segment": "family"},
    {},
]
FUZZ_STATS: dict[str, dict[str, float]] = {}


def _tally(target: str, outcome: str, seconds: float) -> None:
    stats = FUZZ_STATS.setdefault(target, {"inputs": 0, "slowest_s": 0.0})
    stats["inputs"] += 1
    stats[outcome] = stats.get(outcome, 0) + 1
    stats["slowest_s"] = max(stats["slowest_s"], seconds)


def _load_and_check(target: str, data: bytes, fmt: str) -> None:
    """Decode + compile on both evaluators: a SnapshotError or engines that agree."""
    start = time.perf_counter()
    outcome = "accepted"
    engines = []
    for cls in ENGINES:
        try:
            engines.append(cls.from_bytes(data, fmt, file=f"fuzz.{fmt}"))
        except SnapshotError as exc:
            assert "fuzz." in str(exc)  # every error names the file
            engines.append(None)
    assert len({e is None for e in engines}) == 1, "one evaluator refused what the other took"
    if engines[0] is None:
        outcome = "refused"
    else:
        for ctx in CONTEXTS:
            results = [e.evaluate_all(ctx) for e in engines]
            assert all(r == results[0] for r in results), ctx
            for key in engines[0].snapshot().keys:
                details = [e.evaluate(key, ctx) for e in engines]
                assert all(d == details[0] for d in details), (key, ctx)
    _tally(target, outcome, time.perf_counter() - start)


INTERESTING = [b"\n", b" ", b":", b"-", b"{", b"}", b"[", b"]", b",", b'"', b"'", b"&a",
               b"*a", b"!!python/object", b"\x00", b"\xff", b"1e999", b"9" * 40, b"null",
               b"~", b"#"]  # fmt: skip


@st.composite
def mutated(draw, base: bytes):
    data = bytearray(base)
    for _ in range(draw(st.integers(1, 4))):
        pos = draw(st.integers(0, len(data)))
        op = draw(st.sampled_from(["cut", "delete", "insert", "replace", "flip"]))
        if op == "cut":
            del data[pos:]
        elif op == "delete":
            del data[pos : pos + draw(st.integers(1, 16))]
        elif op == "insert":
            data[pos:pos] = draw(st.sampled_from(INTERESTING) | st.binary(max_size=8))
        elif op == "replace" and pos < len(data):
            data[pos] = draw(st.integers(0, 255))
        elif pos < len(data):
            data[pos] ^= 1 << draw(st.integers(0, 7))
    return bytes(data)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | any_text(max_size=8),
    lambda kids: (
        st.lists(kids, max_size=4) | st.dictionaries(any_text(max_size=8), kids, max_size=4)
    ),
    max_leaves=20,
)
FIELDS = ["flags", "segments", "version", "variants", "default", "rules", "when", "serve",
          "rollout", "split", "attr", "eq", "in", "not", "all", "prerequisites",
          "schedule"]  # fmt: skip
structured = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | any_text(max_size=6),
    lambda kids: (
        st.lists(kids, max_size=3)
        | st.dictionaries(st.sampled_from(FIELDS) | any_text(max_size=4), kids, max_size=4)
    ),
    max_leaves=25,
)


@PROFILE
@given(
    st.one_of(mutated(BUNDLED_YAML), st.binary(max_size=200), st.text(max_size=200).map(str.encode))
)
def test_fuzz_yaml_flag_loader(data):
    _load_and_check("yaml", data, "yaml")


def _json(value) -> bytes:
    try:
        return msgspec.json.encode(value)
    except UnicodeEncodeError:  # a lone surrogate: written as the \u escape a file can hold
        return json.dumps(value).encode()


@PROFILE
@given(st.one_of(mutated(BUNDLED_JSON), json_values.map(_json),
                 structured.map(lambda v: _json({"flags": v}))))  # fmt: skip
def test_fuzz_json_flag_loader(data):
    _load_and_check("json", data, "json")


def _msgpack(value) -> bytes:
    try:
        return msgspec.msgpack.encode(value)
    except OverflowError:  # ints beyond 64 bits have no MessagePack form
        return b"\xc1"
    except UnicodeEncodeError:  # a lone surrogate: no MessagePack str holds it
        return b"\xc1"


@PROFILE
@given(st.one_of(mutated(BUNDLED_MSGPACK), st.binary(max_size=200),
                 structured.map(lambda v: _msgpack({"flags": v}))))  # fmt: skip
def test_fuzz_msgpack_flag_loader(data):
    _load_and_check("msgpack", data, "msgpack")


@st.composite
def damaged_snapshots(draw):
    """A valid random snapshot with a few fields replaced by arbitrary values."""
    from tests.test_core_differential import snapshots

    snap = draw(snapshots())
    for _ in range(draw(st.integers(0, 3))):
        node = snap
        for _ in range(draw(st.integers(1, 5))):
            if isinstance(node, dict) and node:
                key = draw(st.sampled_from(sorted(node, key=str)))
                if isinstance(node[key], (dict, list)) and draw(st.booleans()):
                    node = node[key]
                    continue
                node[key] = draw(structured)
                break
            if isinstance(node, list) and node:
                i = draw(st.integers(0, len(node) - 1))
                if isinstance(node[i], (dict, list)) and draw(st.booleans()):
                    node = node[i]
                    continue
                node[i] = draw(structured)
                break
    return snap


@PROFILE
@given(damaged_snapshots())
def test_fuzz_compiler(snapshot):
    start = time.perf_counter()
    engines = []
    for cls in ENGINES:
        try:
            engines.append(cls.from_snapshot(snapshot))
        except SnapshotError:
            engines.append(None)
    assert len({e is None for e in engines}) == 1
    if engines[0] is not None:
        for ctx in CONTEXTS + [{"seg": "premium", "n": 1, "v": "1.2.3", "user_id": "u"}]:
            assert all(e.evaluate_all(ctx) == engines[0].evaluate_all(ctx) for e in engines)
    _tally("compiler", "refused" if engines[0] is None else "accepted", time.perf_counter() - start)


HOSTILE = [EvilStr("premium"), EvilStr("EU"), EvilInt(7), EvilFloat(2.5), FakeClass(), NoRepr(),
           float("nan"), 10**400, "\ud800", "x" * 5000, b"premium", ["premium"], {"a": 1}, None,
           True, 2**63, -0.0, float("inf")]  # fmt: skip
hostile_values = (
    st.integers(0, len(HOSTILE) - 1).map(HOSTILE.__getitem__)
    | any_text(max_size=6)
    | st.integers()
    | st.floats()
)
ATTRS = ["user_id", "targeting_key", "user_segment", "region", "app_version", "country"]


@st.composite
def hostile_contexts(draw):
    ctx = draw(st.dictionaries(st.sampled_from(ATTRS), hostile_values, max_size=6))
    if draw(st.booleans()):
        ctx[CollidingKey(draw(st.sampled_from(ATTRS)))] = 1
    return ctx


@PROFILE
@given(
    hostile_contexts(),
    st.sampled_from(sorted(BUNDLED.flags))
    | st.integers(0, len(HOSTILE) - 1).map(HOSTILE.__getitem__),
)
def test_fuzz_evaluator_with_hostile_contexts(ctx, key):
    start = time.perf_counter()
    engines = [cls.from_snapshot(BUNDLED) for cls in ENGINES]
    CollidingKey.armed = True
    try:
        got = []
        for e in engines:
            bound = e.context(ctx)
            got.append(
                (e.evaluate(key, ctx), e.evaluate(key, bound), e.is_enabled(key, ctx),
                 e.variant(key, bound), e.evaluate_all(ctx), e.evaluate_all(bound),
                 e.value(key, key, default=1.5), e.is_enabled(key, key),
                 e.evaluate_all(key))
            )  # fmt: skip
    finally:
        CollidingKey.armed = False
    assert all(g == got[0] for g in got)
    # the same evaluations, unknown keys, type mismatches and non-contexts counted alike
    counts = [e.take_evaluation_counts() for e in engines]
    assert all(c == counts[0] for c in counts)
    assert counts[0].total >= 2 * len(BUNDLED.flags)
    _tally("evaluator", "accepted", time.perf_counter() - start)
