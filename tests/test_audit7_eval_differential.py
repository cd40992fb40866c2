"""Seventh audit of the two evaluators, differential: what the earlier rounds' generators
leave out, found to agree (kept so that they keep agreeing).

* rule-level ``bucket_by`` (a name or a list), a flag's own ``salt``, split weights with
  three decimals (cut points drawn over the whole bucket space) and rollouts at the
  edges of their rounding (0.001, 99.999, tiny floats), rule names, schedules;
* condition constants and context values at Unicode case-folding edges ('ß', 'ẞ', 'İ',
  'ı', 'ﬁ', final sigma, the Kelvin sign), semantic versions with leading zeros, huge
  numbers, Arabic-Indic digits and a trailing newline;
* context values of every odd kind at once: IntEnum/StrEnum/float Enum members, str and
  int subclasses whose own methods raise, bytes, bytearray, Decimal, Fraction, complex,
  tuples, frozensets, strings past the regex input bound;
* every entry point on a dict and on a bound Context, evaluate_all on its direct path
  and with ``_all_direct = False``, and the reference against the spec interpreter.
"""

from __future__ import annotations

import decimal
import enum
import fractions

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfgcore.engine import engine_class
from cfgcore.snapshot import snapshot_from_dict
from tests.conftest import IMPLS
from tests.fuzz import examples
from tests.spec_interpreter import Interpreter, comparable
from tests.test_audit2_eval_differential import F, I, S, _answers
from tests.test_core_differential import gates
from tests.texts import any_text

pytestmark = pytest.mark.skipif("c" not in IMPLS, reason="the compiled extension is not built")

ATTRS = ["seg", "n", "v", "user_id", "targeting_key"]


class SCase(str):
    def casefold(self):
        raise RuntimeError

    def __eq__(self, o):
        raise RuntimeError

    def __hash__(self):
        raise RuntimeError


class IWeird(int):
    def __index__(self):
        raise RuntimeError

    def __float__(self):
        raise RuntimeError

    def __str__(self):
        raise RuntimeError

    __repr__ = __str__


class IE(enum.IntEnum):
    A = 1


class SE(str, enum.Enum):
    P = "premium"


class FE(float, enum.Enum):
    H = 0.5


ODD = [
    "ß",
    "SS",
    "ss",
    "ẞ",
    "İ",
    "i̇",
    "ı",
    "I",
    "ﬁ",
    "FI",
    "Σ",
    "σ",
    "ς",
    "K",
    "k",
    "ǅ",
    "\ud800",
    "a\udfff",
    "premium",
    "PREMIUM",
    "Premium",
    "",
    " ",
    "1.2.3",
    "v1.2.3",
    "1.2.3-rc.1",
    "01.2.3",
    "1.2",
    "1.2.3\n",
    "999999999999999999999.0.0",
    "1.2.3-a.01",
    "1.2.3-0a",
    "1.2.3+meta",
    "١.٢.٣",
    0,
    1,
    -1,
    2,
    0.5,
    -0.0,
    1.0,
    True,
    False,
    2**53,
    2**53 + 1,
    2**63,
    2**64,
    -(2**63) - 1,
    10**400,
    float("inf"),
    float("-inf"),
    float("nan"),
    5e-324,
    1e308,
    S("premium"),
    S("ß"),
    I(1),
    I(2**70),
    F(0.5),
    F("nan"),
    SCase("premium"),
    IWeird(1),
    IE.A,
    SE.P,
    FE.H,
    b"premium",
    bytearray(b"x"),
    ("premium",),
    ["premium"],
    {"a": 1},
    frozenset(),
    decimal.Decimal("1"),
    fractions.Fraction(1, 2),
    None,
    complex(1, 0),
    object(),
    "x" * 5000,
    "é" * 3000,
]
values = st.one_of(
    st.integers(0, len(ODD) - 1).map(ODD.__getitem__),
    any_text(max_size=4),
    st.integers(),
    st.floats(),
)

WORDS = ["premium", "free", "ß", "SS", "ss", "İ", "i̇", "ı", "ﬁ", "Σ", "ς", "K", "", "1.2.3", "a"]


