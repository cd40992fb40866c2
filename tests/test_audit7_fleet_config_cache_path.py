"""A published configuration's cache file stays in the state directory, seventh audit.

The namespace was percent-encoded in the default cache file's name (sixth review), but
the document part of a published configuration's name is ``config:ENV``, and
``RedisConfigStore`` takes any environment name without ':': ``../../x`` or ``a/b`` put
its cache file in another directory, outside the state directory. The environment is
percent-encoded as well; names the configuration builder accepts keep their file names
(an upgrade finds the cache file it wrote before).
"""

from __future__ import annotations

import os

import pytest

from cfgcore.runtime.redis_store import RedisConfigStore


@pytest.mark.parametrize("environment", ["../../../escape", "team/prod", "%2F..", "a\\b"])
def test_the_cache_file_stays_in_the_state_directory(tmp_path, environment):
    state = tmp_path / "state" / "fleet"
    store = RedisConfigStore("redis://127.0.0.1:1/0?namespace=ns", environment, cache_dir=state)
    try:
        assert store.key == f"{{ns}}:config:{environment}"  # the key is unchanged
        assert os.path.dirname(os.path.normpath(store.cache_path)) == str(state)
    finally:
        store.close()


def test_a_usual_environment_keeps_its_file_name(tmp_path):
    store = RedisConfigStore("redis://127.0.0.1:1/0", "prod-eu_2.x", cache_dir=tmp_path)
    try:
        assert os.path.basename(store.cache_path).startswith("cfgcore-config:prod-eu_2.x-")
    finally:
        store.close()
