"""A fleet store's follower holds free-form values to the 100-level depth every flag
document is held to (decode_snapshot's rule and message), for the flags it decodes anew.

The follower decodes only the flags whose bytes changed since the document it took
before, with its own decoding stages, and did not apply decode_snapshot's depth rule: a
document written straight into Redis with a variant or metadata nested 101 to ~1,000
levels deep was decoded, and the live flag set's secret-reference check raised
RecursionError in the listener (retried on every poll as a failed listener, not refused
as a bad document). Real redis-server (tests/conftest.py).
"""

from __future__ import annotations

import hashlib

import msgspec
import pytest

from cfgcore.errors import ConfigError
from cfgcore.runtime.redis_store import RedisFlagStore
from cfgcore.snapshot import MAX_VALUE_DEPTH, decode_snapshot
from tests.redis_server import wait_for

KEY = "{deep}:flags"


def nested(depth: int) -> object:
    value: object = "leaf"
    for _ in range(depth):
        value = [value]
    return value


def put(r, version: int, doc: dict) -> None:
    data = msgspec.msgpack.encode(doc)
    r.hset(
        KEY,
        mapping={"version": version, "data": data, "checksum": hashlib.sha256(data).hexdigest()},
    )
    r.publish(KEY + ":changes", f"{version} x")


def base() -> dict:
    return {"flags": {f"f{i}": {"default": "on"} for i in range(20)}}


@pytest.mark.parametrize("where", ["metadata", "variant", "document"])
@pytest.mark.parametrize("depth", [MAX_VALUE_DEPTH - 5, MAX_VALUE_DEPTH + 1, 900])
def test_follower_refuses_what_decode_snapshot_refuses(redis_server, tmp_path, where, depth):
    r = redis_server.client()
    put(r, 1, base())
    doc = base()
    if where == "metadata":
        doc["flags"]["f3"] = {"default": "on", "metadata": {"x": nested(depth)}}
    elif where == "variant":
        doc["flags"]["f3"] = {"variants": {"on": nested(depth), "off": 0}, "default": "on"}
    else:
        doc["metadata"] = {"x": nested(depth)}
    data = msgspec.msgpack.encode(doc)
    try:
        decode_snapshot(data, "msgpack")
        expected = None
    except ConfigError as exc:
        expected = str(exc)
    url = redis_server.url + f"?namespace=deep&cache={tmp_path / 'c.msgpack'}&poll=0.05"
    errors: list[Exception] = []
    taken: list[int] = []
    with RedisFlagStore(url) as follower:
        assert follower.read().version == 1
        follower.watch(lambda d: taken.append(d.version), on_error=errors.append)
        put(r, 2, doc)
        if expected is None:  # within the limit: taken, as decode_snapshot takes it
            wait_for(lambda: taken == [2])
            assert not errors
            return
        wait_for(lambda: errors)
        message = str(errors[0])
        assert f"nested deeper than {MAX_VALUE_DEPTH} levels" in message
        # the same path decode_snapshot names
        assert expected.split(": nested")[0].rsplit(" ", 1)[-1] in message
        assert follower.version == 1 and follower.stats["failed"] == 0 and taken == []
        put(r, 3, base())  # the next good document is taken
        wait_for(lambda: taken == [3])
