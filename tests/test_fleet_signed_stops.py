"""Signed entries of the fleet's guardrail stop register (``{NS}:flags:guardrail-stops``).

Without signatures, whoever can write Redis could plant a stop for any A/B test: a new
host holds it and, holding the signing key, writes the fleet document back with the
test stopped (a signed document serving the control to everyone), and a running
process refuses every document that serves the test. With fleet keys configured, each
entry is signed over the key id, the register's Redis key, the test's name, the
entry's time and record and its writer; an entry unsigned, tampered with, moved to
another test or namespace, or signed by a key the reader does not trust is passed over
and reported as a refused document is. With no keys, the stored entries are exactly
those of the release before. A real redis-server, real stores and managers."""

from __future__ import annotations

import json
import time

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.errors import ConfigError
from cfgcore.experiments.abtest import GUARDRAIL_STOPPED_AT
from cfgcore.runtime.redis_store import RedisFlagStore, _canonical, _stop_signed
from cfgcore.runtime.signing import FleetKeys, generate_signing_pair
from cfgcore.snapshot import Flag
from tests.fuzz import examples
from tests.redis_server import wait_for
from tests.test_fix10_exp_guardrail_hold import TEST, _guarded_test
from tests.test_fix12_experiments_fleet_hold import _manager, _served
from tests.test_metrics import value
from tests.texts import any_text

K1 = generate_signing_pair("k1")
K2 = generate_signing_pair("k2")
REG = "{st}:flags:guardrail-stops"
RECORD = {"status": "stopped", GUARDRAIL_STOPPED_AT: 100.0, "control": "control"}


@pytest.fixture
def url(redis_server):
    return redis_server.url + "?namespace=st&cache=off"


@pytest.fixture
def opened():
    stores: list[RedisFlagStore] = []

    def open_(url: str, keys: FleetKeys | None = None) -> RedisFlagStore:
        store = RedisFlagStore(url, keys=keys if keys is not None else FleetKeys())
        stores.append(store)
        return store

    yield open_
    for s in stores:
        s.close()


def raw(redis_server) -> dict[str, bytes]:
    return {k.decode(): v for k, v in redis_server.client().hgetall(REG).items()}


def test_without_keys_the_entries_are_as_before(redis_server, url, opened):
    store = opened(url)
    assert store.write_stop_register({"t": (100.0, RECORD), "u": (50, None)}) == 2
    stored = raw(redis_server)
    assert stored["t"] == json.dumps({"at": 100.0, "record": RECORD}, sort_keys=True).encode()
    assert stored["u"] == b'{"at": 50, "record": null}'
    assert store.read_stop_register() == {"t": (100.0, RECORD), "u": (50.0, None)}
    # a later end replaces the stop, an earlier one does not (the script's ordering)
    assert store.write_stop_register({"t": (90.0, None)}) == 0
    assert store.write_stop_register({"t": (100.0, None)}) == 1
    assert store.read_stop_register()["t"] == (100.0, None)


def test_signed_entries_are_taken_by_processes_that_trust_the_key(redis_server, url, opened):
    writer = opened(url, FleetKeys(K1[0]))
    assert writer.write_stop_register({"t": (100.0, RECORD), "u": (50.0, None)}) == 2
    entry = json.loads(raw(redis_server)["t"])
    assert entry["signature"].startswith("v1:ed25519:k1:") and entry["writer"]["pid"]
    reader = opened(url, FleetKeys(None, [K2[1], K1[1]]))
    assert reader.read_stop_register() == {"t": (100.0, RECORD), "u": (50.0, None)}
    assert reader.stats["stops_rejected"] == 0
    # a process that checks nothing reads the same entries (the extra fields ignored)
    assert opened(url).read_stop_register() == reader.read_stop_register()


def _tampered(entry: dict, how: str) -> dict:
    entry = dict(entry)
    if how == "record":
        entry["record"] = {**entry["record"], "control": "treatment"}
    elif how == "time":
        entry["at"] = entry["at"] + 1
    elif how == "writer":
        entry["writer"] = {**entry["writer"], "actor": "someone-else"}
    elif how == "unsigned":
        del entry["signature"]
    elif how == "garbage":
        entry["signature"] = "v1:ed25519:k1:" + "A" * 86
    elif how == "malformed":
        entry["signature"] = "not-a-signature"
    elif how == "no-text":
        entry["signature"] = 12
    return entry


