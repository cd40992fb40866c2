"""A `CFGCORE__` value is judged as what it is, whatever its size: an integer of 5,000
digits is out of range as one of 30 digits is, a JSON list nested 3,000 levels is too
deep as one nested 150 levels is, and a JSON object repeating a key is refused as in a
file. Before, the first two became text silently for a new key (Python cannot convert
them) and the third kept its last value."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore import ConfigurationManager
from cfgcore.errors import ConfigError
from tests.fuzz import examples


def _load(tmp_path, environ):
    (tmp_path / "development.yaml").write_text("app:\n  name: svc\n  n: 1\n")
    m = ConfigurationManager(tmp_path, environment="development", environ=environ, validate=False)
    return m.load_environment_config()


def _problem(tmp_path, environ):
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, environ)
    [problem] = info.value.problems
    assert problem.file == "<environment>"
    return problem


@pytest.mark.parametrize("key", ["APP__NEW", "APP__N", "TOP"])
@pytest.mark.parametrize("digits", [30, 4301, 10_000])
def test_an_integer_past_64_bits_is_refused_at_any_size(tmp_path, key, digits):
    problem = _problem(tmp_path, {f"CFGCORE__{key}": "7" * digits})
    assert f"CFGCORE__{key}" in problem.message
    assert "integer out of range" in problem.message
    assert "7" * 30 not in problem.message  # the value is not shown


@pytest.mark.parametrize("depth", [150, 3000, 100_000])
def test_json_nested_past_the_limit_is_refused_at_any_depth(tmp_path, depth):
    problem = _problem(tmp_path, {"CFGCORE__APP__NEW": "[" * depth + "]" * depth})
    assert "nested more than 100 levels deep" in problem.message


def test_a_json_object_repeating_a_key_is_refused(tmp_path):
    problem = _problem(tmp_path, {"CFGCORE__APP__NEW": '{"a": 1, "b": {"c": 2, "c": 3}}'})
    assert problem.path == "app.new"
    assert "duplicate key 'c'" in problem.message and "CFGCORE__APP__NEW" in problem.message


def test_over_a_text_key_the_variable_stays_text(tmp_path):
    # a string key below takes the variable's text as it is, whatever it looks like
    for raw in ("7" * 5000, "[" * 3000 + "]" * 3000, '{"a": 1, "a": 2}'):
        assert _load(tmp_path, {"CFGCORE__APP__NAME": raw})["app"]["name"] == raw


def test_text_that_is_not_json_stays_text_for_a_new_key(tmp_path):
    assert _load(tmp_path, {"CFGCORE__APP__NEW": "[INFO] {a: 1"})["app"]["new"] == "[INFO] {a: 1"


@settings(max_examples=examples(40), deadline=None)
@given(st.integers(min_value=2**64))
def test_any_integer_past_64_bits_is_refused_however_written(tmp_path_factory, n):
    tmp = tmp_path_factory.mktemp("env")
    text = str(n) if n.bit_length() < 14_000 else "9" * 4400
    problem = _problem(tmp, {"CFGCORE__APP__NEW": text})
    assert "integer out of range" in problem.message
