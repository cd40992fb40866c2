"""``update_ab_test`` in a fleet on a test whose guardrail stopped it on another host,
while the stored document says it runs.

Host A's guardrail stops the test: the fleet's stop register (``{NS}:flags:guardrail-
stops`` in Redis) holds the stop. Then a tool that never saw the stop puts the document
from before it back: the store says the test runs. Host B, serving the stop, refuses
that document and keeps serving the control, without writing the store behind the
fleet's back. An update of the test from B (a ramp, a new description, its guardrail
removed) is made on the newest stored document, the running one: written as it is, it
would serve the harmful variant again to every host. The test stays stopped on every
host until someone resumes it explicitly: the update is written with the test stopped
as the register holds it (a result that moves nobody, on B or on a host serving the
document put back, so it repairs the store; a change never carries a refused document
live), from B or from the command line (a process starting on the store). A real
Redis (tests/redis_server.py), real managers, the real CLI."""

from __future__ import annotations

import time

import pytest

from cfgcore.experiments.abtest import GUARDRAIL_STOPPED_AT, _stopped
from tests.conftest import run_cli
from tests.redis_server import wait_for
from tests.test_experiments import _simulate
from tests.test_fix10_exp_guardrail_hold import HARMFUL, TEST, _guarded_test
from tests.test_fix12_experiments_fleet_hold import _manager, _publish, _served
from tests.test_fix13_fleet_stop_register import _host

#: What the update changes, and how the stored record shows it.
CHANGES = {
    "description": ({"description": "paused by the fleet"}, "description", "paused by the fleet"),
    "guardrail_removed": ({"guardrail_metrics": {}}, "guardrail_metrics", None),
}


def _stop_on_a_then_put_back(redis_server, stores, tmp_path, impl, b=None):
    """Host A creates the guarded test (``b()`` starts host B meanwhile) and its
    guardrail stops it: ``(a reader of the store, the document from before the stop,
    A's store URL, the time the register records the stop at)``."""
    base = redis_server.url + "?namespace=ab&poll=0.1"
    url_a, state_a = _host(base, tmp_path, "a")
    reader = stores(redis_server.url + "?namespace=ab&cache=off")
    a = _manager(url_a, state_a, impl)
    try:
        assert a.create_ab_test(_guarded_test())
        before = reader.read().snapshot
        if b is not None:
            host_b = b()  # serving the test while it runs
            assert "variant_b" in _served(host_b)
        _simulate(a, TEST, HARMFUL, metric="playback_errors")
        assert a.check_guardrails(TEST)  # host A's guardrail stops it
    finally:
        a.close()
    at, record = reader.read_stop_register()[TEST]
    assert record is not None and record[GUARDRAIL_STOPPED_AT] == at
    return reader, before, url_a, at


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_an_update_on_another_host_keeps_the_fleet_stop(
    redis_server, stores, tmp_path, impl, change, caplog
):
    base = redis_server.url + "?namespace=ab&poll=0.1"
    url_b, state_b = _host(base, tmp_path, "b")
    hosts = []

    def host_b():
        hosts.append(_manager(url_b, state_b, impl))
        return hosts[0]

    try:
        reader, before, url_a, at = _stop_on_a_then_put_back(
            redis_server, stores, tmp_path, impl, b=host_b
        )
        b = hosts[0]
        wait_for(lambda: _served(b) == {"control"})  # B serves the stop
        rejected = b._live.documents["rejected"]
        published = _publish(stores, url_a, before)  # the running document put back
        wait_for(lambda: b._live.documents["rejected"] > rejected)  # B refused it
        stored = reader.read()
        assert stored.version == published.version
        assert stored.snapshot.experiments[TEST]["status"] == "active"  # the store: running
        assert _served(b) == {"control"}

        caplog.set_level("ERROR", logger="cfgcore")
        given, field, value = CHANGES[change]
        # B's update, made on the document it refused, is written with the test stopped
        # as the fleet's register holds it: it moves nobody on any host (not on B, which
        # serves the stop, nor on one serving the document put back), so it repairs the
        # store rather than being refused.
        assert b.update_ab_test(TEST, given), b.last_error
        assert reader.read().version > published.version
        # A host starting on the store serves the stop too.
        url_c, state_c = _host(base, tmp_path, "c")
        hosts.append(_manager(url_c, state_c, impl))
        c = hosts[1]
        assert _served(c) == {"control"}
        written = reader.read()
        record = written.snapshot.experiments[TEST]
        assert record.get(field) == value
        assert record["status"] == "stopped" and record[GUARDRAIL_STOPPED_AT] == at
        for m in (b, c):
            wait_for(lambda m=m: m._live.document.version == written.version)
            assert _served(m) == {"control"}
            assert m.list_ab_tests()[TEST]["status"] == "stopped"
        assert reader.read_stop_register()[TEST][0] == at  # still in force
    finally:
        for m in hosts:
            m.close()
    # A new host serves the stop too.
    d = _manager(*_host(base, tmp_path, "d"), impl)
    try:
        assert _served(d) == {"control"}
        assert d.list_ab_tests()[TEST]["status"] == "stopped"
    finally:
        d.close()


