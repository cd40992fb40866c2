"""The floor key and its epoch record have a lifecycle: ``cfgcore retire``.

Nothing ever cleared ``{NS}:flags:floor`` and ``{NS}:flags:floor:epoch`` (nor a
published configuration's): by design they outlive a lost document, so a store that
lost its data is refused, not built on. But a decommissioned service's namespace stayed
in Redis forever, and one an operator emptied by hand (DEL of the document) refused
every new write as "lost". ``cfgcore retire --store URL`` deletes cfgcore's keys of the
namespace, refused while a process still follows it. Real redis-server, real CLI."""

from __future__ import annotations

import pytest

from cfgcore.cli import main
from cfgcore.errors import ConfigError
from cfgcore.runtime.redis_store import (
    PublishedConfig,
    RedisConfigStore,
    RedisFlagStore,
    retire_namespace,
)
from cfgcore.snapshot import Flag, Snapshot
from tests.redis_server import wait_for


def _flag() -> Flag:
    return Flag(variants={"on": True, "off": False}, default="on")


def _fill(url: str) -> None:
    with RedisConfigStore(url, "prod") as cstore, RedisFlagStore(url) as fstore:
        cstore.publish_with_flags(
            PublishedConfig(environment="prod", config={"a": 1}), fstore,
            lambda s: Snapshot(flags={"x": _flag()}),
        )  # fmt: skip
        # a lost document leaves its floor and the epoch served (one these processes
        # wrote: only such an epoch is recorded)
        fstore._mark_lost(fstore._client, 7, fstore._epoch)
        cstore._mark_lost(cstore._client, 3, cstore._epoch)


def test_retire_deletes_the_namespace_and_a_new_store_starts_fresh(
    redis_server, tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    url = redis_server.url + "?namespace=old&cache=off"
    _fill(url)
    client = redis_server.client()
    client.set("{old}:not-cfgcore", "theirs")
    client.set("{other}:flags:floor", "9")
    assert len(client.keys("{old}:*")) == 9  # (with the two records of recent writes)
    assert main(["retire", "--store", url]) == 0
    out = capsys.readouterr().out
    assert "retired namespace old: 8 keys deleted" in out and "{old}:flags:floor" in out
    assert client.keys("{old}:*") == [b"{old}:not-cfgcore"]  # not cfgcore's: kept
    assert client.get("{other}:flags:floor") == b"9"  # another namespace: untouched
    # a write without force now starts the store over instead of being refused as lost
    with RedisFlagStore(url) as fstore:
        _, new = fstore.update(lambda s: Snapshot(flags={"fresh": _flag()}))
    assert new.version == 1


def test_before_retire_a_store_with_a_floor_refuses_a_write(redis_server):
    """What retire is for: the floor alone makes an emptied namespace refuse writes."""
    url = redis_server.url + "?namespace=kept&cache=off"
    _fill(url)
    redis_server.client().delete("{kept}:flags")
    with RedisFlagStore(url) as fstore, pytest.raises(ConfigError, match="lost its flag"):
        fstore.update(lambda s: s)


def test_retire_is_refused_while_a_process_follows(redis_server, tmp_path, capsys):
    url = redis_server.url + "?namespace=live&cache=off"
    _fill(url)
    follower = RedisFlagStore(url)
    try:
        follower.watch(lambda d: None)
        wait_for(lambda: follower.connected)
        assert main(["retire", "--store", url]) == 1
        assert "still follow namespace 'live'" in capsys.readouterr().err
        assert redis_server.client().exists("{live}:flags:floor")
        assert len(retire_namespace(url, force=True)) == 8
    finally:
        follower.close()


def test_a_namespace_with_glob_characters_retires_only_itself(redis_server):
    url = redis_server.url + "?namespace=a*&cache=off"
    _fill(url)
    redis_server.client().set("{ab}:flags:floor", "5")
    assert len(retire_namespace(url)) == 8
    assert redis_server.client().get("{ab}:flags:floor") == b"5"
