"""Twelfth round: a guardrail stop held by every reader of the flag file. A start judged
the flag file against the guardrail stops on record only when a
``DynamicConfigurationManager`` opened it: a process that opened only a
``ConfigurationManager`` on the same directory (its ``flags`` engine) served a file put
back from before the stop, the harmful variant, until a dynamic-config manager opened
on it. The check now sits where every reader passes, the start of the shared live flag
set (``LiveFlags``), whichever manager opens it. Real files, real managers, and a real
process running only a configuration manager."""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys

import pytest

from cfgcore.config.manager import ConfigurationManager
from cfgcore.dynamic_config import DynamicConfigurationManager
from cfgcore.engine import engine_class
from tests.conftest import copy_bundled_config
from tests.test_experiments import USERS, _simulate
from tests.test_fix10_exp_guardrail_hold import EDITS, HARMFUL, TEST, _guarded_test


def _stopped_then_down(tmp_path, impl):
    """The test stopped by its guardrail, every manager closed: the flag file's path,
    its bytes from before the stop and as the stop left them."""
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
        return m.flags_file, before, stopped
    finally:
        m.close()


def _config_manager(tmp_path, flags):
    config = tmp_path / "config"
    if not config.exists():
        copy_bundled_config(config)
    return ConfigurationManager(
        str(config), flags_file=flags, environ={}, validate=False,
        audit_log=str(tmp_path / "config-audit.jsonl"),
    )  # fmt: skip


def _served(engine, users=USERS[:600]):
    return {engine.variant(TEST, {"user_id": u}) for u in users}


@pytest.mark.parametrize("edit", EDITS, ids=lambda f: f.__name__.strip("_"))
def test_a_configuration_manager_alone_serves_the_stop(tmp_path, impl, edit, caplog):
    path, before, stopped = _stopped_then_down(tmp_path, impl)
    bad = json.dumps(edit(json.loads(stopped), json.loads(before))).encode()
    with open(path, "wb") as fh:  # undone while no process serves the file
        fh.write(bad)
    caplog.set_level("ERROR", logger="cfgcore")
    cm = _config_manager(tmp_path, path)
    try:
        assert "variant_b" not in _served(cm.flags)
        # Refused as a dynamic-config manager's start refuses it: the file kept aside
        # byte for byte, written back with the test stopped, the refusal logged and
        # audited in the configuration manager's log, naming the file and the test.
        (aside,) = glob.glob(f"{path}.refused-*")
        with open(aside, "rb") as fh:
            assert fh.read() == bad
        with open(path) as fh:
            assert json.load(fh)["experiments"][TEST]["status"] == "stopped"
        said = " ".join(r.getMessage() for r in caplog.records)
        assert aside in said and f"cfgcore experiment start {TEST}" in said
        with open(tmp_path / "config-audit.jsonl") as fh:
            entries = [json.loads(line) for line in fh]
        errors = [e for e in entries if e.get("kind") == "error"]
        assert errors and TEST in json.dumps(errors[-1]) and path in json.dumps(errors[-1])
    finally:
        cm.close()


def test_a_dynamic_manager_opened_after_it_serves_the_stop_and_audits_it(tmp_path, impl):
    """Both managers of one process share the live set: the refusal made when the
    configuration manager opened it is audited in the flag audit log too."""
    path, before, _ = _stopped_then_down(tmp_path, impl)
    with open(path, "wb") as fh:
        fh.write(before)
    cm = _config_manager(tmp_path, path)
    try:
        assert "variant_b" not in _served(cm.flags)
        m = DynamicConfigurationManager(state_dir=tmp_path, guardrail_check_every=10**9)
        try:
            assert {m.get_ab_test_variant(TEST, {"user_id": u}) for u in USERS[:300]} == {"control"}
            errors = [a for a in m.audit.read(m.audit.path) if a.get("kind") == "error"]
            assert errors and TEST in str(errors[-1])
        finally:
            m.close()
    finally:
        cm.close()
    assert len(glob.glob(f"{path}.refused-*")) == 1


def test_a_process_running_only_a_configuration_manager_serves_the_stop(tmp_path, impl):
    """The real case: another interpreter that imports no dynamic-config manager."""
    path, before, _ = _stopped_then_down(tmp_path, impl)
    with open(path, "wb") as fh:  # a backup from before the stop put back
        fh.write(before)
    copy_bundled_config(tmp_path / "config")
    script = (
        "import sys, json\n"
        "from cfgcore.config.manager import ConfigurationManager\n"
        "cm = ConfigurationManager(sys.argv[1], flags_file=sys.argv[2], environ={}, "
        "validate=False)\n"
        f"print(json.dumps(sorted({{cm.flags.variant({TEST!r}, {{'user_id': f'u{{i}}'}}) "
        "for i in range(400)})))\n"
        "print(sorted(m for m in sys.modules if m.startswith('cfgcore.experiments.dynamic')))\n"
        "cm.close()\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    if impl.__name__.endswith("_eval_py"):
        env["CFGCORE_NO_EXTENSIONS"] = "1"
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "config"), path],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    served, modules = done.stdout.splitlines()[-2:]
    assert "variant_b" not in json.loads(served)
    assert modules == "[]"  # no dynamic-config manager was involved
    assert "refused-" in done.stderr and TEST in done.stderr
    assert len(glob.glob(f"{path}.refused-*")) == 1
