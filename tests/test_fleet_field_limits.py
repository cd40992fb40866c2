"""The read script measures every field of the document before it reads any.

The data had a size limit; the fields beside it were read first and measured after
(``environment``, ``writer``, ``signature``, ``epoch``, ``forced``...): whatever a
writer with access to Redis stored there was copied into the script's memory by every
poll of every process of the fleet. Now a field longer than cfgcore writes there
(``FIELD_LIMITS``) is never read: the document is refused as an oversized one is,
counted, logged and reported once, naming the key and the field, the last good document
keeps serving, and the next good one is taken. Real redis-server; MONITOR shows every
command a script runs, so the tests see what was (not) read.
"""

from __future__ import annotations

import hashlib
import logging
import shlex
from collections.abc import Callable

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfgcore.cli import main
from cfgcore.errors import ConfigError
from cfgcore.runtime.redis_store import FIELD_LIMITS, RedisFlagStore
from cfgcore.snapshot import Flag
from tests.fuzz import examples
from tests.redis_server import monitored, reads_of, wait_for

JWT = "sup3r-s3cret-signing-key-0123456789abcdef"

# A value that fits each field's limit exactly, and that the store takes there (read
# whatever it is: a writer record that does not decode is shown as unknown, a signature
# is checked only by processes that hold verification keys).
AT_LIMIT: dict[str, Callable[[], bytes]] = {
    "version": lambda: b"0" * (FIELD_LIMITS["version"] - 1) + b"2",
    "epoch": lambda: b"e" * FIELD_LIMITS["epoch"],
    "forced": lambda: b"0" * FIELD_LIMITS["forced"],
    "writer": lambda: b"w" * FIELD_LIMITS["writer"],
    "signature": lambda: b"s" * FIELD_LIMITS["signature"],
    "environment": lambda: b"e" * FIELD_LIMITS["environment"],
}


@pytest.fixture(autouse=True)
def _quiet():
    logging.getLogger("cfgcore.fleet").setLevel(logging.CRITICAL)
    yield
    logging.getLogger("cfgcore.fleet").setLevel(logging.NOTSET)


def add(name: str):
    return lambda s: msgspec.structs.replace(s, flags={**s.flags, name: Flag(default="on")})


def _follower(url: str) -> tuple[RedisFlagStore, list[Exception]]:
    store = RedisFlagStore(url)
    errors: list[Exception] = []
    store.read()
    store.watch(lambda doc: None, on_error=errors.append)
    wait_for(lambda: store.connected)
    return store, errors


def _after_hset(commands: list[dict], key: str) -> list[dict]:
    """The commands MONITOR reported from the first HSET of ``key`` on."""
    for i, c in enumerate(commands):
        words = c["command"].split(" ", 2)
        if words[0].upper() == "HSET" and len(words) > 1 and words[1] == key:
            return commands[i:]
    raise AssertionError(f"no HSET of {key} was monitored")


def polls(store: RedisFlagStore, n: int = 2) -> None:
    """Wait for ``n`` more reads of the key by the follower."""
    for _ in range(n):
        before = store.confirmed_at
        wait_for(lambda before=before: store.confirmed_at > before)


@pytest.mark.parametrize("field", list(FIELD_LIMITS))
def test_a_field_over_its_limit_is_refused_unread_and_the_next_document_taken(redis_server, field):
    ns = f"lim{field}"
    key = f"{{{ns}}}:flags"
    url = redis_server.url + f"?namespace={ns}&cache=off"
    r = redis_server.client()
    writer = RedisFlagStore(url)
    follower, errors = _follower(url + "&poll=0.05")
    try:
        writer.update(add("a"))
        wait_for(lambda: follower.version == 1)
        big = b"x" * 3_000_000  # what a hostile writer stores: every poll copied it
        with monitored(redis_server) as commands:
            if field == "version":
                r.hset(key, field, big)
            else:  # (a newer version, the same flags: a document followers read)
                r.hset(key, mapping={field: big, "version": 2})
            r.publish(f"{key}:changes", "2 x")
            wait_for(lambda: errors)
            polls(follower)  # polls while it stays stored: not read, not reported again
            with pytest.raises(ConfigError) as started:
                RedisFlagStore(url).read()  # (a process starting now)
        # From the hostile write on: a poll just before it read the field as cfgcore
        # wrote it (absent, or within its limit), as every read does.
        stored = _after_hset(commands, key)
        assert reads_of(stored, key, field) == []
        assert reads_of(stored, key, "data") == []  # (nor its data, nor its writer)
        msg = str(errors[0])
        assert f"the {field!r} field of {key} is 3,000,000 bytes" in msg, msg
        assert f"over the {FIELD_LIMITS[field]:,}-byte limit for it: not read" in msg
        assert "Repair with cfgcore publish --store" in msg
        assert f"the {field!r} field of {key} is 3,000,000 bytes" in str(started.value)
        assert len(errors) == 1 and follower.stats["rejected"] == 1
        assert follower.version == 1 and follower.last_error == msg
        # The repair (a forced write, as cfgcore publish makes) rewrites every field:
        # the next document is taken. (A forced change starts from no flags when the
        # stored document cannot be read.)
        _, new = writer.update(add("b"), force=True)
        wait_for(lambda: follower.version == new.version)
        assert set(follower.read().snapshot.flags) == {"b"}
        assert len(r.hget(key, field) or b"") <= FIELD_LIMITS[field]
        assert follower.stats["rejected"] == 1
    finally:
        follower.close()
        writer.close()


