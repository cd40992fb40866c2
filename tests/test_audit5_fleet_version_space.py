"""Versions end at 2**53 - 1 (Lua numbers stop counting at 2**53): a floor key set that
high by hand or by another program must not wedge the store. The write script refused
nothing and stored 2**53 (which its own checks then refuse): every later write, forced
ones too, was numbered 2**53 again and no follower took it. Now nothing past 2**53 - 1
is written or read, the refusal names the floor key and the way out. Real redis-server."""

from __future__ import annotations

import pytest

from cfgcore.errors import ConfigError
from cfgcore.runtime.redis_follow import MAX_VERSION, stored_version
from cfgcore.snapshot import Flag, Snapshot


def add(name):
    def change(snap):
        return Snapshot(flags={**snap.flags, name: Flag(default="on")})

    return change


@pytest.mark.parametrize("with_document", [False, True])
def test_a_floor_at_the_end_of_the_version_space_is_refused_with_the_way_out(
    redis_server, stores, with_document
):
    url = redis_server.url + "?namespace=vs&cache=off"
    r = redis_server.client()
    writer = stores(url)
    if with_document:
        writer.update(add("a"))
    r.set("{vs}:flags:floor", 2**53 - 1)
    before = r.hgetall("{vs}:flags")
    for force in (False, True) if with_document else (True,):
        with pytest.raises(ConfigError) as err:
            stores(url).update(add("b"), force=force)
        msg = str(err.value)
        assert "2**53 - 1" in msg and "DEL {vs}:flags:floor" in msg
        assert "cfgcore publish --store" in msg
    assert r.hgetall("{vs}:flags") == before  # nothing written
    r.delete("{vs}:flags:floor")  # the way out the message names
    _, new = stores(url).update(add("b"), force=True)
    assert 0 < new.version < 2**53 - 1


def test_a_stored_version_of_2_53_is_refused():
    assert MAX_VERSION == 2**53 - 1
    assert stored_version(b"9007199254740991", "x") == 2**53 - 1
    with pytest.raises(ConfigError, match="out of range"):
        stored_version(b"9007199254740992", "x")
