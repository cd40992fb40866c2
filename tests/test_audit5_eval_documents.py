"""Fifth audit of the compiler's inputs.

* A JSON or MessagePack flag document nested past the decoders' stack (~1,000 levels)
  was refused as "cannot decode json: maximum recursion depth exceeded ..." naming the
  file only; it now names the flag and key path, as YAML and shallower documents do.
* A Snapshot built in Python (not decoded) is not type-checked by msgspec: a split
  weight ``"50"`` or a rollout ``"50"`` compiled as the number, ``exists: "no"`` as
  true, ``in: "abc"`` as three letters, and a gate's ``lo: 0.5`` or a hash ``seed: 1.5``
  made the two evaluators disagree (the compiled one truncates to int) or the reference
  raise on the request path. Each flag and segment of such a snapshot is now checked as
  the decoders check a document: the same SnapshotError with the key path.
"""

from __future__ import annotations

import json
import random
import uuid
from datetime import datetime, timezone
from decimal import Decimal

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfgcore.errors import SnapshotError
from cfgcore.snapshot import (
    MAX_VALUE_DEPTH,
    Condition,
    Flag,
    Gate,
    Hashing,
    Prerequisite,
    Rule,
    Schedule,
    Snapshot,
    _too_deep,
    decode_snapshot,
    deep_path,
    encode_snapshot,
    is_decoded,
    snapshot_from_dict,
)
from tests.fuzz import examples
from tests.test_core_differential import snapshots

# -- deep documents -----------------------------------------------------------------------


def _nested(n: int, kind: str):
    value: object = 1
    for _ in range(n):
        value = {"a": value} if kind == "dict" else [value]
    return value


def _json_text(n: int, kind: str) -> bytes:
    # written out by hand: json.dumps itself recurses
    opening, closing = (b'{"a":', b"}") if kind == "dict" else (b"[", b"]")
    head = b'{"flags": {"ok": {"default": "on"}, "bad": {"default": "on", "variants": {"off": false'
    return head + b', "on": ' + opening * n + b"1" + closing * n + b"}}}}"


def _msgpack_bytes(n: int, kind: str) -> bytes:
    enc = msgspec.msgpack.encode
    inner = (b"\x81\xa1a" if kind == "dict" else b"\x91") * n + b"\x01"
    bad = enc("default") + enc("on") + enc("variants") + b"\x82" + enc("off") + enc(False)
    bad = b"\x82" + bad + enc("on") + inner
    flags = b"\x82" + enc("ok") + enc({"default": "on"}) + enc("bad") + bad
    return b"\x81" + enc("flags") + flags


@pytest.mark.parametrize("kind", ["dict", "list"])
@pytest.mark.parametrize("depth", [150, 1_000, 5_000, 200_000])
@pytest.mark.parametrize("fmt", ["json", "msgpack"])
def test_deep_documents_name_the_flag_and_key_path(fmt, depth, kind):
    data = _json_text(depth, kind) if fmt == "json" else _msgpack_bytes(depth, kind)
    document = {
        "flags": {
            "ok": {"default": "on"},
            "bad": {"default": "on", "variants": {"off": False, "on": _nested(depth, kind)}},
        }
    }
    want = _too_deep(document)  # the path snapshot_from_dict names (no recursion)
    assert want is not None and want.startswith("flags.bad.variants.on")
    with pytest.raises(SnapshotError) as err:
        # decoded and compiled, as a flag store does: shallower documents decode and are
        # refused by the compiler, deeper ones by the decoder; the same error either way
        from cfgcore.compiler import compile_snapshot

        compile_snapshot(decode_snapshot(data, fmt, file=f"flags.{fmt}"), file=f"flags.{fmt}")
    problems = err.value.problems
    assert [(p.path, p.message, p.file) for p in problems] == [
        (want, f"nested deeper than {MAX_VALUE_DEPTH} levels", f"flags.{fmt}")
    ]


def test_deep_metadata_and_segments_are_named_too():
    data = b'{"flags": {}, "segments": {"s": {"all": ' + b"[" * 3000 + b"]" * 3000 + b"}}}"
    with pytest.raises(SnapshotError) as err:
        decode_snapshot(data, "json", file="f.json")
    assert err.value.problems[0].path.startswith("segments.s.all[0][0]")
    data = b'{"flags": {}, "metadata": {"m\\"x": ' + b"[" * 3000 + b"]" * 3000 + b"}}"
    with pytest.raises(SnapshotError) as err:
        decode_snapshot(data, "json", file="f.json")
    assert err.value.problems[0].path.startswith('metadata.m"x[0][0]')


keys = st.text(max_size=4)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats(allow_nan=False)
    | st.text(max_size=4) | st.binary(max_size=4),
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(keys, kids, max_size=3),
    max_leaves=12,
)  # fmt: skip


