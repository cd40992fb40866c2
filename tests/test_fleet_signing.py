"""Signed fleet documents (cfgcore.runtime.signing) against a real redis-server: a signed
write is taken by followers that trust its key; a document changed in Redis, replayed
under another version or into another namespace, unsigned, or signed by a key the
follower does not hold is refused (the last good one keeps serving, reported like any
refused document); rotation with two verification keys; no keys: unchanged."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import stat
from pathlib import Path

import msgspec
import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfgcore.errors import ConfigError
from cfgcore.runtime.redis_store import RedisConfigStore, RedisFlagStore
from cfgcore.runtime.signing import FleetKeys, generate_signing_pair, public_key_line
from cfgcore.snapshot import Flag
from tests.fuzz import examples
from tests.redis_server import wait_for

KEY = "{t}:flags"
K1 = generate_signing_pair("k1")
K2 = generate_signing_pair("k2")
STRANGER = generate_signing_pair("k1")  # another key under a trusted id


def add(name: str, **kw):
    return lambda s: msgspec.structs.replace(
        s, flags={**s.flags, name: Flag(**{"default": "on", **kw})}
    )


def signer(pair=K1, verify=()) -> FleetKeys:
    return FleetKeys(pair[0], verify)


def verifier(*pairs) -> FleetKeys:
    return FleetKeys(None, [p[1] for p in pairs])


@pytest.fixture
def url(redis_server):
    return redis_server.url + "?namespace=t&cache=off"


@pytest.fixture
def opened():
    """``opened(url, keys)`` opens a store with those keys, closed after the test."""
    stores: list[RedisFlagStore] = []

    def open_(url: str, keys: FleetKeys | None = None, cls=RedisFlagStore, *args):
        store = cls(url, *args, keys=keys if keys is not None else FleetKeys())
        stores.append(store)
        return store

    yield open_
    for s in stores:
        s.close()


class Follower:
    """A verifying store's follower: what it delivered and what it refused."""

    def __init__(self, store: RedisFlagStore) -> None:
        self.store = store
        self.docs: list = []
        self.errors: list[Exception] = []
        store.read()
        store.watch(self.docs.append, on_error=self.errors.append)
        wait_for(lambda: store.connected)

    @property
    def version(self) -> int:
        return self.docs[-1].version if self.docs else self.store.version


def follow(opened, url, keys) -> Follower:
    return Follower(opened(url + "&poll=0.05", keys))


# -- the stored form ---------------------------------------------------------------


def test_no_keys_write_exactly_the_fields_of_before(redis_server, url, opened):
    store = opened(url)
    store.update(add("a"))
    fields = set(redis_server.client().hgetall(KEY))
    assert fields == {b"version", b"checksum", b"writer", b"data", b"epoch"}
    store.update(add("b"), force=True)
    assert b"signature" not in redis_server.client().hgetall(KEY)
    # an unchecking follower reads a signed document as before (the field is ignored)
    opened(url, signer()).update(add("c"), force=True)  # (a signer checks: forced)
    assert b"signature" in redis_server.client().hgetall(KEY)
    assert set(opened(url).read().snapshot.flags) == {"c"}


def test_a_signed_write_stores_an_envelope_naming_its_key(redis_server, url, opened):
    _, new = opened(url, signer()).update(add("a"))
    stored = redis_server.client().hget(KEY, "signature")
    assert stored.startswith(b"v1:ed25519:k1:") and len(stored) < 256
    doc = opened(url, verifier(K1)).read()  # checks it
    assert (doc.version, set(doc.snapshot.flags)) == (new.version, {"a"})


# -- followers ---------------------------------------------------------------------


def test_signed_publish_reaches_followers(url, opened):
    writer = opened(url, signer())
    writer.update(add("a"))
    f = follow(opened, url, verifier(K1))
    writer.update(add("b"))
    wait_for(lambda: f.version == 2)
    assert set(f.docs[-1].snapshot.flags) == {"a", "b"} and not f.errors
    assert f.store.stats["rejected"] == 0


