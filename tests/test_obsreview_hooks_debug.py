"""Hooks and debug lines on the request path, with a broken hook and a hostile caller: a
hook that raises on every evaluation logs its traceback once a minute, not once per
call (each call cost ~180 us and ~450 bytes of log); a flag key holding a newline cannot
forge a log line, and a huge one does not make a debug line huge."""

from __future__ import annotations

import logging

import pytest

from cfgcore.observability import hooks as hooks_module
from cfgcore.observability.hooks import Hook

FLAGS = {"flags": {"plain": {"variants": {"on": True, "off": False}, "default": "on"}}}


def _records(caplog, name: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == name]


class _AlwaysBroken(Hook):
    def after(self, hook_context, details, hints):
        raise RuntimeError("sink down")


def test_a_hook_failing_on_every_call_is_logged_once_and_counted(make, caplog, monkeypatch):
    engine = make(FLAGS)
    engine.add_hook(_AlwaysBroken())
    with caplog.at_level(logging.ERROR, logger="cfgcore.hooks"):
        for _ in range(500):
            assert engine.is_enabled("plain", {"user_id": "u"}) is False  # the default
    assert engine.hook_errors == 500
    logged = _records(caplog, "cfgcore.hooks")
    assert len(logged) == 1
    assert "sink down" in caplog.text and "hook_errors counts them all" in logged[0].getMessage()
    # The next line, once the interval has passed, says how many went unlogged.
    monkeypatch.setattr(hooks_module, "HOOK_LOG_INTERVAL", 0.0)
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="cfgcore.hooks"):
        assert engine.is_enabled("plain", {"user_id": "u"}) is False
    (line,) = _records(caplog, "cfgcore.hooks")
    assert "499 more failures of this hook and stage" in line.getMessage()


def test_two_broken_hooks_are_each_logged(make, caplog):
    engine = make(FLAGS)

    class BrokenBefore(Hook):
        def before(self, hook_context, hints):
            raise ValueError("bad before")

    class BrokenError(Hook):
        def error(self, hook_context, exception, hints):
            raise KeyError("bad error stage")

    engine.add_hook(BrokenError())
    engine.add_hook(BrokenBefore())
    with caplog.at_level(logging.ERROR, logger="cfgcore.hooks"):
        for _ in range(50):
            assert engine.variant("plain") is None
    assert engine.hook_errors == 100  # before and error each time
    text = caplog.text
    assert "bad before" in text and "bad error stage" in text
    assert len(_records(caplog, "cfgcore.hooks")) == 2


@pytest.fixture
def debug_mode():
    import cfgcore

    cfgcore.enable_debug_mode()
    yield
    cfgcore.disable_debug_mode()


@pytest.mark.parametrize(
    "key",
    [
        "nope\nCRITICAL cfgcore.security: admin login accepted",
        "nope\rWARNING forged",
        "nope\u2028forged",
        "nope\x1b[2Jforged",
    ],
)
def test_a_flag_key_cannot_forge_a_debug_line(make, caplog, debug_mode, key):
    engine = make(FLAGS)
    caplog.set_level(logging.DEBUG, logger="cfgcore")
    assert engine.is_enabled(key, {"user_id": "u"}) is False
    (record,) = _records(caplog, "cfgcore.evaluation")
    message = record.getMessage()
    assert message.isprintable(), message  # one line: the key shown as its repr
    assert repr(key) in message


def test_a_plain_flag_key_is_shown_as_it_is(make, caplog, debug_mode):
    engine = make(FLAGS)
    caplog.set_level(logging.DEBUG, logger="cfgcore")
    engine.is_enabled("plain", {"user_id": "u"})
    (record,) = _records(caplog, "cfgcore.evaluation")
    assert record.getMessage().startswith("is_enabled plain -> variant=on reason=")


def test_a_huge_flag_key_is_cut_in_the_debug_line(make, caplog, debug_mode):
    engine = make(FLAGS)
    caplog.set_level(logging.DEBUG, logger="cfgcore")
    key = "k" * 5_000_000
    assert engine.is_enabled(key) is False
    (record,) = _records(caplog, "cfgcore.evaluation")
    message = record.getMessage()
    assert len(message) < 10_000
    assert "more chars" in message