@settings(max_examples=examples(150), deadline=None)
@given(json_values, st.integers(0, 2), st.integers(95, 110), st.randoms(use_true_random=False))
def test_the_scan_finds_what_the_iterative_walk_finds(value, where, depth, rnd):
    """deep_path over JSON text and over MessagePack bytes names the container the
    iterative walk of the decoded value names (keys with quotes, escapes, brackets,
    any scalar type, one branch nested around the limit)."""
    chain: object = rnd.choice([[], {}, 0, "x"])
    for _ in range(depth):
        chain = [chain] if rnd.random() < 0.5 else {rnd.choice(["k", '"]', "\\", "é"]): chain}
    doc = {"x": value, "deep": chain} if where == 0 else {"deep": chain, "x": value}
    if where == 2:
        doc = [value, doc]
    want = _too_deep(doc)
    packed = msgspec.msgpack.encode(doc)
    assert deep_path(packed, "msgpack") == want
    if not _has_bytes(doc):
        text = json.dumps(doc, ensure_ascii=rnd.random() < 0.5)
        assert deep_path(text, "json") == want
        assert deep_path(text.encode(), "json") == want


def _has_bytes(value) -> bool:
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, bytes):
            return True
        if isinstance(v, dict):
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
    return False


# -- snapshots built in Python ------------------------------------------------------------

H = {"scheme": "murmur3", "by": ["user_id"]}


def _rule_flag(**rule) -> Flag:
    return Flag(default="off", rules=[Rule(**rule)])


WRONG = {
    "split weight a str": (
        _rule_flag(split={"on": "50", "off": "50"}),
        "flags.f.rules[0].split.on: expected int | float, got str",
    ),
    "split weight a bool": (
        _rule_flag(split={"on": True, "off": 99}),
        "flags.f.rules[0].split.on: expected int | float, got bool",
    ),
    "rollout a str": (
        _rule_flag(serve="on", rollout="50"),
        "flags.f.rules[0].rollout: expected int | float, got str",
    ),
    "gate bounds floats": (
        _rule_flag(serve="on", gates=[Gate(hash=Hashing(**H), lo=0.5, hi=50.5)]),
        "flags.f.rules[0].gates[0].hi: expected int, got float",
    ),
    "hash seed a float": (
        _rule_flag(hash=Hashing(**H, seed=1.5), buckets=[("on", 50), ("off", 50)]),
        "flags.f.rules[0].hash.seed: expected int, got float",
    ),
    "bucket width a float": (
        _rule_flag(hash=Hashing(**H), buckets=[("on", 50.5), ("off", 49.5)]),
        "flags.f.rules[0].buckets[0][1]: expected int, got float",
    ),
    "lt a str": (
        _rule_flag(serve="on", when=Condition(attr="n", lt="5")),
        "flags.f.rules[0].when.lt: expected int | float, got str",
    ),
    "in a str": (
        _rule_flag(serve="on", when=Condition(attr="n", in_="abc")),
        "flags.f.rules[0].when.in: expected array, got str",
    ),
    "exists a str": (
        _rule_flag(serve="on", when=Condition(attr="n", exists="no")),
        "flags.f.rules[0].when.exists: expected bool, got str",
    ),
    "eq bytes": (
        _rule_flag(serve="on", when=Condition(attr="n", eq=b"a")),
        "flags.f.rules[0].when.eq: expected bool | int | float | str, got bytes",
    ),
    "matches bytes": (
        _rule_flag(serve="on", when=Condition(attr="n", matches=b"a")),
        "flags.f.rules[0].when.matches: expected str, got bytes",
    ),
    "enabled an int": (Flag(default="on", enabled=0), "flags.f.enabled: expected bool, got int"),
    "on_variants a str": (
        Flag(variants={"a": 1, "b": 2}, default="a", on_variants="a"),
        "flags.f.on_variants: expected array, got str",
    ),
    "variant name an int": (
        Flag(variants={1: "x"}, default=1),
        "flags.f.variants[1]: expected str, got int (a key)",
    ),
}


@pytest.mark.parametrize("case", list(WRONG))
def test_a_python_built_flag_is_checked_as_a_document(make, case):
    flag, message = WRONG[case]
    engine = make({"flags": {"f": {"default": "on"}, "g": {"default": "on"}}})
    snap = Snapshot(flags={"f": flag, "g": Flag(default="on")})
    with pytest.raises(SnapshotError) as err:
        make(snap)
    assert [str(p) for p in err.value.problems] == [message]
    with pytest.raises(SnapshotError) as err:
        engine.swap(snap)  # incremental against the live tables: the same refusal
    assert [str(p) for p in err.value.problems] == [message]
    assert engine.is_enabled("f") is True  # the last good flags stay live


