"""A publish with flags that left a configuration every follower refuses, tenth audit.

An ``environment`` field longer than cfgcore writes (``FIELD_LIMITS``), planted by hand
or by another program on a published configuration (``{NS}:config:ENV``), makes every
reader refuse it unread, and the refusal prints the repair, a forced publish. A publish
without flags (the write script) removed such a field; a publish with flags (the pair
script, the routine ``cfgcore publish --flags``) wrote its configuration beside it, so
every follower refused that publish and each one after it. The pair script now removes
it as the write script does.
"""

from __future__ import annotations

import pytest

from cfgcore.errors import ConfigError
from cfgcore.runtime.redis_store import (
    FIELD_LIMITS,
    PublishedConfig,
    RedisConfigStore,
    RedisFlagStore,
)
from tests.fleet_helpers import add, quiet_fleet  # noqa: F401 - autouse fixture


def test_a_publish_with_flags_repairs_a_configuration_with_an_oversized_field(redis_server):
    url = redis_server.url + "?namespace=pairfix&cache=off"
    key = "{pairfix}:config:production"
    r = redis_server.client()
    with RedisConfigStore(url, "production") as config, RedisFlagStore(url) as flags:

        def publish(n: int):
            doc = PublishedConfig(environment="production", config={"n": n})
            return config.publish_with_flags(doc, flags, add(f"f{n}"))

        publish(1)
        r.hset(key, "environment", "x" * (FIELD_LIMITS["environment"] + 1))
        with pytest.raises(ConfigError, match=f"the 'environment' field of {key}"):
            config.read()
        publish(2)
        doc = config.read()  # taken, as every follower takes it
        assert doc.version == 2 and doc.snapshot.config == {"n": 2}
        assert r.hget(key, "environment") is None
        assert "f2" in flags.read().snapshot.flags
        assert r.hget("{pairfix}:flags", "environment") == b"production"


def test_a_publish_with_flags_keeps_a_field_within_its_limit(redis_server):
    """Only a field over its limit goes: one within it (read as any other) stays."""
    url = redis_server.url + "?namespace=pairkeep&cache=off"
    key = "{pairkeep}:config:production"
    r = redis_server.client()
    with RedisConfigStore(url, "production") as config, RedisFlagStore(url) as flags:
        doc = PublishedConfig(environment="production", config={"n": 1})
        config.publish_with_flags(doc, flags, add("f1"))
        r.hset(key, "environment", "x" * FIELD_LIMITS["environment"])
        config.publish_with_flags(doc, flags, add("f2"))
        assert r.hget(key, "environment") == b"x" * FIELD_LIMITS["environment"]
        assert config.read().version == 2
