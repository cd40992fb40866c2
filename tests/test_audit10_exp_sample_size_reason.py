"""``cfgcore experiment report --mde``, tenth audit: a metric whose control gives no
baseline for a sample size was shown as ``n/a (no control data)`` beside a control row
of hundreds of users (no user converted yet, every user converted, or a metric without
variance), and ``--json`` gave ``null`` without a reason. Each is now named as what it
is (text and ``--json``'s ``sample_size_unavailable``, ``ExperimentReport.no_sample_size``),
and "no control data" is kept for a control without users."""

from __future__ import annotations

import json

import pytest

from cfgcore.experiments.analysis import analyze
from cfgcore.experiments.exposures import Exposure
from cfgcore.experiments.metrics import MetricsStore
from tests.conftest import run_cli as run

pytest.importorskip("scipy.stats")

META = {
    "traffic_split": {"control": 50.0, "b": 50.0},
    "control": "control",
    "success_metrics": ["conv", "amt", "rev"],
    "metric_types": {"conv": "binary", "amt": "continuous", "rev": "per_user"},
}


def _lines(conv: int, amt: float, rev: float, users: int = 40) -> str:
    rows = []
    for i in range(users):
        v = "control" if i % 2 else "b"
        user = {"test": "t", "user": f"u{i}", "variant": v}
        rows.append({"type": "exposure", **user})
        rows.append({**user, "metric": "conv", "value": conv})
        rows.append({**user, "metric": "amt", "value": amt})
        rows.append({**user, "metric": "rev", "value": rev})
    return "".join(json.dumps(r) + "\n" for r in rows)


@pytest.fixture
def state(tmp_path, capsys):
    argv = ["experiment", "create", "t", "--split", "control=50,b=50", "--metric", "conv",
            "--metric", "amt", "--metric-type", "amt=continuous", "--metric-type",
            "rev=per_user", "--start"]  # fmt: skip
    code, _, err = run(capsys, "-q", *argv, "--state-dir", str(tmp_path))
    assert code == 0, err
    return tmp_path


@pytest.mark.parametrize(
    ("conv", "reason"),
    [
        (0, "no user converted in the control: a rate of 0 is no baseline"),
        (1, "every user converted in the control: a rate of 1 is no baseline"),
    ],
)
def test_a_control_with_users_is_never_called_no_data(state, capsys, conv, reason):
    events = state / "ev.jsonl"
    events.write_text(_lines(conv, 3.0, 2.5))
    code, _, err = run(capsys, "experiment", "ingest", str(events), "--state-dir", str(state))
    assert code == 0, err
    code, out, err = run(
        capsys, "experiment", "report", "t", "--mde", "0.02", "--state-dir", str(state)
    )
    assert code == 0, err
    assert "no control data" not in out
    assert f"  conv: n/a ({reason})" in out
    constant = "no variance in the control: every user has the same value"
    assert f"  amt: n/a ({constant})" in out
    assert f"  rev: n/a ({constant})" in out
    code, out, err = run(
        capsys, "experiment", "report", "t", "--mde", "0.02", "--json", "--state-dir", str(state)
    )
    assert code == 0, err
    data = json.loads(out)
    assert data["sample_size_per_variant"] == {"conv": None, "amt": None, "rev": None}
    assert data["sample_size_unavailable"] == {"conv": reason, "amt": constant, "rev": constant}


def test_sizes_that_exist_have_no_reason(state, capsys):
    rows = [json.loads(line) for line in _lines(0, 3.0, 2.5).splitlines()]
    for row in rows:  # every third user converts, values vary
        if "metric" in row:
            n = int(row["user"][1:])
            row["value"] = {"conv": int(n % 3 == 0), "amt": n % 7, "rev": n % 5}[row["metric"]]
    events = state / "ev.jsonl"
    events.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert run(capsys, "experiment", "ingest", str(events), "--state-dir", str(state))[0] == 0
    code, out, err = run(
        capsys, "experiment", "report", "t", "--mde", "0.1", "--relative", "--json",
        "--state-dir", str(state),
    )  # fmt: skip
    assert code == 0, err
    data = json.loads(out)
    assert all(isinstance(n, int) for n in data["sample_size_per_variant"].values())
    assert data["sample_size_unavailable"] == {}


def test_no_sample_size_names_each_case():
    store = MetricsStore(None)
    report = analyze("t", META, store)
    assert report.no_sample_size("conv") == "no control data"
    store.write([Exposure("t", "control", "u1", 0.0)])
    store.record("t", "control", "amt", 5.0, user="u1")
    report = analyze("t", META, store)
    assert report.no_sample_size("amt") == "one user in the control"
    for user, value in (("u2", 1.0), ("u3", -1.0)):
        store.write([Exposure("t", "control", user, 0.0)])
        store.record("t", "control", "amt", value, user=user)
    store.record("t", "control", "amt", -5.0, user="u1")  # the control's mean is 0
    report = analyze("t", META, store)
    assert report.no_sample_size("amt") == ""
    assert report.sample_size("amt", 1.0) is not None
    assert report.no_sample_size("amt", relative=True) == (
        "the control's mean is 0: no relative change of it"
    )
    assert report.sample_size("amt", 0.1, relative=True) is None
