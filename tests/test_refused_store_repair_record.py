"""What a change made on a stored document this process does not serve writes and
reports.

A change made through cfgcore applies to the newest stored document. When that is a
document this process refused (one from before a guardrail stop, put back), the stop
or delete that repairs the store is written (tests/test_refused_store_repair.py); the
stop must then carry the guardrail stop this process serves (its time and reason), as
a fleet host's write carries the one its stop register holds, or the store loses the
record of it: the host's stop register, the fleet's and the test's history would say
it ended. And what such a change reports (the audit entry, ``cfgcore experiment
update``'s list of changed fields) is the difference it makes to the stored document,
not to the one this process served. Real files, a real Redis (tests/redis_server.py),
real managers, the real command line in its own process."""

from __future__ import annotations

import json

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.dynamic_config import DynamicConfigurationManager
from cfgcore.engine import engine_class
from cfgcore.experiments.abtest import GUARDRAIL_STOPPED_AT, RESUMED_AT, guardrail_stop
from cfgcore.experiments.stops import read_stops, stops_path
from tests.conftest import run_cli
from tests.fuzz import examples
from tests.redis_server import wait_for
from tests.test_audit5_flags2_served_tests import ab, edit
from tests.test_experiments import _simulate
from tests.test_fix10_exp_guardrail_hold import HARMFUL, TEST, _guarded_test, _stopped
from tests.test_fix10_exp_guardrail_hold import _served as _file_served
from tests.test_fix12_experiments_fleet_hold import _manager, _publish
from tests.test_fix12_experiments_fleet_hold import _served as _fleet_served
from tests.test_fix13_fleet_stop_register import _host
from tests.test_refused_store_repair import _cli, _stop_on_b_then_put_back

STOP = ("status", "stopped_reason", "stopped_at", GUARDRAIL_STOPPED_AT)


@pytest.fixture
def manager(tmp_path):
    m = DynamicConfigurationManager(flags_file=str(tmp_path / "flags.json"))
    yield m
    m.close()


def _stop_of(record):
    return {k: record.get(k) for k in STOP}


def test_a_stop_repairing_a_file_put_back_keeps_the_guardrail_stop(tmp_path, impl):
    """The file put back from before the stop (not reloaded yet): the stop that repairs
    it is written with the guardrail's stop as this process serves it, the host's stop
    register keeps it, and ``cfgcore experiment start`` then resumes the test in every
    process (a new one too: nothing at its start undoes the resume)."""
    m, before = _stopped(tmp_path, impl)
    try:
        served = m.list_ab_tests()[TEST]
        at = served[GUARDRAIL_STOPPED_AT]
        assert served["stopped_reason"].startswith("guardrail:")
        with open(m.flags_file, "wb") as fh:
            fh.write(before)  # a backup put back by another tool
        assert m.stop_ab_test(TEST, "looked at it"), m.last_error
        with open(m.flags_file) as fh:
            written = json.load(fh)["experiments"][TEST]
        assert _stop_of(written) == _stop_of(served)
        assert _stop_of(m.list_ab_tests()[TEST]) == _stop_of(served)
        assert _file_served(m) == {"control"}
        register = read_stops(stops_path(m._live.store, m.audit.path))
        assert guardrail_stop(register.get(TEST)) == at
        done = _cli("experiment", "start", TEST, "--state-dir", str(tmp_path))
        assert done[0] == 0, done[1]
        assert m.reload() is True
        record = m.list_ab_tests()[TEST]
        assert record["status"] == "active" and record[RESUMED_AT] >= at
        assert "variant_b" in _file_served(m)
    finally:
        m.close()
    again = DynamicConfigurationManager(m.flags_file, engine=engine_class(impl)())
    try:
        assert again._live.last_error is None
        assert again.list_ab_tests()[TEST]["status"] == "active"
        assert "variant_b" in _file_served(again)
    finally:
        again.close()


