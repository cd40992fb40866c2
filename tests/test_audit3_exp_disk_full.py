"""Exposure and metric logs at a full disk, third audit. A process whose files may not
grow (RLIMIT_FSIZE, set in a subprocess: writes fail with EFBIG as on a full disk)
used to log a full traceback for every batch its writers could not write (hundreds a
second on a busy service), and the events lost were counted nowhere. Now each writer
logs the first failure, sums the rest up once a minute and says when it writes again;
every event that did not reach its log is counted in ``cfgcore_dropped_events_total``;
and the logs still hold whole lines only."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import cfgcore

SRC = os.path.dirname(os.path.dirname(cfgcore.__file__))
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SCRIPT = textwrap.dedent(
    """
    import json, logging, os, resource, sys
    import cfgcore.metrics
    from cfgcore.dynamic_config import DynamicConfigurationManager
    from tests.test_experiments import NOW, Clock, seed_test

    state = sys.argv[1]
    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append((record.name, record.levelname, record.getMessage()))

    logging.getLogger("cfgcore").addHandler(Keep())
    logging.getLogger("cfgcore").setLevel(logging.WARNING)

    def dropped(stream):
        family = cfgcore.metrics.snapshot()["metrics"]["cfgcore_dropped_events_total"]
        return sum(s["value"] for s in family["samples"] if s["labels"]["stream"] == stream)

    def lines(name):
        with open(os.path.join(state, name), "rb") as fh:
            data = fh.read()
        return data.count(b"\\n"), data.endswith(b"\\n"), [json.loads(x) for x in data.splitlines()]

    def record(users):
        for i in users:
            m.get_ab_test_variant("t", {"user_id": f"user-{i}"})
            assert m.record_metric("t", "click_through_rate", 1.0, user_id=f"user-{i}")
        assert m.exposures.flush() and m.metrics.flush()

    m = DynamicConfigurationManager(state_dir=state, clock=Clock(NOW))
    assert m.create_ab_test(seed_test("t"))
    record(range(100))
    start = {s: dropped(s) for s in ("exposures", "metrics")}
    sizes = [os.path.getsize(os.path.join(state, f"flags.{s}.jsonl")) for s in start]
    # No file may grow past the smaller log's size now: no append can succeed.
    resource.setrlimit(resource.RLIMIT_FSIZE, (min(sizes), resource.RLIM_INFINITY))
    record(range(100, 4100))
    full = {
        "metrics": lines("flags.metrics.jsonl"), "exposures": lines("flags.exposures.jsonl"),
        "dropped": {s: dropped(s) - start[s] for s in start}, "log": list(records),
    }
    records.clear()
    resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    record(range(4100, 4200))
    after = {
        "metrics": lines("flags.metrics.jsonl")[0], "exposures": lines("flags.exposures.jsonl")[0],
        "dropped": {s: dropped(s) - start[s] for s in start}, "log": list(records),
    }
    m.close()
    print(json.dumps({"full": full, "after": after}))
    """
)


def test_a_full_disk_is_logged_once_counted_and_leaves_whole_lines(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([SRC, ROOT]))
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "state")],
        capture_output=True, text=True, env=env, timeout=120, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.splitlines()[-1])
    full = out["full"]
    n_metrics, whole_m, metric_lines = full["metrics"]
    n_exposures, whole_e, exposure_lines = full["exposures"]
    # The first 100 users' lines, whole; nothing of the 4000 users after the limit.
    assert whole_m and whole_e and n_metrics == n_exposures == 100
    assert {r["user"] for r in metric_lines} == {f"user-{i}" for i in range(100)}
    assert {r["user"] for r in exposure_lines} == {f"user-{i}" for i in range(100)}
    # Every event the logs do not hold is counted as dropped.
    assert full["dropped"] == {"metrics": 4000, "exposures": 4000}
    # One error per writer (with its traceback), not one per batch.
    errors = [r for r in full["log"] if r[1] == "ERROR"]
    assert sorted(r[2].split(":")[0] for r in errors) == ["cfgcore-exposures", "cfgcore-metrics"]
    assert all("could not be written" in r[2] for r in errors)
    assert len(full["log"]) == 2
    # Space again: each writer says so, and writes the new events.
    after = out["after"]
    again = sorted(r[2] for r in after["log"] if "writing again" in r[2])
    assert again == [
        "cfgcore-exposures: writing again (4000 records lost in all)",
        "cfgcore-metrics: writing again (4000 records lost in all)",
    ]
    assert after["metrics"] == after["exposures"] == 200
    assert after["dropped"] == full["dropped"]
