"""Fleet store, second audit: what a follower costs Redis when nothing changes. A poll,
or an announcement that brings nothing new (a lost message replayed, a spoofed one),
must not send the whole document again: at 10,000 processes polling a 17 KB document
every 30 s that alone was 5.6 MB/s out of Redis. Measured with the real server's own
counters (INFO stats, commandstats), not with time."""

from __future__ import annotations

import msgspec

from cfgcore.runtime.redis_store import RedisFlagStore
from cfgcore.snapshot import Flag
from tests.redis_server import wait_for


def _big(snap):
    flags = {f"flag_{i}": Flag(default="on", description="d" * 400) for i in range(600)}
    return msgspec.structs.replace(snap, flags=flags)


def _counters(r):
    sent = r.info("stats")["total_net_output_bytes"]
    reads = r.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0)
    return sent, reads


def test_polls_and_empty_announcements_do_not_resend_the_document(redis_server, tmp_path):
    url = redis_server.url + f"?namespace=pl&poll=0.05&cache={tmp_path / 'c.msgpack'}"
    with RedisFlagStore(url) as writer:
        writer.update(_big)
    r = redis_server.client()
    size = r.hstrlen("{pl}:flags", "data")
    assert size > 200_000
    follower = RedisFlagStore(url)
    try:
        got: list = []
        follower.read()
        follower.watch(got.append)
        assert wait_for(lambda: follower.connected)
        assert wait_for(lambda: (tmp_path / "c.msgpack").exists())  # the cache has it
        sent0, reads0 = _counters(r)
        for _ in range(20):  # announcements of versions that are not there
            r.publish("{pl}:flags:changes", "999 spoofed")
        # polls and announcements (counted sparingly: INFO's own replies count as sent)
        assert wait_for(lambda: _counters(r)[1] >= reads0 + 20, every=0.25)
        sent1, reads1 = _counters(r)
        # all those reads together sent less than half of one document (each sent the
        # whole document before)
        assert reads1 - reads0 >= 20 and sent1 - sent0 < size // 2
        assert got == [] and follower.version == 1
        # a real change still comes with its document
        with RedisFlagStore(url) as writer:
            writer.update(lambda s: msgspec.structs.replace(s, flags={"only": Flag(default="on")}))
        assert wait_for(lambda: got and set(got[-1].snapshot.flags) == {"only"})
    finally:
        follower.close()
