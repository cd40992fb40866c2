"""The write scripts and Python read a stored version by one rule, fifteenth pass.

Python reads a stored version (the document's ``version`` field, the floor key) as
ASCII digits only, 0 to 2**53 - 1 (``stored_version``); the Lua scripts read it with
``tonumber``, which also takes ``1.0``, ``0x1``, `` 1``, ``1 ``, ``+1`` and ``1e0``
(a hand repair or another tool may store any of them). So a document that every
reader refused was written on as version 1 by a write whose read came just before the
version was changed, a version the caller expected was found in such text, and a floor
key of ``1e3`` numbered the next write 1001 while every process ignored it as unusable.
The scripts read a stored version by Python's rule now: anything else is an unusable
version, refused without force (naming the key, the field and the text) and ignored as
a floor.

Real redis-server.
"""

from __future__ import annotations

import pytest

from cfgcore.errors import ConfigError
from cfgcore.runtime.redis_store import RedisConfigStore, RedisFlagStore, VersionConflictError
from tests.fleet_helpers import add, quiet_fleet  # noqa: F401 - autouse fixture

# Text Lua's tonumber reads as 1, and no reader takes as a version.
NOT_VERSIONS = ["1.0", "0x1", " 1", "1 ", "+1", "1e0", "1.", "0x01"]


@pytest.mark.parametrize("text", NOT_VERSIONS)
def test_a_version_changed_under_a_write_to_text_readers_refuse_is_not_written_on(
    redis_server, text
):
    url = redis_server.url + "?namespace=vrule&cache=off"
    r = redis_server.client()
    with RedisFlagStore(url) as store:
        store.update(add("a"))  # version 1

        def change(snapshot):
            # (between the write's read and its script: a hand repair, another tool)
            r.hset("{vrule}:flags", "version", text)
            return add("b")(snapshot)

        with pytest.raises(ConfigError) as caught:
            store.update(change)
        message = str(caught.value)
        assert "{vrule}:flags" in message and "'version'" in message
        assert repr(text) in message
        assert r.hget("{vrule}:flags", "version") == text.encode()  # nothing written
        # and a read refuses it by the same rule, naming the same
        with pytest.raises(ConfigError) as read:
            store.read()
        assert "{vrule}:flags" in str(read.value) and repr(text) in str(read.value)


@pytest.mark.parametrize("text", NOT_VERSIONS)
def test_an_expected_version_is_not_found_in_text_readers_refuse(redis_server, text):
    url = redis_server.url + "?namespace=vexp&cache=off"
    r = redis_server.client()
    with RedisFlagStore(url) as store:
        store.update(add("a"))
        r.hset("{vexp}:flags", "version", text)
        with pytest.raises(VersionConflictError) as caught:
            store.update(add("b"), force=True, expected_version=1)
        assert caught.value.current == -1
        assert r.hget("{vexp}:flags", "version") == text.encode()
        # a forced write without one repairs it, numbered above the floor (0 + 1)
        _, new = store.update(add("b"), force=True)
        assert new.version == 2  # (above version 1, seen by this process)
        assert store.read().version == 2


def test_a_version_with_leading_zeros_is_one_on_both_sides(redis_server):
    url = redis_server.url + "?namespace=vzero&cache=off"
    r = redis_server.client()
    with RedisFlagStore(url) as store:
        store.update(add("a"))
        r.hset("{vzero}:flags", "version", "0001")
        assert store.read().version == 1
        _, new = store.update(add("b"), expected_version=1)
        assert new.version == 2


@pytest.mark.parametrize("text", ["1e3", "0x3e8", "1000.0", " 1000", "+1000"])
def test_a_floor_key_readers_ignore_does_not_number_writes(redis_server, text):
    url = redis_server.url + "?namespace=vfloor&cache=off"
    r = redis_server.client()
    with RedisFlagStore(url) as store:
        r.set("{vfloor}:flags:floor", text)
        assert store._floor_version() == 0  # (Python ignores it)
        _, new = store.update(add("a"))
        assert new.version == 1
        _, new = store.update(add("b"), force=True)
        assert new.version == 2


def test_a_publish_does_not_number_above_a_floor_readers_ignore(redis_server):
    from cfgcore.runtime.redis_store import PublishedConfig

    url = redis_server.url + "?namespace=vpair&cache=off"
    r = redis_server.client()
    with RedisConfigStore(url, "production") as config, RedisFlagStore(url) as flags:
        r.set("{vpair}:flags:floor", "1e3")
        r.set("{vpair}:config:production:floor", "0x3e8")
        doc = PublishedConfig(environment="production", config={"n": 1})
        cnew, fnew = config.publish_with_flags(doc, flags, add("a"))
        assert (cnew.version, fnew.version) == (1, 1)
