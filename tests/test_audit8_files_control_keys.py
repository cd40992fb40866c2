"""A key holding control characters (JSON "\\n" or "\\u001b", YAML "\\e" or "\\x85")
is shown escaped in errors, log lines and `cfgcore validate`: written raw it split one
problem over lines a log reader takes for others ("one problem, one line", as
ConfigError promises) and sent escape sequences to the terminal. The problem's `path`
keeps the key as it is, for code that reads it."""

from __future__ import annotations

import json
import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore import ConfigurationManager
from cfgcore.errors import ConfigError, Problem
from tests.conftest import run_cli
from tests.fuzz import examples

KEY = "x\nERROR forged line\x1b[31m"


def _config(tmp_path, tree):
    (tmp_path / "base.json").write_text(json.dumps(tree))
    (tmp_path / "development.yaml").write_text("{}\n")
    return ConfigurationManager(tmp_path, environment="development", environ={}, validate=True)


def test_a_refused_value_under_such_a_key_is_one_escaped_line(tmp_path):
    m = _config(tmp_path, {})
    (tmp_path / "base.json").write_text('{"app": {"x\\nERROR forged line\\u001b[31m": 1e400}}')
    with pytest.raises(ConfigError) as err:
        m.load_environment_config()
    text = str(err.value)
    assert "\n" not in text and "\x1b" not in text
    # (quoted: the key holds a "[", which a key path shown dotted cannot)
    assert 'app["x\\nERROR forged line\\x1b[31m"]: inf is not a finite number' in text
    assert err.value.problems[0].path == f'app["{KEY}"]'  # the key as it is, quoted


def test_validate_prints_each_finding_on_one_line(tmp_path, capsys, caplog):
    _config(tmp_path, {"app": {KEY: 1}})
    caplog.set_level(logging.WARNING, logger="cfgcore")
    code, out, _err = run_cli(
        capsys, "validate", "--config-dir", str(tmp_path), "-e", "development"
    )
    assert code == 0
    assert "\x1b" not in out
    finding = [line for line in out.splitlines() if "unknown key" in line]
    assert len(finding) == 1 and "x\\nERROR forged line\\x1b[31m" in finding[0]
    assert not any(line.startswith("ERROR forged") for line in out.splitlines())
    for record in caplog.records:
        assert "\x1b" not in record.getMessage() and "\nERROR" not in record.getMessage()


@settings(max_examples=examples(60), deadline=None)
@given(
    path=st.text(st.characters(codec="utf-8"), max_size=12),
    message=st.text(st.characters(codec="utf-8"), max_size=12),
    file=st.none() | st.text(st.characters(codec="utf-8"), min_size=1, max_size=12),
)
def test_a_problem_is_always_one_printable_line(path, message, file):
    text = str(Problem(path=path, message=message, file=file))
    assert not any(c in text for c in "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029\x1b\x00")
    assert len(text.splitlines()) <= 1


# The bidirectional controls: written raw, U+202E shows the rest of a line reversed
# ("flags.k\u202e1.default" read as another key) and U+2066-2069 reorder it.
BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"


@given(
    path=st.text(st.sampled_from('ab.["\u200d' + BIDI), max_size=8),
    message=st.text(st.sampled_from("ok \u200d" + BIDI), max_size=8),
)
def test_a_problem_shows_bidirectional_controls_escaped(path, message):
    text = str(Problem(path=path, message=message, file="flags.yaml"))
    assert not any(c in text for c in BIDI)
    for c in set(path + message) & set(BIDI):
        assert f"\\u{ord(c):04x}" in text
    assert text.count("\u200d") == (path + message).count("\u200d")  # (emoji joiner: kept)


@pytest.mark.parametrize(
    "argv",
    [("get", "a\x1b[31mb"), ("explain", "a\x1b[2Jb"), ("eval", "fl\x1b]0;title\x07ag")],
)
def test_a_command_s_error_echoes_an_argument_printably(tmp_path, capsys, argv):
    _config(tmp_path, {"app": {"name": "svc"}})
    code, _out, err = run_cli(capsys, *argv, "--config-dir", str(tmp_path), "-e", "development")
    assert code == 1
    assert "\x1b" not in err and "\x07" not in err
    assert "\\x1b" in err
    assert all(line.startswith("cfgcore: error: ") for line in err.splitlines())


def test_a_secret_holding_newlines_is_masked_before_it_is_escaped():
    """A message quoting a resolved secret that holds newlines (a PEM key) is masked in
    its raw form first: escaped first, the mask would no longer find it."""
    from cfgcore.runtime import secrets

    pem = "-----BEGIN KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAAS\n-----END KEY-----"
    secrets.register_secret(pem)
    try:
        err = ConfigError([Problem(path="tls.key", message=f"not a certificate: {pem}")])
        text = str(err)
        assert "MIIEvQIBADANBgkqhkiG9w0BAQEFAAS" not in text
        assert text == "tls.key: not a certificate: ***"
    finally:
        secrets.forget_secrets()
