"""A YAML file written by a JSON writer: ``"\\uD83C\\uDFB5"`` is the one character.

Python's ``json.dumps`` (``ensure_ascii``, its default) and other JSON writers spell a
character past U+FFFF as an escaped UTF-16 surrogate pair, and JSON is YAML's flow
syntax, so such output is often saved as a ``.yaml`` file. libyaml refused the file
("found invalid Unicode character escape code"). A pair in a double-quoted scalar now
reads as its one character, as JSON reads it; a lone surrogate is still refused (no
text holds one), and the same letters in plain or single-quoted text stay text.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cfgcore.engine import Engine
from cfgcore.errors import ConfigError
from cfgcore.yamlio import load_yaml

# text of any character (no lone surrogate: json.dumps writes one as a lone escape)
TEXT = st.text(st.characters(min_codepoint=0x20, exclude_categories=("Cs",)), max_size=6)
DOCS = st.recursive(
    TEXT | st.integers() | st.booleans() | st.none(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)


@given(doc=st.dictionaries(TEXT, DOCS, max_size=4))
def test_any_document_json_dumps_writes_reads_back_as_yaml(doc):
    assert load_yaml(json.dumps(doc), file="dumped.yaml") == doc
    assert load_yaml(json.dumps(doc, indent=2), file="dumped.yaml") == doc


def test_a_pair_reads_as_its_character_and_the_same_letters_elsewhere_stay_text():
    text = (
        'a: "\\ud83c\\udfb5 x \\uD83D\\uDE00\\ud83d\\ude01"\n'
        "b: '\\ud83c\\udfb5'\n"  # single-quoted: no escapes
        "c: \\ud83c\\udfb5\n"  # plain: no escapes
        'd: "\\\\ud83c\\\\udfb5"\n'  # escaped backslashes: text
    )
    assert load_yaml(text, file="f.yaml") == {
        "a": "\U0001f3b5 x \U0001f600\U0001f601",
        "b": "\\ud83c\\udfb5",
        "c": "\\ud83c\\udfb5",
        "d": "\\ud83c\\udfb5",
    }


@pytest.mark.parametrize(
    "value",
    [
        '"\\ud83c"',  # a high surrogate alone
        '"\\udfb5"',  # a low one alone
        '"\\udfb5\\ud83c"',  # the wrong order
        '"\\ud83c\\ud83c\\udfb5"',  # one too many
        '"\\\\\\ud83c x\\udfb5"',  # an escaped backslash, then a lone one; apart
    ],
)
def test_a_lone_surrogate_is_still_refused_on_its_line(value):
    with pytest.raises(ConfigError) as err:
        load_yaml(f"ok: 1\nkey: {value}\n", file="f.yaml")
    assert "f.yaml:2: key: invalid YAML: found invalid Unicode character escape code" in str(
        err.value
    )


def test_a_flag_file_a_json_writer_saved_as_yaml_is_served(tmp_path):
    doc = {"flags": {"theme": {
        "variants": {"note": "\U0001f3b5", "plain": "-"}, "default": "note",
    }}}  # fmt: skip
    path = tmp_path / "flags.yaml"
    path.write_text(json.dumps(doc))
    assert "\\ud83c\\udfb5" in path.read_text()
    engine = Engine.from_file(str(path))
    assert engine.evaluate("theme", {}).value == "\U0001f3b5"


def test_the_refusal_says_what_the_escape_is():
    for value, shown in (('"\\ud800"', "a lone UTF-16 surrogate"), ('"\\U00110000"', "U+10FFFF")):
        with pytest.raises(ConfigError) as err:
            load_yaml(f"key: {value}\n", file="f.yaml")
        assert shown in str(err.value)
