"""Round 7: ``__replace__`` takes true or false, nothing else.

A section holding ``__replace__: true`` replaces the one below it instead of merging
into it. Any value was taken for true: ``__replace__: no`` (text to cfgcore's YAML 1.2
reading, as ``yes``/``on``/``off`` are), ``"false"`` in quotes, ``0`` given as text
by an environment variable's JSON... each wiped every key of the section the layer
meant to merge into, silently. Such a value is now refused, naming the file, line and
key path, wherever a tree comes from (files, profiles, ``CFGCORE__`` JSON,
``update_config``), and the last good configuration stays served.
"""

from __future__ import annotations

import pytest

from cfgcore.config.files import parse_text, tree_problem
from cfgcore.config.manager import ConfigurationManager
from cfgcore.errors import ConfigError


def _dir(tmp_path, overlay: str):
    (tmp_path / "base.yaml").write_text("db:\n  host: db.internal\n  port: 5432\n")
    (tmp_path / "development.yaml").write_text(overlay)
    return tmp_path


@pytest.mark.parametrize(
    "value", ["no", "yes", "off", "'false'", "'true'", "0", "1", "[true]", "{a: 1}"]
)
def test_a_replace_marker_that_is_not_a_boolean_is_refused_with_file_line_and_path(value):
    text = f"db:\n  __replace__: {value}\n  port: 6432\n"
    with pytest.raises(ConfigError) as err:
        parse_text(text, "yaml", "development.yaml")
    (problem,) = err.value.problems
    assert (problem.file, problem.line, problem.path) == ("development.yaml", 2, "db.__replace__")
    assert "takes true or false" in problem.message


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("true", {"port": 6432}),
        ("false", {"host": "db.internal", "port": 6432}),
        ("", {"host": "db.internal", "port": 6432}),  # null: no marker
    ],
)
def test_a_boolean_marker_still_replaces_or_merges(tmp_path, value, expected):
    d = _dir(tmp_path, f"db:\n  __replace__: {value}\n  port: 6432\n")
    m = ConfigurationManager(d, environment="development", environ={})
    m.load_environment_config()
    assert m.get("db") == expected


def test_a_reload_with_replace_no_keeps_the_section(tmp_path):
    d = _dir(tmp_path, "db:\n  port: 6432\n")
    m = ConfigurationManager(d, environment="development", environ={})
    m.load_environment_config()
    (d / "development.yaml").write_text("db:\n  __replace__: no\n  port: 7432\n")
    assert m.reload() is False
    assert m.get("db") == {"host": "db.internal", "port": 6432}
    assert "development.yaml:2" in str(m.last_error)


def test_an_environment_variable_and_update_config_are_judged_alike(tmp_path):
    d = _dir(tmp_path, "{}\n")
    environ = {"CFGCORE__DB": '{"__replace__": "yes", "port": 1}'}
    m = ConfigurationManager(d, environment="development", environ=environ)
    with pytest.raises(ConfigError, match="CFGCORE__DB"):
        m.load_environment_config()
    environ.clear()
    m.load_environment_config()
    assert m.update_config("db", {"__replace__": "no", "port": 1}) is False
    assert m.get("db") == {"host": "db.internal", "port": 5432}


def test_tree_problem_accepts_only_booleans_and_null_as_the_marker():
    for ok in (True, False, None):
        assert tree_problem({"a": {"__replace__": ok}}) is None
    for bad in ("", "true", 1, 0.0, [], {}):
        found = tree_problem({"a": {"__replace__": bad}})
        assert found is not None
        assert found[0] == "a.__replace__" and "takes true or false" in found[1]
