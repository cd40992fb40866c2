"""A start document the flag set refused (``served_instead``) is not downloaded again at
every poll.

When the live flag set refuses the document read at start (it would move a served A/B
test's users) and serves the cache file's instead, the store keeps that document out of
the cache file. The follower then saw a cache file behind the version it had read and
turned its quick poll off: every poll downloaded and decoded the whole document again,
for as long as the store held it (the cost c222563 removed for refused documents).
Measured with the real server's own counters (INFO stats, commandstats), not with time.
"""

from __future__ import annotations

from cfgcore.runtime.redis_store import RedisFlagStore
from cfgcore.snapshot import Flag
from tests.redis_server import wait_for
from tests.test_fix6_fleet_refused_reads import big, polls_cost

NS = "si"


def test_a_start_document_served_instead_is_not_read_at_every_poll(redis_server, tmp_path):
    r = redis_server.client()
    url = redis_server.url + f"?namespace={NS}"
    cache = tmp_path / "f.msgpack"
    with RedisFlagStore(url + f"&cache={cache}") as before:  # this host served version 1
        before.update(big("a"))
        before._write_cache(before.read())
    with RedisFlagStore(url + "&cache=off") as writer:  # another tool, while it was down
        writer.update(big("b"))
    size = r.hstrlen("{si}:flags", "data")

    store = RedisFlagStore(url + f"&poll=0.05&cache={cache}")
    docs: list = []
    try:
        doc = store.read()
        assert doc.version == 2
        store.served_instead(doc)  # what the live flag set does when it refuses it
        store.watch(docs.append)
        sent = polls_cost(r, polls=20)
        assert sent < size / 2, f"{sent:,} bytes sent over 20 polls of a {size:,}-byte document"
        assert store.read_cache().version == 1  # still kept out of the cache file
        # a newer document is still read, taken and cached
        with RedisFlagStore(url + "&cache=off") as writer:
            writer.update(lambda s: s.__class__(flags={"c": Flag(default="on")}))
        wait_for(lambda: docs and docs[-1].version == 3)
        wait_for(lambda: store.read_cache().version == 3)
    finally:
        store.close()
