"""A follower whose connection Redis drops again as soon as it is back backs off, as
the README says reconnects do (exponentially, up to ``backoff_max``). A successful
reconnect reset the backoff to 50 ms, so a connection dropped at once every time (a
flood of large messages on the change channel overflowing the subscriber's output
buffer, which Redis answers by closing it; a proxy that accepts and closes) reconnected
and re-read the key about every 50 ms for as long as it lasted: from every process of
the fleet at once, each cycle two WARNING lines. The backoff now starts over only after
a connection that stayed up for ``backoff_max``. Real redis-server."""

from __future__ import annotations

import threading
import time

from cfgcore.runtime.redis_follow import BACKOFF_MIN
from cfgcore.snapshot import Flag, Snapshot
from tests.redis_server import wait_for


def add(name: str):
    def change(snap: Snapshot) -> Snapshot:
        return Snapshot(flags={**snap.flags, name: Flag(default="on")}, segments=snap.segments)

    return change


def _most_reconnects(seconds: float, backoff_max: float) -> int:
    """The most reconnects a follower backing off from BACKOFF_MIN can make in
    ``seconds``: each wait is at least 0.8 of a delay that doubles from BACKOFF_MIN up
    to ``backoff_max``."""
    waited, delay, count = 0.0, BACKOFF_MIN, 0
    while waited <= seconds:
        waited += 0.8 * delay
        delay = min(delay * 2, backoff_max)
        count += 1
    return count


def test_a_connection_dropped_again_at_once_backs_off(redis_server, stores):
    url = redis_server.url + "?namespace=flap&cache=off&poll=0.2&backoff_max=1"
    admin = redis_server.client()
    # A subscriber past 16 KiB of unread messages is closed by Redis at once.
    admin.config_set("client-output-buffer-limit", "pubsub 16kb 8kb 1")
    store = stores(url)
    store.update(add("a"))
    store.read()
    store.watch(lambda doc: None)
    assert wait_for(lambda: store.connected)
    stop = threading.Event()

    def flood() -> None:
        client = redis_server.client()
        while not stop.is_set():
            client.publish(store.channel, b"1 " + b"x" * 64_000)
            time.sleep(0.002)

    thread = threading.Thread(target=flood, daemon=True)
    started = time.monotonic()
    thread.start()
    try:
        wait_for(lambda: store.stats["reconnects"] >= 1)
        time.sleep(1.5)
        lasted = time.monotonic() - started
        reconnects = store.stats["reconnects"]
    finally:
        stop.set()
        thread.join()
    # (with the backoff reset at each reconnect: one every ~60 ms, over 20 here)
    assert 1 <= reconnects <= _most_reconnects(lasted, 1.0), reconnects
    # Once the flood is over, it is back and takes what is written.
    stores(url).update(add("b"))
    assert wait_for(lambda: store.version == 2)
    # (the poll may take the write while the subscription still waits out its backoff)
    assert wait_for(lambda: store.connected)