@st.composite
def xleaf(draw):
    op = draw(
        st.sampled_from(
            [
                "eq",
                "ne",
                "in",
                "not_in",
                "lt",
                "le",
                "gt",
                "ge",
                "starts_with",
                "ends_with",
                "contains",
                "matches",
                "semver_eq",
                "semver_lt",
                "semver_gt",
                "exists",
            ]
        )
    )
    c = {"attr": draw(st.sampled_from(ATTRS))}
    ci = draw(st.booleans())
    sc = st.one_of(
        st.sampled_from(WORDS),
        st.sampled_from(
            [
                0,
                1,
                -1,
                0.5,
                -0.0,
                True,
                False,
                2**53 + 1,
                2**63 - 1,
                -(2**63),
                1e308,
                float("inf"),
                float("-inf"),
            ]
        ),
    )
    if op in ("eq", "ne"):
        c[op] = draw(st.sampled_from(WORDS)) if ci else draw(sc)
    elif op in ("in", "not_in"):
        c[op] = draw(st.lists(st.sampled_from(WORDS) if ci else sc, max_size=5))
    elif op in ("lt", "le", "gt", "ge"):
        c[op] = draw(
            st.sampled_from(
                [
                    0,
                    -0.0,
                    1,
                    0.5,
                    2**53,
                    2**53 + 1,
                    2**63 - 1,
                    1e308,
                    float("inf"),
                    float("-inf"),
                    -5e-324,
                ]
            )
        )
        ci = False
    elif op in ("starts_with", "ends_with", "contains"):
        c[op] = draw(st.one_of(st.sampled_from(WORDS), any_text(max_size=2)))
    elif op == "matches":
        c[op] = draw(
            st.sampled_from(
                [
                    "^a",
                    "ß",
                    "(?i)ss",
                    "^$",
                    "^premium$",
                    "\\w",
                    "i",
                    "I",
                    "[^a]",
                    "s{2}",
                    "\\bfree\\b",
                    "$",
                ]
            )
        )
    elif op.startswith("semver"):
        c[op] = draw(
            st.sampled_from(
                [
                    "1.2.3",
                    "1.2.3-rc.1",
                    "1.2.3-a.1",
                    "0.0.0",
                    "v1.2.3",
                    "1.2.3-0",
                    "999999999999999999999.0.0",
                    "1.2.3+x",
                ]
            )
        )
        ci = False
    else:
        c[op] = draw(st.booleans())
        ci = False
    if ci:
        c["ignore_case"] = True
    return c


xconds = st.recursive(
    xleaf(),
    lambda k: st.one_of(
        st.lists(k, max_size=3).map(lambda xs: {"all": xs}),
        st.lists(k, max_size=3).map(lambda xs: {"any": xs}),
        k.map(lambda x: {"not": x}),
    ),
    max_leaves=5,
)


