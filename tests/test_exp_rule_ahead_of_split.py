"""A rule placed ahead of a running A/B test's split is warned of, on every write path.

A test's traffic split is served by its flag's split rule; a hand-edited rule placed
before it (in the flags file, written to the store by another tool, published with
``cfgcore publish --flags``) takes the users it matches before the split is reached, so
users already enrolled get another answer. That is a targeting change, not refused
(docs/experiments.md), but it went live in silence: a platform team expects to be told.
Every document that goes live (a reload, a follower's document, a change through the
API written on the newest stored document) now logs a WARNING on the ``cfgcore`` logger
naming the test, the flag and the rule's key path, with the share of the test's traffic
the rule can take (a rollout bucketed as the split is: exact) or, otherwise, that it
can take any enrolled user matching its condition; the audit entry of the flag's change
carries it under ``warnings``. ``cfgcore validate`` and ``cfgcore publish --flags``
report it too. Removing such a rule, or adding one after the split, says nothing.

Real managers on real flag files, both evaluators; a real Redis for the publish.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import datetime, timedelta, timezone

import msgspec
import pytest

from cfgcore._eval_py import bucket_of
from cfgcore.cli import main
from cfgcore.dynamic_config import DynamicConfigurationManager
from cfgcore.engine import engine_class
from cfgcore.runtime.atomicio import atomic_write
from cfgcore.snapshot import Condition, Rule, Snapshot, encode_snapshot, format_for, load_snapshot
from tests.ab_tests import ab_test as _test

TEST = "checkout"
USERS = [{"user_id": f"u{i}", "plan": "pro" if i % 3 == 0 else "free"} for i in range(2000)]


pytestmark = pytest.mark.usefixtures("private_state")


def _manager(tmp_path, impl) -> DynamicConfigurationManager:
    return DynamicConfigurationManager(
        flags_file=str(tmp_path / "flags.yaml"), state_dir=tmp_path / "state",
        engine=engine_class(impl)(), record_usage=False, guardrail_check_every=10**9,
    )  # fmt: skip


def _variants(m) -> dict[str, str | None]:
    return {u["user_id"]: m.get_ab_test_variant(TEST, u) for u in USERS}


def _hand_edit(m, edit) -> None:
    path = m.flags_file
    snap = load_snapshot(path)
    atomic_write(path, encode_snapshot(edit(snap), format_for(path)))


def _rules(snap: Snapshot, rules) -> Snapshot:
    flag = msgspec.structs.replace(snap.flags[TEST], rules=rules)
    return msgspec.structs.replace(snap, flags={**snap.flags, TEST: flag})


def _ahead(rule: Rule):
    return lambda snap: _rules(snap, [rule, *snap.flags[TEST].rules])


def _warnings(caplog) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING
        and r.name.startswith("cfgcore")
        and "ahead of" in r.getMessage()
    ]


def _audited(m) -> list[dict]:
    m.audit.flush()
    with open(m.audit.path, encoding="utf-8") as f:
        entries = [json.loads(line) for line in f if line.strip()]
    return [e for e in entries if e.get("warnings")]


def test_a_rollout_ahead_of_the_split_is_warned_with_the_share_it_takes(tmp_path, impl, caplog):
    m = _manager(tmp_path, impl)
    try:
        assert m.create_ab_test(_test()), m.last_error
        before = _variants(m)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="cfgcore"):
            _hand_edit(m, _ahead(Rule(serve="green", rollout=10)))
            assert m.reload()
        after = _variants(m)
        found = _warnings(caplog)
        assert len(found) == 1, found
        text = found[0]
        assert f"A/B test {TEST!r}" in text and "flags.checkout.rules[0]" in text, text
        assert "10.000% of the test's traffic" in text, text
        # green holds buckets [50%, 80%): the rollout's [0, 10%) were control: all move.
        assert "10.000% of its users would get 'green'" in text, text
        # The claim is the evaluators' own: exactly the users bucketed below 10% who
        # were not in green get another answer, on this evaluator.
        moved = {u for u in before if before[u] != after[u]}
        expected = {u for u in before if bucket_of(TEST, u) < 10_000 and before[u] != "green"}
        assert moved == expected and moved
        assert all(after[u] == "green" for u in moved)
        # The audit entry of the flag's change carries it.
        (entry,) = _audited(m)
        assert entry["path"] == "flags.checkout" and entry["source"] == "reload"
        assert any("flags.checkout.rules[0]" in w for w in entry["warnings"])
    finally:
        m.close()


def test_a_conditional_rule_ahead_can_take_any_enrolled_user_matching_it(tmp_path, impl, caplog):
    m = _manager(tmp_path, impl)
    try:
        assert m.create_ab_test(_test()), m.last_error
        before = _variants(m)
        caplog.clear()
        rule = Rule(when=Condition(attr="plan", eq="pro"), serve="blue")
        with caplog.at_level(logging.WARNING, logger="cfgcore"):
            _hand_edit(m, _ahead(rule))
            assert m.reload()
        (text,) = _warnings(caplog)
        assert "flags.checkout.rules[0]" in text
        assert "any enrolled user matching its condition" in text, text
        after = _variants(m)
        pro = {u["user_id"] for u in USERS if u["plan"] == "pro"}
        assert {u for u in before if before[u] != after[u]} == {
            u for u in pro if before[u] != "blue"
        }
    finally:
        m.close()


def test_removing_the_rule_or_adding_one_after_the_split_says_nothing(tmp_path, impl, caplog):
    m = _manager(tmp_path, impl)
    try:
        assert m.create_ab_test(_test()), m.last_error
        before = _variants(m)
        with caplog.at_level(logging.WARNING, logger="cfgcore"):
            # After the split: nobody reaches it (the split takes everyone bucketed).
            _hand_edit(m, lambda s: _rules(s, [*s.flags[TEST].rules, Rule(serve="blue")]))
            assert m.reload()
            assert _warnings(caplog) == []
            assert _variants(m) == before
            _hand_edit(m, _ahead(Rule(serve="green", rollout=5)))
            assert m.reload()
            assert len(_warnings(caplog)) == 1
            caplog.clear()
            _hand_edit(m, lambda s: _rules(s, s.flags[TEST].rules[1:]))
            assert m.reload()
            assert _warnings(caplog) == []
            assert _variants(m) == before
            # An unrelated change leaves the standing rule unwarned again.
            _hand_edit(m, _ahead(Rule(serve="green", rollout=5)))
            assert m.reload()
            caplog.clear()
            m.set_feature_flag("other", True, 40.0)
            assert _warnings(caplog) == []
        assert len(_audited(m)) == 2
    finally:
        m.close()


def test_a_rule_ahead_of_a_test_not_started_or_stopped_says_nothing(tmp_path, impl, caplog):
    m = _manager(tmp_path, impl)
    try:
        later = datetime.now(timezone.utc) + timedelta(days=2)
        assert m.create_ab_test(_test(start_date=later, end_date=later + timedelta(days=5)))
        with caplog.at_level(logging.WARNING, logger="cfgcore"):
            _hand_edit(m, _ahead(Rule(serve="green", rollout=10)))
            assert m.reload()
        assert _warnings(caplog) == []
    finally:
        m.close()


def test_set_feature_flag_that_widens_a_rule_ahead_is_warned(tmp_path, impl, caplog):
    """A rule ahead of the split that reads a flag (a prerequisite condition) takes as
    many users as that flag lets through: ``set_feature_flag`` on it changes the rule."""
    m = _manager(tmp_path, impl)
    try:
        m.register_custom_feature_flag("beta", enabled=False)
        assert m.create_ab_test(_test()), m.last_error
        _hand_edit(m, _ahead(Rule(when=Condition(prerequisite="beta"), serve="green")))
        assert m.reload()
        before = _variants(m)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="cfgcore"):
            m.set_feature_flag("beta", True, 30.0)
        (text,) = _warnings(caplog)
        assert "flags.checkout.rules[0]" in text and "'beta'" in text, text
        assert "any enrolled user matching its condition" in text, text
        assert _variants(m) != before
        (entry,) = [e for e in _audited(m) if e["source"] == "set_feature_flag"]
        assert entry["path"] == "flags.beta"
    finally:
        m.close()


def test_a_change_written_on_a_hand_edit_not_read_yet_is_warned(tmp_path, impl, caplog):
    """``set_feature_flag`` writes on the newest stored document: a hand edit there that
    put a rule ahead of the split goes live with it, and is warned of."""
    m = _manager(tmp_path, impl)
    try:
        assert m.create_ab_test(_test()), m.last_error
        _hand_edit(m, _ahead(Rule(serve="blue", rollout=20)))
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="cfgcore"):
            m.set_feature_flag("other", True)
        (text,) = _warnings(caplog)
        # blue holds [80%, 100%): the rollout's [0, 20%) were all control.
        assert "20.000% of the test's traffic" in text and "20.000% of its users" in text
        assert any(e["path"] == "flags.checkout" for e in _audited(m))
    finally:
        m.close()


def test_validate_reports_a_rule_ahead_of_a_running_split(tmp_path, capsys, impl):
    m = _manager(tmp_path, impl)
    try:
        assert m.create_ab_test(_test()), m.last_error
    finally:
        m.close()
    path = tmp_path / "flags.yaml"
    assert main(["validate", str(path)]) == 0
    assert "ahead of" not in capsys.readouterr().out
    _hand_edit_file(path, _ahead(Rule(serve="green", rollout=10)))
    code = main(["validate", str(path)])
    out = capsys.readouterr().out
    assert code == 0, out  # a warning, not a refusal
    assert "flags.checkout.rules[0]" in out and "10.000% of the test's traffic" in out, out
    assert main(["validate", "--strict", str(path)]) == 1
    capsys.readouterr()


def _hand_edit_file(path, edit) -> None:
    snap = load_snapshot(str(path))
    atomic_write(str(path), encode_snapshot(edit(snap), format_for(str(path))))


def test_fleet_publish_warns_and_the_follower_audits(redis_server, tmp_path, bundled_config,
                                                     capsys, monkeypatch, caplog):  # fmt: skip
    url = redis_server.url + "?namespace=ahead&cache=off"
    m = DynamicConfigurationManager(store=url, state_dir=tmp_path / "state", log_exposures=False)
    try:
        assert m.create_ab_test(_test()), m.last_error
        doc = json.loads(encode_snapshot(m.store.read().snapshot, "json"))
        doc["flags"][TEST]["rules"].insert(0, {"serve": "green", "rollout": 10})
        path = tmp_path / "publish.json"
        path.write_text(json.dumps(doc))
        monkeypatch.setenv("JWT_SIGNING_KEY", "sup3r-s3cret-signing-key-0123456789abcdef")
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="cfgcore"):
            code = main(["publish", "--store", url, "--config-dir", str(bundled_config),
                         "--flags", str(path), "--actor", "oncall"])  # fmt: skip
            err = capsys.readouterr().err
            assert code == 0, err
            # The manager serving the store takes it (its follower, or this reload).
            deadline = time.monotonic() + 10
            while len(m.engine.source.flags[TEST].rules) < 2:
                assert time.monotonic() < deadline
                m.reload()
                time.sleep(0.02)
        # (the command logs to stderr, cfgcore's logger at WARNING; the follower may
        # have taken the document while it ran, its warning then on stderr too)
        lines = [line for line in err.splitlines() if "ahead of" in line]
        (published,) = [line for line in lines if ": --flags: " in line]
        assert published.startswith("cfgcore: WARNING: cfgcore."), published
        assert "flags.checkout.rules[0]" in published and "'checkout'" in published
        assert "10.000% of the test's traffic" in published
        (followed,) = [t for t in lines + _warnings(caplog) if ": --flags: " not in t]
        assert "flags.checkout.rules[0]" in followed and "ahead" in followed
        assert any(e["path"] == "flags.checkout" for e in _audited(m))
    finally:
        m.close()


def test_a_configuration_managers_reload_audits_it(tmp_path, monkeypatch, config_manager_factory):
    """A configuration manager serving the flags file audits the flags it activates
    with the warning (its own activation swaps them in)."""
    from cfgcore.engine import Engine
    from cfgcore.runtime.audit import AuditLog
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
    m = config_manager_factory(config_dir, hot=False)
    _hand_edit_file(flags, _ahead(Rule(serve="green", rollout=10)))
    assert m.reload() is True
    (entry,) = [e for e in AuditLog.read(tmp_path / "audit0.jsonl") if e.get("kind") == "flags"]
    (text,) = entry["warnings"]
    assert "flags.checkout.rules[0]" in text and "10.000% of the test's traffic" in text


def test_a_prerequisite_put_on_a_running_tests_flag_is_warned(tmp_path, impl, caplog):
    """``set_flag_dependencies`` on a running test's flag (or a prerequisite written by
    hand) is checked before its split: users for whom it does not hold leave the test.
    Told when it is added and when the flag it reads changes, not while it stands."""
    m = _manager(tmp_path, impl)
    try:
        m.register_custom_feature_flag("beta", enabled=False)
        assert m.create_ab_test(_test()), m.last_error
        before = _variants(m)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="cfgcore"):
            m.set_flag_dependencies(TEST, ["beta"])
        (text,) = _warnings(caplog)
        assert "flags.checkout.prerequisites[0]" in text and "'beta'" in text, text
        assert "out of the test" in text, text
        assert all(v is None for v in _variants(m).values())  # all of them left the test
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="cfgcore"):
            m.set_feature_flag("other", True)
            assert _warnings(caplog) == []
            m.set_feature_flag("beta", True, 100.0)
            (text,) = _warnings(caplog)
        assert "flags.checkout.prerequisites[0]" in text and "which this document changes" in text
        assert _variants(m) == before  # back in the test, each with their variant
        assert [e["path"] for e in _audited(m)] == ["flags.checkout", "flags.beta"]
    finally:
        m.close()


def test_a_rule_between_a_conditional_split_and_the_next_is_ahead_of_that(tmp_path, impl, caplog):
    """Past a conditional split, users it does not take reach the next split: a rule
    put between the two takes them first."""
    m = _manager(tmp_path, impl)
    try:
        assert m.create_ab_test(_test()), m.last_error
        pro = Condition(attr="plan", eq="pro")
        weights = {"control": 50, "green": 30, "blue": 20}
        _hand_edit(m, lambda s: _rules(s, [Rule(when=pro, split=weights), *s.flags[TEST].rules]))
        with caplog.at_level(logging.WARNING, logger="cfgcore"):
            assert m.reload()
            assert _warnings(caplog) == []  # the same split for pro users: nobody moves
            before = _variants(m)
            _hand_edit(
                m,
                lambda s: _rules(s, [s.flags[TEST].rules[0], Rule(serve="blue"),
                                     s.flags[TEST].rules[1]]),
            )  # fmt: skip
            assert m.reload()
        (text,) = _warnings(caplog)
        assert "flags.checkout.rules[1]: " in text and "split (flags.checkout.rules[2])" in text
        assert "every enrolled user" in text, text
        after = _variants(m)
        pros = {u["user_id"] for u in USERS if u["plan"] == "pro"}
        assert {u for u in before if before[u] != after[u]} == {
            u for u in before if u not in pros and before[u] != "blue"
        }
    finally:
        m.close()
