"""Differential fuzzing of the two evaluators, second campaign: what the earlier
generators (test_core_differential, test_fix10_eval_fuzz, test_audit*_eval_differential)
leave out, each found to agree or fixed (kept so that they keep agreeing).

* flag keys and attribute names drawn from all of Unicode (empty, dots, case-folding
  corners, astral characters, very long ones), looked up by equal strings that are not
  the same object, and flag keys the snapshot does not hold;
* context values of numeric types other than int/float (numpy scalars, Decimal,
  Fraction, complex), bytes-likes, numbers at the edges of a double and of 64 bits,
  huge strings, nested containers, and str/int/float subclasses whose methods lie;
* rollouts and splits with weights at the edges of the bucket space, hashed buckets of
  every width, prerequisite chains as long as the documents allow, schedules read by a
  clock at their edges (and one that answers oddly);
* every entry point on a dict and on a bound Context, evaluate_all against each
  flag's own answer, and the same documents compiled in full, incrementally from an
  earlier version (``Engine.compile(previous=...)``), and from the tables of a copy:
  all must answer alike, and the incremental compile must never raise where the full
  one does not.

``CFGCORE_FUZZ2=N`` runs N examples per target (the campaign ran thousands).
"""

from __future__ import annotations

import contextlib
import math
import os
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfgcore.compiler import compile_incremental, compile_snapshot
from cfgcore.engine import engine_class
from cfgcore.errors import SnapshotError
from cfgcore.snapshot import snapshot_from_dict
from tests.conftest import IMPLS
from tests.fuzz import examples
from tests.spec_interpreter import Interpreter, comparable
from tests.test_core_differential import hashings
from tests.test_fix10_eval_fuzz import HOSTILE, LyingFloat, LyingInt, LyingStr, _details, _norm
from tests.texts import any_text

np = pytest.importorskip("numpy")

pytestmark = pytest.mark.skipif("c" not in IMPLS, reason="the compiled extension is not built")

EXAMPLES = int(os.environ.get("CFGCORE_FUZZ2", "0") or 0)
FUZZ = settings(
    max_examples=EXAMPLES or examples(25),
    deadline=None,
    suppress_health_check=list(HealthCheck),
)

# Flag keys and attribute names: every odd corner of text a document may hold.
ODD_NAMES = ["", ".", "a.b", "a..b", ".a", "ß", "SS", "ss", "İ", "i̇", "ı", "K", "K", "ﬁ",
             "σ", "ς", "Σ", "𝄞", "\x00", " ", "\t", "user_id", "targeting_key", "a" * 300,
             "é", "é", "$flagd.flagKey", "#", "null", "0", "1.0", "True", "\udc00"]  # fmt: skip
names = st.one_of(st.sampled_from(ODD_NAMES), any_text(max_size=4))

WORDS = ["premium", "PREMIUM", "ß", "SS", "ss", "İ", "i̇", "ı", "K", "k", "σ", "ς", "Σ",
         "ﬁ", "FI", "", "1.2.3", "v1.2.3", "1.2.3-rc.1", "1.2.3-RC.1", "1.2.3+build",
         "01.2.3", "1.2.3-01", "2.0.0", "1", "1.0", "-0", "1e3", "inf", "nan", "𝄞", "é",
         "é", "\x00", "a\udfff", "\ud800", "a" * 5000]  # fmt: skip
EDGE_NUMBERS = [0, -0.0, 0.0, 1, -1, 1.0, 0.5, 2**31 - 1, 2**31, 2**32, 2**53, 2**53 + 1,
                2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 2**64 - 1, 2**64, 10**308,
                10**309, -(10**309), 1.7976931348623157e308, 5e-324, -5e-324,
                float("inf"), float("-inf"), 1e-300]  # fmt: skip
CONST_NUMBERS = [n for n in EDGE_NUMBERS if not (isinstance(n, int) and abs(n) > 10**300)]


