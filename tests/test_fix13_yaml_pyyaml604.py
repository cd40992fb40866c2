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
@pytest.mark.parametrize("as_bytes", [False, True])
def test_the_path_is_read_from_the_text_before_the_place(prefix, as_bytes):
    text = prefix + "app:\n  list:\n    - x\n    - " + "[" * 1500 + "]" * 1500 + "\n"
    at = text.index("[") + 990  # inside the nesting, as libyaml's mark is
    data = text.encode() if as_bytes else text
    assert _deep_path(data, at, ["app"]) == ["app", "list", "1", *["0"] * 6]


def test_a_mapping_key_in_the_path_is_named():
    text = "svc:\n  deep: " + "{k: " * 1200 + "1" + "}" * 1200 + "\n"
    at = text.index("{") + 4 * 990
    assert _deep_path(text, at, []) == ["svc", "deep", *["k"] * 7]


def test_bytes_that_are_not_utf8_fall_back_to_what_was_composed():
    data = ("app:\n  deep: " + "[" * 1500).encode("utf-16")
    assert _deep_path(data, 1000, ["app", "deep"]) == ["app", "deep", "…"]
    assert _deep_path(data, 1000, []) == []


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
