"""``--help`` as a new user reads it: no reStructuredText markup leaking from a
module docstring into the terminal, every positional argument explained, and the
environment default stated as the manager resolves it (``development`` when neither
variable is set), and the geographic profile's alias named."""

from __future__ import annotations

import pytest

from cfgcore.cli import main

COMMANDS = [
    ["demo"],
    ["flags"],
    ["flags", "stale"],
    ["flags", "delete"],
    ["setup"],
    ["validate"],
    ["schema"],
    ["migrate"],
    ["health"],
    ["alerts", "export"],
    ["show"],
    ["get"],
    ["explain"],
    ["diff"],
    ["eval"],
    ["watch"],
]


def _help(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main([*argv, "--help"])
    assert info.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("argv", COMMANDS, ids=" ".join)
def test_help_shows_no_rst_markup(argv, capsys):
    assert "``" not in _help(argv, capsys)


def test_diff_explains_its_two_environments(capsys):
    out = _help(["diff"], capsys)
    positional = out.split("positional arguments:")[1].split("options:")[0]
    for line in positional.strip().splitlines():
        assert len(line.split()) > 1, f"no help for {line.strip()!r}"


@pytest.mark.parametrize("command", ["show", "get", "explain", "eval", "health", "watch"])
def test_environment_default_names_development_and_every_alias(command, capsys):
    out = " ".join(_help([command], capsys).split())
    assert "$CFGCORE_ENVIRONMENT, else development" in out
    assert "$CFGCORE_GEOGRAPHIC_PROFILE" in out


@pytest.mark.parametrize(
    ("argv", "meant"),
    [
        (["shwo"], "show"),
        (["experiment", "strat", "x"], "start"),
        (["validate", "--format", "txt"], "text"),
        (["setup", "-e", "prod"], "production"),
        (["--log-level", "debg", "show"], "DEBUG"),
    ],
)
def test_a_mistyped_choice_gets_a_suggestion(argv, meant, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert f"(did you mean {meant!r}?)" in err
    assert err.count("did you mean") == 1


def test_a_choice_nothing_resembles_gets_no_guess(capsys):
    with pytest.raises(SystemExit):
        main(["zzzzzz"])
    err = capsys.readouterr().err
    assert "invalid choice: 'zzzzzz'" in err and "did you mean" not in err


def _commands(parser, path=()):
    """Every command and subcommand parser, with the words that reach it."""
    import argparse

    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _commands(sub, (*path, name))


def test_every_argument_of_every_command_is_explained():
    """`experiment start NAME`, `experiment stop --reason` and `secrets encrypt --scheme`
    showed a bare name in --help."""
    import argparse

    from cfgcore.cli import build_parser

    bare = [
        f"{' '.join(path)} {action.option_strings or action.dest}"
        for path, parser in _commands(build_parser())
        for action in parser._actions
        if not isinstance(action, argparse._SubParsersAction) and not action.help
    ]
    assert bare == []


@pytest.mark.parametrize("sub", ["create", "start", "stop", "delete", "list", "ingest", "report"])
def test_experiment_state_paragraph_is_wrapped(sub, capsys, monkeypatch):
    """`experiment ingest --help` (whose epilog keeps its own line breaks) printed the
    state paragraph as one 400-column line."""
    monkeypatch.setenv("COLUMNS", "80")
    out = _help(["experiment", sub], capsys)
    paragraph = out.split("\nstate:\n", 1)[1].split("\n\n", 1)[0]
    assert "$CFGCORE_FLAG_STORE" in paragraph
    assert max(len(line) for line in paragraph.splitlines()) <= 80
