"""A reload while Redis is unreachable never moves the flags back, seventh audit.

``RedisFlagStore.read()`` serves the cache file's document while Redis is unreachable,
and a flag set's reload (``DynamicConfigurationManager.reload()``, a second manager
opening the shared set) installed whatever it read unless it was older *and of the same
origin* as the live document; the cache file's document has an origin of its own (the
file), so an older one went live: the flags moved back to a version the fleet had left.
The cache file is older than what serves whenever another process of the host (they
share it) cached an older version last, or this process's own write had not been cached
yet when Redis went away. Now a store's older document is ignored whatever its origin.

Real redis-server, killed to make it unreachable; the older cache file is another
process's write, reproduced by copying the file back.
"""

from __future__ import annotations

import shutil

from cfgcore.experiments.dynamic import DynamicConfigurationManager
from cfgcore.runtime.redis_store import RedisFlagStore
from cfgcore.snapshot import Flag, Snapshot
from tests.redis_server import wait_for


def _doc(default: str) -> Snapshot:
    return Snapshot(flags={"beta": Flag(default=default, variants={"on": True, "off": False})})


def test_a_reload_during_an_outage_keeps_the_newer_live_flags(redis_server, tmp_path):
    cache = tmp_path / "host-cache.msgpack"
    url = f"{redis_server.url}?namespace=older&cache={cache}&socket_connect_timeout=0.5"
    writer = RedisFlagStore(f"{redis_server.url}?namespace=older&cache=off")
    m = None
    try:
        writer.update(lambda _: _doc("off"))
        m = DynamicConfigurationManager(store=url, log_exposures=False, record_usage=False)
        wait_for(lambda: m.store._cached == 1)
        shutil.copy(cache, tmp_path / "v1.msgpack")
        writer.update(lambda _: _doc("on"))
        wait_for(lambda: m.is_feature_enabled("beta", "u1") and m.store._cached == 2)
        shutil.copy(tmp_path / "v1.msgpack", cache)  # another process cached v1 last
        redis_server.kill()
        assert m.reload() is False
        assert m.is_feature_enabled("beta", "u1")  # version 2 keeps serving
        assert m.store.version == 2
    finally:
        if m is not None:
            m.close()
        writer.close()
