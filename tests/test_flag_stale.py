"""``cfgcore flags stale``: judged from real audit logs, real usage files and the flag
store, with the clock moved (a flag changed 3 days ago is not stale for 30 days)."""

from __future__ import annotations

import json
import os
import time
from datetime import datetime, timedelta, timezone

import msgspec
import pytest

from cfgcore.cli import main
from cfgcore.engine import Engine
from cfgcore.errors import ConfigError
from cfgcore.experiments.abtest import ABTestConfiguration
from cfgcore.experiments.dynamic import DynamicConfigurationManager
from cfgcore.experiments.history import FlagHistory, describe_flag
from cfgcore.experiments.stale import Evidence, document_time, find_stale
from cfgcore.runtime.flagstore import FileFlagStore
from cfgcore.runtime.usage import Usage, merge_usage, read_usage, usage_path
from cfgcore.snapshot import Flag

DAY = 86400.0
T0 = float(int(time.time()))


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def world(tmp_path):
    """A flags file, a state directory and a manager whose clock the test moves."""
    flags = tmp_path / "flags.yaml"
    flags.write_text("flags: {}\n")
    state = tmp_path / "state"
    clock = Clock(T0)
    manager = DynamicConfigurationManager(
        store=flags, state_dir=state, log_exposures=False, record_usage=False, clock=clock
    )
    yield flags, state, clock, manager
    manager.close()


def _report(flags, state, *, now, days=30.0, usage=None):
    doc = FileFlagStore(flags).read()
    evidence = Evidence(
        usage if usage is not None else read_usage(usage_path(state)),
        FlagHistory.from_logs([state / "flags.audit.jsonl"]),
        document_time(doc),
        usage_path(state),
    )
    return find_stale(doc.snapshot, evidence, days=days, now=now, store=str(flags))


def _by(report, category):
    return {e.name: e for e in report.entries if e.category == category}


def _history(world):
    flags, state, clock, m = world
    m.set_feature_flag("rolled_out", True, 100)  # T0: on for everyone
    m.set_feature_flag("switched_off", False)  # T0: disabled
    m.set_feature_flag("half", True, 50)  # T0: a real rollout
    clock.t = T0 + 27 * DAY
    m.set_feature_flag("recent", True, 100)  # created 27 days after T0


def test_fully_on_and_off_need_the_window_unchanged(world):
    flags, state, clock, m = world
    _history(world)
    now = T0 + 30 * DAY + 3600

    report = _report(flags, state, now=now)
    on, off = _by(report, "fully_on"), _by(report, "fully_off")
    assert set(on) == {"rolled_out"}  # "recent" changed 3 days before now: not stale
    assert set(off) == {"switched_off"}
    assert "half" not in {e.name for e in report.entries}
    rolled = on["rolled_out"]
    assert rolled.evidence["last_change"] == datetime.fromtimestamp(T0, timezone.utc).isoformat()
    assert rolled.evidence["changed_to"] == "created: on, rollout 100%"
    assert rolled.evidence["source"] == "set_feature_flag"
    assert rolled.evidence["serves"] == ["on"] and rolled.evidence["for_everyone"] is True
    assert "30 days ago" in rolled.reason
    assert rolled.action.endswith("then `cfgcore flags delete rolled_out`")
    assert off["switched_off"].evidence["changed_to"] == "created: disabled"
    assert off["switched_off"].reason.startswith("disabled (enabled: false)")

    # the same evidence, judged over 2 days: the recent one is stale too
    assert set(_by(_report(flags, state, now=now, days=2), "fully_on")) == {
        "rolled_out",
        "recent",
    }
    # ... and before 30 days have passed, nothing is
    early = _report(flags, state, now=T0 + 29 * DAY)
    assert _by(early, "fully_on") == {} and _by(early, "fully_off") == {}


def test_a_change_resets_the_window(world):
    flags, state, clock, m = world
    _history(world)
    clock.t = T0 + 28 * DAY
    m.set_feature_flag("rolled_out", False)  # switched off two days before "now"
    report = _report(flags, state, now=T0 + 30 * DAY + 3600)
    assert "rolled_out" not in {e.name for e in report.entries}
    later = _report(flags, state, now=T0 + 60 * DAY)
    assert later.entries and _by(later, "fully_off")["rolled_out"].evidence["changed_to"] == (
        "disabled"
    )