class EqEverything(str):
    """A str subclass equal to every string, hashing as 'premium': bound by its text."""

    def __eq__(self, other):
        return True

    def __hash__(self):
        return hash("premium")


# Values of types the evaluators read as unusable (or by their exact base value): each
# must read alike on both, and none may raise.
ODD_VALUES = [
    np.float64(0.5), np.float64("nan"), np.float64(-0.0), np.float32(0.5), np.int64(1),
    np.int64(-(2**63)), np.uint64(2**64 - 1), np.bool_(True), np.str_("premium"),
    np.array([1, 2]), np.array("premium"), Decimal("1"), Decimal("NaN"), Decimal("-0"),
    Fraction(1, 2), 1 + 0j, b"premium", bytearray(b"premium"), memoryview(b"premium"),
    EqEverything("premium"), EqEverything("x"), LyingStr("1.2.3"), LyingInt(2**64),
    LyingFloat(1e308), ["premium", 1, 0.5, True, None, ["premium"]], ("ß", "SS"),
    {"premium": 1}, {1, "1", 0.5}, frozenset({"premium", 0.5}), range(2), Ellipsis,
]  # fmt: skip


def pick(pool):
    """One of ``pool`` by its index: hypothesis never compares (nor hashes) the values,
    whose ``__eq__`` may lie, raise or answer an array."""
    return st.integers(0, len(pool) - 1).map(pool.__getitem__)


ctx_values = st.one_of(
    pick(WORDS),
    pick(EDGE_NUMBERS),
    pick(ODD_VALUES),
    pick(HOSTILE),
    any_text(max_size=6),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),
    st.booleans(),
    st.none(),
    st.lists(st.one_of(pick(WORDS[:10]), pick(EDGE_NUMBERS)), max_size=4),
)
scalar_consts = st.one_of(
    st.sampled_from(WORDS), st.sampled_from(CONST_NUMBERS), st.booleans(), any_text(max_size=3)
)
SEMVERS = ["1.2.3", "1.2.3-rc.1", "0.0.0", "v1.2.3", "1.2.3+b", "1.2.3-0", "1.2.3-a.01",
           "18446744073709551616.0.0", "2.0.0", "1.10.0", "1.2.3-RC.1"]  # fmt: skip
REGEXES = ["^a", "e$", "[0-9]", "(?i)prem", "^$", ".", "ß", "(?i)ss", "\\w", "\\d", "^.{3}$",
           "𝄞", "(?s)^.*$", "[^\\x00-\\x7f]", "K", "(?i)k"]  # fmt: skip
WEIGHTS = [0, 100, 50, 1e-9, 5e-324, 0.001, 0.0005, 0.0015, 99.999, 99.9995, 99.99999999,
           33.333, 100 - 1e-12, 12.345678]  # fmt: skip


@st.composite
def leaf(draw, attrs):
    op = draw(st.sampled_from(
        ["eq", "ne", "in", "not_in", "has_any", "lt", "le", "gt", "ge", "starts_with",
         "ends_with", "contains", "matches", "semver_eq", "semver_lt", "semver_gt", "exists",
         "segment"]))  # fmt: skip
    if op == "segment":
        return {"segment": draw(st.sampled_from(["s0", "s1"]))}
    cond: dict = {"attr": draw(st.sampled_from(attrs))}
    ci = draw(st.booleans())
    if op in ("eq", "ne"):
        cond[op] = draw(scalar_consts)
    elif op in ("in", "not_in", "has_any"):
        cond[op] = draw(st.lists(scalar_consts, max_size=10))
    elif op in ("lt", "le", "gt", "ge"):
        cond[op] = draw(st.sampled_from(CONST_NUMBERS))
        ci = False
    elif op in ("starts_with", "ends_with", "contains"):
        cond[op] = draw(st.one_of(st.sampled_from(WORDS[:20]), any_text(max_size=3)))
    elif op == "matches":
        cond[op] = draw(st.sampled_from(REGEXES))
    elif op.startswith("semver"):
        cond[op] = draw(st.sampled_from(SEMVERS))
        ci = False
    else:
        cond[op] = draw(st.booleans())
        ci = False
    if ci:
        cond["ignore_case"] = True
    return cond


