"""Messages published on a store's change channel without end (whoever can publish on
Redis: junk, or announcements of nothing new), against a real redis-server.

The follower drained every message queued before it read the key once, and polled only
when no message came within a second: a flood kept it draining, so a write made meanwhile
was never taken (the process served the old flags for as long as the flood lasted), and a
steady trickle starved its polls (the checks that run with them, such as writing this
host's guardrail stop register entries back, and the failover check). It now reads the key
after at most a bounded number of queued messages, and polls on time whatever arrives."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from cfgcore.runtime.redis_store import RedisFlagStore
from cfgcore.snapshot import Flag, Snapshot
from tests.waiting import wait_for


def add(name: str):
    def change(snap: Snapshot) -> Snapshot:
        return Snapshot(flags={**snap.flags, name: Flag(default="on")}, segments=snap.segments)

    return change


@pytest.fixture
def url(redis_server):
    return redis_server.url + "?namespace=flood&cache=off"


@contextmanager
def flooding(redis_server, channel: str, message: bytes) -> Iterator[None]:
    """A thread publishing ``message`` on ``channel`` as fast as Redis takes it."""
    stop = threading.Event()

    def flood() -> None:
        client = redis_server.client()
        pipe = client.pipeline(transaction=False)
        while not stop.is_set():
            for _ in range(5000):
                pipe.publish(channel, message)
            pipe.execute()

    thread = threading.Thread(target=flood, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def behind(redis_server) -> int:
    """Bytes Redis holds for its subscribers, not yet read (their output buffers)."""
    clients = redis_server.client().client_list()
    return max((int(c["omem"]) for c in clients if int(c.get("sub", 0))), default=0)


def test_a_write_is_taken_while_junk_floods_the_channel(redis_server, url, stores):
    writer = stores(url)
    writer.update(add("a"))
    follower = stores(url)
    follower.read()
    taken: list[int] = []
    follower.watch(lambda doc: taken.append(doc.version))
    assert wait_for(lambda: follower.connected)
    with flooding(redis_server, follower.channel, b"junk"):
        # The follower is behind the flood (messages wait for it in Redis): it would
        # not find the channel empty again while the flood lasts.
        assert wait_for(lambda: behind(redis_server) > 1 << 18)
        writer.update(add("b"))
        assert wait_for(lambda: follower.version == 2), follower.stats
    assert taken == [2]
    assert follower.last_error is None


def test_polls_run_while_messages_keep_coming(redis_server, stores):
    """Announcements of a version already served are not read for; the polls still
    run on time (the key is read, the poll checks run), and take a write made meanwhile."""
    url = redis_server.url + "?namespace=flood&cache=off&poll=0.2"
    store: RedisFlagStore = stores(url)
    store.update(add("a"))
    store.read()
    polls: list[int] = []
    store.add_poll_check(lambda: polls.append(store.version))
    store.watch(lambda doc: None)
    assert wait_for(lambda: store.connected and polls)
    with flooding(redis_server, store.channel, b"1 0000"):
        seen = len(polls)
        assert wait_for(lambda: len(polls) >= seen + 2), len(polls)
        stores(url).update(add("b"))
        assert wait_for(lambda: 2 in polls), polls[-5:]
