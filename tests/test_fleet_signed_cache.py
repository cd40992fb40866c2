"""The cache file keeps the document's signature, and a restore checks it against the
keys the process trusts then, as a document read from Redis is checked.

Before, the cache file kept neither the signature nor the writer field as signed, and a
process holding verification keys served it unchecked: after a key rotation (the old
key removed from the trusted set), a process restarted while Redis was unreachable
served a cached document signed only by the retired key, although such documents are
refused "by every process, whatever its state" (docs/fleet.md, "Replayed documents").

Against a real redis-server, killed to make it unreachable."""

from __future__ import annotations

import msgspec
import pytest

from cfgcore.errors import ConfigError
from cfgcore.runtime.redis_store import RedisConfigStore, RedisFlagStore, StoreUnreachableError
from cfgcore.runtime.signing import FleetKeys, generate_signing_pair
from tests.fleet_helpers import add, quiet_fleet  # noqa: F401 (an autouse fixture)
from tests.redis_server import refused_port, wait_for

K1 = generate_signing_pair("k1")
K2 = generate_signing_pair("k2")
NS = "sigcache"
DOWN = "&socket_connect_timeout=0.5&socket_timeout=0.5"


def verifier(*pairs) -> FleetKeys:
    return FleetKeys(None, [p[1] for p in pairs])


@pytest.fixture
def url(redis_server, tmp_path):
    return f"{redis_server.url}?namespace={NS}&cache={tmp_path / 'host.msgpack'}"


@pytest.fixture
def cache(tmp_path):
    return tmp_path / "host.msgpack"


def blob(path) -> dict:
    return msgspec.msgpack.decode(path.read_bytes())


def cached_by_follower(url: str, keys: FleetKeys, version: int) -> None:
    """A follower trusting ``keys`` takes the stored document and caches it."""
    with RedisFlagStore(url + "&poll=0.05", keys=keys) as follower:
        follower.read()
        follower.watch(lambda doc: None)
        assert wait_for(lambda: follower._cached == version)


def write_as_earlier_release(path, fields: dict) -> None:
    """The cache file as releases before this one wrote it: no signature, and the
    writer as a record rather than the field as stored."""
    old = {k: v for k, v in fields.items() if k not in ("signature", "writer_field")}
    path.write_bytes(msgspec.msgpack.encode(old))


def test_the_cache_file_keeps_the_signature_and_the_signed_writer(redis_server, url, cache):
    with RedisFlagStore(url, keys=FleetKeys(K1[0])) as writer:
        writer.update(add("a"))
    stored = redis_server.client().hgetall("{" + NS + "}:flags")
    fields = blob(cache)
    assert fields["signature"] == stored[b"signature"]
    assert fields["signature"].startswith(b"v1:ed25519:k1:")
    assert fields["writer_field"] == stored[b"writer"]
    # and so does a follower's
    cache.unlink()
    cached_by_follower(url, verifier(K1), 1)
    fields = blob(cache)
    assert fields["signature"] == stored[b"signature"]
    assert fields["writer_field"] == stored[b"writer"]


def test_after_a_rotation_a_restart_with_redis_down_refuses_the_retired_keys_document(
    redis_server, url, cache
):
    with RedisFlagStore(url, keys=FleetKeys(K1[0])) as writer:
        writer.update(add("a"))
    cached_by_follower(url, verifier(K1, K2), 1)  # during the rotation: both trusted
    # k1 retired (only k2 trusted now); the host restarts while Redis is unreachable
    redis_server.kill()
    with RedisFlagStore(url + DOWN, keys=verifier(K2)) as store:
        with pytest.raises(StoreUnreachableError, match="no usable cache file") as err:
            store.read()
        msg = str(err.value)
        assert "signed with key 'k1', which this process does not trust" in msg
        assert str(cache) in msg
        assert not store.serving_cache and store.version == 0
        # reported where health and the provider read it
        assert "signed with key 'k1'" in (store.last_error or "")
        # the other readers of the cache file refuse it too (the flag set's start
        # judges A/B tests against it, and may serve it instead of the stored one)
        with pytest.raises(ConfigError, match="does not trust"):
            store.read_cache()
    # a process still trusting k1 serves it, as before
    with RedisFlagStore(url + DOWN, keys=verifier(K1, K2)) as store:
        assert store.read().version == 1 and store.serving_cache