def test_unused_flags_from_the_usage_file(world):
    flags, state, clock, m = world
    _history(world)
    merge_usage(
        usage_path(state), {"rolled_out": T0 + 29 * DAY, "switched_off": T0 + DAY}, since=T0
    )
    now = T0 + 32 * DAY
    report = _report(flags, state, now=now)
    unused = _by(report, "unused")
    assert set(unused) == {"switched_off", "half"}
    assert unused["half"].evidence["last_evaluated"] is None
    assert "last evaluated: never recorded" in unused["half"].reason
    assert unused["switched_off"].evidence["last_evaluated"] == (
        datetime.fromtimestamp(T0 + DAY, timezone.utc).isoformat()
    )
    assert [(n.name, n.check) for n in report.not_judged] == [("recent", "unused")]
    assert "created" in report.not_judged[0].why


def test_usage_recorded_for_less_than_the_window_judges_no_flag_unused(world):
    flags, state, clock, m = world
    _history(world)
    merge_usage(usage_path(state), {"rolled_out": T0 + 25 * DAY}, since=T0 + 20 * DAY)
    report = _report(flags, state, now=T0 + 30 * DAY + 3600)
    assert _by(report, "unused") == {}
    assert any("flag usage recorded only since" in n for n in report.notes)
    none = _report(flags, state, now=T0 + 30 * DAY, usage=Usage())
    assert any(n.startswith("no flag usage recorded") for n in none.notes)


def test_experiments_past_their_end_date_with_layers(world):
    flags, state, clock, m = world
    start = datetime.fromtimestamp(T0, timezone.utc) - timedelta(days=10)
    for name, days, layer in (("checkout_copy", 15, "checkout"), ("long_run", 90, None)):
        test = ABTestConfiguration(
            name, "", start, start + timedelta(days=days), {"control": 50, "b": 50},
            {"control": {}, "b": {}}, layer=layer, layer_percentage=50.0 if layer else 100.0,
        )  # fmt: skip
        assert m.create_ab_test(test), m.last_error
    m.stop_ab_test("checkout_copy", "winner found")
    report = _report(flags, state, now=T0 + 30 * DAY)
    ended = _by(report, "experiment_ended")
    assert set(ended) == {"checkout_copy"}
    e = ended["checkout_copy"]
    assert e.evidence["end_date"] == (start + timedelta(days=15)).isoformat()
    assert e.evidence["layer"] == "checkout" and e.evidence["status"] == "stopped"
    assert e.evidence["stopped_reason"] == "winner found"
    assert "cfgcore experiment report checkout_copy" in e.action
    # tests and their layer flags are never reported as flags
    assert not any(x.name.startswith("__") or x.name == "long_run" for x in report.entries)


def test_a_flag_that_others_require_says_so_in_its_action(world):
    flags, state, clock, m = world
    m.set_feature_flag("base", True, 100)
    m.set_feature_flag("child", True, 30)
    m.set_flag_dependencies("child", ["base"])
    report = _report(flags, state, now=T0 + 40 * DAY)
    assert (
        "first remove it from: flag child (prerequisite)" in _by(report, "fully_on")["base"].action
    )


def test_a_schedule_that_ended_counts_from_its_end(tmp_path):
    end = datetime.fromtimestamp(T0 + 5 * DAY, timezone.utc)
    flags = tmp_path / "flags.yaml"
    flags.write_text(
        f'flags:\n  launch: {{default: "on", schedule: {{end: "{end.isoformat()}"}}}}\n'
    )
    os.utime(flags, (T0, T0))
    doc = FileFlagStore(flags).read()
    evidence = Evidence(document_time=document_time(doc))
    assert document_time(doc) == T0  # a hand-written file: its modification time
    report = find_stale(doc.snapshot, evidence, days=30, now=T0 + 30 * DAY)
    assert report.entries == []  # off for 25 days only
    report = find_stale(doc.snapshot, evidence, days=20, now=T0 + 30 * DAY)
    [entry] = report.entries
    assert entry.category == "fully_off" and entry.name == "launch"
    assert entry.reason.startswith(f"its schedule ended at {end.isoformat()}")
    assert entry.evidence["last_change"] is None and "document_written" in entry.evidence


def test_without_an_audit_entry_the_document_and_log_ages_bound_the_change(tmp_path):
    flags = tmp_path / "flags.yaml"
    flags.write_text('flags:\n  legacy: {default: "on"}\n')
    os.utime(flags, (T0 - 40 * DAY, T0 - 40 * DAY))
    doc = FileFlagStore(flags).read()
    evidence = Evidence(document_time=document_time(doc))
    [entry] = find_stale(doc.snapshot, evidence, days=30, now=T0).entries
    assert entry.category == "fully_on" and "no change since" in entry.reason
    os.utime(flags, (T0 - 3 * DAY, T0 - 3 * DAY))
    doc = FileFlagStore(flags).read()
    assert (
        find_stale(doc.snapshot, Evidence(document_time=document_time(doc)), now=T0).entries == []
    )


