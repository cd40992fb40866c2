"""Eleventh round: a guardrail stop undone while every process was down. A running
process refuses a flag file that serves again the variants of a test its guardrail
stopped (``test_fix10_exp_guardrail_hold.py``), but a file store keeps no earlier
document: a process starting on such a file (put back from before the stop, its record
or flag edited) had nothing to judge it against and served the harmful variant. The
stop is on record in the audit log (``flags.audit.jsonl``, written on every change), so
a start now judges a file edited by hand against the test records the log last
recorded: refused, kept as ``<file>.refused-<time>``, written back with the test
stopped. Real files, real managers, a real restart (a new manager, and a new process,
on the same directory)."""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys

import pytest

from cfgcore.dynamic_config import DynamicConfigurationManager
from cfgcore.engine import engine_class
from cfgcore.experiments.abtest import GUARDRAIL_STOPPED_AT, RESUMED_AT
from tests.test_experiments import USERS, _simulate
from tests.test_fix10_exp_guardrail_hold import EDITS, HARMFUL, TEST, _guarded_test


def _stopped_then_down(tmp_path, impl):
    """The test stopped by its guardrail, every manager closed; the flag file from
    before the stop and the file as the stop left it."""
    m = DynamicConfigurationManager(
        state_dir=tmp_path, engine=engine_class(impl)(), guardrail_check_every=10**9
    )
    try:
        assert m.create_ab_test(_guarded_test())
        with open(m.flags_file, "rb") as fh:
            before = fh.read()
        _simulate(m, TEST, HARMFUL, metric="playback_errors")
        assert m.check_guardrails(TEST)
        with open(m.flags_file, "rb") as fh:
            stopped = fh.read()
        path = m.flags_file
    finally:
        m.close()
    return path, before, stopped


def _served(m, users=USERS[:600]):
    return {m.get_ab_test_variant(TEST, {"user_id": u}) for u in users}


def _restart(tmp_path, impl):
    return DynamicConfigurationManager(
        state_dir=tmp_path, engine=engine_class(impl)(), guardrail_check_every=10**9
    )


@pytest.mark.parametrize("edit", EDITS, ids=lambda f: f.__name__.strip("_"))
def test_a_restart_refuses_a_file_that_undid_a_guardrail_stop_while_all_were_down(
    tmp_path, impl, edit, caplog
):
    path, before, stopped = _stopped_then_down(tmp_path, impl)
    bad = json.dumps(edit(json.loads(stopped), json.loads(before))).encode()
    with open(path, "wb") as fh:  # edited while no process serves the file
        fh.write(bad)
    caplog.set_level("ERROR", logger="cfgcore")
    m = _restart(tmp_path, impl)
    try:
        assert _served(m) == {"control"}
        record = m.list_ab_tests()[TEST]
        assert record["status"] == "stopped" and record[GUARDRAIL_STOPPED_AT]
        # Kept aside byte for byte, the file written back with the test stopped, and
        # the refusal logged and audited naming the file and the test.
        aside = glob.glob(f"{path}.refused-*")
        assert len(aside) == 1
        with open(aside[0], "rb") as fh:
            assert fh.read() == bad
        with open(path) as fh:
            assert json.load(fh)["experiments"][TEST]["status"] == "stopped"
        said = " ".join(r.getMessage() for r in caplog.records)
        assert aside[0] in said and TEST in said and f"cfgcore experiment start {TEST}" in said
        errors = [a for a in m.audit.read(m.audit.path) if a.get("kind") == "error"]
        assert errors and TEST in str(errors[-1]) and path in str(errors[-1])
    finally:
        m.close()
    again = _restart(tmp_path, impl)  # and the next start serves the stop, refusing nothing
    try:
        assert _served(again, USERS[:200]) == {"control"}
        assert len(glob.glob(f"{path}.refused-*")) == 1
    finally:
        again.close()