def conditions(attrs):
    return st.recursive(
        leaf(attrs),
        lambda kids: st.one_of(
            st.lists(kids, max_size=4).map(lambda xs: {"all": xs}),
            st.lists(kids, max_size=4).map(lambda xs: {"any": xs}),
            kids.map(lambda x: {"not": x}),
        ),
        max_leaves=8,
    )


SCHEDULE_EDGES = ["2024-01-01T00:00:00Z", "2024-01-01T00:00:00.000001Z", "1970-01-01T00:00:00Z",
                  "2038-01-19T03:14:08Z", "9999-12-31T23:59:59Z"]  # fmt: skip
START = 1704067200.0  # 2024-01-01T00:00:00Z
CLOCKS = [START, START - 1e-6, START + 1e-6, math.nextafter(START, 0), 0.0, -1.0, 2**31,
          2**31 + 0.5, 253402300799.0, 253402300800.0, float("nan"), float("inf"),
          float("-inf"), True, 10**20, Decimal("1704067200"), "1704067200", np.float64(START),
          None]  # fmt: skip


@st.composite
def documents(draw):
    keys = draw(st.lists(names, min_size=1, max_size=6, unique=True))
    attrs = draw(st.lists(names, min_size=1, max_size=5, unique=True))
    cond = conditions(attrs)
    flags: dict = {}
    for i, key in enumerate(keys):
        boolean = draw(st.booleans())
        variants = ["on", "off"] if boolean else draw(
            st.lists(names, min_size=1, max_size=3, unique=True))  # fmt: skip
        flag: dict = {}
        if not boolean:
            flag["variants"] = {
                v: draw(st.one_of(scalar_consts, st.none(), st.just({"k": [v]}))) for v in variants
            }
            if draw(st.integers(0, 3)) == 0:
                flag["on_variants"] = draw(st.lists(st.sampled_from(variants), unique=True))
        flag["default"] = draw(st.sampled_from(variants))
        if draw(st.booleans()):
            flag["off_variant"] = draw(st.sampled_from(variants))
        flag["enabled"] = draw(st.integers(0, 5)) > 0
        if draw(st.booleans()):
            flag["bucket_by"] = draw(st.lists(st.sampled_from(attrs), min_size=1, max_size=3))
        if draw(st.integers(0, 2)) == 0:
            flag["salt"] = draw(names)
        rules = []
        for _ in range(draw(st.integers(0, 4))):
            rule: dict = {}
            if draw(st.booleans()):
                rule["when"] = draw(cond)
            kind = draw(st.sampled_from(["serve", "rollout", "split", "hashed"]))
            if kind == "hashed":
                h = draw(hashings())
                h["by"] = draw(st.lists(st.sampled_from(attrs), min_size=1, max_size=2))
                room, buckets = h["space"], []
                for w in draw(st.lists(st.integers(0, h["space"]), min_size=1, max_size=4)):
                    w = min(w, room)
                    room -= w
                    buckets.append([draw(st.one_of(st.none(), st.sampled_from(variants))), w])
                rule["hash"], rule["buckets"] = h, buckets
            elif kind == "split":
                weights = [draw(st.sampled_from(WEIGHTS)) for _ in variants]
                weights[-1] = max(0, 100 - sum(weights[:-1]))
                rule["split"] = dict(zip(variants, weights, strict=True))
            else:
                rule["serve"] = draw(st.sampled_from(variants))
                if kind == "rollout":
                    rule["rollout"] = draw(st.sampled_from(WEIGHTS))
            if kind != "hashed" and draw(st.integers(0, 3)) == 0:
                rule["bucket_by"] = draw(st.sampled_from(attrs))
            if draw(st.integers(0, 3)) == 0:
                rule["name"] = draw(names)
            rules.append(rule)
        flag["rules"] = rules
        if i and draw(st.integers(0, 2)) > 0:  # a chain through the earlier flags
            target = keys[i - 1] if draw(st.booleans()) else draw(st.sampled_from(keys[:i]))
            tv = list(flags[target].get("variants") or {"on": 1, "off": 0})
            plain = flags[target].get("variants") is None or "on_variants" in flags[target]
            how = draw(st.sampled_from(["variant", "variants", "plain", "off"]))
            if how == "variant":
                flag["prerequisites"] = [{"flag": target, "variant": draw(st.sampled_from(tv))}]
            elif how == "variants" or not plain:
                flag["prerequisites"] = [
                    {"flag": target, "variants": draw(st.lists(st.sampled_from(tv), unique=True))}
                ]
            elif how == "off":
                flag["prerequisites"] = [{"flag": target, "off": True}]
            else:
                flag["prerequisites"] = [target]
        if draw(st.integers(0, 3)) == 0:
            window = draw(st.lists(st.sampled_from(SCHEDULE_EDGES), min_size=1, max_size=2))
            flag["schedule"] = dict(zip(draw(st.sampled_from([["start", "end"], ["end"]])),
                                        sorted(window), strict=False))  # fmt: skip
        flags[key] = flag
    segments = {
        "s0": draw(leaf(attrs).filter(lambda c: "segment" not in c)),
        "s1": {"any": [{"segment": "s0"}, draw(cond.filter(lambda c: "segment" not in str(c)))]},
    }
    return {"segments": segments, "flags": flags}, attrs


