"""A version number reused for another document after a failover, seventh audit.

A failover to a replica that missed the last write (version 11, written without
``wait=1``, taken by the followers through pub/sub) leaves the store at version 10.
A writer that had not seen 11 (another process, or one whose follower had not caught
up) computes its change on 10 and stores it as version 11: another document under the
same number, of the same epoch. Every poll and announcement compared the version (and
epoch) only, so the followers that took the lost 11 answered "unchanged" forever (until
the next write) while the writer and every process started since served the new 11:
the fleet split, each half sure it was current. A poll (and the read at every
reconnect) now compares the checksum of the document served too, and a follower takes
the store's document under the version it serves (and makes it its cache file's), so
the fleet converges on what Redis holds.

Real redis-server; the failover's lost write is reproduced by putting back the key as
the replica held it (DUMP before the write, RESTORE after), which publishes nothing, as
a failover does not.
"""

from __future__ import annotations

import msgspec

from cfgcore.runtime.flags import LiveFlags
from cfgcore.runtime.redis_store import RedisFlagStore
from cfgcore.snapshot import Flag
from tests.redis_server import wait_for


def _set(name: str, default: str):
    return lambda s: msgspec.structs.replace(
        s, flags={**s.flags, name: Flag(default=default, variants={"on": True, "off": False})}
    )


def test_a_reused_version_reaches_the_followers_that_served_the_lost_one(redis_server, tmp_path):
    url = f"{redis_server.url}?namespace=reuse"
    client = redis_server.client()
    a = RedisFlagStore(f"{url}&cache={tmp_path / 'a.msgpack'}")
    follower = RedisFlagStore(f"{url}&cache={tmp_path / 'f.msgpack'}")
    b = RedisFlagStore(f"{url}&cache={tmp_path / 'b.msgpack'}")
    live = None
    try:
        a.update(_set("checkout", "off"))  # version 1, everyone's
        live = LiveFlags(follower)
        wait_for(lambda: follower.connected and follower.version == 1)
        assert b.read().version == 1
        replica = client.dump("{reuse}:flags")  # what the replica holds
        a.update(_set("checkout", "on"))  # version 2: taken by the follower, then lost
        wait_for(lambda: live.engine.is_enabled("checkout", {}))
        client.restore("{reuse}:flags", 0, replica, replace=True)  # the failover
        _, new = b.update(_set("search", "on"))  # b never saw 2: it writes "2" again
        assert new.version == 2
        # The follower hears "2" announced, the version it serves: no news by number.
        # Its next poll or reconnect reads the store (here a reconnect, so that no poll
        # can land between the failover and b's write and raise the floor first).
        client.client_kill_filter(_type="pubsub")
        # The fleet converges on the store's document: checkout off, search on.
        wait_for(lambda: live.engine.is_enabled("search", {}), timeout=10)
        assert not live.engine.is_enabled("checkout", {})
        assert live.document.checksum == new.checksum
        # and its cache file holds it: a restart with Redis down serves the same
        wait_for(lambda: follower.read_cache().checksum == new.checksum, timeout=10)
    finally:
        if live is not None:
            live.close()
        for s in (a, follower, b):
            s.close()


def test_a_poll_of_an_unchanged_store_still_costs_no_download(redis_server, tmp_path):
    url = f"{redis_server.url}?namespace=quiet&poll=0.2&cache={tmp_path / 'c.msgpack'}"
    with RedisFlagStore(url) as writer:
        writer.update(_set("checkout", "off"))
    follower = RedisFlagStore(url)
    try:
        seen: list[int] = []
        follower.read()
        follower.watch(lambda doc: seen.append(doc.version))
        wait_for(lambda: follower.connected and follower._cached == 1)
        raw = follower._read_raw(
            follower._follow_client, 1, follower._epoch, served=follower._served_sum
        )
        assert raw[6] == b"unchanged" and raw[3] is None
        assert seen == []
    finally:
        follower.close()
