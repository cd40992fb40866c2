"""Eighth round: a guardrail rollback while the stored flag file holds a document the
live flags refused (a hand edit that does not parse, one that would move the test's
users, or one holding an A/B test record of the wrong shape). The rollback used to
fail on every check (the stop re-read the refused file), so the harmful variant kept
serving. Now the refused file is kept aside as
``<file>.refused-<time>``, the serving document is written back, and the stop is
stored on it: served at once, by a restart too, and audited as the guardrail's.
Real files, real managers, the real guardrail check."""

from __future__ import annotations

import glob
import json

import pytest

from cfgcore.dynamic_config import DynamicConfigurationManager
from cfgcore.engine import engine_class
from tests.test_experiments import NOW, USERS, Clock, _simulate, seed_test, variants_of

TEST = "recommendation_algorithm_v2"
HARMFUL = {"control": 0.02, "variant_a": 0.02, "variant_b": 0.30}


def _unparseable(text: str) -> bytes:
    return b'{"flags": {"broken": '  # an editor's save cut short


def _moves_users(text: str) -> bytes:
    doc = json.loads(text)
    split = {"control": 20.0, "variant_a": 30.0, "variant_b": 50.0}
    doc["flags"][TEST]["rules"][0]["split"] = split
    return json.dumps(doc).encode()


def _malformed_record(text: str) -> bytes:
    # A control that is no string: a stop's rule could not serve it.
    doc = json.loads(text)
    doc["experiments"][TEST]["control"] = ["control"]
    return json.dumps(doc).encode()


@pytest.mark.parametrize(
    "edit",
    [_unparseable, _moves_users, _malformed_record],
    ids=["unparseable", "moves-users", "malformed-record"],
)
def test_a_guardrail_rolls_back_over_a_refused_hand_edit(tmp_path, impl, edit):
    clock = Clock(NOW)
    m = DynamicConfigurationManager(
        state_dir=tmp_path, engine=engine_class(impl)(), clock=clock, guardrail_check_every=10**9
    )
    try:
        assert m.create_ab_test(seed_test(guardrail_metrics={"playback_errors": "lower_is_better"}))
        path = m.flags_file
        with open(path) as fh:
            bad = edit(fh.read())
        with open(path, "wb") as fh:  # the operator's hand edit, refused on reload
            fh.write(bad)
        assert m.reload() is False
        assert "variant_b" in set(variants_of(m, TEST, USERS[:500]).values())

        _simulate(m, TEST, HARMFUL, metric="playback_errors")
        found = m.check_guardrails(TEST)
        assert found and "variant_b" in found[0]

        # Served at once: everyone gets control.
        assert m.list_ab_tests()[TEST]["status"] == "stopped"
        assert set(variants_of(m, TEST, USERS[:500]).values()) == {"control"}
        aside = glob.glob(f"{path}.refused-*")
        if edit is _moves_users:
            # The stop moves nobody, whether judged against what serves or against the
            # edit (whose split it replaces): stored on the edited document itself, the
            # rest of the edit kept in place (see LiveFlags.update).
            assert aside == []
            with open(path) as fh:
                assert json.load(fh)["flags"][TEST]["rules"][0].get("split") is None
        else:
            # The operator's edit is kept, byte for byte, under a clear name.
            assert len(aside) == 1
            with open(aside[0], "rb") as fh:
                assert fh.read() == bad
        # The stop is stored: the file parses and holds the stopped test, so neither a
        # reload nor a restart serves the harmful variant again.
        with open(path) as fh:
            stored = json.load(fh)
        assert stored["experiments"][TEST]["status"] == "stopped"
        m.reload()
        assert set(variants_of(m, TEST, USERS[:200]).values()) == {"control"}
        again = DynamicConfigurationManager(m.flags_file, clock=clock)
        try:
            assert set(variants_of(again, TEST, USERS[:200]).values()) == {"control"}
        finally:
            again.close()
        audit = m.audit.read(m.audit.path)
        rollbacks = [a for a in audit if a.get("source") == "guardrail_rollback"]
        assert rollbacks and {a.get("actor") for a in rollbacks} == {"guardrail"}
    finally:
        m.close()