@st.composite
def mutated(draw, doc):
    """``doc`` with some flags changed (a rule dropped, a flag switched, a variant's value
    replaced) and maybe one added at the end: what an incremental compile reuses."""
    flags = {k: dict(v) for k, v in doc["flags"].items()}
    for key in draw(st.lists(st.sampled_from(list(flags)), max_size=2, unique=True)):
        f = flags[key]
        how = draw(st.sampled_from(["rules", "enabled", "value", "default"]))
        if how == "rules" and f.get("rules"):
            f["rules"] = f["rules"][1:]
        elif how == "enabled":
            f["enabled"] = not f.get("enabled", True)
        elif how == "value" and f.get("variants"):
            name = draw(st.sampled_from(list(f["variants"])))
            f["variants"] = {**f["variants"], name: draw(st.one_of(scalar_consts, st.none()))}
        else:
            f["default"] = draw(st.sampled_from(list(f.get("variants") or ["on", "off"])))
    if draw(st.booleans()):
        new = draw(names.filter(lambda k: k not in flags))
        flags[new] = {"default": "on", "rules": [{"when": {"segment": "s1"}, "serve": "off"}]}
    return {"segments": doc["segments"], "flags": flags}


def _ctx(attrs, values):
    return dict(zip(attrs, values, strict=False))


def _all(engine, ctx):
    return [(k, _norm(v)) for k, v in engine.evaluate_all(ctx).items()]


def _answers(engine, keys, ctx, default):
    out = []
    for key in keys:
        out.append(engine.is_enabled(key, ctx))
        out.append(engine.variant(key, ctx))
        out.append(_norm(engine.value(key, ctx, default)))
        out.append(_details(engine.evaluate(key, ctx, default)))
        for kind in range(4):
            answer, details, bucket, unit = engine.snapshot()._observe(
                kind, key, ctx, default if kind >= 2 else None
            )
            shown = _details(answer) if kind == 3 else _norm(answer)
            out.append((kind, shown, _details(details), bucket, _norm(unit)))
    out.append(_all(engine, ctx))
    return out


def _lookups(keys):
    """Each key as itself, as an equal str that is another object, as a str subclass,
    plus keys no snapshot holds."""
    out = []
    for k in keys:
        out += [k, "".join(list(k)), EqEverything(k)]
    return [*out, "", "\x00missing", "𝄞" * 3]


