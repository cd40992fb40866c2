"""``cfgcore diff``, ``explain``, ``eval``, ``watch`` and ``audit verify`` print one line per entry,
escaped: a key or a value holding a line break forged a line (a difference that is not
there), and one holding a terminal escape drove the operator's terminal. ``cfgcore get``
prints the value as it is (a script reads it)."""

from __future__ import annotations

import json
import os
import selectors
import shutil
import subprocess
import sys
import time
from importlib.resources import files

import pytest

from cfgcore.runtime.atomicio import atomic_write_text
from tests.conftest import run_cli as run

SRC = os.path.dirname(os.path.dirname(os.path.abspath(__import__("cfgcore").__file__)))

VALUE = "a\x1b[31m\nb\u202ec"


@pytest.fixture
def config_dir(tmp_path):
    d = tmp_path / "config"
    shutil.copytree(str(files("cfgcore") / "defaults" / "config"), d)
    with open(d / "staging.yaml", "a", encoding="utf-8") as fh:
        fh.write('"k\\e[2J\\nforged": 1\nnote: "a\\e[31m\\nb\\u202ec"\n')
    return d


def _one_line_each(text: str, starts: tuple[str, ...]) -> None:
    assert "\x1b" not in text and "\u202e" not in text
    for line in text.splitlines():
        assert line.startswith(starts), line


def test_diff_escapes_keys_and_values(config_dir, capsys):
    code, out, _ = run(capsys, "diff", "development", "staging", "--config-dir", str(config_dir))
    assert code == 1
    _one_line_each(out, ("+ ", "- ", "~ "))
    lines = out.splitlines()
    assert any(line.startswith('+ ["k\\x1b[2J\\nforged"]: 1') for line in lines)
    assert "+ note: a\\x1b[31m\\nb\\u202ec" in lines


def test_explain_escapes_the_value(config_dir, capsys):
    args = ("explain", "note", "-e", "staging", "--config-dir", str(config_dir))
    code, out, _ = run(capsys, *args)
    assert code == 0
    _one_line_each(out, ("note = ", "  "))
    assert out.splitlines()[0].startswith("note = a\\x1b[31m\\nb\\u202ec ")


def test_get_prints_the_value_as_it_is(config_dir, capsys):
    args = ("get", "note", "-e", "staging", "--config-dir", str(config_dir))
    code, out, _ = run(capsys, *args)
    assert code == 0 and out == VALUE + "\n"


def test_watch_prints_a_changed_value_escaped_on_one_line(config_dir):
    env = {**os.environ, "PYTHONPATH": SRC, "PYTHONUNBUFFERED": "1"}
    args = ["watch", "--count", "1", "--timeout", "30", "-e", "staging"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "cfgcore", *args, "--config-dir", str(config_dir)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        sel = selectors.DefaultSelector()
        sel.register(proc.stderr, selectors.EVENT_READ)
        deadline = time.monotonic() + 30
        banner = ""
        while "watching" not in banner and time.monotonic() < deadline:
            if sel.select(timeout=1):
                banner += proc.stderr.readline()
        assert "watching" in banner
        staging = config_dir / "staging.yaml"
        atomic_write_text(staging, staging.read_text().replace("\\u202ec", "d\\e[2J"))
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0
    assert "\x1b" not in out and len(out.splitlines()) == 1
    assert out.rstrip("\n").endswith(
        "reload note: a\\x1b[31m\\nb\\u202ec -> a\\x1b[31m\\nbd\\x1b[2J"
    )


@pytest.mark.parametrize("exists", [False, True])
def test_audit_verify_names_the_log_escaped(tmp_path, capsys, exists):
    log = tmp_path / "audit\n\x1b[2J.jsonl"
    if exists:
        log.write_text('{"not": "chained"}\n')
    code, out, _ = run(capsys, "audit", "verify", str(log))
    assert code == 1
    assert "\x1b" not in out and len(out.splitlines()) == 1
    assert out.startswith(str(tmp_path / "audit\\n\\x1b[2J.jsonl"))


def test_eval_prints_a_variant_and_its_text_escaped_on_one_line(config_dir, capsys):
    (config_dir / "flags.yaml").write_text(
        'version: 1\nflags:\n  banner:\n    variants:\n      "v\\e[2J\\nx": "t\\e[31m\\ny"\n'
        '    default: "v\\e[2J\\nx"\n'
    )
    args = ("eval", "banner", "-e", "staging", "--config-dir", str(config_dir))
    code, out, _ = run(capsys, *args)
    assert code == 0
    assert out == "banner = t\\x1b[31m\\ny  (variant v\\x1b[2J\\nx, reason STATIC)\n"
    code, out, _ = run(capsys, *args, "--json")  # for scripts: JSON escapes, values exact
    assert json.loads(out)["value"] == "t\x1b[31m\ny"