def test_a_rollback_the_store_cannot_take_stops_the_test_in_the_live_flags(tmp_path, impl):
    """The flag file cannot be read or written at all (a FIFO put in its place): the
    variant stops serving in this process anyway, audited as the guardrail's; a
    reload of the unreadable file does not serve it again, and once the store holds a
    readable document again the rollback is stored on it."""
    import os

    clock = Clock(NOW)
    m = DynamicConfigurationManager(
        state_dir=tmp_path, engine=engine_class(impl)(), clock=clock, guardrail_check_every=10**9
    )
    try:
        assert m.create_ab_test(seed_test(guardrail_metrics={"playback_errors": "lower_is_better"}))
        _simulate(m, TEST, HARMFUL, metric="playback_errors")
        with open(m.flags_file, "rb") as fh:
            good = fh.read()  # the test as created: active
        os.unlink(m.flags_file)
        os.mkfifo(m.flags_file)
        assert m.reload() is False
        assert m.check_guardrails(TEST)
        assert m.list_ab_tests()[TEST]["status"] == "stopped"
        assert set(variants_of(m, TEST, USERS[:500]).values()) == {"control"}
        m.reload()
        assert set(variants_of(m, TEST, USERS[:500]).values()) == {"control"}
        # The operator puts the file back as it was (the test active): the reload
        # serves it, and the rollback not stored yet is stored on it at once.
        os.unlink(m.flags_file)
        with open(m.flags_file, "wb") as fh:
            fh.write(good)
        m.reload()
        assert m.list_ab_tests()[TEST]["status"] == "stopped"
        assert set(variants_of(m, TEST, USERS[:500]).values()) == {"control"}
        with open(m.flags_file) as fh:
            assert json.load(fh)["experiments"][TEST]["status"] == "stopped"
        audit = m.audit.read(m.audit.path)
        rollbacks = [a for a in audit if a.get("source") == "guardrail_rollback"]
        assert rollbacks and {a.get("actor") for a in rollbacks} == {"guardrail"}
    finally:
        m.close()


def test_a_rollback_while_the_flag_file_is_removed_is_not_lost(tmp_path, impl):
    """The flag file removed (outside production the bundled seed, which has no such
    test, stands in for it): the stop found no test in the stored document and the
    rollback was logged but never served. Now it is served from the live flags and
    stored once the file is back."""
    import os

    clock = Clock(NOW)
    m = DynamicConfigurationManager(
        state_dir=tmp_path, engine=engine_class(impl)(), clock=clock, guardrail_check_every=10**9
    )
    try:
        assert m._live.store.seed is not None
        assert m.create_ab_test(seed_test(guardrail_metrics={"playback_errors": "lower_is_better"}))
        _simulate(m, TEST, HARMFUL, metric="playback_errors")
        with open(m.flags_file, "rb") as fh:
            good = fh.read()
        os.unlink(m.flags_file)
        assert m.reload() is False  # "flag file was removed": the live flags stay
        assert m.check_guardrails(TEST)
        assert m.list_ab_tests()[TEST]["status"] == "stopped"
        assert set(variants_of(m, TEST, USERS[:500]).values()) == {"control"}
        with open(m.flags_file, "wb") as fh:
            fh.write(good)
        m.reload()
        assert set(variants_of(m, TEST, USERS[:500]).values()) == {"control"}
        with open(m.flags_file) as fh:
            assert json.load(fh)["experiments"][TEST]["status"] == "stopped"
    finally:
        m.close()


