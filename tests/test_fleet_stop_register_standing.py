"""While a refused entry of the fleet's guardrail stop register stands, each poll of a
follower checks that it is still stored without reading the register again: whatever
the refused entry is (a value that is no entry, a name that is not UTF-8, a name or a
value over its limit). A name that is not UTF-8 made every poll read the whole register
again (every entry's value, on every follower), and a name or a value over its limit
made the poll's check fail (logged at every poll) so that its removal went unnoticed
until the next document. The refusal is still reported once (``stops_rejected``,
``last_error``, health's ``flag_store`` warning) and ends when the entry is fixed or
removed. Real redis-server; MONITOR shows what each poll reads."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfgcore.dynamic_config import DynamicConfigurationManager
from cfgcore.runtime.redis_store import MAX_STOP_ENTRY_BYTES, MAX_STOP_NAME_BYTES, RedisFlagStore
from tests.fleet_helpers import add, quiet_fleet  # noqa: F401  (quiet_fleet: an autouse fixture)
from tests.fuzz import examples
from tests.redis_server import monitored, reads_of, wait_for

GOOD = {f"test{i}": (1.0 + i, None) for i in range(20)}  # ends of stops, as hosts write them
PLANTED = {
    "not an entry": (b"planted", b"garbage"),
    "name not UTF-8": (b"planted\xff\xfe", b"garbage"),
    "name over its limit": (b"n" * (MAX_STOP_NAME_BYTES + 500), b"garbage"),
    "value over its limit": (b"planted", b"x" * (MAX_STOP_ENTRY_BYTES + 1)),
}


def _check(manager, name: str):
    return next(c for c in manager.health().readiness if c.name == name)


def _calls(redis_server, command: str) -> int:
    stats = redis_server.client().info("commandstats")
    return stats.get(f"cmdstat_{command}", {}).get("calls", 0)


# (a name that is no test's name, not UTF-8 or over its limit, is only ever removed)
ENDS = [(p, "removed") for p in sorted(PLANTED)] + [
    ("not an entry", "fixed"),
    ("value over its limit", "fixed"),
]


@pytest.mark.parametrize(("planted", "end"), ENDS)
def test_polls_do_not_read_the_register_while_a_refused_entry_stands(
    redis_server, tmp_path, planted, end
):
    name, value = PLANTED[planted]
    ns = "st" + str(sorted(PLANTED).index(planted))
    url = redis_server.url + f"?namespace={ns}&poll=0.1"
    other = RedisFlagStore(url + "&cache=off")
    other.update(add("one"))
    other.write_stop_register(GOOD)
    register = other.stops_key
    manager = DynamicConfigurationManager(
        store=url + f"&cache={tmp_path / 'c.msgpack'}", log_exposures=False
    )
    store = manager.store
    try:
        wait_for(lambda: _check(manager, "flag_store").status == "ok")  # (following)
        redis_server.client().hset(register, name, value)
        other.update(add("two"))  # a document judged: the register is read
        wait_for(lambda: store.stats["stops_rejected"] == 1)
        wait_for(lambda: store.version == other.version)
        with monitored(redis_server) as commands:
            polls = _calls(redis_server, "evalsha")
            # (each poll runs at least two scripts: the document's read, the check)
            wait_for(lambda: _calls(redis_server, "evalsha") >= polls + 10)
        read = [c for t in GOOD for c in reads_of(commands, register, t)]
        assert read == []  # no entry of the register sent or read by a poll
        assert not any(c["command"].startswith("HGETALL") for c in commands)
        check = _check(manager, "flag_store")
        assert check.status == "warn" and "guardrail stop register" in check.detail
        assert "guardrail stop register" in str(store.stop_register_problem)
        assert "guardrail stop register" in str(store.last_error)
        assert store.stats["stops_rejected"] == 1  # reported once
        if end == "removed":
            redis_server.client().hdel(register, name)
        else:  # an entry cfgcore writes put in its place (an end of a stop)
            redis_server.client().hset(register, name, json.dumps({"at": 1.0, "record": None}))
        # noticed at the next poll, no document written
        wait_for(lambda: _check(manager, "flag_store").status == "ok")
        assert store.stop_register_problem is None and store.last_error is None
        assert store.stats["stops_rejected"] == 1
    finally:
        manager.close()
        other.close()


def _stands(store, name: bytes) -> bool:
    """Whether the entry ``name`` stands refused in ``store`` (named by its text, the
    bytes that are not UTF-8 escaped; a name over its limit by its start)."""
    shown = name.decode(errors="backslashreplace")
    return any(
        test == shown or (len(name) > MAX_STOP_NAME_BYTES and test and shown.startswith(test))
        for test in store._stops_standing
    )


_names = st.one_of(
    st.binary(min_size=1, max_size=12),
    st.binary(min_size=1, max_size=4).map(lambda b: b * (MAX_STOP_NAME_BYTES // len(b) + 1)),
)
_values = st.one_of(
    st.binary(max_size=40),
    st.just(json.dumps({"at": 1.0, "record": None}).encode()),
    st.just(b"x" * (MAX_STOP_ENTRY_BYTES + 1)),
)


@settings(
    max_examples=examples(40),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    entries=st.dictionaries(_names, _values, min_size=1, max_size=4),
    change=st.sampled_from(["none", "remove", "replace", "add"]),
    which=st.integers(min_value=0, max_value=3),
    new=_values,
)
def test_a_poll_leaves_standing_what_a_read_of_the_register_finds(
    redis_server, stores, entries, change, which, new
):
    """After a poll's check, what stands refused is what a fresh read of the register
    finds, whatever was planted and then changed (or not) in the register."""
    store = stores(redis_server.url + "?namespace=sth&cache=off")
    r = redis_server.client()
    r.delete(store.stops_key)
    r.hset(store.stops_key, mapping=entries)
    store.read_stop_register()
    names = sorted(entries)
    target = names[which % len(names)]
    stood = _stands(store, target)
    if change == "remove":
        r.hdel(store.stops_key, target)
    elif change == "replace":
        r.hset(store.stops_key, target, new)
    elif change == "add":
        r.hset(store.stops_key, b"another", new)
    store._recheck_stop_register()  # a poll
    fresh = stores(redis_server.url + "?namespace=sth&cache=off")
    fresh.read_stop_register()
    if change == "add" or (change == "replace" and not stood):
        # A poll checks only the entries that stand refused: an entry added, or one
        # that stood for nothing replaced, is read with the next document judged.
        assert store._stops_standing.keys() <= fresh._stops_standing.keys()
    else:
        assert store.stop_register_problem == fresh.stop_register_problem
