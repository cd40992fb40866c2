"""`cfgcore demo` runs on the embedded defaults with no files to write."""

from __future__ import annotations

import subprocess
import sys


def test_demo_runs_on_bundled_flags():
    out = subprocess.run(
        [sys.executable, "-m", "cfgcore", "demo", "--users", "2000"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    # Which configuration directory was chosen, and how (here: none given, no ./config).
    assert "defaults/config (embedded defaults) loaded, validated and active" in out
    assert "premium bitrate 320 kbps" in out and "PASSED" in out
    assert "base.yaml:" in out  # provenance names the file and line
    # one row per flag, named in full (not cut to a column's width), one column per user
    table = out.split("evaluator=")[1].split("\n\n")[1].splitlines()
    assert table[0].split() == ["flag", "premium/EU", "premium/US", "family/EU",
                                "student/APAC", "free/US"]  # fmt: skip
    assert table[1].split() == ["#12345", "#20001", "#30002", "#40003", "#50004"]
    rows = {line.split()[0]: line.split()[1:] for line in table[2:]}
    from cfgcore.engine import Engine

    assert list(rows) == list(Engine.bundled().snapshot().keys)  # every flag
    assert rows["enhanced_anomaly_detection"] == ["True", "True", "False", "False", "False"]
    assert rows["parental_controls"] == ["False", "False", "True", "False", "False"]
    assert rows["recommendation_algorithm_v2"][0] == "control"  # a variant, not True/False
    assert "recommendation_algorithm_v2 over 2,000 users: control" in out
    timings = out.split("hot path, per call")[1].splitlines()[1:]
    assert len(timings) == 3 and all(line.endswith(" ns") for line in timings)
    assert len({len(line) for line in timings}) == 1  # one column of figures


def test_demo_reports_a_bad_flag_file_in_one_line(tmp_path):
    bad = tmp_path / "flags.yaml"
    bad.write_text("flags:\n  f: {rules: [{serve: maybe}]}\n")
    proc = subprocess.run(
        [sys.executable, "-m", "cfgcore", "demo", "--flags", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert "flags.f.rules[0].serve: unknown variant 'maybe'" in proc.stderr
    assert "Traceback" not in proc.stderr