def test_a_document_edited_in_redis_is_refused_and_the_last_good_stays(
    redis_server, url, opened, caplog
):
    writer = opened(url, signer())
    writer.update(add("a"))
    f = follow(opened, url, verifier(K1))
    writer.update(add("b"))
    wait_for(lambda: f.version == 2)
    # an attacker with write access to the keys: other flags, a matching checksum, and
    # the version moved on so followers take it
    r = redis_server.client()
    stored = writer.read()
    evil = writer._encode(add("evil")(stored.snapshot))
    with caplog.at_level(logging.ERROR, logger="cfgcore.fleet"):
        r.hset(KEY, mapping={
            "version": 3, "data": evil, "checksum": hashlib.sha256(evil).hexdigest(),
        })  # fmt: skip
        wait_for(lambda: f.errors)
    assert "the signature by key 'k1' does not match the document" in str(f.errors[0])
    assert f.version == 2 and f.store.stats["rejected"] == 1
    assert f.store.last_error and "does not match" in f.store.last_error
    assert any("rejected version 3" in r.message for r in caplog.records)
    # a fresh process refuses it too (and does not start on it)
    with pytest.raises(ConfigError, match="does not match"):
        opened(url, verifier(K1)).read()
    # the next signed write is taken, numbered above the refused one
    writer2 = opened(url, signer(K1, [K1[1]]))
    with pytest.raises(ConfigError, match="does not match"):
        writer2.update(add("c"))  # a writer that checks does not build on it either
    _, new = writer2.update(add("c"), force=True)
    wait_for(lambda: f.version == new.version == 4)
    assert set(f.docs[-1].snapshot.flags) == {"c"}  # (a repair starts from nothing)


def test_an_older_signed_document_replayed_as_a_newer_version_is_refused(redis_server, url, opened):
    writer = opened(url, signer())
    writer.update(add("a"))
    r = redis_server.client()
    first = r.hgetall(KEY)  # version 1, signed
    writer.update(add("b"))
    f = follow(opened, url, verifier(K1))
    assert f.version == 2
    # version 1's fields (data, checksum, writer, signature) stored as version 3
    replay = {k: v for k, v in first.items() if k not in (b"version", b"epoch")}
    r.hset(KEY, mapping={**replay, b"version": 3})
    wait_for(lambda: f.errors)
    assert "version 3: the signature by key 'k1' does not match" in str(f.errors[0])
    assert f.version == 2 and f.store.version == 2


def test_a_document_copied_from_another_namespace_is_refused(redis_server, opened):
    base = redis_server.url + "?cache=off&namespace="
    opened(base + "other", signer()).update(add("other-namespace"))
    opened(base + "t", signer()).update(add("a"))
    r = redis_server.client()
    copied = r.hgetall("{other}:flags")
    r.hset(KEY, mapping={**copied, b"version": 2})
    with pytest.raises(ConfigError, match="does not match"):
        opened(base + "t", verifier(K1)).read()


def test_a_signature_does_not_name_the_redis_server_or_database(redis_server, opened):
    """As docs/security.md states: the signature names the namespace and the document,
    not the Redis server nor its database. Two stores of one namespace (staging and
    production on their own Redis, each ``namespace=t``; here databases 1 and 0)
    signed with one key take each other's documents (the unsigned epoch set to the one
    served); with a signing key per store they are refused (database 2: its own key)."""
    url = {db: redis_server.url[:-1] + f"{db}?namespace=t&cache=off" for db in (0, 1, 2)}
    for name in ("s1", "s2", "s3"):
        opened(url[1], signer()).update(add(name))
    opened(url[0], signer()).update(add("p1"))
    opened(url[2], signer(K2)).update(add("p1"))
    shared, own = follow(opened, url[0], verifier(K1)), follow(opened, url[2], verifier(K2))

    def database(db: int) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=redis_server.port, db=db)

    with database(1) as staging:
        copied = staging.hgetall(KEY)
    for db, follower in ((0, shared), (2, own)):
        with database(db) as r:
            r.hset(KEY, mapping={**copied, b"epoch": r.hget(KEY, "epoch")})
            r.publish(follower.store.channel, b"3 x")
    assert wait_for(lambda: shared.version == 3)
    assert set(shared.docs[-1].snapshot.flags) == {"s1", "s2", "s3"}
    assert shared.store.last_error is None
    assert wait_for(lambda: own.errors), own.store.stats
    assert "signed with key 'k1', which this process does not trust" in str(own.errors[0])
    assert own.version == 1


