"""A Redis store's ``last_error`` after every step of a sequence of problems.

``last_error`` says the problem reported last of those still standing: a write's
failure until a later write succeeds or a document is read from Redis; Redis
unreachable (a read's, the follower's) until a read from Redis succeeds, when a problem
standing before is said again (the follower's own while it still reconnects); a
rejection until a newer problem replaces it, and after an outage said over it only
while what it reported still stands. The tables drive the store's problem slots as its
code paths do; the last two tests cause the events with a real redis-server."""

from __future__ import annotations

import logging
import time

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cfgcore.errors import ConfigError
from cfgcore.runtime.redis_store import RedisFlagStore
from cfgcore.snapshot import Flag
from tests.redis_server import RedisServer
from tests.waiting import wait_for

WRITE, OUTAGE, LOST = "write failed", "Redis unreachable, serving the cache file", "connection lost"


def _refused(store, n):
    store._reported = (n, "checksum")  # (what the follower records: reported once)
    return store._raise_problem("rejection", f"rejected version {n}")


def _listener_fails(store, n):
    store._failing = (n, "checksum")
    return store._raise_problem("rejection", f"version {n} not applied, retrying")


def _listener_applies(store, n):
    store._failing = None
    store._clear_problem("rejection")


def _taken(store, n):  # a newer document taken: the refusal reported no longer stands
    store._reported = None


# Each event as the store's code path reports it (n: a number to tell messages apart).
EVENTS = {
    "write fails": lambda s, n: s._raise_problem("write", f"{WRITE}: {n}"),
    "write ok": lambda s, n: s._clear_problem("write", "outage"),
    "read ok": lambda s, n: s._clear_problem("write", "outage"),
    "read down": lambda s, n: s._raise_problem("outage", f"{OUTAGE}: {n}"),
    "follower lost": lambda s, n: s._raise_problem("follow", f"{LOST}: {n}"),
    "follower reads": lambda s, n: s._clear_problem("outage", "follow"),
    "refused": _refused,
    "one-off": lambda s, n: s._raise_problem("rejection", f"WAIT failed: {n}"),
    "listener fails": _listener_fails,
    "listener applies": _listener_applies,
    "taken": _taken,
    "fork": lambda s, n: s._after_fork_in_child(),
}

# (event, what last_error says after it: the step whose message, or None)
TABLE = {
    "a write's failure ends with a write": [("write fails", 0), ("write ok", None)],
    "an outage ends with a read, and the write before it too": [
        ("write fails", 0),
        ("read down", 1),
        ("read ok", None),
    ],
    "a write's failure stands past the follower's reconnection": [
        ("write fails", 0),
        ("follower lost", 1),
        ("follower reads", 0),
        ("write ok", None),
    ],
    "a refusal still reported is said again after an outage": [
        ("refused", 0),
        ("read down", 1),
        ("follower reads", 0),
    ],
    "a refusal no longer reported is not": [
        ("refused", 0),
        ("read down", 1),
        ("taken", 1),
        ("read ok", None),
    ],
    "a one-off is not said again after an outage": [
        ("one-off", 0),
        ("read down", 1),
        ("read ok", None),
    ],
    "a listener's failure still retried is said again": [
        ("listener fails", 0),
        ("read down", 1),
        ("follower reads", 0),
        ("listener applies", None),
    ],
    "the follower's loss outlives a read's outage": [
        ("follower lost", 0),
        ("read down", 1),
        ("read ok", 0),
        ("follower reads", None),
    ],
    "then the refusal before both is said again": [
        ("refused", 0),
        ("follower lost", 1),
        ("read down", 2),
        ("read ok", 1),
        ("follower reads", 0),
    ],
    "a refusal replaces a write's failure": [
        ("write fails", 0),
        ("refused", 1),
        ("write ok", 1),
    ],
    "and a write's failure a refusal": [("refused", 0), ("write fails", 1), ("write ok", None)],
    "a newer problem is said over the follower's loss": [
        ("follower lost", 0),
        ("refused", 1),
        ("read ok", 1),
        ("follower reads", 1),
    ],
    "a write's failure and its end while the follower reconnects": [
        ("follower lost", 0),
        ("write fails", 1),
        ("write ok", 0),
        ("follower reads", None),
    ],
    "a write's failure a read ended stays ended after the outage": [
        ("refused", 0),
        ("write fails", 1),
        ("read down", 2),
        ("read ok", None),
        ("follower reads", None),
    ],
    "after fork the parent's follower's loss ends with a read": [
        ("refused", 0),
        ("follower lost", 1),
        ("fork", 1),
        ("read ok", 0),
    ],
}