def test_a_new_process_on_the_directory_serves_the_stop(tmp_path, impl):
    """The real restart: another interpreter opening the state directory."""
    path, before, _ = _stopped_then_down(tmp_path, impl)
    with open(path, "wb") as fh:  # a backup from before the stop put back
        fh.write(before)
    script = (
        "import sys, json\n"
        "from cfgcore.dynamic_config import DynamicConfigurationManager\n"
        "m = DynamicConfigurationManager(state_dir=sys.argv[1])\n"
        f"print(json.dumps(sorted({{m.get_ab_test_variant({TEST!r}, {{'user_id': f'u{{i}}'}}) "
        "for i in range(400)})))\n"
        "m.close()\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    if impl.__name__.endswith("_eval_py"):
        env["CFGCORE_NO_EXTENSIONS"] = "1"
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == ["control"]
    assert "refused-" in done.stderr and TEST in done.stderr
    assert len(glob.glob(f"{path}.refused-*")) == 1


def test_only_an_audited_resume_lets_a_restart_serve_the_test_again(tmp_path, impl):
    """Refused at a restart until resumed through the experiment API (audited); then
    it serves its variants after a restart, and a hand edit of the resumed file while
    all are down (its description) is no re-activation: served, nothing set aside."""
    path, before, _ = _stopped_then_down(tmp_path, impl)
    with open(path, "wb") as fh:
        fh.write(before)
    m = _restart(tmp_path, impl)
    try:
        assert _served(m) == {"control"}
        assert m.create_ab_test(m.get_ab_test(TEST))  # the API's resume, audited
        assert m.list_ab_tests()[TEST][RESUMED_AT]
    finally:
        m.close()
    (aside,) = glob.glob(f"{path}.refused-*")
    again = _restart(tmp_path, impl)
    try:
        assert "variant_b" in _served(again)
    finally:
        again.close()
    with open(path) as fh:
        doc = json.load(fh)
    doc["experiments"][TEST]["description"] = "looked at it"
    with open(path, "w") as fh:
        json.dump(doc, fh)
    third = _restart(tmp_path, impl)
    try:
        assert "variant_b" in _served(third)
        assert glob.glob(f"{path}.refused-*") == [aside]
    finally:
        third.close()


def test_a_stop_by_hand_keeps_a_guardrail_stop_held_and_is_not_held_itself(tmp_path, impl):
    """Stopped by hand after the guardrail's stop: still held at a restart. A test
    only ever stopped by hand may be served again by a file put back while all are
    down (only a guardrail's stop is held)."""
    path, before, _ = _stopped_then_down(tmp_path, impl)
    m = _restart(tmp_path, impl)
    try:
        assert m.stop_ab_test(TEST, "looked at it")
        assert m.list_ab_tests()[TEST][GUARDRAIL_STOPPED_AT]
    finally:
        m.close()
    with open(path, "wb") as fh:
        fh.write(before)
    again = _restart(tmp_path, impl)
    try:
        assert _served(again) == {"control"}
        assert len(glob.glob(f"{path}.refused-*")) == 1
    finally:
        again.close()

    other = tmp_path / "other"
    m = _restart(other, impl)
    try:
        assert m.create_ab_test(_guarded_test())
        path = m.flags_file
        with open(path, "rb") as fh:
            before = fh.read()
        assert m.stop_ab_test(TEST, "paused")
    finally:
        m.close()
    with open(path, "wb") as fh:
        fh.write(before)
    again = _restart(other, impl)
    try:
        assert "variant_b" in _served(again)
        assert not glob.glob(f"{path}.refused-*")
    finally:
        again.close()


def test_damaged_audit_lines_do_not_hide_the_stop_or_block_the_start(tmp_path, impl):
    """Lines that are no entry (garbage, a list, a line cut short by a crash) are
    passed over: the stop recorded before them still holds at a restart."""
    path, before, _ = _stopped_then_down(tmp_path, impl)
    audit = os.path.join(tmp_path, "flags.audit.jsonl")
    with open(audit, "ab") as fh:
        fh.write(
            b'not json "experiments.x"\n["experiments.y"]\n{"kind": "change", "path": "experim'
        )
    with open(path, "wb") as fh:
        fh.write(before)
    m = _restart(tmp_path, impl)
    try:
        assert _served(m) == {"control"}
        assert len(glob.glob(f"{path}.refused-*")) == 1
    finally:
        m.close()