def test_unknown_key_id_and_another_key_under_a_trusted_id_are_refused(url, opened):
    f = follow(opened, url, verifier(K1))
    opened(url, signer(K2)).update(add("a"))
    wait_for(lambda: f.errors)
    message = str(f.errors[0])
    assert "signed with key 'k2', which this process does not trust" in message
    assert "it trusts 'k1': CFGCORE_FLEET_VERIFY_KEYS" in message
    opened(url, signer(STRANGER)).update(add("b"), force=True)
    wait_for(lambda: len(f.errors) == 2)
    assert "the signature by key 'k1' does not match" in str(f.errors[1])
    assert f.version == 0 and f.store.stats["rejected"] == 2


def test_unsigned_documents_are_refused_where_keys_are_checked(redis_server, url, opened, caplog):
    f = follow(opened, url, verifier(K1))
    with caplog.at_level(logging.ERROR, logger="cfgcore.fleet"):
        opened(url).update(add("a"))  # a publisher without the signing key
        wait_for(lambda: f.errors)
    message = str(f.errors[0])
    assert "version 1 is not signed" in message and "CFGCORE_FLEET_SIGNING_KEY" in message
    assert any("rejected version 1" in r.message for r in caplog.records)
    assert f.version == 0
    # a signature removed from a signed document: the same
    with pytest.raises(ConfigError, match="is not signed"):  # a signer checks too
        opened(url, signer()).update(add("b"))
    opened(url, signer()).update(add("b"), force=True)  # (a publish replaces it)
    wait_for(lambda: f.version == 2)
    redis_server.client().hdel(KEY, "signature")
    with pytest.raises(ConfigError, match="is not signed"):
        opened(url, verifier(K1)).read()


def test_a_process_that_checks_but_cannot_sign_does_not_write(redis_server, url, opened):
    store = opened(url, verifier(K1))
    with pytest.raises(ConfigError, match="holds no signing key") as err:
        store.update(add("a"))
    assert "CFGCORE_FLEET_SIGNING_KEY" in str(err.value)
    assert redis_server.client().exists(KEY) == 0


def test_rotation_with_two_verification_keys(url, opened):
    f = follow(opened, url, verifier(K1, K2))
    opened(url, signer(K1)).update(add("old-key"))
    wait_for(lambda: f.version == 1)
    # a writer given only the new key does not build on what the old key signed...
    with pytest.raises(ConfigError, match="signed with key 'k1', which this process does not"):
        opened(url, signer(K2)).update(add("new-key"))
    # ...one that trusts both does (or a publish replaces the document)
    opened(url, signer(K2, [K1[1], K2[1]])).update(add("new-key"))
    wait_for(lambda: f.version == 2)
    assert not f.errors and set(f.docs[-1].snapshot.flags) == {"old-key", "new-key"}
    # the old key retired: its documents are refused from then on
    g = follow(opened, url, verifier(K2))
    opened(url, signer(K1, [K1[1], K2[1]])).update(add("late"))  # a writer not switched yet
    wait_for(lambda: g.errors)
    assert "signed with key 'k1'" in str(g.errors[0]) and g.version == 2
    wait_for(lambda: f.version == 3)  # (still trusted by the first follower)