def _rotating_history(tmp_path, monkeypatch, backups: int) -> FlagHistory:
    monkeypatch.setenv("CFGCORE_AUDIT_MAX_BYTES", "1500")  # about one entry per file
    monkeypatch.setenv("CFGCORE_AUDIT_BACKUPS", str(backups))
    flags = tmp_path / "flags.yaml"
    flags.write_text("flags: {}\n")
    clock = Clock(T0)
    m = DynamicConfigurationManager(
        store=flags, state_dir=tmp_path, log_exposures=False, record_usage=False, clock=clock
    )
    m.set_feature_flag("first", True, 100)
    for i in range(12):
        clock.t = T0 + (i + 1) * 3600
        m.set_feature_flag("busy", bool(i % 2), 40)
    m.close()
    audit = tmp_path / "flags.audit.jsonl"
    assert os.path.exists(f"{audit}.1")  # rotated
    return FlagHistory.from_logs([audit, audit])  # a log named twice is read once


def test_audit_history_spans_rotated_files(tmp_path, monkeypatch):
    history = _rotating_history(tmp_path, monkeypatch, backups=30)
    assert history.covers_since == T0
    assert history.last("first").ts == T0 and len(history.changes["first"]) == 1
    assert len(history.changes["busy"]) == 12
    assert history.last("busy").describe() == "on, rollout 40%"


def test_history_rotated_away_covers_less(tmp_path, monkeypatch):
    history = _rotating_history(tmp_path, monkeypatch, backups=2)
    assert history.last("first") is None  # its entry was rotated away ...
    assert history.covers_since > T0  # ... and the history says it no longer reaches back


def test_describe_flag():
    assert describe_flag(msgspec.to_builtins(Flag(default="on"))) == "on, rollout 100%"
    assert describe_flag({"default": "off"}) == "off"
    assert describe_flag({"default": "on", "enabled": False}) == "disabled"
    targeted = {"default": "off", "rules": [{"when": {"attr": "a", "eq": 1}, "serve": "on"}]}
    assert describe_flag(targeted) == "off, targeted"
    assert describe_flag({"variants": {"a": 1}, "default": "a"}) == "default 'a', 0 rules"
    assert describe_flag("***") == "changed"  # redacted


# -- the command line ------------------------------------------------------------------


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat()


def test_cli_json(world, capsys):
    flags, state, clock, m = world
    _history(world)
    merge_usage(usage_path(state), {"rolled_out": T0 + 29 * DAY}, since=T0)
    args = ["flags", "stale", "--json", "--store", str(flags), "--state-dir", str(state),
            "--as-of", _iso(T0 + 30 * DAY + 3600)]  # fmt: skip
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["days"] == 30.0 and out["store"] == str(flags)
    assert out["usage_file"] == usage_path(state)
    assert out["audit_logs"] == [str(state / "flags.audit.jsonl")]
    got = {(e["category"], e["name"]) for e in out["entries"]}
    assert got == {("fully_on", "rolled_out"), ("fully_off", "switched_off"),
                   ("unused", "switched_off"), ("unused", "half")}  # fmt: skip
    assert out["not_judged"] == [
        {"name": "recent", "check": "unused", "why": out["not_judged"][0]["why"]}
    ]
    assert main([*args, "--days", "1"]) == 0
    one_day = json.loads(capsys.readouterr().out)
    assert ("fully_on", "recent") in {(e["category"], e["name"]) for e in one_day["entries"]}


def test_cli_text(world, capsys):
    flags, state, clock, m = world
    _history(world)
    code = main(["flags", "stale", "--store", str(flags), "--state-dir", str(state),
                 "--as-of", _iso(T0 + 31 * DAY)])  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert "on for everyone, unchanged for the window (1):" in out
    assert "  rolled_out: on for everyone: every path serves 'on'" in out
    assert "action: remove the flag checks from the code" in out
    assert "no flag usage recorded" in out


def test_cli_reports_a_bad_audit_log_and_usage_file(world, capsys):
    flags, state, clock, m = world
    _history(world)
    audit = state / "flags.audit.jsonl"
    with open(audit, "a") as fh:
        fh.write("this is not json\n")
    base = ["flags", "stale", "--store", str(flags), "--state-dir", str(state)]
    assert main(base) == 1
    err = capsys.readouterr().err
    assert f"{audit}:5: not an audit entry" in err
    bad_usage = state / "bad-usage.json"
    bad_usage.write_text('{"flags": {"x": "soon"}}')
    # an audit log with no entries (one named that does not exist is an error)
    (state / "none.jsonl").write_text("")
    assert main([*base, "--audit", str(state / "none.jsonl"), "--usage", str(bad_usage)]) == 1
    assert f"{bad_usage}: flags.x: expected epoch seconds" in capsys.readouterr().err
    assert main([*base, "--as-of", "yesterday"]) == 2  # usage errors
    assert main([*base, "--audit", str(state / "none.jsonl"), "--days", "0"]) == 2
    assert "--days: must be a positive number" in capsys.readouterr().err


