"""``prerequisite`` conditions: a rule (or any condition) that reads another flag's
answer, on both evaluators, with the flag-level prerequisites' limits.

A flag-level prerequisite switches the whole flag off (PREREQUISITE_FAILED); a
``prerequisite`` condition decides only the condition it is in, so a failing one skips
its rule and the flag goes on to the next.
"""

from __future__ import annotations

import sys

import msgspec
import pytest

from cfgcore import _layout as L
from cfgcore.compiler import (
    MAX_PREREQUISITE_DEPTH,
    MAX_PREREQUISITE_EVALUATIONS,
    compile_incremental,
    compile_snapshot,
)
from cfgcore.engine import engine_class
from cfgcore.errors import SnapshotError
from cfgcore.experiments.served import what_it_serves
from cfgcore.snapshot import (
    Condition,
    Flag,
    Prerequisite,
    Rule,
    Snapshot,
    decode_snapshot,
    flag_references,
    snapshot_from_dict,
)
from tests.conftest import IMPLS

IMPL_IDS = sorted(IMPLS)

PARENT = {
    "variants": {"gold": {"tier": 3}, "silver": {"tier": 2}, "none": None},
    "default": "none",
    "rules": [
        {"when": {"attr": "plan", "eq": "gold"}, "serve": "gold"},
        {"when": {"attr": "plan", "eq": "silver"}, "serve": "silver"},
    ],
}
BETA = {"default": "off", "rules": [{"when": {"attr": "beta", "eq": True}, "serve": "on"}]}
DOC = {
    "segments": {"paying": {"prerequisite": {"flag": "plan", "variants": ["gold", "silver"]}}},
    "flags": {
        "plan": PARENT,
        "beta": BETA,
        "banner": {
            "variants": {"gold": "G", "paying": "P", "beta": "B", "other": "O"},
            "default": "other",
            "rules": [
                {"when": {"prerequisite": {"flag": "plan", "variant": "gold"}}, "serve": "gold"},
                {"when": {"segment": "paying"}, "serve": "paying"},
                {"when": {"all": [{"prerequisite": "beta"}, {"attr": "n", "gt": 1}]},
                 "serve": "beta"},
            ],
        },
        "not_beta": {
            "default": "off",
            "rules": [{"when": {"prerequisite": {"flag": "beta", "off": True}}, "serve": "on"}],
        },
        "gated": {"default": "on", "prerequisites": ["beta"]},
        "reads_gated": {
            "default": "off",
            "rules": [{"when": {"not": {"prerequisite": "gated"}}, "serve": "on"}],
        },
    },
}  # fmt: skip

CASES = [
    ({"plan": "gold"}, {"banner": "gold", "not_beta": "on", "reads_gated": "on"}),
    ({"plan": "silver"}, {"banner": "paying", "not_beta": "on", "reads_gated": "on"}),
    ({"plan": "silver", "beta": True, "n": 2}, {"banner": "paying", "not_beta": "off"}),
    ({"beta": True, "n": 2}, {"banner": "beta", "not_beta": "off", "reads_gated": "off"}),
    ({"beta": True, "n": 1}, {"banner": "other", "reads_gated": "off"}),
    ({}, {"banner": "other", "not_beta": "on", "reads_gated": "on"}),
]


@pytest.mark.parametrize("impl", IMPL_IDS)
@pytest.mark.parametrize("ctx,want", CASES)
def test_a_rule_reads_another_flags_answer(impl, ctx, want):
    engine = engine_class(IMPLS[impl]).from_snapshot(DOC)
    for bound in (ctx, engine.context(ctx)):
        for key, variant in want.items():
            assert engine.variant(key, bound) == variant, (key, ctx)


