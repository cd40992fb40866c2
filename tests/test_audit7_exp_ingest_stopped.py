"""``cfgcore experiment ingest`` of lines without a variant for a stopped test.

Without a "variant", ingest computed the user's variant as the test serves it now; a
stopped (or not started) test serves its control to everyone, so every such user was
filed under the control: users already exposed to another variant were then in two,
and the report showed a sample-ratio mismatch and mixed data. Such a line is now an
unusable line naming the file, the line and why (give the variant); lines that give
their variant are ingested as before.
"""

from __future__ import annotations

import json

import pytest

from cfgcore.cli import main
from cfgcore.experiments.exposures import read_exposures


@pytest.fixture
def state(tmp_path, monkeypatch):
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path))
    monkeypatch.delenv("CFGCORE_FLAG_STORE", raising=False)
    monkeypatch.chdir(tmp_path)
    assert main(["experiment", "create", "st", "--split", "control=50,b=50", "--start"]) == 0
    return tmp_path


def _write(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return str(path)


def _exposures(state):
    return [(e.user, e.variant) for e in read_exposures(str(state / "flags.exposures.jsonl"))]


def test_running_test_lines_without_a_variant_get_the_assigned_one(state, capsys):
    users = [{"test": "st", "user": f"u{i}"} for i in range(40)]
    assert main(["experiment", "ingest", _write(state / "in.jsonl", users)]) == 0
    assert {v for _, v in _exposures(state)} == {"control", "b"}


@pytest.mark.parametrize(
    "how", [["stop", "st"], ["create", "st", "--split", "control=50,b=50", "--replace"]]
)
def test_a_stopped_or_not_started_test_needs_the_variant(state, capsys, how):
    before = _exposures(state)
    assert main(["experiment", *how]) == 0
    capsys.readouterr()
    lines = [
        {"test": "st", "user": "u1"},
        {"test": "st", "user": "u2", "variant": "b"},
        {"type": "metric", "test": "st", "user": "u3", "metric": "ctr"},
    ]
    path = _write(state / "late.jsonl", lines)
    assert main(["experiment", "ingest", path]) == 1
    err = capsys.readouterr().err
    assert f"{path}:1: variant missing: A/B test st is " in err
    assert f"{path}:3: variant missing" in err
    assert "give it" in err
    assert _exposures(state) == [*before, ("u2", "b")]


# A "ts" in milliseconds (the usual mistake) was ingested as a time 50,000 years ahead:
# such a record outlives every restart of the test as a new run (records after its
# since are the new run's).


def test_a_timestamp_in_the_future_is_an_unusable_line(state, capsys):
    import time

    now = time.time()
    lines = [
        {"test": "st", "user": "u1", "variant": "b", "ts": now * 1000},
        {"test": "st", "user": "u2", "variant": "b", "ts": now - 3600},
        {"test": "st", "user": "u3", "variant": "b", "ts": now + 60},  # clock skew: fine
    ]
    path = _write(state / "ms.jsonl", lines)
    assert main(["experiment", "ingest", path]) == 1
    err = capsys.readouterr().err
    assert f"{path}:1: ts: " in err and "is in the future" in err
    assert [u for u, _ in _exposures(state)] == ["u2", "u3"]


# A targeted test's lines without a variant were computed from the user id alone: every
# user missed the targeting and was skipped as "not in their test" (exit 0).


def test_a_targeted_tests_lines_need_the_variant(tmp_path, monkeypatch, capsys):
    from datetime import datetime, timedelta

    from cfgcore.dynamic_config import ABTestConfiguration, DynamicConfigurationManager

    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path))
    monkeypatch.delenv("CFGCORE_FLAG_STORE", raising=False)
    monkeypatch.chdir(tmp_path)
    now = datetime.now()
    m = DynamicConfigurationManager(state_dir=tmp_path, record_usage=False)
    assert m.create_ab_test(
        ABTestConfiguration(
            "eu", "", now - timedelta(days=1), now + timedelta(days=2),
            {"control": 50, "b": 50}, {"control": {}, "b": {}}, ["ctr"],
            targeting={"attr": "region", "in": ["EU"]},
        )
    )  # fmt: skip
    m.close()
    lines = [{"test": "eu", "user": "u1"}, {"test": "eu", "user": "u2", "variant": "b"}]
    path = _write(tmp_path / "eu.jsonl", lines)
    assert main(["experiment", "ingest", path]) == 1
    assert f"{path}:1: variant missing: A/B test eu has targeting" in capsys.readouterr().err
    assert [
        (e.user, e.variant) for e in read_exposures(str(tmp_path / "flags.exposures.jsonl"))
    ] == [("u2", "b")]


# A negative "ts" (a sign error: -1e18 was taken) was ingested and counted by the report
# as the current run's; 0 is the epoch itself, a time like any other.


@pytest.mark.parametrize("ts", [-1, -1e18, -(2**62)])
def test_a_negative_timestamp_is_an_unusable_line(state, capsys, ts):
    lines = [
        {"test": "st", "user": "u1", "variant": "b", "ts": ts},
        {"type": "metric", "test": "st", "user": "u1", "metric": "ctr", "ts": ts},
        {"test": "st", "user": "u2", "variant": "b", "ts": 0},
    ]
    path = _write(state / "neg.jsonl", lines)
    assert main(["experiment", "ingest", path]) == 1
    err = capsys.readouterr().err
    assert f"{path}:1: ts: " in err and f"{path}:2: ts: " in err and "before 1970" in err
    assert [u for u, _ in _exposures(state)] == ["u2"]
