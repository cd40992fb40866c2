"""Layered configuration: the cases the reference model (test_layers_model.py) found,
each as a plain example."""

from __future__ import annotations

import os

import pytest

from cfgcore.config.manager import ConfigurationManager
from cfgcore.config.tree import thaw
from cfgcore.errors import ConfigError


def _manager(tmp_path, base: str, env: str = "{}\n", environ=None) -> ConfigurationManager:
    (tmp_path / "base.yaml").write_text(base)
    (tmp_path / "development.yaml").write_text(env)
    m = ConfigurationManager(
        str(tmp_path),
        environ=environ or {},
        validate=False,
        flags_file=str(tmp_path / "none.json"),
    )
    return m


@pytest.fixture
def made(tmp_path):
    managers = []

    def make(*args, **kwargs):
        m = _manager(tmp_path, *args, **kwargs)
        managers.append(m)
        return m

    yield make
    for m in managers:
        m.close()


def test_explain_into_a_list_names_the_leaf_and_the_layer_that_replaced_it(made):
    m = made("a:\n  - b: 1\n    c: 2\n", "a: [5]\n")
    m.load_environment_config()
    gone = m.explain("a.0.b")
    # The environment's list replaced the base's: the key is not set, and the layer
    # that decided it says so (it said "set by development.yaml = 5").
    assert not gone.found
    assert gone.winner is not None and gone.winner.status == "replaced"
    assert gone.winner.kind == "environment"

    m = made("a:\n  - b: 1\n    c: 2\n")
    m.load_environment_config()
    leaf = m.explain("a.0.c")
    assert leaf.found and leaf.winner is not None
    assert (leaf.winner.status, leaf.winner.value, leaf.winner.line) == ("set", 2, 3)
    missing = m.explain("a.0.zzz")
    assert not missing.found and missing.winner is not None
    assert missing.winner.status == "replaced"


def test_explain_shows_the_value_as_served(made):
    m = made("a: '\\__delete__'\nb: {c: 1, __replace__: true}\n")
    m.load_environment_config()
    assert m.get("a") == "__delete__"
    assert m.explain("a").winner.value == "__delete__"
    assert m.explain("b").winner.value == {"c": 1}
    assert not m.explain(("b", "__replace__")).found


def test_a_variable_over_a_key_deleted_below_reads_as_a_new_key(made):
    # base.yaml's {"b": "__delete__"} with nothing below serves no a.b: the variable
    # sets a new key (it was kept as the text "5" over the marker's text, and a key
    # below it was refused as "below a.b, which is a str").
    m = made("a:\n  b: __delete__\n  z: 1\n", environ={"CFGCORE__A__B": "5"})
    assert thaw(m.load_environment_config()) == {"a": {"z": 1, "b": 5}}
    m = made("a:\n  b: __delete__\n", environ={"CFGCORE__A__B__C": "5"})
    assert thaw(m.load_environment_config()) == {"a": {"b": {"c": 5}}}


def test_an_empty_value_over_a_section_that_serves_nothing_is_no_wiped_section(made):
    m = made("a:\n  b: __delete__\n", "a:\n")
    assert thaw(m.load_environment_config()) == {"a": None}
    m = made("a: {b: 1}\n", "a:\n")
    with pytest.raises(ConfigError, match="empty, which would replace"):
        m.load_environment_config()


def test_update_config_refuses_replace_as_a_key(made, tmp_path):
    m = made("a: {x: 1, y: 2}\n")
    m.load_environment_config()
    assert m.update_config("a.__replace__", True) is False
    assert "__replace__" in str(m.last_error)
    assert thaw(m.config) == {"a": {"x": 1, "y": 2}}
    (tmp_path / "base.yaml").write_text("a: {x: 1, y: 2}\nr: 1\n")
    assert m.reload()
    assert thaw(m.config) == {"a": {"x": 1, "y": 2}, "r": 1}


