"""OpenFeature provider audit: lifecycle, status and events through the real
openfeature-sdk (registry, client and API handlers), with real files and the real
watcher where the feature is about them."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from pathlib import Path

import pytest

api = pytest.importorskip("openfeature.api", reason="openfeature-sdk is not installed")

from openfeature.evaluation_context import EvaluationContext  # noqa: E402
from openfeature.event import ProviderEvent  # noqa: E402
from openfeature.provider import ProviderStatus  # noqa: E402

from cfgcore.openfeature import CfgcoreProvider  # noqa: E402
from cfgcore.runtime.atomicio import atomic_write  # noqa: E402
from tests.waiting import wait_for, wait_for_async  # noqa: E402

_domains = itertools.count()


@pytest.fixture(autouse=True)
def _quiet_sdk():
    # The SDK logs a raising handler's traceback: expected here.
    logging.getLogger("openfeature").setLevel(logging.CRITICAL)
    yield
    logging.getLogger("openfeature").setLevel(logging.NOTSET)


def _register(provider):
    domain = f"cfgcore-audit-of-{next(_domains)}"
    api.set_provider_and_wait(provider, domain=domain)
    return api.get_client(domain)


def _record(client):
    events = []
    for ev in ProviderEvent:
        client.add_handler(ev, lambda d, ev=ev: events.append((ev, d)))
    return events


# -- which flags a swap announces ------------------------------------------------------


def _doc(tier="gold", base="on", desc=""):
    return {
        "segments": {"s": {"attr": "tier", "eq": tier}, "s2": {"segment": "s"}},
        "flags": {
            "by_segment": {"default": "off", "rules": [{"when": {"segment": "s2"}, "serve": "on"}]},
            "base": {"default": base, "description": desc},
            "child": {"default": "off", "rules": [{"serve": "on"}], "prerequisites": ["base"]},
            "grandchild": {
                "default": "off",
                "rules": [{"serve": "on"}],
                "prerequisites": [{"flag": "child", "variant": "on"}],
            },
            "other": {"default": "on"},
        },
    }


def test_flags_changed_lists_flags_whose_segment_or_prerequisite_changed(make):
    """A segment edit changes the answers of the flags using it (through another
    segment too), and a prerequisite's change those of its dependents, transitively:
    each must be listed, or a consumer caching by flags_changed serves stale values."""
    engine = make(_doc())
    provider = CfgcoreProvider(engine)
    emitted = []
    provider.attach(lambda prov, event, details: emitted.append(details.flags_changed))
    silver = EvaluationContext("u", {"tier": "silver"})
    assert provider.resolve_boolean_details("by_segment", False, silver).value is False

    engine.swap(_doc(tier="silver"))
    assert provider.resolve_boolean_details("by_segment", False, silver).value is True
    assert emitted[-1] == ["by_segment"]

    assert provider.resolve_boolean_details("grandchild", False, silver).value is True
    engine.swap(_doc(tier="silver", base="off"))
    assert provider.resolve_boolean_details("grandchild", False, silver).value is False
    assert emitted[-1] == ["base", "child", "grandchild"]

    # A description changes no answer: nothing is listed.
    engine.swap(_doc(tier="silver", base="off", desc="now documented"))
    assert emitted[-1] == []
    provider.detach()


# -- a manager's flags file: hot reload, refusal, recovery -----------------------------


def _flags(a="on"):
    return {"flags": {"a": {"default": a}, "b": {"default": "off"}}}


def test_file_reload_refusal_and_recovery_through_the_sdk(tmp_path, impl):
    """Real file, real watcher. An edit is CONFIGURATION_CHANGED naming the flag. A
    refused file leaves the last good flags serving and makes the provider STALE (the
    flags it serves are no longer the store's); handlers that raise, on the client and
    the API, break nothing. A good file then announces the change and READY again; a
    second refusal, then the file put back byte for byte, is READY again too."""
    from cfgcore.dynamic_config import DynamicConfigurationManager
    from cfgcore.engine import engine_class

    path = Path(tmp_path) / "flags.json"
    path.write_text(json.dumps(_flags()))

    def boom(details):
        raise RuntimeError("handler failure")

    async def scenario():
        manager = DynamicConfigurationManager(flags_file=path, engine=engine_class(impl)())
        provider = CfgcoreProvider(manager.engine)
        client = _register(provider)
        events = _record(client)
        for ev in (ProviderEvent.PROVIDER_CONFIGURATION_CHANGED, ProviderEvent.PROVIDER_STALE):
            client.add_handler(ev, boom)
            api.add_handler(ev, boom)
        await manager.start_file_watching(debounce_ms=20, poll_interval=0.2)
        kinds = lambda: [e for e, _ in events]  # noqa: E731
        try:
            assert client.get_provider_status() == ProviderStatus.READY
            atomic_write(str(path), json.dumps(_flags(a="off")).encode())
            assert await wait_for_async(
                lambda: ProviderEvent.PROVIDER_CONFIGURATION_CHANGED in kinds()
            )
            changed = [d for e, d in events if e == ProviderEvent.PROVIDER_CONFIGURATION_CHANGED]
            assert changed[0].flags_changed == ["a"]
            assert client.get_boolean_value("a", True) is False

            atomic_write(str(path), b'{"flags": {"a": {"default": "nope"}}}')
            assert await wait_for_async(lambda: ProviderEvent.PROVIDER_STALE in kinds())
            assert client.get_provider_status() == ProviderStatus.STALE
            stale = next(d for e, d in events if e == ProviderEvent.PROVIDER_STALE)
            assert str(path) in stale.message and "nope" in stale.message
            # The last good flags keep serving, without an error.
            d = client.get_boolean_details("a", True)
            assert (d.value, d.error_code) == (False, None)
            assert client.get_boolean_value("b", True) is False

            atomic_write(str(path), json.dumps(_flags(a="on")).encode())
            assert await wait_for_async(lambda: ProviderEvent.PROVIDER_READY in kinds()[1:])
            assert client.get_provider_status() == ProviderStatus.READY
            assert client.get_boolean_value("a", False) is True
            # (delivered on its own thread: it may follow READY)
            assert await wait_for_async(
                lambda: kinds().count(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED) == 2
            ), kinds()

            # Refused again, then the file put back as it was: the flag set clears the
            # refusal without a swap; the provider is READY again at the latest on the
            # next evaluation.
            events.clear()
            live_bytes = path.read_bytes()
            atomic_write(str(path), b"{not json")
            assert await wait_for_async(lambda: ProviderEvent.PROVIDER_STALE in kinds())
            atomic_write(str(path), live_bytes)
            # the flag set tells its subscribers the refusal ended (no swap): READY
            # without waiting for an evaluation to notice
            assert await wait_for_async(lambda: ProviderEvent.PROVIDER_READY in kinds())
            assert client.get_provider_status() == ProviderStatus.READY
            assert client.get_boolean_value("a", False) is True
            assert ProviderEvent.PROVIDER_CONFIGURATION_CHANGED not in kinds()
        finally:
            for ev in (ProviderEvent.PROVIDER_CONFIGURATION_CHANGED, ProviderEvent.PROVIDER_STALE):
                api.remove_handler(ev, boom)
            await manager.stop_file_watching()
            provider.shutdown()
            manager.close()

    asyncio.run(scenario())


def test_a_refusal_standing_at_registration_is_reported(tmp_path, impl):
    """A provider registered while the flag set stands on a refused document reports
    STALE (by its first evaluation at the latest), not READY."""
    from cfgcore.dynamic_config import DynamicConfigurationManager
    from cfgcore.engine import engine_class

    path = Path(tmp_path) / "flags.json"
    path.write_text(json.dumps(_flags()))
    manager = DynamicConfigurationManager(flags_file=path, engine=engine_class(impl)())
    try:
        path.write_text("{broken")
        assert manager.reload() is False
        assert manager._live.last_error is not None
        client = _register(CfgcoreProvider(manager.engine))
        events = _record(client)
        assert client.get_boolean_value("a", False) is True  # the last good flags
        assert wait_for(lambda: any(e == ProviderEvent.PROVIDER_STALE for e, _ in events))
        assert client.get_provider_status() == ProviderStatus.STALE
    finally:
        manager.close()


def test_a_change_through_the_manager_api_reaches_client_and_api_handlers(tmp_path, impl):
    from cfgcore.dynamic_config import DynamicConfigurationManager
    from cfgcore.engine import engine_class

    manager = DynamicConfigurationManager(state_dir=tmp_path, engine=engine_class(impl)())
    provider = CfgcoreProvider(manager.engine, name="cfgcore-audit-api")
    client = _register(provider)
    events = _record(client)
    global_events = []

    def on_api(details):
        if details.provider_name == "cfgcore-audit-api":
            global_events.append(details.flags_changed)

    api.add_handler(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED, on_api)
    try:
        manager.set_feature_flag("enhanced_anomaly_detection", False)
        assert wait_for(lambda: global_events == [["enhanced_anomaly_detection"]])
        assert wait_for(
            lambda: (
                [d.flags_changed for e, d in events if e.name.endswith("CHANGED")]
                == [["enhanced_anomaly_detection"]]
            )
        )
        assert client.get_provider_status() == ProviderStatus.READY
    finally:
        api.remove_handler(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED, on_api)
        provider.shutdown()
        manager.close()


def test_an_emit_callback_that_raises_does_not_undo_the_swap(make):
    engine = make(_flags())
    provider = CfgcoreProvider(engine)

    def raising(prov, event, details):
        raise RuntimeError("subscriber failure")

    provider.attach(raising)
    engine.swap(_flags(a="off"))  # the listener's failure is logged by the engine
    assert provider.resolve_boolean_details("a", True).value is False
    provider.detach()


def test_a_blocked_event_handler_does_not_hold_up_the_next_reload(tmp_path, impl):
    """An application handler that blocks does not stop the next flags file going live.
    The provider emits after the flag set's lock is released (run_after_delivery; on the
    notifier thread for the file watcher), for SDKs that run handlers in the emitting
    thread; the SDK installed here also hands them to its own thread pool, so this test
    pins the outcome whichever way the SDK dispatches."""
    import threading

    from cfgcore.dynamic_config import DynamicConfigurationManager
    from cfgcore.engine import engine_class

    path = Path(tmp_path) / "flags.json"
    path.write_text(json.dumps(_flags()))
    release, calls = threading.Event(), []

    def blocked(details):
        calls.append(details.flags_changed)
        release.wait(30)

    async def scenario():
        manager = DynamicConfigurationManager(flags_file=path, engine=engine_class(impl)())
        provider = CfgcoreProvider(manager.engine)
        client = _register(provider)
        client.add_handler(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED, blocked)
        await manager.start_file_watching(debounce_ms=20, poll_interval=0.2)
        try:
            atomic_write(str(path), json.dumps(_flags(a="off")).encode())
            assert await wait_for_async(lambda: calls == [["a"]])
            # the handler is stuck on the first change; the next file still goes live
            doc = _flags(a="off")
            doc["flags"]["b"]["default"] = "on"
            atomic_write(str(path), json.dumps(doc).encode())
            assert await wait_for_async(lambda: client.get_boolean_value("b", False) is True)
            release.set()
            assert await wait_for_async(lambda: calls == [["a"], ["b"]])
        finally:
            release.set()
            await manager.stop_file_watching()
            provider.shutdown()
            manager.close()

    asyncio.run(scenario())
