"""Review of this round's redaction changes (secret names, redact_text on free text).

1. Masking by name narrowed when secret names got one definition: values under names
   such as ``private_key_pem``, ``secret_key_base`` (Rails' SECRET_KEY_BASE),
   ``encryption_key_b64``, ``api_key_v2``, ``secret_value`` or ``password_hash`` were
   masked before and were shown in clear after (``cfgcore show``, the audit log, debug
   logs), and such variables' values were no longer registered for masking. A secret's
   name followed by the form it is written in is masked again (validation still
   demands no reference for them).
2. redact_text cut a URL in text at characters a URL cannot hold unescaped (quotes,
   angle brackets, braces, "|", "\\") before looking for ``user:password@``, so a
   generated password holding one (``redis://app:ab<cd@cache``: clients read the
   password "ab<cd") was shown whole in log lines, health details and ConfigError
   texts, while redact() masked it in a value.
3. redact_text now runs on every cfgcore log record and health detail holding
   ``://``; the webhook-token test of a path segment was a regex with lookaheads that
   rescanned the rest of a letter run from each letter: a 200 kB segment after
   ``/hooks/`` took minutes (quadratic). It is linear now, with the same answers.
"""

from __future__ import annotations

import io
import json
import logging
import re
import subprocess
import sys
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.errors import ConfigError
from cfgcore.observability.health import Check
from cfgcore.runtime import redaction
from cfgcore.runtime import secrets as _secrets
from cfgcore.runtime.redaction import REDACTED, names_secret, redact, redact_text
from tests.fuzz import examples

SECRET = "Zq8-vT2mKp-9LrW4nXc"


@pytest.mark.parametrize(
    "path",
    [
        "github_app.private_key_pem",
        "rails.secret_key_base",
        "SECRET_KEY_BASE",
        "security.encryption_key_b64",
        "vendor.api_key_v2",
        "vault.secret_value",
        "cache.token_value",
        "db.password_hash",
        "proxy.authorization_header",
        "aws.secret_string",
        "signing.private_key_material",
        "app.secret_salt",
    ],
)
def test_secret_written_in_a_form_is_masked(path: str) -> None:
    # All of these were masked before secret names got one definition.
    assert redact(path, SECRET) == REDACTED
    assert SECRET not in str(redact(path.rsplit(".", 1)[0], {path.rsplit(".", 1)[-1]: SECRET}))


@pytest.mark.parametrize(
    "path",
    ["github_app.private_key_pem", "rails.secret_key_base", "vault.secret_value"],
)
def test_forms_are_masked_without_validation_demanding_a_reference(path: str) -> None:
    # The precaution is redaction's only: validation's plain-text rule is unchanged.
    assert not names_secret(path.rsplit(".", 1)[-1], path.split(".")[0])


@pytest.mark.parametrize(
    "path",
    [
        "db.password_policy",
        "auth.token_ttl",
        "auth.password_min_length",
        "rate_limit.token_bucket",
        "llm.max_tokens",
        "search.tokenizer",
        "db.password_file",
    ],
)
def test_names_about_a_secret_stay_shown(path: str) -> None:
    assert redact(path, "value-1") == "value-1"


def test_secret_key_base_variable_is_registered_for_masking() -> None:
    _secrets.forget_secrets()
    try:
        _secrets.note_variable("SECRET_KEY_BASE", SECRET, environ={})
        assert SECRET not in _secrets.mask_text(f"boot with {SECRET}")
    finally:
        _secrets.forget_secrets()


# ------------------------------------------------- URL passwords with URL-ending characters


@pytest.mark.parametrize(
    "password", ["ab<cd9", 'x"y7Kq', "q{1}zR", "a|b|c8", "p\\w0rd", "it's-9", "p@ss>w"]
)
def test_url_password_holding_a_stop_character_is_masked_in_text(password: str) -> None:
    url = f"redis://app:{password}@cache.internal:6379/0"
    assert redact("store.url", url) == f"redis://app:{REDACTED}@cache.internal:6379/0"
    text = redact_text(f"flag store {url}: connection refused")
    assert password not in text
    assert text == f"flag store redis://app:{REDACTED}@cache.internal:6379/0: connection refused"


def test_url_password_with_a_quote_is_masked_in_logs_and_errors() -> None:
    _secrets.forget_secrets()
    password = "Tq9<vW2'xL"
    url = f"postgres://svc:{password}@db.internal/app"
    assert password not in str(ConfigError(f"cannot reach {url}"))
    buf = io.StringIO()
    handler = logging.StreamHandler(buf)
    logger = logging.getLogger("cfgcore.review6.redact")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    _secrets._install_log_filter()
    try:
        logger.warning("retrying %s", url)
    finally:
        logger.removeHandler(handler)
    assert password not in buf.getvalue()
    assert "retrying postgres://svc:" in buf.getvalue()
    assert password not in Check("store", "fail", f"unreachable: {url}").detail


def test_text_around_masked_passwords_stays() -> None:
    text = 'see <https://u:pw1@h/x> and "redis://a:b2@c" ok, mail x@y.com'
    assert redact_text(text) == (
        f'see <https://u:{REDACTED}@h/x> and "redis://a:{REDACTED}@c" ok, mail x@y.com'
    )


# ----------------------------------------------------------------- linear webhook paths

_OLD_RANDOM_PIECE = re.compile(r"(?=[A-Za-z0-9]*[0-9])(?=[A-Za-z0-9]*[A-Za-z])[A-Za-z0-9]{8,}")


_CHILD = """
import json, sys
from cfgcore.runtime.redaction import REDACTED, redact_text
masked = redact_text(sys.stdin.read())
print(json.dumps([len(masked), REDACTED in masked, masked[:31], masked[-7:]]))
"""


def _redact_in_child(line: str) -> list[Any]:
    """redact_text(line) in a child process, killed after 60 s: Python's regex engine
    holds the GIL, so a thread could not time out a quadratic search. The bound is
    generous (a loaded 2-core machine takes milliseconds linear, hours quadratic)."""
    out = subprocess.run(
        [sys.executable, "-c", _CHILD],
        input=line,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    result: list[Any] = json.loads(out.stdout)
    return result


@pytest.mark.parametrize("run", ["a", "A", "ab"])
def test_long_letter_run_after_hooks_is_linear(run: str) -> None:
    line = "POST https://example.com/hooks/" + run * (400_000 // len(run)) + " failed"
    assert _redact_in_child(line) == [len(line), False, line[:31], " failed"]


def test_mixed_run_after_hooks_is_still_masked() -> None:
    token = "a" * 50_000 + "1" + "b" * 50_000
    line = f"https://example.com/hooks/{token} 404"
    assert REDACTED in redact_text(line) and token not in redact_text(line)


@settings(max_examples=examples(300), deadline=None)
@given(st.text(alphabet="aZ09_-x", max_size=40))
def test_random_piece_agrees_with_the_previous_regex(segment: str) -> None:
    assert redaction._random_piece(segment) == bool(_OLD_RANDOM_PIECE.search(segment))
