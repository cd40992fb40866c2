"""A flags file that appears in a configuration directory that had none.

A manager on such a directory hands out an empty placeholder engine (``manager.flags``).
The flags file a deploy adds later used to be served by a *different* engine, so what
took the placeholder at start (an OpenFeature provider, code holding the engine, swap
listeners) answered from the empty snapshot forever, with health all green; a flags file
that did not compile made every hot reload poll raise. Now the file's live set adopts the
placeholder, a bad file is refused like any input, and a placeholder that cannot be
adopted (another manager's set serves the file) is reported. Real files, real watchers,
the real openfeature-sdk registry."""

from __future__ import annotations

import functools
import itertools
import logging

import pytest

from cfgcore.runtime.atomicio import atomic_write_text
from cfgcore.runtime.audit import AuditLog
from tests.conftest import minimal_config_dir
from tests.waiting import wait_for

FLAGS = """\
version: 1
flags:
  beta:
    rules:
      - serve: on
    default: off
"""
USER = {"user_id": "u1"}
_domains = itertools.count()


@pytest.fixture
def config_dir(tmp_path, monkeypatch):
    return minimal_config_dir(tmp_path, monkeypatch)  # no flags file: it comes later


@pytest.fixture
def managers(config_dir, config_manager_factory):
    return functools.partial(config_manager_factory, config_dir, hot=True)


def test_a_flags_file_that_appears_goes_live_in_the_engine_handed_out(
    managers, config_dir, tmp_path
):
    m = managers()
    engine = m.flags
    assert m.engine is engine
    ctx = engine.context(USER)  # bound once, as a hot path does
    assert engine.is_enabled("beta", ctx) is False
    swaps = []
    engine.add_swap_listener(lambda old, new: swaps.append(new))
    events = []
    m.register_change_listener(events.append)

    atomic_write_text(config_dir / "flags.yaml", FLAGS)

    assert wait_for(lambda: engine.is_enabled("beta", ctx) is True)
    assert m.flags is engine
    assert len(swaps) == 1
    assert wait_for(lambda: [e.kind for e in events] == ["flags"])
    assert events[0].config_path == str(config_dir / "flags.yaml")
    assert events[0].source == "reload"
    assert m.debug_info()["flags_file"] == str(config_dir / "flags.yaml")
    audited = [e for e in AuditLog.read(tmp_path / "audit0.jsonl") if e.get("kind") == "flags"]
    assert len(audited) == 1
    # The engine now serves the store: changed through the file, as any manager's.
    with pytest.raises(PermissionError):
        engine.swap({"version": 1, "flags": {}})
    assert m.flag_store_url() == str(config_dir / "flags.yaml")


def test_without_hot_reload_the_next_reload_serves_it_in_the_same_engine(managers, config_dir):
    m = managers(hot=False)
    engine = m.flags
    (config_dir / "flags.yaml").write_text(FLAGS)
    # As an edited configuration file: taken by the next activation, not by a read.
    assert m.flags is engine
    assert engine.is_enabled("beta", USER) is False
    assert m.flags_path() is None
    assert m.reload() is True
    assert m.flags is engine
    assert engine.is_enabled("beta", USER) is True
    assert m.flags_path() == str(config_dir / "flags.yaml")


def test_a_late_flags_file_that_does_not_compile_is_refused_then_the_fix_goes_live(
    managers, config_dir, caplog
):
    caplog.set_level(logging.ERROR, logger="cfgcore")
    m = managers()
    engine = m.flags
    errors = []
    m.register_change_listener(lambda e: errors.append(e) if e.is_error else None)
    bad = FLAGS.replace("serve: on", "serve: maybe")

    atomic_write_text(config_dir / "flags.yaml", bad)

    assert wait_for(lambda: m.last_error is not None)
    assert "unknown variant 'maybe'" in str(m.last_error)
    assert str(config_dir / "flags.yaml") in str(m.last_error)
    assert wait_for(lambda: errors)
    assert m.flags is engine  # (it raised the refusal before)
    assert engine.is_enabled("beta", USER) is False
    warned = [c for c in m.health().readiness if c.name == "last_reload"]
    assert warned and warned[0].status == "warn" and "maybe" in warned[0].detail
    # Reported as a refused reload, not as a hot reload poll or callback that failed
    # (which raised on every poll, every half second).
    assert not [r for r in caplog.records if r.name == "cfgcore.hotreload"]
    assert engine._served_by.endswith("(no flags file)")

    atomic_write_text(config_dir / "flags.yaml", FLAGS)

    assert wait_for(lambda: engine.is_enabled("beta", USER) is True)
    assert wait_for(lambda: m.last_error is None)
    assert m.flags is engine


def test_a_placeholder_another_managers_set_took_the_place_of_is_reported(
    managers, config_dir, caplog
):
    caplog.set_level(logging.WARNING, logger="cfgcore.flags")
    first = managers()
    second = managers(hot=False)
    adopted, left = first.flags, second.flags
    assert adopted is not left

    atomic_write_text(config_dir / "flags.yaml", FLAGS)
    assert wait_for(lambda: adopted.is_enabled("beta", USER) is True)
    assert not [c for c in second.health().readiness if c.name == "flags_engine"]
    events = []
    second.register_change_listener(events.append)
    assert second.reload() is True
    assert [e.kind for e in events] == ["flags"]  # (what manager.flags serves changed)

    # One live set per store: the second manager serves the first one's engine now.
    assert second.flags is adopted
    assert left.is_enabled("beta", USER) is False
    checks = [c for c in second.health().readiness if c.name == "flags_engine"]
    assert len(checks) == 1 and checks[0].status == "warn"
    assert "take manager.flags again, or restart" in checks[0].detail
    assert second.health().ready  # (the flags served through manager.flags are right)
    assert [c for c in first.health().readiness if c.name == "flags_engine"] == []
    warnings = [r for r in caplog.records if "serves no flags" in r.getMessage()]
    assert len(warnings) == 1 and str(config_dir / "flags.yaml") in warnings[0].getMessage()


