"""Fleet store, second audit: hostile or broken state in Redis, against a real
redis-server. Whatever another program (or an attacker with write access) leaves in
the keys, followers keep the last good flags, report it once with a clear error (not
as a lost connection), and a forced publish repairs the store with a version every
follower accepts."""

from __future__ import annotations

import hashlib
import threading

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfgcore.errors import ConfigError
from cfgcore.runtime.redis_store import RedisFlagStore
from cfgcore.runtime.redis_url import parse_redis_url
from cfgcore.snapshot import Flag
from tests.fleet_helpers import add, quiet_fleet  # noqa: F401  (quiet_fleet: an autouse fixture)
from tests.fuzz import examples
from tests.redis_server import wait_for


def _follower(stores, url):
    store = stores(url)
    got: list = []
    errors: list = []
    store.read()
    store.watch(got.append, on_error=errors.append)
    assert wait_for(lambda: store.connected)
    return store, got, errors


def _replace_key(r, key, kind):
    r.delete(key)
    {
        "string": lambda: r.set(key, "hello"),
        "list": lambda: r.rpush(key, "a", "b"),
        "set": lambda: r.sadd(key, "a"),
        "zset": lambda: r.zadd(key, {"a": 1.0}),
        "stream": lambda: r.xadd(key, {"a": "1"}),
    }[kind]()


@pytest.mark.parametrize("kind", ["string", "list", "set", "zset", "stream"])
def test_a_key_replaced_by_another_type_is_a_refused_document_not_a_lost_connection(
    redis_server, stores, tmp_path, kind
):
    url = redis_server.url + f"?namespace=wt&poll=0.1&cache={tmp_path / 'c.msgpack'}"
    writer = stores(url)
    for i in range(3):
        writer.update(add(f"f{i}"))
    follower, got, errors = _follower(stores, url)
    assert follower.version == 3
    r = redis_server.client()
    _replace_key(r, "{wt}:flags", kind)
    r.publish("{wt}:flags:changes", "4 x")
    assert wait_for(lambda: errors)
    # reported once, clearly, while the follower stays connected (no reconnect storm)
    assert wait_for(lambda: follower.stats["rejected"] == 1)
    assert follower.connected and follower.stats["reconnects"] == 0
    assert f"holds a Redis {kind}" in str(errors[0]) and "{wt}:flags" in str(errors[0])
    assert "cfgcore publish" in str(errors[0])
    assert len(errors) == 1 and follower.version == 3 and got == []
    # read() says what is wrong (it is not "Redis unreachable", no cache file served)
    with pytest.raises(ConfigError, match=f"holds a Redis {kind}"):
        stores(url).read()
    # a normal write refuses; a forced one (cfgcore publish) repairs, numbered above 3
    with pytest.raises(ConfigError, match=f"holds a Redis {kind}"):
        writer.update(add("x"))
    _, repaired = stores(url).update(add("repaired"), force=True)
    assert repaired.version > 3
    assert wait_for(lambda: got and got[-1].version == repaired.version)
    assert set(got[-1].snapshot.flags) == {"repaired"}


def test_the_flag_set_keeps_its_flags_and_health_says_why(redis_server, tmp_path, impl):
    from cfgcore.dynamic_config import DynamicConfigurationManager
    from cfgcore.engine import engine_class

    url = redis_server.url + f"?namespace=wh&poll=0.1&cache={tmp_path / 'c.msgpack'}"
    manager = DynamicConfigurationManager(
        store=url, state_dir=tmp_path / "state", engine=engine_class(impl)()
    )
    try:
        manager._live.update(add("a"), source="test")
        assert manager.is_feature_enabled("a")
        _replace_key(redis_server.client(), "{wh}:flags", "list")
        assert wait_for(lambda: manager._live.last_error is not None)
        assert manager.is_feature_enabled("a")  # the last good flags serve
        report = manager.health()
        assert report.ready
        flags = next(c for c in report.readiness if c.name == "flags")
        assert flags.status == "warn" and "holds a Redis list" in flags.detail
        store = next(c for c in report.readiness if c.name == "flag_store")
        assert store.status == "ok"  # Redis itself is fine and followed
    finally:
        manager.close()


