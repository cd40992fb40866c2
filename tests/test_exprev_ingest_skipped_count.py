"""``cfgcore experiment ingest``'s summary counted the lines of users not in their test
and called them users: 1,783 users held out, each with an exposure and a metric line,
read "skipped 3566 user(s) not in their test". It now says what it counts, lines."""

from __future__ import annotations

import json

from cfgcore.dynamic_config import DynamicConfigurationManager
from tests.conftest import run_cli


def test_the_summary_counts_the_skipped_lines_as_lines(checkout_test, capsys, tmp_path):
    m = DynamicConfigurationManager(state_dir=checkout_test, record_usage=False)
    try:
        m.set_holdout_percentage(50)
        users = [f"u{i}" for i in range(60)]
        out = [u for u in users if m.engine.variant("checkout", {"user_id": u}) == "__none__"]
    finally:
        m.close()
    assert 10 < len(out) < 50
    batch = tmp_path / "batch.jsonl"
    batch.write_text(
        "".join(
            json.dumps({"test": "checkout", "user": u}) + "\n"
            + json.dumps({"test": "checkout", "user": u, "metric": "conversion", "value": 1})
            + "\n"
            for u in users
        )
    )  # fmt: skip
    code, stdout, err = run_cli(capsys, "experiment", "ingest", str(batch))
    assert code == 0, err
    summary = stdout + err
    in_test = len(users) - len(out)
    assert f"ingested {in_test} exposure(s) and {in_test} metric event(s)" in summary
    assert f"skipped {2 * len(out)} line(s) of users not in their test" in summary, summary
