"""Differential soak of whole flag sets that combine the core's features at once, on
both evaluators and the spec interpreter (which reads the decoded snapshot, not the
compiled tables, so it sees compiler bugs the evaluators share).

What the other generators leave out, drawn together in one snapshot:

* segments referencing segments (a chain and a diamond), segments holding
  ``prerequisite`` conditions, flags reading flags through both prerequisite kinds;
* schedules whose ends fall between microseconds, read by test clocks at and around the
  boundaries (and clocks that raise or answer odd types), on the spec interpreter too;
* rollouts and splits with flag and rule ``bucket_by`` lists, rule ``hash`` buckets and
  ``gates`` of every imported scheme, bucketing values at the edges of ints and texts;
* ``ignore_case`` with texts whose case folding changes their length ('ß', 'İ', 'ﬁ'),
  semantic versions with build metadata, leading zeros and numbers past 64 bits,
  numbers at a double's edges (2**53 +- 1 as int and float, -0.0, infinities), bools
  next to 0 and 1, str/int/float subclasses;
* every entry point against ``evaluate``: ``variant``, ``value``, ``is_enabled`` and
  ``evaluate_all`` answer what ``evaluate`` does; a bound context used again after
  ``Engine.swap``; the snapshot encoded to YAML, JSON and MessagePack and decoded again
  answers as the plain document.

The default run takes a few seconds; ``CFGCORE_FUZZ=soak`` runs
``CFGCORE_FUZZ_EXAMPLES`` examples (20,000 by default), as tests/test_core_fuzz.py.
"""

from __future__ import annotations

import copy
import math
import os
from datetime import datetime, timezone

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from cfgcore.engine import engine_class
from cfgcore.errors import SnapshotError
from cfgcore.snapshot import decode_snapshot, encode_snapshot, snapshot_from_dict
from tests.conftest import IMPLS
from tests.fuzz import examples
from tests.spec_interpreter import Interpreter, comparable
from tests.test_core_differential import SCHEMES

pytestmark = pytest.mark.skipif("c" not in IMPLS, reason="the compiled extension is not built")

SOAK = os.environ.get("CFGCORE_FUZZ") == "soak"
SOAK_EXAMPLES = int(os.environ.get("CFGCORE_FUZZ_EXAMPLES", "20000"))


def profile(count: int) -> settings:
    return settings(
        max_examples=SOAK_EXAMPLES if SOAK else examples(count),
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )


class S(str):
    def __eq__(self, other):  # lies: the evaluators read the base value (README)
        return not str.__eq__(self, other)

    __hash__ = str.__hash__


class I(int):  # noqa: E742 - short on purpose, as in the other differential tests
    def __str__(self):
        raise AssertionError("int subclass __str__ called")


class F(float):
    pass


ATTRS = ["x", "y", "user_id", "tk"]
FOLDING = ["ß", "SS", "ss", "straße", "STRASSE", "Straße", "İ", "i̇", "i", "I", "ı", "ﬁ", "fi",
           "FI", "ﬁle", "FILE", "İstanbul", "istanbul", "ǅ", "ς", "Σ", "ﬃ", "ﬀi", "K"]  # fmt: skip
NUMBERS = [0, -0.0, 0.0, 1, 1.0, True, False, -1, 0.5, 2**53, 2**53 - 1, 2**53 + 1,
           float(2**53), float(2**53 - 1), -(2**53) - 1, 2**63 - 1, -(2**63), 2**64, 1e308,
           float("inf"), float("-inf"), 5e-324]  # fmt: skip
SEMVER_CONSTS = ["1.0.0", "1.0.0+build.1", "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-0.3.7",
                 "1.0.0-x.7.z.92", "18446744073709551616.0.0", "1.0.0-alpha.18446744073709551616",
                 "v1.2.3", "0.0.0", "1.0.0-alpha+001", "1.0.0-rc.1+build.1.2",
                 "99999999999999999999999.0.0"]  # fmt: skip
SEMVER_TEXTS = [*SEMVER_CONSTS, "01.0.0", "1.0.0-01", "1.0.0+", "1.0.0-", "V1.0.0",
                "1.0.0-alpha..1", "1.0.0-x-y", "1.0.0+001", "1.0.0 ", "1.0.0\n", "vv1.0.0",
                "v1.0.0+build", "1.0.0-ALPHA", "1.0.0--", "1.0.0-alpha.-1", "١.0.0", "1.0",
                "1.0.0+b+c", "1.0.0-0", "1.0.0-00", "18446744073709551615.0.0",
                "1.0.0-alpha.18446744073709551615"]  # fmt: skip
