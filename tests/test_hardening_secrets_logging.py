"""Hardening: tracebacks and stacks logged by cfgcore loggers are masked (audit finding 3).

The masking log filter rewrote the message only: the traceback of ``log.exception`` (a
failing change listener, swap listener or hook) printed secrets in clear, and a cfgcore
logger made after the secrets were registered (``cfgcore.cli`` at ``-vv``) had no
filter at all.
"""

from __future__ import annotations

import io
import logging
import sys

from cfgcore.runtime import secrets
from tests.test_hardening_secrets_masking import TOKEN, _leaks, _Setup


def _listener_failure_log(setup: _Setup, configure) -> str:
    stream = io.StringIO()
    handler = configure(stream)
    m = setup.manager()

    def listener(*args, **kwargs):
        raise ConnectionError(f"cannot reach {m.get('billing.url')}")

    m.register_change_listener(listener)
    try:
        m.update_config("billing.timeout", 5)
    finally:
        logging.getLogger().removeHandler(handler)
        m.close()
    return stream.getvalue()


def _plain(stream):
    handler = logging.StreamHandler(stream)
    logging.getLogger().addHandler(handler)
    return handler


def _with_stack(stream):
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logging.getLogger().addHandler(handler)
    return handler


def test_a_listener_traceback_is_masked(tmp_path, apply_env):
    """The auditor's repro: a root handler (logging.basicConfig) prints the traceback."""
    setup = _Setup(str(tmp_path), TOKEN)
    apply_env(setup)
    text = _listener_failure_log(setup, _plain)
    assert "Traceback" in text
    assert "ConnectionError: cannot reach https://app:***redacted***@" in text
    assert not _leaks({"log": text}, TOKEN)


def test_exception_and_stack_info_of_any_cfgcore_logger_are_masked(tmp_path, apply_env):
    setup = _Setup(str(tmp_path), TOKEN)
    apply_env(setup)
    setup.manager().close()  # resolves (registers) the secret
    stream = io.StringIO()
    handler = _with_stack(stream)
    log = logging.getLogger("cfgcore.runtime.events")
    try:
        try:
            raise RuntimeError(f"token {TOKEN!r} refused\n{TOKEN}")
        except RuntimeError:
            log.exception("listener failed")
            log.error("with a stack", stack_info=True, exc_info=sys.exc_info())

        def deeper(secret_argument: str) -> None:
            log.warning("stack here", stack_info=True)

        # The stack shows source lines: this one holds the secret itself.
        deeper("hq7Zk2PqL9mW4xVb8RtY3nCs6JdF1gHe5KuQ0oIaXzEwLpMvNbTy")  # = TOKEN
    finally:
        logging.getLogger().removeHandler(handler)
    text = stream.getvalue()
    assert text.count("RuntimeError: token '***' refused") == 2
    assert "Stack (most recent call last)" in text
    assert not _leaks({"log": text}, TOKEN)


def test_a_traceback_without_secrets_keeps_its_exc_info(tmp_path, apply_env):
    """Masking changes nothing for a record with no secret in it: a handler that reads
    exc_info itself (Sentry, structured loggers) still gets the exception."""
    setup = _Setup(str(tmp_path), TOKEN)
    apply_env(setup)
    setup.manager().close()
    seen = []

    class Keep(logging.Handler):
        def emit(self, record):
            seen.append(record.exc_info)

    handler = Keep()
    log = logging.getLogger("cfgcore.runtime.events")
    log.addHandler(handler)
    try:
        try:
            raise ValueError("nothing secret")
        except ValueError:
            log.exception("plain failure")
    finally:
        log.removeHandler(handler)
    assert seen and seen[0] and seen[0][0] is ValueError


def test_a_cfgcore_logger_made_after_the_secret_masks_too():
    """``cfgcore.cli`` logs a failed command's traceback (-vv) on a logger it makes
    only then, after the configuration (and its secrets) loaded."""
    secrets.register_secret(TOKEN)
    stream = io.StringIO()
    handler = _with_stack(stream)
    try:
        late = logging.getLogger("cfgcore.hardening_secrets_made_late")
        try:
            raise OSError(f"cannot open https://app:{TOKEN}@db")
        except OSError:
            late.exception("details")
    finally:
        logging.getLogger().removeHandler(handler)
    text = stream.getvalue()
    assert "OSError: cannot open https://app:***redacted***@db" in text
    assert not _leaks({"log": text}, TOKEN)
