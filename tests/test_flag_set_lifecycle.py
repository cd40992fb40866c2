"""The shared live flag set's lifetime: the managers of a process hold it, the last
one to close stops its watcher or fleet follower and closes the store.

Against a real redis-server (tests/redis_server.py) and real files.
"""

from __future__ import annotations

import threading

import msgspec

from cfgcore.config.manager import ConfigurationManager
from cfgcore.experiments.dynamic import DynamicConfigurationManager
from cfgcore.runtime.flags import shared_flags
from cfgcore.runtime.flagstore import open_store
from cfgcore.runtime.redis_store import RedisFlagStore
from cfgcore.snapshot import Flag
from tests.redis_server import wait_for


def _followers(url: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == f"cfgcore-fleet {url}" and t.is_alive()]


def _dyn(url: str, tmp_path, name: str) -> DynamicConfigurationManager:
    state = tmp_path / name
    state.mkdir()
    return DynamicConfigurationManager(
        store=url, state_dir=state, log_exposures=False, record_usage=False
    )


def test_the_follower_stops_when_the_last_manager_closes(redis_server, tmp_path):
    url = redis_server.url + "?namespace=life&poll=0.2"
    first, second = _dyn(url, tmp_path, "a"), _dyn(url, tmp_path, "b")
    try:
        live = first._live
        assert second._live is live  # one set per store per process
        wait_for(lambda: live.store.connected)
        assert len(_followers(live.store.url)) == 1

        first.close()
        first.close()  # a second close must not release the other manager's hold
        assert not live.closed and len(_followers(live.store.url)) == 1
        # The remaining manager still follows the fleet: a write from elsewhere arrives.
        writer = RedisFlagStore(url)
        try:
            writer.update(
                lambda s: msgspec.structs.replace(
                    s, flags={**s.flags, "fleet_new": Flag(default="on")}
                )
            )
        finally:
            writer.close()
        wait_for(lambda: second.is_feature_enabled("fleet_new"))

        second.close()
        assert live.closed
        wait_for(lambda: not _followers(live.store.url))
        assert second.is_feature_enabled("fleet_new")  # still serves the last flags
    finally:
        first.close()
        second.close()

    # A manager opened afterwards gets a new set that follows again.
    third = _dyn(url, tmp_path, "c")
    try:
        assert third._live is not live and not third._live.closed
        wait_for(lambda: len(_followers(third._live.store.url)) == 1)
        assert third.is_feature_enabled("fleet_new")
    finally:
        third.close()
    wait_for(lambda: not _followers(third._live.store.url))


def test_both_managers_of_a_file_store_hold_the_same_set(tmp_path):
    cfg = tmp_path / "config"
    cfg.mkdir()
    (cfg / "base.yaml").write_text("{}\n")
    (cfg / "staging.yaml").write_text("{}\n")
    flags = tmp_path / "flags.json"
    config = ConfigurationManager(cfg, environ={}, validate=False, flag_store=str(flags))
    config.load_environment_config("staging")
    live = config._flags.live()
    assert live is not None
    dyn = DynamicConfigurationManager(store=str(flags), state_dir=tmp_path, record_usage=False)
    try:
        assert dyn._live is live
        config.close()
        config.close()
        assert not live.closed  # the dynamic manager still holds it
        dyn.set_feature_flag("from_dyn", True)
        assert dyn.is_feature_enabled("from_dyn")
    finally:
        dyn.close()
    assert live.closed
    # shared_flags opens a new set for the same file after the last holder left
    again = shared_flags(open_store(str(flags)))
    try:
        assert again is not live and again.engine.is_enabled("from_dyn")
    finally:
        again.release()
    assert again.closed


def test_close_stops_a_set_whoever_holds_it(tmp_path):
    flags = str(tmp_path / "flags.json")
    (tmp_path / "flags.json").write_text('{"version": 1, "flags": {"on": {"default": "on"}}}')
    live = shared_flags(open_store(flags))
    assert live.engine.is_enabled("on")
    assert shared_flags(open_store(flags)) is live  # two holds
    live.release()
    assert not live.closed  # one hold left
    live.close()  # explicit: closes regardless
    assert live.closed
    live.release()  # more releases than holds: nothing more happens
    fresh = shared_flags(open_store(flags))
    try:
        assert fresh is not live and not fresh.closed
    finally:
        fresh.release()
