"""A process that cannot write its flag store (a Redis user whose ACL allows reads only)
serves an A/B test's drop and says once that it could not record the retirement.

Every process that serves a store records in it the retirement of an A/B test another
writer dropped (``retire_dropped``). Where this process may not write, the document it
took still serves and one WARNING says so; its own write that did not happen is no flag
document refused: the refusal count (``flag_document_rejection_rate``) and the health
report stay as they were. Real redis-server, real ACL.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

import msgspec
import pytest

from cfgcore.dynamic_config import ABTestConfiguration, DynamicConfigurationManager
from cfgcore.engine import Engine
from cfgcore.experiments.abtest import RETIRED
from cfgcore.snapshot import Flag
from tests.waiting import wait_for

NOW = datetime.now(timezone.utc)


def _test() -> ABTestConfiguration:
    split = {"control": 50.0, "b": 50.0}
    return ABTestConfiguration(
        "t", "", NOW - timedelta(days=1), NOW + timedelta(days=9), split,
        {k: {"v": k} for k in split}, ["buy"],
    )  # fmt: skip


def _dropped(snapshot):
    return msgspec.structs.replace(
        snapshot,
        flags={k: v for k, v in snapshot.flags.items() if k != "t"},
        experiments={k: v for k, v in snapshot.experiments.items() if k != "t"},
    )


@pytest.fixture
def read_only(redis_server, tmp_path):
    """(a writer's URL, a manager following the store as a read-only Redis user)."""
    redis_server.client().execute_command(
        "ACL", "SETUSER", "reader", "on", ">pw", "~*", "&*", "+@all", "-@write"
    )  # fmt: skip
    query = "?namespace=ro&cache=off&poll=0.05"
    url = redis_server.url + query
    writer = DynamicConfigurationManager(store=url, state_dir=tmp_path / "w",
                                         record_usage=False, engine=Engine())  # fmt: skip
    try:
        assert writer.create_ab_test(_test()), writer.last_error
    finally:
        writer.close()
    reader_url = redis_server.url.replace("redis://", "redis://reader:pw@") + query
    manager = DynamicConfigurationManager(store=reader_url, state_dir=tmp_path / "r",
                                          record_usage=False, engine=Engine())  # fmt: skip
    yield redis_server.url + query.replace("&poll=0.05", ""), manager
    manager.close()


def test_a_store_this_process_cannot_write_serves_the_drop_and_warns_once(
    read_only, stores, caplog
):
    url, manager = read_only
    assert manager.get_ab_test("t") is not None
    live = manager._live
    rejected = live.documents["rejected"]
    with caplog.at_level(logging.WARNING, logger="cfgcore.flags"):
        stores(url).update(_dropped)  # another tool's write without the test
        assert wait_for(lambda: manager.get_ab_test("t") is None)
        # Later documents from the store: nothing more to record, nothing more said.
        stores(url).update(lambda s: msgspec.structs.replace(
            s, flags={**s.flags, "other": Flag(variants={"on": True}, default="on")}
        ))  # fmt: skip
        assert wait_for(lambda: "other" in manager.snapshot.flags)
    warnings = [r for r in caplog.records if "recorded as retired" in r.getMessage()]
    assert len(warnings) == 1, [r.getMessage() for r in caplog.records]
    assert "pw" not in warnings[0].getMessage()  # (its password masked)
    assert RETIRED not in stores(url).read().snapshot.metadata  # (it could not write)
    # The write it could not make is no flag document refused.
    assert live.documents["rejected"] == rejected
    assert live.last_error is None
    health = manager.health()
    assert health.ready, health
    assert health.reasons == [], health.reasons


def test_a_signed_fleets_follower_that_only_verifies_warns_once(
    redis_server, tmp_path, monkeypatch, caplog
):
    """It holds no signing key, so it writes nothing to the fleet; the signing process
    that dropped the test is the one to record it (``cfgcore experiment delete``)."""
    from cfgcore.runtime.redis_store import RedisFlagStore
    from cfgcore.runtime.signing import FleetKeys, generate_signing_pair

    private, public = generate_signing_pair("k1")
    url = redis_server.url + "?namespace=signed&cache=off"
    with RedisFlagStore(url, keys=FleetKeys(private, [public])) as signer:
        monkeypatch.setenv("CFGCORE_FLEET_SIGNING_KEY", private)
        monkeypatch.setenv("CFGCORE_FLEET_VERIFY_KEYS", public)
        writer = DynamicConfigurationManager(store=url, state_dir=tmp_path / "w",
                                             record_usage=False, engine=Engine())  # fmt: skip
        try:
            assert writer.create_ab_test(_test()), writer.last_error
        finally:
            writer.close()
        monkeypatch.delenv("CFGCORE_FLEET_SIGNING_KEY")
        follower = DynamicConfigurationManager(store=url + "&poll=0.05",
                                               state_dir=tmp_path / "f", record_usage=False,
                                               engine=Engine())  # fmt: skip
        try:
            assert follower.get_ab_test("t") is not None
            rejected = follower._live.documents["rejected"]
            with caplog.at_level(logging.WARNING, logger="cfgcore.flags"):
                signer.update(_dropped)
                assert wait_for(lambda: follower.get_ab_test("t") is None)
                signer.update(lambda s: msgspec.structs.replace(
                    s, flags={**s.flags, "other": Flag(variants={"on": True}, default="on")}
                ))  # fmt: skip
                assert wait_for(lambda: "other" in follower.snapshot.flags)
            warnings = [r for r in caplog.records if "recorded as retired" in r.getMessage()]
            assert len(warnings) == 1, [r.getMessage() for r in caplog.records]
            assert "holds no signing key" in warnings[0].getMessage()
            assert follower._live.documents["rejected"] == rejected
            assert follower.health().reasons == []
        finally:
            follower.close()
