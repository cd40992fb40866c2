"""A published configuration and the flags published with it go live in a process as
one pair.

``cfgcore publish --flags`` writes both documents in one script, but a process with
``config_source=URL`` and ``flag_store=URL`` followed them with two independent
followers: between the two swaps its readers saw the new configuration with the old
flags (or the reverse). Real redis-server, a real publisher thread, real followers."""

from __future__ import annotations

import threading

from cfgcore.config.manager import ConfigurationManager
from cfgcore.runtime.redis_store import PublishedConfig, RedisConfigStore, RedisFlagStore
from cfgcore.snapshot import Flag, Snapshot
from tests.waiting import wait_for

ENV = "development"


def _flags(gen: int) -> Snapshot:
    return Snapshot(flags={"gen": Flag(variants={"g": gen}, default="g")})


def _config(gen: int, flags: Snapshot | None) -> PublishedConfig:
    tree = {"app": {"name": "svc"}, "svc": {"gen": gen}}
    return PublishedConfig(environment=ENV, config=tree, flags=flags)


def _publish_pair(cstore: RedisConfigStore, fstore: RedisFlagStore, gen: int) -> None:
    cstore.publish_with_flags(_config(gen, _flags(gen)), fstore, lambda _stored: _flags(gen))


def _reader(m: ConfigurationManager, stop: threading.Event, seen: list, reads: list) -> None:
    count = 0
    while not stop.is_set():
        snap, flags = m.pinned()  # one pair, pinned (get() then flags may straddle a swap)
        gen = snap.config["svc"]["gen"]
        flag = flags.evaluate("gen").value
        count += 1
        if gen != flag and len(seen) < 1000:
            seen.append((gen, flag))
    reads.append(count)


def test_a_burst_of_pair_publishes_never_shows_a_mixed_pair(redis_server, tmp_path, monkeypatch):
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    url = redis_server.url + "?namespace=pairfollow&cache=off"
    with RedisConfigStore(url, ENV) as cstore, RedisFlagStore(url) as fstore:
        _publish_pair(cstore, fstore, 0)
        m = ConfigurationManager(config_source=url, flag_store=url, environment=ENV, environ={})
        try:
            m.load_environment_config()
            assert wait_for(lambda: m.flags.evaluate("gen").value == 0, timeout=10)
            stop = threading.Event()
            mixed: list = []
            reads: list = []
            readers = [
                threading.Thread(target=_reader, args=(m, stop, mixed, reads)) for _ in range(2)
            ]
            for t in readers:
                t.start()
            try:
                last = 40
                for gen in range(1, last + 1):
                    _publish_pair(cstore, fstore, gen)
                assert wait_for(
                    lambda: m.get("svc.gen") == last and m.flags.evaluate("gen").value == last,
                    timeout=30,
                )
            finally:
                stop.set()
                for t in readers:
                    t.join(10)
            assert sum(reads) > 0
            assert mixed == [], f"{len(mixed)} mixed reads, e.g. {mixed[:5]}"
        finally:
            m.close()


def test_flags_only_and_config_only_publishes_still_go_live_alone(
    redis_server, tmp_path, monkeypatch
):
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    url = redis_server.url + "?namespace=pairalone&cache=off"
    with RedisConfigStore(url, ENV) as cstore, RedisFlagStore(url) as fstore:
        _publish_pair(cstore, fstore, 1)
        m = ConfigurationManager(config_source=url, flag_store=url, environment=ENV, environ={})
        try:
            m.load_environment_config()
            assert wait_for(lambda: m.flags.evaluate("gen").value == 1, timeout=10)
            # flags alone (another process's set_feature_flag, a flags-only write)
            fstore.update(lambda _s: _flags(7))
            assert wait_for(lambda: m.flags.evaluate("gen").value == 7, timeout=10)
            assert m.get("svc.gen") == 1
            # a configuration published without flags
            cstore.update(lambda _s: _config(9, None), force=True)
            assert wait_for(lambda: m.get("svc.gen") == 9, timeout=10)
            assert m.flags.evaluate("gen").value == 7
            # and a pair again, after both
            _publish_pair(cstore, fstore, 11)
            assert wait_for(
                lambda: m.get("svc.gen") == 11 and m.flags.evaluate("gen").value == 11,
                timeout=10,
            )
        finally:
            m.close()