@pytest.mark.parametrize("impl", IMPL_IDS)
def test_a_failing_test_skips_its_rule_not_the_flag(impl):
    engine = engine_class(IMPLS[impl]).from_snapshot(DOC)
    d = engine.evaluate("banner", {"plan": "silver"})
    assert (d.variant, d.reason, d.rule_index) == ("paying", "TARGETING_MATCH", 1)
    d = engine.evaluate("banner", {})
    assert (d.variant, d.reason, d.rule_index) == ("other", "DEFAULT", None)
    # a flag-level prerequisite, by contrast, switches the flag off
    assert engine.evaluate("gated", {}).reason == "PREREQUISITE_FAILED"
    counts = engine.take_evaluation_counts().evaluations
    # the flags read on the way are not counted, as prerequisites are not
    assert set(counts) == {("banner", "paying", "TARGETING_MATCH"),
                           ("banner", "other", "DEFAULT"),
                           ("gated", "off", "PREREQUISITE_FAILED")}  # fmt: skip


@pytest.mark.parametrize("impl", IMPL_IDS)
def test_a_bound_context_binds_what_the_read_flag_reads(impl):
    """``banner`` reads ``plan`` only through the flags it reads: its slot list holds
    them, so a lazily bound Context binds them for its check."""
    engine = engine_class(IMPLS[impl]).from_snapshot(DOC)
    ctx = engine.context({"plan": "gold"})
    assert engine.variant("banner", ctx) == "gold"
    assert engine.evaluate_all(ctx)["banner"] == "G"


def test_it_decodes_from_documents_and_round_trips():
    text = """
flags:
  p: {default: "off", rules: [{when: {attr: x, eq: 1}, serve: "on"}]}
  c:
    default: "off"
    rules:
      - when: {prerequisite: p}
        serve: "on"
      - when: {prerequisite: {flag: p, off: true}}
        serve: "off"
"""
    snap = decode_snapshot(text, "yaml")
    rules = snap.flags["c"].rules
    assert rules[0].when == Condition(prerequisite="p")
    assert rules[1].when == Condition(prerequisite=Prerequisite(flag="p", off=True))
    again = decode_snapshot(msgspec.json.encode(snap), "json")
    assert again == snap
    with pytest.raises(SnapshotError, match=r"prerequisite.*unknown field"):
        decode_snapshot('{"flags": {"c": {"default": "off", "rules": [{"when": '
                        '{"prerequisite": {"flag": "p", "varient": "x"}}, "serve": "on"}]}}}',
                        "json")  # fmt: skip


def _problems(doc) -> list[tuple[str, str]]:
    with pytest.raises(SnapshotError) as exc:
        compile_snapshot(snapshot_from_dict(doc))
    return [(p.path, p.message) for p in exc.value.problems]


def _rule(when) -> dict:
    return {"default": "off", "rules": [{"when": when, "serve": "on"}]}


def test_mistakes_are_refused_with_their_paths():
    doc = {
        "segments": {"s": {"prerequisite": {"flag": "p", "variant": "nope"}}},
        "flags": {
            "p": {"variants": {"a": 1, "b": 2}, "default": "a"},
            "unknown": _rule({"any": [{"prerequisite": "ghost"}]}),
            "not_bool": _rule({"prerequisite": "p"}),
            "bad_variant": _rule({"prerequisite": {"flag": "p", "variants": ["a", "z"]}}),
            "both": _rule({"prerequisite": {"flag": "p", "variant": "a", "off": True}}),
            "with_attr": _rule({"attr": "x", "prerequisite": {"flag": "p", "variant": "a"}}),
            "seg1": _rule({"segment": "s"}),
            "seg2": _rule({"not": {"segment": "s"}}),
        },
    }
    got = _problems(doc)
    assert ("flags.unknown.rules[0].when.any[0].prerequisite.flag", "unknown flag 'ghost'") in got
    assert (
        "flags.not_bool.rules[0].when.prerequisite",
        "flag 'p' is not boolean: name the variant required",
    ) in got
    assert (
        "flags.bad_variant.rules[0].when.prerequisite.variants[1]",
        "flag 'p' has no variant 'z'",
    ) in got
    assert ("flags.both.rules[0].when.prerequisite", "'variant' excludes 'off'") in got
    assert ("flags.with_attr.rules[0].when", "'prerequisite' takes no attr/ignore_case") in got
    # a segment's mistake is reported once, at the segment, however many flags use it
    seg = [p for p in got if p[0].startswith("segments.s")]
    assert seg == [("segments.s.prerequisite.variant", "flag 'p' has no variant 'nope'")]


