"""Round 7, hostile text: strings that are not valid Unicode.

A JSON file may spell half of a UTF-16 surrogate pair (``"\\ud800"``), and Python hands a
non-UTF-8 environment variable over with its bytes as lone surrogates (``'\\udcff'``).
Either was accepted and served; then every writer of the configuration failed on it:
``cfgcore show --format json`` and ``cfgcore get`` died with "'utf-8' codec can't
encode character '\\ud800'" naming neither file nor key, and an application writing the
value to a log, a JSON body or Redis raised. YAML and TOML already refused such text at
parse time; the one judge of values (``files.tree_problem``) now refuses it for every
way in, naming the file and the key path.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.config.files import parse_text, tree_problem
from cfgcore.config.manager import ConfigurationManager
from cfgcore.errors import ConfigError
from tests.conftest import run_cli
from tests.fuzz import examples


def _config_dir(tmp_path, base: str, name: str = "base.json"):
    (tmp_path / name).write_text(base)
    (tmp_path / "development.yaml").write_text("{}\n")
    return tmp_path


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ('{"db": {"name": "\\ud800"}}', "db.name"),
        ('{"db": {"names": ["ok", "x\\udfffy"]}}', "db.names.1"),
        ('{"db": {"\\udc80": 1}}', "db.\udc80"),
    ],
    ids=["value", "list-item", "key"],
)
def test_a_json_lone_surrogate_is_refused_with_file_line_and_key_path(text, path):
    with pytest.raises(ConfigError) as err:
        parse_text(text, "json", "svc.json")
    (problem,) = err.value.problems
    assert problem.file == "svc.json"
    assert problem.path.encode("utf-8", "backslashreplace") == path.encode(
        "utf-8", "backslashreplace"
    )
    assert "not valid Unicode" in problem.message
    # the message itself can be written out (logs, the audit log, a terminal)
    str(err.value).encode("utf-8")


def test_a_json_surrogate_pair_is_one_character_and_accepted():
    assert parse_text('{"a": "\\ud83d\\ude00"}', "json", "f.json") == {"a": "\U0001f600"}


def test_cfgcore_show_and_get_refuse_the_file_instead_of_crashing_on_output(tmp_path, capsys):
    d = _config_dir(tmp_path, '{"db": {"name": "\\ud800"}}')
    for argv in (
        ["show", "--format", "json", "--config-dir", str(d), "-e", "development"],
        ["get", "db.name", "--config-dir", str(d), "-e", "development"],
    ):
        code, out, err = run_cli(capsys, *argv)
        assert code != 0
        assert "base.json" in err and "db.name" in err, err
        assert "codec" not in err


def test_a_non_utf8_environment_variable_is_refused_naming_it(tmp_path):
    d = _config_dir(tmp_path, '{"db": {"name": "x"}}')
    m = ConfigurationManager(
        d, environment="development", environ={"CFGCORE__DB__NAME": "caf\udce9"}
    )
    with pytest.raises(ConfigError) as err:
        m.load_environment_config()
    text = str(err.value)
    assert "CFGCORE__DB__NAME" in text and "db.name" in text
    text.encode("utf-8")  # the error itself can be logged


def test_a_substituted_reference_holding_undecodable_bytes_is_refused(tmp_path):
    d = _config_dir(tmp_path, '{"db": {"name": "${DB_NAME}"}}')
    m = ConfigurationManager(d, environment="development", environ={"DB_NAME": "\udcff"})
    with pytest.raises(ConfigError) as err:
        m.load_environment_config()
    assert "base.json" in str(err.value) and "db.name" in str(err.value)


def test_a_reload_bringing_a_lone_surrogate_keeps_the_last_good_version(tmp_path):
    d = _config_dir(tmp_path, '{"db": {"name": "x"}}')
    m = ConfigurationManager(d, environment="development", environ={})
    m.load_environment_config()
    (d / "base.json").write_text('{"db": {"name": "\\ud800"}}')
    assert m.reload() is False
    assert m.get("db.name") == "x"
    assert "db.name" in str(m.last_error)
    json.dumps(m.get("db"), ensure_ascii=False).encode("utf-8")


def test_update_config_refuses_a_lone_surrogate_and_keeps_the_value(tmp_path):
    d = _config_dir(tmp_path, '{"db": {"name": "x"}}')
    m = ConfigurationManager(d, environment="development", environ={})
    m.load_environment_config()
    assert m.update_config("db.name", "\ud800") is False
    assert m.get("db.name") == "x"


@settings(max_examples=examples(150), deadline=None)
@given(
    st.text(
        st.one_of(st.characters(), st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)),
        max_size=20,
    )
)
def test_tree_problem_accepts_exactly_the_text_utf8_can_hold(text):
    try:
        text.encode("utf-8")
        encodable = True
    except UnicodeEncodeError:
        encodable = False
    for tree in ({"k": text}, {"k": [text]}, {text or "k": 1}):
        assert (tree_problem(tree) is None) is encodable


@pytest.mark.parametrize("key_path", ["db.\udcff", "\ud800", "db.name.\udc80x"])
def test_update_config_refuses_a_key_path_that_is_not_unicode_without_raising(tmp_path, key_path):
    # The refusal went to the audit log with the key path in it, which raised
    # UnicodeEncodeError out of update_config; without an audit log the key was set.
    d = _config_dir(tmp_path, '{"db": {"name": "x"}}')
    audit = tmp_path / "audit.jsonl"
    m = ConfigurationManager(d, environment="development", environ={}, audit_log=audit)
    m.load_environment_config()
    assert m.update_config(key_path, "y") is False
    assert m.get("db") == {"name": "x"}
    assert "not valid Unicode" in str(m.last_error)
    str(m.last_error).encode("utf-8")
    assert "not valid Unicode" in audit.read_text(encoding="utf-8").splitlines()[-1]
    assert m.update_config("db.name", "y") is True  # the audit log still takes changes
