"""Sentinel failover with real servers: a primary, two replicas and one redis-sentinel.

Writers and followers reach the primary through ``redis+sentinel://``; after
``SENTINEL FAILOVER`` they move to the new primary, and no follower ever moves to an
older version (``wait=1``: a write returns once a replica has it).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Iterator

import msgspec
import pytest
import redis

from cfgcore.errors import ConfigError
from cfgcore.experiments.abtest import GUARDRAIL_STOPPED_AT
from cfgcore.runtime.redis_store import RedisFlagStore
from cfgcore.runtime.signing import FleetKeys, generate_signing_pair
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


@contextlib.contextmanager
def _sentinel_group(tmp_path) -> Iterator[tuple[RedisServer, list[RedisServer], Sentinel]]:
    """A primary, two replicas and one redis-sentinel watching them, all real servers."""
    if SENTINEL is None:
        pytest.skip("redis-sentinel is not installed")
    primary = RedisServer(str(tmp_path / "a")).start()
    # Two replicas: after the failover the new primary has one at once (the other is
    # re-pointed by Sentinel), so writes with wait=1 go through without waiting for
    # the old primary to rejoin.
    replicas = [
        RedisServer(str(tmp_path / n), args=("--replicaof", "127.0.0.1", str(primary.port))).start()
        for n in "bc"
    ]
    for r in replicas:
        wait_for(lambda r=r: r.client().info("replication")["master_link_status"] == "up")
    sentinel = Sentinel(str(tmp_path / "s"), primary, replicas=2).start()
    try:
        yield primary, replicas, sentinel
    finally:
        sentinel.stop()
        for server in (*reversed(replicas), primary):
            server.stop()


def _replicated(primary: RedisServer, replicas: Iterable[RedisServer]) -> None:
    """Wait until every replica has applied all the primary wrote. A write with wait=1
    is acknowledged by one replica; Sentinel may promote the other, which on a loaded
    machine can lag every write made (the store then rightly refuses: writes lost in a
    failover). The failovers here are to lose none."""
    offset = primary.client().info("replication")["master_repl_offset"]
    for r in replicas:
        wait_for(lambda r=r: r.client().info("replication")["slave_repl_offset"] >= offset)


def _fail_over(primary: RedisServer, sentinel: Sentinel) -> None:
    sentinel.client().execute_command("SENTINEL", "FAILOVER", sentinel.name)
    wait_for(lambda: sentinel.primary_port() != primary.port, timeout=30)


def _url(sentinel: Sentinel, query: str) -> str:
    return f"redis+sentinel://127.0.0.1:{sentinel.port}/{sentinel.name}/0?{query}"


def test_failover_moves_writers_and_followers_and_versions_never_go_back(redis_binary, tmp_path):
    with _sentinel_group(tmp_path) as (primary, (replica, other), sentinel):
        _failover_moves_writers_and_followers(primary, replica, other, sentinel)


def _failover_moves_writers_and_followers(primary, replica, other, sentinel) -> None:
    stores: list[RedisFlagStore] = []
    try:
        # (a replica's acknowledgement waited for up to 2 s, as below: on a loaded machine
        # one took over 200 ms, the write was refused and retried, its number skipped)
        url = _url(sentinel, "namespace=f&wait=1&wait_timeout=2000&cache=off")
        writer, follower = RedisFlagStore(url), RedisFlagStore(url + "&poll=0.2")
        stores += [writer, follower]
        delivered: list[int] = []
        follower.watch(lambda doc: delivered.append(doc.version))
        wait_for(lambda: follower.connected)
        before = [write_until_accepted(writer, f"before{i}") for i in range(5)]
        assert before == [1, 2, 3, 4, 5]  # a replica acknowledged each one at once
        wait_for(lambda: follower.version == 5)
        _replicated(primary, (replica, other))
        _fail_over(primary, sentinel)
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


def test_the_signed_stop_register_across_a_failover(redis_binary, tmp_path):
    """The fleet's guardrail stop register through Sentinel: signed entries written on
    the primary are read back (checked) through another connection, survive the
    failover (replicated with the document's namespace) and order as before on the new
    primary: a later entry replaces, an earlier one does not."""
    signing, verify = generate_signing_pair("k1")
    keys = FleetKeys(signing, [verify])
    rec = {"status": "stopped", GUARDRAIL_STOPPED_AT: 10.0}
    with _sentinel_group(tmp_path) as (primary, replicas, sentinel):
        # (a replica's acknowledgement waited for up to 2 s: the first write is made
        # once and must count, and a loaded CI machine once took over 200 ms)
        url = _url(sentinel, "namespace=g&wait=1&wait_timeout=2000&cache=off")
        with RedisFlagStore(url, keys=keys) as writer, RedisFlagStore(url, keys=keys) as reader:
            assert writer.write_stop_register({"t": (10.0, rec)}) == 1
            assert reader.read_stop_register() == {"t": (10.0, rec)}
            _replicated(primary, replicas)
            _fail_over(primary, sentinel)
            later = {**rec, GUARDRAIL_STOPPED_AT: 11.0}

            def written() -> int:
                try:
                    return writer.write_stop_register({"t": (11.0, later), "u": (3.0, None)})
                except (ConfigError, redis.RedisError):  # until the new primary answers
                    return -1

            # (a write the new primary took but no replica acknowledged in time raised:
            # written again, it changes nothing and returns 0)
            wait_for(lambda: written() >= 0, timeout=30)
            assert writer.write_stop_register({"t": (10.5, None)}) == 0  # earlier: kept
            wait_for(lambda: reader.read_stop_register() == {"t": (11.0, later), "u": (3.0, None)})
            new_primary = next(r for r in replicas if r.port == sentinel.primary_port())
            assert set(new_primary.client().hgetall(writer.stops_key)) == {b"t", b"u"}
        # a reader that trusts another key passes over every entry
        with RedisFlagStore(url, keys=FleetKeys(None, [generate_signing_pair("k1")[1]])) as other:
            assert other.read_stop_register() == {}
