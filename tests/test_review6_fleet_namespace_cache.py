"""A store's default cache file stays in the state directory whatever its namespace.

The namespace (a Redis key prefix) named the cache file as written: one holding '/'
or '..' put the file in another directory (``namespace=../../x`` outside the state
directory, ``team/app`` in a subdirectory). It is percent-encoded in the file name;
common namespaces (letters, digits, '-', '_', '.') keep their names.
"""

from __future__ import annotations

import os

import pytest

from cfgcore.runtime.redis_store import RedisFlagStore
from cfgcore.snapshot import Flag, Snapshot


@pytest.mark.parametrize("namespace", ["../../escape", "team/app", "a\\\\b", "%2F..%2F"])
def test_the_cache_file_stays_in_the_state_directory(redis_server, tmp_path, namespace):
    from urllib.parse import quote

    state = tmp_path / "state" / "fleet"
    store = RedisFlagStore(
        redis_server.url + f"?namespace={quote(namespace, safe='')}", cache_dir=state
    )
    try:
        assert store._parsed.namespace == namespace  # the key prefix is unchanged
        assert os.path.dirname(store.cache_path) == str(state)
        _, new = store.update(lambda s: Snapshot(flags={"f": Flag(default="on")}))
        store._write_cache(new)
        name = os.path.basename(store.cache_path)
        # (and its lock file beside it: the processes of a host share the cache file)
        assert sorted(os.listdir(state)) == sorted([name, f".{name}.lock"])
        assert store.read_cache().version == new.version
        assert not (tmp_path / "escape-flags").exists()
    finally:
        store.close()


def test_a_common_namespace_keeps_its_file_name(redis_server, tmp_path):
    store = RedisFlagStore(redis_server.url + "?namespace=music-prod_v2.eu", cache_dir=tmp_path)
    try:
        assert os.path.basename(store.cache_path).startswith("music-prod_v2.eu-flags-")
    finally:
        store.close()