@pytest.fixture
def store():
    # (never connects: only its problem slots are driven)
    with RedisFlagStore("redis://127.0.0.1:1/0?namespace=seq&cache=off") as store:
        yield store


@pytest.mark.parametrize("steps", list(TABLE.values()), ids=list(TABLE))
def test_last_error_after_each_step(store, steps):
    said = []
    for n, (event, expected) in enumerate(steps):
        said.append(EVENTS[event](store, n))
        want = None if expected is None else said[expected]
        assert store.last_error == want, (n, event)


def test_ending_a_write_failure_seen_earlier_leaves_a_newer_one(store):
    """The follower ends the write failure it saw before taking a document, and only
    that one: a write that failed on another thread meanwhile is still said (the check
    and the clearing are one step under the slots' lock)."""
    earlier = store._raise_problem("write", f"{WRITE}: 1")
    newer = store._raise_problem("write", f"{WRITE}: 2")
    store._clear_problem("write", only=earlier)
    assert store.last_error == newer
    store._clear_problem("write", only=newer)
    assert store.last_error is None


@given(st.lists(st.sampled_from(sorted(EVENTS)), max_size=25))
def test_what_last_error_says_still_stands(events):
    """Whatever happened before: the newest problem is said; a write's failure only
    while no write or read from Redis ended it (nor a newer problem replaced it); Redis
    unreachable only while no read from Redis succeeded; the follower's loss only
    until it reads again; and nothing else while the follower has not."""
    with RedisFlagStore("redis://127.0.0.1:1/0?namespace=seq&cache=off") as store:
        # By the rules: the write's failure and the follower's loss standing now, and
        # the outages a read from Redis has not ended (after fork: the parent's loss too).
        write = lost = None
        outages: set[str | None] = set()
        for n, event in enumerate(events):
            message = EVENTS[event](store, n)
            said = store.last_error
            if message is not None:
                assert said == message, event
            if event in ("write ok", "read ok", "refused", "one-off", "listener fails"):
                write = None
            if event in ("read ok", "follower reads"):
                outages.clear()
            if event in ("follower reads", "fork"):
                outages |= {lost} if event == "fork" else set()
                lost = None
            if event == "write fails":
                write = message
            elif event == "read down":
                outages = {message}
            elif event == "follower lost":
                lost = message
            if str(said).startswith(WRITE):
                assert said == write, event
            if str(said).startswith((OUTAGE, LOST)):
                assert said == lost or said in outages, event
            if lost is not None and event in ("read ok", "write ok"):
                assert said is not None, event  # (not followed: the store says why)


# -- with a real redis-server ------------------------------------------------------------

DURABLE = ("--appendonly", "yes", "--appendfsync", "always")  # a restart keeps the data


@pytest.fixture(autouse=True)
def _quiet():
    logging.getLogger("cfgcore.fleet").setLevel(logging.CRITICAL)
    yield
    logging.getLogger("cfgcore.fleet").setLevel(logging.NOTSET)


def _add(name):
    def change(snap):
        return msgspec.structs.replace(
            snap, flags={**snap.flags, name: Flag(variants={"on": True}, default="on")}
        )

    return change


