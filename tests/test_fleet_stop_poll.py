"""A running host writes its own entries of the fleet's guardrail stop register back
within one poll of its follower when the register lost them, not only at its next start
or the next fleet document it judges.

The host that recorded the end of a stop (a test it deleted and created again) keeps
it; if the register then loses that end (deleted, replaced by a value no reader takes)
while no document changes, a host that was down with the stop in its register started,
held its old stop and stopped the re-created test again for the whole fleet. Now the
recording host's next poll finds its end missing and writes it back, so the lagging
host's start reads it. An unchanged register costs one small script and writes nothing.
A real Redis (tests/redis_server.py), real managers."""

from __future__ import annotations

import json
import time

import pytest

from cfgcore.experiments.abtest import GUARDRAIL_STOPPED_AT
from tests.redis_server import wait_for
from tests.test_fix10_exp_guardrail_hold import TEST
from tests.test_fix12_experiments_fleet_hold import _manager, _served, _stopped_then_down
from tests.test_fix13_fleet_stop_register import _host
from tests.test_fleet_signed_stops import K1
from tests.test_fleet_stop_resend import (
    BIG,
    REG,
    _deleted_and_created_again,
    _fleet_entry,
    _lagging_host_serves_the_test,
)


def _calls(redis_server, command):
    stats = redis_server.client().info("commandstats")
    return stats.get(f"cmdstat_{command}", {}).get("calls", 0)


def _spoil(redis_server, spoil):
    client = redis_server.client()
    if spoil == "oversized":
        client.hset(REG, TEST, BIG)
    elif spoil == "unreadable":
        client.hset(REG, TEST, b"{not json")
    elif spoil == "older":  # an older stop put back over the end
        client.hset(REG, TEST, json.dumps({"at": 1.0, "record": {"status": "stopped",
                    "stopped_reason": "guardrail: old", GUARDRAIL_STOPPED_AT: 1.0}}))  # fmt: skip
    elif spoil == "deleted":
        client.hdel(REG, TEST)
    else:  # the register removed (Redis lost it, or someone deleted the key)
        client.delete(REG)


@pytest.mark.parametrize("spoil", ["deleted", "oversized", "unreadable", "older", "removed"])
def test_a_running_host_writes_its_end_back_at_its_next_poll(redis_server, tmp_path, impl, spoil):
    base = redis_server.url + "?namespace=ab&poll=0.1"
    url_a, state_a = _host(base, tmp_path, "a")
    _stopped_then_down(url_a, state_a, impl)  # A's register holds the stop; A is down
    url_c, state_c = _host(base, tmp_path, "c")
    _deleted_and_created_again(url_c, state_c, impl)
    ended = _fleet_entry(redis_server)
    c = _manager(url_c, state_c, impl)  # C runs; no document changes from here on
    try:
        version = c._live.store.version
        _spoil(redis_server, spoil)
        wait_for(lambda: _fleet_entry(redis_server) == ended)  # C's poll wrote it back
        assert c._live.store.version == version  # (no document judged meanwhile)
        stored = int(redis_server.client().hget("{ab}:flags", "version"))
        # the lagging host, started now, reads the end: the re-created test serves
        _lagging_host_serves_the_test(url_a, state_a, impl, redis_server, stored)
    finally:
        c.close()


def test_a_running_host_writes_a_stop_it_holds_back_at_its_next_poll(redis_server, tmp_path, impl):
    base = redis_server.url + "?namespace=ab&poll=0.1"
    url_a, state_a = _host(base, tmp_path, "a")
    _stopped_then_down(url_a, state_a, impl)
    stop = _fleet_entry(redis_server)
    assert stop is not None and stop[1] is not None
    a = _manager(url_a, state_a, impl)
    try:
        redis_server.client().hdel(REG, TEST)
        wait_for(lambda: _fleet_entry(redis_server) == stop)
        assert _served(a) == {"control"}
    finally:
        a.close()


def test_an_unchanged_register_is_checked_without_a_write(redis_server, tmp_path, impl):
    """Polls of a host with entries of its own: the check script runs at each poll, no
    entry is written; a later stop another host recorded is not undone by the check."""
    base = redis_server.url + "?namespace=ab&poll=0.05"
    url_c, state_c = _host(base, tmp_path, "c")
    url_a, state_a = _host(base, tmp_path, "a")
    _stopped_then_down(url_a, state_a, impl)
    _deleted_and_created_again(url_c, state_c, impl)
    c = _manager(url_c, state_c, impl)
    try:
        raw = redis_server.client().hget(REG, TEST)
        # the poll's check judged the stored end to be C's (kept by its value's hash)
        wait_for(lambda: TEST in c._live.store._stops_held)
        scripts = _calls(redis_server, "evalsha")
        wait_for(lambda: _calls(redis_server, "evalsha") >= scripts + 2)  # (polling: from here)
        hsets, scripts = _calls(redis_server, "hset"), _calls(redis_server, "evalsha")
        wait_for(lambda: _calls(redis_server, "evalsha") >= scripts + 10)  # 10 polls at least
        assert _calls(redis_server, "hset") == hsets
        assert redis_server.client().hget(REG, TEST) == raw
        # a later stop (the re-created test stopped again, by another host): kept
        later = (
            time.time() + 100.0,
            {"status": "stopped", GUARDRAIL_STOPPED_AT: time.time() + 100},
        )
        value = json.dumps({"at": later[0], "record": later[1]}, sort_keys=True)
        redis_server.client().hset(REG, TEST, value)
        scripts = _calls(redis_server, "evalsha")
        wait_for(lambda: _calls(redis_server, "evalsha") >= scripts + 5)
        assert redis_server.client().hget(REG, TEST) == value.encode()
    finally:
        c.close()


def test_a_signing_host_writes_its_end_back_over_a_forged_later_entry(
    redis_server, tmp_path, impl, monkeypatch
):
    """With signing, an entry no trusted key signed (here: a later stop, forged) holds
    nothing for the readers: the host that recorded the end writes it back over it at
    its next poll, as the write script replaces a value the writer refused."""
    monkeypatch.setenv("CFGCORE_FLEET_SIGNING_KEY", K1[0])
    base = redis_server.url + "?namespace=ab&poll=0.1"
    url_a, state_a = _host(base, tmp_path, "a")
    _stopped_then_down(url_a, state_a, impl)
    url_c, state_c = _host(base, tmp_path, "c")
    _deleted_and_created_again(url_c, state_c, impl)
    ended = _fleet_entry(redis_server)
    c = _manager(url_c, state_c, impl)
    try:
        forged = {"status": "stopped", "stopped_reason": "guardrail: forged",
                  GUARDRAIL_STOPPED_AT: time.time() + 100}  # fmt: skip
        redis_server.client().hset(
            REG, TEST, json.dumps({"at": forged[GUARDRAIL_STOPPED_AT], "record": forged})
        )
        wait_for(lambda: _fleet_entry(redis_server) == ended)
        assert c._live.store.stats["stops_rejected"] >= 1
    finally:
        c.close()