def test_a_symlinked_flag_file_stays_a_link_through_the_rollback(tmp_path, impl):
    """A flag file linked from elsewhere (a checkout, a shared directory): the refused
    edit is kept beside the file itself, and the link still leads to the stopped
    document."""
    import os

    real_dir, state = tmp_path / "shared", tmp_path / "state"
    real_dir.mkdir()
    state.mkdir()
    clock = Clock(NOW)
    seeded = DynamicConfigurationManager(state_dir=real_dir, clock=clock)
    seeded.close()  # (the flag file, written once where it lives)
    m = None
    try:
        real = real_dir / "flags.json"
        if not real.exists():
            real.write_text('{"flags": {}}')
        os.symlink(real, state / "flags.json")
        m = DynamicConfigurationManager(
            state_dir=state, engine=engine_class(impl)(), clock=clock, guardrail_check_every=10**9
        )
        assert m.create_ab_test(seed_test(guardrail_metrics={"playback_errors": "lower_is_better"}))
        assert os.path.islink(m.flags_file)
        real.write_bytes(b'{"flags": ')  # the hand edit, through the file itself
        assert m.reload() is False
        _simulate(m, TEST, HARMFUL, metric="playback_errors")
        assert m.check_guardrails(TEST)
        assert set(variants_of(m, TEST, USERS[:300]).values()) == {"control"}
        assert os.path.islink(m.flags_file)
        with open(m.flags_file) as fh:
            assert json.load(fh)["experiments"][TEST]["status"] == "stopped"
        aside = [p for p in os.listdir(real_dir) if ".refused-" in p]
        assert len(aside) == 1 and (real_dir / aside[0]).read_bytes() == b'{"flags": '
    finally:
        if m is not None:
            m.close()


def test_a_yaml_flag_file_gets_yaml_back(tmp_path, impl):
    """The document written back over a refused edit is in the store's format."""
    import yaml

    clock = Clock(NOW)
    path = tmp_path / "flags.yaml"
    m = DynamicConfigurationManager(
        path, engine=engine_class(impl)(), clock=clock, guardrail_check_every=10**9
    )
    try:
        assert m.create_ab_test(seed_test(guardrail_metrics={"playback_errors": "lower_is_better"}))
        path.write_bytes(b"flags: {broken\n")
        assert m.reload() is False
        _simulate(m, TEST, HARMFUL, metric="playback_errors")
        assert m.check_guardrails(TEST)
        assert set(variants_of(m, TEST, USERS[:300]).values()) == {"control"}
        text = path.read_text()
        assert not text.lstrip().startswith("{")  # YAML as the store writes it, not JSON
        assert yaml.safe_load(text)["experiments"][TEST]["status"] == "stopped"
        again = DynamicConfigurationManager(path, clock=clock)
        try:
            assert set(variants_of(again, TEST, USERS[:200]).values()) == {"control"}
        finally:
            again.close()
    finally:
        m.close()


def test_the_periodic_check_rolls_back_over_a_refused_hand_edit(tmp_path, impl):
    """The check the metric events start on a background thread, as in production."""
    from tests.waiting import wait_for

    clock = Clock(NOW)
    m = DynamicConfigurationManager(
        state_dir=tmp_path, engine=engine_class(impl)(), clock=clock, guardrail_check_every=25
    )
    try:
        assert m.create_ab_test(seed_test(guardrail_metrics={"playback_errors": "lower_is_better"}))
        with open(m.flags_file, "wb") as fh:
            fh.write(b'{"flags": ')
        assert m.reload() is False
        _simulate(m, TEST, HARMFUL, metric="playback_errors")
        assert wait_for(lambda: m.list_ab_tests()[TEST]["status"] == "stopped", timeout=30)
        assert set(variants_of(m, TEST, USERS[:300]).values()) == {"control"}
        assert wait_for(lambda: glob.glob(f"{m.flags_file}.refused-*"), timeout=30)

        def stored() -> bool:  # (the stop is served first, then stored)
            try:
                with open(m.flags_file) as fh:
                    return json.load(fh)["experiments"][TEST]["status"] == "stopped"
            except ValueError:
                return False

        assert wait_for(stored, timeout=30)
    finally:
        m.close()
