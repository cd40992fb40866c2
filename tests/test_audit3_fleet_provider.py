"""OpenFeature provider, third audit: a provider follows the engine it was given. When
the manager serving that engine is closed and a new manager is opened on the same
engine, the provider follows the new manager's flag set (its refusals, its Redis
follower's state) instead of staying ERROR, or deaf, until registered again. Real
openfeature-sdk registry and client, real files, real redis-server."""

from __future__ import annotations

import itertools
import json
import logging

import msgspec
import pytest

api = pytest.importorskip("openfeature.api", reason="openfeature-sdk is not installed")

from openfeature.event import ProviderEvent  # noqa: E402
from openfeature.provider import ProviderStatus  # noqa: E402

from cfgcore.openfeature import CfgcoreProvider  # noqa: E402
from cfgcore.snapshot import Flag  # noqa: E402
from tests.waiting import wait_for  # noqa: E402

_domains = itertools.count()


@pytest.fixture(autouse=True)
def _quiet():
    logging.getLogger("cfgcore.fleet").setLevel(logging.CRITICAL)
    logging.getLogger("cfgcore.flags").setLevel(logging.CRITICAL)
    yield
    logging.getLogger("cfgcore.fleet").setLevel(logging.NOTSET)
    logging.getLogger("cfgcore.flags").setLevel(logging.NOTSET)


def _client(provider):
    domain = f"cfgcore-audit3-fleet-{next(_domains)}"
    api.set_provider_and_wait(provider, domain=domain)
    client = api.get_client(domain)
    events = []
    for ev in (ProviderEvent.PROVIDER_STALE, ProviderEvent.PROVIDER_READY):
        client.add_handler(ev, lambda d, ev=ev: events.append((ev, d)))
    return client, events


def _set(flag, value):
    def change(snap):
        return msgspec.structs.replace(snap, flags={**snap.flags, flag: Flag(default=value)})

    return change


def test_a_provider_follows_a_new_fleet_manager_on_its_engine(redis_server, tmp_path, impl):
    """Redis store: closing the manager makes the provider ERROR (nothing follows the
    store, and nothing will until a manager is opened; STALE said it would catch up);
    a new manager on the same engine makes it READY again, and a document the new flag
    set refuses makes it STALE (it is subscribed to the new set)."""
    from cfgcore.dynamic_config import DynamicConfigurationManager
    from cfgcore.engine import engine_class

    url = redis_server.url + f"?namespace=p3&poll=0.1&cache={tmp_path / 'c.msgpack'}"
    engine = engine_class(impl)()
    first = DynamicConfigurationManager(store=url, state_dir=tmp_path / "s", engine=engine)
    first._live.update(_set("a", "on"), source="test")
    provider = CfgcoreProvider(engine)
    second = None
    try:
        client, _events = _client(provider)
        first.close()
        assert wait_for(lambda: client.get_provider_status() == ProviderStatus.ERROR)
        second = DynamicConfigurationManager(store=url, state_dir=tmp_path / "s", engine=engine)
        assert wait_for(lambda: client.get_provider_status() == ProviderStatus.READY)
        assert client.get_boolean_value("a", False) is True
        r = redis_server.client()
        r.delete("{p3}:flags")
        r.set("{p3}:flags", "not a document")
        assert wait_for(lambda: client.get_provider_status() == ProviderStatus.STALE)
        assert second._live.last_error is not None
        assert client.get_boolean_value("a", False) is True  # the last good flags
    finally:
        provider.shutdown()
        if second is not None:
            second.close()


def test_a_provider_hears_refusals_of_a_new_file_manager_on_its_engine(tmp_path, impl):
    """File store: after the manager is closed and a new one opened on the engine, a
    refused flag file makes the provider STALE and the next good one READY."""
    from cfgcore.dynamic_config import DynamicConfigurationManager
    from cfgcore.engine import engine_class

    path = tmp_path / "flags.json"
    path.write_text(json.dumps({"flags": {"a": {"default": "on"}}}))
    engine = engine_class(impl)()
    first = DynamicConfigurationManager(flags_file=path, engine=engine)
    provider = CfgcoreProvider(engine)
    second = None
    try:
        client, events = _client(provider)
        assert client.get_boolean_value("a", False) is True
        first.close()
        second = DynamicConfigurationManager(flags_file=path, engine=engine)
        path.write_text("{broken")
        assert second.reload() is False
        assert wait_for(lambda: client.get_provider_status() == ProviderStatus.STALE)
        assert wait_for(lambda: any(e == ProviderEvent.PROVIDER_STALE for e, _ in events))
        stale = next(d for e, d in events if e == ProviderEvent.PROVIDER_STALE)
        assert "flag document refused" in stale.message
        path.write_text(json.dumps({"flags": {"a": {"default": "off"}}}))
        assert second.reload() is True
        assert wait_for(lambda: client.get_provider_status() == ProviderStatus.READY)
        assert client.get_boolean_value("a", True) is False
    finally:
        provider.shutdown()
        if second is not None:
            second.close()


def test_a_provider_registered_on_a_bare_engine_follows_the_manager_opened_on_it(tmp_path, impl):
    """A provider registered before any manager serves its engine follows the flag set
    of the manager opened on it afterwards (a refusal makes it STALE)."""
    from cfgcore.dynamic_config import DynamicConfigurationManager
    from cfgcore.engine import engine_class

    path = tmp_path / "flags.json"
    path.write_text(json.dumps({"flags": {"a": {"default": "on"}}}))
    engine = engine_class(impl)()
    provider = CfgcoreProvider(engine)
    manager = None
    try:
        client, _events = _client(provider)
        manager = DynamicConfigurationManager(flags_file=path, engine=engine)
        assert client.get_boolean_value("a", False) is True
        path.write_text("{broken")
        assert manager.reload() is False
        assert wait_for(lambda: client.get_provider_status() == ProviderStatus.STALE)
    finally:
        provider.shutdown()
        if manager is not None:
            manager.close()