@pytest.mark.parametrize("field", ["environment", "writer", "signature"])
def test_a_field_put_right_in_place_is_read_again(redis_server, field):
    """A refusal stands while the store holds the same document, so it is not read at
    every poll; the field put back to a size cfgcore writes is a document read again
    (and taken), although its version, checksum and data are the same."""
    ns = f"back{field}"
    key = f"{{{ns}}}:flags"
    url = redis_server.url + f"?namespace={ns}&cache=off"
    r = redis_server.client()
    writer = RedisFlagStore(url)
    follower, errors = _follower(url + "&poll=0.05")
    try:
        writer.update(add("a"))
        wait_for(lambda: follower.version == 1)
        r.hset(key, mapping={field: b"y" * (FIELD_LIMITS[field] + 1), "version": 2})
        wait_for(lambda: errors)
        polls(follower)
        assert follower.version == 1 and follower.stats["rejected"] == 1
        r.hdel(key, field)
        wait_for(lambda: follower.version == 2)
        assert follower.stats["rejected"] == 1 and len(errors) == 1
    finally:
        follower.close()
        writer.close()


@pytest.mark.parametrize("field", list(AT_LIMIT))
def test_a_field_at_its_limit_is_read(redis_server, stores, field):
    ns = f"at{field}"
    key = f"{{{ns}}}:flags"
    url = redis_server.url + f"?namespace={ns}&cache=off"
    r = redis_server.client()
    stores(url).update(add("a"))
    value = AT_LIMIT[field]()
    r.hset(key, mapping={"version": 2, field: value})  # ("00...02": version 2)
    reader = stores(url)
    with monitored(redis_server) as commands:
        doc = reader.read()
    assert doc.version == 2 and set(doc.snapshot.flags) == {"a"}
    assert reads_of(commands, key, field)  # read: within its limit
    if field == "environment":  # (a name -e takes: suggested)
        assert f" -e {value.decode()} --flags FILE" in reader._repair_command()
    r.hset(key, field, value + b"0")
    with pytest.raises(ConfigError, match=f"the '{field}' field of .* over the"):
        stores(url).read()


@settings(
    max_examples=examples(40),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    field=st.sampled_from(list(FIELD_LIMITS)),
    tail=st.binary(min_size=1, max_size=300),
)
def test_whatever_passes_a_fields_limit_is_not_sent(redis_server, field, tail):
    ns = "anyfield"
    key = f"{{{ns}}}:flags"
    r = redis_server.client()
    data = msgspec.msgpack.encode({"flags": {"a": {"default": "on"}}})
    r.delete(key)
    r.hset(
        key,
        mapping={"version": 3, "data": data, "checksum": hashlib.sha256(data).hexdigest()},
    )
    value = b"\x00" * FIELD_LIMITS[field] + tail
    r.hset(key, field, value)
    with RedisFlagStore(redis_server.url + f"?namespace={ns}&cache=off") as store:
        raw = store._read_raw(store._client)
        assert raw[12] == f"{field} {len(value)}".encode()
        # nothing that was stored beside the version and checksum is sent
        assert raw[2] is None and raw[3] is None and raw[10] is None and raw[11] is None
        assert value not in raw
        with pytest.raises(ConfigError, match=f"the '{field}' field of {key} is"):
            store._from_raw(raw)


