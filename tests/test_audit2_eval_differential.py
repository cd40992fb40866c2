"""Second audit of the two evaluators: differential checks over what the first round's
generators leave out.

* snapshots with many attributes, so the compiled evaluator's other binding paths run:
  more slots than a Binding holds inline (8), than a dict binds on the C stack (32) and
  than the per-flag slot masks cover (64);
* schedules, read through a test clock;
* context values that are str/int/float subclasses (bound by their exact value: the
  same answers as the plain values), huge ints, NaN and infinities, lone surrogates;
* contexts that are dicts, bound Contexts, other mappings and Contexts over them;
* every entry point: is_enabled, variant, value, evaluate (every field), evaluate_all,
  the observed path (answer, details, bucket, unit) and the evaluation counts.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfgcore.engine import engine_class
from tests.conftest import IMPLS
from tests.fuzz import examples
from tests.mappings import DictMapping
from tests.test_core_differential import NUMS, WORDS, ctx_values, same, snapshots

pytestmark = pytest.mark.skipif("c" not in IMPLS, reason="the compiled extension is not built")

# The generators read attributes from tests.test_core_differential.ATTRS; the padding
# flags below add this many more, each read by one flag.
EXTRA = [f"a{i}" for i in range(70)]
WINDOW = {"start": "2024-01-01T00:00:00Z", "end": "2025-01-01T00:00:00Z"}
INSIDE, OUTSIDE = 1.72e9, 1.8e9  # epoch seconds in and after the window


class S(str):
    pass


class I(int):  # noqa: E742 - a one-letter name, as S and F
    pass


class F(float):
    pass


def subclassed(value):
    if isinstance(value, bool) or value is None:
        return value
    for base, sub in ((str, S), (int, I), (float, F)):
        if isinstance(value, base):
            return sub(value)
    return value


Plain = DictMapping  # a mapping that is not a dict


odd_values = st.one_of(
    ctx_values,
    st.sampled_from(["\ud800", "a\udfff", "1.2.3\ud800", "ﬁ", "İ", "K", "ß" * 9]),
    st.sampled_from([2**53, 2**53 + 1, 2**63, 2**64, -(2**64), 10**400, -0.0, 1e308]),
    st.sampled_from([float("inf"), float("-inf"), float("nan")]),
)


def _padded(snapshot: dict, slots: int) -> dict:
    """The snapshot plus flags that read ``slots`` more attributes (one each)."""
    flags = dict(snapshot["flags"])
    for i, name in enumerate(EXTRA[:slots]):
        flags[f"pad{i}"] = {
            "default": "off",
            "rules": [{"when": {"attr": name, "eq": WORDS[i % len(WORDS)]}, "serve": "on"}],
        }
    return {**snapshot, "flags": flags}


def _scheduled(snapshot: dict, rnd: random.Random) -> dict:
    flags = {}
    for key, flag in snapshot["flags"].items():
        flags[key] = {**flag, "schedule": WINDOW} if rnd.random() < 0.5 else flag
    return {**snapshot, "flags": flags}


def _details(d) -> tuple:
    return (
        d.flag_key, repr(d.value), type(d.value).__name__, d.variant, d.reason,
        d.rule_index, d.error_code, d.error_message, d.snapshot_version,
    )  # fmt: skip


def _answers(engine, keys, ctx, default) -> list:
    out = []
    snap = engine.snapshot()
    for key in keys:
        out.append(engine.is_enabled(key, ctx))
        out.append(engine.variant(key, ctx))
        value = engine.value(key, ctx, default)
        out.append((repr(value), type(value).__name__))
        out.append(_details(engine.evaluate(key, ctx, default)))
        for kind in range(4):
            answer, details, bucket, unit = snap._observe(
                kind, key, ctx, default if kind >= 2 else None
            )
            shown = _details(answer) if kind == 3 else (repr(answer), type(answer).__name__)
            out.append((kind, shown, _details(details), bucket, unit))
    everything = engine.evaluate_all(ctx)
    out.append([(k, repr(v), type(v).__name__) for k, v in everything.items()])
    return out


@settings(max_examples=examples(150), deadline=None, suppress_health_check=list(HealthCheck))
@given(
    snapshots(),
    st.sampled_from([0, 6, 30, 70]),
    st.lists(st.dictionaries(st.sampled_from(["seg", "n", "v", "user_id", "targeting_key",
                                              *EXTRA]), odd_values, max_size=12),
             min_size=1, max_size=3),
    st.one_of(st.none(), st.sampled_from(WORDS), st.sampled_from(NUMS), st.booleans()),
    st.randoms(use_true_random=False),
)  # fmt: skip
def test_both_evaluators_agree_on_every_path(snapshot, slots, ctxs, default, rnd):
    snapshot = _scheduled(_padded(snapshot, slots), rnd)
    engines = [engine_class(IMPLS[impl]).from_snapshot(snapshot) for impl in ("c", "py")]
    now = rnd.choice([INSIDE, OUTSIDE])
    for engine in engines:
        engine.set_clock(lambda: now)
    keys = [*snapshot["flags"], "missing"]
    rnd.shuffle(keys)
    keys = keys[:8]  # the padding flags are many: a sample of them, in any order
    for attrs in ctxs:
        for shape in ("dict", "bound", "mapping", "bound mapping", "subclassed"):
            got = []
            for engine in engines:
                if shape == "subclassed":
                    data = {k: subclassed(v) for k, v in attrs.items()}
                    ctx = engine.context(data) if rnd.random() < 0.5 else data
                else:
                    data = Plain(attrs) if "mapping" in shape else attrs
                    ctx = engine.context(data) if "bound" in shape else data
                got.append(_answers(engine, keys, ctx, default))
            assert got[0] == got[1], (shape, attrs)
            if shape == "subclassed":  # a subclass value answers as its plain value
                for engine, answers in zip(engines, got, strict=True):
                    assert answers == _answers(engine, keys, attrs, default), attrs
    c, p = (engine.take_evaluation_counts() for engine in engines)
    assert (c.evaluations, c.errors, c.versions) == (p.evaluations, p.errors, p.versions)


@settings(max_examples=examples(80), deadline=None, suppress_health_check=list(HealthCheck))
@given(snapshots(), st.lists(st.dictionaries(st.sampled_from(EXTRA[:40]), odd_values),
                             min_size=1, max_size=4))  # fmt: skip
def test_evaluate_all_answers_what_each_flag_answers(snapshot, ctxs):
    """One evaluate_all equals the flags' single evaluations, on both evaluators, for
    a dict and for a bound Context (bound once for all flags, or one flag at a time)."""
    snapshot = _padded(snapshot, 40)
    for impl in ("c", "py"):
        engine = engine_class(IMPLS[impl]).from_snapshot(snapshot)
        for attrs in ctxs:
            single = {key: engine.value(key, attrs) for key in snapshot["flags"]}
            lazily = engine.context(attrs)
            one_by_one = {key: engine.value(key, lazily) for key in snapshot["flags"]}
            for got in (engine.evaluate_all(attrs), engine.evaluate_all(engine.context(attrs)),
                        one_by_one, engine.evaluate_all(lazily)):  # fmt: skip
                assert list(got) == list(single)
                assert all(same(got[k], single[k]) for k in single), (impl, attrs)
