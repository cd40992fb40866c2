"""``cfgcore.yamlio.dump_yaml`` (what ``cfgcore show``, ``cfgcore migrate`` and the YAML
flag file writer print) with ``allow_unicode``: every text reads back as it was,
including the YAML 1.1 line breaks NEL (U+0085), U+2028 and U+2029."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.cli import main as cli_main
from cfgcore.yamlio import dump_yaml, load_yaml
from tests.fuzz import examples

_text = st.text(
    st.one_of(
        st.sampled_from("\x85\u2028\u2029 \t\n\r'\"#:-a1"),
        st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\ufeff"),
    ),
    max_size=10,
)


@settings(max_examples=examples(200), deadline=None)
@given(st.dictionaries(_text, st.one_of(_text, st.lists(_text, max_size=3)), max_size=4))
def test_any_text_reads_back_as_dumped(tree):
    assert load_yaml(dump_yaml(tree, allow_unicode=True, sort_keys=False)) == tree


@pytest.mark.parametrize("value", ["a\x85b", "\x85", "a\u2028b", "x\u2029"])
def test_show_prints_a_next_line_character_as_an_escape(tmp_path, capsys, value):
    (tmp_path / "base.json").write_text('{"legacy": {"note": "' + value + '"}}')
    (tmp_path / "development.yaml").write_text("{}\n")
    args = ["show", "--config-dir", str(tmp_path), "-e", "development", "--no-validate"]
    assert cli_main(args) == 0
    printed = capsys.readouterr().out
    assert load_yaml(printed)["legacy"]["note"] == value  # was "a b" for "a\x85b"
