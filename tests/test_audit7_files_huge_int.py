"""Round 7: which key holds an integer too long to read.

Python's ``int()`` refuses literals of more than 4,300 digits while the JSON and TOML
parsers run, so cfgcore finds the literal in the text to name its key and line. It
took the first run of 100 or more digits, wherever it was: a long number inside an
earlier string (an id, a checksum, a note) was named instead, sending the operator to
the wrong key. The refused literal is the run longer than the limit.
"""

from __future__ import annotations

import sys

import pytest

from cfgcore.config.files import parse_text
from cfgcore.errors import ConfigError

HUGE = "7" * (sys.get_int_max_str_digits() + 1)
DECOY = "1" * 200  # long, but no parser converts it: it is text


@pytest.mark.parametrize(
    ("fmt", "text", "path", "line"),
    [
        ("json", f'{{"note": "id {DECOY}",\n "limits": {{"n": {HUGE}}}}}', "limits.n", 2),
        ("toml", f'note = "id {DECOY}"\n[limits]\nn = {HUGE}\n', "limits.n", 3),
        ("toml", f"checksum = '{DECOY}'\n\n[limits]\nn = {HUGE}\n", "limits.n", 4),
    ],
    ids=["json", "toml", "toml-literal-string"],
)
def test_the_key_named_is_the_one_holding_the_huge_integer(fmt, text, path, line):
    with pytest.raises(ConfigError) as err:
        parse_text(text, fmt, f"svc.{fmt}")
    (problem,) = err.value.problems
    assert (problem.path, problem.line) == (path, line)
    assert "integer out of range" in problem.message
    assert problem.kind == "limits"


def test_without_a_decoy_the_literal_is_still_found():
    with pytest.raises(ConfigError) as err:
        parse_text(f'{{"a": {{"b": {HUGE}}}}}', "json", "f.json")
    assert err.value.problems[0].path == "a.b"