IDS = ["u1", "", "0", "00", "-0", "42", "é", "\ud800", "a" * 300, 42, -42, 0, 2**53 + 1,
       2**64, -(2**64), 2**64 - 1, 10**30, True, 1.0, 42.0, "f5", "a1616101", I(42), S("42"),
       None]  # fmt: skip
CTX_VALUES = [*FOLDING, *NUMBERS, *SEMVER_TEXTS, *IDS, S("ß"), S("premium"), I(1), I(2**53 + 1),
              F(-0.0), F(0.5), float("nan"), 10**400, "premium", "PREMIUM", ["ß", 1, True],
              ("İ", 2**53 + 1), frozenset({"ﬁ", 0.5})]  # fmt: skip

# Schedule boundaries: whole seconds and microseconds, a local offset too.
T0 = 1_800_000_000
T1 = T0 + 3600.000001


def _iso(t: float, offset: str = "Z") -> str:
    dt = datetime.fromtimestamp(t, timezone.utc)
    text = dt.strftime("%Y-%m-%dT%H:%M:%S.%f")
    if offset == "Z":
        return text + "Z"
    sign = -1 if offset[0] == "-" else 1
    shift = sign * (int(offset[1:3]) * 3600 + int(offset[4:6]) * 60)
    local = datetime.fromtimestamp(t + shift, timezone.utc)
    return local.strftime("%Y-%m-%dT%H:%M:%S.%f") + offset


SCHEDULES = [
    {"start": _iso(T0)},
    {"end": _iso(T1)},
    {"start": _iso(T0), "end": _iso(T1)},
    {"start": _iso(T0, "+02:00"), "end": _iso(T1, "-05:30")},
]
CLOCKS = [T0 - 1, T0 - 1e-6, T0, T0 + 1e-6, T0 + 1, T1 - 1e-6, T1, T1 + 1e-6, 0, -1.0,
          float("nan"), float("inf"), float("-inf"), 10**400, I(T0), F(T0 + 0.5), True,
          "raise", "text"]  # fmt: skip


class Boom(Exception):
    pass


def _clock(value):
    if value == "raise":

        def clock():
            raise Boom

        return clock
    if value == "text":
        return lambda: str(T0 + 10)
    return lambda: value


@st.composite
def leaf(draw, attrs=ATTRS):
    op = draw(
        st.sampled_from(
            ["eq", "ne", "in", "not_in", "has_any", "lt", "le", "gt", "ge", "starts_with",
             "ends_with", "contains", "matches", "semver_eq", "semver_lt", "semver_gt", "exists"]
        )
    )  # fmt: skip
    cond: dict = {"attr": draw(st.sampled_from(attrs))}
    ci = draw(st.booleans())
    scalars = st.sampled_from(FOLDING) if ci else st.sampled_from([*FOLDING, *NUMBERS, "1.0.0"])
    if op in ("eq", "ne"):
        cond[op] = draw(scalars)
    elif op in ("in", "not_in", "has_any"):
        cond[op] = draw(st.lists(scalars, max_size=6))
    elif op in ("lt", "le", "gt", "ge"):
        cond[op] = draw(st.sampled_from([n for n in NUMBERS if not isinstance(n, bool)]))
        ci = False
    elif op in ("starts_with", "ends_with", "contains"):
        cond[op] = draw(st.sampled_from([*FOLDING, "s", "S", "f", "F", "i", "e", ""]))
    elif op == "matches":
        cond[op] = draw(st.sampled_from(["^ss", "ß", "^i", "fi", "^[0-9]+$", "^1\\.0", "İ", "."]))
    elif op.startswith("semver"):
        cond[op] = draw(st.sampled_from(SEMVER_CONSTS))
        ci = False
    else:
        cond[op] = draw(st.booleans())
        ci = False
    if ci:
        cond["ignore_case"] = True
    return cond


def _pre(draw, flags: dict, targets: list[str]):
    target = draw(st.sampled_from(targets))
    variants = list(flags[target].get("variants") or {"on": True, "off": False})
    boolean = flags[target].get("variants") is None or "on_variants" in flags[target]
    how = draw(st.sampled_from(["plain", "variant", "variants", "off"]))
    if how == "variants":
        return {"flag": target, "variants": draw(st.lists(st.sampled_from(variants), max_size=3))}
    if how == "off" and boolean:
        return {"flag": target, "off": True}
    if how == "plain" and boolean:
        return target
    return {"flag": target, "variant": draw(st.sampled_from(variants))}