@pytest.mark.parametrize("bad", ["abc", "1e300", "-5", "inf", str(2**60), "3.5"])
def test_a_forced_repair_over_a_corrupt_version_reaches_every_follower(redis_server, stores, bad):
    url = redis_server.url + "?namespace=cv&poll=0.1&cache=off"
    writer = stores(url)
    for i in range(3):
        writer.update(add(f"f{i}"))
    follower, got, errors = _follower(stores, url)
    r = redis_server.client()
    r.hset("{cv}:flags", "version", bad)
    r.publish("{cv}:flags:changes", "4 x")
    assert wait_for(lambda: errors)
    assert follower.version == 3 and got == []
    with pytest.raises(ConfigError, match="not a usable number|not a number|out of range"):
        writer.update(add("x"))
    # the repair comes from a process that has seen nothing (cfgcore publish)
    _, repaired = stores(url).update(add("repaired"), force=True)
    assert 3 < repaired.version < 2**53
    assert int(r.hget("{cv}:flags", "version")) == repaired.version
    assert wait_for(lambda: got and got[-1].version == repaired.version)


@pytest.mark.parametrize("floor", ["inf", "1e300", "-1", "nan", "hash"])
def test_a_garbage_floor_key_neither_blocks_nor_poisons_writes(redis_server, stores, floor):
    url = redis_server.url + "?namespace=fl&cache=off"
    r = redis_server.client()
    if floor == "hash":
        r.hset("{fl}:flags:floor", "a", "1")
    else:
        r.set("{fl}:flags:floor", floor)
    writer = stores(url)
    _, first = writer.update(add("a"), force=True)
    _, second = writer.update(add("b"))
    assert (first.version, second.version) == (1, 2)
    assert stores(url).read().version == 2


def _nested(depth: int) -> bytes:
    """A flag document whose one rule nests ``not`` ``depth`` times (MessagePack built
    by hand: the encoders refuse such depths themselves)."""
    inner = msgspec.msgpack.encode({"attr": "x", "eq": 1})
    head = msgspec.msgpack.encode({"flags": {"a": {"default": "on", "rules": [{"serve": "on"}]}}})
    # {"flags": {"a": {"default": "on", "rules": [{"serve": "on", "when": <cond>}]}}}
    assert head.endswith(b"\x81\xa5serve\xa2on")
    head = head[: -len(b"\x81\xa5serve\xa2on")] + b"\x82\xa5serve\xa2on\xa4when"
    return head + b"\x81\xa3not" * depth + inner


def _plant(redis_server, namespace: str, data: bytes) -> None:
    """Write ``data`` as version 2 of ``namespace``'s flag document, with its checksum,
    behind cfgcore's back (a writer with Redis access and no cfgcore), and announce it."""
    r = redis_server.client()
    r.hset(
        f"{{{namespace}}}:flags",
        mapping={"version": 2, "data": data, "checksum": hashlib.sha256(data).hexdigest()},
    )
    r.publish(f"{{{namespace}}}:flags:changes", "2 x")


def test_a_document_nested_too_deeply_is_refused_once(redis_server, stores):
    url = redis_server.url + "?namespace=deep&poll=0.1&cache=off"
    writer = stores(url)
    writer.update(add("a"))
    follower, got, errors = _follower(stores, url)
    data = _nested(100_000)
    _plant(redis_server, "deep", data)
    assert wait_for(lambda: errors)
    assert "nested too deeply" in str(errors[0])
    with pytest.raises(ConfigError, match="nested too deeply"):
        stores(url).read()
    assert wait_for(lambda: follower.stats["rejected"] == 1)
    assert follower.connected and follower.stats["reconnects"] == 0
    assert follower.version == 1 and got == []


# -- credentials in URLs are never shown ------------------------------------------------


@settings(max_examples=examples(60), deadline=None)
@given(
    secret=st.text(
        alphabet=st.characters(min_codepoint=33, max_codepoint=126, exclude_characters="@/?#&=%:"),
        min_size=6,
        max_size=20,
    ),
    where=st.sampled_from(["password", "sentinel_password", "ssl_password", "sentinel_pasword"]),
    broken=st.sampled_from(["namespce=x", "wait=x", "poll=abc", "db=zero"]),
)
def test_an_invalid_url_never_shows_a_secret(secret, where, broken):
    if where == "password":
        url = f"redis://user:{secret}@h:6379/0?{broken}"
    else:
        url = f"redis://h:6379/0?{where}={secret}&{broken}"
    if broken == "db=zero":
        url = url.replace("/0?", "/zero?").replace("&db=zero", "").replace("?db=zero", "?")
    with pytest.raises(ConfigError) as err:
        parse_redis_url(url)
    assert secret not in str(err.value)
    assert "***" in str(err.value)