def test_a_manager_restarted_with_redis_down_does_not_start_on_the_retired_keys_document(
    redis_server, url, monkeypatch
):
    """The same through the process environment, as deployments configure it."""
    from cfgcore.experiments.dynamic import DynamicConfigurationManager

    with RedisFlagStore(url, keys=FleetKeys(K1[0])) as writer:
        writer.update(add("beta"))
    cached_by_follower(url, verifier(K1), 1)
    redis_server.kill()
    monkeypatch.setenv("CFGCORE_FLEET_VERIFY_KEYS", K2[1])
    with pytest.raises(ConfigError, match="signed with key 'k1'"):
        DynamicConfigurationManager(store=url + DOWN, log_exposures=False)


def test_a_document_signed_by_a_trusted_key_restores(redis_server, url, cache):
    with RedisFlagStore(url, keys=FleetKeys(K1[0])) as writer:
        writer.update(add("a"))
    with RedisFlagStore(url, keys=FleetKeys(K2[0], [K1[1], K2[1]])) as writer:
        writer.update(add("b"))  # the writers switched to k2
    cached_by_follower(url, verifier(K1, K2), 2)
    redis_server.kill()
    with RedisFlagStore(url + DOWN, keys=verifier(K2)) as store:
        doc = store.read()
        assert doc.version == 2 and set(doc.snapshot.flags) == {"a", "b"}
        assert store.serving_cache
        assert doc.writer.get("pid") is not None  # the writer record, from the field
    # without keys, as before
    with RedisFlagStore(url + DOWN, keys=FleetKeys()) as store:
        assert store.read().version == 2


def test_a_tampered_signature_or_document_is_refused(redis_server, url, cache):
    with RedisFlagStore(url, keys=FleetKeys(K1[0])) as writer:
        writer.update(add("a"))
        writer.update(add("b"))
    redis_server.kill()
    good = blob(cache)

    def restored(**changes):
        cache.write_bytes(msgspec.msgpack.encode({**good, **changes}))
        with RedisFlagStore(url + DOWN, keys=verifier(K1)) as store:
            return store.read()

    assert restored().version == 2  # the file as written restores
    sig = good["signature"]
    flipped = sig[:-2] + (b"A" if sig[-2:-1] != b"A" else b"B") + sig[-1:]
    with pytest.raises(StoreUnreachableError, match="does not match the document"):
        restored(signature=flipped)
    with pytest.raises(StoreUnreachableError, match="is not signed"):
        restored(signature=None)
    with pytest.raises(StoreUnreachableError, match="not a cfgcore fleet signature"):
        restored(signature=b"forged")
    # signed for another version: version 2's fields under version 3
    with pytest.raises(StoreUnreachableError, match="does not match the document"):
        restored(version=3)
    # another writer shown
    other = msgspec.msgpack.encode({"host": "elsewhere", "pid": 1, "actor": "x", "time": 1.0})
    with pytest.raises(StoreUnreachableError, match="does not match the document"):
        restored(writer_field=other)
    # other data with its checksum made to match
    import hashlib

    data = msgspec.msgpack.encode({"flags": {}})
    with pytest.raises(StoreUnreachableError, match="does not match the document"):
        restored(data=data, checksum=hashlib.sha256(data).hexdigest())
    # a damaged writer field: named as such
    with pytest.raises(StoreUnreachableError, match="damaged cache file"):
        restored(writer_field={"host": "h"})


def test_an_earlier_releases_cache_file_with_keys_is_refused_saying_why(url, cache):
    """A rolling upgrade while Redis is unreachable: the new release, holding
    verification keys, does not serve a cache file the earlier release wrote (it keeps
    no signature to check); it starts as a host without a cache file would (here: it
    does not). Once it reads Redis, the file is written again, signature included."""
    with RedisFlagStore(url, keys=FleetKeys(K1[0])) as writer:
        writer.update(add("a"))
    write_as_earlier_release(cache, blob(cache))
    # (Redis stays up for the end of the test; these restarts find it unreachable)
    down = f"redis://127.0.0.1:{refused_port()}/0?namespace={NS}&cache={cache}{DOWN}"
    with RedisFlagStore(down, keys=verifier(K1)) as store:
        with pytest.raises(StoreUnreachableError, match="kept no signature") as err:
            store.read()
        assert "version 1 in the cache file cannot be checked" in str(err.value)
        assert str(cache) in str(err.value)
        assert "kept no signature" in (store.last_error or "")
    # without keys nothing is checked: served as before
    with RedisFlagStore(down, keys=FleetKeys()) as store:
        assert store.read().version == 1 and store.serving_cache
    assert "signature" not in blob(cache)  # (a read writes nothing)
    # Redis reachable: the follower writes the same version again, with its signature,
    # and the next restart with Redis down restores it
    cached_by_follower(url, verifier(K1), 1)
    assert blob(cache)["signature"].startswith(b"v1:ed25519:k1:")
    with RedisFlagStore(down, keys=verifier(K1)) as store:
        assert store.read().version == 1 and store.serving_cache


