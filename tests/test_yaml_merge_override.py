"""Merge keys (``<<``) follow the YAML merge key type: a key of the mapping itself
overrides a merged one, and in ``<<: [*a, *b]`` the first mapping's key wins. Only a
mapping's own keys can be duplicates. (The loader refused ``{<<: *base, x: 2}``, the
usual way to override a default, as a duplicate key.)"""

from __future__ import annotations

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.errors import ConfigError
from cfgcore.yamlio import load_yaml


def test_an_own_key_overrides_the_merged_one():
    doc = load_yaml("base: &b {x: 1, y: 2}\nsvc:\n  <<: *b\n  x: 2\n", file="f.yaml")
    assert doc["svc"] == {"x": 2, "y": 2}
    assert doc["base"] == {"x": 1, "y": 2}  # the anchored mapping is not changed


def test_the_first_mapping_of_a_merged_list_wins():
    doc = load_yaml("a: &a {x: 1}\nb: &b {x: 2, z: 3}\nsvc: {<<: [*a, *b]}\n")
    assert doc["svc"] == {"x": 1, "z": 3}


def test_a_mapping_merged_before_it_is_read_keeps_its_own_override():
    # &c is flattened as z's merge source before w reads it through the alias.
    doc = load_yaml("base: &b {x: 1, y: 2}\nz: {<<: &c {<<: *b, y: 5}, q: 1}\nw: *c\n")
    assert doc["z"] == {"x": 1, "y": 5, "q": 1}
    assert doc["w"] == {"x": 1, "y": 5}


def test_a_duplicate_own_key_beside_a_merge_is_still_refused():
    with pytest.raises(ConfigError) as err:
        load_yaml("base: &b {x: 1}\nsvc:\n  <<: *b\n  y: 2\n  y: 3\n", file="f.yaml")
    (problem,) = err.value.problems
    assert (problem.file, problem.line, problem.path) == ("f.yaml", 5, "svc.y")
    assert "duplicate key (first defined on line 4)" in problem.message


KEYS = st.sampled_from("abcd")
MAPS = st.dictionaries(KEYS, st.integers(0, 9), max_size=4)


@settings(max_examples=200, deadline=None)
@given(sources=st.lists(MAPS, min_size=1, max_size=3), own=MAPS, as_list=st.booleans())
def test_merges_read_as_pyyaml_reads_them(sources, own, as_list):
    """Documents without duplicate own keys read as PyYAML reads them (values and key
    order), whatever the merged and own keys share."""
    flow = [yaml.safe_dump(m, default_flow_style=True).strip() for m in sources]
    lines = [f"s{i}: &s{i} {text}" for i, text in enumerate(flow)]
    refs = [f"*s{i}" for i in range(len(sources))]
    merge = f"[{', '.join(refs)}]" if as_list or len(refs) > 1 else refs[0]
    body = "".join(f"  {k}: {v}\n" for k, v in own.items())
    text = "\n".join(lines) + f"\nsvc:\n  <<: {merge}\n{body}"
    ours, theirs = load_yaml(text), yaml.safe_load(text)
    assert ours == theirs
    assert list(ours["svc"]) == list(theirs["svc"])