def test_a_signature_names_the_version_the_script_gives(redis_server, url, opened):
    """The write script numbers a document above the floor key; a writer that did not
    see the floor signs for the number it is then told (a -8 reply), and the
    document is stored under exactly the version it was signed for."""
    opened(url, signer()).update(add("a"))
    redis_server.client().set("{t}:flags:floor", 41)
    _, new = opened(url, signer()).update(add("b"), force=True)
    assert new.version == 42
    doc = opened(url, verifier(K1)).read()
    assert doc.version == 42 and set(doc.snapshot.flags) == {"a", "b"}


def test_a_manager_reports_a_refused_signature_in_health_audit_and_metrics(
    redis_server, url, tmp_path, monkeypatch
):
    from cfgcore.experiments.dynamic import DynamicConfigurationManager
    from tests.test_metrics import value

    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))  # (its audit log)
    monkeypatch.setenv("CFGCORE_FLEET_VERIFY_KEYS", f"{K1[1]},{K2[1]}")
    writer = RedisFlagStore(url, keys=signer())
    try:
        writer.update(add("good"))
        m = DynamicConfigurationManager(
            store=url + f"&poll=0.05&cache={tmp_path / 'm.msgpack'}", log_exposures=False
        )
        try:
            assert m.is_feature_enabled("good", "u1")
            refused = value("cfgcore_flag_documents_total", store=m.store.url, result="rejected")
            # unsigned, from a process without the key (the checksum is right)
            with RedisFlagStore(url, keys=FleetKeys()) as plain:
                plain.update(lambda s: msgspec.structs.replace(
                    s, flags={"good": Flag(default="off"), "evil": Flag(default="on")}
                ))  # fmt: skip
            wait_for(lambda: any("not signed" in x for x in m.health().reasons))
            assert m.is_feature_enabled("good", "u1") and "evil" not in m.snapshot.flags
            assert m.store.stats["rejected"] == 1
            audit = Path(m.audit.path)
            wait_for(lambda: audit.exists() and "not signed" in audit.read_text())
            entries = [json.loads(line) for line in audit.read_text().splitlines()]
            assert any("not signed" in json.dumps(e) for e in entries)
            after = value("cfgcore_flag_documents_total", store=m.store.url, result="rejected")
            assert after == refused + 1
            with pytest.raises(ConfigError, match="holds no signing key"):
                m.set_feature_flag("other", True)
            # the publisher signs again: taken, the report is over
            writer.update(add("fixed"), force=True)
            wait_for(lambda: "fixed" in m.snapshot.flags)
            assert not any("not signed" in x for x in m.health().reasons)
        finally:
            m.close()
    finally:
        writer.close()


# -- cfgcore publish (configuration and flags in one script) ------------------------


def test_cfgcore_publish_signs_configuration_and_flags(redis_server, tmp_path, monkeypatch):
    from cfgcore.cli import main
    from tests.test_fleet_cli import _config_dir

    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    config = _config_dir(tmp_path)
    url = redis_server.url + "?namespace=pub&cache=off"
    key_file = tmp_path / "keys" / "fleet.key"
    assert main(["fleet", "keygen", "--signing-key-file", str(key_file), "--id", "ci"]) == 0
    monkeypatch.setenv("CFGCORE_FLEET_SIGNING_KEY_FILE", str(key_file))
    publish = ["publish", "--store", url, "--config-dir", str(config), "-e", "staging", "--flags"]
    assert main(publish) == 0
    redis_server.client().set("{pub}:flags:floor", 9)  # numbered above it: signed for 10
    assert main(publish) == 0
    public = public_key_line(key_file.read_text().splitlines()[-1])
    keys = FleetKeys(None, [public])
    with RedisConfigStore(url, "staging", keys=keys) as cstore:
        with RedisFlagStore(url, keys=keys) as fstore:
            cdoc, fdoc = cstore.read_pair(fstore)
    assert (cdoc.version, fdoc.version) == (2, 10)
    assert cdoc.snapshot.environment == "staging" and fdoc.snapshot.flags
    # the configuration's signature does not pass for the flag document
    r = redis_server.client()
    r.hset("{pub}:flags", "signature", r.hget("{pub}:config:staging", "signature"))
    with RedisFlagStore(url, keys=keys) as fstore, pytest.raises(ConfigError, match="match"):
        fstore.read()
    # a key another program replaced (a string) is repaired by a signed publish, as before
    r.set("{pub}:config:staging", "not a hash")
    assert main(publish) == 0
    with RedisConfigStore(url, "staging", keys=keys) as cstore:
        with RedisFlagStore(url, keys=keys) as fstore:
            cdoc, fdoc = cstore.read_pair(fstore)
    assert fdoc.version == 11 and cdoc.snapshot.environment == "staging"  # (both checked)


