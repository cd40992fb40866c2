"""What a flag can serve (cfgcore.experiments.served), read from the compiled tables:
the cases ``cfgcore flags stale`` relies on, and a hypothesis check against both
evaluators that no context ever gets a variant the analysis ruled out."""

from __future__ import annotations

from datetime import datetime

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfgcore.compiler import compile_snapshot
from cfgcore.experiments.features import with_rollout
from cfgcore.experiments.served import what_it_serves
from cfgcore.snapshot import (
    Condition,
    Flag,
    Gate,
    Hashing,
    Prerequisite,
    Rule,
    Schedule,
    Snapshot,
    snapshot_from_dict,
)
from tests.fuzz import examples

NOW = 1_800_000_000.0  # 2027-01-15
PAST, FUTURE = "2026-06-01T00:00:00Z", "2027-06-01T00:00:00Z"
PAST_DT, FUTURE_DT = (datetime.fromisoformat(t.replace("Z", "+00:00")) for t in (PAST, FUTURE))


def served(flags: dict, key: str = "f", now: float = NOW):
    snap = snapshot_from_dict({"flags": flags})
    return what_it_serves(compile_snapshot(snap), now)[key]


@pytest.mark.parametrize(
    "flag, state, variants, everyone",
    [
        ({"default": "on"}, "on", ("on",), True),
        ({"default": "off"}, "off", ("off",), True),
        ({"default": "off", "rules": [{"serve": "on"}]}, "on", ("on",), True),
        # every rule serves what the default serves
        ({"default": "off", "rules": [{"when": {"attr": "region", "eq": "EU"}, "serve": "off"},
                                      {"rollout": 30, "serve": "off"}]},
         "off", ("off",), True),
        ({"default": "off", "rules": [{"rollout": 0, "serve": "on"}]}, "off", ("off",), True),
        # a 100% rollout serves everyone with a user id; the others fall through
        ({"default": "off", "rules": [{"rollout": 100, "serve": "on"}]}, "on", ("on",), False),
        ({"default": "on", "rules": [{"rollout": 100, "serve": "on"}]}, "on", ("on",), True),
        ({"default": "off", "rules": [{"rollout": 50, "serve": "on"}]},
         "varies", ("off", "on"), True),
        ({"default": "off", "rules": [{"when": {"attr": "region", "eq": "EU"}, "serve": "on"}]},
         "varies", ("off", "on"), True),
        # conditions the compiler can decide
        ({"default": "off", "rules": [{"when": {"any": []}, "serve": "on"}]},
         "off", ("off",), True),
        ({"default": "off", "rules": [{"when": {"all": []}, "serve": "on"}]}, "on", ("on",), True),
        ({"default": "off", "rules": [{"when": {"not": {"any": []}}, "serve": "on"}]},
         "on", ("on",), True),
        # a rule nobody passes is shadowed, a catch-all shadows what follows
        ({"default": "on", "rules": [{"serve": "off"}, {"serve": "on"}]}, "off", ("off",), True),
        # multivariate
        ({"variants": {"a": 1, "b": 2}, "default": "a",
          "rules": [{"when": {"attr": "x", "eq": 1}, "serve": "a"}]}, "constant", ("a",), True),
        ({"variants": {"a": 1, "b": 2}, "default": "a", "rules": [{"split": {"a": 100, "b": 0}}]},
         "constant", ("a",), True),
        ({"variants": {"a": 1, "b": 2}, "default": "b", "rules": [{"split": {"a": 100, "b": 0}}]},
         "constant", ("a",), False),
        ({"variants": {"a": 1, "b": 2}, "default": "a", "rules": [{"split": {"a": 60, "b": 40}}]},
         "varies", ("a", "b"), True),
        # named on-variants (imported flags)
        ({"variants": {"blue": "#00f", "red": "#f00"}, "on_variants": ["blue", "red"],
          "default": "blue", "rules": [{"split": {"blue": 50, "red": 50}}]}, "on",
         ("blue", "red"), True),
    ],
)  # fmt: skip
def test_what_a_flag_serves(flag, state, variants, everyone):
    got = served({"f": flag})
    assert (got.state, got.variants, got.for_everyone) == (state, variants, everyone)


def test_disabled_schedules_and_prerequisites_say_why():
    got = served({"f": {"default": "on", "enabled": False}})
    assert (got.state, got.why) == ("off", "disabled (enabled: false)")
    ended = served({"f": {"default": "on", "schedule": {"end": PAST}}})
    assert ended.state == "off" and ended.why.startswith("its schedule ended at 2026-06-01")
    assert ended.since == 1780272000.0
    assert served({"f": {"default": "on", "schedule": {"start": FUTURE}}}).state == "varies"
    # on now, but off when the window closes: not a flag to remove
    assert served({"f": {"default": "on", "schedule": {"end": FUTURE}}}).state == "varies"
    assert served({"f": {"default": "on", "schedule": {"start": PAST}}}).state == "on"
    flags = {
        "gate": {"default": "off"},
        "f": {"default": "on", "prerequisites": ["gate"]},
        "g": {"default": "on", "prerequisites": [{"flag": "gate", "off": True}]},
    }
    never = served(flags)
    assert never.state == "off" and never.why == "its prerequisite 'gate' is never met"
    assert served(flags, "g").state == "on"  # a prerequisite that always holds


