"""A Redis without HELLO (before 6.0, or a compatible server that lacks it), fourth
audit. redis-py 8 opens every connection with HELLO 3 (RESP3) by default; such a server
answers "unknown command 'HELLO'", so every store looked unreachable ("Redis
unreachable (unknown command 'HELLO' ...)") depending only on the redis-py version
installed (the extra allows redis>=5). The store now asks for RESP2, which every
Redis speaks, on its clients and its Sentinel connections. Real redis-server with HELLO
disabled (rename-command), real follower."""

from __future__ import annotations

import msgspec
import pytest

from cfgcore.runtime.redis_store import RedisFlagStore
from cfgcore.snapshot import snapshot_from_dict
from tests.waiting import wait_for


def _set(value: str):
    def change(snapshot):
        one = snapshot_from_dict(
            {"version": 1, "flags": {"f": {"variants": {"v": value}, "default": "v"}}}
        )
        return msgspec.structs.replace(snapshot, flags={**snapshot.flags, **one.flags})

    return change


@pytest.fixture
def no_hello(redis_binary, tmp_path):
    from tests.redis_server import RedisServer

    server = RedisServer(str(tmp_path / "r"), args=("--rename-command", "HELLO", "")).start()
    yield server
    server.stop()


def test_a_server_without_hello_is_read_written_and_followed(no_hello, tmp_path):
    url = no_hello.url + f"?cache={tmp_path / 'cache.msgpack'}&poll=0.2"
    writer, follower = RedisFlagStore(url), RedisFlagStore(url)
    try:
        _, new = writer.update(_set("a"))
        assert new.version == 1
        assert follower.read().version == 1
        seen: list[int] = []
        follower.watch(lambda doc: seen.append(doc.version))
        wait_for(lambda: follower.connected)
        writer.update(_set("b"))
        assert wait_for(lambda: seen == [2])  # announced on the channel, delivered
        assert wait_for(lambda: follower.read_cache().version == 2)  # cached after delivery
        assert follower.last_error is None
    finally:
        writer.close()
        follower.close()