def test_an_update_below_a_runtime_null_survives_a_reload_as_served(made, tmp_path):
    m = made("a: {x: 1}\n")
    m.load_environment_config()
    assert m.update_config("a", None)
    assert m.update_config("a.c", 2)
    assert thaw(m.config) == {"a": {"c": 2}}
    (tmp_path / "base.yaml").write_text("a: {x: 1}\nr: 1\n")
    assert m.reload()
    # The file's a.x came back under the update (a.x was cleared by the null).
    assert thaw(m.config) == {"a": {"c": 2}, "r": 1}
    assert m.explain("a.c").winner.kind == "runtime"


def test_variables_read_yaml_floats_and_json_keys_keep_their_types(made):
    m = made("db: {ratio: 0.5, port: 5432, host: h}\n", environ={"CFGCORE__DB__RATIO": "1."})
    assert m.load_environment_config()["db"]["ratio"] == 1.0
    m = made("db: {ratio: 0.5, port: 5432}\n", environ={"CFGCORE__DB": '{"port": "abc"}'})
    with pytest.raises(ConfigError) as err:
        m.load_environment_config()
    text = str(err.value)
    assert "db.port" in text and "CFGCORE__DB " in text and "expected int" in text
    assert "abc" not in text  # (a value may be a secret)
    m = made(
        "db: {ratio: 0.5, port: 5432}\n",
        environ={"CFGCORE__DB": '{"port": "abc", "__replace__": true}'},
    )
    assert thaw(m.load_environment_config()) == {"db": {"port": "abc"}}
    m = made("db: {port: 5432, host: h}\n", environ={"CFGCORE__DB": '{"port": 6432}'})
    assert thaw(m.load_environment_config()) == {"db": {"port": 6432, "host": "h"}}


def test_variable_names_match_keys_ignoring_case(made, tmp_path):
    m = made(
        "Audio_Quality: {Premium: 320}\n",
        environ={"CFGCORE__AUDIO_QUALITY__PREMIUM": "256", "CFGCORE__NEW__Key": "x"},
    )
    assert thaw(m.load_environment_config()) == {
        "Audio_Quality": {"Premium": 256},
        "new": {"key": "x"},
    }
    origin = m.explain(("Audio_Quality", "Premium")).winner
    assert origin is not None and origin.env_var == "CFGCORE__AUDIO_QUALITY__PREMIUM"
    assert os.path.basename(str(m.explain("new.key").winner.where())) == "$CFGCORE__NEW__Key"


def test_explain_hands_out_no_layer_to_change(made, tmp_path):
    m = made("a: {x: [1, 2]}\n")
    m.load_environment_config()
    assert m.update_config("b", {"l": [1]})
    for key in ("a.x", "b"):
        value = m.explain(key).winner.value
        with pytest.raises(TypeError):
            (value if isinstance(value, list) else value["l"]).append(9)
    (tmp_path / "base.yaml").write_text("a: {x: [1, 2]}\nr: 1\n")
    assert m.reload()
    # The runtime layer's own list was handed out: the append served after a rebuild.
    assert thaw(m.config) == {"a": {"x": [1, 2]}, "b": {"l": [1]}, "r": 1}


def test_explain_finds_quoted_toml_keys_on_their_lines(tmp_path):
    (tmp_path / "base.yaml").write_text("{}\n")
    (tmp_path / "development.toml").write_text(
        'a = 1\n"\\u00e9t\\u00e9" = 2\n\n[hosts."db.internal"]\nport = 5432\n'
        "[hosts.'x]y']\nport = 1\n"
    )
    m = ConfigurationManager(
        str(tmp_path), environ={}, validate=False, flags_file=str(tmp_path / "none.json")
    )
    try:
        m.load_environment_config()
        # A dot inside quotes split the key: the port was explained at line 1.
        assert m.explain(("hosts", "db.internal", "port")).winner.line == 5
        assert m.explain(("hosts", "x]y", "port")).winner.line == 7
        assert m.explain(("été",)).winner.line == 2
    finally:
        m.close()
