"""Publishing with the version the publisher expects to replace: a compare-and-set.

Two ``cfgcore publish`` runs (or two ``update(force=True)`` / ``publish_with_flags``
calls) racing each other overwrote each other silently: the last writer won. A publish
may now name the version it expects to replace (``expected_version=``, ``--expect-version
N``); the write script refuses another one stored, atomically, naming it, and leaves the
store unchanged. Without it a publish replaces whatever is stored, as before. Real
redis-server; the race is real threads publishing at once."""

from __future__ import annotations

import itertools
import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfgcore.cli import main
from cfgcore.errors import ConfigError
from cfgcore.runtime.redis_store import (
    PublishedConfig,
    RedisConfigStore,
    RedisFlagStore,
    VersionConflictError,
)
from cfgcore.snapshot import Flag, Snapshot
from tests.fuzz import examples

ENV = "development"
JWT = "sup3r-s3cret-signing-key-0123456789abcdef"


def _flags(gen: int) -> Snapshot:
    return Snapshot(flags={"gen": Flag(variants={"g": gen}, default="g")})


def _config(gen: int) -> PublishedConfig:
    return PublishedConfig(environment=ENV, config={"svc": {"gen": gen}}, flags=_flags(gen))


def _stored(client, ns: str) -> dict:
    """Every key of the namespace with its whole contents."""
    out = {}
    for key in sorted(client.keys(f"{{{ns}}}:*")):
        kind = client.type(key)
        if kind == b"zset":  # (the record of recent writes)
            out[key] = client.zrange(key, 0, -1, withscores=True)
        else:
            out[key] = client.hgetall(key) if kind == b"hash" else client.get(key)
    return out


def test_a_publish_expecting_a_replaced_version_is_refused_and_writes_nothing(redis_server):
    ns = "expect"
    url = redis_server.url + f"?namespace={ns}&cache=off"
    client = redis_server.client()
    with RedisConfigStore(url, ENV) as first, RedisConfigStore(url, ENV) as second:
        _, v1 = first.update(lambda _s: _config(1), force=True, expected_version=0)
        assert v1.version == 1
        # both read version 1; the first one's publish replaces it
        _, v2 = first.update(lambda _s: _config(2), force=True, expected_version=1)
        assert v2.version == 2
        before = _stored(client, ns)
        with pytest.raises(VersionConflictError) as caught:
            second.update(lambda _s: _config(3), force=True, expected_version=1)
        assert (caught.value.current, caught.value.expected) == (2, 1)
        assert "holds version 2" in str(caught.value) and "expected to replace version 1" in str(
            caught.value
        )
        assert _stored(client, ns) == before
        # without an expectation the last writer wins, as before
        _, v3 = second.update(lambda _s: _config(3), force=True)
        assert v3.version == 3 and second.read().snapshot.config == {"svc": {"gen": 3}}
        # a flag store's own (not forced) write takes it too
    with RedisFlagStore(url) as fstore:
        fstore.update(lambda _s: _flags(1), expected_version=0)
        before = _stored(client, ns)
        with pytest.raises(VersionConflictError) as caught:
            fstore.update(lambda _s: _flags(2), expected_version=0)
        assert caught.value.current == 1
        assert _stored(client, ns) == before


# (1.0 is version 1, as numpy.int64(1) is: whole numbers by value, cfgcore._numbers)
@pytest.mark.parametrize("bad", [-1, 2**53, True, 1.5, "1"])
def test_an_expected_version_that_is_no_version_is_refused_before_anything(redis_server, bad):
    url = redis_server.url + "?namespace=expectbad&cache=off"
    with RedisConfigStore(url, ENV) as store, RedisFlagStore(url) as fstore:
        with pytest.raises(ConfigError, match="expected_version: must be a whole number"):
            store.update(lambda _s: _config(1), force=True, expected_version=bad)
        with pytest.raises(ConfigError, match="expected_version: must be a whole number"):
            store.publish_with_flags(_config(1), fstore, lambda _s: _flags(1), expected_version=bad)
    assert redis_server.client().keys("{expectbad}:*") == []


