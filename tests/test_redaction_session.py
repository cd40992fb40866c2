"""A session id is a bearer credential: whoever has it is logged in as that user.

Debug mode's evaluation lines, change events and the audit log mask a context
attribute or a key named ``session`` (holding a value), ``session_id``, ``sessionId``,
``SESSION_ID``, ``sessid``, ``JSESSIONID``, ``PHPSESSID`` and an ``id`` under a
``session`` map, as they mask ``session_token`` and ``session_key``; names that count
or measure sessions (``session_count``, ``session_length_s``, ``max_session_ids``) and a
``session`` map's settings (``session: {timeout: 30}``) stay readable.

Every engine test runs on both evaluators (the ``make`` fixture)."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

import cfgcore
from cfgcore.runtime.redaction import REDACTED, is_secret_key, may_hold_secret, redact

SID = "s3ss-9f8e7d6c5b4a"

FLAGS = {
    "flags": {
        "by_session": {
            "default": "off",
            "rules": [{"when": {"attr": "session_id", "eq": "nobody"}, "serve": "on"}],
        },
        "by_bare_session": {
            "default": "off",
            "rules": [{"when": {"attr": "session", "eq": "nobody"}, "serve": "on"}],
        },
    }
}


@pytest.fixture
def debug_mode():
    cfgcore.enable_debug_mode()
    try:
        yield
    finally:
        cfgcore.disable_debug_mode()


def _lines(caplog) -> str:
    return "\n".join(r.getMessage() for r in caplog.records if r.name == "cfgcore.evaluation")


# Every spelling of a session id an application gives a context.
SECRET_NAMES = [
    "session",
    "session_id",
    "sessionId",
    "SessionID",
    "SESSION_ID",
    "session-id",
    "sessionid",
    "sess_id",
    "sessid",
    "JSESSIONID",
    "PHPSESSID",
    "user_session_id",
    "sessionId2",
]
# Names that count, measure or switch sessions: numbers a reader needs.
PLAIN_NAMES = [
    "session_count",
    "sessionCount",
    "session_length_s",
    "session_duration_ms",
    "session_timeout",
    "session_ttl",
    "session_started_at",
    "sessions",
    "session_id_length",
    "max_session_ids",
    "num_sessions",
    "session_index",
    "is_session_id_valid",
]


@pytest.mark.parametrize("read", [True, False], ids=["read-by-the-flag", "other-attribute"])
@pytest.mark.parametrize("name", SECRET_NAMES)
def test_a_session_id_is_masked_in_debug_lines(make, debug_mode, caplog, name, read):
    engine = make(FLAGS)
    caplog.set_level(logging.DEBUG, logger="cfgcore")
    flag = ("by_bare_session" if name == "session" else "by_session") if read else "by_session"
    ctx = {"user_id": "u1", "session_id" if read and name != "session" else name: SID}
    if read and name not in ("session", "session_id"):
        ctx[name] = SID
    engine.is_enabled(flag, ctx)
    text = _lines(caplog)
    assert f"is_enabled {flag}" in text
    assert SID not in text
    assert REDACTED in text


@pytest.mark.parametrize("name", PLAIN_NAMES)
def test_names_that_count_or_measure_sessions_stay_readable(make, debug_mode, caplog, name):
    engine = make(FLAGS)
    caplog.set_level(logging.DEBUG, logger="cfgcore")
    engine.is_enabled("by_session", {"user_id": "u1", name: 1234.5})
    text = _lines(caplog)
    assert f"'{name}': 1234.5" in text
    assert REDACTED not in text


def test_a_session_map_masks_its_id_not_its_settings(make, debug_mode, caplog):
    engine = make(FLAGS)
    caplog.set_level(logging.DEBUG, logger="cfgcore")
    session = {"id": SID, "timeout": 30, "started": "2026-01-01", "count": 3}
    engine.is_enabled("by_bare_session", {"user_id": "u1", "session": session})
    text = _lines(caplog)
    assert SID not in text
    assert "'timeout': 30" in text and "'2026-01-01'" in text and "'count': 3" in text


# --------------------------------------------------------------------------- the rule


_SEPARATORS = st.sampled_from(["_", "-", "", "."])


def _spell(words: list[str], style: str, sep: str) -> str:
    if style == "camel":
        return words[0] + "".join(w.capitalize() for w in words[1:])
    if style == "pascal":
        return "".join(w.capitalize() for w in words)
    if style == "upper":
        return sep.join(words).upper()
    return sep.join(words)


_STYLES = st.sampled_from(["snake", "camel", "pascal", "upper"])


@given(
    prefix=st.lists(st.sampled_from(["user", "current", "web", "x", "app", "http"]), max_size=2),
    stem=st.sampled_from([["session", "id"], ["sess", "id"], ["sessionid"], ["sessid"]]),
    style=_STYLES,
    sep=st.sampled_from(["_", "-"]),
    value=st.one_of(st.text(min_size=1), st.integers(), st.floats(allow_nan=False)),
)
def test_every_spelling_of_a_session_id_is_a_secret_name(prefix, stem, style, sep, value):
    name = _spell([*prefix, *stem], style, sep)
    assert is_secret_key(name), name
    # as session_token and session_key are: masked as a value wherever it is shown
    assert redact(name, value) == REDACTED
    assert is_secret_key(_spell([*prefix, "session", "token"], style, sep))


MEASURES = [
    "count", "length", "s", "duration", "ms", "timeout", "ttl", "started", "at",
    "index", "seconds", "minutes", "limit", "size", "age", "length_s",
]  # fmt: skip


@given(
    head=st.lists(st.sampled_from(["user", "web", "active", "session"]), max_size=2),
    measure=st.lists(
        st.sampled_from(MEASURES),
        min_size=1,
        max_size=2,
    ),
    style=_STYLES,
    sep=_SEPARATORS,
    value=st.one_of(st.integers(), st.floats(allow_nan=False, allow_infinity=False)),
)
def test_a_measure_of_sessions_is_no_secret(head, measure, style, sep, value):
    words = [*head, "session", *measure]
    name = _spell(words, style, sep if sep != "." else "_")
    assert not is_secret_key(name), name
    assert not may_hold_secret(name), name
    assert redact(name, value) == value


@given(
    about=st.sampled_from(["max", "min", "num", "count", "total", "is", "has", "use", "require"]),
    stem=st.sampled_from([["session", "id"], ["session", "ids"], ["sessionid"], ["session"]]),
    style=_STYLES,
    value=st.integers(),
)
def test_about_words_make_a_session_name_a_setting(about, stem, style, value):
    """``max_session_ids``, ``is_session_id``, ``num_sessions``: about sessions, as
    ``max_tokens`` is about tokens (the existing rule for every secret name)."""
    name = _spell([about, *stem], style, "_")
    assert not is_secret_key(name), name
    assert redact(name, value) == value


@pytest.mark.parametrize(
    "path, masked",
    [
        ("session", True),  # a value: the session id
        ("web.session", True),
        ("session.id", True),  # the id of a session map
        ("session.ID", True),
        ("session.timeout", False),  # a session map's settings
        ("session.cookie_name", False),
        ("session.count", False),
        ("sessions", False),  # a count, or a list of settings
        ("user.id", False),  # an id under anything else is not a credential
        ("session_count", False),
    ],
)
def test_change_events_and_the_audit_log_judge_paths_alike(path, masked):
    assert (redact(path, "abc-123-def") == REDACTED) is masked
    assert (redact(path, 42) == REDACTED) is masked


def test_a_session_section_of_settings_is_no_secret_for_validation():
    """A bare ``session`` holding a map is a settings section (as ``jwt`` and ``cookie``
    are): production's plain-text secret rule leaves it alone."""
    assert not is_secret_key("session")
    assert redact("session", {"timeout": 30, "secure": True}) == {"timeout": 30, "secure": True}