def test_a_python_built_segment_is_checked_too(make):
    snap = Snapshot(
        segments={"s": Condition(attr="n", ge="5")},
        flags={"f": _rule_flag(serve="on", when=Condition(segment="s"))},
    )
    with pytest.raises(SnapshotError) as err:
        make(snap)
    assert "segments.s.ge: expected int | float, got str" in [str(p) for p in err.value.problems]


def test_well_typed_python_flags_compile_as_their_documents(make_py_and_c):
    """Variant values and metadata are free-form (not converted: a tuple stays a value
    served as an array); int and float subclasses and tuples where lists go are what a
    document would hold. (Bytes are refused since the seventh audit: a JSON store wrote
    them as base64 text, so their type depended on the store.)"""
    when = Condition(attr="n", in_=("a", "b"))  # a tuple where the decoder gives a list
    flag = Flag(
        variants={"a": (1, 2), "b": "x", "c": 2**62},
        default="a",
        rules=[Rule(when=when, serve="b"), Rule(split={"a": 50, "c": 50.0})],
        prerequisites=["p", Prerequisite(flag="p", off=False)],
        schedule=Schedule(start=datetime(2020, 1, 1, tzinfo=timezone.utc)),
        metadata={"owner": uuid.uuid4(), "cost": Decimal("1.5"), "obj": object()},
    )
    snap = Snapshot(flags={"p": Flag(default="on"), "f": flag})
    document = encode_snapshot(
        Snapshot(flags={"p": Flag(default="on"), "f": msgspec.structs.replace(flag, metadata={})}),
        "msgpack",
    )
    for build in make_py_and_c:
        engine, decoded = build(snap), build(decode_snapshot(document, "msgpack"))
        assert engine.value("f", {"n": "a"}) == "x"
        assert engine.value("f", {"n": "c", "user_id": "u"}) in ((1, 2), 2**62)
        for user in range(50):
            ctx = {"user_id": str(user), "n": random.choice("abz")}
            assert engine.evaluate("f", ctx) == decoded.evaluate("f", ctx)


def test_decoded_snapshots_are_known_and_derived_ones_are_not():
    snap = snapshot_from_dict({"flags": {"f": {"default": "on"}}})
    assert is_decoded(snap)
    assert is_decoded(decode_snapshot(b'{"flags": {}}', "json"))
    assert not is_decoded(msgspec.structs.replace(snap, version=2))
    assert not is_decoded(Snapshot())


@pytest.mark.parametrize("field, value, got", [("flags", None, "None"), ("flags", "f", "str"),
                                               ("segments", [], "array")])  # fmt: skip
def test_a_python_built_snapshot_without_dicts_is_refused(make, field, value, got):
    snap = msgspec.structs.replace(Snapshot(flags={"f": Flag(default="on")}))
    msgspec.structs.force_setattr(snap, field, value)
    with pytest.raises(SnapshotError) as err:
        make(snap)
    assert [str(p) for p in err.value.problems] == [f"{field}: expected object, got {got}"]
    engine = make({"flags": {"f": {"default": "on"}}})
    with pytest.raises(SnapshotError):
        engine.swap(snap)  # the incremental path checks it too
    assert engine.is_enabled("f") is True


WEIRD = [None, "50", b"x", 1.5, True, 0, -1, [], {}, (), {"a": 1}, ["x"], 2**70, float("nan"),
         Decimal(1), object(), "on", "s0", Condition(attr="x", eq=1), Rule(serve="on")]  # fmt: skip


def _fields(obj) -> list:
    """Every (Struct, field name) in a snapshot's tree."""
    out, stack = [], [obj]
    while stack:
        o = stack.pop()
        if isinstance(o, msgspec.Struct):
            for name in o.__struct_fields__:
                out.append((o, name))
                stack.append(getattr(o, name))
        elif isinstance(o, dict):
            stack.extend(o.values())
        elif isinstance(o, list):
            stack.extend(o)
    return out


@settings(max_examples=examples(150), deadline=None, suppress_health_check=list(HealthCheck))
@given(snapshots(), st.randoms(use_true_random=False))
def test_any_wrongly_typed_field_is_a_snapshot_error_or_compiles_alike(make_py_and_c, doc, rnd):
    """One field anywhere in a Python-built snapshot set to a value of another type: both
    evaluators refuse it with a SnapshotError, or both compile it and answer alike."""
    snap = msgspec.structs.replace(snapshot_from_dict(doc))
    struct, name = rnd.choice(_fields(snap))
    msgspec.structs.force_setattr(struct, name, rnd.choice(WEIRD))
    results = []
    for build in make_py_and_c:
        try:
            engine = build(snap)
        except SnapshotError as exc:
            results.append(str(exc))
            continue
        ctxs = [{"user_id": "u1", "seg": "premium", "n": 1}, {"v": "1.2.3", "targeting_key": 5}]
        results.append([repr(engine.evaluate(k, c)) for k in snap.flags for c in ctxs])
    assert results[0] == results[1]
