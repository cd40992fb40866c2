"""OpenFeature provider, second audit: the SDK's own register/shutdown sequencing.

The real openfeature-sdk shuts a replaced provider down on a daemon thread
(``shutdown()``, then, unless it was registered again meanwhile, ``detach()``). When
the same provider is registered again before that thread runs, the late ``shutdown()``
(or ``detach()``) belongs to the old registration: it must not silence the live one.
The tests hold the SDK's thread at our method with a gate (the SDK decides the order of
the calls; the gate only makes the interleaving happen every time)."""

from __future__ import annotations

import itertools
import threading

import pytest

api = pytest.importorskip("openfeature.api", reason="openfeature-sdk is not installed")

from openfeature.event import ProviderEvent  # noqa: E402
from openfeature.provider.in_memory_provider import InMemoryProvider  # noqa: E402

from cfgcore.openfeature import CfgcoreProvider  # noqa: E402
from tests.waiting import wait_for  # noqa: E402

_domains = itertools.count()


def _doc(a="on"):
    return {"flags": {"a": {"default": a}}}


class _Gated(CfgcoreProvider):
    """Holds the first call of ``method`` (as the SDK's shutdown thread makes it) until
    the test opens the gate; counts the calls that returned."""

    def __init__(self, engine, method):
        super().__init__(engine)
        self.gate = threading.Event()
        self.gated = method
        self.entered = threading.Event()
        self.done = {"shutdown": 0, "detach": 0}

    def _hold(self, method):
        if method == self.gated and not self.entered.is_set():
            self.entered.set()
            assert self.gate.wait(15)

    def shutdown(self):
        self._hold("shutdown")
        super().shutdown()
        self.done["shutdown"] += 1

    def detach(self):
        self._hold("detach")
        super().detach()
        self.done["detach"] += 1


def _changes(client):
    seen = []
    client.add_handler(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED, seen.append)
    return seen


@pytest.mark.parametrize("late", ["shutdown", "detach"])
def test_a_late_shutdown_of_an_old_registration_does_not_silence_the_live_one(make, late):
    """Registered, replaced (the SDK starts shutting it down), registered again before
    the SDK's thread gets to it: the old registration's late shutdown() (or detach(),
    when the SDK saw it unregistered just before the new registration) leaves the live
    registration announcing every swap."""
    engine = make(_doc())
    provider = _Gated(engine, late)
    domain = f"cfgcore-audit2-{next(_domains)}"
    api.set_provider_and_wait(provider, domain=domain)
    client = api.get_client(domain)
    try:
        api.set_provider(InMemoryProvider({}), domain=domain)  # old registration ends
        assert provider.entered.wait(15)  # the SDK's thread is in our method now
        api.set_provider_and_wait(provider, domain=domain)  # registered again
        seen = _changes(client)
        provider.gate.set()  # the old registration's call completes late
        assert wait_for(lambda: provider.done[late] >= 1)
        engine.swap(_doc(a="off"))
        assert wait_for(lambda: len(seen) == 1)
        assert seen[0].flags_changed == ["a"]
        assert client.get_boolean_value("a", True) is False
    finally:
        provider.gate.set()
        detached = provider.done["detach"]
        api.set_provider(InMemoryProvider({}), domain=domain)
    # The live registration's own end does stop it listening (no leaked listener).
    assert wait_for(lambda: provider.done["detach"] > detached)
    assert not engine._swap_listeners


def test_shutdown_through_the_api_stops_announcing(make):
    engine = make(_doc())
    provider = CfgcoreProvider(engine)
    domain = f"cfgcore-audit2-{next(_domains)}"
    api.set_provider_and_wait(provider, domain=domain)
    api.set_provider_and_wait(provider, domain=domain)  # the same provider twice: one attach more
    assert engine._swap_listeners
    api.set_provider(InMemoryProvider({}), domain=domain)
    assert wait_for(lambda: not engine._swap_listeners)