@pytest.mark.parametrize(
    ("how", "why"),
    [
        ("record", "does not match"),
        ("time", "does not match"),
        ("writer", "does not match"),
        ("unsigned", "is not signed"),
        ("garbage", "does not match"),
        ("malformed", "not a cfgcore fleet signature"),
        ("no-text", "is not signed"),
        ("moved", "does not match"),
        ("plain", "is not signed"),
        ("stranger", "which this process does not trust"),
    ],
)
def test_entries_not_signed_by_a_trusted_key_are_refused_and_reported_once(
    redis_server, url, opened, how, why, caplog
):
    signer = opened(url, FleetKeys(K1[0]))
    signer.write_stop_register({"t": (100.0, RECORD), "keep": (100.0, RECORD)})
    r = redis_server.client()
    if how == "moved":  # another test's signed entry, copied under this name
        r.hset(REG, "x", raw(redis_server)["t"])
        r.hdel(REG, "t")
        name = "x"
    elif how == "plain":  # written by a process without keys
        opened(url).write_stop_register({"t": (200.0, None)})
        name = "t"
    elif how == "stranger":
        opened(url, FleetKeys(K2[0])).write_stop_register({"t": (200.0, None)})
        name = "t"
    else:
        entry = _tampered(json.loads(raw(redis_server)["t"]), how)
        r.hset(REG, "t", json.dumps(entry, sort_keys=True))
        name = "t"
    reader = opened(url, FleetKeys(None, [K1[1]]))
    told: list[Exception] = []
    reader.read()
    reader.watch(lambda doc: None, on_error=told.append)  # told to the first listener
    for _ in range(3):
        assert reader.read_stop_register() == {"keep": (100.0, RECORD)}
    assert reader.stats["stops_rejected"] == 1
    assert why in reader.last_error and REG in reader.last_error
    assert f"guardrail stop entry {name!r}" in reader.last_error
    assert len(told) == 1 and why in str(told[0])
    assert sum(REG in r.getMessage() for r in caplog.records if r.levelname == "ERROR") == 1


def test_a_new_bad_value_is_reported_again(redis_server, url, opened):
    reader = opened(url, FleetKeys(None, [K1[1]]))
    r = redis_server.client()
    r.hset(REG, "t", json.dumps({"at": 1, "record": None}))
    reader.read_stop_register()
    reader.read_stop_register()
    r.hset(REG, "t", json.dumps({"at": 2, "record": None}))
    reader.read_stop_register()
    assert reader.stats["stops_rejected"] == 2


def test_a_signer_replaces_an_entry_it_refused_whatever_its_time(redis_server, url, opened):
    """An unsigned entry (planted, or left from before signing was turned on) of the
    same or a later time would win the script's ordering forever: the signer's write
    replaces the value it read and refused, if it is still the one stored."""
    r = redis_server.client()
    r.hset(REG, "t", json.dumps({"at": 100.0, "record": RECORD}, sort_keys=True))
    r.hset(REG, "u", json.dumps({"at": 1e12, "record": None}))  # forged end, far ahead
    signer = opened(url, FleetKeys(K1[0]))
    assert signer.read_stop_register() == {}
    assert signer.write_stop_register({"t": (100.0, RECORD), "u": (100.0, RECORD)}) == 2
    assert opened(url, FleetKeys(None, [K1[1]])).read_stop_register() == {
        "t": (100.0, RECORD),
        "u": (100.0, RECORD),
    }
    # ...but not a value stored since it was read (compare-and-set)
    r.hset(REG, "t", json.dumps({"at": 5e11, "record": None}))
    signer._stops_refused = {"t": b"another value"}
    assert signer.write_stop_register({"t": (100.0, RECORD)}) == 0


def test_a_process_that_checks_but_cannot_sign_writes_no_entry(redis_server, url, opened):
    reader = opened(url, FleetKeys(None, [K1[1]]))
    with pytest.raises(ConfigError, match="signed guardrail stop entries"):
        reader.write_stop_register({"t": (100.0, RECORD)})
    assert raw(redis_server) == {}


