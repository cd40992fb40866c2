"""Hostile-input soak of the compiled core, run by hand (pytest does not collect it):
the MessagePack duplicate-key scan against the reference, the JSON section scan
against the reference, then the evaluator with hostile contexts against the reference.
Meant for an AddressSanitizer build (see "Data, tests, benchmarks" in
docs/architecture.md); it runs on a normal build too.

    python tests/asan_fuzz.py [--examples N] [--only scan|split|context]

Exit status 0: both evaluators agreed on every input and nothing crashed or hung.
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import math
import random
import struct
import sys
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cfgcore import _eval as c_eval  # noqa: E402
from cfgcore import _eval_py as py_eval  # noqa: E402

HANG_S = 300  # the process dumps its stack and exits when one batch takes longer
COUNTS: dict[str, int] = {}


def _count(name: str, n: int = 1) -> None:
    COUNTS[name] = COUNTS.get(name, 0) + n


def _watchdog() -> None:
    faulthandler.dump_traceback_later(HANG_S, exit=True)


# -- MessagePack, every header width -----------------------------------------------------


def _head(kind: str, n: int, width: int | None) -> bytes:
    """A container or text header for ``n`` items/bytes; width None: the fix form."""
    fix = {"map": 0x80, "arr": 0x90, "str": 0xA0}
    heads = {
        "map": {2: 0xDE, 4: 0xDF},
        "arr": {2: 0xDC, 4: 0xDD},
        "str": {1: 0xD9, 2: 0xDA, 4: 0xDB},
        "bin": {1: 0xC4, 2: 0xC5, 4: 0xC6},
    }
    if width is None:
        return bytes([fix[kind] | n])
    return bytes([heads[kind][width]]) + n.to_bytes(width, "big")


def _widths(kind: str, n: int) -> list[int | None]:
    limit = {"map": 16, "arr": 16, "str": 32}.get(kind, 0)
    small = [None] if n < limit else []
    return small + [
        w for w in ((1, 2, 4) if kind in ("str", "bin") else (2, 4)) if n < 1 << (8 * w)
    ]


INT_FORMS = list(zip(range(0xCC, 0xD4), ">B >H >I >Q >b >h >i >q".split(), strict=True))


@st.composite
def ints(draw) -> bytes:
    edges = [0, 1, -1, 127, 128, -32, -33, 255, 256, 2**15, -(2**15), 2**31, 2**63, -(2**63)]
    v = draw(st.sampled_from(edges + [2**63 - 1, 2**64 - 1]) | st.integers(-(2**63), 2**64 - 1))
    forms = [bytes([0xE0 | (v & 0x1F)]) if -32 <= v < 0 else bytes([v])] if -32 <= v <= 127 else []
    for head, fmt in INT_FORMS:
        try:
            forms.append(bytes([head]) + struct.pack(fmt, v))
        except struct.error:
            pass
    return draw(st.sampled_from(forms))


@st.composite
def floats(draw) -> bytes:
    edges = [0.0, -0.0, 1.0, -1.0, 1.5, math.nan, math.inf, -math.inf, 2.0**63, 2.0**64]
    x = draw(st.sampled_from(edges + [-(2.0**63), 2.0**53 + 2]) | st.floats())
    if draw(st.booleans()):
        try:
            return b"\xca" + struct.pack(">f", x)
        except OverflowError:
            pass
    return b"\xcb" + struct.pack(">d", x)


@st.composite
def texts(draw, kind: str = "str") -> bytes:
    raw = draw(st.sampled_from([b"", b"a", b"on", b"\xc3\xa9"]) | st.binary(max_size=40))
    return _head(kind, len(raw), draw(st.sampled_from(_widths(kind, len(raw))))) + raw


@st.composite
def exts(draw) -> bytes:
    t = draw(st.integers(-128, 127)).to_bytes(1, "big", signed=True)
    size = draw(st.sampled_from([1, 2, 4, 8, 16, 0, 3, 20]))
    data = draw(st.binary(min_size=size, max_size=size))
    forms = [
        bytes([0xC7]) + bytes([size]),
        bytes([0xC8]) + size.to_bytes(2, "big"),
        bytes([0xC9]) + size.to_bytes(4, "big"),
    ]
    if size in (1, 2, 4, 8, 16):
        forms.append(bytes([0xD4 + (1, 2, 4, 8, 16).index(size)]))
    return draw(st.sampled_from(forms)) + t + data


scalars = (
    ints()
    | floats()
    | texts()
    | texts("bin")
    | exts()
    | st.sampled_from([b"\xc0", b"\xc2", b"\xc3"])
)
# keys from a small pool, so maps repeat keys in several spellings
POOL = "01 cc01 d30000000000000001 c3 cb3ff0000000000000 ca3f800000 a161 d90161 da000161"
POOL += " db0000000161 c40161 c0 c2 00 9101 d40500 cb7ff8000000000000 ff d0ff"
pool_keys = st.sampled_from([bytes.fromhex(h) for h in POOL.split()])


def _containers(inner):
    @st.composite
    def build(draw) -> bytes:
        kind = draw(st.sampled_from(["map", "arr"]))
        n = draw(st.integers(0, 20))
        width = draw(st.sampled_from(_widths(kind, n)))
        if kind == "arr":
            return _head(kind, n, width) + b"".join(draw(inner) for _ in range(n))
        keys = st.one_of(pool_keys, scalars, inner)
        return _head(kind, n, width) + b"".join(draw(keys) + draw(inner) for _ in range(n))

    return build()


documents = st.recursive(scalars, _containers, max_leaves=60)


def _agree(data: bytes) -> None:
    c = c_eval.msgpack_duplicate_at(data)
    p = py_eval.msgpack_duplicate_at(data)
    assert c == p, (c, p, data[:200].hex())
    assert c == -1 or 0 < c < len(data), (c, data[:200].hex())
    _count("scan inputs")
    if c >= 0:
        _count("scan inputs with a repeat")


def _mutations(doc: bytes, rng: random.Random):
    """Every truncation, bit flips, bytes replaced by length heads and huge lengths."""
    for cut in range(len(doc)):
        yield doc[:cut]
    yield doc + doc[:1]
    for _ in range(32):
        b = bytearray(doc)
        for _ in range(rng.randint(1, 3)):
            if b:
                b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
        yield bytes(b)
    huge = [
        b"\xff\xff\xff\xff",
        b"\x7f\xff\xff\xff",
        b"\x80\x00\x00\x00",
        b"\x00\x01\x00\x00",
        b"\xff\xff",
        b"\x00\x00\xff\xff",
    ]
    for _ in range(16):
        if not doc:
            break
        at = rng.randrange(len(doc))
        head = rng.choice(
            [
                0xDF,
                0xDE,
                0xDD,
                0xDC,
                0xDB,
                0xDA,
                0xD9,
                0xC6,
                0xC5,
                0xC4,
                0xC9,
                0xC8,
                0xC7,
                0x8F,
                0x9F,
                0xBF,
            ]
        )
        yield doc[:at] + bytes([head]) + rng.choice(huge) + doc[at + 1 :]
        yield doc[:at] + bytes([head]) + doc[at + 1 :]


def scan_fuzz(examples: int) -> None:
    rng = random.Random(20261204)

    @settings(
        max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    @given(documents)
    def one(doc):
        _watchdog()
        _agree(doc)
        _count("scan documents")
        for bad in _mutations(doc, rng):
            _agree(bad)

    one()
    _watchdog()
    # fixed hostile shapes
    deep = [b"\x81\xa1x" * d + b"\x82\xa1a\x01\xa1a\x01" for d in (998, 999, 1000, 1001, 5000)]
    deep += [b"\x91" * d + b"\x90" for d in (999, 1000, 1001, 100_000)]
    deep += [b"\xdd\x00\x00\x00\x01" * 2000 + b"\xc0", b"\xdf\x00\x00\x00\x01\xc0" * 2000 + b"\xc0"]
    claims = [
        b"\xdf\xff\xff\xff\xff" + b"\x00" * 64,
        b"\xdf\x00\x0f\x42\x40" + b"\x01\x01" * 1000,
        b"\xdd\xff\xff\xff\xff" + b"\xc0" * 100,
        b"\xdb\xff\xff\xff\xff" + b"a" * 10,
        b"\xc9\xff\xff\xff\xff\x01",
        b"\xc9\x00\x00\x00\x00",
        b"\xc7\x00",
        b"\xd8\x01",
    ]
    # a map of 2**20 distinct keys then one repeat; nested big maps closing and reopening
    big = b"".join(b"\xce" + i.to_bytes(4, "big") + b"\xc0" for i in range(1 << 20))
    claims.append(b"\xdf" + (1 << 20).to_bytes(4, "big") + big)
    claims.append(b"\xdf" + ((1 << 20) + 1).to_bytes(4, "big") + big + b"\xce\x00\x00\x12\x34\xc0")
    inner = b"\xde\x01\x00" + b"".join(b"\xcd" + i.to_bytes(2, "big") + b"\xc0" for i in range(256))
    claims.append(b"\xdc\x01\x00" + inner * 256)
    claims.append(
        b"\xde\x01\x00" + b"".join(b"\xcd" + i.to_bytes(2, "big") + inner for i in range(256))
    )
    # 1,000 nested maps of 20 keys (each indexed), the innermost repeating a key
    level = b"".join(bytes([0xA2, 0x6B, 0x30 + i]) + b"\xc0" for i in range(19))
    nest = (b"\xde\x00\x14" + level + b"\xa1z") * 999 + b"\x82\xa1a\x01\xa1a\x01"
    claims += [nest, nest[:-1]]
    for data in deep + claims:
        _agree(data)
        for cut in (1, 2, 5, len(data) // 2, len(data) - 1):
            _agree(data[:cut])
    faulthandler.cancel_dump_traceback_later()


# -- the JSON section scan ---------------------------------------------------------------

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=6), inner, max_size=5)
    ),
    max_leaves=30,
)


def _sections(impl, data: bytes):
    found = impl.json_sections(data)
    return None if found is None else [None if part is None else list(part) for part in found]


def _agree_json(data: bytes) -> None:
    c, p = _sections(c_eval, data), _sections(py_eval, data)
    assert c == p, (c, p, data[:200])
    _count("split inputs")
    if c is not None:
        _count("split inputs answered")


def split_fuzz(examples: int) -> None:
    rng = random.Random(20261207)
    specials = [b'"', b"\\", b"{", b"}", b"[", b"]", b",", b":", b" ", b"\\u", b"\\ud800", b"\x00"]

    @settings(
        max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    @given(
        flags=st.dictionaries(st.text(max_size=6), _json_values, max_size=6),
        extra=st.dictionaries(st.text(max_size=6), _json_values, max_size=3),
        indent=st.sampled_from([None, 0, 1, "\t", " \r\n"]),
    )
    def one(flags, extra, indent):
        _watchdog()
        doc = json.dumps({**extra, "flags": flags, "segments": {}}, indent=indent).encode()
        _agree_json(doc)
        for cut in range(len(doc)):
            _agree_json(doc[:cut])
        for _ in range(32):
            b = bytearray(doc)
            at = rng.randrange(len(b))
            if rng.random() < 0.5:
                b[at] ^= 1 << rng.randrange(8)
            else:
                b[at:at] = rng.choice(specials)
            _agree_json(bytes(b))

    one()
    _watchdog()
    for data in (b"{" * 100_000, b"[" * 100_000 + b"]" * 100_000, b'{"flags": ' + b"[" * 50_000):
        _agree_json(data)
    faulthandler.cancel_dump_traceback_later()


# -- the evaluator with hostile contexts -------------------------------------------------


class Boom(Exception):
    pass


class RaisingNumber:
    """An object whose conversions raise."""

    def __index__(self):
        raise Boom("index")

    def __float__(self):
        raise Boom("float")

    def __int__(self):
        raise Boom("int")


class BigIndex:
    def __index__(self):
        return 2**100

    def __float__(self):
        return math.nan


class Mutator(str):
    """An attribute name that hashes as its text and, compared, changes the context
    it is a key of (during binding)."""

    def __new__(cls, text, target):
        self = super().__new__(cls, text)
        self.target = target
        return self

    __hash__ = str.__hash__

    def __eq__(self, other):
        ctx = self.target
        if len(ctx) < 64:
            ctx[f"junk{len(ctx)}"] = 1
        else:
            ctx.clear()
        return str.__eq__(self, other)


OPS = "eq ne in not_in has_any lt le gt ge starts_with ends_with contains matches".split()
OPS += ["semver_eq", "semver_lt", "semver_gt", "exists"]
CTX_ATTRS = ["seg", "n", "v", "user_id", "targeting_key"]


def every_operator_snapshot() -> dict:
    """A flag for each operator on each attribute (with and without ignore_case), a
    flag bucketing by each attribute under each hashing scheme, a has_any of 2,000
    values."""
    # fmt: off
    const = {"eq": "premium", "ne": 7, "in": ["premium", 7, 2.5, True], "not_in": ["x", 1],
             "has_any": ["premium", "EU", 1, 0.5] + [f"v{i}" for i in range(2000)],
             "lt": 10, "le": 2.5, "gt": -1, "ge": 2**53, "starts_with": "pre",
             "ends_with": "ium", "contains": "emi", "matches": "^p.*m$", "semver_eq": "1.2.3",
             "semver_lt": "2.0.0", "semver_gt": "0.0.1-rc.1", "exists": True}
    # fmt: on
    flags: dict = {}
    for op in OPS:
        for a in CTX_ATTRS:
            cond = {"attr": a, op: const[op]}
            flags[f"{op}_{a}"] = {"default": "off", "rules": [{"when": cond, "serve": "on"}]}
            if op in ("eq", "in", "has_any", "starts_with", "ends_with", "contains", "matches"):
                text = (
                    [v for v in const[op] if isinstance(v, str)]
                    if op in ("in", "has_any")
                    else None
                )
                ci = {**cond, "ignore_case": True, **({op: text} if text else {})}
                flags[f"{op}_{a}_ci"] = {"default": "off", "rules": [{"when": ci, "serve": "on"}]}
    schemes = "murmur3 flagd_v2 flagd_v3 flagd_v3_pair flagd_v3_cbor growthbook_v1 growthbook_v2"
    for a in CTX_ATTRS:
        flags[f"roll_{a}"] = {
            "default": "off",
            "bucket_by": [a],
            "rules": [{"rollout": 50, "serve": "on"}],
        }
        for scheme in schemes.split():
            h = {"scheme": scheme, "by": [a, "user_id"], "space": 100}
            flags[f"hash_{scheme}_{a}"] = {
                "variants": {"a": 1, "b": 2},
                "default": "a",
                "rules": [{"hash": h, "buckets": [["a", 50], ["b", 50]]}],
            }
    return {"flags": flags}


BIG_LIST = [f"v{i}" for i in range(100_000)]
BIG_MIXED = [i if i % 3 else 2**70 + i for i in range(100_000)] + ["premium"]
HUGE = "p" + "r" * (64 << 10) + "emium"  # the reference hashes it in Python


def _hostile_values():
    from tests.test_core_hostile import EvilFloat, EvilInt, EvilStr, FakeClass, NoRepr

    # fmt: off
    fixed = [EvilStr("premium"), EvilStr("1.2.3"), EvilInt(7), EvilInt(2**80), EvilFloat(2.5),
             FakeClass(), NoRepr(), RaisingNumber(), BigIndex(), math.nan, -math.nan, math.inf,
             -0.0, 2**63, 2**64, -(2**63) - 1, 2**64 + 7, 10**400, -(10**400), 2**53 + 1,
             "\ud800", HUGE, "x" * 5000, b"premium", BIG_LIST, BIG_MIXED, tuple(BIG_LIST),
             frozenset(BIG_LIST[:1000]), [EvilStr("premium"), math.nan, 10**400, None],
             {"a": 1}, None, True, False, "premium", "PREMIUM", "1.2.3", 7, 2.5]
    # fmt: on
    return (
        st.integers(0, len(fixed) - 1).map(fixed.__getitem__)
        | st.text(max_size=8)
        | st.integers()
        | st.floats()
        | st.lists(st.integers() | st.text(max_size=3), max_size=5)
    )


@st.composite
def hostile_contexts(draw):
    ctx = draw(st.dictionaries(st.sampled_from(CTX_ATTRS), _hostile_values(), max_size=5))
    if draw(st.booleans()):
        from tests.test_core_hostile import CollidingKey

        ctx[CollidingKey(draw(st.sampled_from(CTX_ATTRS)))] = 1
    return ctx


def _results(engine, ctx, keys):
    bound = engine.context(ctx)
    out = [engine.evaluate_all(ctx), engine.evaluate_all(bound)]
    for i, key in enumerate(keys):
        out += [engine.variant(key, bound), engine.evaluate(key, bound)]
        if i % 8 == 0:  # a dict is bound again on each call (the reference: in Python)
            out.append(engine.is_enabled(key, ctx))
    return out


def context_fuzz(examples: int) -> None:
    from cfgcore.engine import engine_class
    from tests.test_core_differential import snapshots
    from tests.test_core_hostile import CollidingKey

    classes = [engine_class(c_eval), engine_class(py_eval)]
    fixed = [cls.from_snapshot(every_operator_snapshot()) for cls in classes]
    keys = sorted(fixed[0].snapshot().keys)

    @settings(
        max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    @given(hostile_contexts(), st.data())
    def one(ctx, data):
        snap = data.draw(snapshots()) if data.draw(st.integers(0, 4)) == 0 else None
        mutate = data.draw(st.integers(1, len(CTX_ATTRS)))
        mutables = []
        for _ in fixed:  # a context whose keys change it while it is read
            mutable: dict = dict(ctx)
            for a in CTX_ATTRS[:mutate]:
                mutable.pop(a, None)  # else the plain key stays, with this value
                mutable[Mutator(a, mutable)] = "premium"
            mutables.append(mutable)
        _watchdog()
        CollidingKey.armed = True
        try:
            got = [_results(e, ctx, keys) for e in fixed]
            assert got[0] == got[1], ctx
            _count("contexts on the every-operator snapshot")
            if snap is not None:
                engines = [cls.from_snapshot(snap) for cls in classes]
                k = sorted(engines[0].snapshot().keys)
                got = [_results(e, ctx, k) for e in engines]
                assert got[0] == got[1], (ctx, snap)
                _count("contexts on random snapshots")
            for e, mutable in zip(fixed, mutables, strict=True):  # no crash, no raise
                _results(e, mutable, keys)
                _count("self-mutating contexts")
        finally:
            CollidingKey.armed = False

    one()
    # compiled only: the reference takes minutes to hash these
    for value in ("p" + "r" * (2 << 20) + "emium", "\u00e9" * (1 << 20), 10**20000):
        _watchdog()
        ctx = dict.fromkeys(CTX_ATTRS, value)
        _results(fixed[0], ctx, keys)
        _count("compiled-only huge contexts")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=2000)
    parser.add_argument("--only", choices=["scan", "split", "context"])
    args = parser.parse_args()
    if args.only in (None, "scan"):
        scan_fuzz(args.examples)
    if args.only in (None, "split"):
        split_fuzz(args.examples)
    if args.only in (None, "context"):
        context_fuzz(args.examples)
    for name, n in COUNTS.items():
        print(f"{name}: {n:,}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
