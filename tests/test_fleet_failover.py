"""Sentinel failover with real servers: a primary, two replicas and one redis-sentinel.

Writers and followers reach the primary through ``redis+sentinel://``; after
``SENTINEL FAILOVER`` they move to the new primary, and no follower ever moves to an
older version (``wait=1``: a write returns once a replica has it).
"""

from __future__ import annotations

import time

import msgspec
import pytest

from cfgcore.errors import ConfigError
from cfgcore.runtime.redis_store import RedisFlagStore
from cfgcore.snapshot import Flag
from tests.redis_server import SENTINEL, RedisServer, Sentinel, wait_for


def add(name: str):
    return lambda s: msgspec.structs.replace(s, flags={**s.flags, name: Flag(default="on")})


def write_until_accepted(store: RedisFlagStore, name: str, timeout: float = 20.0) -> int:
    """A writer during a failover: the write is refused (never queued) until the new
    primary is reachable; the application retries, as it would for any write."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return store.update(add(name))[1].version
        except ConfigError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_failover_moves_writers_and_followers_and_versions_never_go_back(redis_binary, tmp_path):
    if SENTINEL is None:
        pytest.skip("redis-sentinel is not installed")
    primary = RedisServer(str(tmp_path / "a")).start()
    # Two replicas: after the failover the new primary has one at once (the other is
    # re-pointed by Sentinel), so writes with wait=1 go through without waiting for
    # the old primary to rejoin.
    replica, other = (
        RedisServer(str(tmp_path / n), args=("--replicaof", "127.0.0.1", str(primary.port))).start()
        for n in "bc"
    )
    for r in (replica, other):
        wait_for(lambda r=r: r.client().info("replication")["master_link_status"] == "up")
    sentinel = Sentinel(str(tmp_path / "s"), primary, replicas=2).start()
    stores: list[RedisFlagStore] = []
    try:
        url = f"redis+sentinel://127.0.0.1:{sentinel.port}/{sentinel.name}/0?namespace=f&wait=1&wait_timeout=200&cache=off"
        writer, follower = RedisFlagStore(url), RedisFlagStore(url + "&poll=0.2")
        stores += [writer, follower]
        delivered: list[int] = []
        follower.watch(lambda doc: delivered.append(doc.version))
        wait_for(lambda: follower.connected)
        before = [write_until_accepted(writer, f"before{i}") for i in range(5)]
        assert before == [1, 2, 3, 4, 5]  # a replica acknowledged each one at once
        wait_for(lambda: follower.version == 5)
        sentinel.client().execute_command("SENTINEL", "FAILOVER", sentinel.name)
        wait_for(lambda: sentinel.primary_port() != primary.port, timeout=30)
        new_primary = replica if sentinel.primary_port() == replica.port else other
        versions = [write_until_accepted(writer, f"after{i}") for i in range(5)]
        # Until the old primary is turned into a replica it accepts writes that no
        # replica acknowledges: those are refused (and retried), their numbers skipped.
        assert versions == sorted(set(versions)) and versions[0] > 5
        last = versions[-1]
        wait_for(lambda: follower.version == last, timeout=30)
        assert delivered == sorted(set(delivered)) and delivered[-1] == last
        assert new_primary.client().hget("{f}:flags", "version") == str(last).encode()
        doc = follower.read()
        assert set(doc.snapshot.flags) == {f"before{i}" for i in range(5)} | {
            f"after{i}" for i in range(5)
        }
    finally:
        for s in stores:
            s.close()
        sentinel.stop()
        for server in (other, replica, primary):
            server.stop()