def test_an_entry_copied_to_another_namespace_is_refused(redis_server, opened):
    base = redis_server.url + "?cache=off&namespace="
    opened(base + "a", FleetKeys(K1[0])).write_stop_register({"t": (100.0, RECORD)})
    r = redis_server.client()
    r.hset("{b}:flags:guardrail-stops", "t", r.hget("{a}:flags:guardrail-stops", "t"))
    reader = opened(base + "b", FleetKeys(None, [K1[1]]))
    assert reader.read_stop_register() == {}
    assert "does not match" in reader.last_error


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False) | any_text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(any_text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)  # fmt: skip


@given(
    at=st.floats(min_value=0, max_value=4e9) | st.integers(0, 2**40),
    record=st.none() | st.dictionaries(any_text(max_size=12), json_values, max_size=6),
    test=any_text(min_size=1, max_size=30),
    other=json_values,
)
@settings(max_examples=examples(200), deadline=None)
def test_what_is_signed_is_what_every_reader_reconstructs(at, record, test, other):
    """Whatever the record holds: the entry as stored (JSON text) verifies, and any
    change to its record, its time or its test's name does not."""
    keys = FleetKeys(K1[0])
    writer = _canonical({"host": "h", "pid": 1, "actor": "a"})
    body = _canonical({"at": at, "record": record})
    content = json.dumps(body, sort_keys=True).encode()
    wtext = json.dumps(writer, sort_keys=True).encode()
    sig = keys.sign_stop(REG, test, content, wtext)
    stored = json.dumps({**body, "signature": sig, "writer": writer}, sort_keys=True)
    entry = json.loads(stored)
    keys.verify_stop(REG, test, *_stop_signed(entry), entry["signature"], "x")
    changed = {**entry, "record": {**(record or {}), "\x00extra": other}}
    with pytest.raises(ConfigError):
        keys.verify_stop(REG, test, *_stop_signed(changed), entry["signature"], "x")
    with pytest.raises(ConfigError):
        keys.verify_stop(REG, test + "x", *_stop_signed(entry), entry["signature"], "x")
    later = {**entry, "at": entry["at"] + 1}
    with pytest.raises(ConfigError):
        keys.verify_stop(REG, test, *_stop_signed(later), entry["signature"], "x")


# -- through the managers: a planted stop ------------------------------------------------


def _plant_stop(redis_server, ns: str, served: dict) -> None:
    """What an attacker with write access to Redis (no signing key) plants: a guardrail
    stop of the running test (``served``: its record), unsigned."""
    now = time.time()
    record = {
        **served,
        "status": "stopped",
        "stopped_reason": "guardrail: planted",
        GUARDRAIL_STOPPED_AT: now,
    }
    redis_server.client().hset(
        f"{{{ns}}}:flags:guardrail-stops", TEST,
        json.dumps({"at": now, "record": record}, sort_keys=True, default=str),
    )  # fmt: skip


@pytest.mark.parametrize("keys", ["signed", "none"])
def test_a_planted_stop_is_refused_at_start_and_while_running(
    redis_server, tmp_path, impl, keys, monkeypatch
):
    if keys == "signed":  # every process of the fleet holds the key (writers all)
        monkeypatch.setenv("CFGCORE_FLEET_SIGNING_KEY", K1[0])
    url = redis_server.url + "?namespace=ab&poll=0.1"
    a = _manager(url + f"&cache={tmp_path / 'a.msgpack'}", tmp_path / "a", impl)
    try:
        assert a.create_ab_test(_guarded_test())
        assert "variant_b" in _served(a)
        _plant_stop(redis_server, "ab", dict(a._live.source.experiments[TEST]))
        version = a._live.store.version
        # another process's write: a new document a judges against the register
        other = RedisFlagStore(url + "&cache=off")
        try:
            other.update(
                lambda s: msgspec.structs.replace(
                    s, flags={**s.flags, "unrelated": Flag(default="on")}
                )
            )
        finally:
            other.close()
        if keys == "none":  # the planted stop holds: the document is refused
            wait_for(lambda: a._live.last_error is not None)
            wait_for(lambda: a._live.store.stats["rejected"] == 1)
            assert a._live.document.version == version
            return
        # (counted while the document is prepared: it goes live just after)
        wait_for(lambda: a._live.document.version == version + 1)
        assert a._live.store.stats["stops_rejected"] == 1 and "variant_b" in _served(a)
        wait_for(lambda: a._live.last_error is not None)
        assert "is not signed" in str(a._live.last_error)
        assert any("guardrail stop entry" in r for r in a.health().reasons)
        mine = {"store": a._live.store.url, "document": "flags"}
        assert value("cfgcore_flag_store_stop_entries_rejected_total", **mine) >= 1
        errors = wait_for(
            lambda: [e for e in a.audit.read(a.audit.path) if e.get("kind") == "error"]
        )
        assert "guardrail stop entry" in json.dumps(errors[-1])
        # a new host, nothing on its disk, started on the planted register
        b = _manager(url + f"&cache={tmp_path / 'b.msgpack'}", tmp_path / "b", impl)
        try:
            assert "variant_b" in _served(b)
            assert b.list_ab_tests()[TEST]["status"] == "active"
            assert b._live.store.stats["stops_rejected"] == 1
            assert "is not signed" in str(b._live.last_error)
        finally:
            b.close()
        # nothing was written back with the test stopped
        stored = RedisFlagStore(url + "&cache=off", keys=FleetKeys(None, [K1[1]]))
        try:
            assert stored.read().snapshot.experiments[TEST].get("status", "active") == "active"
        finally:
            stored.close()
    finally:
        a.close()


