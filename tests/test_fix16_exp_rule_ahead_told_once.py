"""A rule ahead of a running A/B test's split is logged once per process per situation.

The WARNING of a rule placed ahead of a running test's split (docs/experiments.md, "A
rule ahead of a running test's split") was logged by the judge of each swap, old
document against new: a process that started on a document already holding such a
rule said nothing at all (its first load judged nothing), nor did a process once a
test whose flag held one started serving, and a flag that a rule there reads, flipped
back and forth (a kill switch), logged the same lines again at every flip, in every
process. Each process now logs each situation (a test's run, the rule, and what the
rule reads, as they stand) once: at the first document it serves, or at the first
document going live that holds it. The audit entry of a change still carries what
that change did (``warnings``), and health says how many such rules stand.

Real managers on real flag files and a real Redis, both evaluators.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta, timezone

import msgspec
import pytest

from cfgcore.dynamic_config import DynamicConfigurationManager
from cfgcore.engine import engine_class
from cfgcore.runtime.atomicio import atomic_write
from cfgcore.snapshot import (
    Condition,
    Flag,
    Rule,
    Snapshot,
    encode_snapshot,
    format_for,
    load_snapshot,
)
from tests.ab_tests import ab_test as _test
from tests.redis_server import wait_for

TEST = "checkout"

pytestmark = pytest.mark.usefixtures("private_state")


def _manager(tmp_path, impl, **kw) -> DynamicConfigurationManager:
    return DynamicConfigurationManager(
        flags_file=str(tmp_path / "flags.yaml"), state_dir=tmp_path / "state",
        engine=engine_class(impl)(), record_usage=False, guardrail_check_every=10**9, **kw,
    )  # fmt: skip


def _with_rules(snap: Snapshot, rules) -> Snapshot:
    flag = msgspec.structs.replace(snap.flags[TEST], rules=rules)
    return msgspec.structs.replace(snap, flags={**snap.flags, TEST: flag})


def _ahead(rule: Rule):
    return lambda snap: _with_rules(snap, [rule, *snap.flags[TEST].rules])


def _hand_edit(path, edit) -> None:
    snap = load_snapshot(str(path))
    atomic_write(str(path), encode_snapshot(edit(snap), format_for(str(path))))


def _warnings(caplog) -> list[str]:
    found = [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING
        and r.name.startswith("cfgcore")
        and "ahead of its split" in r.getMessage()
    ]
    caplog.clear()
    return found


def _audited(m) -> list[dict]:
    m.audit.flush()
    with open(m.audit.path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _flags_check(m) -> str:
    (check,) = [c for c in m.health().readiness if c.name == "flags"]
    assert check.status == "ok", check
    return check.detail


def test_a_process_starting_on_a_rule_ahead_warns_once(tmp_path, impl, caplog):
    path = tmp_path / "flags.yaml"
    m = _manager(tmp_path, impl)
    try:
        assert m.create_ab_test(_test()), m.last_error
        assert "ahead of" not in _flags_check(m)
    finally:
        m.close()
    _hand_edit(path, _ahead(Rule(serve="green", rollout=10)))  # while nothing serves it
    caplog.set_level(logging.WARNING, logger="cfgcore")
    caplog.clear()
    m = _manager(tmp_path, impl)
    try:
        (text,) = _warnings(caplog)
        assert text.startswith(f"{path}: flags.checkout.rules[0]: A/B test 'checkout' is running")
        assert "split (flags.checkout.rules[1])" in text
        assert "10.000% of the test's traffic" in text, text
        # It went live with no change made: nothing audited as one.
        assert not [e for e in _audited(m) if e.get("warnings")]
        # Health says it stands, and where.
        detail = _flags_check(m)
        assert "1 rule ahead of a running A/B test's split (flags.checkout.rules[0])" in detail
        # Changes that leave it as it was say nothing more.
        m.set_feature_flag("other", True, 40.0)
        m.set_feature_flag("other", False)
        assert _warnings(caplog) == []
    finally:
        m.close()
    # Opened again in this process: told already.
    m = _manager(tmp_path, impl)
    try:
        assert _warnings(caplog) == []
        assert "1 rule ahead" in _flags_check(m)
        # Removed: health says nothing more of it.
        _hand_edit(path, lambda s: _with_rules(s, s.flags[TEST].rules[1:]))
        assert m.reload()
        assert "ahead of" not in _flags_check(m)
        assert _warnings(caplog) == []
    finally:
        m.close()


def test_a_flag_a_rule_ahead_reads_flipped_back_is_not_told_again(tmp_path, impl, caplog):
    """A rule ahead that reads a kill switch: each state of the switch is a situation,
    told once; flipping back to one told says nothing, its audit entry still has it."""
    m = _manager(tmp_path, impl)
    try:
        m.register_custom_feature_flag("beta", enabled=False)
        assert m.create_ab_test(_test()), m.last_error
        _hand_edit(m.flags_file, _ahead(Rule(when=Condition(prerequisite="beta"), serve="green")))
        caplog.set_level(logging.WARNING, logger="cfgcore")
        assert m.reload()
        (added,) = _warnings(caplog)
        assert "added or changed by this document" in added
        m.set_feature_flag("beta", True, 30.0)
        (on,) = _warnings(caplog)
        assert "reads flag 'beta', which this document changes" in on
        m.set_feature_flag("beta", False)
        assert len(_warnings(caplog)) == 1  # (another situation: the rule takes nobody)
        for _ in range(3):
            m.set_feature_flag("beta", True, 30.0)
            m.set_feature_flag("beta", False)
        assert _warnings(caplog) == []
        m.set_feature_flag("beta", True, 60.0)  # wider than ever: a new situation
        (wider,) = _warnings(caplog)
        assert "flags.checkout.rules[0]" in wider
        # Every change of the switch is audited with what it did to the rule, as before.
        beta = [e for e in _audited(m) if e["path"] == "flags.beta" and e.get("warnings")]
        assert len(beta) == 2 + 6 + 1
    finally:
        m.close()


class _Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_rule_ahead_of_a_test_that_starts_is_told_once_it_runs(tmp_path, impl, caplog):
    """A rule put ahead of a test not started yet is not a change to enrolled users, and
    the change that puts it there says nothing; once the test runs, the first document
    going live tells it (as a process starting then does), once."""
    now = datetime.now(timezone.utc)
    clock = _Clock(now.timestamp())
    m = _manager(tmp_path, impl, clock=clock)
    try:
        start = now + timedelta(days=1)
        assert m.create_ab_test(_test(start_date=start, end_date=start + timedelta(days=5)))
        caplog.set_level(logging.WARNING, logger="cfgcore")
        _hand_edit(m.flags_file, _ahead(Rule(serve="green", rollout=10)))
        assert m.reload()
        assert _warnings(caplog) == []
        clock.now = (start + timedelta(hours=1)).timestamp()
        m.set_feature_flag("other", True)
        (text,) = _warnings(caplog)
        assert "flags.checkout.rules[0]: A/B test 'checkout' is running" in text
        assert "by this document" not in text  # (it is not what this change did)
        entry = [e for e in _audited(m) if e["path"] == "flags.other"][-1]
        assert "warnings" not in entry
        m.set_feature_flag("other", False)
        assert _warnings(caplog) == []
    finally:
        m.close()


def _store_manager(url, state) -> DynamicConfigurationManager:
    return DynamicConfigurationManager(
        store=url, state_dir=state, log_exposures=False, record_usage=False,
        guardrail_check_every=10**9,
    )  # fmt: skip


def test_a_process_following_a_redis_store_with_a_rule_ahead(redis_server, tmp_path, caplog):
    """At start, then only what changes: another tool's unrelated write says nothing,
    its write of a second rule ahead tells that one alone."""
    from cfgcore.runtime.flagstore import open_store

    url = redis_server.url + "?namespace=ahead16"
    m = _store_manager(url, tmp_path / "a")
    try:
        assert m.create_ab_test(_test()), m.last_error
    finally:
        m.close()
    tool = open_store(url)
    try:
        tool.update(_ahead(Rule(serve="green", rollout=10)))
        caplog.set_level(logging.WARNING, logger="cfgcore")
        caplog.clear()
        m = _store_manager(url, tmp_path / "b")
        try:
            (text,) = _warnings(caplog)
            assert "flags.checkout.rules[0]: A/B test 'checkout' is running" in text, text
            assert "1 rule ahead" in _flags_check(m)
            version = m.store.read().version

            def other(s: Snapshot) -> Snapshot:
                flag = msgspec.structs.replace(s.flags[TEST], description="edited")
                return msgspec.structs.replace(s, flags={**s.flags, TEST: flag})

            tool.update(other)
            wait_for(lambda: m._live.document.version > version)
            assert _warnings(caplog) == []
            version = m._live.document.version
            tool.update(_ahead(Rule(when=Condition(attr="plan", eq="pro"), serve="blue")))
            wait_for(lambda: m._live.document.version > version)
            (text,) = _warnings(caplog)
            assert "flags.checkout.rules[0]" in text and "added or changed" in text, text
            assert "2 rules ahead of a running A/B test's split" in _flags_check(m)
        finally:
            m.close()
    finally:
        tool.close()


def test_a_configuration_manager_starting_on_a_rule_ahead(
    tmp_path, monkeypatch, config_manager_factory, caplog
):
    """A configuration manager serving the flags file logs it as it loads the flags,
    once, and its health names it."""
    from cfgcore.engine import Engine
    from tests.conftest import minimal_config_dir

    config_dir = minimal_config_dir(tmp_path, monkeypatch)
    flags = config_dir / "flags.yaml"
    dm = DynamicConfigurationManager(
        flags_file=str(flags), state_dir=tmp_path / "dm", engine=Engine(), record_usage=False,
        log_exposures=False, guardrail_check_every=10**9,
    )  # fmt: skip
    try:
        assert dm.create_ab_test(_test()), dm.last_error
    finally:
        dm.close()
    _hand_edit(flags, _ahead(Rule(serve="green", rollout=10)))
    caplog.set_level(logging.WARNING, logger="cfgcore")
    caplog.clear()
    m = config_manager_factory(config_dir, hot=False)
    assert m.flags.is_enabled("nothing", {}) is False  # (the flags are served)
    (text,) = _warnings(caplog)
    assert f"{flags}: flags.checkout.rules[0]: A/B test 'checkout' is running" in text
    (check,) = [c for c in m.health().readiness if c.name == "flags"]
    assert "1 rule ahead of a running A/B test's split" in check.detail, check
    # Another flag edited: the rule stands as it was, nothing more is said.
    _hand_edit(flags, lambda s: msgspec.structs.replace(
        s, flags={**s.flags, "other": Flag(default="on")}
    ))  # fmt: skip
    assert m.reload() is True
    assert m.flags.is_enabled("other", {}) is True
    assert _warnings(caplog) == []
