"""Hardening: no part of a resolved secret reaches a message (audit finding 2).

Validation messages show a value's ``repr`` cut to 40 characters; the registry masked
only the whole secret, so the first 37 characters of a secret (or of a value holding
one) were shown, and a secret with a newline or a backslash appeared repr-escaped, a
spelling the registry did not match.
"""

from __future__ import annotations

import io
import json
import logging
import os
import tempfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.config.manager import ConfigurationManager
from cfgcore.errors import ConfigError
from cfgcore.observability.health import wsgi_app
from cfgcore.runtime import secrets
from tests.fuzz import examples

TOKEN = "hq7Zk2PqL9mW4xVb8RtY3nCs6JdF1gHe5KuQ0oIaXzEwLpMvNbTy"
PEM = (
    "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\n"
    "VJTUt9Us8cKjMzEfYyjiWA4R4ypbZdqQ0P3sLk1YwSi+Ydm2M6cW\n-----END PRIVATE KEY-----"
)
# (key, value the schema refuses for a reason that shows the value)
TARGETS = (
    "performance.worker_threads",  # expected an integer, got string '...'
    "music_streaming.audio_quality.default_quality",  # string '...' is not allowed
)
BASE = """environment: staging
performance:
  worker_threads: 8
music_streaming:
  stream_delivery:
    buffer_size: 2MB
  audio_quality:
    default_quality: high
billing:
  timeout: 3
  url: 'https://app:${{file:{sec}/tok}}@billing.internal'
up:
  auth: '${{file:{sec}/tok}}'
"""


def _spellings(secret: str) -> set[str]:
    """The secret as it is and as repr() or JSON would write it inside a message."""
    rep = repr(secret)[1:-1]
    return {
        secret,
        rep,
        rep.replace("\\'", "'"),
        rep.replace("\\'", "'").replace("'", "\\'"),
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
    }


def _leaks(texts: dict[str, str], secret: str, width: int = 8) -> list[tuple[str, str]]:
    """Every (output, piece) where ``width`` characters of a spelling of ``secret`` show."""
    found = []
    for spelled in _spellings(secret):
        for i in range(max(len(spelled) - width + 1, 0)):
            piece = spelled[i : i + width]
            found += [(name, piece) for name, text in texts.items() if piece in text]
    return found


def _strings(node) -> list[str]:
    if isinstance(node, dict):
        return [s for k, v in node.items() for s in (*_strings(k), *_strings(v))]
    if isinstance(node, list):
        return [s for v in node for s in _strings(v)]
    return [node] if isinstance(node, str) else []


class _Setup:
    """A staging directory whose ``up.auth`` is the secret file ``tok``."""

    def __init__(self, root: str, secret: str) -> None:
        self.root = root
        sec = os.path.join(root, "sec")
        os.mkdir(sec)
        os.mkdir(os.path.join(root, "c"))
        with open(os.path.join(sec, "tok"), "wb") as fh:
            fh.write(secret.encode("utf-8") + b"\n")
        with open(os.path.join(root, "c", "base.yaml"), "w") as fh:
            fh.write(BASE.format(sec=sec))
        with open(os.path.join(root, "c", "staging.yaml"), "w") as fh:
            fh.write("environment: staging\n")
        self.env = {
            "CFGCORE_SECRET_DIRS": sec,
            "CFGCORE_USAGE": "0",
            "CFGCORE_STATE_DIR": os.path.join(root, "state"),
        }
        self.audit = os.path.join(root, "audit.jsonl")

    def manager(self) -> ConfigurationManager:
        m = ConfigurationManager(os.path.join(self.root, "c"), audit_log=self.audit)
        m.load_environment_config("staging")
        return m

    def outputs(self, m: ConfigurationManager, log_text: str, errors: list[str]) -> dict[str, str]:
        app = wsgi_app(m)
        body = b"".join(
            app({"REQUEST_METHOD": "GET", "PATH_INFO": "/health/ready"}, lambda s, h: None)
        )
        with open(self.audit, encoding="utf-8") as fh:
            audit = [s for line in fh for s in _strings(json.loads(line))]
        return {
            "errors": "\n".join(errors),
            "last_error": str(m.last_error),
            "health": "\n".join(_strings(json.loads(body))),
            "audit": "\n".join(audit),
            "log": log_text,
        }