def test_cli_with_the_redis_store(redis_server, tmp_path, capsys):
    from cfgcore.runtime.redis_store import RedisFlagStore

    url = redis_server.url + "?namespace=stale&cache=off"
    with RedisFlagStore(url) as store:
        store.update(
            lambda s: msgspec.structs.replace(
                s, flags={"everyone": Flag(default="on"), "nobody": Flag(default="off")}
            ),
            check=Engine().compile,
        )
        written = store.read().writer["time"]
    args = ["flags", "stale", "--json", "--store", url, "--state-dir", str(tmp_path)]
    assert main([*args, "--as-of", _iso(written + 31 * DAY)]) == 0
    out = json.loads(capsys.readouterr().out)
    got = {(e["category"], e["name"]): e for e in out["entries"]}
    assert set(got) == {("fully_on", "everyone"), ("fully_off", "nobody")}
    evidence = got[("fully_on", "everyone")]["evidence"]
    assert evidence["document_written"] == (
        datetime.fromtimestamp(written, timezone.utc).isoformat(timespec="seconds")
    )
    assert main([*args, "--as-of", _iso(written + 29 * DAY)]) == 0
    assert json.loads(capsys.readouterr().out)["entries"] == []


def test_find_stale_refuses_flags_that_do_not_compile():
    from cfgcore.snapshot import snapshot_from_dict

    snap = snapshot_from_dict({"flags": {"f": {"default": "maybe"}}})
    with pytest.raises(ConfigError, match="unknown variant 'maybe'"):
        find_stale(snap, Evidence(), now=T0, store="flags.yaml")


def test_usage_recorded_from_real_evaluations_feeds_the_report(tmp_path, capsys):
    from cfgcore.runtime import usage as usage_mod

    flags = tmp_path / "flags.yaml"
    half = '{default: "on", rules: [{rollout: 50, serve: "off"}]}'
    flags.write_text(f"flags:\n  stale_used: {half}\n  stale_idle: {half}\n")
    state = tmp_path / "state"
    m = DynamicConfigurationManager(store=flags, state_dir=state, log_exposures=False)
    try:
        m.is_feature_enabled("stale_used", {"user_id": "42"})
        evaluated = time.time()
        m.close()  # flushes the usage file
    finally:
        recorder = usage_mod._RECORDERS.pop(usage_path(state), None)
        if recorder is not None:
            recorder.close()
    args = ["flags", "stale", "--json", "--store", str(flags), "--state-dir", str(state)]
    assert main([*args, "--as-of", _iso(evaluated + 31 * DAY)]) == 0
    out = json.loads(capsys.readouterr().out)
    unused = {e["name"]: e for e in out["entries"] if e["category"] == "unused"}
    assert set(unused) == {"stale_used", "stale_idle"}
    seen = datetime.fromisoformat(unused["stale_used"]["evidence"]["last_evaluated"]).timestamp()
    assert evaluated - 60 <= seen <= evaluated + 1
    assert unused["stale_idle"]["evidence"]["last_evaluated"] is None
    # ten days in, the usage file covers too little of a 30-day window to judge
    assert main([*args, "--as-of", _iso(evaluated + 10 * DAY)]) == 0
    early = json.loads(capsys.readouterr().out)
    assert early["entries"] == [] and "recorded only since" in early["notes"][0]


@pytest.mark.parametrize("last", [False, True])
def test_a_line_nested_too_deep_is_a_bad_line_not_a_crash(tmp_path, last):
    # json.loads raised RecursionError on "[[[[...", which escaped flag history (and
    # `cfgcore flags stale`) as a crash; audit verify and the writer handled the line.
    log = tmp_path / "flags.audit.jsonl"
    deep = "[" * 200_000 + "]" * 200_000
    good = json.dumps({"ts": "2026-01-01T00:00:00Z", "action": "flag.update"})
    log.write_text(f"{good}\n{deep}" + ("" if last else "\n"))
    if last:  # a final line without its newline: a write cut short, skipped
        assert isinstance(FlagHistory.from_logs([log]), FlagHistory)
        return
    with pytest.raises(ConfigError) as err:
        FlagHistory.from_logs([log])
    (problem,) = err.value.problems
    assert (problem.file, problem.line, problem.message) == (str(log), 2, "not an audit entry")
