"""Tenth round: a hand edit of the flag file that served again a test its guardrail had
stopped (the file put back from before the stop, or its record or flag edited) was
served: the harmful variant came back without anyone resuming the test. Now a
guardrail stop stays in force until an explicit, audited resume (``cfgcore experiment
start``, or ``create_ab_test`` with ``start=True``): such an edit is refused like other
refused hand edits (the error names the file and the test), set aside as
``<file>.refused-<time>`` with the serving document written back, so no reload or
restart serves it. Real files, real managers, the real guardrail check, the real CLI
in another process."""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfgcore.dynamic_config import DynamicConfigurationManager
from cfgcore.engine import engine_class
from cfgcore.experiments.abtest import GUARDRAIL_STOPPED_AT, RESUMED_AT, guardrail_reactivations
from cfgcore.snapshot import snapshot_from_dict
from tests.fuzz import examples
from tests.test_experiments import USERS, _simulate, seed_test, variants_of

TEST = "recommendation_algorithm_v2"
HARMFUL = {"control": 0.02, "variant_a": 0.02, "variant_b": 0.30}
GUARD = {"playback_errors": "lower_is_better"}


def _guarded_test():
    now = datetime.now(timezone.utc)
    return seed_test(
        start_date=now - timedelta(days=1), end_date=now + timedelta(days=14),
        guardrail_metrics=GUARD,
    )  # fmt: skip


def _stopped(tmp_path, impl):
    """A manager whose test its guardrail stopped, and the flag file from before."""
    m = DynamicConfigurationManager(
        state_dir=tmp_path, engine=engine_class(impl)(), guardrail_check_every=10**9
    )
    assert m.create_ab_test(_guarded_test())
    with open(m.flags_file, "rb") as fh:
        before = fh.read()
    _simulate(m, TEST, HARMFUL, metric="playback_errors")
    assert m.check_guardrails(TEST)
    assert m.list_ab_tests()[TEST]["status"] == "stopped"
    return m, before


def _put_back(stopped: dict, before: dict) -> dict:
    return before  # the file as it was before the stop (a backup, a git checkout)


def _status_only(stopped: dict, before: dict) -> dict:
    stopped["experiments"][TEST]["status"] = "active"
    return stopped


def _flag_only(stopped: dict, before: dict) -> dict:
    stopped["flags"][TEST] = before["flags"][TEST]  # splits again; record says stopped
    return stopped


def _record_gone(stopped: dict, before: dict) -> dict:
    del stopped["experiments"][TEST]  # an ordinary flag now, serving its variants
    stopped["flags"][TEST] = before["flags"][TEST]
    return stopped


EDITS = [_put_back, _status_only, _flag_only, _record_gone]


def _served(m, users=USERS[:600]):
    return set(variants_of(m, TEST, users).values())


@pytest.mark.parametrize("edit", EDITS, ids=lambda f: f.__name__.strip("_"))
def test_a_hand_edit_serving_a_stopped_test_again_is_refused_and_set_aside(tmp_path, impl, edit):
    m, before = _stopped(tmp_path, impl)
    try:
        path = m.flags_file
        with open(path) as fh:
            stopped_text = fh.read()
        bad = json.dumps(edit(json.loads(stopped_text), json.loads(before))).encode()
        with open(path, "wb") as fh:  # the operator's hand edit
            fh.write(bad)
        assert m.reload() is False
        error = str(m._live.last_error)
        assert path in error and TEST in error and "guardrail" in error
        assert f"cfgcore experiment start {TEST}" in error
        assert _served(m) == {"control"}
        # Kept aside byte for byte; the serving document is back in the file, so a
        # reload or a restart serves the stop.
        aside = glob.glob(f"{path}.refused-*")
        assert len(aside) == 1
        with open(aside[0], "rb") as fh:
            assert fh.read() == bad
        with open(path) as fh:
            assert json.load(fh)["experiments"][TEST]["status"] == "stopped"
        m.reload()
        assert _served(m) == {"control"}
        audit = m.audit.read(m.audit.path)
        assert any(a.get("kind") == "error" and TEST in str(a) for a in audit)
    finally:
        m.close()
    again = DynamicConfigurationManager(path)
    try:
        assert _served(again, USERS[:200]) == {"control"}
    finally:
        again.close()


