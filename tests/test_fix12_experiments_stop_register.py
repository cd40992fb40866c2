"""Twelfth round: a guardrail stop that outlives the audit log. A start held a stop only
as long as the audit log held its entry: the log removed, or the stop's entries rotated
past ``CFGCORE_AUDIT_BACKUPS``, and a flag file put back from before the stop was served
(the harmful variant). The stops in force are now also kept in a small register beside
the flag file (``.<flag file>.guardrail-stops.json``, written atomically whenever a stop
goes live, changes or ends, never rotated), and a start copies into it any stop the
audit log or the served file records that it lacks (stops made before it existed).
Only an explicit resume (``cfgcore experiment start``) or a deletion of the test ends a
stop. Real files, real rotation, real managers, the real CLI."""

from __future__ import annotations

import glob
import json
import os
import shutil

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfgcore.dynamic_config import DynamicConfigurationManager
from cfgcore.engine import engine_class
from cfgcore.experiments.abtest import GUARDRAIL_STOPPED_AT
from tests.conftest import run_cli
from tests.fuzz import examples
from tests.test_experiments import USERS, _simulate
from tests.test_fix10_exp_guardrail_hold import EDITS, HARMFUL, TEST, _guarded_test
from tests.texts import any_text


def _manager(tmp_path, impl):
    return DynamicConfigurationManager(
        state_dir=tmp_path, engine=engine_class(impl)(), guardrail_check_every=10**9
    )


def _served(m, users=USERS[:600]):
    return {m.get_ab_test_variant(TEST, {"user_id": u}) for u in users}


def _stop(m):
    _simulate(m, TEST, HARMFUL, metric="playback_errors")
    assert m.check_guardrails(TEST)
    assert m.list_ab_tests()[TEST][GUARDRAIL_STOPPED_AT]


def _stopped_then_down(tmp_path, impl):
    m = _manager(tmp_path, impl)
    try:
        assert m.create_ab_test(_guarded_test())
        with open(m.flags_file, "rb") as fh:
            before = fh.read()
        with open(f"{m.flags_file}.before", "wb") as fh:
            fh.write(before)
        _stop(m)
        with open(m.flags_file, "rb") as fh:
            stopped = fh.read()
        return m.flags_file, before, stopped
    finally:
        m.close()


def _audit_files(tmp_path):
    return glob.glob(str(tmp_path / "flags.audit.jsonl*"))


def _text(path):
    with open(path) as fh:
        return fh.read()


def _put_back(path, data):
    with open(path, "wb") as fh:
        fh.write(data)


@pytest.mark.parametrize("edit", EDITS, ids=lambda f: f.__name__.strip("_"))
def test_a_stop_holds_with_the_audit_log_removed(tmp_path, impl, edit):
    path, before, stopped = _stopped_then_down(tmp_path, impl)
    for name in _audit_files(tmp_path):
        os.remove(name)  # removed (a cleanup, a new volume for the logs)
    bad = json.dumps(edit(json.loads(stopped), json.loads(before))).encode()
    _put_back(path, bad)
    m = _manager(tmp_path, impl)
    try:
        assert _served(m) == {"control"}
        (aside,) = glob.glob(f"{path}.refused-*")
        with open(aside, "rb") as fh:
            assert fh.read() == bad
    finally:
        m.close()


def test_a_stop_holds_once_rotated_past_retention(tmp_path, impl, monkeypatch):
    """Real rotation: small audit files, one backup, flag changes after the stop
    until no audit file holds an entry of the test."""
    monkeypatch.setenv("CFGCORE_AUDIT_MAX_BYTES", str(16 << 10))
    monkeypatch.setenv("CFGCORE_AUDIT_BACKUPS", "1")
    m = _manager(tmp_path, impl)
    try:
        assert m.create_ab_test(_guarded_test())
        with open(m.flags_file, "rb") as fh:
            before = fh.read()
        _stop(m)
        i = 0
        while any(TEST in _text(f) for f in _audit_files(tmp_path)):
            m.set_feature_flag("rotation_filler", i % 2 == 0)
            i += 1
            assert i < 2000
        path = m.flags_file
    finally:
        m.close()
    _put_back(path, before)
    m = _manager(tmp_path, impl)
    try:
        assert _served(m) == {"control"}
        assert len(glob.glob(f"{path}.refused-*")) == 1
    finally:
        m.close()