def test_an_unparseable_url_is_a_config_error_without_the_password():
    with pytest.raises(ConfigError, match="not a valid URL") as err:
        parse_redis_url("redis://user:pa[ss@h:6379/0?sentinel_password=s3cret")
    assert "pa[ss" not in str(err.value) and "s3cret" not in str(err.value)


# -- what cfgcore watch --store prints ----------------------------------------------


def test_watch_store_escapes_what_the_document_says(redis_server, capsys):
    """Writer names and flag keys come from Redis: an escape sequence or a newline in
    them reaches the operator's terminal escaped, on one line."""
    from cfgcore.cli import main

    url = redis_server.url + "?namespace=esc&cache=off"
    writer = RedisFlagStore(url)
    writer.update(lambda s: s)
    done: list[int] = []
    t = threading.Thread(
        target=lambda: done.append(
            main(["watch", "--store", url, "--count", "1", "--timeout", "20"])
        )
    )
    t.start()
    err: list[str] = []
    try:
        wait_for(lambda: err.append(capsys.readouterr().err) or "version 1" in "".join(err))
        writer.update(add("\x1b[2Jevil\nflag"), actor="\x1b[31mmallory\x1b[0m")
        t.join(30)
    finally:
        writer.close()
    out = capsys.readouterr().out
    assert done == [0]
    assert "\x1b" not in out
    lines = out.splitlines()
    assert len(lines) == 1
    assert "\\x1b[2Jevil\\nflag" in lines[0] and "\\x1b[31mmallory" in lines[0]


def test_oversized_fields_beside_the_data_are_not_downloaded(redis_server, stores):
    """The data has a size limit; the other fields had none: a follower downloaded (at
    every poll) whatever was stored in them. A writer field past 64 KiB, or a checksum
    past 128 bytes, refuses the document, naming the field (neither is sent; see
    tests/test_fleet_field_limits.py for what the script reads)."""
    url = redis_server.url + "?namespace=big&cache=off"
    writer = stores(url)
    writer.update(add("a"))
    r = redis_server.client()
    big_writer = msgspec.msgpack.encode({"actor": "x" * 2_000_000, "host": "h", "pid": 1})
    r.hset("{big}:flags", "writer", big_writer)
    with pytest.raises(ConfigError, match="the 'writer' field of {big}:flags is 2,000,"):
        stores(url).read()
    r.hdel("{big}:flags", "writer")
    r.hset("{big}:flags", "checksum", "0" * 1_000_000)
    with pytest.raises(ConfigError, match="the 'checksum' field of {big}:flags is 1,000,000"):
        stores(url).read()


def test_watch_store_shows_a_version_that_does_not_compile_as_rejected(redis_server, capsys):
    """Every process refuses a stored version that does not compile and keeps its
    flags: cfgcore watch --store must not print it as the store's new flags (nor count
    its flags as changed in the next version)."""
    from cfgcore.cli import main

    url = redis_server.url + "?namespace=nc&cache=off"
    writer = RedisFlagStore(url)
    writer.update(add("a"))
    done: list[int] = []
    t = threading.Thread(
        target=lambda: done.append(
            main(["watch", "--store", url, "--count", "2", "--timeout", "20"])
        )
    )
    t.start()
    # Joined before splitting: print() writes a line and its newline separately, so a
    # read between the two saw "...: a" and then "" as two lines.
    outs: list[str] = []
    err: list[str] = []

    def printed(text: str) -> bool:
        captured = capsys.readouterr()
        outs.append(captured.out)
        err.append(captured.err)
        return text in "".join(err) or text in "".join(outs)

    try:
        assert wait_for(lambda: printed("version 1"), timeout=20)
        bad = msgspec.msgpack.encode({"flags": {"x": {"default": "nope"}}})
        _plant(redis_server, "nc", bad)
        assert wait_for(lambda: printed("REJECTED"), timeout=20)
        # the repair (cfgcore publish): a whole document, the last good flags and b
        good = {"a": Flag(default="on"), "b": Flag(default="on")}
        writer.update(lambda s: msgspec.structs.replace(s, flags=good), force=True)
        t.join(30)
    finally:
        writer.close()
    printed("")
    assert done == [0]
    out = "".join(outs).splitlines()
    assert len(out) == 2
    assert "REJECTED" in out[0] and "version 2 does not compile" in out[0] and "nope" in out[0]
    assert " v3 " in out[1] and out[1].endswith(": b")  # a served before v2 too
    assert "<input>" not in out[0] and out[0].count("redis://") == 1


