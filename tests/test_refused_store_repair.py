"""Repairing a store that holds a flag document this process refused, with cfgcore's
own tools.

A process refuses a stored document that would move the users a served A/B test has
enrolled (a split edited by hand, a document from before a guardrail stop put back),
and every change made through cfgcore applies to the newest stored document. Such a
change used to be refused whatever it did, with advice written for hand edits ("keep
the test stopped in this file"), so nothing made through cfgcore, not even the stop
or the delete that repairs the store, could be written until someone rewrote the
store by other means. Now a change whose result moves nobody, judged against what
this process serves (the fleet's stop register taken into account) and against the
stored document (what a process that never served the earlier one serves), is
written; one that would carry the refused part live is refused, naming the stored
document and how to repair it. Real files, a real Redis (tests/redis_server.py), real
managers, the real command line."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from cfgcore.errors import ConfigError
from cfgcore.experiments.abtest import GUARDRAIL_STOPPED_AT
from tests.redis_server import wait_for
from tests.test_audit5_flags2_served_tests import ab, edit, resplit, served
from tests.test_experiments import _simulate
from tests.test_fix10_exp_guardrail_hold import HARMFUL, TEST, _guarded_test
from tests.test_fix12_experiments_fleet_hold import _manager, _publish
from tests.test_fix12_experiments_fleet_hold import _served as _fleet_served
from tests.test_fix13_fleet_stop_register import _host

EDITED = {"control": 30, "green": 70}


@pytest.fixture
def edited(manager):
    """A manager serving test ``checkout``, whose flags file now holds a hand edit that
    moves its users, refused on reload."""
    assert manager.create_ab_test(ab())
    edit(manager, resplit(EDITED))
    assert not manager.reload()
    assert "experiments.checkout.traffic_split" in str(manager._live.last_error)
    return manager


@pytest.fixture
def manager(tmp_path):
    from cfgcore.dynamic_config import DynamicConfigurationManager

    m = DynamicConfigurationManager(flags_file=str(tmp_path / "flags.json"))
    yield m
    m.close()


def test_a_change_carrying_the_refused_document_names_the_store_and_the_repair(edited):
    m = edited
    before = served(m)
    with pytest.raises(ConfigError) as raised:
        m.set_holdout_percentage(5)
    text = str(raised.value)
    assert m.flags_file in text
    assert "stored flag document" in text and "refused" in text
    assert "experiments.checkout.traffic_split" in text
    # What to do, for someone using the API or the command line.
    assert "cfgcore experiment delete checkout" in text
    assert "in this file" not in text
    assert not m.update_ab_test("checkout", {"description": "x"})
    assert "cfgcore experiment delete checkout" in m.last_error
    assert served(m) == before
    with open(m.flags_file) as fh:
        assert '"control": 30' in fh.read()  # nothing written


def test_a_delete_repairs_a_store_holding_a_refused_document(edited, impl):
    """The delete moves nobody (whatever the stored split): written, every process
    takes it, one that never served the earlier document (it serves the edit) too."""
    from cfgcore.dynamic_config import DynamicConfigurationManager
    from cfgcore.engine import engine_class

    m = edited
    # Opened after the edit: no earlier document, it serves the edited split.
    # (its own engine: a set of its own, as in another process)
    late = DynamicConfigurationManager(flags_file=m.flags_file, engine=engine_class(impl)())
    try:
        assert late.list_ab_tests()["checkout"]["traffic_split"] == {
            "control": 30.0,
            "green": 70.0,
        }
        assert m.delete_ab_test("checkout"), m.last_error
        assert "checkout" not in m.list_ab_tests()
        assert set(served(m).values()) == {None}
        assert m._live.last_error is None
        late.reload()
        assert "checkout" not in late.list_ab_tests()
        assert late._live.last_error is None
        # Changes apply again.
        m.set_holdout_percentage(5)
        assert m.create_ab_test(ab("other"))
    finally:
        late.close()


def test_a_change_still_moving_users_on_the_refused_document_stays_refused(edited):
    """A stop keeps the edited split in the test's record (moving its users when
    resumed): it would carry the refused part, so it is refused and names the repair."""
    m = edited
    with pytest.raises(ConfigError) as raised:
        m.stop_ab_test("checkout")
    assert "experiments.checkout.traffic_split" in str(raised.value)
    assert "cfgcore experiment delete checkout" in str(raised.value)
    assert m.list_ab_tests()["checkout"]["status"] == "active"


# -- a fleet: the stop register, and a host that never served the earlier document -----


def _stop_on_b_then_put_back(redis_server, stores, tmp_path, impl):
    """Host B creates the guarded test, its guardrail stops it, and another tool puts
    the document from before the stop back: ``(b, reader, published version, stop)``."""
    base = redis_server.url + "?namespace=ab&poll=0.1"
    url_b, state_b = _host(base, tmp_path, "b")
    reader = stores(redis_server.url + "?namespace=ab&cache=off")
    b = _manager(url_b, state_b, impl)
    assert b.create_ab_test(_guarded_test())
    before = reader.read().snapshot
    _simulate(b, TEST, HARMFUL, metric="playback_errors")
    assert b.check_guardrails(TEST)
    at = reader.read_stop_register()[TEST][0]
    rejected = b._live.documents["rejected"]
    published = _publish(stores, url_b, before)
    wait_for(lambda: b._live.documents["rejected"] > rejected)  # B refused it
    assert reader.read().snapshot.experiments[TEST]["status"] == "active"
    assert _fleet_served(b) == {"control"}
    return b, reader, published.version, at


@pytest.mark.parametrize("change", ["stop", "delete", "description"])
def test_a_change_through_the_api_repairs_a_fleet_document_undoing_a_stop(
    redis_server, stores, tmp_path, impl, change
):
    """The register holds the stop: a change from B is written with the test stopped
    (or gone), which moves nobody on any host, so it is written and repairs the store."""
    b, reader, version, at = _stop_on_b_then_put_back(redis_server, stores, tmp_path, impl)
    hosts = [b]
    try:
        if change == "stop":
            assert b.stop_ab_test(TEST), b.last_error
        elif change == "delete":
            assert b.delete_ab_test(TEST), b.last_error
        else:
            assert b.update_ab_test(TEST, {"description": "paused"}), b.last_error
        written = reader.read()
        assert written.version > version
        record = written.snapshot.experiments.get(TEST)
        if change == "delete":
            assert record is None and TEST not in written.snapshot.flags
        else:
            assert record["status"] == "stopped"
        if change == "description":
            assert record[GUARDRAIL_STOPPED_AT] == at  # the register's stop, written
        assert b._live.document.version == written.version
        assert b._live.last_error is None
        base = redis_server.url + "?namespace=ab&poll=0.1"
        c = _manager(*_host(base, tmp_path, "c"), impl)  # a new host
        hosts.append(c)
        assert c._live.document.version == written.version
        assert _fleet_served(c) <= {"control", None}
        assert _fleet_served(b) <= {"control", None}
    finally:
        for m in hosts:
            m.close()


def _split_put_back(redis_server, stores, tmp_path, impl):
    """Host B serves ``checkout``; another tool publishes it with another split, which
    B refuses; then B goes down (its cache file keeps what it served)."""
    base = redis_server.url + "?namespace=ab&poll=0.1"
    url_b, state_b = _host(base, tmp_path, "b")
    reader = stores(redis_server.url + "?namespace=ab&cache=off")
    b = _manager(url_b, state_b, impl)
    try:
        assert b.create_ab_test(ab())
        snap = reader.read().snapshot
        import msgspec

        from cfgcore.snapshot import Rule

        flag = snap.flags["checkout"]
        rule = msgspec.structs.replace(flag.rules[0], split=EDITED)
        assert isinstance(rule, Rule)
        moved = msgspec.structs.replace(
            snap,
            flags={**snap.flags, "checkout": msgspec.structs.replace(flag, rules=[rule])},
            experiments={
                **snap.experiments,
                "checkout": {**snap.experiments["checkout"], "traffic_split": EDITED},
            },
        )
        rejected = b._live.documents["rejected"]
        published = _publish(stores, url_b, moved)
        wait_for(lambda: b._live.documents["rejected"] > rejected)
        assert "experiments.checkout.traffic_split" in str(b._live.last_error)
    finally:
        b.close()
    return url_b, state_b, reader, published.version


def _cli(*argv):
    """``cfgcore ARGV...`` in a process of its own (in this one it would join the
    test's managers' flag set): ``(exit status, stderr)``."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "CFGCORE_USAGE": "0"}
    done = subprocess.run(
        [sys.executable, "-m", "cfgcore", *argv], env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    return done.returncode, done.stderr


def test_the_command_line_names_the_refused_fleet_document_and_deletes_the_test(
    redis_server, stores, tmp_path, impl
):
    """On B's host (its cache file holds what B served) the command line refuses the
    stored document at start; an update carrying it is refused naming the Redis URL
    and the repair; the delete it names is written, and a host that never served the
    earlier document (it serves the published split) takes it."""
    url_b, state_b, reader, version = _split_put_back(redis_server, stores, tmp_path, impl)
    base = redis_server.url + "?namespace=ab&poll=0.1"
    late = _manager(*_host(base, tmp_path, "late"), impl)  # no cache file: serves it
    try:
        assert late._live.document.version == version
        where = ("--store", url_b, "--state-dir", str(state_b))
        code, err = _cli("experiment", "update", "checkout", "--description", "x", *where)
        assert code == 1, err
        assert "stored flag document" in err and "refused" in err
        assert redis_server.url.split("//")[1].split("/")[0] in err  # the Redis URL
        assert "cfgcore experiment delete checkout" in err
        assert "in this file" not in err
        assert reader.read().version == version  # nothing written
        code, err = _cli("experiment", "delete", "checkout", *where)
        assert code == 0, err
        written = reader.read()
        assert written.version > version
        assert "checkout" not in written.snapshot.experiments
        wait_for(lambda: late._live.document.version == written.version)
        assert late._live.last_error is None
        assert "checkout" not in late.list_ab_tests()
    finally:
        late.close()