@pytest.mark.parametrize("option", [("--description", "paused"), ("--clear-guardrails",)])
def test_an_update_from_the_command_line_keeps_the_fleet_stop(
    redis_server, stores, tmp_path, impl, option, capsys, monkeypatch
):
    monkeypatch.setenv("CFGCORE_USAGE", "0")
    reader, before, url_a, at = _stop_on_a_then_put_back(redis_server, stores, tmp_path, impl)
    published = _publish(stores, url_a, before)
    assert reader.read().snapshot.experiments[TEST]["status"] == "active"
    base = redis_server.url + "?namespace=ab&poll=0.1"
    url_d, state_d = _host(base, tmp_path, "d")
    code, _, err = run_cli(capsys, "experiment", "update", TEST, *option, "--store", url_d,
                           "--state-dir", str(state_d))  # fmt: skip
    assert code == 0, err
    assert "(stopped" in err  # what the command says of the test's state
    written = reader.read()
    assert written.version > published.version
    record = written.snapshot.experiments[TEST]
    assert record["status"] == "stopped" and record[GUARDRAIL_STOPPED_AT] == at
    c = _manager(*_host(base, tmp_path, "c"), impl)
    try:
        assert _served(c) == {"control"}
    finally:
        c.close()


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_an_update_where_only_the_register_holds_the_stop_writes_it_stopped(
    redis_server, stores, tmp_path, impl, change, caplog
):
    """The register holds the stop and no document ever recorded it (the host that
    stopped the test lost its document write to a document put back over it before
    this host read it): this host serves the test running, and so does the store. Its
    update is written with the test stopped, as the register records it."""
    base = redis_server.url + "?namespace=ab&poll=0.1"
    reader = stores(redis_server.url + "?namespace=ab&cache=off")
    b = _manager(*_host(base, tmp_path, "b"), impl)
    hosts = [b]
    try:
        assert b.create_ab_test(_guarded_test())
        assert "variant_b" in _served(b)
        stored = reader.read()
        # The stop host A's guardrail made, as it records it in the fleet's register.
        record, _ = _stopped(
            dict(stored.snapshot.experiments[TEST]), stored.snapshot.flags[TEST],
            "guardrail: playback_errors worse in variant_b", time.time(), guardrail=True,
        )  # fmt: skip
        at = record[GUARDRAIL_STOPPED_AT]
        assert reader.write_stop_register({TEST: (at, record)}) == 1
        assert reader.read().snapshot.experiments[TEST]["status"] == "active"

        caplog.set_level("ERROR", logger="cfgcore")
        given, field, value = CHANGES[change]
        # Its fields changed as asked, its state the fleet's (as an update keeps a
        # stopped test stopped): True, with an ERROR naming the register's stop.
        assert b.update_ab_test(TEST, given), b.last_error
        written = reader.read()
        assert written.version > stored.version
        record = written.snapshot.experiments[TEST]
        assert record.get(field) == value
        assert record["status"] == "stopped" and record[GUARDRAIL_STOPPED_AT] == at
        assert _served(b) == {"control"}
        assert "guardrail stop register holds stopped" in caplog.text
        c = _manager(*_host(base, tmp_path, "c"), impl)
        hosts.append(c)
        assert _served(c) == {"control"}
        assert c.list_ab_tests()[TEST]["status"] == "stopped"
    finally:
        for m in hosts:
            m.close()