def test_cycles_through_conditions_are_refused():
    self_loop = _problems({"flags": {"a": _rule({"prerequisite": "a"})}})
    assert any("prerequisite cycle: a -> a" in m for _, m in self_loop)
    mixed = _problems(
        {
            "flags": {
                "a": {"default": "off", "prerequisites": ["b"]},
                "b": _rule({"not": {"prerequisite": "c"}}),
                "c": _rule({"all": [{"prerequisite": "a"}]}),
            }
        }
    )
    assert any("prerequisite cycle" in m for _, m in mixed)


def test_a_cycle_is_reported_at_the_edge_that_closes_it():
    # at the condition or the prerequisite entry that reads back, not at a flag's
    # prerequisite list as a whole
    via_rule = _problems(
        {
            "flags": {
                "a": {"default": "off", "prerequisites": ["x", "b"]},
                "x": _rule({"eq": 1, "attr": "n"}),
                "b": _rule({"any": [{"eq": 1, "attr": "n"}, {"prerequisite": "a"}]}),
            }
        }
    )
    cycles = [(p, m) for p, m in via_rule if "prerequisite cycle" in m]
    assert cycles == [
        ("flags.b.rules[0].when.any[1].prerequisite", "prerequisite cycle: a -> b -> a")
    ]
    via_list = _problems({"flags": {"a": {"default": "off", "prerequisites": ["x", "a"]},
                                    "x": _rule({"eq": 1, "attr": "n"})}})  # fmt: skip
    assert [(p, m) for p, m in via_list if "cycle" in m] == [
        ("flags.a.prerequisites[1]", "prerequisite cycle: a -> a")
    ]


def _chain(n: int) -> dict:
    flags = {"f0": _rule({"attr": "x", "eq": 1})}
    for i in range(1, n):
        flags[f"f{i}"] = _rule({"any": [{"attr": "y", "eq": i}, {"prerequisite": f"f{i - 1}"}]})
    return {"flags": flags}


def test_the_chain_depth_and_fan_out_limits_hold_for_conditions():
    compile_snapshot(snapshot_from_dict(_chain(MAX_PREREQUISITE_DEPTH)))
    deep = _problems(_chain(MAX_PREREQUISITE_DEPTH + 1))
    assert any(f"deeper than {MAX_PREREQUISITE_DEPTH}" in m for _, m in deep)
    # each level reads the one below from 12 rules: 12**3 > 1,000 evaluations per check
    flags = {"l0": _rule({"attr": "x", "eq": 1})}
    for level in range(1, 4):
        below = f"l{level - 1}"
        flags[f"l{level}"] = {
            "default": "off",
            "rules": [{"when": {"prerequisite": below}, "serve": "on"} for _ in range(12)],
        }
    wide = _problems({"flags": flags})
    assert any(f"more than {MAX_PREREQUISITE_EVALUATIONS:,}" in m for _, m in wide)


@pytest.mark.parametrize("impl", IMPL_IDS)
def test_incremental_compiles_write_the_tests_again(impl):
    """A changed flag gets new variant records; an unchanged flag reading it keeps its
    condition nodes, whose want codes are written again for the new records."""
    first = snapshot_from_dict(DOC)
    changed = dict(DOC["flags"])
    changed["plan"] = {**PARENT, "variants": {"extra": 0, **PARENT["variants"]}}
    second = snapshot_from_dict({"segments": DOC["segments"], "flags": changed})
    incremental = compile_incremental(compile_snapshot(first), second)
    assert incremental.garbage > 0  # reused, not compiled from scratch
    module = IMPLS[impl]
    inc = module.CompiledSnapshot(incremental)
    full = module.CompiledSnapshot(compile_snapshot(second))
    for ctx, _ in CASES:
        assert inc.evaluate_all(ctx) == full.evaluate_all(ctx)
        assert inc.variant("banner", ctx) == full.variant("banner", ctx)