def test_keygen_writes_the_signing_key_0600_and_prints_the_verification_key(tmp_path, capsys):
    from cfgcore.cli import main

    path = tmp_path / "fleet.key"
    assert main(["fleet", "keygen", "--signing-key-file", str(path)]) == 0
    public = capsys.readouterr().out.strip()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    signing = path.read_text().splitlines()[-1]
    assert public_key_line(signing) == public
    kid = public.split(":")[0]
    assert len(kid) == 8 and signing.startswith(kid + ":")  # derived from the public key
    assert main(["fleet", "keygen", "--signing-key-file", str(path)]) == 1  # kept
    assert "--force" in capsys.readouterr().err
    assert path.read_text().splitlines()[-1] == signing
    assert main(["fleet", "keygen", "--signing-key-file", str(path), "--force", "-q"]) == 0
    out, err = capsys.readouterr()
    assert path.read_text().splitlines()[-1] != signing and out.count(":") == 1 and not err
    assert main(["fleet", "keygen", "--signing-key-file", str(tmp_path / "b"), "--id", "a:b"]) == 1
    assert "key id 'a:b'" in capsys.readouterr().err and not (tmp_path / "b").exists()


# -- configuration -------------------------------------------------------------------


def test_keys_from_the_environment_and_files(tmp_path):
    assert not FleetKeys.from_environ({}).signs and not FleetKeys.from_environ({}).verifies
    keys = FleetKeys.from_environ({"CFGCORE_FLEET_VERIFY_KEYS": f"{K1[1]}, {K2[1]}"})
    assert keys.verify_kids == ("k1", "k2") and not keys.signs
    signing = tmp_path / "sign.key"
    signing.write_text(f"# comment\n{K1[0]}\n")
    signing.chmod(0o600)
    verify = tmp_path / "verify.keys"
    verify.write_text(f"{K1[1]}\n# retired next week\n{K2[1]}\n")
    keys = FleetKeys.from_environ({
        "CFGCORE_FLEET_SIGNING_KEY_FILE": str(signing),
        "CFGCORE_FLEET_VERIFY_KEY_FILE": str(verify),
    })  # fmt: skip
    assert keys.signing_kid == "k1" and keys.verify_kids == ("k1", "k2")
    # the inline variables win over the files, as CFGCORE_SECRET_KEYS does
    keys = FleetKeys.from_environ({
        "CFGCORE_FLEET_VERIFY_KEYS": K2[1], "CFGCORE_FLEET_VERIFY_KEY_FILE": str(verify),
    })  # fmt: skip
    assert keys.verify_kids == ("k2",)


