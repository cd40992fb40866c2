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
from tests.fuzz import examples


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


# Keys of one and of several characters: PyYAML 6.0.4 tells merged keys apart by the
# identity of their str objects, so a one-character key (a cached str) is deduplicated
# and a longer one is not, and there the later mapping of a merged list wins.
KEYS = st.sampled_from(["a", "b", "alpha", "beta"])
MAPS = st.dictionaries(KEYS, st.integers(0, 9), max_size=4)


def _merge_type(sources: list[dict], own: dict) -> dict:
    """What the YAML merge key type reads (yaml.org/type/merge.html), in the key order
    of PyYAML 6.0.3's reading: the merged mappings last to first, each overriding the
    ones after it in the list, then the mapping's own keys overriding them all."""
    out: dict = {}
    for source in reversed(sources):
        out.update(source)
    out.update(own)
    return out


@settings(max_examples=examples(200), deadline=None)
@given(sources=st.lists(MAPS, min_size=1, max_size=3), own=MAPS, as_list=st.booleans())
def test_merges_read_as_the_merge_type_says(sources, own, as_list):
    """Documents without duplicate own keys read as the merge type says (values, and
    the key order PyYAML 6.0.3 gives), whatever the merged and own keys share. Not
    compared with the installed PyYAML: its 6.0.4 lets a later merged mapping win."""
    flow = [yaml.safe_dump(m, default_flow_style=True, sort_keys=False).strip() for m in sources]
    lines = [f"s{i}: &s{i} {text}" for i, text in enumerate(flow)]
    refs = [f"*s{i}" for i in range(len(sources))]
    merge = f"[{', '.join(refs)}]" if as_list or len(refs) > 1 else refs[0]
    body = "".join(f"  {k}: {v}\n" for k, v in own.items())
    text = "\n".join(lines) + f"\nsvc:\n  <<: {merge}\n{body}"
    ours, want = load_yaml(text), _merge_type(sources, own)
    assert ours["svc"] == want
    assert list(ours["svc"]) == list(want)
    assert [ours[f"s{i}"] for i in range(len(sources))] == sources


def test_the_first_merged_mapping_wins_for_long_keys_too():
    # PyYAML 6.0.4's own loader answers alpha: 2 here.
    text = "s0: &s0 {alpha: 1, beta: 1}\ns1: &s1 {alpha: 2, gamma: 2}\nsvc: {<<: [*s0, *s1]}\n"
    assert load_yaml(text)["svc"] == {"alpha": 1, "beta": 1, "gamma": 2}
