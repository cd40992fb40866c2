"""The Redis store's other reads measure what they read, as the read script does.

Three reads of what whoever can write Redis controls still copied it whole: the
question a write asks after its reply was lost (did my script run? ``HMGET`` of the
document's version, writer, epoch and forced mark), the stored configuration version a
signing ``publish_with_flags`` numbers its signature by (``HGET``), and the fleet's
guardrail stop register (``HGETALL``: entries of any number and size). Now each value is
measured (``HSTRLEN``) before it is read, and one longer than cfgcore writes there is
never fetched: the write's answer is "not ours", the publish numbers as its script
does, and the register passes the entry over and reports it (naming the register, the
test and the size) while its other entries hold; a register of more entries, or more
bytes, than cfgcore keeps is not read at all. Real redis-server; MONITOR shows every
command a script runs, so the tests see what was (not) read.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import msgspec
import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfgcore.errors import ConfigError, StopRegisterError
from cfgcore.experiments.abtest import GUARDRAIL_STOPPED_AT
from cfgcore.runtime.redis_store import (
    FIELD_LIMITS,
    MAX_STOP_ENTRIES,
    MAX_STOP_ENTRY_BYTES,
    MAX_STOP_NAME_BYTES,
    MAX_STOP_REGISTER_BYTES,
    MAX_STOP_REGISTER_MEMORY,
    PublishedConfig,
    RedisConfigStore,
    RedisFlagStore,
)
from cfgcore.runtime.signing import FleetKeys, generate_signing_pair
from cfgcore.snapshot import Flag
from tests.fuzz import examples
from tests.redis_server import monitored, reads_of, wait_for

BIG = b"x" * 3_000_000  # what a hostile writer stores
RECORD = {"status": "stopped", GUARDRAIL_STOPPED_AT: 100.0, "control": "control"}
K1 = generate_signing_pair("k1")


def add(name: str):
    return lambda s: msgspec.structs.replace(s, flags={**s.flags, name: Flag(default="on")})


def since_planted(commands: list[dict[str, Any]], key: str, field: str) -> list[dict[str, Any]]:
    """The commands after the one that stored BIG in ``field`` of ``key``."""
    planted = f"HSET {key} {field} xxx"
    at = next(i for i, c in enumerate(commands) if c["command"].startswith(planted))
    return commands[at + 1 :]


def lose_reply(store: RedisFlagStore, meanwhile=lambda: None) -> None:
    """The store's next write script runs in Redis, then ``meanwhile()`` (another
    writer), then its reply is lost (the connection dropped): the store must ask."""
    real = store._cas

    def cas(*args: Any, **kwargs: Any) -> Any:
        store._cas = real
        real(*args, **kwargs)
        meanwhile()
        raise redis.ConnectionError("the connection was lost before the reply")

    store._cas = cas


# -- a write whose reply was lost -----------------------------------------------------


def test_a_write_whose_reply_was_lost_is_known_written(redis_server, stores):
    """The answer the bound must not break: the script ran, the store says so."""
    url = redis_server.url + "?namespace=lost&cache=off"
    store = stores(url)
    store.update(add("a"))
    lose_reply(store)
    old, new = store.update(add("b"))
    assert (old.version, new.version) == (1, 2)
    assert set(stores(url).read().snapshot.flags) == {"a", "b"}
    assert store.stats["writes"] == 2


@pytest.mark.parametrize("field", ["version", "writer", "epoch", "forced"])
def test_an_oversized_field_after_a_lost_reply_is_not_read_and_not_ours(
    redis_server, stores, field, caplog
):
    """The script ran; before the store could ask, another writer stored a value longer
    than cfgcore writes in one of the fields it asks about (and the store's record of
    recent writes does not name the write: trimmed since, or removed). It is measured,
    never fetched, and the document is no write of this process as it stands: the write
    is reported as failed (not as written), naming the key and the field."""
    ns = f"lost{field}"
    key = f"{{{ns}}}:flags"
    url = redis_server.url + f"?namespace={ns}&cache=off"
    r = redis_server.client()
    store = stores(url)
    store.update(add("a"))
    lose_reply(store, lambda: (r.hset(key, field, BIG), r.delete(key + ":writes")))
    caplog.set_level(logging.WARNING, logger="cfgcore.fleet")
    with monitored(redis_server) as commands, pytest.raises(ConfigError) as failed:
        store.update(add("b"))
    after = since_planted(commands, key, field)
    assert reads_of(after, key, field) == []
    assert "cannot write the flag document" in str(failed.value)
    said = " ".join(rec.getMessage() for rec in caplog.records)
    assert f"the {field!r} field of {key} is 3,000,000 bytes" in said, said
    assert "no write of this process" in said
    assert store.stats["writes"] == 1  # (not counted as written)
    # (it did ask: the fields within their limits were read)
    asked = [c["command"] for c in after if c["command"].startswith("HSTRLEN " + key)]
    assert any(c.endswith(" " + field) for c in asked), asked


@pytest.mark.parametrize("recorded", [True, False], ids=["recorded", "record-gone"])
def test_a_lost_reply_on_a_document_another_writer_replaced_is_not_ours(
    redis_server, stores, recorded
):
    """Another writer's document on top of this write: the store's record of recent
    writes names it, so it is known written (fifteenth pass); without the record the
    document as it stands is not this write, and the write is reported as failed."""
    url = redis_server.url + "?namespace=lostother&cache=off"
    key = "{lostother}:flags"
    r = redis_server.client()
    store, other = stores(url), stores(url)
    store.update(add("a"))
    lose_reply(store, lambda: (other.update(add("c")), recorded or r.delete(key + ":writes")))
    if recorded:
        _, new = store.update(add("b"))
        assert new.version == 2 and store.stats["writes"] == 2
    else:
        with pytest.raises(ConfigError, match="cannot write the flag document"):
            store.update(add("b"))
    assert int(redis_server.client().hget(key, "version")) == 3


@settings(
    max_examples=examples(30),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    field=st.sampled_from(["version", "writer", "epoch", "forced"]),
    extra=st.integers(min_value=-3, max_value=300),
)
def test_the_field_script_sends_a_value_only_within_its_limit(redis_server, field, extra):
    key = "{fields}:flags"
    r = redis_server.client()
    r.delete(key)
    value = b"\x00" * max(FIELD_LIMITS[field] + extra, 0)
    r.hset(key, mapping={field: value, "data": b"d"})
    with RedisFlagStore(redis_server.url + "?namespace=fields&cache=off") as store:
        kind, over, values = store._fields("version", "writer", "epoch", "forced")
    got = dict(zip(("version", "writer", "epoch", "forced"), values, strict=True))
    assert kind == "hash"
    if len(value) > FIELD_LIMITS[field]:
        assert over == f"{field} {len(value)}" and got[field] is None
    else:
        assert over is None and got[field] == value
    assert all(v is None for name, v in got.items() if name != field)


def test_the_field_script_on_no_key_and_another_type(redis_server, stores):
    url = redis_server.url + "?namespace=kinds&cache=off"
    store = stores(url)
    assert store._fields("version") == ("none", None, [None])
    redis_server.client().set(store.key, BIG)
    with monitored(redis_server) as commands:
        assert store._fields("version", "writer") == ("string", None, [None, None])
        assert store._wrote_already("someid", "") is None  # (replaced: cannot tell)
    assert not [c for c in commands if c["command"].split(" ")[0] in ("GET", "HGET")]


# -- the configuration version a signing publish numbers by -----------------------------


def test_a_signing_publish_does_not_read_an_oversized_configuration_version(redis_server):
    """A process holding the signing key numbers its signature by the stored
    configuration version: one longer than a version is measured, not read, and taken
    for none, as the publish script numbers it; the publish is made, signed for the
    version it is stored under, and every reader that checks takes it."""
    url = redis_server.url + "?namespace=pubver&cache=off"
    ckey = "{pubver}:config:staging"
    keys = FleetKeys(K1[0], [K1[1]])
    r = redis_server.client()
    r.hset(ckey, mapping={"version": BIG, "data": b"junk"})
    with (
        RedisConfigStore(url, "staging", keys=keys) as config,
        RedisFlagStore(url, keys=keys) as flags,
        monitored(redis_server) as commands,
    ):
        new_config, new_flags = config.publish_with_flags(
            PublishedConfig(environment="staging", config={"a": 1}), flags, add("x")
        )
    assert reads_of(commands, ckey, "version") == []
    assert new_config.version == 1 and new_flags.version == 1
    with RedisConfigStore(url, "staging", keys=FleetKeys(None, [K1[1]])) as reader:
        assert reader.read().version == 1  # the signature names its version


# -- the guardrail stop register ------------------------------------------------------


@pytest.fixture
def register(redis_server, stores):
    """A store whose fleet register holds two good entries, and a client."""
    store = stores(redis_server.url + "?namespace=reg&cache=off")
    assert store.write_stop_register({"t": (100.0, RECORD), "u": (50.0, None)}) == 2
    return store, redis_server.client()


def test_an_oversized_entry_is_passed_over_unread_and_the_others_kept(
    redis_server, register, caplog
):
    store, r = register
    errors: list[Exception] = []
    store.watch(lambda doc: None, on_error=errors.append)
    r.hset(store.stops_key, "big", BIG)
    caplog.set_level(logging.ERROR, logger="cfgcore.fleet")
    with monitored(redis_server) as commands:
        assert store.read_stop_register() == {"t": (100.0, RECORD), "u": (50.0, None)}
        assert store.read_stop_register() == {"t": (100.0, RECORD), "u": (50.0, None)}
    assert reads_of(commands, store.stops_key, "big") == []
    assert reads_of(commands, store.stops_key, "t")  # (the good ones are read)
    wait_for(lambda: errors)
    msg = str(errors[0])
    assert f"the guardrail stop register {store.stops_key}: the entry of A/B test 'big'" in msg
    assert f"is 3,000,000 bytes, over the {MAX_STOP_ENTRY_BYTES:,}-byte limit" in msg
    assert "not read" in msg and "passed over" in msg
    assert store.stats["stops_rejected"] == 1 and len(errors) == 1  # once while stored
    assert isinstance(errors[0], StopRegisterError)  # not a flag document: see below
    assert store.last_error == msg
    assert msg in " ".join(rec.getMessage() for rec in caplog.records)


def test_a_passed_over_stop_entry_is_not_logged_as_a_rejected_flag_document(tmp_path, caplog):
    # The store logs the entry it passed over; the flag set it tells (as it tells a
    # refused document) said "flag document rejected" too, which sent an operator
    # looking for a bad flag document that was never there.
    from cfgcore.runtime.flags import LiveFlags
    from cfgcore.runtime.flagstore import FileFlagStore

    path = tmp_path / "flags.yaml"
    path.write_text("version: 1\nflags: {}\n")
    live = LiveFlags(FileFlagStore(str(path)))
    caplog.set_level(logging.DEBUG, logger="cfgcore")
    try:
        live.reject(StopRegisterError("the guardrail stop register k: entry"), "redis", "r")
        assert str(live.last_error) == "the guardrail stop register k: entry"
        assert not [r for r in caplog.records if "flag document rejected" in r.getMessage()]
        live.reject(ConfigError("a document"), "redis", "r")
        assert [r for r in caplog.records if "flag document rejected" in r.getMessage()]
    finally:
        live.close()


def test_an_entry_at_its_limit_is_read_and_one_byte_more_is_not(redis_server, register):
    store, r = register
    body = json.dumps({"at": 7.0, "record": None})
    value = body[:-1] + " " * (MAX_STOP_ENTRY_BYTES - len(body)) + "}"
    assert len(value) == MAX_STOP_ENTRY_BYTES
    r.hset(store.stops_key, "edge", value)
    assert store.read_stop_register()["edge"] == (7.0, None)
    r.hset(store.stops_key, "edge", value[:-1] + " }")
    with monitored(redis_server) as commands:
        assert "edge" not in store.read_stop_register()
    assert reads_of(commands, store.stops_key, "edge") == []


def test_a_long_name_is_not_sent(redis_server, register):
    store, r = register
    name = "n" * (MAX_STOP_NAME_BYTES + 1)
    r.hset(store.stops_key, name, json.dumps({"at": 1.0, "record": None}))
    with monitored(redis_server) as commands:
        assert set(store.read_stop_register()) == {"t", "u"}
    assert reads_of(commands, store.stops_key, name) == []
    assert f"an entry whose name is {MAX_STOP_NAME_BYTES + 1:,} bytes" in str(store.last_error)
    assert store.stats["stops_rejected"] == 1


def test_a_register_of_too_many_entries_is_not_read(redis_server, register, caplog):
    """More entries than cfgcore keeps: not enumerated at all (no name, no value
    copied), reported once, raised so the caller degrades as when Redis is down."""
    store, r = register
    pipe = r.pipeline(transaction=False)
    for i in range(MAX_STOP_ENTRIES):
        pipe.hset(store.stops_key, f"planted{i}", "{}")
    pipe.execute()
    with monitored(redis_server) as commands:
        for _ in range(2):
            with pytest.raises(ConfigError) as refused:
                store.read_stop_register()
    assert [
        c["command"][:60]
        for c in commands
        if c["command"].split(" ")[0] in ("HKEYS", "HGETALL", "HSCAN", "HVALS", "HGET")
    ] == []
    msg = str(refused.value)
    assert f"{store.stops_key} holds {MAX_STOP_ENTRIES + 2:,} entries" in msg
    assert f"more than the {MAX_STOP_ENTRIES:,} cfgcore reads: not read" in msg
    assert store.stats["stops_rejected"] == 1
    # the caller (a start, a judged document) degrades: the host's records hold alone
    from cfgcore.experiments.stops import _read_fleet

    assert _read_fleet(store) is None


def test_a_register_of_too_many_bytes_is_not_read(redis_server, register):
    store, r = register
    value = json.dumps({"at": 1.0, "record": {"pad": "p" * (MAX_STOP_ENTRY_BYTES - 200)}})
    count = MAX_STOP_REGISTER_BYTES // len(value) + 1
    pipe = r.pipeline(transaction=False)
    for i in range(count):
        pipe.hset(store.stops_key, f"p{i}", value)
    pipe.execute()
    with monitored(redis_server) as commands, pytest.raises(ConfigError) as refused:
        store.read_stop_register()
    assert not [c for c in commands if c["command"].split(" ")[0] in ("HGET", "HGETALL")]
    assert f"more than the {MAX_STOP_REGISTER_BYTES:,} cfgcore reads" in str(refused.value)


def test_a_register_of_another_type_is_not_read(redis_server, register):
    store, r = register
    r.delete(store.stops_key)
    r.set(store.stops_key, BIG)
    with monitored(redis_server) as commands, pytest.raises(ConfigError, match="is a Redis string"):
        store.read_stop_register()
    assert not [c for c in commands if c["command"].split(" ")[0] in ("GET", "GETRANGE")]


def test_the_write_script_replaces_an_oversized_entry_without_reading_it(redis_server, register):
    store, r = register
    r.hset(store.stops_key, "t", BIG)  # over the stop: "later" cannot be judged
    with monitored(redis_server) as commands:
        assert store.write_stop_register({"t": (1.0, RECORD)}) == 1
    assert reads_of(commands, store.stops_key, "t") == []
    assert store.read_stop_register()["t"] == (1.0, RECORD)


def test_cfgcore_never_writes_an_entry_its_readers_refuse(redis_server, register, caplog):
    store, r = register
    caplog.set_level(logging.ERROR, logger="cfgcore.fleet")
    huge = {**RECORD, "description": "d" * MAX_STOP_ENTRY_BYTES}
    written = store.write_stop_register(
        {"huge": (1.0, huge), "n" * (MAX_STOP_NAME_BYTES + 1): (1.0, RECORD), "ok": (2.0, RECORD)}
    )
    assert written == 1
    assert set(store.read_stop_register()) == {"t", "u", "ok"}
    said = " ".join(rec.getMessage() for rec in caplog.records)
    assert "not written to the guardrail stop register" in said and "'huge'" in said
    assert store.stats["stops_rejected"] == 0


@settings(
    max_examples=examples(25),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(sizes=st.lists(st.integers(min_value=10, max_value=MAX_STOP_ENTRY_BYTES + 50), max_size=6))
def test_entries_are_read_exactly_when_within_their_limit(redis_server, sizes):
    """Whatever their sizes, entries within the limit are read (their JSON as
    stored), and no value past it is sent."""
    r = redis_server.client()
    key = "{anyreg}:flags:guardrail-stops"
    r.delete(key)
    stored = {}
    for i, size in enumerate(sizes):
        body = json.dumps({"at": float(i), "record": None})
        value = body[:-1] + " " * max(size - len(body), 0) + "}"
        r.hset(key, f"t{i}", value)
        stored[f"t{i}"] = value
    with RedisFlagStore(redis_server.url + "?namespace=anyreg&cache=off") as store:
        reply = store._stops_read(
            keys=[key],
            args=[
                MAX_STOP_ENTRIES, MAX_STOP_NAME_BYTES, MAX_STOP_ENTRY_BYTES,
                MAX_STOP_REGISTER_BYTES, MAX_STOP_REGISTER_MEMORY,
            ],
        )  # fmt: skip
        entries = store.read_stop_register()
    assert reply[0] == b"ok"
    sent = {reply[i].decode(): reply[i + 1] for i in range(1, len(reply), 4)}
    for name, value in stored.items():
        if len(value) <= MAX_STOP_ENTRY_BYTES:
            assert sent[name] == value.encode() and entries[name] == (float(name[1:]), None)
        else:
            assert sent[name] is None and name not in entries


# -- a safety stop an oversized value replaced --------------------------------------------


def test_a_stop_replaced_by_an_oversized_value_is_written_back_by_a_host_holding_it(
    redis_server, stores, tmp_path, impl
):
    """Whoever can write Redis replaced the fleet's entry of a guardrail stop with a
    value too long to read. It is passed over (unread, it cannot be held: its record is
    what would tell the control to serve), and the host that holds the stop writes it
    back over it at its start (the write script replaces a value it cannot read); a
    new host then holds the stop, serving the control."""
    from tests.test_fix10_exp_guardrail_hold import TEST
    from tests.test_fix12_experiments_fleet_hold import _manager, _publish, _served
    from tests.test_fix13_fleet_stop_register import _host, _stopped_then_down

    base = redis_server.url + "?namespace=ab&poll=0.1"
    reg = "{ab}:flags:guardrail-stops"
    url_a, state_a = _host(base, tmp_path, "a")
    before = _stopped_then_down(url_a, state_a, impl)
    r = redis_server.client()
    r.hset(reg, TEST, BIG)
    reader = stores(redis_server.url + "?namespace=ab&cache=off")
    with monitored(redis_server) as commands:
        assert TEST not in reader.read_stop_register()
        m = _manager(url_a, state_a, impl)  # A's start: its register, written back
        m.close()
    rewritten = next(
        i for i, c in enumerate(commands) if c["command"].startswith(f"HSET {reg} {TEST} ")
    )
    assert reads_of(commands[:rewritten], reg, TEST) == []
    assert reader.stats["stops_rejected"] == 1
    assert reader.read_stop_register()[TEST][1] is not None
    _publish(stores, url_a, before)  # a document serving the test's variants again
    url_b, state_b = _host(base, tmp_path, "b")
    b = _manager(url_b, state_b, impl)
    try:
        assert _served(b) == {"control"}
    finally:
        b.close()
