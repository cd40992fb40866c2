"""A JSON syntax error in a value given in an environment variable (``CFGCORE__A__B``)
or on the command line (``cfgcore experiment create --config VARIANT=JSON``) names the
variable or option and the key path inside the value where it is, in the style of a
file's (``database.replicas.1: ... invalid JSON: Expecting ',' delimiter (column
6)``), as a ConfigError or the command's refusal; never another exception, and a reload
keeps the last good configuration. Before, the variable said only that it gave "a
str" where a list was expected, and the option quoted the decoder's own text."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore import ConfigurationManager
from cfgcore.errors import ConfigError
from tests.conftest import run_cli
from tests.fuzz import examples

BASE = "database:\n  replicas: [1]\n  opts: {a: 1}\n  port: 5432\n  name: main\n"


def _manager(tmp_path, environ):
    (tmp_path / "development.yaml").write_text(BASE)
    return ConfigurationManager(tmp_path, environment="development", environ=environ,
                                validate=False)  # fmt: skip


def _problem(tmp_path, environ):
    with pytest.raises(ConfigError) as info:
        _manager(tmp_path, environ).load_environment_config()
    [problem] = info.value.problems
    assert problem.file == "<environment>"
    return problem


@pytest.mark.parametrize(
    ("var", "raw", "path", "what"),
    [
        ("CFGCORE__DATABASE__REPLICAS", "[1, 2", "database.replicas.1",
         "invalid JSON: Expecting ',' delimiter (column 6)"),
        ("CFGCORE__DATABASE__OPTS", '{"a": {"b": [1 2]}}', "database.opts.a.b.0",
         "invalid JSON: Expecting ',' delimiter (column 16)"),
        ("CFGCORE__DATABASE__OPTS", '{"a": tru}', "database.opts.a",
         "invalid JSON: Expecting value (column 7)"),
        ("CFGCORE__DATABASE__OPTS", '{"a": 1,', "database.opts",
         "invalid JSON: Expecting property name enclosed in double quotes (column 9)"),
        ("CFGCORE__DATABASE__OPTS", '{"a":\n {"b": @}}', "database.opts.a.b",
         "invalid JSON: Expecting value (line 2, column 8)"),
        ("CFGCORE__DATABASE__PORT", "[5432", "database.port.0",
         "invalid JSON: Expecting ',' delimiter (column 6)"),
    ],
)  # fmt: skip
def test_an_environment_variable_names_the_key_path_inside_its_json(tmp_path, var, raw, path, what):
    problem = _problem(tmp_path, {var: raw})
    assert problem.path == path
    assert problem.message == f"environment variable {var}: {what}"
    assert str(problem) == f"<environment>: {path}: environment variable {var}: {what}"


def test_the_value_is_not_shown(tmp_path):
    problem = _problem(tmp_path, {"CFGCORE__DATABASE__OPTS": '{"password": "s3cr3t" x}'})
    assert problem.path == "database.opts.password"
    assert "s3cr3t" not in str(problem)


def test_text_stays_text_where_text_may_stand(tmp_path):
    # over a string, or for a new key, the variable's text is the value (as before)
    environ = {"CFGCORE__DATABASE__NAME": "[1, 2", "CFGCORE__DATABASE__NEW": '{"a": 1,'}
    config = _manager(tmp_path, environ).load_environment_config()
    assert config["database"]["name"] == "[1, 2"
    assert config["database"]["new"] == '{"a": 1,'


def test_a_reload_keeps_the_last_good_configuration(tmp_path):
    environ = {"CFGCORE__DATABASE__REPLICAS": "[1, 2]"}
    m = _manager(tmp_path, environ)
    m.load_environment_config()
    assert list(m.get("database.replicas")) == [1, 2]
    environ["CFGCORE__DATABASE__REPLICAS"] = "[1, 2, 3"
    assert m.reload() is False
    assert list(m.get("database.replicas")) == [1, 2]
    assert "database.replicas.2: environment variable CFGCORE__DATABASE__REPLICAS: " \
        "invalid JSON: Expecting ',' delimiter" in str(m.last_error)  # fmt: skip


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner,
                                                                 max_size=4),
    max_leaves=12,
)  # fmt: skip


@settings(max_examples=examples(150), deadline=None)
@given(doc=_json, cut=st.integers(0, 10**6), junk=st.sampled_from(["", "@", "}", ",", "]"]))
def test_any_broken_json_over_a_collection_is_a_config_error_naming_the_variable(
    tmp_path_factory, doc, cut, junk
):
    text = json.dumps([doc])
    at = 1 + cut % max(1, len(text) - 1)
    raw = text[:at] + junk + text[at:]
    try:
        json.loads(raw)
    except ValueError:
        pass
    else:
        return
    tmp_path = tmp_path_factory.mktemp("c")
    problem = _problem(tmp_path, {"CFGCORE__DATABASE__REPLICAS": raw})
    assert problem.path.startswith("database.replicas")
    assert "environment variable CFGCORE__DATABASE__REPLICAS: " in problem.message


def _create(capsys, tmp_path, config):
    return run_cli(
        capsys, "experiment", "create", "t1", "--split", "control=50,treatment=50",
        "--config", "control={}", "--config", config,
        "--state-dir", str(tmp_path / "state"),
    )  # fmt: skip


def test_a_command_line_json_value_names_the_option_and_the_key_path(capsys, tmp_path):
    code, _out, err = _create(capsys, tmp_path, 'treatment={"algo": {"layers": [1 2]}}')
    assert code != 0
    assert "--config treatment: algo.layers.0: invalid JSON: Expecting ',' delimiter " \
        "(column 24)" in err, err  # fmt: skip
    code, _out, err = _create(capsys, tmp_path, 'treatment={"algo": "dnn",}')
    assert code != 0
    assert "--config treatment: algo: invalid JSON:" in err or (
        "--config treatment: invalid JSON: Expecting property name" in err
    ), err
