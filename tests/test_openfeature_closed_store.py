"""OpenFeature provider lifecycle when what it serves from is closed underneath it.

A provider on a manager's engine follows that manager's flag set. Once the last
manager holding the set closes it, nothing keeps the engine current (no watcher, no
Redis follower, no change API), so the provider must stop saying READY (or STALE,
"being caught up"): it emits ``PROVIDER_ERROR`` (non-fatal, ``GENERAL``) and keeps
answering from the last snapshot; a manager opened on the same engine makes it READY
again. Real files, real managers, a real redis-server, the real openfeature-sdk
registry, client and handlers."""

from __future__ import annotations

import itertools
import json
import logging
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.fuzz import examples

api = pytest.importorskip("openfeature.api", reason="openfeature-sdk is not installed")

from openfeature.event import ProviderEvent  # noqa: E402
from openfeature.exception import ErrorCode  # noqa: E402
from openfeature.provider import ProviderStatus  # noqa: E402
from openfeature.provider.in_memory_provider import InMemoryProvider  # noqa: E402

from cfgcore.openfeature import CfgcoreProvider  # noqa: E402
from tests.waiting import wait_for  # noqa: E402

_domains = itertools.count()


@pytest.fixture(autouse=True)
def _quiet():
    names = ("cfgcore.flags", "cfgcore.fleet", "openfeature")
    for name in names:
        logging.getLogger(name).setLevel(logging.CRITICAL)
    yield
    for name in names:
        logging.getLogger(name).setLevel(logging.NOTSET)


def _doc(a=True):
    return {"flags": {"a": {"default": "on" if a else "off"}, "b": {"default": "off"}}}


def _write(path, a=True):
    Path(path).write_text(json.dumps(_doc(a)))


def _manager(path, engine, state):
    from cfgcore.dynamic_config import DynamicConfigurationManager

    return DynamicConfigurationManager(flags_file=path, engine=engine, state_dir=state)


def _register(provider):
    domain = f"cfgcore-closed-store-{next(_domains)}"
    api.set_provider_and_wait(provider, domain=domain)
    client = api.get_client(domain)
    events = []
    for ev in ProviderEvent:
        client.add_handler(ev, lambda d, ev=ev: events.append((ev, d)))
    # A handler added for the state the provider is in runs at once: not news.
    assert wait_for(lambda: events)
    events.clear()
    return domain, client, events


def _kinds(events):
    return [e for e, _ in events]


def _unregister(domain):
    api.set_provider(InMemoryProvider({}), domain=domain)


def test_closing_the_manager_under_a_registered_provider_is_a_provider_error(tmp_path, impl):
    """The gap: after ``manager.close()`` on a plain flags file the provider kept
    saying READY while nothing would ever change what it serves. It is ERROR now
    (not FATAL: the SDK keeps asking it), says why, and keeps answering from the
    last snapshot without an error (answers do not flip to the callers' defaults)."""
    from cfgcore.engine import engine_class

    path = tmp_path / "flags.json"
    _write(path)
    manager = _manager(path, engine_class(impl)(), tmp_path / "s")
    provider = CfgcoreProvider(manager.engine)
    domain, client, events = _register(provider)
    try:
        assert client.get_provider_status() == ProviderStatus.READY
        manager.close()
        assert wait_for(lambda: ProviderEvent.PROVIDER_ERROR in _kinds(events))
        assert client.get_provider_status() == ProviderStatus.ERROR
        error = next(d for e, d in events if e == ProviderEvent.PROVIDER_ERROR)
        assert error.error_code == ErrorCode.GENERAL
        assert str(path) in error.message and "closed" in error.message
        assert error.metadata["error_because"] == "closed"
        assert error.metadata["snapshot_version"] == manager.engine.version
        d = client.get_boolean_details("a", False)
        assert (d.value, d.error_code, d.reason) == (True, None, "STATIC")
        assert client.get_boolean_value("b", True) is False
        # Evaluating again announces nothing more; the status stays ERROR.
        assert client.get_provider_status() == ProviderStatus.ERROR
        assert _kinds(events).count(ProviderEvent.PROVIDER_ERROR) == 1
    finally:
        _unregister(domain)


def test_closing_one_of_two_managers_sharing_the_flag_set_keeps_it_ready(
    bundled_config, tmp_path, monkeypatch, impl
):
    """A configuration manager and a dynamic-config manager hold one flag set:
    closing one leaves the other following the store, so the provider stays READY
    and hears its changes; closing the last one is the ERROR."""
    from cfgcore.config.manager import ConfigurationManager
    from cfgcore.engine import engine_class

    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    path = tmp_path / "flags.json"
    _write(path)
    dynamic = _manager(path, engine_class(impl)(), tmp_path / "s")
    config = ConfigurationManager(config_dir=bundled_config, flags_file=path)
    assert config.flags is dynamic.engine
    provider = CfgcoreProvider(dynamic.engine)
    domain, client, events = _register(provider)
    try:
        dynamic.close()
        # (Announcements of a close are made by close() itself, and the SDK updates
        # the status as it is told: no wait needed to see that none was made.)
        assert client.get_provider_status() == ProviderStatus.READY
        _write(path, a=False)
        assert config.reload() is True
        assert wait_for(lambda: ProviderEvent.PROVIDER_CONFIGURATION_CHANGED in _kinds(events))
        assert client.get_boolean_value("a", True) is False
        assert client.get_provider_status() == ProviderStatus.READY
        config.close()
        assert wait_for(lambda: client.get_provider_status() == ProviderStatus.ERROR)
        assert client.get_boolean_value("a", True) is False  # the last snapshot
    finally:
        _unregister(domain)


