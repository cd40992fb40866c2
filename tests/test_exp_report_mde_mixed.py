"""``cfgcore experiment report --mde`` on a test measuring metrics of several kinds: an
--mde that does not fit one metric (an absolute change a rate cannot take, while it is
a fine change of revenue) gives that metric no size, with the reason, and the others
theirs; the report is printed (exit 0). An --mde that fits no metric is still an error
(tests/test_cli_scripts.py).
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import run_cli, started_experiment_state


@pytest.fixture
def state(tmp_path, monkeypatch, capsys):
    home = started_experiment_state(tmp_path, monkeypatch, capsys)
    lines = []
    for i in range(400):
        variant = "control" if i % 2 else "b"
        lines.append({"test": "t", "user": f"u{i}", "variant": variant})
        lines.append({"test": "t", "user": f"u{i}", "variant": variant, "metric": "ctr",
                      "value": int(i % 5 == 0)})  # fmt: skip
        lines.append({"test": "t", "user": f"u{i}", "variant": variant, "metric": "revenue",
                      "value": 10.0 + (i % 7) * 1.5})  # fmt: skip
    batch = home / "batch.jsonl"
    batch.write_text("".join(json.dumps(r) + "\n" for r in lines))
    code, _, err = run_cli(capsys, "experiment", "ingest", str(batch))
    assert code == 0, err
    return home


def test_an_mde_that_fits_one_metric_only_reports_the_other_as_unavailable(state, capsys):
    code, out, err = run_cli(capsys, "experiment", "report", "t", "--mde", "0.95")
    assert code == 0, err
    assert "A/B test t" in out  # the report itself
    ctr = next(line for line in out.splitlines() if line.startswith("  ctr: "))
    assert ctr.startswith("  ctr: n/a (--mde 0.95 does not fit: rates must be within (0, 1)")
    revenue = next(line for line in out.splitlines() if line.startswith("  revenue: "))
    assert revenue.split()[1].isdigit() and "(smallest variant has 200)" in revenue

    code, out, err = run_cli(capsys, "experiment", "report", "t", "--mde", "0.95", "--json")
    assert code == 0, err
    data = json.loads(out)
    sizes = data["sample_size_per_variant"]
    assert sizes["ctr"] is None and isinstance(sizes["revenue"], int) and sizes["revenue"] > 0
    assert set(data["sample_size_unavailable"]) == {"ctr"}
    assert data["sample_size_unavailable"]["ctr"].startswith(
        "--mde 0.95 does not fit: rates must be within (0, 1) and differ"
    )

    # --relative alike: -100 % takes a rate to 0, and a mean by as much.
    code, out, err = run_cli(capsys, "experiment", "report", "t", "--mde", "-1", "--relative",
                             "--json")  # fmt: skip
    assert code == 0, err
    data = json.loads(out)
    assert data["sample_size_per_variant"]["ctr"] is None
    assert isinstance(data["sample_size_per_variant"]["revenue"], int)
