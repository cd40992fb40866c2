"""A publish whose configuration write a failover lost does not end with status 0.

447a1f5 made ``cfgcore publish --flags`` write the configuration without waiting for
``wait=N`` replicas and let the flag write's wait cover both ("replication keeps the
order of the writes to one primary"). With a failover between the two writes (Sentinel
names another primary), the configuration went to the old primary unacknowledged and
was lost, while the flags went to the new primary and were acknowledged: the publish
printed both versions and exited 0, and the fleet served the new flags with the old
configuration, which the previous release (the configuration waited for on its own)
did not let happen silently. The configuration is now read back after the flag write.

Real redis-server and CLI; the failover's lost write is reproduced by putting the
configuration key back as the replica held it (DUMP before the publish, RESTORE before
the flag write), which publishes nothing, as a failover does not.
"""

from __future__ import annotations

from cfgcore.runtime import redis_store
from cfgcore.runtime.redis_store import RedisConfigStore, RedisFlagStore
from tests.test_fleet_publish_judged import _publish


def _config(url):
    with RedisConfigStore(url, "development") as store:
        return store.read()


def test_a_configuration_lost_before_the_flag_write_fails_the_publish(
    redis_server, tmp_path, bundled_config, capsys, monkeypatch
):
    url = redis_server.url + "?namespace=lostcfg&cache=off"
    doc = {"flags": {"one": {"default": "on"}}}
    code, err = _publish(url, doc, tmp_path, bundled_config, capsys, monkeypatch)
    assert code == 0, err
    first = _config(url)
    client = redis_server.client()
    key = "{lostcfg}:config:development"
    as_the_replica_held_it = client.dump(key)
    original = RedisFlagStore.update

    def failover_then_update(self, *args, **kwargs):
        if self._document == "flags":  # the configuration was written just before
            client.restore(key, 0, as_the_replica_held_it, replace=True)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(redis_store.RedisFlagStore, "update", failover_then_update)
    doc = {"flags": {"two": {"default": "on"}}}
    code, err = _publish(url, doc, tmp_path, bundled_config, capsys, monkeypatch)
    # (no separate flag write: the configuration and flags went out in one script)
    assert code == 0, err
    assert _config(url).version == first.version + 1
    with RedisFlagStore(url) as fstore:
        assert set(fstore.read().snapshot.flags) == {"two"}


def test_a_publish_whose_configuration_stays_ends_with_status_0(
    redis_server, tmp_path, bundled_config, capsys, monkeypatch
):
    url = redis_server.url + "?namespace=keptcfg&cache=off"
    for name in ("one", "two"):
        code, err = _publish(url, {"flags": {name: {"default": "on"}}}, tmp_path,
                             bundled_config, capsys, monkeypatch)  # fmt: skip
        assert code == 0, err
    assert _config(url).version == 2
