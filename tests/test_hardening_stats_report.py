"""Undefined statistics never leak as NaN: Welch's test on groups that do not vary,
and ``cfgcore experiment report`` (text and ``--json``) on tests with little data."""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfgcore.experiments import stats
from tests.conftest import run_cli as run
from tests.fuzz import examples


def _strict(text: str):
    def refuse(constant: str):
        raise AssertionError(f"not JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


# ------------------------------------------------------------------ Welch, no variance


@pytest.mark.parametrize("summaries", [False, True])
@pytest.mark.parametrize("treatment", [3.0, 4.0, 2.0])
def test_welch_of_constant_groups_is_undefined(summaries, treatment):
    """Equal means were p = 1, different ones p = 0 ("certain"): the test is 0/0 or
    d/0 there, so it says it is undefined, and gives only the difference."""
    a, b = [3.0] * 3, [treatment] * 4
    if summaries:
        a, b = stats.Summary.of(a), stats.Summary.of(b)
    for alternative in ("two-sided", "larger", "smaller"):
        r = stats.welch_ttest(a, b, alternative)
        assert r.undefined == stats.NO_VARIANCE and r.difference == treatment - 3.0
        assert all(math.isnan(x) for x in (r.statistic, r.p_value, r.df, *r.ci))


@settings(max_examples=examples(200), deadline=None)
@given(
    a=st.lists(st.sampled_from([0.0, 1.0, 2.5, 5.0]), min_size=2, max_size=6),
    b=st.lists(st.sampled_from([0.0, 1.0, 2.5, 5.0]), min_size=2, max_size=6),
    alternative=st.sampled_from(["two-sided", "larger", "smaller"]),
)
def test_welch_p_value_is_always_a_probability(a, b, alternative):
    r = stats.welch_ttest(a, b, alternative)
    if len(set(a)) == 1 and len(set(b)) == 1:
        assert r.undefined and math.isnan(r.p_value)  # and only there
        return
    assert not r.undefined
    assert 0.0 <= r.p_value <= 1.0
    assert not math.isnan(r.statistic)
    assert all(math.isfinite(x) for x in r.ci)


# ------------------------------------------------------------------------- the report


def _create(capsys, state: Path) -> None:
    for argv in (
        ("experiment", "create", "t", "--split", "control=50,b=50", "--metric", "plays",
         "--days", "14"),
        ("experiment", "start", "t"),
    ):  # fmt: skip
        code, _, err = run(capsys, "-q", *argv, "--state-dir", str(state))
        assert code == 0, err


def test_fresh_test_reports_null_and_dashes_not_nan(tmp_path, capsys):
    _create(capsys, tmp_path)
    code, out, err = run(
        capsys, "experiment", "report", "t", "--json", "--state-dir", str(tmp_path)
    )
    assert code == 0, err
    data = _strict(out)
    rows = data["results"]
    assert [r["variant"] for r in rows] == ["control", "b"]
    assert all(r["n"] == 0 and r["value"] is None and r["low"] is None for r in rows)
    code, out, err = run(capsys, "experiment", "report", "t", "--state-dir", str(tmp_path))
    assert code == 0, err
    assert "nan" not in out.lower()


def test_constant_metric_reports_no_test_and_one_value_interval_as_dash(tmp_path, capsys):
    _create(capsys, tmp_path)
    events = tmp_path / "ev.jsonl"
    # three users per variant all with 5 plays, and one more control user alone in
    # metric "skips" (one value: no interval)
    lines = [
        {"test": "t", "user": u, "variant": v, "ts": 1764547200}
        for v, users in (("control", "abc"), ("b", "def"))
        for u in users
    ]
    lines += [{"test": "t", "user": u, "metric": "plays", "value": 5} for u in "abcdef"]
    lines += [{"test": "t", "user": "a", "metric": "skips", "value": 2.5}]
    events.write_text("".join(json.dumps(x) + "\n" for x in lines))
    code, _, err = run(capsys, "experiment", "ingest", str(events), "--state-dir", str(tmp_path))
    assert code == 0, err
    code, out, err = run(
        capsys, "experiment", "report", "t", "--json", "--state-dir", str(tmp_path)
    )
    assert code == 0, err
    rows = {(r["metric"], r["variant"]): r for r in _strict(out)["results"]}
    plays_b = rows[("plays", "b")]
    assert (plays_b["statistic"], plays_b["p_value"], plays_b["difference"]) == (None, None, 0.0)
    assert plays_b["undefined"] == stats.NO_VARIANCE
    skips = rows[("skips", "control")]
    assert skips["n"] == 1 and skips["value"] == 2.5 and skips["low"] is None
    code, out, err = run(capsys, "experiment", "report", "t", "--state-dir", str(tmp_path))
    assert code == 0, err
    assert "nan" not in out.lower() and "inf" not in out.lower()
    skips_line = next(x for x in out.splitlines() if x.startswith("control") and "2.5" in x)
    assert skips_line.split()[1:4] == ["1", "2.5", "-"]


_users = [f"u{i}" for i in range(6)]
_event = st.one_of(
    st.builds(
        lambda u, v: {"test": "t", "user": u, "variant": v, "ts": 1764547200},
        st.sampled_from(_users),
        st.sampled_from(["control", "b"]),
    ),
    st.builds(
        lambda u, m, x: {"test": "t", "user": u, "metric": m, "value": x},
        st.sampled_from(_users),
        st.sampled_from(["plays", "latency"]),
        st.sampled_from([0, 1, 2.5, 5, -3]),
    ),
)


@settings(
    max_examples=examples(25),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(events=st.lists(_event, max_size=14))
def test_report_json_always_parses_strictly(capsys, events):
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp)
        _create(capsys, state)
        if events:
            path = state / "ev.jsonl"
            path.write_text("".join(json.dumps(e) + "\n" for e in events))
            code, _, err = run(capsys, "-q", "experiment", "ingest", str(path), "--state-dir", tmp)
            assert code == 0, err
        code, out, err = run(capsys, "experiment", "report", "t", "--json", "--state-dir", tmp)
        assert code == 0, err
        data = _strict(out)
        assert {r["variant"] for r in data["results"]} == {"control", "b"}
        code, out, err = run(capsys, "experiment", "report", "t", "--state-dir", tmp)
        assert code == 0, err
        assert "nan" not in out.lower()
