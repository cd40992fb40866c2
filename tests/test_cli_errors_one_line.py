"""An error the command line prints stays one ``cfgcore: error:`` line per problem,
whatever the argument it echoes holds: ``cfgcore flags delete $'x\\nFORGED'`` printed
``cfgcore: error: x`` and a second, forged, ``cfgcore: error: FORGED: ...`` line (a
script reading the errors line by line took it for a second problem). The argument is
shown escaped (``x\\nFORGED``), as every other name the command line prints."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from cfgcore.errors import printable
from tests.conftest import run_cli
from tests.fuzz import examples
from tests.texts import any_text

FORGED = "x\nFORGED"
COMMANDS = [
    ("flags", "delete"),
    ("get",),
    ("explain",),
    ("eval",),
    ("experiment", "stop"),
    ("experiment", "delete"),
    ("experiment", "start"),
]


@pytest.fixture
def state(tmp_path, monkeypatch, capsys):
    """A state directory with a flag file (an A/B test in it), and the configuration
    the package bundles."""
    for var in ("CFGCORE_FLAG_STORE", "CFGCORE_CONFIG_DIR", "CONFIG_ENVIRONMENT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(capsys, "experiment", "create", "t", "--split", "a=50,b=50")
    assert code == 0, err
    return tmp_path


def _one_error_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("cfgcore: error: ")
    return lines[0]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_an_echoed_argument_with_a_newline_stays_on_its_error_line(state, capsys, command):
    code, _, err = run_cli(capsys, *command, FORGED)
    assert code == 1
    line = _one_error_line(err)
    assert r"x\nFORGED" in line


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_an_echoed_argument_cannot_drive_the_terminal(state, capsys, command):
    code, _, err = run_cli(capsys, *command, "x\x1b[2J\u2028y\r")
    assert code == 1
    line = _one_error_line(err)
    assert line.isprintable()
    assert r"x\x1b[2J\u2028y\r" in line


@settings(
    max_examples=examples(25),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(name=any_text(min_size=1, max_size=12).filter(lambda s: not s.startswith("-")))
def test_any_key_is_refused_on_one_line(state, capsys, name):
    code, _, err = run_cli(capsys, "get", f"nope.{name}")
    assert code == 1
    line = _one_error_line(err)
    assert printable(line) == line  # no control character, line or paragraph separator


def test_an_error_of_several_lines_keeps_them(tmp_path, capsys):
    # A flag still used by others: the refusal and one line per dependent, each its own
    # error line (the lines the command meant stay lines).
    store = tmp_path / "flags.yaml"
    store.write_text(
        'flags:\n  base: {default: "on"}\n'
        "  one: {default: 'on', prerequisites: [base]}\n"
        "  two: {default: 'on', prerequisites: [base]}\n"
    )
    code, _, err = run_cli(capsys, "flags", "delete", "base", "--store", str(store),
                           "--state-dir", str(tmp_path / "state"))  # fmt: skip
    assert code == 1
    lines = err.splitlines()
    assert len(lines) == 3 and all(ln.startswith("cfgcore: error: ") for ln in lines)
    assert lines[0].endswith("cannot delete flag base: still used by")
    assert lines[1:] == ["cfgcore: error:   flag one (prerequisite)",
                         "cfgcore: error:   flag two (prerequisite)"]  # fmt: skip
