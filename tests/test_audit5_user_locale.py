"""The command line under a non-UTF-8 locale (``LC_ALL=C`` with Python's locale
coercion off, as in some minimal containers, or ``PYTHONIOENCODING=ascii``): a
character the terminal cannot encode (``cfgcore health``'s "µs", a non-ASCII
configuration value) made the whole command fail with "'ascii' codec can't encode"
and exit 1. It is printed as a backslash escape instead, and the command succeeds."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from cfgcore.cli import main

LOCALES = [
    {"LC_ALL": "C", "LANG": "C", "PYTHONCOERCECLOCALE": "0", "PYTHONUTF8": "0"},
    {"PYTHONIOENCODING": "ascii", "PYTHONUTF8": "0"},
]


def _run(args, tmp_path, extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LC_", "CFGCORE_", "CONFIG_"))}
    env.pop("PYTHONIOENCODING", None)
    env.update(extra)
    env["HOME"] = str(tmp_path)
    env["CFGCORE_STATE_DIR"] = str(tmp_path / "state")
    return subprocess.run(
        [sys.executable, "-m", "cfgcore", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        timeout=120,
    )


@pytest.mark.parametrize("extra", LOCALES, ids=["LC_ALL=C", "ascii"])
def test_health_prints_under_an_ascii_locale(tmp_path, extra):
    done = _run(["health"], tmp_path, extra)
    assert done.returncode == 0, done.stderr
    assert b"evaluated in" in done.stdout
    assert b"codec can't encode" not in done.stderr


@pytest.mark.parametrize("extra", LOCALES, ids=["LC_ALL=C", "ascii"])
def test_a_non_ascii_value_is_escaped_not_fatal(tmp_path, extra):
    conf = tmp_path / "config"
    conf.mkdir()
    (conf / "development.yaml").write_text(
        'app:\n  name: "Musik-Str\u00f6mung \u2713"\n', encoding="utf-8"
    )
    done = _run(["get", "app.name", "--no-validate"], tmp_path, extra)
    assert done.returncode == 0, done.stderr
    assert b"Musik-Str\\xf6mung \\u2713" in done.stdout


def test_in_process_streams_are_left_as_they_were(capsys):
    before = (sys.stdout, sys.stdout.errors)
    assert main(["schema"]) == 0
    assert (sys.stdout, sys.stdout.errors) == before
    assert '"$schema"' in capsys.readouterr().out