@pytest.mark.parametrize(
    "query, message",
    [
        ("poll=0", "poll: expected a number of seconds above 0"),
        ("poll=-1", "poll: expected a number of seconds above 0"),
        ("poll=nan", "poll: expected a number of seconds above 0"),
        ("poll=inf", "poll: expected a number of seconds above 0"),
        ("backoff_max=0", "backoff_max: expected a number of seconds above 0"),
        ("socket_timeout=0", "socket_timeout: expected a number of seconds above 0"),
        ("socket_connect_timeout=-2", "socket_connect_timeout: expected"),
        ("wait=-1", "wait: expected 0 or more"),
        ("wait_timeout=-5", "wait_timeout: expected 0 or more"),
    ],
)
def test_url_options_the_follower_cannot_run_with_are_refused(query, message):
    """poll=0 made the follower re-read the key in a busy loop, backoff_max=0 reconnect
    in one, poll=nan never poll: refused when the URL is parsed, naming the option."""
    with pytest.raises(ConfigError, match=message):
        parse_redis_url(f"redis://:pw@h:6379/0?{query}")


@pytest.mark.parametrize(
    "url, message",
    [
        ("redis://h:0/0", "port of h: expected 1 to 65535"),
        ("redis://h:70000/0", "port of h: expected 1 to 65535"),
        ("redis://h:6379/-1", "database: expected 0 or more"),
    ],
)
def test_ports_and_databases_out_of_range_are_refused(url, message):
    with pytest.raises(ConfigError, match=message):
        parse_redis_url(url)


def test_watch_store_follows_a_flags_file(tmp_path, capsys):
    """cfgcore watch --store accepts a flags file, but a file store has no follower
    thread: the watch printed its first version and then nothing, whatever changed."""
    import json

    from cfgcore.cli import main
    from cfgcore.runtime.atomicio import atomic_write

    path = tmp_path / "flags.json"
    path.write_text(json.dumps({"flags": {"a": {"default": "on"}}}))
    done: list[int] = []
    t = threading.Thread(
        target=lambda: done.append(
            main(["watch", "--store", str(path), "--count", "3", "--timeout", "30"])
        )
    )
    t.start()
    # Joined before splitting: print() writes a line and its newline separately, so a
    # read between the two saw "...: a" and then "" as two lines.
    outs: list[str] = []
    err: list[str] = []

    def printed(text: str) -> bool:
        captured = capsys.readouterr()
        outs.append(captured.out)
        err.append(captured.err)
        return text in "".join(err) or text in "".join(outs)

    assert wait_for(lambda: printed("version"), timeout=20)
    atomic_write(str(path), json.dumps({"flags": {"a": {"default": "off"}}}).encode())
    assert wait_for(lambda: printed(": a"), timeout=20)
    atomic_write(str(path), b"{not json")
    assert wait_for(lambda: printed("REJECTED"), timeout=20)
    atomic_write(str(path), json.dumps({"flags": {"a": {"default": "nope"}}}).encode())
    t.join(30)
    printed("")
    assert done == [0]
    out = "".join(outs).splitlines()
    assert len(out) == 3, out
    assert out[0].endswith(": a")
    assert "REJECTED" in out[1] and "flags.json" in out[1]
    assert "REJECTED" in out[2] and "does not compile" in out[2] and "nope" in out[2]


_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**63), max_value=2**64 - 1),  # what MessagePack holds
        st.floats(),
        st.text(max_size=40),
    ),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
_field = st.one_of(
    st.none(),
    st.binary(max_size=64),
    st.integers(min_value=-(2**70), max_value=2**70).map(lambda n: str(n).encode()),
    st.sampled_from([b"inf", b"-inf", b"nan", b"1e300", b"0", b"1", b"3.5", b" 7", b"\xff"]),
)