def _run(setup: _Setup, values: list[tuple[str, str]]) -> dict[str, str]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(name)s %(message)s"))
    root = logging.getLogger("cfgcore")
    root.addHandler(handler)
    errors: list[str] = []
    m = setup.manager()
    try:
        for key, value in values:
            try:
                m.update_config(key, value)
            except ConfigError as exc:
                errors.append(str(exc))
            errors.append(str(m.last_error))
        return setup.outputs(m, stream.getvalue(), errors)
    finally:
        root.removeHandler(handler)
        m.close()


def test_the_auditors_repro_shows_no_prefix_of_the_token(tmp_path, apply_env):
    setup = _Setup(str(tmp_path), TOKEN)
    apply_env(setup)
    m = setup.manager()
    m.update_config("performance.worker_threads", m.get("up.auth"))
    assert "performance.worker_threads: expected an integer, got string '***'" in str(m.last_error)
    m.close()
    out = _run(setup, [(k, v) for k in TARGETS for v in (TOKEN, "x" * 20 + TOKEN)])
    assert "***" in out["last_error"]
    assert not _leaks(out, TOKEN)


# Characters that need escaping in repr() or JSON, and no lowercase letters or digits,
# so no 8-character piece of a secret can be a timestamp, a hash or a message word.
_ALPHABET = st.sampled_from(
    list("ABCDEFGHIJKLMNOPQRSTUVWXYZ") + list("'\"\\\n\t\r %:@=;/") + list("é中🔑\x01\x7f\u2028")
)


@settings(max_examples=examples(40), deadline=None)
@given(
    secret=st.text(_ALPHABET, min_size=8, max_size=60).filter(lambda s: s.strip() == s),
    head=st.text("abcxyz", max_size=40),
    tail=st.text("abcxyz", max_size=5),
    key=st.sampled_from(TARGETS),
)
def test_no_piece_of_a_secret_reaches_an_error_the_audit_log_health_or_logs(
    secret, head, tail, key
):
    """Whatever the secret holds (quotes, backslashes, newlines, unicode) and wherever
    it sits in a refused value, no 8 characters of it (in any spelling) are shown."""
    with tempfile.TemporaryDirectory() as root, pytest.MonkeyPatch.context() as mp:
        setup = _Setup(root, secret)
        for k, v in setup.env.items():
            mp.setenv(k, v)
        secrets.forget_secrets()
        out = _run(setup, [(key, head + secret + tail), (key, secret)])
        assert "***" in out["last_error"]  # it was refused, and the secret masked
        assert not _leaks(out, secret)


def test_repr_escaped_spellings_are_masked():
    """A PEM (newlines) and a Windows path (backslashes) formatted with !r by any
    message: the registry matches the escaped spelling too."""
    path = "C:\\secrets\\prod\\db-Pw-8f2k"
    quoted = 'it\'s a "quoted" secret'
    for secret in (PEM, path, quoted):
        secrets.register_secret(secret)
    for secret in (PEM, path, quoted):
        for text in (
            f"got {secret!r}",
            f"got {('x' + secret)!r}",
            f"got {(secret + chr(39))!r}",  # repr picks the other quote: ' not escaped
            f"got {(secret + chr(39) + chr(34))!r}",  # both quotes: ' escaped
            json.dumps({"v": secret}),
        ):
            masked = secrets.mask_text(text)
            assert "***" in masked
            assert not _leaks({"t": masked}, secret), text
        err = ConfigError(f"value {secret!r} is not allowed", file="staging.yaml")
        assert not _leaks({"err": str(err)}, secret)


def test_pem_lines_do_not_reach_a_validation_message(tmp_path, apply_env):
    setup = _Setup(str(tmp_path), PEM)
    apply_env(setup)
    out = _run(setup, [(k, "k=" + PEM) for k in TARGETS])
    assert not _leaks(out, PEM, width=12)
    assert "BEGIN PRIVATE KEY" not in out["last_error"]  # the PEM's lines neither
