"""A process that follows a published configuration and its flags from one URL starts on
one pair, as the store held it at one moment.

At start it read the configuration document, then (opening its flag set) the flag
document: a ``publish --flags`` landing between the two reads made it serve one
publish's configuration with the next one's flags. Now the two reads are confirmed by one
transaction and read again when the store changed between them. A server that refuses
the transaction (here a Redis user without MULTI/EXEC, as a proxy or cluster node would)
still starts, on reads taken apart, and says so once at WARNING. Real redis-server, real
followers; the publish is made at the real point between the two reads."""

from __future__ import annotations

import logging

import pytest

from cfgcore.config.manager import ConfigurationManager
from cfgcore.runtime.redis_store import PublishedConfig, RedisConfigStore, RedisFlagStore
from cfgcore.snapshot import Flag, Snapshot
from tests.waiting import wait_for

ENV = "development"


def _flags(gen: int) -> Snapshot:
    return Snapshot(flags={"gen": Flag(variants={"g": gen}, default="g")})


def _config(gen: int) -> PublishedConfig:
    tree = {"app": {"name": "svc"}, "svc": {"gen": gen}}
    return PublishedConfig(environment=ENV, config=tree, flags=_flags(gen))


def _publish_pair(url: str, gen: int) -> None:
    with RedisConfigStore(url, ENV) as cstore, RedisFlagStore(url) as fstore:
        cstore.publish_with_flags(_config(gen), fstore, lambda _stored: _flags(gen))


def _publish_after_reads(monkeypatch, url: str, gens: list[int]) -> list[int]:
    """Publish the pair ``gens[i]`` right after the i-th read of the configuration
    document (the start's first read, then its re-reads); returns the versions read."""
    original = RedisConfigStore.read
    read: list[int] = []

    def read_then_publish(self):
        doc = original(self)
        read.append(doc.version)
        if len(read) <= len(gens):
            _publish_pair(url, gens[len(read) - 1])
        return doc

    monkeypatch.setattr(RedisConfigStore, "read", read_then_publish)
    return read


@pytest.mark.parametrize("publishes", [1, 3])
def test_a_pair_published_between_the_start_reads_is_not_started_on_mixed(
    redis_server, tmp_path, monkeypatch, publishes
):
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    url = redis_server.url + f"?namespace=startpair{publishes}&cache=off"
    _publish_pair(url, 1)
    gens = list(range(2, 2 + publishes))
    read = _publish_after_reads(monkeypatch, url, gens)
    m = ConfigurationManager(config_source=url, flag_store=url, environment=ENV, environ={})
    try:
        started = m.load_environment_config()
        # The configuration that went live at start is the one stored with the flags
        # the start read: the last pair, not the first configuration beside its flags.
        assert started["svc"]["gen"] == gens[-1]
        snap, flags = m.pinned()
        assert (snap.config["svc"]["gen"], flags.evaluate("gen").value) == (gens[-1], gens[-1])
        assert len(read) >= 2  # it did read again
    finally:
        m.close()


def test_flags_refused_at_start_keep_the_last_good_pair(redis_server, tmp_path, monkeypatch):
    # The pair published between the two reads carries flags that do not compile: the
    # process starts on the pair it read first (its flag set refuses the new flags and
    # reports it), not on the new flags (which failed the start) nor on a mix.
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    url = redis_server.url + "?namespace=startrefused&cache=off"
    _publish_pair(url, 1)
    original = RedisConfigStore.read
    bad = Snapshot(flags={"gen": Flag(variants={"g": 2}, default="missing")})

    def read_then_publish(self):
        doc = original(self)
        if doc.version == 1:
            with RedisConfigStore(url, ENV) as cstore, RedisFlagStore(url) as fstore:
                cstore.publish_with_flags(_config(2), fstore, lambda _stored: bad)
        return doc

    monkeypatch.setattr(RedisConfigStore, "read", read_then_publish)
    m = ConfigurationManager(config_source=url, flag_store=url, environment=ENV, environ={})
    try:
        assert m.load_environment_config()["svc"]["gen"] == 1
        snap, flags = m.pinned()
        assert (snap.config["svc"]["gen"], flags.evaluate("gen").value) == (1, 1)
        assert m._flags._live.last_error is not None
    finally:
        m.close()


def test_a_server_refusing_the_transaction_starts_apart_and_says_so_once(
    redis_server, tmp_path, monkeypatch, caplog
):
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    admin = redis_server.client()
    admin.acl_setuser(
        "nomulti", enabled=True, passwords=["+pw-nomulti"], keys=["*"], channels=["*"],
        commands=["+@all", "-multi", "-exec"],
    )  # fmt: skip
    host = redis_server.url.removeprefix("redis://")
    url = f"redis://nomulti:pw-nomulti@{host}?namespace=startnomulti&cache=off"
    _publish_pair(url, 1)
    caplog.set_level(logging.WARNING, logger="cfgcore.config")
    m = ConfigurationManager(config_source=url, flag_store=url, environment=ENV, environ={})
    try:
        assert m.load_environment_config()["svc"]["gen"] == 1
        apart = [
            r for r in caplog.records
            if r.levelno == logging.WARNING and "read apart" in r.getMessage()
        ]  # fmt: skip
        assert len(apart) == 1, [r.getMessage() for r in caplog.records]
        message = apart[0].getMessage()
        assert "refused the transaction" in message and "MULTI" in message.upper()
        assert "pw-nomulti" not in message
        # later pairs still reach the process (followed apart), with no new warning
        _publish_pair(url, 2)
        assert wait_for(
            lambda: m.get("svc.gen") == 2 and m.flags.evaluate("gen").value == 2, timeout=10
        )
        assert sum("read apart" in r.getMessage() for r in caplog.records) == 1
    finally:
        m.close()