def test_oversized_floor_keys_are_not_read(redis_server, stores):
    """The floor key and the epoch recorded beside it are plain strings anyone with
    access can set: one longer than a version (or a record) is ignored, as one that is
    not a number is, without being read, by the scripts and by a start that finds the
    store empty."""
    url = redis_server.url + "?namespace=bigfloor&cache=off"
    r = redis_server.client()
    r.set("{bigfloor}:flags:floor", b"7" * 2_000_000)
    # a usable floor, and a record beside it that is not one
    stores(redis_server.url + "?namespace=bigrecord&cache=off").update(add("a"))
    r.set("{bigrecord}:flags:floor", b"1")
    r.set("{bigrecord}:flags:floor:epoch", b"1 " + b"a" * 2_000_000)
    with monitored(redis_server) as commands:
        store = stores(url)
        assert store.read().version == 0  # a new store: no version was served
        _, new = store.update(add("a"))
        assert store.read().version == new.version == 1
        doc = stores(redis_server.url + "?namespace=bigrecord&cache=off").read()
        assert doc.version == 1  # (not judged by a record it cannot read)
    oversized = {"{bigfloor}:flags:floor", "{bigrecord}:flags:floor:epoch"}
    gets = [
        c["command"][:80]
        for c in commands
        if c["command"].split(" ")[0].upper() in ("GET", "GETSET", "MGET", "GETDEL")
        and oversized & set(c["command"].split(" ")[1:])
    ]
    assert gets == []
    # (the usable floor beside the record is read: the helper sees such reads)
    assert any(c["command"] == "GET {bigrecord}:flags:floor" for c in commands)


def test_a_publish_replaces_an_oversized_environment_record(
    redis_server, bundled_config, tmp_path, monkeypatch, capsys
):
    """The refusal's repair, as printed: cfgcore publish with the -e the process found
    recorded before. The publish script takes an environment record longer than
    cfgcore writes for none (it is no environment a publish recorded), so the command
    is not refused for another environment, and every follower takes what it wrote."""
    monkeypatch.setenv("CFGCORE_CONFIG_DIR", str(bundled_config))
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("JWT_SIGNING_KEY", JWT)
    monkeypatch.delenv("CONFIG_ENVIRONMENT", raising=False)
    monkeypatch.delenv("CFGCORE_ENVIRONMENT", raising=False)
    ns = "envbig"
    key = f"{{{ns}}}:flags"
    url = redis_server.url + f"?namespace={ns}"
    r = redis_server.client()
    assert main(["publish", "--store", url + "&cache=off", "-e", "staging", "--flags"]) == 0
    cache = tmp_path / "f.msgpack"
    follower, errors = _follower(url + f"&poll=0.05&cache={cache}")
    try:
        wait_for(lambda: follower._cached == 1)
        r.hset(key, mapping={"environment": "s" * 5000, "version": 2})
        wait_for(lambda: errors)
        msg = str(errors[0])
        assert f"the 'environment' field of {key} is 5,000 bytes" in msg, msg
        command = msg[msg.index("cfgcore publish --store") :].split(" (", 1)[0]
        assert command.endswith(" -e staging --flags FILE"), command
        argv = shlex.split(command.replace("--flags FILE", f"--flags-from-cache {cache}"))
        capsys.readouterr()
        assert main(argv[1:]) == 0, capsys.readouterr().err
        wait_for(lambda: follower.version == 3)
        assert r.hget(key, "environment") == b"staging"
        assert follower.stats["rejected"] == 1
    finally:
        follower.close()


def test_a_publish_refuses_an_environment_the_flag_document_cannot_record(redis_server):
    from cfgcore.runtime.redis_store import PublishedConfig, RedisConfigStore

    url = redis_server.url + "?namespace=longenv&cache=off"
    env = "e" * (FIELD_LIMITS["environment"] + 1)
    with RedisConfigStore(url, env) as config, RedisFlagStore(url) as flags:
        with pytest.raises(ConfigError, match="longer than 200 bytes.*nothing published"):
            config.publish_with_flags(
                PublishedConfig(environment=env, config={}), flags, lambda s: s
            )
    assert redis_server.client().keys("{longenv}:*") == []


def test_a_long_actor_is_written_within_the_writer_fields_limit(redis_server, stores):
    """Readers keep 256 characters of an actor: a writer record holding a longer one
    passed the writer field's limit, and every reader refused the document."""
    url = redis_server.url + "?namespace=actor&cache=off"
    stores(url).update(add("a"), actor="x" * 200_000)
    assert len(redis_server.client().hget("{actor}:flags", "writer")) < 2048
    doc = stores(url).read()
    assert doc.version == 1 and doc.writer["actor"] == "x" * 256


def test_monitor_helper_sees_a_scripts_reads(redis_server):
    """The helper the tests above rely on reports what a script reads (else their
    empty lists would prove nothing)."""
    r = redis_server.client()
    r.hset("{m}:flags", "writer", b"w" * 10)
    with monitored(redis_server) as commands:
        r.eval("return redis.call('HGET', KEYS[1], 'writer')", 1, "{m}:flags")
    assert reads_of(commands, "{m}:flags", "writer") == ["HGET {m}:flags writer"]