# --------------------------------------------------------------------------- OpenFeature


def _register(provider):
    api = pytest.importorskip("openfeature.api", reason="openfeature-sdk is not installed")
    from openfeature.event import ProviderEvent

    domain = f"cfgcore-late-flags-{next(_domains)}"
    api.set_provider_and_wait(provider, domain=domain)
    client = api.get_client(domain)
    events = []
    for ev in ProviderEvent:
        client.add_handler(ev, lambda d, ev=ev: events.append((ev, d)))
    assert wait_for(lambda: events)  # the handler for the current state runs at once
    events.clear()
    return domain, client, events


def _unregister(domain):
    from openfeature import api
    from openfeature.provider.in_memory_provider import InMemoryProvider

    api.set_provider(InMemoryProvider({}), domain=domain)


def test_a_provider_registered_on_the_placeholder_serves_the_late_flags(managers, config_dir):
    pytest.importorskip("openfeature.api", reason="openfeature-sdk is not installed")
    from openfeature.evaluation_context import EvaluationContext
    from openfeature.event import ProviderEvent
    from openfeature.provider import ProviderStatus

    from cfgcore.openfeature import CfgcoreProvider

    m = managers()
    provider = CfgcoreProvider(m.flags)
    domain, client, events = _register(provider)
    try:
        who = EvaluationContext("u1", {})
        assert client.get_boolean_details("beta", False, who).error_code is not None

        atomic_write_text(config_dir / "flags.yaml", FLAGS)

        assert wait_for(lambda: client.get_boolean_value("beta", False, who) is True)
        details = client.get_boolean_details("beta", False, who)
        assert details.error_code is None and details.variant == "on"

        def changed():
            return [d for e, d in events if e is ProviderEvent.PROVIDER_CONFIGURATION_CHANGED]

        assert wait_for(changed)
        assert changed()[0].flags_changed == ["beta"]
        assert client.get_provider_status() is ProviderStatus.READY
        # The next edit of the file reaches it the same way.
        atomic_write_text(config_dir / "flags.yaml", FLAGS.replace("serve: on", "serve: off"))
        assert wait_for(lambda: client.get_boolean_value("beta", True, who) is False)
        assert wait_for(lambda: len(changed()) == 2)
    finally:
        _unregister(domain)


def test_a_provider_on_a_superseded_placeholder_is_error(managers, config_dir):
    pytest.importorskip("openfeature.api", reason="openfeature-sdk is not installed")
    from openfeature.event import ProviderEvent
    from openfeature.provider import ProviderStatus

    from cfgcore.openfeature import CfgcoreProvider

    first = managers()
    second = managers(hot=False)
    provider = CfgcoreProvider(second.flags)
    domain, client, events = _register(provider)
    try:
        atomic_write_text(config_dir / "flags.yaml", FLAGS)
        assert wait_for(lambda: first.flags.is_enabled("beta", USER) is True)
        assert client.get_provider_status() is ProviderStatus.READY
        second.reload()

        assert wait_for(lambda: client.get_provider_status() is ProviderStatus.ERROR)
        assert wait_for(lambda: [e for e, _ in events if e is ProviderEvent.PROVIDER_ERROR])
        errors = [d for e, d in events if e is ProviderEvent.PROVIDER_ERROR]
        assert len(errors) == 1
        assert errors[0].metadata["error_because"] == "superseded"
        assert "take manager.flags again, or restart" in errors[0].message
        # It keeps answering from its (empty) snapshot, as a closed one does.
        assert client.get_boolean_details("beta", False).value is False
    finally:
        _unregister(domain)


def test_a_late_flags_file_that_appears_empty_waits_and_once_adopted_its_removal_is_stale(
    managers, config_dir
):
    """A directory without flags is untouched by the refusal of a flags file emptied or
    gone (it has no live set to mark): an empty file that appears is refused and the
    placeholder keeps serving no flags; the file written then is adopted as before.
    Once adopted, the file deleted is refused like any served flags file: the provider
    on the placeholder goes STALE, the adopted flags keep serving, and the file put
    back ends it."""
    pytest.importorskip("openfeature.api", reason="openfeature-sdk is not installed")
    from openfeature.provider import ProviderStatus

    from cfgcore.openfeature import CfgcoreProvider

    m = managers()
    engine = m.flags
    domain, client, _events = _register(CfgcoreProvider(engine))
    try:
        (config_dir / "flags.yaml").write_text("")

        assert wait_for(lambda: m.last_error is not None)
        assert "empty flag file" in str(m.last_error)
        assert m._flags._live is None and m.flags is engine
        assert engine._served_by.endswith("(no flags file)")
        assert client.get_provider_status() is ProviderStatus.READY

        atomic_write_text(config_dir / "flags.yaml", FLAGS)

        assert wait_for(lambda: engine.is_enabled("beta", USER) is True)
        assert wait_for(lambda: m.last_error is None)
        live = m._flags._live
        assert live is not None and live.engine is engine and live.last_error is None

        (config_dir / "flags.yaml").unlink()

        assert wait_for(lambda: client.get_provider_status() is ProviderStatus.STALE)
        assert "flags file disappeared" in str(live.last_error)
        assert engine.is_enabled("beta", USER) is True

        atomic_write_text(config_dir / "flags.yaml", FLAGS)

        assert wait_for(lambda: client.get_provider_status() is ProviderStatus.READY)
        assert live.last_error is None and m.last_error is None
    finally:
        _unregister(domain)