def test_the_cli_resume_serves_the_test_again_in_every_process(tmp_path, impl):
    """``cfgcore experiment start`` run elsewhere (another process): this one, which
    serves the stopped test, takes the resumed document on reload; it is audited as
    ``resume_ab_test``. A file put back from before the stop is still refused after the
    next stop."""
    m, before = _stopped(tmp_path, impl)
    try:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        done = subprocess.run(
            [sys.executable, "-m", "cfgcore", "experiment", "start", TEST,
             "--state-dir", str(tmp_path)],
            env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert m.reload() is True
        record = m.list_ab_tests()[TEST]
        assert record["status"] == "active" and record[RESUMED_AT] >= record.get(
            GUARDRAIL_STOPPED_AT, 0
        )
        assert GUARDRAIL_STOPPED_AT not in record
        assert "variant_b" in _served(m)
        audit = m.audit.read(m.audit.path)
        assert any(a.get("source") == "resume_ab_test" for a in audit)
        # Stopped again by hand: a stop that is no guardrail's may be undone by a file.
        assert m.stop_ab_test(TEST, "paused")
        with open(m.flags_file) as fh:
            doc = json.load(fh)
        doc["experiments"][TEST]["status"] = "active"
        doc["flags"][TEST] = json.loads(before)["flags"][TEST]
        with open(m.flags_file, "w") as fh:
            json.dump(doc, fh)
        assert m.reload() is True
        assert "variant_b" in _served(m)
    finally:
        m.close()


def test_a_stop_by_hand_after_a_guardrail_stop_keeps_it_in_force(tmp_path, impl):
    """Stopping the test again (another reason), or re-creating it without start,
    does not end the guardrail's stop: only a resume does."""
    m, before = _stopped(tmp_path, impl)
    try:
        assert m.stop_ab_test(TEST, "looked at it")
        test = m.get_ab_test(TEST)
        assert m.create_ab_test(test, start=False)
        assert m.list_ab_tests()[TEST].get(GUARDRAIL_STOPPED_AT)
        with open(m.flags_file, "wb") as fh:
            fh.write(before)
        assert m.reload() is False
        assert _served(m) == {"control"}
        assert m.create_ab_test(test)  # the API's resume
        assert "variant_b" in _served(m)
        assert m.list_ab_tests()[TEST][RESUMED_AT]
    finally:
        m.close()


@settings(max_examples=examples(40), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    status=st.sampled_from(["active", "stopped", None]),
    splits=st.booleans(),
    resumed=st.one_of(st.none(), st.floats(0, 2e9)),
    stopped_at=st.floats(1, 2e9),
)
def test_only_a_resume_after_the_stop_lets_a_document_serve_it_again(
    status, splits, resumed, stopped_at
):
    """The judgement alone, over records and flags: a document serving the variants
    of a guardrail-stopped test (record active, or flag splitting) is refused unless
    its record says it was resumed at or after the stop."""
    split = {"control": 50.0, "variant_a": 50.0}
    stopped_flag = {"variants": {"control": 1, "variant_a": 2}, "rules": [{"serve": "control"}]}
    split_flag = {"variants": {"control": 1, "variant_a": 2}, "rules": [{"split": split}]}
    was = {"status": "stopped", "stopped_reason": "guardrail: x", "stopped_at": stopped_at,
           GUARDRAIL_STOPPED_AT: stopped_at, "traffic_split": split}  # fmt: skip
    old = snapshot_from_dict({"flags": {"t": stopped_flag}, "experiments": {"t": was}})
    record = {k: v for k, v in was.items() if k != GUARDRAIL_STOPPED_AT or status == "stopped"}
    if status is None:
        record.pop("status")
    else:
        record["status"] = status
    if resumed is not None:
        record[RESUMED_AT] = resumed
    new = snapshot_from_dict(
        {"flags": {"t": split_flag if splits else stopped_flag}, "experiments": {"t": record}}
    )
    serves = status != "stopped" or splits
    explicit = resumed is not None and resumed >= stopped_at and status != "stopped"
    problems = guardrail_reactivations(old, new, "flags.json")
    assert bool(problems) == (serves and not explicit)
    for p in problems:
        assert p.file == "flags.json" and "'t'" in p.message
