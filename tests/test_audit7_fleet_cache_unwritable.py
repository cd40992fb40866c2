"""A cache file that cannot be written (a read-only state directory, a full disk),
seventh audit.

Containers often run with a read-only root filesystem, where the default state
directory cannot be created. Following kept working, but every poll (30 s by default,
forever) logged the same WARNING and, because the cache file never became current,
downloaded and decoded the whole document again to retry the write: the "few bytes" a
poll costs became the whole document for every process of such a fleet. Now the
failure is logged once (and its end), polls stay cheap, and the write is retried with
the next version or after ``CACHE_RETRY_SECONDS``.

Real redis-server; the cache path lies under a regular file, so no directory can be made
there (as on a read-only filesystem, whatever user runs the test).
"""

from __future__ import annotations

import logging

import msgspec

from cfgcore.runtime import redis_follow
from cfgcore.runtime.redis_store import RedisFlagStore
from cfgcore.snapshot import Flag, Snapshot
from tests.redis_server import wait_for


def _big(n: int) -> Snapshot:
    flags = {f"flag_{i:05d}": Flag(default="on", metadata={"pad": "x" * 200}) for i in range(n)}
    return Snapshot(flags=flags)


def _polls(store: RedisFlagStore, n: int) -> None:
    """Wait until the follower has read the store ``n`` more times."""
    for _ in range(n):
        before = store.last_contact
        wait_for(lambda before=before: store.last_contact > before, timeout=10)


def test_an_unwritable_cache_file_is_reported_once_and_polls_stay_cheap(
    redis_server, tmp_path, caplog
):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    url = f"{redis_server.url}?namespace=rofs&poll=0.1&cache={blocker / 'fleet' / 'c.msgpack'}"
    with RedisFlagStore(redis_server.url + "?namespace=rofs&cache=off") as writer:
        _, doc = writer.update(lambda _: _big(300))
    size = len(doc.data)
    assert size > 60_000
    client = redis_server.client()
    follower = RedisFlagStore(url)
    try:
        with caplog.at_level(logging.DEBUG, logger="cfgcore.fleet"):
            follower.read()
            follower.watch(lambda d: None)
            wait_for(lambda: follower.connected)
            _polls(follower, 2)
            sent = client.info("stats")["total_net_output_bytes"]
            _polls(follower, 8)
            sent = client.info("stats")["total_net_output_bytes"] - sent
        # eight polls answered "unchanged": far less than one document
        assert sent < size, f"{sent} bytes sent for 8 polls of a {size}-byte document"
        warnings = [
            r for r in caplog.records
            if r.levelno >= logging.WARNING and "cannot write the cache file" in r.getMessage()
        ]  # fmt: skip
        assert len(warnings) == 1 and str(blocker) in warnings[0].getMessage()
        assert follower.version == doc.version  # and it follows as before
    finally:
        follower.close()


def test_the_cache_file_is_written_once_the_directory_is_writable_again(
    redis_server, tmp_path, monkeypatch, caplog
):
    monkeypatch.setattr(redis_follow, "CACHE_RETRY_SECONDS", 0.3)
    blocker = tmp_path / "state"
    blocker.write_text("")  # a file where the directory should be
    cache = blocker / "c.msgpack"
    url = f"{redis_server.url}?namespace=rofs2&poll=0.1&cache={cache}"
    with RedisFlagStore(redis_server.url + "?namespace=rofs2&cache=off") as writer:
        _, doc = writer.update(lambda _: _big(3))
    follower = RedisFlagStore(url)
    try:
        follower.read()
        follower.watch(lambda d: None)
        wait_for(lambda: follower._cache_failed is not None)
        blocker.unlink()  # the disk is writable again: retried within a few polls
        with caplog.at_level(logging.WARNING, logger="cfgcore.fleet"):
            wait_for(lambda: cache.exists(), timeout=10)
            wait_for(lambda: "written again" in caplog.text, timeout=10)
        assert follower.read_cache().checksum == doc.checksum
        with RedisFlagStore(redis_server.url + "?namespace=rofs2&cache=off") as writer:
            _, new = writer.update(
                lambda s: msgspec.structs.replace(s, flags={**s.flags, "n": Flag(default="on")})
            )
        wait_for(lambda: follower.read_cache().version == new.version, timeout=10)
    finally:
        follower.close()