def test_a_write_ended_by_a_read_is_not_said_again_after_the_outage(redis_binary, tmp_path):
    """A version the listener refuses stays reported; Redis goes down: a write fails, a
    read serves the cache file. Redis is back, but the follower may not subscribe yet
    (its user's channels are granted at run time, and a restart takes them back): a
    read ends the outage and the write's failure. When the follower follows again, the
    write's failure is not said again."""
    user = ("--user", "u", "on", ">pw", "~*", "+@all", "resetchannels")
    server = RedisServer(str(tmp_path / "redis"), args=(*DURABLE, *user)).start()
    try:
        url = server.url.replace("redis://", "redis://u:pw@")
        url += f"?namespace=s1&backoff_max=0.2&cache={tmp_path / 'c.msgpack'}"

        def grant_channels():
            server.client().execute_command("ACL", "SETUSER", "u", "allchannels")

        def listener(doc):
            if "bad" in doc.snapshot.flags:
                raise ConfigError("flag 'bad' refused", file="test")

        grant_channels()
        with RedisFlagStore(url) as store, RedisFlagStore(url) as other:
            store.update(_add("a"))
            store.watch(listener)
            assert wait_for(lambda: store.connected)
            other.update(_add("bad"))
            assert wait_for(lambda: "flag 'bad' refused" in str(store.last_error))
            server.kill()
            assert wait_for(lambda: str(store.last_error).startswith(LOST))
            with pytest.raises(ConfigError, match="cannot write"):
                store.update(_add("b"))
            assert str(store.last_error).startswith(WRITE)
            store.read()
            assert str(store.last_error).startswith(OUTAGE)
            server.start()  # (channels not granted: the follower cannot follow)
            assert store.read().version == 2
            assert str(store.last_error).startswith(LOST), store.last_error
            grant_channels()
            assert wait_for(lambda: store.connected)
            assert not str(store.last_error).startswith(WRITE), store.last_error
    finally:
        server.stop()


def test_the_followers_problem_is_said_after_a_write_failure_ends(redis_binary, tmp_path):
    """The follower cannot subscribe (its user may not use channels) while reads and
    writes work: a write that failed meanwhile (Redis down) and a later one that
    succeeded leave the store saying why it is not followed, not nothing."""
    user = ("--user", "nosub", "on", ">pw", "~*", "+@all", "resetchannels")
    server = RedisServer(str(tmp_path / "redis"), args=(*DURABLE, *user)).start()
    try:
        url = server.url.replace("redis://", "redis://nosub:pw@") + (
            f"?namespace=s2&backoff_max=0.2&cache={tmp_path / 'cache.msgpack'}"
        )
        with RedisFlagStore(url) as store:
            store.update(_add("a"))
            store.watch(lambda doc: None)
            assert wait_for(lambda: "no permissions" in str(store.last_error)), store.last_error
            following = store.last_error
            server.kill()
            with pytest.raises(ConfigError, match="cannot write"):
                store.update(_add("b"))
            assert str(store.last_error).startswith(WRITE)
            server.start()
            store.update(_add("c"))
            assert not store.connected
            assert store.last_error == following
    finally:
        server.stop()


def test_a_refused_subscription_never_passes_for_a_connection(redis_binary, tmp_path):
    """A user without channel permissions: the server refuses SUBSCRIBE in a reply that
    is read after subscribe() returns. Between the retries the store must not say it is
    connected, nor drop the follower's problem (it read the key in that moment)."""
    user = ("--user", "nosub", "on", ">pw", "~*", "+@all", "resetchannels")
    server = RedisServer(str(tmp_path / "redis"), args=user).start()
    try:
        url = server.url.replace("redis://", "redis://nosub:pw@") + "?namespace=s3&backoff_max=0.02"
        with RedisFlagStore(url) as store:
            store.update(_add("a"))
            store.watch(lambda doc: None)
            assert wait_for(lambda: "no permissions" in str(store.last_error)), store.last_error
            reconnects = store.stats["reconnects"]
            seen, deadline = set(), time.monotonic() + 60
            while store.stats["reconnects"] < reconnects + 20 and time.monotonic() < deadline:
                seen.add((store.connected, "no permissions" in str(store.last_error)))
            assert seen == {(False, True)}
    finally:
        server.stop()