def _refusals(audit_path) -> list[dict]:
    """The audit log's error entries for refused guardrail stop register entries."""
    from cfgcore.runtime.audit import AuditLog

    return [
        e
        for e in AuditLog.read(audit_path)
        if e.get("kind") == "error" and "guardrail stop entry" in json.dumps(e)
    ]


def test_an_entry_refused_at_start_is_audited_once_per_start(
    redis_server, tmp_path, impl, monkeypatch
):
    """A new host starts on a planted (unsigned) entry: the refusal is found while the
    start reads the register, before any manager listens. Each manager serving the flag
    set writes one audit entry for it as it subscribes, as a running process's refusal
    reaches every subscriber; the register read again (another process's document
    judged, polls) adds none; the next start of the host adds one more."""
    from cfgcore.config.manager import ConfigurationManager
    from tests.conftest import copy_bundled_config

    monkeypatch.setenv("CFGCORE_FLEET_SIGNING_KEY", K1[0])
    url = redis_server.url + "?namespace=ab&poll=0.1"
    a = _manager(url + "&cache=off", tmp_path / "a", impl)
    try:
        assert a.create_ab_test(_guarded_test())
        _plant_stop(redis_server, "ab", dict(a._live.source.experiments[TEST]))
    finally:
        a.close()
    b_url = url + f"&cache={tmp_path / 'b.msgpack'}"
    b = _manager(b_url, tmp_path / "b", impl)
    try:
        assert "variant_b" in _served(b)  # the planted stop is passed over
        assert b._live.store.stats["stops_rejected"] == 1
        (entry,) = _refusals(b.audit.path)
        assert entry["source"] == "load" and "is not signed" in entry["error"]
        # the configuration manager serving the same flag set audits it in its own log
        config = ConfigurationManager(
            copy_bundled_config(tmp_path / "config"), flag_store=b_url,
            audit_log=tmp_path / "config.audit.jsonl",
        )  # fmt: skip
        try:
            assert config._flags.live() is b._live
            assert len(_refusals(config.audit.path)) == 1
        finally:
            config.close()
        # the register read again while running: the same stored value, no new entry
        version = b._live.document.version
        with RedisFlagStore(url + "&cache=off") as other:
            other.update(
                lambda s: msgspec.structs.replace(
                    s, flags={**s.flags, "unrelated": Flag(default="on")}
                )
            )  # fmt: skip
        wait_for(lambda: b._live.document.version == version + 1)
        store = b._live.store
        since = store.last_contact
        wait_for(lambda: store.last_contact > since + 0.4)  # (polls every 0.1 s: several)
        assert store.stats["stops_rejected"] == 1
        assert len(_refusals(b.audit.path)) == 1
    finally:
        b.close()
    # the host's next start: one more entry, for that start
    c = _manager(b_url, tmp_path / "b", impl)
    try:
        assert c._live.store.stats["stops_rejected"] == 1
        assert len(_refusals(c.audit.path)) == 2
    finally:
        c.close()