def _combine(draw, parts: list):
    how = draw(st.sampled_from(["all", "any", "not", "one"]))
    if how == "not":
        return {"not": parts[0]}
    if how == "one":
        return parts[0]
    return {how: parts}


@st.composite
def hashing(draw):
    h: dict = {
        "scheme": draw(st.sampled_from(SCHEMES)),
        "by": draw(st.lists(st.sampled_from(ATTRS), min_size=1, max_size=3)),
        "space": draw(st.sampled_from([1, 2, 3, 100, 10000, 2**31 - 1])),
    }
    if draw(st.booleans()):
        h["salt"] = draw(st.sampled_from(["", "s:", "ß", "\u00e9\u0301"]))
    if draw(st.booleans()):
        h["suffix"] = draw(st.sampled_from(["", "x", "ﬁ"]))
    if draw(st.booleans()):
        h["seed"] = draw(st.sampled_from([0, 1, 86028157, 2**32 - 1]))
    return h


def _flag(draw, flags: dict, i: int, segments_ok: list[str], readable: list[str]) -> dict:
    boolean = draw(st.booleans())
    names = ["on", "off"] if boolean else [f"v{j}" for j in range(draw(st.integers(1, 3)))]
    flag: dict = {}
    if not boolean:
        flag["variants"] = {
            n: draw(st.sampled_from([True, False, 0, 1, -0.0, 2**53 + 1, "ß", None, {"k": n}, [n]]))
            for n in names
        }
        if draw(st.integers(0, 2)) == 0:
            flag["on_variants"] = draw(st.lists(st.sampled_from(names), unique=True))
    flag["default"] = draw(st.sampled_from(names))
    if draw(st.integers(0, 3)) == 0:
        flag["off_variant"] = draw(st.sampled_from(names))
    flag["enabled"] = draw(st.integers(0, 5)) > 0
    if draw(st.booleans()):
        flag["bucket_by"] = draw(
            st.sampled_from(ATTRS) | st.lists(st.sampled_from(ATTRS), min_size=1, max_size=3)
        )
    if draw(st.integers(0, 3)) == 0:
        flag["salt"] = draw(st.sampled_from(["", "salt", "İ", "a:b"]))
    if draw(st.integers(0, 2)) == 0:
        flag["schedule"] = draw(st.sampled_from(SCHEDULES))
    if readable and draw(st.integers(0, 2)) == 0:
        flag["prerequisites"] = [
            _pre(draw, flags, readable) for _ in range(draw(st.integers(1, 2)))
        ]
    rules = []
    for r in range(draw(st.integers(0, 4))):
        rule: dict = {}
        parts = []
        for _ in range(draw(st.integers(0, 2))):
            kind = draw(st.sampled_from(["leaf", "segment", "prerequisite"]))
            if kind == "segment" and segments_ok:
                parts.append({"segment": draw(st.sampled_from(segments_ok))})
            elif kind == "prerequisite" and readable:
                parts.append({"prerequisite": _pre(draw, flags, readable)})
            else:
                parts.append(draw(leaf()))
        if parts:
            rule["when"] = _combine(draw, parts)
        if draw(st.integers(0, 4)) == 0:
            h = draw(hashing())
            lo = draw(st.integers(0, h["space"]))
            rule["gates"] = [{"hash": h, "lo": lo, "hi": draw(st.integers(lo, h["space"]))}]
        kind = draw(st.sampled_from(["serve", "rollout", "split", "hashed"]))
        if kind == "hashed":
            h = draw(hashing())
            room, buckets = h["space"], []
            for w in draw(st.lists(st.integers(0, h["space"]), min_size=1, max_size=3)):
                w = min(w, room)
                room -= w
                buckets.append([draw(st.none() | st.sampled_from(names)), w])
            rule["hash"], rule["buckets"] = h, buckets
        elif kind == "split":
            cuts = sorted(draw(st.lists(st.integers(0, 100000), min_size=len(names) - 1,
                                        max_size=len(names) - 1)))  # fmt: skip
            points = [0, *cuts, 100000]
            rule["split"] = {n: (points[j + 1] - points[j]) / 1000 for j, n in enumerate(names)}
        else:
            rule["serve"] = draw(st.sampled_from(names))
            if kind == "rollout":
                rule["rollout"] = draw(st.sampled_from([0, 0.001, 0.0005, 0.0015, 50, 99.9995,
                                                        100, 12.3456, 1e-9]))  # fmt: skip
        if kind in ("rollout", "split") and draw(st.booleans()):
            rule["bucket_by"] = draw(
                st.sampled_from(ATTRS) | st.lists(st.sampled_from(ATTRS), min_size=1, max_size=3)
            )
        if draw(st.integers(0, 3)) == 0:
            rule["name"] = f"r{r}"
        rules.append(rule)
    if rules or draw(st.booleans()):
        flag["rules"] = rules
    return flag


