"""Credentials refused mid-run, fourth audit. When Redis started refusing a store's
credentials (the password rotated on the server), a write failed while reading the
document, before its script was sent, yet said "the outcome is unknown (the connection
was lost after the write was sent ...): read the store before retrying", and a read
called Redis "unreachable". A write that fails before its script is sent is now
reported as not written, naming refused credentials; one that fails after keeps the
honest "unknown". Real redis-server, password changed with CONFIG SET."""

from __future__ import annotations

import msgspec
import pytest
import redis

from cfgcore.errors import ConfigError
from cfgcore.snapshot import snapshot_from_dict
from tests.waiting import wait_for


def _set(value: str):
    def change(snapshot):
        one = snapshot_from_dict(
            {"version": 1, "flags": {"f": {"variants": {"v": value}, "default": "v"}}}
        )
        return msgspec.structs.replace(snapshot, flags={**snapshot.flags, **one.flags})

    return change


def test_refused_credentials_mid_run_say_not_written(redis_server, stores):
    store = stores(redis_server.url + "?cache=off")
    store.update(_set("a"))
    admin = redis_server.client()
    admin.config_set("requirepass", "rotated")
    admin.execute_command("CLIENT", "KILL", "TYPE", "normal")  # every connection re-auths
    with pytest.raises(ConfigError) as err:
        store.update(_set("b"))
    msg = str(err.value)
    assert "cannot write the flag document: Redis refused this store's credentials" in msg
    assert "unknown" not in msg
    with pytest.raises(ConfigError, match="Redis refused this store's credentials"):
        store.read()
    # Nothing was written: the store still holds version 1, value "a".
    new_admin = redis.Redis(port=redis_server.port, password="rotated")
    assert new_admin.hget(store.key, "version") == b"1"
    new_admin.config_set("requirepass", "")
    _, new = store.update(_set("c"))  # and writes again once the password is back
    assert new.version == 2


def test_a_follower_whose_credentials_are_refused_says_so(redis_server, stores):
    store = stores(redis_server.url + "?cache=off&poll=0.1")
    store.update(_set("a"))
    store.watch(lambda doc: None)
    assert wait_for(lambda: store.connected)
    admin = redis_server.client()
    admin.config_set("requirepass", "rotated")
    admin.execute_command("CLIENT", "KILL", "TYPE", "pubsub")  # the follower reconnects
    assert wait_for(lambda: "refused this store's credentials" in str(store.last_error))
    assert not store.connected
    redis.Redis(port=redis_server.port, password="rotated").config_set("requirepass", "")
    assert wait_for(lambda: store.connected)  # and follows again once it may
