"""``cfgcore experiment update``, ``stop`` and ``delete`` ask the stored document whether
the test exists: the one the change is judged and written on.

Both first checked the test against the document the process serves. When the stored
document differs (the process refused it), ``update`` refused a test the store holds
(``no such A/B test``, although the update would have been made), and for a test the
process serves that the store no longer holds, ``update`` gave the locked check's bare
``no such A/B test`` instead of the command's message naming the store and the tests it
holds, and ``stop`` said it stopped the test (exit 0) while nothing was written.
``stop`` and ``delete`` then refused a test only the stored document holds, and
``delete`` of a test the store no longer holds wrote it again as deleted (exit 0). Real
Redis (tests/redis_server.py), a real manager that refuses the stored document, the
real command line."""

from __future__ import annotations

import pytest

from cfgcore.dynamic_config import DynamicConfigurationManager
from tests.conftest import run_cli
from tests.redis_server import wait_for
from tests.test_audit5_flags2_served_tests import ab
from tests.test_experiments import _simulate
from tests.test_fix10_exp_guardrail_hold import HARMFUL, TEST, _guarded_test
from tests.test_fix12_experiments_fleet_hold import _manager, _publish
from tests.test_fix13_fleet_stop_register import _host


@pytest.fixture(autouse=True)
def _quiet_state(tmp_path, monkeypatch):
    for name in ("CFGCORE_CONFIG_DIR", "CFGCORE_FLAG_STORE", "CFGCORE_ACCESS_POLICY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("CFGCORE_USAGE", "0")
    monkeypatch.chdir(tmp_path)


def _refusing_host(redis_server, stores, tmp_path, impl, *, store_has_extra):
    """Host B, which refuses the stored document (put back from before its guardrail
    stop of TEST) and serves its own. ``store_has_extra``: the stored document holds a
    test ``extra`` B does not serve (B deleted it since); else B serves ``checkout``,
    which the stored document does not hold (B created it since). B, the command
    line's store options for B, and a reader of the store."""
    base = redis_server.url + "?namespace=ab&poll=0.1"
    url_b, state_b = _host(base, tmp_path, "b")
    reader = stores(redis_server.url + "?namespace=ab&cache=off")
    b: DynamicConfigurationManager = _manager(url_b, state_b, impl)
    try:
        assert b.create_ab_test(_guarded_test())
        if store_has_extra:
            assert b.create_ab_test(ab("extra"), start=False), b.last_error
            before = reader.read().snapshot
            assert b.delete_ab_test("extra")
        else:
            before = reader.read().snapshot
            assert b.create_ab_test(ab(), start=False), b.last_error
        _simulate(b, TEST, HARMFUL, metric="playback_errors")
        assert b.check_guardrails(TEST)
        rejected = b._live.documents["rejected"]
        _publish(stores, url_b, before)
        assert wait_for(lambda: b._live.documents["rejected"] > rejected)
    except BaseException:
        b.close()
        raise
    return b, ("--store", url_b, "--state-dir", str(state_b)), reader


def test_update_changes_a_stored_test_the_process_does_not_serve(
    redis_server, stores, tmp_path, impl, capsys
):
    b, where, reader = _refusing_host(redis_server, stores, tmp_path, impl, store_has_extra=True)
    try:
        assert b.get_ab_test("extra") is None
        code, _, err = run_cli(
            capsys, "experiment", "update", "extra", "--description", "kept", *where
        )
        assert code == 0, err
        assert reader.read().snapshot.experiments["extra"]["description"] == "kept"
    finally:
        b.close()


@pytest.mark.parametrize("command", ["update", "stop", "delete"])
def test_a_served_test_the_store_does_not_hold_is_no_such_test(
    redis_server, stores, tmp_path, impl, capsys, command
):
    b, where, reader = _refusing_host(redis_server, stores, tmp_path, impl, store_has_extra=False)
    try:
        assert b.get_ab_test("checkout") is not None
        stored = reader.read()
        options = ["--description", "x"] if command == "update" else []
        code, out, err = run_cli(capsys, "experiment", command, "checkout", *options, *where)
        assert (code, out) == (1, ""), err
        # The command's wording: the store, and the tests it holds.
        assert "checkout: no such A/B test in redis://" in err
        assert f"(known: {TEST})" in err
        assert "stopped A/B test" not in err
        assert reader.read().version == stored.version  # nothing written
    finally:
        b.close()


@pytest.mark.parametrize("command", ["stop", "delete"])
def test_stop_and_delete_change_a_stored_test_the_process_does_not_serve(
    redis_server, stores, tmp_path, impl, capsys, command
):
    """An operator's stop (or delete) of a test the store holds, from a host that
    refuses the stored document and so does not serve it: made on the stored document,
    which the command's own manager refuses too (its cache file is the host's)."""
    b, where, reader = _refusing_host(redis_server, stores, tmp_path, impl, store_has_extra=True)
    try:
        assert b.get_ab_test("extra") is None
        code, _, err = run_cli(capsys, "experiment", command, "extra", *where)
        assert code == 0, err
        snap = reader.read().snapshot
        if command == "stop":
            assert snap.experiments["extra"]["status"] == "stopped"
            assert "stopped A/B test extra" in err
        else:
            assert "extra" not in snap.experiments and "extra" not in snap.flags
            assert "deleted A/B test extra" in err
        assert snap.experiments[TEST]["status"] == "stopped"  # the guardrail's stop kept
    finally:
        b.close()