def test_describe_says_who_gets_what():
    assert served({"f": {"default": "off", "rules": [{"serve": "on"}]}}).describe() == (
        "on for everyone: every path serves 'on'"
    )
    partial = served({"f": {"default": "off", "rules": [{"rollout": 100, "serve": "on"}]}})
    assert partial.others == ("off",)
    assert partial.describe() == (
        "on for every user with a bucketing attribute: every path serves 'on' "
        "(users without one get 'off')"
    )


def test_set_feature_flag_at_100_percent_is_fully_on():
    """What the dynamic API writes for a full rollout is judged fully on, for everyone."""
    base = Flag(default="off", rules=[Rule(when=None, serve="on", rollout=25)])
    flag = with_rollout(base, 100.0)
    snap = Snapshot(flags={"f": flag})
    got = what_it_serves(compile_snapshot(snap), NOW)["f"]
    assert (got.state, got.for_everyone) == ("on", True)


# -- soundness against both evaluators ------------------------------------------------

SCHEDULES = [None, Schedule(end=PAST_DT), Schedule(start=FUTURE_DT), Schedule(end=FUTURE_DT),
             Schedule(start=PAST_DT)]  # fmt: skip
HASH = Hashing(scheme="murmur3", by=["user_id"], salt="s:", space=100)
WHEN = [None, {"attr": "region", "eq": "EU"}, {"any": []}, {"all": []}, {"not": {"any": []}}]


@st.composite
def flags(draw, earlier: list[str]):
    multi = draw(st.booleans())
    names = ["a", "b", "c"] if multi else ["on", "off"]
    variants = {"a": 1, "b": 2, "c": 3} if multi else None
    rules = []
    for _ in range(draw(st.integers(0, 3))):
        when = draw(st.sampled_from(WHEN))
        cond = msgspec.convert(when, Condition) if when else None
        gates = draw(st.sampled_from([[], [Gate(HASH, hi=100)], [Gate(HASH, lo=20, hi=60)],
                                      [Gate(HASH, lo=30, hi=30)]]))  # fmt: skip
        kind = draw(st.sampled_from(["split", "serve", "buckets"]))
        if kind == "split":
            weights = draw(st.sampled_from([(100, 0), (0, 100), (50, 50), (99.999, 0.001)]))
            split = dict(zip(names[:2], weights, strict=True))
            rules.append(Rule(when=cond, split=split, gates=gates))
        elif kind == "serve":
            rollout = draw(st.sampled_from([None, 0, 50, 100]))
            serve = draw(st.sampled_from(names))
            rules.append(Rule(when=cond, serve=serve, rollout=rollout, gates=gates))
        else:
            buckets = draw(st.sampled_from([[(names[0], 100)], [(names[0], 40), (None, 60)],
                                            [(names[1], 50)], [(None, 100)],
                                            [(names[0], 0), (names[1], 100)]]))  # fmt: skip
            rules.append(Rule(when=cond, hash=HASH, buckets=buckets, gates=gates))
    schedule = draw(st.sampled_from(SCHEDULES))
    pres: list[str | Prerequisite] = []
    if earlier and draw(st.booleans()):
        target = draw(st.sampled_from(earlier))
        pres.append(draw(st.sampled_from([target, Prerequisite(flag=target, off=True)])))
    return Flag(
        variants=variants,
        default=draw(st.sampled_from(names)),
        off_variant=draw(st.sampled_from([None, names[-1]])),
        enabled=draw(st.booleans()) or draw(st.booleans()),
        rules=rules,
        prerequisites=pres,
        schedule=schedule,
        bucket_by=draw(st.sampled_from([None, ["team"]])),
    )


@st.composite
def snapshots(draw):
    out: dict[str, Flag] = {}
    for i in range(draw(st.integers(1, 4))):
        # prerequisites only on boolean flags (a bare name requires "on")
        boolean = [k for k, f in out.items() if f.variants is None]
        out[f"f{i}"] = draw(flags(boolean))
    return Snapshot(flags=out)


CONTEXTS = [
    {"user_id": "u1", "team": "t1", "region": "EU"},
    {"user_id": "u2", "team": "t9", "region": "US"},
    {"user_id": "u3", "team": "t4"},
    *[{"user_id": f"user-{i}", "team": f"team-{i}", "region": "EU" if i % 2 else "US"}
      for i in range(40)],
    {"region": "EU"},
    {"team": "t1"},
    {"user_id": "u5"},
    {},
]  # fmt: skip


def _identified(ctx: dict) -> bool:
    return "user_id" in ctx and "team" in ctx


@settings(max_examples=examples(200), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(snap=snapshots())
def test_no_context_gets_a_variant_the_analysis_ruled_out(snap, make_py_and_c):
    result = what_it_serves(compile_snapshot(snap), NOW)
    for build in make_py_and_c:
        engine = build(snap)
        engine.set_clock(lambda: NOW)
        for key, s in result.items():
            everyone = set(s.variants) | set(s.others)
            for ctx in CONTEXTS:
                got = engine.variant(key, ctx)
                if _identified(ctx):
                    assert got in s.variants, (key, ctx, s)
                assert got in everyone, (key, ctx, s)
                if s.state in ("on", "off") and (s.for_everyone or _identified(ctx)):
                    assert engine.is_enabled(key, ctx) is (s.state == "on"), (key, ctx, s)