@pytest.mark.parametrize("impl", IMPL_IDS)
def test_a_shared_condition_holding_a_test_is_copied_not_called(impl):
    """A condition object shared by two flags is written once and called (OP_CALL) from
    its other uses, unless it reads a flag: its OP_FLAG node belongs to one flag."""
    shared = Condition(
        any=[Condition(prerequisite=Prerequisite(flag="p", variant="a")),
             Condition(attr="x", eq=1), Condition(attr="x", eq=2)]
    )  # fmt: skip
    flags = {
        "p": Flag(variants={"a": 1, "b": 2}, default="b",
                  rules=[Rule(when=Condition(attr="y", eq=1), serve="a")]),
        "c1": Flag(default="off", rules=[Rule(when=shared, serve="on")]),
        "c2": Flag(default="off", rules=[Rule(when=shared, serve="on")]),
    }  # fmt: skip
    tables = compile_snapshot(Snapshot(flags=flags))
    ops = tables.nodes[:: L.NW]
    assert L.OP_CALL not in ops and ops.count(L.OP_FLAG) == 2
    snap = IMPLS[impl].CompiledSnapshot(tables)
    assert [snap.variant(k, {"y": 1}) for k in ("c1", "c2")] == ["on", "on"]
    assert [snap.variant(k, {"y": 2}) for k in ("c1", "c2")] == ["off", "off"]


def test_flag_references_and_what_it_serves():
    snap = snapshot_from_dict(DOC)
    assert flag_references(snap.flags["banner"], snap.segments) == {"plan", "beta"}
    assert flag_references(snap.flags["gated"], snap.segments) == {"beta"}
    served = what_it_serves(compile_snapshot(snap), 0.0)
    # a rule on another flag's answer may or may not apply: not folded to a constant
    assert served["reads_gated"].state == "varies"


# -- recursion ---------------------------------------------------------------------------
def _depth() -> int:
    frame, n = sys._getframe(), 0
    while frame is not None:
        n, frame = n + 1, frame.f_back
    return n


def _nested(cond: dict, levels: int) -> dict:
    for _ in range(levels):
        cond = {"all": [cond]}
    return cond


def _deep_doc() -> dict:
    """32 flags, each reading the one below through a condition nested 28 levels deep
    or as a prerequisite, with a regex at the bottom (the deepest walk the compiler
    accepts is about a thousand levels)."""
    flags = {"f0": _rule(_nested({"attr": "a", "matches": "^x"}, 28))}
    for i in range(1, MAX_PREREQUISITE_DEPTH):
        below = f"f{i - 1}"
        if i % 2:
            flags[f"f{i}"] = {**_rule(_nested({"attr": "a", "exists": True}, 28)),
                              "prerequisites": [below]}  # fmt: skip
        else:
            flags[f"f{i}"] = _rule(_nested({"prerequisite": below}, 28))
    return {"flags": flags}


@pytest.mark.parametrize("impl", IMPL_IDS)
def test_deep_chains_answer_near_the_recursion_limit(impl):
    """Prerequisites and conditions nest on a list in the reference evaluator, not on
    Python's stack (as the compiled evaluator's C calls never counted): a check made 20
    frames below the recursion limit answers on both."""
    engine = engine_class(IMPLS[impl]).from_snapshot(_deep_doc())
    top = f"f{MAX_PREREQUISITE_DEPTH - 1}"
    ctx = engine.context({"a": "xy"})
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(_depth() + 20)
    try:
        got = [
            engine.is_enabled(top, {"a": "xy"}),
            engine.is_enabled(top, {"a": "no"}),
            engine.evaluate(top, ctx).variant,
            engine.evaluate_all(ctx)[top],
        ]
    finally:
        sys.setrecursionlimit(old)
    assert got == [True, False, "on", True]
