"""A write with ``wait=N`` that the store took but whose replicas did not acknowledge it
in time is reported failed (it may be lost in a failover), yet every other process takes
it, as Redis holds it. The process that wrote it never did: its version counted as seen
(the floor of its next write), so its own follower passed it over as served, and the
writer served the previous flags while the rest of the fleet served the new ones, until
some other write came (with ``wait=1`` and a replica down, every write of that process
landed everywhere but there). It now takes it like any
follower while the store holds it. Real redis-server, no replica: no write is ever
acknowledged."""

from __future__ import annotations

import pytest

from cfgcore.dynamic_config import DynamicConfigurationManager
from cfgcore.errors import ConfigError
from tests.redis_server import wait_for

USER = {"user_id": "u1"}


@pytest.fixture
def managers(tmp_path):
    opened: list[DynamicConfigurationManager] = []

    def open_(url: str) -> DynamicConfigurationManager:
        manager = DynamicConfigurationManager(store=url, log_exposures=False)
        opened.append(manager)
        return manager

    yield open_
    for manager in opened:
        manager.close()


def test_a_write_no_replica_acknowledged_is_served_by_its_writer_as_by_the_fleet(
    redis_server, managers, tmp_path
):
    base = redis_server.url + "?namespace=short&poll=0.1"
    writer = managers(base + f"&wait=1&wait_timeout=20&cache={tmp_path}/w.msgpack")
    other = managers(base + f"&cache={tmp_path}/o.msgpack")
    changes = []
    writer.register_change_listener(changes.append)
    with pytest.raises(ConfigError, match="acknowledged by 0 of 1 replicas"):
        writer.set_feature_flag("short_flag", True)
    stored = int(redis_server.client().hget("{short}:flags", "version"))
    wait_for(lambda: other.is_feature_enabled("short_flag", USER), timeout=5)
    wait_for(lambda: writer.is_feature_enabled("short_flag", USER), timeout=5)
    assert writer._live.document.version == stored == other._live.document.version
    # (listeners hear it from the follower's thread, after the swap)
    wait_for(lambda: [e for e in changes if e.config_path == "flags.short_flag"])
    change = next(e for e in changes if e.config_path == "flags.short_flag")
    assert change.source == "redis" and change.store_version == stored
    # Its version stays the floor: the next write is numbered above it.
    with pytest.raises(ConfigError, match="acknowledged by 0 of 1 replicas"):
        writer.set_feature_flag("short_flag", False)
    assert int(redis_server.client().hget("{short}:flags", "version")) == stored + 1
    wait_for(lambda: not writer.is_feature_enabled("short_flag", USER), timeout=5)
    assert writer._live.document.version == stored + 1
