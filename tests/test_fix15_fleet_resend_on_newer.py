"""A write script sent again after its reply was lost, once another writer had written
on top of it, made its change a second time on that writer's document, fifteenth pass.

redis-py sends a command again on a new connection when the first one fails, and the
write scripts recognised their own write (its writer record) only while it was still
the stored document. Another writer's document stored on top between the lost reply
and the resend (a busy fleet, a reconnect that takes a socket timeout) hid it: the
resend found a conflict, so the change was made again on the newer document (a change
that is no plain assignment applied twice), a forced write (``cfgcore publish``)
silently replaced the other writer's document, and ``expected_version`` refused as
replaced a write that had been made. The scripts now keep the store's recent writes
(``{NS}:flags:writes``: a token of each write and the version it took, the newest
:data:`~cfgcore.runtime.redis_store.WRITES_KEPT`), written in the same step as the
document: a resend finds its write there and answers the version it took, writing
nothing; so does the check after a resend that failed too.

Real redis-server; the lost reply is a ConnectionError raised as the reply of the
write script is read, after the server ran it and another writer wrote on top.
"""

from __future__ import annotations

import msgspec
import pytest
import redis

from cfgcore.runtime.redis_store import (
    _PAIR,
    WRITES_KEPT,
    PublishedConfig,
    RedisConfigStore,
    RedisFlagStore,
)
from cfgcore.snapshot import Flag
from tests.fleet_helpers import quiet_fleet  # noqa: F401 - autouse fixture


def _bump(calls: list[int]):
    """A change that is no plain assignment: the flag ``n`` counts the changes made."""

    def change(snapshot):
        n = int(snapshot.flags["n"].default) if "n" in snapshot.flags else 0
        calls.append(n)
        return msgspec.structs.replace(
            snapshot, flags={**snapshot.flags, "n": Flag(default=str(n + 1))}
        )

    return change


def _lose_reply_then_other_writes(store, sha: str, other: RedisFlagStore, resend: bool = True):
    """The first run of the script ``sha`` through ``store``'s command client runs,
    ``other`` writes on top, and its reply is lost; the resend (redis-py's) goes
    through when ``resend``, else fails too. Returns the count of the runs sent."""
    client = store._client
    send = client._send_command_parse_response
    runs: list[int] = []

    def lossy(conn, command_name, *args, **options):
        if command_name == "EVALSHA" and args[1:2] == (sha,):
            runs.append(1)
            if len(runs) == 1:
                send(conn, command_name, *args, **options)
                other.update(_bump([]))  # on top of it
                raise redis.ConnectionError("Connection reset by peer (after the script ran)")
            if not resend:
                raise redis.ConnectionError("Connection refused (resend)")
        return send(conn, command_name, *args, **options)

    client._send_command_parse_response = lossy
    return runs


@pytest.mark.parametrize(
    "options",
    [{}, {"force": True}, {"expected_version": 1}, {"force": True, "expected_version": 1}],
    ids=["plain", "forced", "expected", "forced-expected"],
)
@pytest.mark.parametrize("resend", [True, False], ids=["resent", "resend-failed"])
def test_a_resent_write_another_writer_wrote_on_is_made_once(redis_server, options, resend):
    url = redis_server.url + "?namespace=ontop&cache=off"
    with RedisFlagStore(url) as store, RedisFlagStore(url) as other:
        store.update(_bump([]))  # version 1, n = 1
        runs = _lose_reply_then_other_writes(store, store._cas.sha, other, resend)
        calls: list[int] = []
        _, new = store.update(_bump(calls), **options)
        assert len(runs) == 2  # (sent again, or tried: the case at hand)
        assert calls == [1]  # made once
        assert new.version == 2
        # the other writer's document, on top of this one, stays: nothing replaced it
        stored = other.read()
        assert stored.version == 3 and stored.snapshot.flags["n"].default == "3"
        assert stored.writer["id"] != new.writer["id"]


def test_a_resent_publish_another_writer_wrote_on_is_made_once(redis_server):
    url = redis_server.url + "?namespace=ontoppair&cache=off"
    with (
        RedisConfigStore(url, "production") as config,
        RedisFlagStore(url) as flags,
        RedisFlagStore(url) as other,
    ):
        doc = PublishedConfig(environment="production", config={"n": 1})
        config.publish_with_flags(doc, flags, _bump([]))  # versions 1 and 1
        sha = config._client.register_script(_PAIR).sha
        runs = _lose_reply_then_other_writes(config, sha, other)
        calls: list[int] = []
        doc = PublishedConfig(environment="production", config={"n": 2})
        cnew, fnew = config.publish_with_flags(doc, flags, _bump(calls), expected_version=1)
        assert len(runs) == 2
        assert calls == [1]
        assert (cnew.version, fnew.version) == (2, 2)
        assert config.read().version == 2 and config.read().snapshot.config == {"n": 2}
        stored = other.read()
        assert stored.version == 3 and stored.snapshot.flags["n"].default == "3"


def test_the_recent_writes_are_bounded_and_a_write_not_among_them_is_not_taken_as_made(
    redis_server,
):
    """The record keeps the newest WRITES_KEPT writes; another key type there (by hand,
    another program) is replaced by the next write, not an error."""
    url = redis_server.url + "?namespace=kept&cache=off"
    r = redis_server.client()
    key = "{kept}:flags:writes"
    with RedisFlagStore(url) as store:
        r.set(key, "not a sorted set")
        store.update(_bump([]))
        assert r.type(key) == b"zset" and r.zcard(key) == 1
        r.zadd(key, {f"planted{i}": 0 for i in range(WRITES_KEPT + 10)})
        store.update(_bump([]))
        assert r.zcard(key) == WRITES_KEPT
        assert r.zscore(key, next(iter(r.zrevrange(key, 0, 0)))) == 2.0
        # a document whose writer the record does not know is another writer's: a
        # write computed on version 1 conflicts and is made again on version 2
        calls: list[int] = []

        def change(snapshot):
            calls.append(1)
            if len(calls) == 1:
                with RedisFlagStore(url) as other:
                    other.update(_bump([]))
            return _bump([])(snapshot)

        _, new = store.update(change)
        assert len(calls) == 2 and new.version == 4


def test_retire_deletes_the_recent_writes(redis_server):
    from cfgcore.runtime.redis_store import retire_namespace

    url = redis_server.url + "?namespace=retired&cache=off"
    with RedisFlagStore(url) as store:
        store.update(_bump([]))
    assert redis_server.client().exists("{retired}:flags:writes")
    assert b"{retired}:flags:writes" in retire_namespace(url)
    assert not redis_server.client().keys("{retired}*")