def test_a_manager_opened_again_on_the_engine_makes_it_ready(tmp_path, impl):
    """ERROR is not fatal: a manager opened on the provider's engine takes over, the
    provider follows it (READY, changes announced) and a later close is ERROR again."""
    from cfgcore.engine import engine_class

    path = tmp_path / "flags.json"
    _write(path)
    engine = engine_class(impl)()
    first = _manager(path, engine, tmp_path / "s")
    provider = CfgcoreProvider(engine)
    domain, client, events = _register(provider)
    second = None
    try:
        first.close()
        assert wait_for(lambda: client.get_provider_status() == ProviderStatus.ERROR)
        _write(path, a=False)  # changed while nothing follows it
        assert client.get_boolean_value("a", False) is True
        second = _manager(path, engine, tmp_path / "s")
        assert client.get_boolean_value("a", True) is False  # the new set's load
        assert wait_for(lambda: client.get_provider_status() == ProviderStatus.READY)
        assert wait_for(lambda: ProviderEvent.PROVIDER_READY in _kinds(events))
        events.clear()
        second.set_feature_flag("b", True)
        assert wait_for(lambda: ProviderEvent.PROVIDER_CONFIGURATION_CHANGED in _kinds(events))
        changed = next(d for e, d in events if e == ProviderEvent.PROVIDER_CONFIGURATION_CHANGED)
        assert changed.flags_changed == ["b"]
        second.close()
        second = None
        assert wait_for(lambda: client.get_provider_status() == ProviderStatus.ERROR)
        assert wait_for(lambda: ProviderEvent.PROVIDER_ERROR in _kinds(events))
        assert client.get_boolean_value("b", False) is True
    finally:
        _unregister(domain)
        if second is not None:
            second.close()


def test_a_provider_registered_on_a_closed_managers_engine_is_error(tmp_path, impl):
    """Registered after the manager serving its engine was closed: the SDK makes it
    READY, and its first evaluation announces ERROR (the engine is frozen for good
    until a manager is opened on it). Its answers are the last snapshot's."""
    from cfgcore.engine import engine_class

    path = tmp_path / "flags.json"
    _write(path)
    manager = _manager(path, engine_class(impl)(), tmp_path / "s")
    manager.close()
    provider = CfgcoreProvider(manager.engine)
    # Handlers first: the status monitor may announce the ERROR (within a second of
    # registering) before the first evaluation does, and _register's clear() would
    # drop it. Either way it is announced once.
    domain = f"cfgcore-closed-store-{next(_domains)}"
    client = api.get_client(domain)
    events = []
    for ev in ProviderEvent:
        client.add_handler(ev, lambda d, ev=ev: events.append((ev, d)))
    events.clear()  # the immediate run for the domain's previous provider's state
    api.set_provider_and_wait(provider, domain=domain)
    try:
        d = client.get_boolean_details("a", False)
        assert (d.value, d.error_code) == (True, None)
        assert client.get_provider_status() == ProviderStatus.ERROR
        assert wait_for(lambda: ProviderEvent.PROVIDER_ERROR in _kinds(events))
        error = next(d for e, d in events if e == ProviderEvent.PROVIDER_ERROR)
        assert str(path) in error.message
        provider._announce_status()  # the monitor's next check: nothing new
        assert client.get_boolean_value("a", False) is True
        assert _kinds(events).count(ProviderEvent.PROVIDER_ERROR) == 1
    finally:
        _unregister(domain)


def test_a_shut_down_provider_announces_nothing_and_registers_again(tmp_path, impl):
    """A provider shut down (unregistered) before its manager closes announces
    nothing to its old registration. Registered again on the now closed engine it is
    ERROR; a manager opened on the engine makes that registration READY."""
    from cfgcore.engine import engine_class

    path = tmp_path / "flags.json"
    _write(path)
    engine = engine_class(impl)()
    manager = _manager(path, engine, tmp_path / "s")
    provider = CfgcoreProvider(engine)
    told = []
    provider.attach(lambda prov, event, details: told.append(event))
    provider.shutdown()
    provider.detach()
    manager.close()
    assert told == []

    domain, client, events = _register(provider)
    second = None
    try:
        client.get_boolean_value("a", False)
        assert wait_for(lambda: client.get_provider_status() == ProviderStatus.ERROR)
        second = _manager(path, engine, tmp_path / "s")
        client.get_boolean_value("a", False)
        assert wait_for(lambda: client.get_provider_status() == ProviderStatus.READY)
    finally:
        _unregister(domain)
        if second is not None:
            second.close()