def _compiles(doc):
    try:
        return compile_snapshot(snapshot_from_dict(doc))
    except SnapshotError:
        return None


@FUZZ
@given(
    documents(),
    st.lists(st.lists(ctx_values, min_size=1, max_size=6), min_size=1, max_size=4),
    st.one_of(st.none(), scalar_consts, pick(ODD_VALUES)),
    pick(CLOCKS),
)
def test_odd_names_values_and_weights_agree_on_every_entry_point(drawn, rows, default, now):
    doc, attrs = drawn
    if _compiles(doc) is None:
        return
    engines = [engine_class(IMPLS[k]).from_snapshot(doc) for k in ("c", "py")]
    for e in engines:
        e.set_clock(None if now is None else (lambda: now))
    keys = _lookups(list(doc["flags"]))
    with contextlib.ExitStack() as held:
        # Every engine of the process is harvested by whoever collects the totals (a
        # usage thread or a metrics scrape an earlier test in this worker left running):
        # its ledger's lock keeps such a harvest from taking part of one engine's counts
        # before the comparison below (evaluating takes no lock; taking does).
        for e in engines:
            held.enter_context(e._ledger._lock)
        _compare(engines, keys, attrs, rows, doc, default)


def _compare(engines, keys, attrs, rows, doc, default):
    for row in rows:
        ctx = _ctx(attrs, row)
        got = []
        for e in engines:
            plain = _answers(e, keys, ctx, default)
            bound = e.context(ctx)
            assert _answers(e, keys, bound, default) == plain, ctx
            # evaluate_all answers what each flag answers on its own
            assert _all(e, ctx) == [(k, _norm(e.value(k, ctx))) for k in doc["flags"]]
            got.append(plain)
        if got[0] != got[1]:
            diff = [(a, b) for a, b in zip(*got, strict=True) if a != b][:3]
            raise AssertionError(f"{ctx!r}: {diff}")
    c, p = (e.take_evaluation_counts() for e in engines)
    assert (c.evaluations, c.errors) == (p.evaluations, p.errors)


@FUZZ
@given(documents(), st.data())
def test_incremental_compiles_answer_as_full_ones_and_never_raise_otherwise(drawn, data):
    doc, attrs = drawn
    before = _compiles(doc)
    if before is None:
        return
    after_doc = data.draw(mutated(doc))
    full = _compiles(after_doc)
    if full is None:  # refused in full: refused incrementally too, as a SnapshotError
        with pytest.raises(SnapshotError):
            compile_incremental(before, snapshot_from_dict(after_doc))
        return
    incremental = compile_incremental(before, snapshot_from_dict(after_doc))
    rows = data.draw(st.lists(st.lists(ctx_values, min_size=1, max_size=6), max_size=3))
    keys = list(after_doc["flags"])
    for impl in IMPLS.values():
        a, b = engine_class(impl)(), engine_class(impl)()
        a.swap(full)
        b.swap(incremental)
        for row in rows:
            ctx = _ctx(attrs, row)
            assert _answers(a, keys, ctx, None) == _answers(b, keys, ctx, None), ctx
        # The engine's own incremental path: compile(previous=...) of the live snapshot
        e = engine_class(impl).from_snapshot(doc)
        e.swap(e.compile(after_doc, previous=e.snapshot()))
        for row in rows:
            ctx = _ctx(attrs, row)
            assert _all(e, ctx) == _all(a, ctx)


# -- regressions found by this campaign ----------------------------------------------


