"""The judge of moved enrolled users (``moved_users``) passes over a test the document
leaves as it was (its record, its flag and its layer slice the same as stored), so a
change of one flag of a document holding many tests is judged by what it changes. That
shortcut must never change a verdict: every document here is judged with it and with it
turned off (every test judged in full), and the two verdicts must be the same.

The tests are made by the experiment API on a real flags file, the edits by hand, as
another tool would make them.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfgcore.dynamic_config import ABTestConfiguration, DynamicConfigurationManager
from cfgcore.engine import Engine
from cfgcore.experiments import abtest
from cfgcore.runtime.flags import derive
from cfgcore.snapshot import Rule, Snapshot, load_snapshot
from tests.fuzz import examples

NAMES = ["t0", "t1", "t2", "t3", "t4"]


@pytest.fixture(scope="module")
def stored(tmp_path_factory) -> Snapshot:
    """Five started tests (three in one layer, side by side), users exposed: the
    document as stored."""
    root = tmp_path_factory.mktemp("moved")
    m = DynamicConfigurationManager(
        flags_file=str(root / "flags.yaml"), state_dir=root / "state", engine=Engine(),
        record_usage=False, guardrail_check_every=10**9,
    )  # fmt: skip
    now = datetime.now(timezone.utc)
    try:
        for i, name in enumerate(NAMES):
            layered = {"layer": "home", "layer_percentage": 30} if i < 3 else {}
            test = ABTestConfiguration(
                test_name=name, description="d", start_date=now - timedelta(days=1),
                end_date=now + timedelta(days=10),
                traffic_split={"control": 50, "green": 30, "blue": 20},
                configurations={"control": {"x": 1}, "green": {"x": 2}, "blue": {"x": 3}},
                success_metrics=["conv"], **layered,
            )  # fmt: skip
            assert m.create_ab_test(test), m.last_error
            for u in range(20):
                m.get_ab_test_variant(name, {"user_id": f"u{u}"})
        return load_snapshot(m.flags_file)
    finally:
        m.close()


# What an edit does to one test: nothing, or a change that moves users or does not.
EDITS = [
    "unchanged",
    "record split",  # its record's split changed, its flag not
    "both splits",  # record and flag changed alike
    "serve one",  # its flag serves one variant to everyone
    "stopped",  # its record stopped, its flag serving the control
    "description",  # a field that moves nobody
    "key order",  # the same record, its keys in another order
    "share",  # its layer share changed (moves the slices after it)
    "weight types",  # 50 -> 50.0 in the record: the same split, stored otherwise
]


def _edit(snap: Snapshot, name: str, how: str) -> Snapshot:
    record = dict(snap.experiments[name])
    flag = snap.flags[name]
    if how == "unchanged":
        return snap
    if how == "record split":
        record["traffic_split"] = {"control": 40, "green": 40, "blue": 20}
    elif how == "both splits":
        record["traffic_split"] = {"control": 40, "green": 40, "blue": 20}
        rules = [
            msgspec.structs.replace(r, split={"control": 40, "green": 40, "blue": 20})
            if r.split
            else r
            for r in flag.rules
        ]
        flag = msgspec.structs.replace(flag, rules=rules)
    elif how == "serve one":
        when = flag.rules[0].when if flag.rules else None
        flag = msgspec.structs.replace(flag, rules=[Rule(when=when, serve="green")])
    elif how == "stopped":
        record.update(status="stopped", stopped_at=time.time(), stopped_reason="done")
        when = flag.rules[0].when if flag.rules else None
        flag = msgspec.structs.replace(flag, rules=[Rule(when=when, serve="control")])
    elif how == "description":
        record["description"] = "another"
    elif how == "key order":
        record = dict(reversed(list(record.items())))
    elif how == "share":
        if "layer_percentage" not in record:
            return snap
        record["layer_percentage"] = 10
    elif how == "weight types":
        record["traffic_split"] = {k: float(v) for k, v in record["traffic_split"].items()}
    return msgspec.structs.replace(
        snap,
        flags={**snap.flags, name: flag},
        experiments={**snap.experiments, name: record},
    )


def _packed(snap: Snapshot) -> Snapshot:
    """The document as written by hand: layered tests without ``layer_offset``, each
    owning the slice it is packed into after the tests before it (so a share changed
    in one moves the slices of those after it, their records unchanged)."""
    records = {
        k: {f: v for f, v in r.items() if f != "layer_offset"} for k, r in snap.experiments.items()
    }
    return msgspec.structs.replace(snap, experiments=records)


def _judged(old: Snapshot, new: Snapshot, now: float) -> list[str]:
    return [f"{p.path}: {p.message}" for p in abtest.moved_users(old, new, now, "flags.yaml")]


@settings(
    max_examples=examples(60),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    edits=st.lists(st.sampled_from(EDITS), min_size=len(NAMES), max_size=len(NAMES)),
    packed=st.booleans(),
)
def test_passing_over_unchanged_tests_never_changes_the_verdict(stored, monkeypatch, edits, packed):
    if packed:
        stored = _packed(stored)
    old = derive(stored, "flags.yaml")
    new_doc = stored
    for name, how in zip(NAMES, edits, strict=True):
        new_doc = _edit(new_doc, name, how)
    new = derive(new_doc, "flags.yaml")
    now = time.time()
    quick = _judged(old, new, now)
    with monkeypatch.context() as m:
        m.setattr(abtest, "same", lambda a, b: False)  # every test judged in full
        full = _judged(old, new, now)
    assert quick == full
    # (and the edits that move users are found: the shortcut is not hiding them)
    if any(e in ("record split", "both splits", "serve one") for e in edits):
        assert full


def test_an_edit_of_one_test_among_many_is_still_refused(stored):
    """The shortcut passes over the four tests left as they were, not the edited one."""
    old = derive(stored, "flags.yaml")
    new = derive(_edit(stored, "t3", "serve one"), "flags.yaml")
    problems = abtest.moved_users(old, new, time.time(), "flags.yaml")
    assert [p.path.split(".")[:2] for p in problems] == [["flags", "t3"]]


def test_a_share_changed_by_hand_moves_the_slices_packed_after_it(stored):
    """Records as they were, slices not: the tests packed after the one whose share
    changed are judged in full, and found moved."""
    packed = _packed(stored)
    old = derive(packed, "flags.yaml")
    new = derive(_edit(packed, "t0", "share"), "flags.yaml")
    problems = abtest.moved_users(old, new, time.time(), "flags.yaml")
    assert {p.path.split(".")[1] for p in problems} == {"t1", "t2"}