# The fixture's server is shared by the examples on purpose: each one resets its keys.
@settings(
    max_examples=examples(150),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    version=_field,
    checksum=_field,
    writer=st.one_of(_field, _values.map(msgspec.msgpack.encode)),
    data=st.one_of(
        _field,
        _values.map(msgspec.msgpack.encode),
        st.just(msgspec.msgpack.encode({"flags": {"a": {"default": "on"}}})),
    ),
    good_checksum=st.booleans(),
)
def test_whatever_the_hash_holds_read_answers_or_raises_config_error(
    redis_server, version, checksum, writer, data, good_checksum
):
    """Any value in any field of the stored hash: read() returns a document or raises
    ConfigError naming the store, never anything else; a forced write then repairs
    it."""
    url = redis_server.url + "?namespace=fz&cache=off"
    r = redis_server.client()
    r.delete("{fz}:flags", "{fz}:flags:floor")
    fields = {"version": version, "checksum": checksum, "writer": writer, "data": data}
    if good_checksum and isinstance(data, bytes):
        fields["checksum"] = hashlib.sha256(data).hexdigest().encode()
    present = {k: v for k, v in fields.items() if v is not None}
    if present:
        r.hset("{fz}:flags", mapping=present)
    store = RedisFlagStore(url)
    try:
        try:
            doc = store.read()
        except ConfigError as exc:
            assert "namespace=fz" in str(exc)
        else:
            assert type(doc.version) is int and 0 <= doc.version <= 2**53
            json_ready = {k: v for k, v in doc.writer.items()}
            assert set(json_ready) <= {"host", "actor", "id", "pid", "time"}
        only_ok = {"ok": Flag(default="on")}  # a whole document, as cfgcore publish writes
        _, repaired = store.update(lambda s: msgspec.structs.replace(s, flags=only_ok), force=True)
        assert 0 < repaired.version < 2**53
        assert set(store.read().snapshot.flags) == {"ok"}
    finally:
        store.close()


def _packed(items: int) -> bytes:
    """A flag document whose one variant value is an array of empty arrays, making the
    document ``items`` items in all (1 byte each: MessagePack built by hand)."""
    head = msgspec.msgpack.encode({"flags": {"a": {"default": "on", "variants": {"on": "X"}}}})
    assert head.endswith(b"\xa1X")
    around = msgspec.msgpack.decode(head[:-2] + b"\xc0")  # the same, `on` holding nil
    n = items - _items(around)  # the variant's array and its elements replace nil
    return head[:-2] + b"\xdd" + n.to_bytes(4, "big") + b"\x90" * n


def _items(value) -> int:
    if isinstance(value, dict):
        return 1 + sum(_items(k) + _items(v) for k, v in value.items())
    if isinstance(value, list):
        return 1 + sum(_items(v) for v in value)
    return 1


def test_a_document_of_more_items_than_cfgcore_decodes_is_refused_before_decoding(
    redis_server, stores
):
    # 1 MB of empty arrays: decoding it built ~1M objects (4 MB made almost 1 GB and
    # 20 s of CPU in each process); the scan that looks for repeated keys counts them.
    from cfgcore.snapshot import MAX_MSGPACK_ITEMS, decode_snapshot

    url = redis_server.url + "?namespace=packed&poll=0.1&cache=off"
    writer = stores(url)
    writer.update(add("a"))
    follower, got, errors = _follower(stores, url)
    data = _packed(MAX_MSGPACK_ITEMS + 1)
    _plant(redis_server, "packed", data)
    assert wait_for(lambda: errors)
    said = f"holds {MAX_MSGPACK_ITEMS + 1:,} items"
    assert said in str(errors[0])
    with pytest.raises(ConfigError, match=said):
        stores(url).read()
    assert wait_for(lambda: follower.stats["rejected"] == 1)
    assert follower.version == 1 and got == []  # the last good flags serve on
    # at the bound it is decoded (one variant of 999,9xx empty arrays)
    snap = decode_snapshot(_packed(MAX_MSGPACK_ITEMS), "msgpack", file="at-bound")
    assert len(snap.flags["a"].variants["on"]) == MAX_MSGPACK_ITEMS - _items(
        {"flags": {"a": {"default": "on", "variants": {"on": None}}}}
    )


def test_a_refusal_is_over_once_a_later_version_serves(redis_server, stores):
    # last_error says the problems still standing: a refused version that a good one
    # replaced was still said as the store's problem.
    url = redis_server.url + "?namespace=over&poll=0.1&cache=off"
    writer = stores(url)
    writer.update(add("a"))
    follower, got, errors = _follower(stores, url)
    data = _nested(100_000)
    _plant(redis_server, "over", data)
    assert wait_for(lambda: follower.stats["rejected"] == 1)
    assert "nested too deeply" in str(follower.last_error)
    writer.update(add("b"), force=True)  # the repair: a version every follower takes
    assert wait_for(lambda: got and "b" in got[-1].snapshot.flags)
    assert wait_for(lambda: follower.last_error is None), follower.last_error
