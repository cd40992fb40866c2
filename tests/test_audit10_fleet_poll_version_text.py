"""A version written with leading zeros made every poll download the document, tenth
audit.

Readers take a stored version written with leading zeros (``0002``, as another
program or a hand edit may write it: within the field's limit) as the number it
spells, so a process serving version 2 serves that document. The read script decided
whether a poll brings anything new by comparing the stored version with the one served
as text: ``0002`` was never ``2``, so every poll of every process downloaded and
decoded the whole document again (up to 64 MiB), without a word, for as long as it
stayed stored. It compares them as numbers now: such a poll costs a few bytes, as any
poll of an unchanged store does, and the next write is taken as usual.
"""

from __future__ import annotations

import time

from cfgcore.runtime.redis_store import RedisFlagStore
from tests.fleet_helpers import add, quiet_fleet  # noqa: F401 - autouse fixture
from tests.redis_server import monitored, reads_of, wait_for


def test_a_version_with_leading_zeros_is_not_downloaded_at_every_poll(redis_server, tmp_path):
    url = f"{redis_server.url}?namespace=zeros&poll=0.05&cache={tmp_path / 'c.msgpack'}"
    key = "{zeros}:flags"
    r = redis_server.client()
    with RedisFlagStore(url) as writer:
        writer.update(add("a"))
        writer.update(add("b"))
        follower = RedisFlagStore(url)
        try:
            delivered: list[int] = []
            follower.read()
            follower.watch(lambda doc: delivered.append(doc.version))
            wait_for(lambda: follower.connected and follower._cached == 2)
            r.hset(key, "version", "0002")
            time.sleep(0.2)  # (a poll or more: one that reads it)
            with monitored(redis_server) as commands:
                time.sleep(0.4)  # several polls
            assert reads_of(commands, key, "data") == []
            assert follower.version == 2 and follower.last_error is None
            assert delivered == []
            # and it is built on as version 2: the next write is taken
            _, new = writer.update(add("c"))
            assert new.version == 3
            wait_for(lambda: delivered == [3])
        finally:
            follower.close()
