"""Two YAML keys that are different values but one key once read (1 and true, 1 and
1.0, 0 and false) were reported as "duplicate key", which the file plainly does not
hold; the refusal now says what happened and how to keep both (quote them), naming the
keys as YAML spells them (``true``, not ``True``). A real repeat is still "duplicate key"."""

from __future__ import annotations

import pytest

from cfgcore import ConfigurationManager, Engine
from cfgcore.errors import ConfigError, SnapshotError


def _problem(tmp_path, text):
    (tmp_path / "base.yaml").write_text(text)
    (tmp_path / "development.yaml").write_text("{}\n")
    m = ConfigurationManager(tmp_path, environment="development", environ={}, validate=False)
    with pytest.raises(ConfigError) as err:
        m.load_environment_config()
    [problem] = err.value.problems
    return problem


@pytest.mark.parametrize(
    ("keys", "second", "first"),
    [
        (("1", "true"), "true", "1"),
        (("1", "1.0"), "1.0", "1"),
        (("false", "0"), "0", "false"),
        (("1", "1e0"), "1e0", "1"),
        (("true", "1"), "1", "true"),
    ],
)
def test_equal_keys_of_different_types_are_explained(tmp_path, keys, second, first):
    problem = _problem(tmp_path, f"a:\n  {keys[0]}: x\n  {keys[1]}: y\n")
    assert problem.line == 3
    assert f"key {second} is the same key as {first} on line 2 once read" in problem.message
    assert "quote them" in problem.message
    assert "duplicate key" not in problem.message
    assert "True" not in problem.message and "False" not in problem.message


def test_a_repeated_key_is_still_a_duplicate(tmp_path):
    problem = _problem(tmp_path, "a:\n  b: x\n  b: y\n")
    assert problem.path == "a.b" and problem.line == 3
    assert problem.message == "duplicate key (first defined on line 2)"


def test_quoted_they_are_two_text_keys(tmp_path):
    (tmp_path / "base.yaml").write_text("a:\n  '1': x\n  'true': y\n")
    (tmp_path / "development.yaml").write_text("{}\n")
    m = ConfigurationManager(tmp_path, environment="development", environ={}, validate=False)
    assert dict(m.load_environment_config()["a"]) == {"1": "x", "true": "y"}


def test_a_flag_file_says_the_same(tmp_path):
    text = b"flags:\n  f:\n    variants: {a: {1: x, true: y}}\n    default: a\n"
    with pytest.raises(SnapshotError, match="is the same key as 1 on line 3 once read"):
        Engine.from_bytes(text, format="yaml")
