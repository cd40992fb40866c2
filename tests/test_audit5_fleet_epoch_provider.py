"""OpenFeature provider on a fleet store that was re-created (FLUSHALL, then a process
that never saw the old document wrote a new one): STALE, saying why, while the last good
flags answer; READY again once ``cfgcore publish`` (a forced write) repairs it. Real
redis-server and openfeature-sdk."""

from __future__ import annotations

import itertools
import logging

import msgspec
import pytest

api = pytest.importorskip("openfeature.api", reason="openfeature-sdk is not installed")

from openfeature.event import ProviderEvent  # noqa: E402
from openfeature.provider import ProviderStatus  # noqa: E402

from cfgcore.openfeature import CfgcoreProvider  # noqa: E402
from cfgcore.runtime.redis_store import RedisFlagStore  # noqa: E402
from cfgcore.snapshot import Flag, Snapshot  # noqa: E402
from tests.waiting import wait_for  # noqa: E402

_domains = itertools.count()


@pytest.fixture(autouse=True)
def _quiet():
    logging.getLogger("cfgcore.fleet").setLevel(logging.CRITICAL)
    yield
    logging.getLogger("cfgcore.fleet").setLevel(logging.NOTSET)


def _set(flag, value):
    def change(snap):
        return msgspec.structs.replace(snap, flags={**snap.flags, flag: Flag(default=value)})

    return change


def test_a_re_created_store_makes_the_provider_stale_until_published(redis_server, tmp_path, impl):
    from cfgcore.dynamic_config import DynamicConfigurationManager
    from cfgcore.engine import engine_class

    url = redis_server.url + "?namespace=ofepoch"
    manager = DynamicConfigurationManager(
        store=url + f"&cache={tmp_path / 'm.msgpack'}",  # poll 30 s: none in the window
        state_dir=tmp_path / "state",
        engine=engine_class(impl)(),
    )
    provider = CfgcoreProvider(manager.engine)
    other = RedisFlagStore(url + "&cache=off")
    try:
        manager._live.update(_set("a", "on"), source="test")
        domain = f"cfgcore-audit5-epoch-{next(_domains)}"
        api.set_provider_and_wait(provider, domain=domain)
        client = api.get_client(domain)
        events: list = []
        for ev in (ProviderEvent.PROVIDER_STALE, ProviderEvent.PROVIDER_READY):
            client.add_handler(ev, lambda d, ev=ev: events.append((ev, d)))
        assert wait_for(lambda: events)
        events.clear()

        redis_server.client().flushall()
        other.update(_set("a", "off"))  # the new process's document: another epoch
        other.update(_set("b", "off"))  # version 2: newer than the manager's 1
        assert wait_for(lambda: any(e == ProviderEvent.PROVIDER_STALE for e, _ in events))
        assert client.get_provider_status() == ProviderStatus.STALE
        stale = next(d for e, d in events if e == ProviderEvent.PROVIDER_STALE)
        assert "re-created" in stale.message and "cfgcore publish" in stale.message
        d = client.get_boolean_details("a", False)
        assert (d.value, d.error_code) == (True, None)  # the last good flags answer

        other.update(lambda _: Snapshot(flags={"a": Flag(default="on")}), force=True)
        assert wait_for(lambda: any(e == ProviderEvent.PROVIDER_READY for e, _ in events))
        assert client.get_provider_status() == ProviderStatus.READY
    finally:
        provider.shutdown()
        other.close()
        manager.close()
