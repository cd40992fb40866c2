"""Split weights and rollouts finer than the 0.001% bucket grid are rounded visibly.

The grid stays (moving it would move every sticky user): a split's ranges end at the
rounded cumulative weights, so they cover exactly 100% whatever the weights, both
evaluators serve the same variant to every user, and compiling such a document logs
a warning naming the flag and the rule path (``cfgcore.compiler``).
"""

from __future__ import annotations

import logging

from hypothesis import example, given, settings
from hypothesis import strategies as st

from cfgcore.compiler import BUCKETS, compile_incremental, compile_snapshot
from cfgcore.snapshot import snapshot_from_dict
from tests.fuzz import examples
from tests.log_records import records
from tests.texts import any_text


def _doc(weights: dict, rollout=None) -> dict:
    rules = [{"split": weights}]
    if rollout is not None:
        rules.insert(0, {"when": {"attr": "beta", "eq": True}, "serve": "c", "rollout": rollout})
    return {
        "flags": {
            "f": {"default": "a", "variants": {"a": "A", "b": "B", "c": "C"}, "rules": rules},
            "g": {"default": "off", "rules": [{"serve": "on", "rollout": 50}]},
        }
    }


THIRDS = {"a": 33.3333, "b": 33.3333, "c": 33.3334}


def _widths(tables) -> list[int]:
    ends = tables.splits[0::2][:3]
    return [b - a for a, b in zip([0, *ends], ends, strict=False)]


def test_weights_past_three_decimals_cover_exactly_100_percent_on_the_same_grid(caplog):
    with caplog.at_level(logging.WARNING, logger="cfgcore.compiler"):
        tables = compile_snapshot(snapshot_from_dict(_doc(THIRDS)), file="flags.yaml")
    # the cumulative ends as before (33333, 66667, 100000): nobody moves
    assert tables.splits[0::2][:3] == [33333, 66667, BUCKETS]
    assert sum(_widths(tables)) == BUCKETS
    [record] = [r for r in caplog.records if r.name == "cfgcore.compiler"]
    assert record.levelno == logging.WARNING
    message = record.getMessage()
    assert message.startswith("flags.yaml: flags.f.rules[0].split: weights finer than 0.001%")
    assert "a 33.333%, b 33.334%, c 33.333%" in message


def test_weights_on_the_grid_compile_without_a_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="cfgcore.compiler"):
        compile_snapshot(snapshot_from_dict(_doc({"a": 33.333, "b": 33.333, "c": 33.334})))
        compile_snapshot(snapshot_from_dict(_doc({"a": 0.1, "b": 0.2, "c": 99.7}, 12.5)))
    assert [r for r in caplog.records if r.name == "cfgcore.compiler"] == []


def test_a_rollout_past_three_decimals_warns_naming_its_rule(caplog):
    with caplog.at_level(logging.WARNING, logger="cfgcore.compiler"):
        compile_snapshot(snapshot_from_dict(_doc({"a": 50, "b": 50}, 12.34567)))
    [record] = [r for r in caplog.records if r.name == "cfgcore.compiler"]
    assert record.getMessage() == (
        "flags.f.rules[0].rollout: 12.34567% is finer than the 0.001% buckets: served to 12.346%"
    )


@given(
    key=any_text(min_size=1, max_size=6),
    variant=any_text(min_size=1, max_size=6).filter(lambda v: v != "a"),
)
@example(key="f\nflags.g: forged", variant="b")
@example(key="\udc00", variant="\u2028")
def test_a_warning_is_one_printable_line_whatever_the_names(key, variant):
    """A flag key or variant name holding a newline, a control character or a lone
    surrogate is escaped: the warning stays one line, writable to a UTF-8 log file."""
    doc = {"flags": {key: {"default": "a", "variants": {"a": 1, variant: 2},
                           "rules": [{"split": {"a": 33.3333, variant: 66.6667}}]}}}  # fmt: skip
    with records(logging.WARNING, "cfgcore.compiler") as got:
        compile_snapshot(snapshot_from_dict(doc), file="flags.yaml")
    [record] = got
    message = record.getMessage()
    assert message.isprintable(), message
    message.encode("utf-8")  # (raises for a lone surrogate)
    assert message.startswith("flags.yaml: flags")
    assert "weights finer than 0.001%" in message


def test_an_incremental_compile_warns_of_the_changed_flags_only(caplog):
    first = compile_snapshot(snapshot_from_dict(_doc(THIRDS)))
    changed = _doc(THIRDS)
    changed["flags"]["g"]["rules"][0]["rollout"] = 60
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="cfgcore.compiler"):
        compile_incremental(first, snapshot_from_dict(changed))
    assert [r for r in caplog.records if r.name == "cfgcore.compiler"] == []
    changed["flags"]["f"]["rules"][0]["split"] = {"a": 10.00001, "b": 89.99999}
    with caplog.at_level(logging.WARNING, logger="cfgcore.compiler"):
        compile_incremental(first, snapshot_from_dict(changed))
    [record] = [r for r in caplog.records if r.name == "cfgcore.compiler"]
    assert "flags.f.rules[0].split" in record.getMessage()


weights = st.lists(
    st.floats(min_value=0.0, max_value=100.0, allow_nan=False), min_size=2, max_size=5
).map(lambda ws: [w * 100.0 / sum(ws) for w in ws] if sum(ws) > 0 else [100.0] + ws[1:])


@settings(max_examples=examples(60), deadline=None)
@given(ws=weights, users=st.lists(any_text(max_size=8), min_size=1, max_size=20))
def test_rounded_splits_serve_alike_on_both_evaluators(make_py_and_c, ws, users):
    names = ["a", "b", "c", "d", "e"][: len(ws)]
    doc = {
        "flags": {
            "f": {
                "default": "a",
                "variants": {n: n.upper() for n in names},
                "rules": [{"split": dict(zip(names, ws, strict=True))}],
            }
        }
    }
    tables = compile_snapshot(snapshot_from_dict(doc))
    ends = tables.splits[0::2]
    assert ends[-1] == BUCKETS and ends == sorted(ends)
    engines = [build(doc) for build in make_py_and_c]
    for user in users:
        served = {engine.variant("f", {"user_id": user}) for engine in engines}
        assert len(served) == 1