@st.composite
def combined_snapshots(draw):
    """Base flags b0, b1 (leaf conditions only), segments s0..s3 (s1 reads s0, s2 reads
    s0 and s1, s3 reads s1 and s2: a chain and a diamond; any may read b0/b1), then
    flags f0..f3 reading segments, base flags and earlier flags."""
    flags: dict = {}
    for b in ("b0", "b1"):
        flag = _flag(draw, flags, 0, [], [])
        flags[b] = flag
    segments: dict = {}
    for s in range(4):
        parts = [draw(leaf()) for _ in range(draw(st.integers(0, 2)))]
        parts += [{"segment": f"s{j}"} for j in range(max(0, s - 2), s)]
        if draw(st.integers(0, 2)) == 0:
            parts.append({"prerequisite": _pre(draw, flags, ["b0", "b1"])})
        if not parts:
            parts = [draw(leaf())]
        segments[f"s{s}"] = _combine(draw, draw(st.permutations(parts)))
    for i in range(draw(st.integers(1, 4))):
        readable = ["b0", "b1", *(f"f{j}" for j in range(i))]
        flags[f"f{i}"] = _flag(draw, flags, i, list(segments), readable)
    return {"version": draw(st.integers(1, 3)), "segments": segments, "flags": flags}


contexts = st.dictionaries(st.sampled_from(ATTRS), st.sampled_from(CTX_VALUES), max_size=4)


def _boolean(flag: dict) -> bool:
    variants = flag.get("variants")
    if variants is None or "on_variants" in flag:
        return True
    return all(v is True or v is False for v in variants.values())


def _same(a, b) -> bool:
    if a is b:
        return True
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and repr(a) == repr(b))
    return a == b and type(a) is type(b)


def _engines(snapshot, clock):
    try:
        engines = [engine_class(IMPLS[k]).from_snapshot(snapshot) for k in ("c", "py")]
    except SnapshotError:
        return None
    for e in engines:
        e.set_clock(_clock(clock))
    return engines


def _check_entry_points(engine, snapshot: dict, key: str, ctx, default) -> None:
    """variant / value / is_enabled answer what evaluate does, on one engine."""
    d = engine.evaluate(key, ctx)
    assert engine.variant(key, ctx) == d.variant
    assert _same(engine.value(key, ctx), d.value)
    with_default = engine.evaluate(key, ctx, default)
    assert _same(engine.value(key, ctx, default), with_default.value)
    if key not in snapshot["flags"]:
        assert d.error_code == "FLAG_NOT_FOUND" and engine.is_enabled(key, ctx) is False
        return
    flag = snapshot["flags"][key]
    on = d.variant in flag["on_variants"] if "on_variants" in flag else d.value is True
    assert engine.is_enabled(key, ctx) is (on and _boolean(flag)), (key, d)


@profile(80)
@given(
    combined_snapshots(),
    st.lists(contexts, min_size=1, max_size=4),
    st.sampled_from(CLOCKS),
    st.sampled_from([None, True, 0, "s", -0.0, {"a": 1}, [1], I(3), S("x")]),
)
def test_combined_snapshots_agree_with_the_spec_on_every_entry_point(
    snapshot, ctxs, clock, default
):
    engines = _engines(snapshot, clock)
    assume(engines is not None)
    c, p = engines
    spec = Interpreter(snapshot_from_dict(snapshot), clock=_clock(clock))
    keys = [*snapshot["flags"], "missing"]
    for ctx in ctxs:
        bound_c, bound_p = c.context(ctx), p.context(ctx)
        for key in keys:
            want = comparable(spec.evaluate(key, ctx, default))
            for cc, pc in ((ctx, ctx), (bound_c, bound_p)):
                dc, dp = c.evaluate(key, cc, default), p.evaluate(key, pc, default)
                assert dc == dp, (key, ctx, dc, dp)
                assert comparable(dc) == want, (key, ctx, dc, want)
                for engine, arg in ((c, cc), (p, pc)):
                    _check_entry_points(engine, snapshot, key, arg, default)
        everything = spec.evaluate_all(ctx)
        for engine, arg in ((c, ctx), (c, bound_c), (p, ctx), (p, bound_p)):
            got = engine.evaluate_all(arg)
            assert list(got) == list(everything)
            assert all(_same(got[k], everything[k]) for k in got), (got, everything)
            assert all(_same(got[k], engine.value(k, arg)) for k in got)


