"""Review 7: a YAML mapping merging (``<<``) a mapping it is inside.

Round 7 (00ef317) made ``y: &y {<<: *y}`` a YAML error naming its line. A mapping that
merges one of the mappings it sits in (``a: &a {x: 1, b: {<<: *a}}``) contains itself
just the same once merged, and was still refused as "document expands to more than
5,000,000 values (nested YAML aliases?)" with no line: wrong about the size (the file
is one line) and no help finding it. It is now the same error, naming the line of the
``<<``. Merges of mappings defined beside or before it are unchanged.
"""

from __future__ import annotations

import pytest

from cfgcore.config.files import parse_text
from cfgcore.errors import ConfigError
from cfgcore.yamlio import load_yaml


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("a: &a\n  x: 1\n  b:\n    <<: *a\n", 4),
        ("top:\n  a: &a\n    x: 1\n    b:\n      c:\n        <<: [*a]\n", 6),
        ("a: &a {x: 1, s: {<<: *a}}\n", 1),
        ("y: &y {<<: *y}\n", 1),
    ],
    ids=["block-parent", "grandparent-in-list", "flow-parent", "itself"],
)
def test_merging_a_mapping_it_is_inside_is_an_error_with_its_line(text, line):
    with pytest.raises(ConfigError) as err:
        parse_text(text, "yaml", "svc.yaml")
    (problem,) = err.value.problems
    assert (problem.file, problem.line) == ("svc.yaml", line)
    assert "cannot merge ('<<')" in problem.message
    assert "expands" not in problem.message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "a: &a {x: 1}\nb: &b {<<: *a, y: 2}\nc: {<<: [*a, *b], z: 3}\n",
            {"a": {"x": 1}, "b": {"x": 1, "y": 2}, "c": {"x": 1, "y": 2, "z": 3}},
        ),
        ("a: &a {x: 1}\nb: {y: {<<: *a}}\n", {"a": {"x": 1}, "b": {"y": {"x": 1}}}),
        ("x: {s: &s {v: 1}, <<: *s}\n", {"x": {"v": 1, "s": {"v": 1}}}),
        (
            "defaults: &d\n  timeout: 5\nsvc:\n  db:\n    <<: *d\n    host: h\n",
            {"defaults": {"timeout": 5}, "svc": {"db": {"timeout": 5, "host": "h"}}},
        ),
    ],
    ids=["chain", "beside", "own-child", "block"],
)
def test_merges_of_mappings_beside_or_before_it_are_unchanged(text, expected):
    assert load_yaml(text, file="svc.yaml") == expected