def test_racing_pair_publishes_expecting_one_version_write_exactly_one(redis_server):
    ns = "expectrace"
    url = redis_server.url + f"?namespace={ns}&cache=off"
    with RedisConfigStore(url, ENV) as store, RedisFlagStore(url) as fstore:
        store.publish_with_flags(_config(0), fstore, lambda _s: _flags(0))
    won: list[int] = []
    refused: list[VersionConflictError] = []
    start = threading.Barrier(8)

    def publisher(gen: int) -> None:
        with RedisConfigStore(url, ENV) as cstore, RedisFlagStore(url) as flags:
            start.wait(10)
            try:
                cstore.publish_with_flags(
                    _config(gen), flags, lambda _s: _flags(gen), expected_version=1
                )
            except VersionConflictError as exc:
                refused.append(exc)
            else:
                won.append(gen)

    threads = [threading.Thread(target=publisher, args=(gen,)) for gen in range(1, 9)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(won) == 1 and len(refused) == 7
    assert all(exc.current == 2 and exc.expected == 1 for exc in refused)
    with RedisConfigStore(url, ENV) as store, RedisFlagStore(url) as fstore:
        config, flags = store.read(), fstore.read()
    assert config.version == 2 and config.snapshot.config == {"svc": {"gen": won[0]}}
    assert flags.version == 2 and flags.snapshot.flags["gen"].variants["g"] == won[0]


_NAMESPACES = itertools.count()


@settings(
    max_examples=examples(25),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    publishes=st.integers(0, 3),
    expected=st.one_of(st.integers(0, 4), st.integers(0, 2**53 - 1)),
    paired=st.booleans(),
)
def test_a_publish_is_written_exactly_when_the_stored_version_is_the_expected_one(
    redis_server, publishes, expected, paired
):
    ns = f"expectprop{next(_NAMESPACES)}"
    url = redis_server.url + f"?namespace={ns}&cache=off"
    client = redis_server.client()
    with RedisConfigStore(url, ENV) as store, RedisFlagStore(url) as fstore:
        for gen in range(publishes):
            store.update(lambda _s, gen=gen: _config(gen), force=True)
        before = _stored(client, ns)
        try:
            if paired:
                new, _ = store.publish_with_flags(
                    _config(9), fstore, lambda _s: _flags(9), expected_version=expected
                )
            else:
                _, new = store.update(lambda _s: _config(9), force=True, expected_version=expected)
        except VersionConflictError as exc:
            assert expected != publishes
            assert (exc.current, exc.expected) == (publishes, expected)
            assert _stored(client, ns) == before
        else:
            assert expected == publishes
            assert new.version == publishes + 1


def test_cli_expect_version(redis_server, bundled_config, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("JWT_SIGNING_KEY", JWT)
    ns = "expectcli"
    url = redis_server.url + f"?namespace={ns}&cache=off"
    client = redis_server.client()
    base = ["-q", "publish", "--store", url, "--config-dir", str(bundled_config), "-e", ENV]
    assert main([*base, "--expect-version", "0"]) == 0
    assert main([*base, "--flags", "--expect-version", "1"]) == 0
    capsys.readouterr()
    before = _stored(client, ns)
    for extra in ([], ["--flags"]):
        assert main([*base, *extra, "--expect-version", "1"]) == 1
        err = capsys.readouterr().err
        assert "holds version 2" in err and "expected to replace version 1" in err, err
        assert _stored(client, ns) == before
    assert main([*base, "--flags", "--expect-version", "2"]) == 0
    with RedisConfigStore(url, ENV) as store:
        assert store.read().version == 3
    with pytest.raises(SystemExit) as exit_:
        main([*base, "--expect-version", "two"])
    assert exit_.value.code == 2
    assert "is not a version" in capsys.readouterr().err