@profile(25)
@given(
    combined_snapshots(),
    combined_snapshots(),
    st.lists(contexts, min_size=1, max_size=3),
    st.sampled_from(CLOCKS),
    st.data(),
)
def test_contexts_bound_before_a_swap_answer_as_fresh_ones(first, donor, ctxs, clock, data):
    """A Context bound on one snapshot and used after Engine.swap (incremental compile:
    ``previous=``) to another and back answers as a plain dict and as the spec. The
    other snapshot is the donor, or the first with one flag or segment taken from the
    donor (so the incremental compile reuses the other flags' tables)."""
    second = copy.deepcopy(first)
    how = data.draw(st.sampled_from(["all", "flag", "segment"]))
    if how == "all":
        second = donor
    elif how == "flag":
        key = data.draw(st.sampled_from(sorted(set(first["flags"]) & set(donor["flags"]))))
        second["flags"][key] = donor["flags"][key]
    else:
        key = data.draw(st.sampled_from(sorted(donor["segments"])))
        second["segments"][key] = donor["segments"][key]
    engines = _engines(first, clock)
    assume(engines is not None)
    try:
        snaps = [snapshot_from_dict(first), snapshot_from_dict(second)]
        engines[0].compile(second)
    except SnapshotError:
        assume(False)
    specs = [Interpreter(s, clock=_clock(clock)) for s in snaps]
    bound = [[e.context(ctx) for ctx in ctxs] for e in engines]
    for e, contexts_of_e in zip(engines, bound, strict=True):
        for k in contexts_of_e:
            e.evaluate_all(k)  # bind on the first snapshot
    for step, doc in enumerate([second, first, second]):
        spec = specs[(step + 1) % 2]
        for e in engines:
            e.swap(e.compile(doc, previous=e.snapshot()))
        for ctx, bc, bp in zip(ctxs, *bound, strict=True):
            for key in [*doc["flags"], "missing"]:
                want = comparable(spec.evaluate(key, ctx))
                got_c, got_p = engines[0].evaluate(key, bc), engines[1].evaluate(key, bp)
                assert got_c == got_p == engines[0].evaluate(key, ctx), (step, key, ctx)
                assert comparable(got_c) == want, (step, key, ctx, got_c, want)
            assert engines[0].evaluate_all(bc) == engines[1].evaluate_all(bp)


def _encoded(snapshot: dict, fmt: str) -> bytes:
    return encode_snapshot(snapshot_from_dict(snapshot), fmt)


@profile(25)
@given(
    combined_snapshots(),
    st.lists(contexts, min_size=1, max_size=3),
    st.sampled_from(["yaml", "json", "msgpack"]),
    st.sampled_from(CLOCKS[:8]),
)
def test_encoded_and_decoded_snapshots_answer_as_the_document(snapshot, ctxs, fmt, clock):
    engines = _engines(snapshot, clock)
    assume(engines is not None)
    try:
        data = _encoded(snapshot, fmt)
    except SnapshotError as exc:  # refusals with a reason: no JSON infinity, no 65-bit int
        assert ("cannot be written in JSON" in str(exc)) is (fmt == "json"), exc
        assert ("out of range for MessagePack" in str(exc)) is (fmt == "msgpack"), exc
        assume(False)
    for impl, direct in zip(("c", "py"), engines, strict=True):
        again = engine_class(IMPLS[impl]).from_bytes(data, fmt, file=f"soak.{fmt}")
        again.set_clock(_clock(clock))
        spec = Interpreter(decode_snapshot(data, fmt), clock=_clock(clock))
        for ctx in ctxs:
            for key in snapshot["flags"]:
                got = again.evaluate(key, ctx)
                assert got == direct.evaluate(key, ctx), (fmt, key, ctx)
                assert comparable(got) == comparable(spec.evaluate(key, ctx)), (fmt, key, ctx)
    # the decoded snapshot is the document: encoding it again gives the same bytes
    assert encode_snapshot(decode_snapshot(data, fmt), fmt) == data


