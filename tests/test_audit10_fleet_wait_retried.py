"""A write with ``wait=1`` reported acknowledged while no replica held it, tenth audit.

``WAIT`` counts the replicas that hold what its own connection wrote last. When it
outlasted the connection's ``socket_timeout`` (a ``wait_timeout`` at or above it, or
``wait_timeout=0``, which Redis takes for "forever"), redis-py sent it again on a new
connection, which had written nothing: every connected replica counted at once, so a
write that no replica held (the replica stalled, its link not yet timed out) was
reported acknowledged, and lost in the failover ``wait=1`` is there to survive. WAIT now
follows a write of its own on the same connection (sent again with it), so whichever
connection answers, it counts the replicas that hold the document.

Real redis-server and replica; the replica is stalled with SIGSTOP.
"""

from __future__ import annotations

import os
import signal

import pytest

from cfgcore.errors import ConfigError
from cfgcore.runtime.redis_store import RedisFlagStore
from tests.fleet_helpers import add, quiet_fleet  # noqa: F401 - autouse fixture
from tests.redis_server import RedisServer, wait_for


@pytest.fixture
def replica(redis_server, tmp_path):
    server = RedisServer(str(tmp_path / "replica")).start()
    server.client().replicaof("127.0.0.1", redis_server.port)
    primary = redis_server.client()
    wait_for(lambda: primary.info("replication").get("slave0", {}).get("state") == "online")
    yield server
    server.stop()


def _acknowledged(store, name):
    """The version of a write the replica acknowledged. A replica slower than
    socket_timeout (a loaded machine) leaves a write unacknowledged, refused as it
    should be: written again, under another name, until one is."""
    for i in range(20):
        try:
            return store.update(add(f"{name}{i}"))[1].version
        except ConfigError as exc:
            assert "replicas" in str(exc), exc
    pytest.fail("no write was acknowledged by the running replica in 20 tries")


@pytest.mark.parametrize("wait_timeout", [0, 1000])
def test_a_write_no_replica_holds_is_not_reported_acknowledged(redis_server, replica, wait_timeout):
    url = (
        f"{redis_server.url}?namespace=stall&cache=off&wait=1"
        f"&wait_timeout={wait_timeout}&socket_timeout=0.3"
    )
    with RedisFlagStore(url) as store:
        first = _acknowledged(store, "a")  # the replica answers: acknowledged
        os.kill(replica.proc.pid, signal.SIGSTOP)
        try:
            with pytest.raises(ConfigError, match="acknowledged by 0 of 1 replicas"):
                store.update(add("b"))
        finally:
            os.kill(replica.proc.pid, signal.SIGCONT)
        # once the replica answers again, writes are acknowledged as before
        stalled = str(first + 1).encode()
        wait_for(lambda: replica.client().hget("{stall}:flags", "version") == stalled)
        assert _acknowledged(store, "c") > first + 1
