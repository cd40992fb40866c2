"""The flag usage file stays bounded: flags not evaluated for ``retain`` days, and the
least recently evaluated past MAX_FLAGS, are dropped, and ``pruned_before`` says what
was dropped, so ``cfgcore flags stale`` judges only what the file can still tell."""

from __future__ import annotations

import json
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.errors import ConfigError
from cfgcore.experiments.stale import Evidence, find_stale
from cfgcore.runtime import usage as usage_mod
from cfgcore.runtime.usage import (
    DAY,
    Usage,
    UsageRecorder,
    merge_usage,
    prune,
    read_usage,
    start_usage_recording,
)
from cfgcore.snapshot import Flag, Snapshot
from tests.fuzz import examples

T0 = float(int(time.time()))
YEAR = 365 * DAY


def test_a_merge_drops_flags_older_than_the_retention(tmp_path):
    path = tmp_path / "flag-usage.json"
    merge_usage(
        path, {"old": T0 - 400 * DAY, "recent": T0 - DAY}, since=T0 - 500 * DAY, now=T0, retain=YEAR
    )
    got = read_usage(path)
    assert got.flags == {"recent": T0 - DAY}
    assert got.pruned_before == T0 - 365 * DAY
    assert got.since == T0 - 500 * DAY  # recording began then: unchanged
    doc = json.loads(path.read_text())
    assert doc["pruned_before"] == T0 - 365 * DAY and "old" not in doc["flags"]


def test_nothing_dropped_writes_no_pruned_before(tmp_path):
    path = tmp_path / "flag-usage.json"
    merge_usage(path, {"a": T0 - 10 * DAY}, since=T0 - 20 * DAY, now=T0, retain=YEAR)
    assert read_usage(path).pruned_before is None
    assert "pruned_before" not in json.loads(path.read_text())


def test_a_time_the_file_dropped_is_not_merged_back(tmp_path):
    path = tmp_path / "flag-usage.json"
    merge_usage(path, {"old": T0 - 400 * DAY}, since=T0 - 500 * DAY, now=T0, retain=YEAR)
    # another process still holds the old time (its totals), with a longer retention
    merge_usage(path, {"old": T0 - 400 * DAY}, now=T0, retain=1000 * DAY)
    assert "old" not in read_usage(path).flags
    # an evaluation after the cut is kept
    merge_usage(path, {"old": T0}, now=T0, retain=YEAR)
    assert read_usage(path).flags["old"] == T0


def test_past_max_flags_the_least_recently_evaluated_go(tmp_path):
    path = tmp_path / "flag-usage.json"
    seen = {f"f{i}": T0 - i for i in range(10)}  # f0 is the most recent
    merged = merge_usage(path, seen, since=T0 - DAY, now=T0, max_flags=4)
    assert set(merged.flags) == {"f0", "f1", "f2", "f3"}
    assert merged.pruned_before == T0 - 4  # f4's time: every dropped flag is at or before
    assert read_usage(path) == merged


def test_a_plain_merge_keeps_every_age(tmp_path):
    # merge_usage prunes by age only when asked: the recorders pass their retention
    path = tmp_path / "flag-usage.json"
    merged = merge_usage(path, {"ancient": 1.0}, since=0.0, now=T0)
    assert merged.flags == {"ancient": 1.0} and merged.pruned_before is None


def test_a_bad_pruned_before_is_reported_with_its_key(tmp_path):
    path = tmp_path / "flag-usage.json"
    path.write_text(json.dumps({"format": 1, "since": 1.0, "pruned_before": "x", "flags": {}}))
    with pytest.raises(ConfigError) as exc:
        read_usage(path)
    assert "pruned_before" in str(exc.value) and str(path) in str(exc.value)


@settings(max_examples=examples(200), deadline=None)
@given(
    flags=st.dictionaries(st.text(max_size=3), st.floats(0, 1000), max_size=30),
    earlier=st.one_of(st.none(), st.floats(0, 1000)),
    horizon=st.one_of(st.none(), st.floats(0, 1000)),
    cap=st.integers(0, 30),
)
def test_prune_keeps_exactly_what_is_after_the_cut(flags, earlier, horizon, cap):
    out = prune(Usage(dict(flags), 0.0, earlier), horizon, cap)
    cut = out.pruned_before
    assert len(out.flags) <= cap
    assert out.since == 0.0
    if cut is None:
        assert out.flags == flags
        return
    assert earlier is None or cut >= earlier  # never moves back
    assert out.flags == {k: t for k, t in flags.items() if t > cut}  # all after the cut, kept
    if horizon is not None and cut == horizon and cut != earlier and cut not in flags.values():
        assert any(t <= horizon for t in flags.values())  # it moved because one was dropped
    # the cut is no later than it has to be: the horizon, the earlier cut or a dropped time
    assert cut in {horizon, earlier, *flags.values()}


# -- the recorder and the environment ------------------------------------------------------


def test_the_recorder_prunes_with_its_clock_and_retention(tmp_path):
    path = tmp_path / "flag-usage.json"
    times = {"old": T0 - 40 * DAY, "new": T0 - DAY}
    rec = UsageRecorder(path, source=lambda: times, clock=lambda: T0, retain_days=30)
    assert rec.flush() is True
    got = read_usage(path)
    assert got.flags == {"new": T0 - DAY} and got.pruned_before == T0 - 30 * DAY


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf"), True, "30"])
def test_a_bad_retention_is_refused(tmp_path, bad):
    with pytest.raises(ConfigError, match="retention"):
        UsageRecorder(tmp_path / "u.json", retain_days=bad)


def test_the_retention_comes_from_the_environment(tmp_path):
    rec = start_usage_recording(tmp_path, environ={"CFGCORE_USAGE_RETAIN_DAYS": "90"})
    try:
        assert rec is not None and rec.retain_days == 90.0
    finally:
        rec.release()
    with pytest.raises(ConfigError, match="CFGCORE_USAGE_RETAIN_DAYS"):
        start_usage_recording(tmp_path / "b", environ={"CFGCORE_USAGE_RETAIN_DAYS": "soon"})
    refused = usage_mod.usage_path(tmp_path / "b")
    assert all(r.path != refused for r in usage_mod.recorders())  # none left behind


# -- what the stale report may conclude ------------------------------------------------------


def _snapshot(*names):
    return Snapshot(flags={n: Flag(default="off") for n in names})


def test_a_dropped_flag_is_unused_for_a_window_after_the_cut():
    usage = Usage({"kept": T0 - DAY}, since=T0 - 800 * DAY, pruned_before=T0 - 365 * DAY)
    report = find_stale(_snapshot("kept", "dropped"), Evidence(usage), days=90, now=T0)
    [entry] = [e for e in report.entries if e.category == "unused"]
    assert entry.name == "dropped"
    assert "older times are not kept" in entry.reason
    assert entry.evidence["usage_pruned_before"] is not None


def test_a_window_reaching_past_the_cut_is_not_judged():
    usage = Usage({"kept": T0 - DAY}, since=T0 - 800 * DAY, pruned_before=T0 - 365 * DAY)
    report = find_stale(_snapshot("kept", "dropped"), Evidence(usage), days=400, now=T0)
    assert [e.name for e in report.entries if e.category == "unused"] == []
    [why] = [n for n in report.not_judged if (n.name, n.check) == ("dropped", "unused")]
    assert why.check == "unused" and "CFGCORE_USAGE_RETAIN_DAYS" in why.why
