"""Every `cfgcore ... --help` wraps at spaces only: option names and key paths named in
help text are never cut at a hyphen (``--metric-`` / ``type``), at any terminal width."""

from __future__ import annotations

import argparse
import re

import pytest

from cfgcore.cli import build_parser


def _parsers(parser: argparse.ArgumentParser, path: tuple[str, ...] = ("cfgcore",)):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, (*path, name))


def _help_words(parser: argparse.ArgumentParser) -> set[str]:
    """The option names the parsers' help texts mention: ``--x-y`` spelled in a help."""
    words: set[str] = set()
    for action in parser._actions:
        words.update(re.findall(r"--[a-z][a-z0-9-]*[a-z0-9]", action.help or ""))
    return words


@pytest.mark.parametrize("columns", ["50", "80", "132"])
def test_no_help_line_cuts_a_word_at_a_hyphen(monkeypatch, columns):
    monkeypatch.setenv("COLUMNS", columns)
    parsers = list(_parsers(build_parser()))
    assert len(parsers) > 30  # every command and subcommand
    for path, parser in parsers:
        text = parser.format_help()
        cut = [line for line in text.splitlines() if re.search(r"[A-Za-z0-9]-$", line)]
        assert not cut, (" ".join(path), cut)
        flat = text.replace("\n", " ")
        for word in _help_words(parser):  # named whole somewhere, never only in pieces
            assert re.search(re.escape(word) + r"(?![a-z0-9-])", flat), (" ".join(path), word)


def test_descriptions_printed_as_written_keep_their_layout():
    """The commands whose description or epilog is laid out by hand (the top level's
    command list, ingest's examples) keep their lines."""
    top = build_parser()
    epilog = top.epilog or ""
    assert epilog and all(line in top.format_help() for line in epilog.splitlines() if line)