def test_a_refused_configuration_keeps_the_flags_published_with_it_out(
    redis_server, tmp_path, monkeypatch
):
    # The pair goes live whole or not at all: a configuration this process refuses
    # (here a ${VAR} it cannot resolve) does not leave its flags serving beside the
    # last good configuration. A later configuration goes live with the stored flags.
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    url = redis_server.url + "?namespace=pairrefused&cache=off"
    with RedisConfigStore(url, ENV) as cstore, RedisFlagStore(url) as fstore:
        _publish_pair(cstore, fstore, 1)
        m = ConfigurationManager(config_source=url, flag_store=url, environment=ENV, environ={})
        try:
            m.load_environment_config()
            assert wait_for(lambda: m.flags.evaluate("gen").value == 1, timeout=10)
            follower = m._flags._live.store  # the process's flag follower
            accepted = follower.stats["accepted"]
            bad = PublishedConfig(
                environment=ENV,
                config={"app": {"name": "svc"}, "svc": {"gen": 2, "key": "${PAIR_NOT_SET}"}},
                flags=_flags(2),
            )
            cstore.publish_with_flags(bad, fstore, lambda _stored: _flags(2))
            assert wait_for(lambda: m.last_error is not None, timeout=10)
            # the flag follower has taken its document too; neither went live
            assert wait_for(lambda: follower.stats["accepted"] > accepted, timeout=10)
            snap, flags = m.pinned()
            assert snap.config["svc"]["gen"] == 1
            assert flags.evaluate("gen").value == 1
            assert m.flags.evaluate("gen").value == 1
            # a good configuration published alone: live with the flags stored beside it
            cstore.update(lambda _s: _config(3, None), force=True)
            assert wait_for(lambda: m.get("svc.gen") == 3, timeout=10)
            snap, flags = m.pinned()
            assert (snap.config["svc"]["gen"], flags.evaluate("gen").value) == (3, 2)
        finally:
            m.close()


def test_pinned_without_flags_serves_the_configuration(redis_server, tmp_path, monkeypatch):
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    url = redis_server.url + "?namespace=pairnone&cache=off"
    with RedisConfigStore(url, ENV) as cstore:
        cstore.update(lambda _s: _config(5, None), force=True)
    m = ConfigurationManager(config_source=url, environment=ENV, environ={})
    try:
        snap, flags = m.pinned()
        assert snap.config["svc"]["gen"] == 5
        assert flags.evaluate("gen").value is None
    finally:
        m.close()


def test_a_flag_reload_does_not_take_the_flags_ahead_of_their_configuration(
    redis_server, tmp_path, monkeypatch
):
    # The flag set's reload (DynamicConfigurationManager.reload(), a second manager opening the
    # set) reads the store directly: it held a pair's flags back no more than the
    # follower did before, and swapped them in beside the old configuration.
    from cfgcore.experiments.dynamic import DynamicConfigurationManager

    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    url = redis_server.url + "?namespace=pairreload&cache=off"
    with RedisConfigStore(url, ENV) as cstore, RedisFlagStore(url) as fstore:
        _publish_pair(cstore, fstore, 1)
        m = ConfigurationManager(config_source=url, flag_store=url, environment=ENV, environ={})
        dyn = None
        try:
            m.load_environment_config()
            assert wait_for(lambda: m.flags.evaluate("gen").value == 1, timeout=10)
            dyn = DynamicConfigurationManager(store=url)
            follower = m._flags._live.store
            accepted = follower.stats["accepted"]
            with m._lock:  # the configuration's delivery waits (a slow validation, say)
                _publish_pair(cstore, fstore, 2)
                assert wait_for(lambda: follower.stats["accepted"] > accepted, timeout=10)
                assert dyn.reload() is False
                snap, flags = m.pinned()
                assert (snap.config["svc"]["gen"], flags.evaluate("gen").value) == (1, 1)
            assert wait_for(lambda: m.get("svc.gen") == 2, timeout=10)
            snap, flags = m.pinned()
            assert (snap.config["svc"]["gen"], flags.evaluate("gen").value) == (2, 2)
        finally:
            if dyn is not None:
                dyn.close()
            m.close()


def test_read_pair_sends_only_what_changed_since_the_documents_held(redis_server):
    # Each follower of a pair reads both documents once more per change; what the
    # process holds already is not sent again (the read script's "unchanged" reply).
    url = redis_server.url + "?namespace=pairread&cache=off"
    with RedisConfigStore(url, ENV) as cstore, RedisFlagStore(url) as fstore:
        _publish_pair(cstore, fstore, 1)
        c1, f1 = cstore.read_pair(fstore)
        assert (c1.snapshot.config["svc"]["gen"], c1.snapshot.flags) == (1, _flags(1))
        assert f1.snapshot == _flags(1)
        again = cstore.read_pair(fstore, (c1, f1))
        assert again[0] is c1 and again[1] is f1
        fstore.update(lambda _s: _flags(2))  # flags alone
        c2, f2 = cstore.read_pair(fstore, (c1, f1))
        assert c2 is c1 and f2.snapshot == _flags(2) and f2.version > f1.version
        _publish_pair(cstore, fstore, 3)
        c3, f3 = cstore.read_pair(fstore, (c1, f2))
        assert c3.snapshot.config["svc"]["gen"] == 3 and f3.snapshot == _flags(3)
