"""Names from the flag document or the logs are printed escaped by every experiment
command, as ``cfgcore experiment report`` prints them (``cfgcore.errors.printable_name``).

``list`` printed test, variant and status texts raw, and ``start``/``stop``/``delete``,
the ingest line errors and ``report``'s "no such test" hint printed test names raw: a
name holding an escape sequence drove the operator's terminal, one holding a newline
forged a line of the output, a bidirectional override reordered it.
"""

from __future__ import annotations

import json
import os
import shlex
import tempfile

import pytest
from hypothesis import HealthCheck, assume, given, settings

from cfgcore.errors import printable, printable_name
from tests.conftest import run_cli
from tests.fuzz import examples
from tests.texts import any_text, holds_lone_surrogate

NAME = "t\x1b[2J\nforged  [active]"
VARIANT = "b\u202eevil"


def _raw(text: str) -> bool:
    """True if ``text`` holds a character a terminal acts on or a reader is fooled by."""
    return any(not c.isprintable() for c in text.replace("\n", ""))


@pytest.fixture
def state(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("CFGCORE_FLAG_STORE", raising=False)
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(capsys, "experiment", "create", NAME, "--split",
                           f"control=50,{VARIANT}=50", "--start")  # fmt: skip
    assert code == 0, err
    return tmp_path


def test_create_echoes_the_name_escaped(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("CFGCORE_FLAG_STORE", raising=False)
    code, _, err = run_cli(capsys, "experiment", "create", NAME, "--split", "control=50,b=50")
    assert code == 0, err
    assert not _raw(err) and err.count("\n") == 2  # its two lines, no forged one
    assert r"created A/B test t\x1b[2J\nforged" in err


def test_list_shows_the_names_escaped_one_line_per_test(state, capsys):
    code, out, _ = run_cli(capsys, "experiment", "list")
    assert code == 0
    assert not _raw(out)
    [line] = out.splitlines()
    assert line.startswith(r"t\x1b[2J\nforged  [active]  [active]  control 50%, b\u202eevil 50%")


def test_list_json_stays_the_stored_names(state, capsys):
    code, out, _ = run_cli(capsys, "experiment", "list", "--json")
    assert code == 0 and not _raw(out)
    assert VARIANT in json.loads(out)[NAME]["traffic_split"]


def test_a_hand_edited_status_and_window_are_escaped_in_list(state, capsys):
    path = state / "state" / "flags.json"
    doc = json.loads(path.read_text())
    doc["experiments"][NAME]["status"] = "active\x1b]0;owned\x07"
    path.write_text(json.dumps(doc))
    code, out, _ = run_cli(capsys, "experiment", "list")
    assert code == 0
    assert not _raw(out) and len(out.splitlines()) == 1
    assert r"[active\x1b]0;owned\x07]" in out


@pytest.mark.parametrize("command", ["stop", "start", "delete"])
def test_start_stop_delete_echo_the_name_escaped(state, capsys, command):
    code, _, err = run_cli(capsys, "experiment", command, NAME)
    assert code == 0, err
    assert not _raw(err)
    assert r"t\x1b[2J\nforged" in err
    assert err.count("\n") == (1 if command != "start" else 2)


def test_ingest_line_errors_name_the_test_escaped(state, capsys):
    assert run_cli(capsys, "experiment", "stop", NAME)[0] == 0
    events = state / "late.jsonl"
    events.write_text(
        json.dumps({"test": NAME, "user": "u1"}) + "\n"  # stopped: variant needed
        + json.dumps({"test": NAME, "user": "u2", "variant": "nope"}) + "\n"
    )  # fmt: skip
    code, _, err = run_cli(capsys, "experiment", "ingest", str(events))
    assert code == 1
    assert not _raw(err)
    errors = [line for line in err.splitlines() if line.startswith("cfgcore: error:")]
    assert len(errors) == 2 and len(err.splitlines()) == 3  # + the summary line
    assert "variant missing: A/B test t\\x1b[2J\\nforged" in errors[0]
    assert "not a variant of t\\x1b[2J\\nforged" in errors[1]


def test_report_of_an_unknown_test_lists_the_known_names_escaped(state, capsys):
    code, _, err = run_cli(capsys, "experiment", "report", "zzzzzzzzzzzzzz")
    assert code == 1
    assert "known: " in err and not _raw(err)
    assert len(err.splitlines()) == 1


def test_start_of_an_unknown_test_lists_the_known_names_escaped(state, capsys):
    code, _, err = run_cli(capsys, "experiment", "start", "zzzzzzzzzzzzzz")
    assert code == 1
    assert "known: " in err and not _raw(err) and len(err.splitlines()) == 1


@settings(
    max_examples=examples(25),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(name=any_text(min_size=1, max_size=20), variant=any_text(min_size=1, max_size=10))
def test_any_names_list_as_one_printable_line(capsys, monkeypatch, name, variant):
    assume("," not in variant and "=" not in variant and variant.strip() == variant)
    assume(variant != "control")
    with tempfile.TemporaryDirectory() as tmp:
        monkeypatch.setenv("CFGCORE_STATE_DIR", os.path.join(tmp, "state"))
        monkeypatch.delenv("CFGCORE_FLAG_STORE", raising=False)
        # (after --: a name such as "--sp" is no option)
        code, _, err = run_cli(capsys, "experiment", "create", "--split",
                               f"control=50,{variant}=50", "--", name)  # fmt: skip
        if holds_lone_surrogate((name, variant)):
            # a lone surrogate (an argument that is not UTF-8) is refused, printably
            assert code == 1
            assert err and all(printable(ln) == ln for ln in err.splitlines())
            err.encode("utf-8")
            return
        assume(code == 0)  # (names the API refuses are not stored)
        code, out, _ = run_cli(capsys, "experiment", "list")
    assert code == 0
    [line] = out.splitlines()
    assert line.isprintable()
    assert line.startswith(f"{printable_name(name)}  [not started]  ")
    assert f"{printable_name(variant)} 50%" in line


@pytest.mark.parametrize(
    ("name", "argument"),
    [("checkout", "checkout"), ("two words", "'two words'"), ("-dash", "-- -dash")],
)
def test_the_start_hint_of_create_pastes_as_a_command(state, capsys, name, argument):
    code, out, err = run_cli(
        capsys, "experiment", "create", "--split", "control=50,b=50", "--", name
    )
    assert code == 0
    hint = f"(not started: cfgcore experiment start {argument})"
    assert hint in out + err
    code, _, _ = run_cli(capsys, *shlex.split(hint[len("(not started: cfgcore ") : -1]))
    assert code == 0
    code, out, _ = run_cli(capsys, "experiment", "list")
    # the pasted command started it
    assert any(line.startswith(f"{name}  [active]  ") for line in out.splitlines())