def test_a_cache_file_given_to_restore_from_is_not_checked(redis_server, url, cache):
    """``cfgcore publish --flags-from-cache`` (``read_cache(path)``): the operator's
    choice, which the publish signs again (also how an unsigned fleet turns signing
    on, and how a document signed by a retired key is published again under the new
    one)."""
    with RedisFlagStore(url, keys=FleetKeys(K1[0])) as writer:
        writer.update(add("a"))
    with RedisFlagStore(url, keys=FleetKeys(K2[0])) as publisher:
        assert publisher.read_cache(cache).version == 1
        write_as_earlier_release(cache, blob(cache))
        assert publisher.read_cache(cache).version == 1


def test_a_published_configuration_cache_is_checked_too(redis_server, url, cache, tmp_path):
    from cfgcore.runtime.redis_store import PublishedConfig

    with RedisConfigStore(url, "production", keys=FleetKeys(K1[0])) as store:
        doc = PublishedConfig(environment="production", config={"db": {"host": "p"}})
        store.update(lambda _: doc, force=True)
    path = tmp_path / "host.config:production.msgpack"
    assert blob(path)["signature"].startswith(b"v1:ed25519:k1:")
    redis_server.kill()
    with RedisConfigStore(url + DOWN, "production", keys=verifier(K1)) as store:
        assert store.read().snapshot.config == {"db": {"host": "p"}}
    with RedisConfigStore(url + DOWN, "production", keys=verifier(K2)) as store:
        with pytest.raises(StoreUnreachableError, match="signed with key 'k1'"):
            store.read()
    # the cache= path itself as a release before per-document files left it: served
    # without keys, refused saying why with them
    old = {k: v for k, v in blob(path).items() if k not in ("document", "environment")}
    path.unlink()
    write_as_earlier_release(cache, old)
    with RedisConfigStore(url + DOWN, "production", keys=FleetKeys()) as store:
        assert store.read().snapshot.config == {"db": {"host": "p"}}
    with RedisConfigStore(url + DOWN, "production", keys=verifier(K1)) as store:
        with pytest.raises(StoreUnreachableError, match="kept no signature") as err:
            store.read()
        assert str(cache) in str(err.value)


def test_with_redis_up_a_start_never_serves_the_retired_keys_cache_in_place_of_the_store(
    redis_server, url, cache, tmp_path, monkeypatch, impl
):
    """The other reader of the cache file: a start judges the stored document's A/B
    tests against the one the host served before (its cache file), and serves that one
    instead when the stored one would move a served test's users. After a rotation the
    cached document (signed by the retired key) was served so, with Redis reachable
    and the stored document signed by the new key: it is now judged as on a host
    without a cache file (the stored document serves; its experiment records judge)."""
    from cfgcore.dynamic_config import DynamicConfigurationManager
    from cfgcore.engine import engine_class
    from cfgcore.snapshot import Rule
    from tests.test_audit5_flags2_served_tests import ab

    def manager():
        return DynamicConfigurationManager(
            store=url, state_dir=str(tmp_path / "state"), engine=engine_class(impl)(),
            guardrail_check_every=10**9,
        )  # fmt: skip

    monkeypatch.setenv("CFGCORE_FLEET_SIGNING_KEY", K1[0])
    a = manager()
    try:
        assert a.create_ab_test(ab())  # version 1, signed by k1, in the host's cache file
    finally:
        a.close()
    assert blob(cache)["signature"].startswith(b"v1:ed25519:k1:")
    served = blob(cache)["version"]
    # the writers switch to k2 and publish a split that moves the test's users
    with RedisFlagStore(url + "&cache=off", keys=FleetKeys(K2[0], [K1[1]])) as writer:
        snap = writer.read().snapshot
        flag = snap.flags["checkout"]
        split = {"control": 30, "green": 70}
        rule = msgspec.structs.replace(flag.rules[0], split=split)
        assert isinstance(rule, Rule)
        moved = msgspec.structs.replace(
            snap,
            flags={**snap.flags, "checkout": msgspec.structs.replace(flag, rules=[rule])},
            experiments={
                **snap.experiments,
                "checkout": {**snap.experiments["checkout"], "traffic_split": split},
            },
        )
        _, new = writer.update(lambda _: moved)
    assert new.version > served
    # k1 retired: this host trusts k2 only
    monkeypatch.delenv("CFGCORE_FLEET_SIGNING_KEY")
    monkeypatch.setenv("CFGCORE_FLEET_VERIFY_KEYS", K2[1])
    b = manager()
    try:
        assert b._live.document.version == new.version  # not the retired key's cache
    finally:
        b.close()
