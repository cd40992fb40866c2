"""A Redis flag document whose version cfgcore cannot have written (past 2**53, negative,
not digits) is rejected once like any corrupt document, against a real redis-server:
no follower crash-restart loop, the last good flags keep serving, health says why."""

from __future__ import annotations

import hashlib
import logging

import msgspec
import pytest

from cfgcore.errors import ConfigError
from cfgcore.runtime.redis_follow import MAX_VERSION, stored_version
from cfgcore.runtime.redis_store import RedisFlagStore
from cfgcore.snapshot import Flag, Snapshot
from tests.redis_server import wait_for


def add(name: str):
    return lambda s: msgspec.structs.replace(s, flags={**s.flags, name: Flag(default="on")})


@pytest.fixture
def url(redis_server, tmp_path):
    return redis_server.url + f"?namespace=t&poll=0.05&cache={tmp_path / 'cache.msgpack'}"


def _tamper(redis_server, version) -> None:
    """Set the stored version, keep the data and its (correct) checksum, announce it."""
    r = redis_server.client()
    r.hset("{t}:flags", "version", version)
    checksum = r.hget("{t}:flags", "checksum").decode()
    r.publish("{t}:flags:changes", f"{version} {checksum}")


@pytest.mark.parametrize("version", [10**30, 2**64, MAX_VERSION + 1, "-5", "1e3", " 7"])
def test_a_version_out_of_range_is_rejected_once_and_following_goes_on(
    redis_server, url, version, caplog
):
    writer, follower = RedisFlagStore(url), RedisFlagStore(url)
    try:
        writer.update(add("a"))
        assert follower.read().version == 1
        errors: list[Exception] = []
        follower.watch(lambda doc: None, on_error=errors.append)
        wait_for(lambda: follower.connected)
        with caplog.at_level(logging.ERROR, logger="cfgcore.fleet"):
            _tamper(redis_server, version)
            wait_for(lambda: follower.stats["rejected"] == 1)
            # several more polls re-read the bad key: still one rejection, no restarts
            seen = follower.last_contact
            wait_for(lambda: follower.last_contact > seen)
            seen = follower.last_contact
            wait_for(lambda: follower.last_contact > seen)
        assert follower.stats["rejected"] == 1 and len(errors) == 1
        assert isinstance(errors[0], ConfigError)
        reason = "out of range" if isinstance(version, int) else "is not a number"
        assert reason in str(errors[0]) and reason in follower.last_error
        assert follower.version == 1 and follower.connected
        assert not [r for r in caplog.records if "follower error" in r.getMessage()]
        assert follower.read_cache().version == 1  # the cache file keeps the good document
        with pytest.raises(ConfigError, match=reason):
            follower.read()  # a direct read refuses it too, naming the store
    finally:
        writer.close()
        follower.close()


def test_the_manager_keeps_serving_and_health_says_why(redis_server, url):
    from cfgcore.dynamic_config import DynamicConfigurationManager

    writer = RedisFlagStore(url)
    writer.update(lambda s: Snapshot(flags={"a": Flag(default="on")}))
    manager = DynamicConfigurationManager(store=url)
    try:
        assert manager.engine.is_enabled("a", {}) is True
        _tamper(redis_server, 10**30)
        wait_for(lambda: "out of range" in str(manager.health().to_dict()))
        assert manager.engine.is_enabled("a", {}) is True  # the last good flags serve
        assert manager.health().ready
    finally:
        manager.close()
        writer.close()


def test_a_cache_file_with_a_version_out_of_range_is_refused(tmp_path):
    path = tmp_path / "cache.msgpack"
    data = b"\x80"  # an empty msgpack map: a valid document
    blob = {"version": 2**60, "checksum": hashlib.sha256(data).hexdigest(), "data": data}
    path.write_bytes(msgspec.msgpack.encode(blob))
    store = RedisFlagStore(f"redis://127.0.0.1:1/0?namespace=t&cache={path}")
    try:
        with pytest.raises(ConfigError, match=r"cache.msgpack.*out of range"):
            store.read_cache()
    finally:
        store.close()


def test_stored_version_accepts_only_plain_digits_within_range():
    assert stored_version(b"0", "x") == 0 and stored_version(b"42", "x") == 42
    assert stored_version(MAX_VERSION, "x") == MAX_VERSION
    for bad in (b"-1", b"+1", b"1_000", b"\xff", b"", True, 1.0, None, MAX_VERSION + 1, -1):
        with pytest.raises(ConfigError, match="^x: stored version"):
            stored_version(bad, "x")
