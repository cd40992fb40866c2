"""``cfgcore experiment create`` on a stored test, and ``cfgcore experiment update``.

Creating a test again replaced it with only what the command line gave: the fields the
command line could not set (``metric_types``, ``targeting``) and those it did not repeat
(variant configurations, guardrails, metrics ...) were dropped without a word, so
ramping a test the way the docs said (create it again with a higher
``--layer-percentage``) changed who was enrolled and what they were served. ``create``
now refuses to write over a stored test unless ``--replace``, and ``update`` changes
only the fields given, keeping the test's state. Real CLI, real flag files, the real
manager reading what it wrote."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfgcore.dynamic_config import DynamicConfigurationManager
from cfgcore.experiments.abtest import GUARDRAIL_STOPPED_AT, NOT_STARTED
from cfgcore.runtime.audit import AuditLog, default_actor
from cfgcore.runtime.policy import AccessPolicy, set_policy
from tests.conftest import run_cli
from tests.fuzz import examples
from tests.test_experiments import _simulate
from tests.test_fix10_exp_guardrail_hold import HARMFUL, TEST, _guarded_test

START = "2026-01-01T00:00:00Z"
END = "2027-12-31T00:00:00Z"
TARGETING = {"attr": "region", "in": ["EU", "UK"]}

#: A test with every field the command line can set.
FULL = (
    "--split", "control=50,green=50",
    "--config", 'green={"button": "green", "size": 2}',
    "--config", 'control={"button": "grey"}',
    "--description", "checkout button colour",
    "--metric", "conversion", "--metric", "revenue",
    "--metric-type", "conversion=binary", "--metric-type", "revenue=continuous",
    "--guardrail", "errors=lower_is_better",
    "--targeting", json.dumps(TARGETING),
    "--layer", "checkout", "--layer-percentage", "10",
    "--start-date", START, "--end-date", END,
)  # fmt: skip


@pytest.fixture(autouse=True)
def _quiet_state(tmp_path, monkeypatch):
    for name in ("CFGCORE_CONFIG_DIR", "CFGCORE_FLAG_STORE", "CFGCORE_ACCESS_POLICY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("CFGCORE_USAGE", "0")
    monkeypatch.chdir(tmp_path)


def _cli(capsys, flags, *argv):
    return run_cli(capsys, "experiment", *argv, "--flags", str(flags))


def _record(flags, name="checkout"):
    return json.loads(Path(flags).read_text())["experiments"][name]


def _variants(flags, name="checkout"):
    stored = json.loads(Path(flags).read_text())["flags"][name]["variants"]
    return {k: v for k, v in stored.items() if k != "__none__"}


def _manager(flags):
    return DynamicConfigurationManager(str(flags), record_usage=False)


def _full(capsys, flags, *extra):
    code, _, err = _cli(capsys, flags, "create", "checkout", *FULL, *extra)
    assert code == 0, err
    return Path(flags).read_bytes()


def _error_line(err):
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cfgcore: error: "), err
    return lines[0]


# -- create on a stored test -----------------------------------------------------------


def test_create_again_is_refused_naming_what_it_would_drop_and_writes_nothing(tmp_path, capsys):
    flags = tmp_path / "flags.json"
    before = _full(capsys, flags, "--start")
    # the ramp the docs used to show: the same split, a higher share, nothing else
    code, _, err = _cli(capsys, flags, "create", "checkout", "--split", "control=50,green=50",
                        "--layer", "checkout", "--layer-percentage", "20")  # fmt: skip
    assert code == 1
    line = _error_line(err)
    assert "'checkout' exists" in line
    dropped = line.split("would drop ")[1].split(" and change ")[0].split(", ")
    assert set(dropped) == {"description", "success_metrics", "guardrail_metrics",
                            "metric_types", "targeting"}  # fmt: skip
    changed = line.split(" and change ")[1].split(";")[0].split(", ")
    assert set(changed) == {"layer_percentage", "configurations.control",
                            "configurations.green"}  # fmt: skip
    assert "--replace" in line and "experiment update" in line
    assert flags.read_bytes() == before


def test_create_replace_replaces_with_only_what_it_gives(tmp_path, capsys):
    flags = tmp_path / "flags.json"
    _full(capsys, flags, "--start")
    window = ("--start-date", START, "--end-date", END)
    code, _, err = _cli(capsys, flags, "create", "checkout", "--split", "control=50,green=50",
                        *window, "--start", "--replace")  # fmt: skip
    assert code == 0, err
    assert "replaced A/B test checkout" in err
    record = _record(flags)
    for field in ("targeting", "metric_types", "guardrail_metrics", "layer"):
        assert field not in record
    assert record["success_metrics"] == [] and record["status"] == "active"
    assert _variants(flags) == {"control": {"variant": "control"}, "green": {"variant": "green"}}


@pytest.mark.parametrize("started", [True, False])
def test_the_same_create_again_is_a_no_op(tmp_path, capsys, started):
    flags = tmp_path / "flags.json"
    start = ("--start",) if started else ()
    before = _full(capsys, flags, *start)
    for again in (FULL, [a for a in FULL if a not in ("--start-date", START)]):
        # (without --start-date: a stored test keeps its own window)
        code, _, err = _cli(capsys, flags, "create", "checkout", *again, *start)
        assert code == 0, err
        assert "unchanged" in err
        assert flags.read_bytes() == before
    # without --start a running test is left running (it was stopped before)
    code, _, err = _cli(capsys, flags, "create", "checkout", *FULL)
    assert code == 0, err
    assert flags.read_bytes() == before


def test_create_start_on_a_stopped_test_is_refused(tmp_path, capsys):
    flags = tmp_path / "flags.json"
    _full(capsys, flags, "--start")
    assert _cli(capsys, flags, "stop", "checkout", "--reason", "bad numbers")[0] == 0
    before = flags.read_bytes()
    code, _, err = _cli(capsys, flags, "create", "checkout", *FULL, "--start")
    assert code == 1
    line = _error_line(err)
    assert "stopped (bad numbers)" in line and "experiment start checkout" in line
    assert flags.read_bytes() == before


# -- update -------------------------------------------------------------------------------


def test_update_changes_only_what_it_is_given(tmp_path, capsys):
    flags = tmp_path / "flags.json"
    _full(capsys, flags, "--start")
    before, variants = _record(flags), _variants(flags)
    code, _, err = _cli(capsys, flags, "update", "checkout", "--layer-percentage", "25",
                        "--end-date", "2028-01-31T00:00:00Z")  # fmt: skip
    assert code == 0, err
    assert "updated A/B test checkout" in err and "running" in err
    after = _record(flags)
    assert after["layer_percentage"] == 25.0
    assert after["end_date"] == "2028-01-31T00:00:00+00:00"
    assert {k: v for k, v in after.items() if k not in ("layer_percentage", "end_date")} == {
        k: v for k, v in before.items() if k not in ("layer_percentage", "end_date")
    }
    assert after["targeting"] == TARGETING
    assert after["metric_types"] == {"conversion": "binary", "revenue": "continuous"}
    assert _variants(flags) == variants
    # --config replaces only the variants it names
    code, _, err = _cli(capsys, flags, "update", "checkout", "--config", 'green={"button": "lime"}')
    assert code == 0, err
    assert _variants(flags) == {**variants, "green": {"button": "lime"}}


def test_update_is_audited_with_its_actor_and_judged_by_the_policy(tmp_path, capsys):
    flags = tmp_path / "flags.json"
    _full(capsys, flags, "--start")
    before = flags.read_bytes()
    me = default_actor()
    set_policy(AccessPolicy({"runner": {"experiment.stop": ["*"]},
                             "owner": {"experiment.create": ["check*"]},
                             "lead": {"actor.assume": ["carol"]}},
                            {me: ["runner", "lead"], "carol": ["owner"]}))  # fmt: skip
    try:
        code, _, err = _cli(capsys, flags, "update", "checkout", "--layer-percentage", "30")
        assert code == 1 and "may not experiment.create checkout" in err, err
        assert flags.read_bytes() == before
        code, _, err = _cli(capsys, flags, "update", "checkout", "--layer-percentage", "30",
                            "--actor", "carol")  # fmt: skip
        assert code == 0, err
    finally:
        set_policy(None)
    updates = [e for e in AuditLog.read(str(tmp_path / "flags.audit.jsonl"))
               if e.get("source") == "update_ab_test"]  # fmt: skip
    assert updates and {e["actor"] for e in updates} == {"carol"}
    assert _record(flags)["layer_percentage"] == 30.0


def test_update_keeps_a_test_stopped_by_experiment_stop_and_one_not_started(tmp_path, capsys):
    flags = tmp_path / "flags.json"
    _full(capsys, flags, "--start")
    assert _cli(capsys, flags, "stop", "checkout", "--reason", "bad numbers")[0] == 0
    stopped = _record(flags)
    code, _, err = _cli(capsys, flags, "update", "checkout", "--layer-percentage", "40",
                        "--description", "paused")  # fmt: skip
    assert code == 0, err
    assert "stopped: bad numbers" in err
    after = _record(flags)
    assert after["status"] == "stopped" and after["stopped_reason"] == "bad numbers"
    assert after["stopped_at"] == stopped["stopped_at"]
    m = _manager(flags)
    try:
        # stopped: the control for those in its (larger) slice, nobody the treatment
        users = [{"user_id": f"u{i}", "region": "EU"} for i in range(300)]
        assert {m.get_ab_test_variant("checkout", u) for u in users} == {"control", None}
    finally:
        m.close()
    # created without --start: stays not started
    code, _, err = _cli(capsys, flags, "create", "later", "--split", "control=50,b=50")
    assert code == 0, err
    code, _, err = _cli(capsys, flags, "update", "later", "--metric", "ctr")
    assert code == 0, err
    later = _record(flags, "later")
    assert later["status"] == "stopped" and later["stopped_reason"] == NOT_STARTED
    assert later["success_metrics"] == ["ctr"]


def test_update_keeps_a_guardrail_stop(tmp_path, capsys):
    m = DynamicConfigurationManager(
        state_dir=tmp_path, record_usage=False, guardrail_check_every=10**9
    )
    try:
        assert m.create_ab_test(_guarded_test())
        _simulate(m, TEST, HARMFUL, metric="playback_errors")
        assert m.check_guardrails(TEST)  # the real guardrail check stops it
        flags = m.flags_file
    finally:
        m.close()
    stopped = _record(flags, TEST)
    assert stopped[GUARDRAIL_STOPPED_AT]
    code, _, err = _cli(capsys, flags, "update", TEST, "--end-date", "2099-01-01T00:00:00Z",
                        "--metric-type", "playback_errors=binary")  # fmt: skip
    assert code == 0, err
    after = _record(flags, TEST)
    assert after["status"] == "stopped"
    for key in ("stopped_reason", "stopped_at", GUARDRAIL_STOPPED_AT):
        assert after[key] == stopped[key]
    assert after["metric_types"] == {"playback_errors": "binary"}
    m = DynamicConfigurationManager(state_dir=tmp_path, record_usage=False)
    try:  # a process starting on the file serves the stop: every user the control
        assert m.list_ab_tests()[TEST]["status"] == "stopped"
        served = {m.get_ab_test_variant(TEST, {"user_id": f"u{i}"}) for i in range(300)}
        assert served == {"control"}
    finally:
        m.close()


def test_update_of_an_unknown_test_is_an_error(tmp_path, capsys):
    flags = tmp_path / "flags.json"
    before = _full(capsys, flags)
    code, _, err = _cli(capsys, flags, "update", "checkuot", "--layer-percentage", "20")
    assert code == 1
    line = _error_line(err)
    assert "checkuot: no such A/B test" in line and "did you mean 'checkout'" in line
    assert flags.read_bytes() == before


def test_update_with_nothing_to_change_is_a_usage_error(tmp_path, capsys):
    flags = tmp_path / "flags.json"
    before = _full(capsys, flags)
    code, _, err = _cli(capsys, flags, "update", "checkout")
    assert code == 2 and "nothing to update" in _error_line(err)
    assert flags.read_bytes() == before


def test_update_that_would_move_users_is_refused(tmp_path, capsys):
    flags = tmp_path / "flags.json"
    before = _full(capsys, flags, "--start")
    code, _, err = _cli(capsys, flags, "update", "checkout", "--split", "control=20,green=80")
    assert code == 1 and "assignment is sticky" in err
    assert flags.read_bytes() == before


BAD = [
    ("--layer-percentage", "abc"),
    ("--layer-percentage", "-5"),
    ("--layer-percentage", "150"),
    ("--layer-percentage", "nan"),
    ("--layer-percentage", "0"),
    ("--layer-percentage", "inf"),
    ("--targeting", "{not json"),
    ("--targeting", "[1, 2]"),
    ("--targeting", '"EU"'),
    ("--targeting", '{"attr": "region", "bogus": 1}'),
    ("--metric-type", "conversion=ordinal"),
    ("--metric-type", "conversion"),
    ("--guardrail", "errors=up"),
    ("--days", "abc"),
    ("--days", "-1"),
]


@pytest.mark.parametrize("command", ["create", "update"])
@pytest.mark.parametrize(("option", "value"), BAD, ids=[f"{o}={v}" for o, v in BAD])
def test_a_bad_value_names_its_option_and_writes_nothing(tmp_path, capsys, command, option, value):
    flags = tmp_path / "flags.json"
    before = _full(capsys, flags, "--start")
    argv = [command, "checkout", f"{option}={value}"]
    if command == "create":
        argv += ["--split", "control=50,green=50", "--replace"]  # (would replace it)
    code, _, err = _cli(capsys, flags, *argv)
    assert code == 2  # the command line is wrong: a usage error, nothing read or written
    assert option in _error_line(err)
    assert flags.read_bytes() == before


def test_targeting_null_removes_it_on_update_only(tmp_path, capsys):
    flags = tmp_path / "flags.json"
    before = _full(capsys, flags, "--start")
    code, _, err = _cli(capsys, flags, "create", "other", "--split", "a=50,b=50",
                        "--targeting", "null")  # fmt: skip
    assert code == 2 and "--targeting" in _error_line(err)
    assert flags.read_bytes() == before
    code, _, err = _cli(capsys, flags, "update", "checkout", "--targeting", "null")
    assert code == 0, err
    assert "targeting" not in _record(flags)


# -- list -------------------------------------------------------------------------------


def test_list_shows_layer_share_and_targeting_escaped(tmp_path, capsys):
    flags = tmp_path / "flags.json"
    _full(capsys, flags)
    code, _, err = _cli(capsys, flags, "create", "plain", "--split", "a=50,b=50")
    assert code == 0, err
    code, _, err = _cli(capsys, flags, "create", "odd", "--split", "a=50,b=50",
                        "--layer", "lay\x1b[2Jer", "--layer-percentage", "12.5")  # fmt: skip
    assert code == 0, err
    code, out, err = _cli(capsys, flags, "list")
    assert code == 0, err
    lines = {line.split()[0]: line for line in out.splitlines()}
    assert "layer checkout 10%" in lines["checkout"]
    assert 'targeting {"attr":"region","in":["EU","UK"]}' in lines["checkout"]
    assert "layer" not in lines["plain"] and "targeting" not in lines["plain"]
    assert "layer lay\\x1b[2Jer 12.5%" in lines["odd"] and "\x1b" not in out
    code, out, _ = _cli(capsys, flags, "list", "--json")
    assert json.loads(out)["checkout"] == _record(flags)


# -- sticky assignment ----------------------------------------------------------------


def test_raising_the_share_keeps_every_enrolled_user_in_their_variant(tmp_path, capsys):
    flags = tmp_path / "flags.json"
    _full(capsys, flags, "--start")
    users = [{"user_id": f"user-{i}", "region": "EU"} for i in range(3000)]

    def served():
        m = _manager(flags)
        try:
            return [m.get_ab_test_variant("checkout", u) for u in users]
        finally:
            m.close()

    first = served()
    enrolled = [i for i, v in enumerate(first) if v is not None]
    assert 200 < len(enrolled) < 400  # 10 % of 3,000
    for pct in ("35", "100"):
        code, _, err = _cli(capsys, flags, "update", "checkout", "--layer-percentage", pct)
        assert code == 0, err
        now = served()
        assert [now[i] for i in enrolled] == [first[i] for i in enrolled]
        first, enrolled = now, [i for i, v in enumerate(now) if v is not None]
    assert len(enrolled) == len(users)  # everyone in the targeted region, at 100 %


# -- any subset of fields --------------------------------------------------------------

#: option -> (the values update may give, the record field, the stored value expected)
CHANGES = {
    "--description": (["new words", "ünïcode"], "description", lambda v: v),
    "--layer-percentage": (["12", "55.5", "100"], "layer_percentage", float),
    "--end-date": (["2028-06-01T00:00:00Z"], "end_date", lambda v: "2028-06-01T00:00:00+00:00"),
    "--metric": (["ctr", "clicks"], "success_metrics", lambda v: [v]),
    "--metric-type": (
        ["conversion=continuous", "ctr=binary"],
        "metric_types",
        lambda v: dict([v.split("=")]),
    ),  # fmt: skip
    "--guardrail": (
        ["latency=lower_is_better"],
        "guardrail_metrics",
        lambda v: dict([v.split("=")]),
    ),  # fmt: skip
    "--targeting": (['{"attr": "plan", "eq": "pro"}'], "targeting", json.loads),
    "--control": (["green"], "control", lambda v: v),
}


@settings(
    max_examples=examples(25),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    st.dictionaries(
        st.sampled_from(sorted(CHANGES)),
        st.integers(0, 5),
        min_size=1,
    )
)
def test_update_changes_exactly_the_fields_given(capsys, picks):
    # (a test not started: its control may change, no user has a variant yet)
    with tempfile.TemporaryDirectory() as tmp:
        flags = Path(tmp) / "flags.json"
        _full(capsys, flags)
        before, variants = _record(flags), _variants(flags)
        argv, expected = [], {}
        for option, pick in picks.items():
            values, field, stored = CHANGES[option]
            value = values[pick % len(values)]
            argv.append(f"{option}={value}")
            expected[field] = stored(value)
        code, _, err = _cli(capsys, flags, "update", "checkout", *argv)
        assert code == 0, err
        after = _record(flags)
        assert {k: after.get(k) for k in expected} == expected
        untouched = set(before) - set(expected)
        assert {k: after.get(k) for k in untouched} == {k: before[k] for k in untouched}
        assert set(after) == set(before) | set(expected)
        assert _variants(flags) == variants


# -- the API under the command line --------------------------------------------------


def test_the_api_update_and_create_only(tmp_path):
    from cfgcore.dynamic_config import ABTestConfiguration

    m = DynamicConfigurationManager(str(tmp_path / "flags.json"), record_usage=False)
    try:
        test = ABTestConfiguration(
            "t", "d", "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z", {"a": 50, "b": 50},
            {"a": {"x": 1}, "b": {"x": 2}}, targeting=dict(TARGETING),
        )  # fmt: skip
        assert m.create_ab_test(test)
        version = m.store.read().version
        assert m.create_ab_test(test, replace=False)  # the same test: nothing written
        assert m.store.read().version == version
        other = ABTestConfiguration(**{**test.__dict__, "targeting": None})
        assert not m.create_ab_test(other, replace=False)
        assert "would drop targeting" in m.last_error
        assert m.store.read().version == version
        assert not m.update_ab_test("t", {"test_name": "u"})
        assert "not a field update changes" in m.last_error
        assert not m.update_ab_test("nope", {"description": "x"})
        assert "nope: no such A/B test" in m.last_error
        assert m.update_ab_test("t", {"description": "d"})  # unchanged: nothing written
        assert m.store.read().version == version
        assert m.update_ab_test("t", {"configurations": {"b": {"x": 3}}})
        assert m.get_ab_test("t").configurations == {"a": {"x": 1}, "b": {"x": 3}}
        assert m.get_ab_test("t").targeting == TARGETING
    finally:
        m.close()


@pytest.mark.parametrize("kind", ["binary", "continuous", "per_user"])
def test_metric_type_takes_every_kind_the_test_record_takes(tmp_path, capsys, kind):
    """``--metric-type`` accepts the kinds ``ABTestConfiguration`` validates (one list,
    ``abtest.METRIC_KINDS``), on create and on update."""
    from cfgcore.experiments.abtest import METRIC_KINDS

    assert kind in METRIC_KINDS
    flags = tmp_path / "flags.json"
    code, _, err = _cli(capsys, flags, "create", "t", "--split", "control=50,b=50",
                        "--metric-type", f"revenue={kind}")  # fmt: skip
    assert code == 0, err
    assert _record(flags, "t")["metric_types"] == {"revenue": kind}
    other = next(k for k in METRIC_KINDS if k != kind)
    code, _, err = _cli(capsys, flags, "update", "t", "--metric-type", f"revenue={other}")
    assert code == 0, err
    assert _record(flags, "t")["metric_types"] == {"revenue": other}


def test_start_and_stop_are_audited_with_their_actor_and_judged_by_the_policy(tmp_path, capsys):
    # start and stop take --actor as create, update and delete do: a change made for
    # another name is judged (actor.assume) and audited under it.
    flags = tmp_path / "flags.json"
    _full(capsys, flags, "--start")
    me = default_actor()
    set_policy(AccessPolicy({"lead": {"actor.assume": ["carol"]},
                             "owner": {"experiment.stop": ["*"], "experiment.create": ["*"]}},
                            {me: ["lead"], "carol": ["owner"]}))  # fmt: skip
    try:
        for command in ("stop", "start"):
            before = flags.read_bytes()
            code, _, err = _cli(capsys, flags, command, "checkout")
            assert code == 1 and "may not experiment." in err, (command, err)
            assert flags.read_bytes() == before
            code, _, err = _cli(capsys, flags, command, "checkout", "--actor", "carol")
            assert code == 0, (command, err)
            status = _record(flags)["status"]
            assert status == ("stopped" if command == "stop" else "active"), command
            code, _, err = _cli(capsys, flags, command, "checkout", "--actor", "dave")
            assert code == 1, (command, err)
    finally:
        set_policy(None)
    entries = AuditLog.read(str(tmp_path / "flags.audit.jsonl"))
    changes = [e for e in entries if e.get("actor") == "carol"]
    assert len(changes) >= 2
    assert not [e for e in entries if e.get("actor") == "dave" and e.get("outcome") != "denied"]
