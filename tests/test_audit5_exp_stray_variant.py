"""Fifth audit: metric events recorded for a variant the test does not have.

``record_metric(..., variant=...)`` took the caller's variant as given, and an event for
a misspelt one was kept under that name, counted by no comparison, and mentioned by no
report: lost silently. ``record_metric`` now refuses such a variant (False), but events
still reach the store under variants the test does not have through the store itself
(``cfgcore experiment ingest``, events of a variant a later edit removed): the report
names those variants and their event counts (text and JSON).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from cfgcore.dynamic_config import ABTestConfiguration, DynamicConfigurationManager
from tests.conftest import run_cli

NOW = datetime.now(timezone.utc)


def _manager(**kw):
    m = DynamicConfigurationManager(record_usage=False, **kw)
    assert m.create_ab_test(
        ABTestConfiguration(
            "t", "", NOW - timedelta(days=1), NOW + timedelta(days=9),
            {"control": 50.0, "b": 50.0}, {"control": {}, "b": {}}, ["buy"],
        )
    )  # fmt: skip
    return m


def _record(m):
    # the request path refuses a variant the test does not serve ...
    assert m.record_metric("t", "buy", 1.0, user_id="u1", variant="B") is False
    # ... the store (what ingest and older events reach) files it under that name
    m.metrics.record("t", "B", "buy", 1.0, "u1")  # misspelt
    m.metrics.record("t", "B", "buy", 1.0, "u2")
    m.metrics.record("t", "treatment", "buy", 1.0, "u3")
    assert m.record_metric("t", "buy", 1.0, user_id="u4", variant="b") is True


def test_the_report_names_events_of_variants_the_test_does_not_have():
    m = _manager(persist=False)
    try:
        _record(m)
        report = m.analyze("t")
    finally:
        m.close()
    assert report.stray_events == {"B": 2, "treatment": 1}
    assert "variants this test does not have" in report.to_text()
    assert "'B': 2" in report.to_text()
    assert report.to_dict()["stray_events"] == {"B": 2, "treatment": 1}
    assert sum(r.events for r in report.results) == 1  # only b's event is compared


def test_a_clean_test_has_no_warning_and_the_cli_json_says_so_too(tmp_path, capsys):
    m = _manager(state_dir=tmp_path)
    try:
        m.record_metric("t", "buy", 1.0, user_id="u4", variant="b")
        assert m.analyze("t").stray_events == {}
        _record(m)
        m.metrics.flush()
    finally:
        m.close()
    code, out, err = run_cli(
        capsys, "experiment", "report", "t", "--state-dir", str(tmp_path), "--json"
    )
    assert code == 0, err
    assert json.loads(out)["stray_events"] == {"B": 2, "treatment": 1}
