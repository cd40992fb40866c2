"""Differential fuzzing of the two evaluators through the seed's
``DynamicConfigurationManager``: one manager on each evaluator, given the same changes,
answers alike.

The other differential files drive engines and ``SeedAPI`` directly; none compares two
managers. Here the same random changes go to a manager on each evaluator (A/B tests with
odd traffic splits, layers and layer shares, targeting, windows at the clock's edges,
created started or stopped, stopped later; flag switches with odd rollouts, flag
dependencies, holdouts), and both must answer alike: what each change returns or
raises, then ``is_feature_enabled``, ``get_ab_test_variant`` and ``record_metric`` for
users whose ids are ints, their decimal text, str/int subclasses, lone surrogates,
bools, floats and huge ints, and ``get_feature_flags_status``.

``CFGCORE_MANAGER_DIFF_EXAMPLES=N`` runs N examples (25 by default; a campaign of
thousands of change sequences, beside 60,000+ documents against engines and the seed
API directly, found no disagreement).
"""

from __future__ import annotations

import os
import re
import tempfile
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfgcore.dynamic_config import ABTestConfiguration, DynamicConfigurationManager, FeatureFlag
from cfgcore.engine import engine_class
from tests.conftest import IMPLS
from tests.fuzz import examples

pytestmark = pytest.mark.skipif("c" not in IMPLS, reason="the compiled extension is not built")

EXAMPLES = int(os.environ.get("CFGCORE_MANAGER_DIFF_EXAMPLES") or examples(25))
NOW = 1767225600.0  # 2026-01-01T00:00:00Z
FLAGS = list(FeatureFlag)
WEIGHTS = [0, 1, 12.5, 33.333, 33.3333, 50, 66.667, 99.999, 0.001, 0.0005, 1e-9, 100]


class _Str(str):
    def __hash__(self):
        raise RuntimeError("hash")

    def __eq__(self, other):
        raise RuntimeError("eq")


class _Int(int):
    def __str__(self):
        raise RuntimeError("str")


@st.composite
def splits(draw):
    names = ["control", "treatment", "b", "ß"][: draw(st.integers(2, 4))]
    if draw(st.booleans()):
        weights = [100 / len(names)] * len(names)
    else:
        weights = [draw(st.sampled_from(WEIGHTS)) for _ in names[:-1]]
        weights.append(draw(st.sampled_from([100 - sum(weights), *WEIGHTS])))
    return dict(zip(names, weights, strict=True))


@st.composite
def ab_tests(draw):
    split = draw(splits())
    start = datetime.fromtimestamp(NOW + draw(st.sampled_from([-86400, -1, 0, 1])), timezone.utc)
    fields = {
        "test_name": draw(st.sampled_from(["t0", "t1", "t2", "ß-test"])),
        "description": "d",
        "start_date": start,
        "end_date": start + timedelta(seconds=draw(st.sampled_from([1, 86400]))),
        "traffic_split": split,
        "configurations": {k: {"v": k} for k in split},
    }
    if draw(st.booleans()):
        fields["control"] = draw(st.sampled_from(list(split)))
    if draw(st.booleans()):
        fields["layer"] = draw(st.sampled_from(["L1", "L2"]))
        fields["layer_percentage"] = draw(st.sampled_from([100.0, 50, 33.333, 0.001, 0, 1e-9]))
    if draw(st.booleans()):
        fields["targeting"] = draw(
            st.sampled_from(
                [
                    {"attr": "region", "in": ["EU", "eu"]},
                    {"attr": "n", "gt": 1},
                    {"attr": "segment", "eq": "premium", "ignore_case": True},
                    {"not": {"attr": "region", "exists": True}},
                ]
            )
        )
    return ABTestConfiguration(**fields)


changes = st.one_of(
    st.tuples(st.just("create"), ab_tests(), st.booleans()),
    st.tuples(
        st.just("set"),
        st.sampled_from([*FLAGS, "custom"]),
        st.booleans(),
        st.sampled_from([100.0, 0, 50, 33.333, 0.0005, 99.9995, 1e-9]),
    ),
    st.tuples(st.just("deps"), st.sampled_from(FLAGS), st.sampled_from(FLAGS)),
    st.tuples(st.just("stop"), st.sampled_from(["t0", "t1", "missing"])),
    st.tuples(st.just("holdout"), st.sampled_from([0, 5, 12.5, 0.001, 99.999])),
)

# Values hypothesis must not hash or print whole, drawn by name and made in the test.
MADE = {"<int 7>": lambda: _Int(7), "<str u1>": lambda: _Str("u1"), "<str EU>": lambda: _Str("EU"),
        "<long>": lambda: "x" * 5000}  # fmt: skip
IDS = ["12345", 12345, "u1", "ß", "", "0", 0, -1, "\ud800", 2**70, True, 3.5, "٣", *MADE]
users = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "user_id": st.sampled_from(IDS),
            "targeting_key": st.sampled_from(IDS),
            "region": st.sampled_from(["EU", "eu", "US", None, 1, "<str EU>"]),
            "segment": st.sampled_from(["premium", "PREMIUM", "free"]),
            "n": st.sampled_from([0, 2, 1.5, float("nan"), 2**70, True]),
        },
    ),
    st.sampled_from([None, 42, "user"]),
)


def _made(ctx):
    if not isinstance(ctx, dict):
        return ctx
    return {k: MADE[v]() if isinstance(v, str) and v in MADE else v for k, v in ctx.items()}


def _outcome(call, *args, **kwargs):
    try:
        return ("ok", call(*args, **kwargs))
    except Exception as exc:  # a refused change: compared by type and message
        return ("raised", type(exc).__name__, re.sub(r"memory://[0-9a-f]+", "", str(exc)))


def _change(manager, change):
    kind, *args = change
    if kind == "create":
        return _outcome(manager.create_ab_test, args[0], start=args[1])
    if kind == "set":
        return _outcome(manager.set_feature_flag, *args)
    if kind == "deps":
        return _outcome(manager.set_flag_dependencies, args[0], [args[1]])
    if kind == "stop":
        return _outcome(manager.stop_ab_test, args[0])
    return _outcome(manager.set_holdout_percentage, args[0])


def _answers(manager, names, ctx):
    out = [_outcome(manager.is_feature_enabled, f, ctx) for f in [*FLAGS[:6], "custom"]]
    out += [_outcome(manager.get_ab_test_variant, n, ctx) for n in names]
    out += [_outcome(manager.record_metric, n, "m", 1.0, user_context=ctx) for n in names[:2]]
    return out


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.lists(changes, min_size=1, max_size=6), st.lists(users, min_size=1, max_size=8))
def test_managers_on_both_evaluators_change_and_answer_alike(changes, contexts):
    with tempfile.TemporaryDirectory() as root:
        managers = [
            DynamicConfigurationManager(
                state_dir=os.path.join(root, name),
                engine=engine_class(impl)(),
                persist=False,
                log_exposures=False,
                clock=lambda: NOW,
                record_usage=False,
            )
            for name, impl in IMPLS.items()
        ]
        try:
            done = [[_change(m, change) for change in changes] for m in managers]
            assert done[0] == done[1], changes
            names = [*managers[0].list_ab_tests(), "missing"]
            for ctx in map(_made, contexts):
                assert _answers(managers[0], names, ctx) == _answers(managers[1], names, ctx), ctx
            assert managers[0].get_feature_flags_status() == managers[1].get_feature_flags_status()
        finally:
            for m in managers:
                m.close()
