"""The guardrail stop register (``.<file>.guardrail-stops.json``) is a file cfgcore
writes beside the state directory's ``flags.json`` or a fleet store's cache file and
reads back as this host's record, as those files are; it was read whoever owned it.
Where other users may create files in the state directory (``/tmp``, a group-writable
directory), another user's register stopped a running A/B test at the next start (the
flag file moved aside, control served), which a fleet host writes back to the fleet's
register. It is judged as the state files are now: another user's register is refused
with an ERROR naming it, read as empty, and replaced by the next write. Real files
owned by another uid (root gives them away), real managers."""

from __future__ import annotations

import glob
import json
import logging
import os
import shutil

import pytest

from cfgcore.dynamic_config import DynamicConfigurationManager
from cfgcore.engine import engine_class
from cfgcore.experiments.stops import read_stops, stops_path, write_stops
from cfgcore.runtime.flagstore import FileFlagStore, state_flags_file
from tests.planted import OTHER, as_root
from tests.test_experiments import USERS, _simulate
from tests.test_fix10_exp_guardrail_hold import HARMFUL, TEST, _guarded_test

pytestmark = as_root


def _manager(state_dir, impl):
    return DynamicConfigurationManager(
        state_dir=state_dir,
        engine=engine_class(impl)(),
        guardrail_check_every=10**9,
        record_usage=False,
    )


def _served(m):
    return {m.get_ab_test_variant(TEST, {"user_id": u}) for u in USERS[:600]}


@pytest.fixture
def stopped_register(tmp_path, impl):
    """A register stopping TEST, as another user would write it (made by a manager of
    theirs in their own directory)."""
    m = _manager(tmp_path / "theirs", impl)
    try:
        assert m.create_ab_test(_guarded_test())
        _simulate(m, TEST, HARMFUL, metric="playback_errors")
        assert m.check_guardrails(TEST)
        path = stops_path(m._live.store)
    finally:
        m.close()
    assert TEST in read_stops(path)
    with open(path, "rb") as fh:
        return fh.read()


@pytest.mark.parametrize("mode", [0o1777, 0o2775])
def test_another_users_register_stops_no_test(tmp_path, impl, stopped_register, mode, caplog):
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, mode)
    m = _manager(shared, impl)
    try:
        assert m.create_ab_test(_guarded_test())
        assert _served(m) > {"control"}
    finally:
        m.close()
    register = shared / ".flags.json.guardrail-stops.json"
    aside = shared / ".planted"
    aside.write_bytes(stopped_register)
    os.chown(aside, OTHER, OTHER)
    os.replace(aside, register)
    with caplog.at_level(logging.ERROR, logger="cfgcore"):
        m = _manager(shared, impl)
    try:
        assert _served(m) > {"control"}  # (was {"control"}: the test stopped)
        assert not glob.glob(str(shared / "flags.json.refused-*"))
        assert any(
            str(register) in r.getMessage() and "uid 4321" in r.getMessage() for r in caplog.records
        )
    finally:
        m.close()


def test_a_refused_register_is_replaced_by_the_next_write(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    store = FileFlagStore(state_flags_file(shared))
    path = stops_path(store)
    with open(path, "w") as fh:
        json.dump({"tests": {"x": {"status": "stopped", "stopped_reason": "guardrail: y"}}}, fh)
    os.chown(path, OTHER, OTHER)
    assert read_stops(path) == {}
    write_stops(path, {"mine": {"status": "stopped", "stopped_reason": "guardrail: z"}})
    assert os.stat(path).st_uid == os.geteuid()
    assert set(read_stops(path)) == {"mine"}


def test_a_register_beside_a_flags_file_named_explicitly_is_the_deployments(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    flags = shared / "deploy-flags.json"
    shutil.copy(os.devnull, flags)
    store = FileFlagStore(str(flags))
    path = stops_path(store)
    with open(path, "w") as fh:
        json.dump({"tests": {"x": {"status": "stopped", "stopped_reason": "guardrail: y"}}}, fh)
    os.chown(path, OTHER, OTHER)
    assert set(read_stops(path)) == {"x"}


@pytest.mark.parametrize("planted", ["flags.audit.jsonl", "flags.audit.jsonl.1"])
def test_another_users_audit_log_file_stops_no_test(tmp_path, impl, planted, caplog):
    """The start's look back at the audit log (stops from before the register): a
    rotated file's name another user was first to create in a sticky directory, or
    the log itself replaced in a group-writable one."""
    m = _manager(tmp_path / "theirs", impl)
    try:
        assert m.create_ab_test(_guarded_test())
        _simulate(m, TEST, HARMFUL, metric="playback_errors")
        assert m.check_guardrails(TEST)
    finally:
        m.close()
    theirs = (tmp_path / "theirs" / "flags.audit.jsonl").read_bytes()
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777 if planted.endswith(".1") else 0o2775)
    m = _manager(shared, impl)
    try:
        assert m.create_ab_test(_guarded_test())
    finally:
        m.close()
    aside = shared / ".planted"
    aside.write_bytes(theirs)
    os.chown(aside, OTHER, OTHER)
    os.replace(aside, shared / planted)
    with caplog.at_level(logging.ERROR, logger="cfgcore"):
        m = _manager(shared, impl)
    try:
        assert _served(m) > {"control"}  # (was {"control"}: the test stopped)
        assert not glob.glob(str(shared / "flags.json.refused-*"))
        assert any(
            str(shared / planted) in r.getMessage() and "uid 4321" in r.getMessage()
            for r in caplog.records
        )
    finally:
        m.close()


def test_this_services_own_audit_log_still_holds_its_stop(tmp_path, impl):
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    m = _manager(shared, impl)
    try:
        assert m.create_ab_test(_guarded_test())
        running = (shared / "flags.json").read_bytes()
        _simulate(m, TEST, HARMFUL, metric="playback_errors")
        assert m.check_guardrails(TEST)
    finally:
        m.close()
    os.remove(shared / ".flags.json.guardrail-stops.json")  # (the audit log holds it)
    (shared / "flags.json").write_bytes(running)  # (put back from before the stop)
    m = _manager(shared, impl)
    try:
        assert _served(m) == {"control"}
    finally:
        m.close()