def test_a_stop_from_before_the_register_is_copied_into_it_at_start(tmp_path, impl):
    """A stop recorded before the register existed (only the audit log and the served
    file hold it): the next start copies it into the register, which then holds it
    after the log is gone."""
    path, before, _ = _stopped_then_down(tmp_path, impl)
    register = os.path.join(
        os.path.dirname(path), f".{os.path.basename(path)}.guardrail-stops.json"
    )
    os.remove(register)  # as an install from before this release left the directory
    m = _manager(tmp_path, impl)  # serves the stopped file: refuses nothing
    try:
        assert _served(m) == {"control"}
    finally:
        m.close()
    with open(register) as fh:
        assert TEST in json.load(fh)["tests"]
    for name in _audit_files(tmp_path):
        os.remove(name)
    _put_back(path, before)
    m = _manager(tmp_path, impl)
    try:
        assert _served(m) == {"control"}
    finally:
        m.close()


def test_only_an_explicit_resume_or_a_deletion_ends_a_registered_stop(
    tmp_path, impl, capsys, monkeypatch
):
    """The operator's way to serve the test again on purpose: ``cfgcore experiment
    start`` (audited). Removing the audit log resumes nothing; after the resume a file
    from before the stop serves (the resume is on record), and a test deleted and
    created again is a new test, served after a restart with no audit log."""
    path, before, _ = _stopped_then_down(tmp_path, impl)
    for name in _audit_files(tmp_path):
        os.remove(name)
    _put_back(path, before)
    m = _manager(tmp_path, impl)
    try:
        assert _served(m) == {"control"}  # held by the register alone
    finally:
        m.close()
    monkeypatch.setenv("CFGCORE_FLAG_STORE", path)
    run_cli(capsys, "experiment", "start", TEST)  # the explicit, audited resume
    for name in _audit_files(tmp_path):
        os.remove(name)
    m = _manager(tmp_path, impl)
    try:
        assert "variant_b" in _served(m)
        assert m.delete_ab_test(TEST)
        assert m.create_ab_test(_guarded_test())
        _stop(m)
        assert m.delete_ab_test(TEST)  # deleted while stopped: its stop ends with it
        assert m.create_ab_test(_guarded_test())
    finally:
        m.close()
    for name in _audit_files(tmp_path):
        os.remove(name)
    m = _manager(tmp_path, impl)
    try:
        assert "variant_b" in _served(m)
        assert not m._live.last_error
    finally:
        m.close()


_JUNK = st.one_of(
    st.binary(max_size=200),
    st.recursive(
        st.none() | st.booleans() | st.floats(allow_nan=False) | any_text(max_size=8),
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(any_text(max_size=6), inner, max_size=3)
        ),
        max_leaves=8,
    ).map(lambda v: json.dumps(v).encode()),
    st.dictionaries(any_text(max_size=6), any_text(max_size=6), max_size=3).map(
        lambda t: json.dumps({"tests": {TEST: t}}).encode()
    ),
)


@settings(max_examples=examples(15), suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(junk=_JUNK)
def test_a_damaged_register_is_repaired_by_the_next_start(tmp_path_factory, impl, junk):
    """Whatever the register holds (bytes, JSON of any shape, a record that is no stop),
    a start is not blocked, serves the stop, and writes the register again from the
    audit log and the served file, so it holds the stop once the log is gone."""
    template = tmp_path_factory.getbasetemp() / f"register-template-{impl.__name__}"
    if not template.exists():
        _stopped_then_down(template, impl)
    work = tmp_path_factory.mktemp("register")
    shutil.copytree(template, work, dirs_exist_ok=True)
    path = str(work / "flags.json")
    register = str(work / ".flags.json.guardrail-stops.json")
    with open(register, "wb") as fh:
        fh.write(junk)
    m = _manager(work, impl)
    try:
        assert _served(m, USERS[:100]) == {"control"}
    finally:
        m.close()
    with open(template / "flags.json.before", "rb") as fh:
        before = fh.read()
    for name in _audit_files(work):
        os.remove(name)
    _put_back(path, before)
    m = _manager(work, impl)
    try:
        assert _served(m, USERS[:300]) == {"control"}
    finally:
        m.close()