@pytest.mark.parametrize(
    "text_at",
    ["salt", "constant", "variant value", "description", "metadata", "rule name"],
)
def test_an_incremental_compile_of_a_document_holding_a_lone_surrogate_does_not_raise(
    impl, text_at
):
    """compile_snapshot takes a lone surrogate in a salt, a condition constant or a
    value (a document built in Python: files refuse them); the incremental compile of
    the same document used to raise UnicodeEncodeError from its change check (the
    MessagePack encoding of the flag), not compile, so ``Engine.compile(previous=...)``
    and a flag set's reload raised where the full compile answered."""
    flag: dict = {"default": "on", "rules": [{"when": {"attr": "a", "eq": "x"}, "serve": "off"}]}
    lone = "\ud800"
    if text_at == "salt":
        flag["salt"] = lone
    elif text_at == "constant":
        flag["rules"][0]["when"]["eq"] = lone
    elif text_at == "variant value":
        flag["variants"] = {"on": lone, "off": "b"}
    elif text_at == "description":
        flag["description"] = lone
    elif text_at == "metadata":
        flag["metadata"] = {"k": lone}
    else:
        flag["rules"][0]["name"] = lone
    doc = {"flags": {"f": flag, "g": {"default": "on"}}}
    engine = engine_class(impl).from_snapshot(doc)
    changed = {"flags": {"f": flag, "g": {"default": "off"}}}
    engine.swap(engine.compile(changed, previous=engine.snapshot()))
    full = engine_class(impl).from_snapshot(changed)
    for ctx in ({"a": "x"}, {"a": lone}, {}):
        assert engine.evaluate_all(ctx) == full.evaluate_all(ctx)
        assert _details(engine.evaluate("f", ctx))[:-1] == _details(full.evaluate("f", ctx))[:-1]
    assert engine.is_enabled("g") is False


# Plain values only (what the README's semantics name: text, numbers, booleans, None,
# arrays of them), so the spec interpreter, written from the README without the
# compiler, judges what both evaluators serve: a compiler bug both share shows here.
plain_values = st.one_of(
    pick(WORDS),
    pick(EDGE_NUMBERS),
    any_text(max_size=6),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),
    st.booleans(),
    st.none(),
    st.lists(st.one_of(pick(WORDS[:12]), pick(CONST_NUMBERS), st.booleans()), max_size=4),
)


@FUZZ
@given(
    documents(),
    st.lists(st.lists(plain_values, min_size=1, max_size=6), min_size=1, max_size=4),
    st.one_of(st.none(), scalar_consts),
    st.sampled_from([START, START - 1e-6, START + 1e-6, 0.0, 253402300800.0, float("nan")]),
)
def test_the_reference_serves_what_the_spec_interpreter_reads_in_the_readme(
    drawn, rows, default, now
):
    doc, attrs = drawn
    if _compiles(doc) is None:
        return
    spec = Interpreter(snapshot_from_dict(doc), clock=lambda: now)
    engines = [engine_class(IMPLS[k]).from_snapshot(doc) for k in ("c", "py")]
    for e in engines:
        e.set_clock(lambda: now)
    for row in rows:
        ctx = _ctx(attrs, row)
        for key in doc["flags"]:
            want = comparable(spec.evaluate(key, ctx, default))
            for e in engines:
                assert comparable(e.evaluate(key, ctx, default)) == want, (key, ctx)


class _RaisingEq:
    def __eq__(self, other):
        raise RuntimeError("no comparison")

    __hash__ = object.__hash__


@pytest.mark.parametrize("value", [object(), _RaisingEq(), {1, 2}], ids=["object", "eq", "set"])
def test_an_incremental_compile_of_metadata_msgpack_cannot_hold_does_not_raise(impl, value):
    """A Snapshot built in Python may hold any metadata value; the full compile ignores
    it, and the incremental one's change check (``==`` and MessagePack) raised on it."""
    from cfgcore.snapshot import Flag, Snapshot

    def snap(default):
        return Snapshot(
            flags={"f": Flag(default="on", metadata={"k": value}), "g": Flag(default=default)}
        )

    engine = engine_class(impl).from_snapshot(snap("on"))
    engine.swap(engine.compile(snap("off"), previous=engine.snapshot()))
    assert engine.evaluate_all({}) == {"f": True, "g": False}
