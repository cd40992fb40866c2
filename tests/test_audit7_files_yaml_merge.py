"""Round 7, hostile YAML: a mapping that merges itself.

``y: &y {<<: *y}`` made the merge-key expansion flatten the same mapping again and
again until Python's recursion limit, and the file was refused as "nested too deeply to
read (mappings used as keys?)" with no line: wrong about the cause and no help finding
it. It is now a YAML error naming the file and the line of the ``<<``.
"""

from __future__ import annotations

import pytest

from cfgcore.config.manager import ConfigurationManager
from cfgcore.errors import ConfigError
from cfgcore.yamlio import load_yaml


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("y: &y\n  <<: *y\n", 2),
        ("svc:\n  y: &y\n    b: 1\n    <<: [*y]\n", 4),
        ("x: &x {a: 1}\ny: &y\n  c: 1\n  <<: [*x, *y]\n", 4),
    ],
    ids=["direct", "nested", "in-a-list"],
)
def test_a_mapping_merging_itself_is_refused_with_its_line(text, line):
    with pytest.raises(ConfigError) as err:
        load_yaml(text, file="svc.yaml")
    (problem,) = err.value.problems
    assert (problem.file, problem.line) == ("svc.yaml", line)
    assert "merge" in problem.message and "itself" in problem.message


def test_merges_of_other_mappings_still_work():
    text = "x: &x {a: 1}\ny: &y {<<: *x, b: 2}\nz: {<<: [*y, *x], c: 3}\n"
    assert load_yaml(text) == {
        "x": {"a": 1},
        "y": {"a": 1, "b": 2},
        "z": {"a": 1, "b": 2, "c": 3},
    }


def test_a_reload_with_a_self_merge_keeps_the_last_good_version(tmp_path):
    (tmp_path / "base.yaml").write_text("svc: &svc\n  n: 1\n")
    (tmp_path / "development.yaml").write_text("{}\n")
    m = ConfigurationManager(tmp_path, environment="development", environ={})
    m.load_environment_config()
    (tmp_path / "base.yaml").write_text("svc: &svc\n  n: 2\n  <<: *svc\n")
    assert m.reload() is False
    assert m.get("svc.n") == 1
    assert "base.yaml:3" in str(m.last_error)
