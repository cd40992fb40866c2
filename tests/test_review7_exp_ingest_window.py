"""``cfgcore experiment ingest`` of lines without a variant for a test outside its window.

The audit7 fixes made a stopped or targeted test's lines without a variant unusable
lines (the variant cannot be computed now); a test whose window has ended (the usual
backfill: events collected while it ran, ingested after) or has not opened yet had the
same defect: computed now, every user got no variant and was skipped as "not in their
test", nothing was ingested and the exit status was 0.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest

from cfgcore.cli import main
from cfgcore.dynamic_config import ABTestConfiguration, DynamicConfigurationManager
from cfgcore.experiments.exposures import read_exposures

NOW = datetime.now()


@pytest.fixture
def state(tmp_path, monkeypatch):
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path))
    monkeypatch.delenv("CFGCORE_FLAG_STORE", raising=False)
    monkeypatch.chdir(tmp_path)
    m = DynamicConfigurationManager(state_dir=tmp_path, record_usage=False)
    try:
        for name, start, end in (
            ("ended", NOW - timedelta(days=10), NOW - timedelta(days=1)),
            ("later", NOW + timedelta(days=1), NOW + timedelta(days=10)),
        ):
            split = {"control": 50, "b": 50}
            t = ABTestConfiguration(name, "", start, end, split, {"control": {}, "b": {}})
            assert m.create_ab_test(t), m.last_error
    finally:
        m.close()
    return tmp_path


def _write(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return str(path)


@pytest.mark.parametrize(("test", "how"), [("ended", "ended at"), ("later", "opens at")])
def test_lines_without_a_variant_outside_the_window_are_not_skipped_silently(
    state, capsys, test, how
):
    lines = [
        {"test": test, "user": "u1"},
        {"type": "metric", "test": test, "user": "u2", "metric": "ctr"},
        {"test": test, "user": "u3", "variant": "b"},
    ]
    path = _write(state / "late.jsonl", lines)
    assert main(["experiment", "ingest", path]) == 1
    err = capsys.readouterr().err
    assert f"{path}:1: variant missing: the window of A/B test {test} {how}" in err
    assert f"{path}:2: variant missing" in err
    assert "give it" in err
    # the line that gives its variant is ingested as before
    got = [(e.user, e.variant) for e in read_exposures(str(state / "flags.exposures.jsonl"))]
    assert got == [("u3", "b")]