def test_a_stop_repairing_a_fleet_put_back_keeps_the_guardrail_stop(
    redis_server, stores, tmp_path, impl
):
    """The same on a Redis store: the stop written carries the stop B serves (and the
    fleet's register holds), and the register still holds it afterwards; a resume
    through the API then serves the test again on every host."""
    b, reader, version, at = _stop_on_b_then_put_back(redis_server, stores, tmp_path, impl)
    hosts = [b]
    try:
        served = b.list_ab_tests()[TEST]
        assert served[GUARDRAIL_STOPPED_AT] == at
        assert b.stop_ab_test(TEST, "looked at it"), b.last_error
        written = reader.read()
        assert written.version > version
        assert _stop_of(written.snapshot.experiments[TEST]) == _stop_of(served)
        stop_at, record = reader.read_stop_register()[TEST]
        assert stop_at == at and guardrail_stop(record) == at  # not ended
        base = redis_server.url + "?namespace=ab&poll=0.1"
        c = _manager(*_host(base, tmp_path, "c"), impl)  # a new host
        hosts.append(c)
        assert c.list_ab_tests()[TEST][GUARDRAIL_STOPPED_AT] == at
        assert _fleet_served(c) == {"control"}
        assert b.create_ab_test(b.get_ab_test(TEST), start=True), b.last_error  # resumed
        wait_for(lambda: c._live.document.version == b._live.document.version)
        assert "variant_b" in _fleet_served(b) and "variant_b" in _fleet_served(c)
    finally:
        for m in hosts:
            m.close()


def test_an_update_on_a_newer_stored_document_audits_what_it_changed(manager):
    """The stored document holds a change this process has not read yet (a test not
    started, split again by hand; not reloaded): an update of the description is
    audited as that, and the split as the stored document's change, not the update's."""
    m = manager
    assert m.create_ab_test(ab(), start=False)
    split = {"control": 30.0, "green": 70.0}  # (its flag serves the control to everyone)
    edit(m, lambda doc: doc["experiments"]["checkout"].update(traffic_split=split))
    assert m.update_ab_test("checkout", {"description": "paused"}), m.last_error
    record = m.list_ab_tests()["checkout"]
    assert record["description"] == "paused"
    assert record["traffic_split"] == {"control": 30.0, "green": 70.0}
    entries = [e for e in m.audit.read(m.audit.path) if e.get("kind") == "change"]
    mine = [e for e in entries if e.get("source") == "update_ab_test"]
    assert sorted(e["path"] for e in mine) == ["experiments.checkout", "flags.checkout"]
    ((old, new),) = ((e["old"], e["new"]) for e in mine if e["path"] == "experiments.checkout")
    assert old["traffic_split"] == new["traffic_split"] == {"control": 30.0, "green": 70.0}
    assert (old["description"], new["description"]) == ("", "paused")
    # The split's change is audited too, as what the store held.
    theirs = [e for e in entries if e.get("source") != "update_ab_test"]
    assert any(
        e["path"] == "experiments.checkout"
        and e["old"] is not None
        and e["source"] == "file"
        and e["old"]["traffic_split"] == {"control": 50.0, "green": 50.0}
        and e["new"]["traffic_split"] == {"control": 30.0, "green": 70.0}
        for e in theirs
    )