def test_a_genuine_stop_still_holds_with_signing(redis_server, tmp_path, impl, monkeypatch):
    """The guardrail's own stop, signed, holds on a new host for a document put back
    from before it (as in test_fix13, with keys)."""
    from tests.test_fix12_experiments_fleet_hold import _publish, _stopped_then_down

    monkeypatch.setenv("CFGCORE_FLEET_SIGNING_KEY", K1[0])
    url = redis_server.url + "?namespace=ab&poll=0.1"
    before = _stopped_then_down(url + f"&cache={tmp_path / 'a.msgpack'}", tmp_path / "a", impl)
    entry = json.loads(redis_server.client().hget("{ab}:flags:guardrail-stops", TEST))
    assert entry["signature"].startswith("v1:ed25519:k1:")
    stores: list[RedisFlagStore] = []

    def open_store(u):
        s = RedisFlagStore(u)
        stores.append(s)
        return s

    try:
        _publish(open_store, url, before)
        b = _manager(url + f"&cache={tmp_path / 'b.msgpack'}", tmp_path / "b", impl)
        try:
            assert _served(b) == {"control"}
            assert b._live.store.stats["stops_rejected"] == 0
        finally:
            b.close()
    finally:
        for s in stores:
            s.close()


def test_replaying_an_old_signed_stop_after_a_resume_changes_nothing(
    redis_server, tmp_path, impl, monkeypatch, capsys
):
    """The stop's signed entry put back after the test was resumed (and its end written
    over it): the document records the resume, later than the stop, so processes keep
    serving the test, a new host included."""
    from tests.conftest import run_cli
    from tests.test_fix12_experiments_fleet_hold import _stopped_then_down

    monkeypatch.setenv("CFGCORE_FLEET_SIGNING_KEY", K1[0])
    url = redis_server.url + "?namespace=ab&poll=0.1"
    _stopped_then_down(url + f"&cache={tmp_path / 'a.msgpack'}", tmp_path / "a", impl)
    r = redis_server.client()
    old = r.hget("{ab}:flags:guardrail-stops", TEST)
    code, _out, err = run_cli(
        capsys, "experiment", "start", TEST, "--store", url + f"&cache={tmp_path / 'c.msgpack'}",
        "--state-dir", str(tmp_path / "c"),
    )  # fmt: skip
    assert code == 0, err
    assert json.loads(r.hget("{ab}:flags:guardrail-stops", TEST))["record"] is None
    r.hset("{ab}:flags:guardrail-stops", TEST, old)  # the replay
    b = _manager(url + f"&cache={tmp_path / 'b.msgpack'}", tmp_path / "b", impl)
    try:
        assert "variant_b" in _served(b)
        b.set_feature_flag("unrelated", True)  # judged against the register again
        assert "variant_b" in _served(b) and b._live.last_error is None
    finally:
        b.close()


def test_an_unchanged_value_is_verified_once(redis_server, url, opened):
    signer = opened(url, FleetKeys(K1[0]))
    signer.write_stop_register({f"t{n}": (100.0, RECORD) for n in range(50)})
    reader = opened(url, FleetKeys(None, [K1[1]]))
    calls = []
    real = reader.keys.verify_stop

    def counting(*args, **kw):
        calls.append(args[1])
        return real(*args, **kw)

    reader.keys.verify_stop = counting  # type: ignore[method-assign]
    assert len(reader.read_stop_register()) == 50
    assert len(reader.read_stop_register()) == 50
    assert len(calls) == 50


def test_refusals_kept_for_later_subscribers_are_bounded(tmp_path):
    # A flag set no manager ever subscribes to keeps at most _MAX_UNTOLD refusals for
    # the managers that might (each distinct refused value is reported once; a store
    # rewritten with bad documents for ever must not grow it without end).
    from cfgcore.runtime import flags as flags_mod
    from cfgcore.runtime.flags import LiveFlags
    from cfgcore.runtime.flagstore import FileFlagStore

    path = tmp_path / "flags.yaml"
    path.write_text("version: 1\nflags: {}\n")
    live = LiveFlags(FileFlagStore(str(path)))
    try:
        for i in range(flags_mod._MAX_UNTOLD + 50):
            live.reject(ConfigError(f"refused document {i}"), "redis", "test")
        told = live.take_start_refusals("flags")
        assert [str(e) for e in told] == [
            f"refused document {i}" for i in range(flags_mod._MAX_UNTOLD)
        ]
        assert live.take_start_refusals("flags") == []  # once per kind of manager
    finally:
        live.close()