def test_closing_a_fleet_manager_is_a_provider_error(redis_server, tmp_path, impl):
    """Redis store: the follower stops with the last manager's close(), which the
    provider reported as STALE (as if a reconnect would catch it up); it is ERROR,
    naming the store, and the last flags keep answering."""
    from cfgcore.dynamic_config import DynamicConfigurationManager
    from cfgcore.engine import engine_class
    from cfgcore.runtime.redis_store import RedisFlagStore
    from cfgcore.snapshot import Flag

    url = redis_server.url + f"?namespace=closed&poll=0.1&cache={tmp_path / 'c.msgpack'}"
    manager = DynamicConfigurationManager(
        store=url, state_dir=tmp_path / "s", engine=engine_class(impl)()
    )
    manager.set_feature_flag("a", True)
    provider = CfgcoreProvider(manager.engine)
    domain, client, events = _register(provider)
    try:
        manager.close()
        assert wait_for(lambda: ProviderEvent.PROVIDER_ERROR in _kinds(events))
        assert client.get_provider_status() == ProviderStatus.ERROR
        assert ProviderEvent.PROVIDER_STALE not in _kinds(events)
        error = next(d for e, d in events if e == ProviderEvent.PROVIDER_ERROR)
        assert "closed" in error.message and f"{redis_server.port}" in error.message
        with RedisFlagStore(url.split("&cache=")[0] + "&cache=off") as writer:
            import msgspec

            writer.update(
                lambda s: msgspec.structs.replace(s, flags={**s.flags, "a": Flag(default="off")})
            )
        assert client.get_boolean_value("a", False) is True  # nothing follows it
        assert client.get_provider_status() == ProviderStatus.ERROR
    finally:
        _unregister(domain)


# -- every order of opening, refusing, closing and registering --------------------------

_OPS = st.lists(
    st.sampled_from(["open", "close", "good", "other", "bad", "register", "unregister"]),
    max_size=10,
)


@settings(
    max_examples=examples(20),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(ops=_OPS)
@example(ops=["open", "register", "close", "open", "bad", "close", "unregister", "register"])
@example(ops=["open", "close", "register", "open", "bad", "good", "close", "open"])
def test_the_status_follows_what_serves_the_engine(engine_classes, ops):
    """Any sequence of managers opened and closed on one engine, good and refused
    flag files, and registrations: once the provider has evaluated, its status is
    READY while an open flag set serves the engine and stands on no refusal, STALE
    while it stands on one, ERROR once the engine's last set was closed (READY on an
    engine no set ever served); the answer is always the one served, without error."""
    for cls in engine_classes:
        with tempfile.TemporaryDirectory() as tmp:
            _run_ops(cls, Path(tmp), ops)


def _run_ops(cls, tmp, ops):
    path = tmp / "flags.json"
    _write(path)
    engine = cls.from_snapshot(_doc(a=False))
    provider = CfgcoreProvider(engine)
    managers: list = []
    model = {"served": False, "file": True, "refused": False, "closed": False}
    domain = client = None
    try:
        for op in ops:
            if op == "open":
                if not managers and model["file"] is None:
                    continue  # a broken file with no set to keep serving: no manager
                managers.append(_manager(path, engine, tmp / "s"))
                if model["file"] is None:  # joins the open set, which refuses the file
                    model["refused"] = True
                else:  # a new set loads the file, or the open one takes it
                    model["served"], model["refused"] = model["file"], False
                model["closed"] = False
            elif op == "close" and managers:
                managers.pop(0).close()
                model["closed"] = not managers
            elif op in ("good", "other", "bad"):
                if op == "bad":
                    path.write_text("{broken")
                    model["file"] = None
                else:
                    model["file"] = op == "good"
                    _write(path, a=model["file"])
                if managers:
                    managers[0].reload()
                    if model["file"] is None:
                        model["refused"] = True
                    else:
                        model["served"], model["refused"] = model["file"], False
            elif op == "register" and domain is None:
                domain, client = f"cfgcore-closed-model-{next(_domains)}", None
                api.set_provider_and_wait(provider, domain=domain)
                client = api.get_client(domain)
            elif op == "unregister" and domain is not None:
                _unregister(domain)
                domain = client = None
            if client is not None:
                d = client.get_boolean_details("a", None)
                assert (d.value, d.error_code) == (model["served"], None), (op, model)
                want = (
                    ProviderStatus.ERROR
                    if model["closed"]
                    else ProviderStatus.STALE
                    if managers and model["refused"]
                    else ProviderStatus.READY
                )
                status = client.get_provider_status
                assert wait_for(lambda s=status, w=want: s() == w), (ops, op, model, status())
    finally:
        if domain is not None:
            _unregister(domain)
        for manager in managers:
            manager.close()


@pytest.fixture(scope="module")
def engine_classes(make_py_and_c):
    return [factory.__self__ for factory in make_py_and_c]
