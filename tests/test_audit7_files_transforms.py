"""Round 7, the seed's ConfigurationTransformer API given a deep or self-containing tree.

``ConfigurationTransformer().transform(raw_config, [...])`` is public (the spec's
example). Files never nest past 100 levels, but a tree handed to it directly may, or
may contain itself, and the walk recursed into a bare ``RecursionError``. It is now a
``TransformError`` naming where, as for any value a step cannot transform.
"""

from __future__ import annotations

from typing import Any

import pytest

from cfgcore.config.files import MAX_DEPTH
from cfgcore.config_utils import ConfigurationTransformer
from cfgcore.errors import TransformError

STEPS = ["env_var_substitution", "type_conversion", "duration_parsing", "size_parsing"]


def _deep(levels: int, leaf: Any = "${A}") -> dict[str, Any]:
    tree: Any = leaf
    for _ in range(levels):
        tree = {"k": tree}
    return tree


def test_a_tree_deeper_than_any_file_is_a_transform_error():
    with pytest.raises(TransformError) as err:
        ConfigurationTransformer(env={"A": "1"}).transform(_deep(5000), STEPS)
    (problem,) = err.value.problems
    assert problem.path.startswith("k.k.k") and "nested more than" in problem.message


def test_a_tree_containing_itself_is_a_transform_error():
    tree: dict[str, Any] = {"a": "${A}"}
    tree["self"] = [tree]
    with pytest.raises(TransformError) as err:
        ConfigurationTransformer(env={"A": "1"}).transform(tree)
    assert err.value.problems[0].path.startswith("self.0.self")


def test_the_deepest_tree_a_file_may_hold_is_still_transformed():
    # tree_problem accepts containers at depths 0..MAX_DEPTH - 1: so does the walk.
    out = ConfigurationTransformer(env={"A": "30s"}).transform(_deep(MAX_DEPTH), STEPS)
    node = out
    for _ in range(MAX_DEPTH):
        node = node["k"]
    assert node == 30.0
