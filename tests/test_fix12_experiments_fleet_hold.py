"""Twelfth round: a guardrail stop held at the start of a Redis (fleet) store. A start
judged a fleet document only against the host's cache file (the document it served
before): with no cache file (``cache=off``, a new host, the file removed) or one from
before the stop, a fleet document that served again the variants of a test a
guardrail stopped (a document from before the stop published again while every
process was down, its record set active) was served. Now it is judged against the
stops on record (the stop register, the audit log) like a flag file: not served, this
process serves it with the test stopped (the store is not written behind the fleet's
back, as a running process keeps serving the stop while the store holds a refused
document), an ERROR and an audited refusal naming the document. A real Redis
(tests/redis_server.py), real managers."""

from __future__ import annotations

import glob
import json
import os

import msgspec
import pytest

from cfgcore.config.manager import ConfigurationManager
from cfgcore.dynamic_config import DynamicConfigurationManager
from cfgcore.engine import engine_class
from cfgcore.experiments.abtest import GUARDRAIL_STOPPED_AT, RESUMED_AT
from tests.conftest import copy_bundled_config
from tests.test_experiments import USERS, _simulate
from tests.test_fix10_exp_guardrail_hold import HARMFUL, TEST, _guarded_test


def _manager(url, state, impl):
    return DynamicConfigurationManager(
        store=url, state_dir=state, engine=engine_class(impl)(), guardrail_check_every=10**9
    )


def _served(m, users=USERS[:600]):
    return {m.get_ab_test_variant(TEST, {"user_id": u}) for u in users}


def _stopped_then_down(url, state, impl):
    """The test stopped by its guardrail, every manager closed; the stored snapshot
    from before the stop."""
    m = _manager(url, state, impl)
    try:
        assert m.create_ab_test(_guarded_test())
        before = m._live.store.read().snapshot
        _simulate(m, TEST, HARMFUL, metric="playback_errors")
        assert m.check_guardrails(TEST)
        assert m.list_ab_tests()[TEST][GUARDRAIL_STOPPED_AT]
    finally:
        m.close()
    return before


def _publish(stores, url, snapshot):
    """Another tool (no cache, no manager) writes ``snapshot`` as the fleet document."""
    writer = stores(url.split("?")[0] + "?namespace=ab&cache=off")
    return writer.update(lambda _old: snapshot)[1]


def _reactivated(before, stopped):
    meta = {**stopped.experiments[TEST], "status": "active"}
    meta.pop("stopped_reason", None)
    return msgspec.structs.replace(
        stopped, flags={**stopped.flags, TEST: before.flags[TEST]},
        experiments={**stopped.experiments, TEST: meta},
    )  # fmt: skip


@pytest.mark.parametrize("edit", ["put_back", "made_active"])
@pytest.mark.parametrize("cache", ["off", "removed"])
def test_a_fleet_document_undoing_a_stop_is_not_served_at_start(
    redis_server, stores, tmp_path, impl, edit, cache, caplog
):
    state = tmp_path / "state"
    cache_file = tmp_path / "cache.msgpack"
    url = redis_server.url + "?namespace=ab&poll=0.1&cache=" + (
        "off" if cache == "off" else str(cache_file)
    )  # fmt: skip
    before = _stopped_then_down(url, state, impl)
    stopped = stores(redis_server.url + "?namespace=ab&cache=off").read().snapshot
    bad = before if edit == "put_back" else _reactivated(before, stopped)
    published = _publish(stores, url, bad)
    if cache == "removed":
        os.remove(cache_file)  # a new host, or its state wiped: only the logs remain
    caplog.set_level("ERROR", logger="cfgcore")
    m = _manager(url, state, impl)
    try:
        assert _served(m) == {"control"}
        assert m.list_ab_tests()[TEST]["status"] == "stopped"
        # Refused, named: the document (store and version) and the test, in the log
        # and the audit log.
        said = " ".join(r.getMessage() for r in caplog.records)
        assert f"version {published.version}" in said and TEST in said
        errors = [a for a in m.audit.read(m.audit.path) if a.get("kind") == "error"]
        assert errors and f"cfgcore experiment start {TEST}" in json.dumps(errors[-1])
        # Written back with the test stopped (the fleet serves the stop), the refused
        # document kept byte for byte beside the stop register.
        stored = stores(redis_server.url + "?namespace=ab&cache=off").read()
        assert stored.version == published.version + 1
        assert stored.snapshot.experiments[TEST]["status"] == "stopped"
        (aside,) = glob.glob(str(state / f"flags-v{published.version}.msgpack.refused-*")) or (
            glob.glob(str(tmp_path / f"flags-v{published.version}.msgpack.refused-*"))
        )
        with open(aside, "rb") as fh:
            assert fh.read() == published.data
        assert aside in said
        # Changes apply again, and the explicit resume serves the variants, after a
        # restart too.
        assert m.create_ab_test(m.get_ab_test(TEST))
        assert m.list_ab_tests()[TEST][RESUMED_AT]
        assert "variant_b" in _served(m)
    finally:
        m.close()
    again = _manager(url, state, impl)
    try:
        assert "variant_b" in _served(again) and again._live.last_error is None
    finally:
        again.close()


def test_a_configuration_manager_alone_on_the_fleet_store_serves_the_stop(
    redis_server, stores, tmp_path, impl
):
    """The register beside the host's cache file holds the stop for any reader of the
    store: a configuration manager alone, the cache file removed."""
    cache_file = tmp_path / "fleet" / "cache.msgpack"
    url = redis_server.url + f"?namespace=ab&poll=0.1&cache={cache_file}"
    before = _stopped_then_down(url, tmp_path / "state", impl)
    _publish(stores, url, before)
    os.remove(cache_file)
    config = copy_bundled_config(tmp_path / "config")
    cm = ConfigurationManager(str(config), flag_store=url, environ={}, validate=False)
    try:
        assert {cm.flags.variant(TEST, {"user_id": u}) for u in USERS[:600]} == {"control"}
    finally:
        cm.close()


def test_a_store_refusing_the_write_back_still_serves_the_stop(
    redis_server, stores, tmp_path, impl
):
    """Redis refusing writes (no replica to write to): the refused document stays in
    the store, and this process serves it with the test stopped, the refusal standing
    (a reload does not serve it either)."""
    state = tmp_path / "state"
    url = redis_server.url + "?namespace=ab&poll=0.1&cache=off"
    before = _stopped_then_down(url, state, impl)
    published = _publish(stores, url, before)
    client = redis_server.client()
    client.config_set("min-replicas-to-write", 1)
    try:
        m = _manager(url, state, impl)
        try:
            assert _served(m) == {"control"}
            assert f"cfgcore experiment start {TEST}" in str(m._live.last_error)
            m.reload()
            assert _served(m, USERS[:200]) == {"control"}
            reader = stores(redis_server.url + "?namespace=ab&cache=off")
            assert reader.read().version == published.version
        finally:
            m.close()
    finally:
        client.config_set("min-replicas-to-write", 0)
