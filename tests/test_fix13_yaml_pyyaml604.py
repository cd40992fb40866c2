"""PyYAML 6.0.4's libyaml refuses nesting past 1,000 levels itself, scanning ahead of the
events the composer has seen: the error named only the keys composed so far
("app.deep" for a list nested 2,500 deep under app.deep). The key path is now read from
the events of the text before the place libyaml stopped (``_deep_path``), whichever
PyYAML is installed; these tests call it directly so that they run on 6.0.3 too."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cfgcore.errors import ConfigError
from cfgcore.yamlio import _deep_path, load_yaml

PREFIXES = ["", "name: 'é😀'\n", "a: [1, 2]\nb: {c: 3}\n"]


@pytest.mark.parametrize("prefix", PREFIXES)
def test_the_path_is_read_from_the_text_before_the_place(prefix):
    text = prefix + "app:\n  list:\n    - x\n    - " + "[" * 1500 + "]" * 1500 + "\n"
    at = text.index("[") + 990  # inside the nesting, as libyaml's mark is
    assert _deep_path(text, at, ["app"]) == ["app", "list", "1", *["0"] * 6]


@pytest.mark.parametrize("prefix", PREFIXES)
def test_utf8_bytes_are_named_as_their_text(prefix):
    """Bytes are decoded before the parse (cfgcore._encoding), so the mark counts
    characters of that text: a non-ASCII prefix shifts nothing."""
    text = prefix + "app:\n  list:\n    - x\n    - " + "[" * 1500 + "]" * 1500 + "\n"
    with pytest.raises(ConfigError) as err:
        load_yaml(b"\xef\xbb\xbf" + text.encode(), file="svc.yaml")
    (problem,) = err.value.problems
    assert problem.path.startswith("app.list.1.0.0") and problem.path.endswith("…")


def test_a_mapping_key_in_the_path_is_named():
    text = "svc:\n  deep: " + "{k: " * 1200 + "1" + "}" * 1200 + "\n"
    at = text.index("{") + 4 * 990
    assert _deep_path(text, at, []) == ["svc", "deep", *["k"] * 7]


def test_a_deep_utf16_document_is_refused_for_its_encoding_first():
    data = ("app:\n  deep: " + "[" * 1500).encode("utf-16")
    with pytest.raises(ConfigError, match=r"^svc\.yaml:1: UTF-16 text .*; save it as UTF-8$"):
        load_yaml(data, file="svc.yaml")


@given(keys=st.lists(st.from_regex(r"[a-z]{1,8}", fullmatch=True), min_size=1, max_size=5))
def test_load_names_the_path_of_a_deep_value_whichever_pyyaml(keys):
    lines = [f"{'  ' * i}{k}:" for i, k in enumerate(keys)]
    text = "\n".join(lines) + " " + "[" * 2500 + "]" * 2500 + "\n"
    with pytest.raises(ConfigError) as err:
        load_yaml(text, file="svc.yaml")
    (problem,) = err.value.problems
    assert problem.path.startswith(".".join(keys) + ".0.0")
    assert problem.path.endswith("…")
    assert problem.line == len(keys)