@st.composite
def snaps(draw):
    flags = {}
    for i in range(draw(st.integers(1, 4))):
        boolean = draw(st.booleans())
        names = ["on", "off"] if boolean else [f"v{j}" for j in range(draw(st.integers(1, 3)))]
        flag = {}
        if not boolean:
            flag["variants"] = {
                n: draw(st.sampled_from([1, 0.5, "s", True, False, None, {"k": 1}, [1], -0.0]))
                for n in names
            }
        flag["default"] = draw(st.sampled_from(names))
        if draw(st.booleans()):
            flag["off_variant"] = draw(st.sampled_from(names))
        flag["enabled"] = draw(st.integers(0, 4)) > 0
        if draw(st.booleans()):
            flag["bucket_by"] = draw(
                st.one_of(
                    st.sampled_from(ATTRS), st.lists(st.sampled_from(ATTRS), min_size=1, max_size=3)
                )
            )
        if draw(st.booleans()):
            flag["salt"] = draw(st.sampled_from(["", "x", "ü", "a:b"]))
        rules = []
        for r in range(draw(st.integers(0, 3))):
            rule = {}
            if draw(st.booleans()):
                rule["when"] = draw(xconds)
            kind = draw(st.sampled_from(["serve", "rollout", "split"]))
            if draw(st.booleans()):
                rule["bucket_by"] = draw(
                    st.one_of(
                        st.sampled_from(ATTRS),
                        st.lists(st.sampled_from(ATTRS), min_size=1, max_size=2),
                    )
                )
            if draw(st.integers(0, 4)) == 0:
                rule["gates"] = [draw(gates())]
            if kind == "split":
                k = len(names)
                cuts = sorted(
                    draw(st.lists(st.integers(0, 100000), min_size=k - 1, max_size=k - 1))
                )
                pts = [0, *cuts, 100000]
                rule["split"] = {n: (pts[j + 1] - pts[j]) / 1000 for j, n in enumerate(names)}
                if draw(st.booleans()):
                    rule["split"] = {
                        n: (int(w) if w == int(w) else w) for n, w in rule["split"].items()
                    }
            else:
                rule["serve"] = draw(st.sampled_from(names))
                if kind == "rollout":
                    rule["rollout"] = draw(
                        st.one_of(
                            st.sampled_from([0, 100, 0.001, 99.999, 50, 33.333, 1e-3, 0.0]),
                            st.floats(0, 100),
                        )
                    )
            if draw(st.integers(0, 3)) == 0:
                rule["name"] = f"r{r}"
            rules.append(rule)
        if rules or draw(st.booleans()):
            flag["rules"] = rules
        earlier = [f"f{j}" for j in range(i)]
        if earlier and draw(st.booleans()):
            t = draw(st.sampled_from(earlier))
            tv = list(flags[t].get("variants") or {"on": 1, "off": 0})
            how = draw(st.sampled_from(["variant", "variants"]))
            flag["prerequisites"] = (
                [{"flag": t, "variant": draw(st.sampled_from(tv))}]
                if how == "variant"
                else [{"flag": t, "variants": draw(st.lists(st.sampled_from(tv), unique=True))}]
            )
        if draw(st.integers(0, 4)) == 0:
            flag["schedule"] = draw(
                st.sampled_from(
                    [
                        {"start": "2024-01-01T00:00:00Z"},
                        {"end": "2024-01-01T00:00:00Z"},
                        {"start": "2024-01-01T00:00:00Z", "end": "2030-01-01T00:00:00Z"},
                    ]
                )
            )
        flags[f"f{i}"] = flag
    return {"flags": flags}


ctxs = st.dictionaries(st.sampled_from(ATTRS), values, max_size=5)


def deflt():
    return st.one_of(
        st.none(), st.sampled_from(["s", 1, 0.5, True, {"a": 1}, [1], -0.0, I(1), S("x")])
    )


@settings(max_examples=examples(150), deadline=None, suppress_health_check=list(HealthCheck))
@given(snaps(), st.lists(ctxs, min_size=1, max_size=4), deflt())
def test_extended_documents_and_contexts_agree_on_every_entry_point(snapshot, cs, default):
    try:
        engines = [engine_class(IMPLS[k]).from_snapshot(snapshot) for k in ("c", "py")]
    except Exception as e:
        from cfgcore.errors import SnapshotError

        assert isinstance(e, SnapshotError), e
        with pytest.raises(SnapshotError):
            engine_class(IMPLS["py"]).from_snapshot(snapshot)
        return
    spec = Interpreter(snapshot_from_dict(snapshot))
    keys = [*snapshot["flags"], "missing"]
    for ctx in cs:
        a = _answers(engines[0], keys, ctx, default)
        b = _answers(engines[1], keys, ctx, default)
        assert a == b, (ctx,)
        a = _answers(engines[0], keys, engines[0].context(ctx), default)
        b = _answers(engines[1], keys, engines[1].context(ctx), default)
        assert a == b, (ctx, "bound")
        snap = engines[0].snapshot()
        r1 = engines[0].evaluate_all(ctx)
        direct = snap._all_direct  # set by the first evaluate_all (never set it True)
        snap._all_direct = False
        r2 = engines[0].evaluate_all(ctx)
        snap._all_direct = direct
        assert repr(r1) == repr(r2)
        for key in snapshot["flags"]:
            try:
                want = comparable(spec.evaluate(key, ctx, default))
            except Exception:
                continue
            got = comparable(engines[1].evaluate(key, ctx, default))
            assert got == want, (key, ctx, got, want)