def test_bad_keys_and_unsafe_key_files_are_errors_that_show_no_key(tmp_path, caplog):
    secret = K1[0].split(":")[1]
    with pytest.raises(ConfigError, match="key 2 of CFGCORE_FLEET_VERIFY_KEYS") as err:
        FleetKeys.from_environ({"CFGCORE_FLEET_VERIFY_KEYS": f"{K1[1]},k2:{secret[:-3]}"})
    assert secret[:20] not in str(err.value)
    with pytest.raises(ConfigError, match="CFGCORE_FLEET_SIGNING_KEY"):
        FleetKeys.from_environ({"CFGCORE_FLEET_SIGNING_KEY": "k1:short"})
    with pytest.raises(ConfigError, match="two different keys"):
        FleetKeys(None, [K1[1], STRANGER[1]])
    verify = tmp_path / "verify.keys"
    verify.write_text(f"{K1[1]}\n")
    verify.chmod(0o666)
    with pytest.raises(ConfigError, match="writable by every user"):
        FleetKeys.from_environ({"CFGCORE_FLEET_VERIFY_KEY_FILE": str(verify)})
    verify.chmod(0o644)
    verify.write_text(f"{K1[1]}\nnot a key\n")
    with pytest.raises(ConfigError) as err:
        FleetKeys.from_environ({"CFGCORE_FLEET_VERIFY_KEY_FILE": str(verify)})
    assert "line 2" in str(err.value) or ":2" in str(err.value)
    signing = tmp_path / "sign.key"
    signing.write_text(K1[0] + "\n")
    signing.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="cfgcore.fleet"):
        FleetKeys.from_environ({"CFGCORE_FLEET_SIGNING_KEY_FILE": str(signing)})
    assert any("readable by other users" in r.message for r in caplog.records)
    signing.write_text(f"{K1[0]}\n{K2[0]}\n")
    with pytest.raises(ConfigError, match="exactly one key"):
        FleetKeys.from_environ({"CFGCORE_FLEET_SIGNING_KEY_FILE": str(signing)})
    missing = str(tmp_path / "nowhere")
    with pytest.raises(ConfigError, match="cannot read"):
        FleetKeys.from_environ({"CFGCORE_FLEET_VERIFY_KEY_FILE": missing})


def test_a_signing_key_its_own_verifiers_do_not_trust_is_warned_about(caplog):
    with caplog.at_level(logging.WARNING, logger="cfgcore.fleet"):
        FleetKeys(K1[0], [K2[1]])
    assert any("not among the verification keys" in r.message for r in caplog.records)


def test_keys_without_cryptography_name_the_package(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "cryptography.hazmat.primitives.asymmetric", None)
    with pytest.raises(
        ConfigError, match=r"cryptography package: pip install 'cfgcore\[secrets\]'"
    ):
        FleetKeys.from_environ({"CFGCORE_FLEET_VERIFY_KEYS": K1[1]})
    assert not FleetKeys.from_environ({}).verifies  # nothing configured: not needed


def test_keygen_without_cryptography_says_what_needs_it(monkeypatch, tmp_path, capsys):
    """`cfgcore fleet keygen` on an install without the secrets extra: the one-line error
    names the command and the extra. It said `fleet document signing (cfgcore fleet
    keygen is set) needs ...`, the wording of a key variable that is set."""
    import sys

    from cfgcore.cli import main

    monkeypatch.setitem(sys.modules, "cryptography.hazmat.primitives.asymmetric", None)
    key = tmp_path / "signing.key"
    assert main(["fleet", "keygen", "--signing-key-file", str(key)]) == 1
    err = capsys.readouterr().err
    assert err == (
        "cfgcore: error: making a fleet signing pair (cfgcore fleet keygen) needs the "
        "cryptography package: pip install 'cfgcore[secrets]'\n"
    )
    assert not key.exists()
    with pytest.raises(ConfigError) as info:  # a key variable keeps its own wording
        FleetKeys.from_environ({"CFGCORE_FLEET_SIGNING_KEY": K1[0]})
    assert str(info.value).startswith(
        "fleet document signing (CFGCORE_FLEET_SIGNING_KEY is set) needs the cryptography"
    )


# -- any change to a signed document is refused ----------------------------------------


_SIGNED: dict[str, tuple[RedisFlagStore, dict[bytes, bytes]]] = {}


