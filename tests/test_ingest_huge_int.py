"""``cfgcore experiment ingest`` of a record holding an integer literal past Python's
digit limit (4,300 digits by default): a cfgcore message naming the file, the line and
the field, not Python's advice to call ``sys.set_int_max_str_digits()``."""

from __future__ import annotations

import json
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.cli import IntegerTooLong, load_json, main
from cfgcore.cli.experiment import _huge_int_field
from cfgcore.experiments.exposures import read_exposures
from tests.fuzz import examples

LIMIT = sys.get_int_max_str_digits()


@pytest.fixture
def state(tmp_path, monkeypatch):
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path))
    monkeypatch.delenv("CFGCORE_FLAG_STORE", raising=False)
    monkeypatch.chdir(tmp_path)
    assert main(["experiment", "create", "st", "--split", "control=50,b=50", "--start"]) == 0
    return tmp_path


def test_a_huge_integer_is_reported_with_file_line_and_field(state, capsys):
    path = state / "events.jsonl"
    big = "7" * (LIMIT + 700)
    lines = [
        json.dumps({"test": "st", "user": "u1", "variant": "b"}),
        '{"test": "st", "user": ' + big + ', "variant": "b"}',
        '{"test": "st", "user": "u2", "variant": "b", "ts": -' + "1" * (LIMIT + 1) + "}",
        '{"test": "st", "user": "u3", "variant": "b", "extra": {"n": [1, ' + big + "]}}",
        json.dumps({"test": "st", "user": "u4", "variant": "b"}),
        '{"test": "st", "user": ' + "9" * LIMIT + ', "variant": "b"}',  # at the limit: fine
    ]
    path.write_text("\n".join(lines) + "\n")
    capsys.readouterr()
    assert main(["experiment", "ingest", str(path)]) == 1  # unusable lines
    err = capsys.readouterr().err
    assert "set_int_max_str_digits" not in err and "Exceeds the limit" not in err
    n = len(big)
    assert f"{path}:2: user: an integer literal of {n:,} digits (cfgcore reads at most" in err
    assert f"{path}:3: ts: an integer literal of {LIMIT + 1:,} digits" in err
    assert f"{path}:4: extra.n.1: an integer literal of {n:,} digits" in err
    users = [e.user for e in read_exposures(str(state / "flags.exposures.jsonl"))]
    assert users == ["u1", "u4", "9" * LIMIT]


def test_load_json_refuses_it_in_its_own_words():
    with pytest.raises(IntegerTooLong, match=f"longer than {LIMIT:,} digits"):
        load_json("[" + "1" * (LIMIT + 1) + "]")


@settings(max_examples=examples(40))
@given(
    path=st.lists(st.one_of(st.text(min_size=1, max_size=8), st.integers(0, 3)), max_size=4),
    digits=st.integers(LIMIT + 1, LIMIT + 50),
)
def test_the_field_named_is_where_the_literal_sits(path, digits):
    # Build a record with the literal at ``path`` (a string step is a key, an int step
    # the index in a list padded with zeros).
    text = "1" * digits
    for step in reversed(path):
        if isinstance(step, int):
            text = "[" + "0, " * step + text + "]"
        else:
            text = "{" + json.dumps(step) + ": " + text + "}"
    with pytest.raises(ValueError) as info:
        _huge_int_field(text, LIMIT)
    where = ".".join(str(s) for s in path)
    expected = f"{where}: " if where else ""
    assert str(info.value) == f"{expected}an integer literal of {digits:,} digits " + (
        f"(cfgcore reads at most {LIMIT:,})"
    )