def _three_way(flags: dict, values: list, attrs: tuple[str, ...] = ("x",)) -> None:
    """Each value under ``attrs``: both evaluators (dict and bound) serve what the spec does."""
    doc = {"flags": flags}
    c = engine_class(IMPLS["c"]).from_snapshot(doc)
    p = engine_class(IMPLS["py"]).from_snapshot(doc)
    spec = Interpreter(snapshot_from_dict(doc))
    for value in values:
        ctx = {a: value[i] if isinstance(value, tuple) else value for i, a in enumerate(attrs)}
        want = spec.evaluate_all(ctx)
        for got in (c.evaluate_all(ctx), c.evaluate_all(c.context(ctx)), p.evaluate_all(ctx)):
            wrong = {k: (got[k], want[k]) for k in want if not _same(got[k], want[k])}
            assert not wrong, (value, {k: flags[k] for k in wrong})


ORDERING = ("lt", "le", "gt", "ge")


def test_every_operator_and_constant_at_the_edges_against_every_value():
    """The grid the generators sample from, in full: each operator with each constant
    (case folding that changes length, 2**53 +- 1 as int and float, -0.0, infinities,
    bools, semantic versions), each value (subclasses, arrays for has_any)."""
    consts = [*FOLDING, *NUMBERS, "1.0.0", "", "s", "f", "FI"]
    conds = []
    for op in ["eq", "ne", "in", "not_in", "has_any", "lt", "le", "gt", "ge", "starts_with",
               "ends_with", "contains", "semver_eq", "semver_lt", "semver_gt"]:  # fmt: skip
        listed = op in ("in", "not_in", "has_any")
        for const in SEMVER_CONSTS if op.startswith("semver") else consts:
            if op in ORDERING and isinstance(const, (str, bool)):
                continue
            if op in ("starts_with", "ends_with", "contains") and not isinstance(const, str):
                continue
            conds.append({"attr": "x", op: [const] if listed else const})
            if isinstance(const, str) and op not in ORDERING and not op.startswith("semver"):
                conds.append({"attr": "x", op: [const] if listed else const, "ignore_case": True})
        if listed:
            conds += [{"attr": "x", op: NUMBERS}, {"attr": "x", op: FOLDING, "ignore_case": True}]
    assert len(conds) > 650
    flags = {f"f{i}": {"default": "off", "rules": [{"when": c, "serve": "on"}]}
             for i, c in enumerate(conds)}  # fmt: skip
    values = [*CTX_VALUES, *([v] for v in NUMBERS), *([v] for v in FOLDING), tuple(FOLDING)]
    _three_way(flags, [v if not isinstance(v, tuple) else (v,) for v in values])


def test_every_hashing_scheme_buckets_edge_ids_as_the_spec():
    """Rule buckets and gates of every scheme (spaces 1, 3 and the largest), flag and rule
    ``bucket_by`` lists: ids at int and text edges, bools and floats skipped."""
    flags: dict = {}
    for i, (scheme, space, salt) in enumerate(
        (s, sp, sa) for s in SCHEMES for sp in (1, 3, 2**31 - 1) for sa in ("", "ß")
    ):
        h = {"scheme": scheme, "by": ["x", "y"], "space": space, "salt": salt, "suffix": "ﬁ"}
        half = space // 2
        buckets = [["a", half], [None, 1], ["b", space - half - 1]] if space > 1 else [["a", 1]]
        flags[f"h{i}"] = {"variants": {"a": 1, "b": 2, "c": 3}, "default": "c",
                          "rules": [{"hash": h, "buckets": buckets}]}  # fmt: skip
        flags[f"g{i}"] = {"default": "off",
                          "rules": [{"gates": [{"hash": h, "lo": half // 3, "hi": half}],
                                     "serve": "on"}]}  # fmt: skip
    for i, by in enumerate((["x"], ["x", "y"], ["y", "x"])):
        flags[f"r{i}"] = {"default": "off", "bucket_by": by[::-1], "salt": "İ",
                          "rules": [{"bucket_by": by, "rollout": 50, "serve": "on"}]}  # fmt: skip
        flags[f"s{i}"] = {"default": "off", "bucket_by": by,
                          "rules": [{"split": {"on": 33.333, "off": 66.667}}]}  # fmt: skip
    ids = [*IDS, 1.5, float("nan"), 10**4400, -(10**4299), "\udfff", "e\u0301", 2**63, "0a"]
    _three_way(flags, [(x, y) for x in ids for y in (None, "u1", 7)], ("x", "y"))
