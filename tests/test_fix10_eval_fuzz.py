"""Differential fuzzing of the two evaluators, as an outside attacker would run it.

Whole flag documents with every operator the compiler accepts (nested all/any/not,
segments, rollouts, splits with odd weights, prerequisites, schedules, semver, regex
``matches`` with and without ``ignore_case``, numbers with -0.0, huge ints, infinities)
meet hostile contexts: str/int/float/dict subclasses whose ``__eq__``/``__hash__``/
``__str__`` lie or raise, bools next to ints, non-str keys, lone surrogates, huge ints,
nested containers, bound Contexts (of the same engine and of another one), and things
that are not mappings at all. Both evaluators must give the same answer on every entry
point and none may raise.

The CI run is a few seconds; ``CFGCORE_FIX10_FUZZ=N`` runs N examples per target (the
campaign behind this file ran tens of thousands).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from cfgcore._layout import DEDUP_SHARDS
from cfgcore.engine import engine_class
from cfgcore.errors import SnapshotError
from tests.conftest import IMPLS
from tests.fuzz import examples
from tests.mappings import DictMapping
from tests.test_core_differential import gates, hashings
from tests.texts import any_text

pytestmark = pytest.mark.skipif("c" not in IMPLS, reason="the compiled extension is not built")

EXAMPLES = int(os.environ.get("CFGCORE_FIX10_FUZZ", "0") or 0)
PROFILE = settings(
    max_examples=EXAMPLES or examples(30),
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=not EXAMPLES,
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
)
SWAPS = settings(PROFILE, max_examples=EXAMPLES or examples(12))

ATTRS = ["seg", "n", "v", "user_id", "targeting_key"]
WORDS = ["premium", "free", "PREMIUM", "ß", "SS", "ss", "İ", "ı", "K", "k", "", "1.2.3",
         "v1.2.3", "1.2.3-rc.1", "1", "1.0", "-0", "True", "true", "None", "42",
         "x\ud800"]  # fmt: skip
NUMBERS = [0, 1, -1, 2, 42, 0.5, -0.0, 1.0, 2**53, 2**53 + 1, 2**63 - 1, 2**63, -(2**63),
           2**64, 10**30, -(10**30), 1e308, 5e-324, float("inf"), float("-inf"), True,
           False]  # fmt: skip
REGEXES = ["^a", "e$", "[0-9]", "premium|free", ".", "(?i)PREM", "^$", "^premium$", "\\w+",
           "\\bfree\\b", "[[:alpha:]]", "\\d{2,}", "ß", "(?s).", "^1\\.2", "K", "[^a-z]",
           "\\pL", "(a|b)*c", "\\A1", "x\\z", "^(?:True|1)$", "\\x{41}", "(?m)^f"]  # fmt: skip
SEMVERS = ["1.2.3", "1.2.3-rc.1", "0.0.0", "v1.2.3", "1.2.3+b", "1.2.3-0", "1.2.3-a.01",
           "999999999999999999999.0.0", "2.0.0", "1.10.0"]  # fmt: skip

scalar_consts = st.one_of(st.sampled_from(WORDS), st.sampled_from(NUMBERS), st.none())
text_consts = st.one_of(st.sampled_from(WORDS), any_text(max_size=3))


@st.composite
def leaf(draw):
    op = draw(
        st.sampled_from(
            ["eq", "ne", "in", "not_in", "lt", "le", "gt", "ge", "starts_with", "ends_with",
             "contains", "matches", "semver_eq", "semver_lt", "semver_gt", "exists", "segment"]
        )
    )  # fmt: skip
    if op == "segment":
        return {"segment": draw(st.sampled_from(["s0", "s1"]))}
    cond: dict = {"attr": draw(st.sampled_from(ATTRS))}
    ci = draw(st.booleans())
    if op in ("eq", "ne"):
        cond[op] = draw(text_consts if ci else scalar_consts)
    elif op in ("in", "not_in"):
        cond[op] = draw(st.lists(text_consts if ci else scalar_consts, max_size=6))
    elif op in ("lt", "le", "gt", "ge"):
        cond[op] = draw(st.sampled_from([n for n in NUMBERS if not isinstance(n, bool)]))
    elif op in ("starts_with", "ends_with", "contains"):
        cond[op] = draw(text_consts)
    elif op == "matches":
        cond[op] = draw(st.sampled_from(REGEXES))
    elif op.startswith("semver"):
        cond[op] = draw(st.sampled_from(SEMVERS))
    else:
        cond[op] = draw(st.booleans())
    if ci:
        cond["ignore_case"] = True
    return cond


conditions = st.recursive(
    leaf(),
    lambda kids: st.one_of(
        st.lists(kids, max_size=3).map(lambda xs: {"all": xs}),
        st.lists(kids, max_size=3).map(lambda xs: {"any": xs}),
        kids.map(lambda x: {"not": x}),
    ),
    max_leaves=8,
)

variant_values = st.one_of(
    st.sampled_from(NUMBERS),
    st.sampled_from(WORDS),
    st.none(),
    st.sampled_from([{"k": [1, {"x": None}]}, [1, "a", [2.5]], {}, [], {"n": -0.0}]),
)
odd_weights = st.sampled_from([0, 100, 50, 33.3333, 0.0005, 1e-9, 99.9999, 12.34567, 0.001])


@st.composite
def documents(draw):
    flags: dict = {}
    for i in range(draw(st.integers(1, 4))):
        boolean = draw(st.booleans())
        names = ["on", "off"] if boolean else [f"v{j}" for j in range(draw(st.integers(1, 3)))]
        flag: dict = {}
        if not boolean:
            flag["variants"] = {name: draw(variant_values) for name in names}
            if draw(st.booleans()):
                flag["on_variants"] = draw(st.lists(st.sampled_from(names), unique=True))
        flag["default"] = draw(st.sampled_from(names))
        if draw(st.booleans()):
            flag["off_variant"] = draw(st.sampled_from(names))
        flag["enabled"] = draw(st.integers(0, 4)) > 0
        if draw(st.booleans()):
            flag["bucket_by"] = draw(
                st.one_of(
                    st.sampled_from(ATTRS), st.lists(st.sampled_from(ATTRS), min_size=1, max_size=2)
                )
            )
        if draw(st.booleans()):
            flag["salt"] = draw(st.sampled_from(["", "x", "ü", "\ud800"]))
        rules = []
        for r in range(draw(st.integers(0, 3))):
            rule: dict = {}
            if draw(st.booleans()):
                rule["when"] = draw(conditions)
            kind = draw(st.sampled_from(["serve", "rollout", "split", "hashed"]))
            if draw(st.integers(0, 3)) == 0:
                rule["bucket_by"] = draw(st.sampled_from(ATTRS))
            if draw(st.integers(0, 4)) == 0:  # imported flags' gates, every scheme
                rule["gates"] = [draw(gates())]
            if kind == "hashed":  # an imported rule bucketed by its own scheme
                h = draw(hashings())
                room, buckets = h["space"], []
                for w in draw(st.lists(st.integers(0, h["space"]), min_size=1, max_size=3)):
                    w = min(w, room)
                    room -= w
                    buckets.append([draw(st.one_of(st.none(), st.sampled_from(names))), w])
                rule["hash"], rule["buckets"] = h, buckets
                rule.pop("bucket_by", None)
            elif kind == "split":
                weights = [draw(odd_weights) for _ in names]
                weights[-1] = max(0, 100 - sum(weights[:-1]))
                rule["split"] = dict(zip(names, weights, strict=True))
            else:
                rule["serve"] = draw(st.sampled_from(names))
                if kind == "rollout":
                    rule["rollout"] = draw(st.one_of(odd_weights, st.floats(0, 100)))
            if draw(st.integers(0, 3)) == 0:
                rule["name"] = f"r{r}"
            rules.append(rule)
        flag["rules"] = rules
        earlier = [f"f{j}" for j in range(i)]
        if earlier and draw(st.booleans()):
            t = draw(st.sampled_from(earlier))
            tv = list(flags[t].get("variants") or {"on": 1, "off": 0})
            how = draw(st.sampled_from(["variant", "variants", "plain", "off"]))
            plain_ok = flags[t].get("variants") is None or "on_variants" in flags[t]
            if how == "variant":
                flag["prerequisites"] = [{"flag": t, "variant": draw(st.sampled_from(tv))}]
            elif how == "variants" or not plain_ok:
                flag["prerequisites"] = [
                    {"flag": t, "variants": draw(st.lists(st.sampled_from(tv), unique=True))}
                ]
            elif how == "off":
                flag["prerequisites"] = [{"flag": t, "off": True}]
            else:
                flag["prerequisites"] = [t]
        if draw(st.integers(0, 3)) == 0:
            flag["schedule"] = draw(
                st.sampled_from(
                    [{"start": "2024-01-01T00:00:00Z"}, {"end": "2024-01-01T00:00:00Z"},
                     {"start": "2024-01-01T00:00:00Z", "end": "2030-01-01T00:00:00Z"}]
                )
            )  # fmt: skip
        flags[f"f{i}"] = flag
    segments = {
        "s0": draw(leaf().filter(lambda c: "segment" not in c)),
        "s1": {"any": [{"segment": "s0"}, draw(leaf().filter(lambda c: "segment" not in c))]},
    }
    return {"segments": segments, "flags": flags}


# -- hostile context values -----------------------------------------------------------
# Stateless: each answers the same way every time, so both evaluators may ask as often
# as they like and must still agree.


class Boom(Exception):
    pass


class LyingStr(str):
    """Equal to everything, hashes as 'premium', prints as something else."""

    def __eq__(self, other):
        return True

    def __ne__(self, other):
        return False

    def __hash__(self):
        return hash("premium")

    def __str__(self):
        return "free"

    def lower(self):
        return "lower"

    def casefold(self):
        return "casefold"

    def startswith(self, *a):
        return True


class RaisingStr(str):
    def __eq__(self, other):
        raise Boom

    __ne__ = __lt__ = __gt__ = __le__ = __ge__ = __eq__

    def __hash__(self):
        raise Boom

    def __str__(self):
        raise Boom

    def __repr__(self):  # hypothesis prints a failing example with it
        return f"RaisingStr({str.__str__(self)!r})"

    def __len__(self):
        raise Boom

    def encode(self, *a, **k):
        raise Boom


class LyingInt(int):
    def __eq__(self, other):
        return True

    def __hash__(self):
        return 0

    def __str__(self):
        return "premium"

    __repr__ = __str__

    def __index__(self):
        return 7

    def __float__(self):
        return 0.25

    def __lt__(self, other):
        return True

    __gt__ = __le__ = __ge__ = __lt__


class RaisingInt(int):
    def __eq__(self, other):
        raise Boom

    __lt__ = __gt__ = __le__ = __ge__ = __ne__ = __eq__

    def __hash__(self):
        raise Boom

    def __str__(self):
        raise Boom

    __format__ = __str__

    def __repr__(self):
        return f"RaisingInt({int.__repr__(self)})"

    def __index__(self):
        raise Boom

    def __float__(self):
        raise Boom

    def __bool__(self):
        raise Boom


class LyingFloat(float):
    def __eq__(self, other):
        return True

    def __hash__(self):
        return 1

    def __str__(self):
        return "premium"

    __repr__ = __str__

    def __float__(self):
        return 99.0

    def __lt__(self, other):
        raise Boom


class RaisingDict(dict):
    """A dict whose own accessors raise: a context value, not the context."""

    def __getitem__(self, key):
        raise Boom

    get = keys = items = values = __iter__ = __len__ = __getitem__  # type: ignore[assignment]

    def __eq__(self, other):
        raise Boom

    __hash__ = None  # type: ignore[assignment]


class Unhashable:
    __hash__ = None  # type: ignore[assignment]

    def __eq__(self, other):
        raise Boom


HOSTILE = [
    LyingStr("premium"), LyingStr("x"), RaisingStr("premium"), RaisingStr("1.2.3"),
    LyingInt(1), LyingInt(2**70), RaisingInt(1), RaisingInt(-(2**80)), LyingFloat(0.5),
    LyingFloat(float("nan")), RaisingDict(a=1), Unhashable(), True, False, 1, 0, -0.0,
    10**400, -(10**400), 2**64, float("nan"), float("inf"), "\ud800", "a\udfff", "x" * 5000,
    b"premium", ["premium", ["nested"]], ("premium",), {"seg": "premium"}, {"premium"},
    frozenset({"premium"}), None, object(), 1 + 0j, range(3),
]  # fmt: skip

ctx_values = st.one_of(
    st.sampled_from(WORDS),
    st.sampled_from(NUMBERS),
    st.integers(0, len(HOSTILE) - 1).map(HOSTILE.__getitem__),
    any_text(max_size=5),
    st.integers(),
    st.floats(),
    st.lists(st.sampled_from(WORDS), max_size=2),
)


class StrKey(str):
    """A key equal to its attribute name but with its own hash."""

    def __hash__(self):
        return 12345


class LyingKey(str):
    def __eq__(self, other):
        return True

    def __hash__(self):
        return hash(str(self))


class SubDict(dict):
    """A dict subclass that overrides what a context reader may call."""

    def __getitem__(self, key):
        return "premium"

    def get(self, key, default=None):
        return "free"

    def __contains__(self, key):
        return True


class MissingDict(dict):
    def __missing__(self, key):
        return "premium"


class RaisingMapping(Mapping):
    def __init__(self, data):
        self.data = data

    def __getitem__(self, key):
        raise Boom

    def __iter__(self):
        raise Boom

    def __len__(self):
        raise Boom


PlainMapping = DictMapping


keys = st.one_of(
    st.sampled_from(ATTRS),
    st.sampled_from(ATTRS).map(StrKey),
    st.sampled_from(ATTRS).map(LyingKey),
    st.sampled_from([1, 0, True, None, b"seg", ("seg",), 1.5, "seg\ud800", "SEG"]),
)
SHAPES = ["dict", "bound", "subdict", "missing", "mapping", "raising", "foreign", "nested",
          "not-a-mapping"]  # fmt: skip
NOT_MAPPINGS = [42, "seg=premium", ["seg"], [("seg", "premium")], None, object(), b"x", 1.5,
                {("seg", "premium")}]  # fmt: skip


def _shape(engine, other, shape, attrs, index):
    if shape == "dict":
        return attrs
    if shape == "bound":
        return engine.context(attrs)
    if shape == "subdict":
        return SubDict(attrs)
    if shape == "missing":
        return MissingDict(attrs)
    if shape == "mapping":
        return PlainMapping(attrs)
    if shape == "raising":
        return RaisingMapping(attrs)
    if shape == "foreign":  # a Context bound by another engine of the same kind
        return other.context(attrs)
    if shape == "nested":
        return engine.context(engine.context(attrs))
    return NOT_MAPPINGS[index % len(NOT_MAPPINGS)]


def _norm(value):
    """A comparable form: repr and exact type, NaN equal to NaN (a value whose repr
    raises, such as a hostile default handed back, by its identity)."""
    kind = type(value).__name__
    if type(value) is float and math.isnan(value):
        return ("nan", kind)
    try:
        return (repr(value), kind)
    except Exception:
        return ("unrepresentable", kind, id(value))


def _safe(value):
    try:
        return repr(value)
    except Exception:
        return f"<{type(value).__name__} {id(value):#x}>"


def _details(d):
    return (d.flag_key, _norm(d.value), d.variant, d.reason, d.rule_index, d.error_code,
            d.error_message, d.snapshot_version)  # fmt: skip


def _answers(engine, keys, ctx, default):
    out = []
    for key in keys:
        for call in (
            lambda k: engine.is_enabled(k, ctx),
            lambda k: engine.variant(k, ctx),
            lambda k: _norm(engine.value(k, ctx, default)),
            lambda k: _details(engine.evaluate(k, ctx, default)),
        ):
            try:
                out.append(call(key))
            except Exception as e:  # pragma: no cover - a finding
                raise AssertionError(f"{engine.implementation} raised {e!r} for {key!r}") from e
    try:
        everything = engine.evaluate_all(ctx)
    except Exception as e:  # pragma: no cover - a finding
        raise AssertionError(f"{engine.implementation} evaluate_all raised {e!r}") from e
    out.append([(k, _norm(v)) for k, v in everything.items()])
    return out


ODD_KEYS = ["f0", "f1", "f2", "f3", "missing", "", StrKey("f0"), LyingKey("f1"), RaisingStr("f0"),
            0, None, b"f0"]  # fmt: skip
FLAG_KEYS = st.lists(
    st.integers(0, len(ODD_KEYS) - 1).map(ODD_KEYS.__getitem__), min_size=1, max_size=4
)
defaults = st.one_of(st.none(), st.sampled_from([*WORDS[:4], *NUMBERS[:8], {"a": 1}, [1]]),
                     st.integers(0, len(HOSTILE) - 1).map(HOSTILE.__getitem__))  # fmt: skip


def _engines(document):
    try:
        engines = [engine_class(IMPLS[k]).from_snapshot(document) for k in ("c", "py")]
    except SnapshotError:
        with pytest.raises(SnapshotError):
            engine_class(IMPLS["py"]).from_snapshot(document)
        return None
    return engines


@PROFILE
@given(
    documents(),
    st.lists(st.dictionaries(keys, ctx_values, max_size=7), min_size=1, max_size=3),
    FLAG_KEYS,
    defaults,
    st.sampled_from([1.7e9, 1.9e9, 0.0, float("nan")]),
    st.integers(0, 1000),
)
def test_fuzz_documents_and_hostile_contexts_agree(document, ctxs, extra, default, now, index):
    engines = _engines(document)
    if engines is None:
        return
    others = [engine_class(IMPLS[k]).from_snapshot(document) for k in ("c", "py")]
    for engine in engines:
        engine.set_clock(lambda: now)
    flag_keys = [*document["flags"], *extra]
    for attrs in ctxs:
        for shape in SHAPES:
            got = [
                _answers(e, flag_keys, _shape(e, o, shape, attrs, index), default)
                for e, o in zip(engines, others, strict=True)
            ]
            if got[0] != got[1]:
                diff = [(a, b) for a, b in zip(*got, strict=True) if a != b][:3]
                raise AssertionError(f"{shape}: {_safe(attrs)} keys {_safe(flag_keys)}: {diff}")
    c, p = (e.take_evaluation_counts() for e in engines)
    assert (c.evaluations, c.errors) == (p.evaluations, p.errors)


def _seed_answers(impl, engine, names, ctx):
    exposed: list = []
    log: list = []
    seed = impl.SeedAPI(
        engine,
        {n: tuple(set() for _ in range(DEDUP_SHARDS)) for n in names if type(n) is str},
        lambda t, v, c: exposed.append((t, v)),
    )
    seed.log_to(log.append, clock=lambda: 1.0)
    out = []
    for name in names:
        out.append(seed.is_feature_enabled(name, ctx))
        out.append(seed.get_ab_test_variant(name, ctx))
        out.append(seed.get_ab_test_variant(name, ctx))  # the second time: deduplicated
    return out, exposed, [(t, v, _norm(u)) for t, v, u, _ in log]


@SWAPS
@given(
    documents(),
    documents(),
    st.lists(st.dictionaries(keys, ctx_values, max_size=7), min_size=1, max_size=3),
    FLAG_KEYS,
    defaults,
)
def test_fuzz_swaps_stale_contexts_and_the_seed_api_agree(first, second, ctxs, extra, default):
    """Contexts bound before a swap, evaluate_all on both of its paths, the observed
    path, and the seed API's checks on the same hostile contexts."""
    engines = _engines(first)
    if engines is None or _engines(second) is None:
        return
    impls = [IMPLS["c"], IMPLS["py"]]
    keys_ = [*first["flags"], *second["flags"], *extra]
    for attrs in ctxs:
        got = []
        for impl, engine in zip(impls, engines, strict=True):
            bound = engine.context(attrs)
            out = [_answers(engine, keys_, bound, default)]
            engine.swap(engine.compile(second))
            out.append(_answers(engine, keys_, bound, default))  # bound to the old one
            snap = engine.snapshot()
            if hasattr(snap, "_all_direct"):  # the compiled evaluator's other path
                direct = snap._all_direct
                snap._all_direct = False
            everything = engine.evaluate_all(attrs)
            if hasattr(snap, "_all_direct"):
                snap._all_direct = direct
            out.append([(k, _norm(v)) for k, v in everything.items()])
            for key in keys_:
                for kind in range(4):
                    answer, details, bucket, unit = snap._observe(
                        kind, key, attrs, default if kind >= 2 else None
                    )
                    shown = _details(answer) if kind == 3 else _norm(answer)
                    out.append((kind, shown, _details(details), bucket, _norm(unit)))
            out.append(_seed_answers(impl, engine, keys_, attrs))
            out.append(_seed_answers(impl, engine, keys_, engine.context(attrs)))
            engine.swap(engine.compile(first))
            got.append(out)
        if got[0] != got[1]:
            diff = [(a, b) for a, b in zip(*got, strict=True) if a != b][:2]
            raise AssertionError(f"{_safe(attrs)} keys {_safe(keys_)}: {diff}")