@settings(
    max_examples=examples(80),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    field=st.sampled_from(["data", "signature", "writer", "version"]),
    where=st.integers(min_value=0),
    mask=st.integers(min_value=1, max_value=255),
)
def test_any_byte_flip_of_a_signed_document_is_refused(
    redis_server, url, opened, field, where, mask
):
    # (the fixtures are the same for every example: the signed document is written once)
    if url not in _SIGNED:
        writer = opened(url, signer())
        writer.update(add("a"))
        writer.update(add("b"))
        _SIGNED.clear()
        _SIGNED[url] = (opened(url, verifier(K1, K2)), redis_server.client().hgetall(KEY))
    reader, good = _SIGNED[url]
    r = redis_server.client()
    value = bytearray(good[field.encode()])
    value[where % len(value)] ^= mask
    fields = {**good, field.encode(): bytes(value)}
    if field == "data":  # the attacker fixes the checksum: only the signature can tell
        fields[b"checksum"] = hashlib.sha256(bytes(value)).hexdigest().encode()
    r.delete(KEY)
    r.hset(KEY, mapping=fields)
    with pytest.raises(ConfigError):
        reader._fetch(reader._client)
    r.delete(KEY)
    r.hset(KEY, mapping=good)
    assert reader._fetch(reader._client)[0].version == 2  # the untouched one passes


def test_a_configuration_follower_refuses_an_unsigned_publish(redis_server, tmp_path, monkeypatch):
    from cfgcore.cli import main
    from cfgcore.config.manager import ConfigurationManager
    from tests.test_fleet_cli import _config_dir

    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    config = _config_dir(tmp_path)
    monkeypatch.setenv("CFGCORE_AUDIT_LOG", str(tmp_path / "audit.jsonl"))
    url = redis_server.url + "?namespace=cfg&poll=0.05"
    publish = ["publish", "--store", url, "--config-dir", str(config), "-e", "staging"]
    monkeypatch.setenv("CFGCORE_FLEET_SIGNING_KEY", K1[0])
    assert main(publish) == 0
    monkeypatch.setenv("CFGCORE_FLEET_VERIFY_KEYS", K1[1])
    manager = ConfigurationManager(config_source=url, environment="staging")
    key = "music_streaming.streaming.prefetch_tracks"
    base = config / "base.yaml"
    try:
        manager.load_environment_config()
        # (read when the store opened; the publishing commands below have their own)
        monkeypatch.delenv("CFGCORE_FLEET_VERIFY_KEYS")
        assert manager.get(key) == 2
        events: list = []
        manager.register_change_listener(events.append)
        base.write_text(base.read_text().replace("prefetch_tracks: 2", "prefetch_tracks: 3"))
        monkeypatch.delenv("CFGCORE_FLEET_SIGNING_KEY")
        assert main(publish) == 0  # a publisher without the key: unsigned
        # refused as a published configuration that does not match its checksum is:
        # audited, and the last good one keeps serving
        audit = Path(manager.audit.path)
        wait_for(lambda: audit.exists() and "version 2 is not signed" in audit.read_text())
        assert manager.get(key) == 2 and not events
        monkeypatch.setenv("CFGCORE_FLEET_SIGNING_KEY", K1[0])
        assert main(publish) == 0
        wait_for(lambda: manager.get(key) == 3)
    finally:
        manager.close()


def test_a_document_edited_in_place_under_the_served_version_is_refused(redis_server, url, opened):
    writer = opened(url, signer())
    writer.update(add("a"))
    f = follow(opened, url, verifier(K1))
    writer.update(add("b"))
    wait_for(lambda: f.version == 2)
    evil = writer._encode(add("evil")(writer.read().snapshot))
    # the same version number, other data (and its checksum): not taken as the one served
    redis_server.client().hset(
        KEY, mapping={"data": evil, "checksum": hashlib.sha256(evil).hexdigest()}
    )
    wait_for(lambda: f.errors)
    assert "version 2: the signature by key 'k1' does not match" in str(f.errors[0])
    assert "evil" not in f.docs[-1].snapshot.flags and f.store.stats["rejected"] == 1
    accepted = f.store.stats["accepted"]
    # the signer does not sign a change made on top of it (that would launder it)...
    with pytest.raises(ConfigError, match="does not match"):
        writer.update(add("c"))
    writer.update(add("c"), force=True)  # ...a forced write replaces it
    wait_for(lambda: f.version == 3)
    assert f.store.stats["accepted"] == accepted + 1 and len(f.errors) == 1
    assert set(f.docs[-1].snapshot.flags) == {"c"}


