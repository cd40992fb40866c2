"""Round 7: finding a key's line in a TOML file with long runs of spaces.

Every error and validation finding in a TOML file names its line, found by
``files._toml_lines``. Its two patterns had a lazy group that takes spaces next to
``\\s*``, so a line of spaces (blank to TOML, left by an editor or put there on
purpose) or a ``[`` followed by spaces inside a multi-line string made them backtrack
cubically: 3,000 spaces kept ``cfgcore show`` busy for 20 s before it printed
"b: inf is not a finite number", 8,000 for over six minutes, and a reload rejecting
such a file held the manager's lock that long.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.config.files import Layer, _toml_lines, parse_text
from cfgcore.errors import ConfigError
from tests.fuzz import examples

SPACES = 30_000  # minutes to hours of backtracking for the old patterns


@pytest.mark.parametrize(
    "filler",
    [
        " " * SPACES,  # a blank line
        'note = """\n[' + " " * SPACES + '\n"""',  # a table-like line in a string
        'note = """\nkey' + " " * SPACES + 'x\n"""',  # a key-like line in a string
        "\t" * SPACES,
    ],
    ids=["spaces", "bracket-spaces", "key-spaces", "tabs"],
)
def test_an_error_in_a_toml_file_with_long_space_runs_names_its_line_promptly(filler):
    text = f"a = 1\n{filler}\n[svc]\nrate = 1e999\n"
    code = (
        "import sys\n"
        "from cfgcore.config.files import parse_text\n"
        "from cfgcore.errors import ConfigError\n"
        "try:\n"
        "    parse_text(sys.stdin.read(), 'toml', 'svc.toml')\n"
        "except ConfigError as exc:\n"
        "    p = exc.problems[0]\n"
        "    print(p.path, p.line)\n"
    )
    # A bound, not a timing assertion: the new patterns take milliseconds, the old
    # ones hours; a subprocess so the old code cannot hang the test run.
    done = subprocess.run(
        [sys.executable, "-c", code], input=text, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    lines = text.count("\n", 0, text.index("rate")) + 1
    assert done.stdout.split() == ["svc.rate", str(lines)]


def test_keys_and_tables_are_still_found_on_their_lines():
    text = (
        'title = "x"\n'
        "  spaced . key   = 2\n"
        "[ server . http ]  # comment\n"
        "port\t= 80\n"
        '"quoted" = 1\n'
        "[[jobs]]\n"
        "name = 'a'\n"
    )
    lines = _toml_lines(text)
    assert lines[("title",)] == 1
    assert lines[("spaced", "key")] == 2
    assert lines[("server", "http")] == 3
    assert lines[("server", "http", "port")] == 4
    assert lines[("server", "http", "quoted")] == 5
    assert lines[("jobs",)] == 6


def test_a_toml_error_still_names_file_line_and_key_path():
    with pytest.raises(ConfigError) as err:
        parse_text("[db]\nport = 1\n\n[db.pool]\nsize = nan\n", "toml", "db.toml")
    (problem,) = err.value.problems
    assert (problem.file, problem.line, problem.path) == ("db.toml", 5, "db.pool.size")


_KEY = st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True)


@settings(max_examples=examples(100), deadline=None)
@given(
    st.lists(
        st.tuples(_KEY, st.lists(_KEY, min_size=1, max_size=3, unique=True), st.integers(0, 3)),
        min_size=1,
        max_size=5,
        unique_by=lambda t: t[0],
    )
)
def test_every_key_of_a_generated_toml_file_is_found_on_its_line(tables):
    out, where = [], {}
    for table, keys, pad in tables:
        out.append(f"{' ' * pad}[{' ' * pad}{table}{' ' * pad}]")
        where[(table,)] = len(out)
        for key in keys:
            out.append(f"{' ' * pad}{key}{' ' * pad}= 1")
            where[(table, key)] = len(out)
        out.append(" " * (pad * 50))
    text = "\n".join(out) + "\n"
    layer = Layer("", "file", parse_text(text, "toml", "f.toml"), text=text, fmt="toml")
    for path, line in where.items():
        assert layer.line_of(path) == line