def test_the_command_line_reports_what_the_update_changed_in_the_store(
    redis_server, stores, tmp_path, impl, capsys
):
    """Host B serves a guardrail-stopped test and ``checkout``, not started; another
    tool puts back the document from before the stop with ``checkout`` split anew
    (allowed: it has served nobody), which B refuses. ``cfgcore experiment update
    checkout --description`` on B (run in B's process: the command joins its flag set)
    is written, the guarded test stopped (the fleet's register holds it); the fields it
    lists, and the audit entry, are what the update changed in the stored document:
    the description, not the split B had served."""
    base = redis_server.url + "?namespace=ab&poll=0.1"
    url_b, state_b = _host(base, tmp_path, "b")
    reader = stores(redis_server.url + "?namespace=ab&cache=off")
    b = _manager(url_b, state_b, impl)
    try:
        assert b.create_ab_test(_guarded_test())
        assert b.create_ab_test(ab(), start=False)
        before = reader.read().snapshot
        _simulate(b, TEST, HARMFUL, metric="playback_errors")
        assert b.check_guardrails(TEST)
        split = {"control": 30.0, "green": 70.0}
        record = {**before.experiments["checkout"], "traffic_split": split}
        put_back = msgspec.structs.replace(
            before, experiments={**before.experiments, "checkout": record}
        )
        rejected = b._live.documents["rejected"]
        published = _publish(stores, url_b, put_back)
        wait_for(lambda: b._live.documents["rejected"] > rejected)
        assert b.list_ab_tests()["checkout"]["traffic_split"] == {"control": 50.0, "green": 50.0}
        code, _out, err = run_cli(
            capsys, "experiment", "update", "checkout", "--description", "paused",
            "--store", url_b, "--state-dir", str(state_b),
        )  # fmt: skip
        assert code == 0, err
        written = reader.read()
        assert written.version > published.version
        assert written.snapshot.experiments["checkout"]["traffic_split"] == split
        assert written.snapshot.experiments["checkout"]["description"] == "paused"
        assert written.snapshot.experiments[TEST]["status"] == "stopped"
        assert "updated A/B test checkout" in err
        assert ": description (" in err and "traffic_split" not in err
        entries = [e for e in b.audit.read(b.audit.path) if e.get("source") == "update_ab_test"]
        # (one entry per manager of the flag set: B's and the command's)
        told = [(e["old"], e["new"]) for e in entries if e["path"] == "experiments.checkout"]
        assert told
        for old, new in told:
            assert old["traffic_split"] == new["traffic_split"] == split
            assert (old["description"], new["description"]) == ("", "paused")
    finally:
        b.close()


@settings(max_examples=examples(60), deadline=None)
@given(
    status=st.sampled_from(["active", "stopped", None]),
    own=st.one_of(st.none(), st.floats(1, 2e9)),
    ended=st.one_of(st.none(), st.floats(1, 2e9)),
    at=st.floats(1, 2e9),
)
def test_only_a_change_keeping_the_test_stopped_carries_the_served_stop(status, own, ended, at):
    """The judgement alone: the stop this process serves is carried into a write that
    keeps the test stopped without it (or with an older guardrail stop), whatever else
    the write holds; a write that deletes it, serves it again, records its own later
    stop or an end of the stop is left as it is."""
    from cfgcore.experiments.abtest import GUARDRAIL_ENDS
    from cfgcore.experiments.stops import carry_served_stops
    from cfgcore.snapshot import snapshot_from_dict

    variants = {"control": 1, "variant_a": 2}
    split = {"control": 50.0, "variant_a": 50.0}
    reason = "guardrail: errors worse in variant_a"
    served_record = {"status": "stopped", "stopped_reason": reason, "stopped_at": at,
                     GUARDRAIL_STOPPED_AT: at, "traffic_split": split}  # fmt: skip
    served = snapshot_from_dict({
        "flags": {"t": {"variants": variants, "rules": [{"serve": "control"}]}},
        "experiments": {"t": served_record},
    })  # fmt: skip
    record = {"traffic_split": split, "description": "mine"}
    if status is not None:
        record["status"] = status
    if status == "stopped":
        record.update(stopped_reason="by hand", stopped_at=5.0)
        if own is not None:
            record.update({GUARDRAIL_STOPPED_AT: own})
    rule = {"serve": "control"} if status == "stopped" else {"split": split}
    doc = {"flags": {"t": {"variants": variants, "rules": [rule]}}, "experiments": {"t": record}}
    if ended is not None:
        doc["metadata"] = {GUARDRAIL_ENDS: {"t": ended}}
    written = snapshot_from_dict(doc)
    out = carry_served_stops(served, written, "flags.json")
    carried = (
        status == "stopped"
        and (own is None or own < at)
        and (ended is None or ended < at)
    )  # fmt: skip
    if not carried:
        assert out is written
        return
    result = out.experiments["t"]
    assert guardrail_stop(result) == at
    assert (result["status"], result["stopped_reason"], result["stopped_at"]) == (
        "stopped", reason, at,
    )  # fmt: skip
    assert result["description"] == "mine"  # the rest as the write made it
    assert [r.serve for r in out.flags["t"].rules] == ["control"]
