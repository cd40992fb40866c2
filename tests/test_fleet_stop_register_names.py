"""The fleet's guardrail stop register is measured before its field names are copied.

Redis has no command that measures a hash field's name, so the read script listed the
names (HKEYS) into its memory before judging them: a register of at most 4,096 entries
whose names whoever can write Redis made huge (4,096 names of 64 KiB: 256 MiB) was
copied by every process at every start and every fleet document judged, the whole
Redis server blocked while the script ran. The script now asks the key's memory
(``MEMORY USAGE key SAMPLES 0``: counted in place, nothing copied) first, and a
register holding more than ``MAX_STOP_REGISTER_MEMORY`` is not read at all, as one of
too many entries is. A real redis-server (tests/redis_server.py); no timing asserted
(the numbers are in the commit and CHANGES.md)."""

from __future__ import annotations

import json

import pytest

from cfgcore.errors import ConfigError
from cfgcore.experiments.abtest import GUARDRAIL_STOPPED_AT
from cfgcore.runtime.redis_store import (
    MAX_STOP_ENTRIES,
    MAX_STOP_NAME_BYTES,
    MAX_STOP_REGISTER_MEMORY,
    RedisFlagStore,
)
from tests.redis_server import monitored

RECORD = {"status": "stopped", GUARDRAIL_STOPPED_AT: 100.0}
ENTRY = json.dumps({"at": 1.0, "record": None})
_ENUMERATING = ("HKEYS", "HGETALL", "HSCAN", "HVALS", "HRANDFIELD", "HGET", "HSTRLEN")


def _enumerated(commands, key):
    return [
        c["command"][:60]
        for c in commands
        if c["command"].split(" ")[0].upper() in _ENUMERATING and f" {key}" in c["command"][:200]
    ]


@pytest.fixture
def register(redis_server, stores):
    store = stores(redis_server.url + "?namespace=names&cache=off")
    assert store.write_stop_register({"t": (100.0, RECORD)}) == 1
    return store, redis_server.client()


def _plant(r, key, count, size):
    pipe = r.pipeline(transaction=False)
    for i in range(count):
        pipe.hset(key, (b"%08d" % i) + b"n" * (size - 8), ENTRY)
        if i % 16 == 15:
            pipe.execute()
    pipe.execute()


@pytest.mark.parametrize("count, size", [(40, 1 << 20), (600, 64 << 10), (4000, 16 << 10)])
def test_a_register_of_huge_names_is_not_enumerated(redis_server, register, count, size):
    """Within the entry count, over the memory bound by the names alone: no name is
    copied (no HKEYS), nothing read; reported once and raised, so the caller judges the
    flags by the host's own stops, as with Redis unreachable."""
    store, r = register
    assert count <= MAX_STOP_ENTRIES and count * size > MAX_STOP_REGISTER_MEMORY
    _plant(r, store.stops_key, count, size)
    with monitored(redis_server) as commands:
        for _ in range(2):
            with pytest.raises(ConfigError) as refused:
                store.read_stop_register()
    assert _enumerated(commands, store.stops_key) == []
    msg = str(refused.value)
    assert f"the guardrail stop register {store.stops_key} takes " in msg
    assert f"more than the {MAX_STOP_REGISTER_MEMORY:,} cfgcore reads: not read" in msg
    assert store.stats["stops_rejected"] == 1  # once while it stays so
    from cfgcore.experiments.stops import _read_fleet

    assert _read_fleet(store) is None  # the caller degrades


def test_long_names_within_the_bound_are_still_passed_over_one_by_one(redis_server, register):
    """Names past MAX_STOP_NAME_BYTES in a register within the memory bound: each passed
    over and reported, the good entry read (as before)."""
    store, r = register
    _plant(r, store.stops_key, 8, MAX_STOP_NAME_BYTES * 64)
    assert store.read_stop_register() == {"t": (100.0, RECORD)}
    assert store.stats["stops_rejected"] == 8


def test_a_server_refusing_memory_usage_reads_the_register_as_before(redis_server, tmp_path):
    """A Redis user without the MEMORY command (an ACL, a managed service that hides it):
    the register is read as before the bound (its names listed), not refused."""
    admin = redis_server.client()
    admin.execute_command(
        "ACL", "SETUSER", "nomem", "on", ">pw", "~*", "&*", "+@all", "-memory"
    )  # fmt: skip
    url = redis_server.url.replace("redis://", "redis://nomem:pw@") + "?namespace=acl&cache=off"
    with RedisFlagStore(url) as store:
        assert store.write_stop_register({"t": (100.0, RECORD)}) == 1
        assert store.read_stop_register() == {"t": (100.0, RECORD)}