def test_separate_processes_configured_through_the_environment(redis_server, tmp_path):
    """Followers and writers as separate processes (tests/fleet_proc.py), keys from
    their environment: a signing writer's changes reach every follower, an unsigned
    writer's are refused everywhere (the last good flags keep serving), and a process
    with verification keys only cannot write."""
    from tests.test_fleet_processes import SRC, Member

    base = dict(os.environ, PYTHONPATH=SRC, CFGCORE_STATE_DIR=str(tmp_path / "state"))
    checking = dict(base, CFGCORE_FLEET_VERIFY_KEYS=f"{K2[1]},{K1[1]}")
    signing = dict(base, CFGCORE_FLEET_SIGNING_KEY=K1[0])
    url = redis_server.url + "?namespace=procs"
    members: list = []
    try:
        followers = [Member("follow", url, env=checking) for _ in range(3)]
        members += followers
        assert all(f.line()["ready"] for f in followers)
        writer = Member("write", url, "0", "2", env=signing)
        members.append(writer)
        assert writer.line(60)["done"] == 0 and writer.proc.wait(30) == 0
        for f in followers:
            status = f.ask("wait 2 30")
            assert status["version"] == 2 and status["flags"] == ["w0_0", "w0_1"]
        # (it starts on the signed document, then its set_feature_flag is refused)
        verify_only = Member("write", url, "2", "1", env=checking)
        members.append(verify_only)
        assert verify_only.proc.wait(30) != 0
        assert redis_server.client().hget("{procs}:flags", "version") == b"2"
        unsigned = Member("write", url, "1", "1", env=base)
        members.append(unsigned)
        assert unsigned.line(60)["done"] == 1 and unsigned.proc.wait(30) == 0
        for f in followers:
            status = f.ask("waiterr 1 30")
            assert status["errors"] == 1 and status["stats"]["rejected"] == 1
            assert status["version"] == 2 and status["enabled"] == ["w0_0", "w0_1"]
    finally:
        for m in members:
            m.stop()


def test_the_openfeature_provider_is_stale_while_a_document_is_refused(
    redis_server, tmp_path, monkeypatch
):
    pytest.importorskip("openfeature.api", reason="openfeature-sdk is not installed")
    from openfeature.event import ProviderEvent
    from openfeature.provider import ProviderStatus

    from cfgcore.dynamic_config import DynamicConfigurationManager
    from cfgcore.openfeature import CfgcoreProvider
    from tests.test_audit2_provider_fleet import _client, _kinds

    url = redis_server.url + f"?namespace=of&poll=0.05&cache={tmp_path / 'c.msgpack'}"
    with RedisFlagStore(url, keys=signer()) as writer:
        writer.update(add("a"))
        monkeypatch.setenv("CFGCORE_FLEET_VERIFY_KEYS", K1[1])
        manager = DynamicConfigurationManager(store=url, state_dir=tmp_path / "state")
        provider = CfgcoreProvider(manager.engine)
        try:
            client, events = _client(provider)
            assert client.get_provider_status() == ProviderStatus.READY
            with RedisFlagStore(url, keys=FleetKeys()) as plain:
                plain.update(add("b", default="off"))
            assert wait_for(lambda: ProviderEvent.PROVIDER_STALE in _kinds(events))
            assert client.get_provider_status() == ProviderStatus.STALE
            stale = next(d for e, d in events if e == ProviderEvent.PROVIDER_STALE)
            assert "not signed" in stale.message
            assert client.get_boolean_value("a", False) is True  # the last good flags
            writer.update(add("c"), force=True)
            assert wait_for(lambda: ProviderEvent.PROVIDER_READY in _kinds(events))
            assert client.get_boolean_value("c", False) is True
        finally:
            provider.shutdown()
            manager.close()
