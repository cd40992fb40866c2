"""Round 7, environment overlays: a variable setting a key below a number or text.

``CFGCORE__DB__PORT='{"a": 1}'`` over ``db.port: 5432`` is refused (a variable may not
change a value's kind), but the same change spelled ``CFGCORE__DB__PORT__A=1`` was
accepted: the port silently became the mapping ``{"a": 1}`` and the service read a
dict where it expected an int. It is now refused too, naming the variable and the key
path, and the last good configuration stays served on a reload.
"""

from __future__ import annotations

import pytest

from cfgcore.config.environ import env_layer
from cfgcore.config.manager import ConfigurationManager
from cfgcore.errors import ConfigError

BELOW = {"db": {"port": 5432, "host": "db.internal", "pool": None, "opts": {"ssl": True}}}


@pytest.mark.parametrize(
    ("var", "path", "kind"),
    [
        ("CFGCORE__DB__PORT__A", "db.port", "an int"),
        ("CFGCORE__DB__HOST__NAME__X", "db.host", "a str"),
        ("CFGCORE__DB__OPTS__SSL__MODE", "db.opts.ssl", "a bool"),
    ],
)
def test_a_key_below_a_scalar_is_refused_naming_variable_and_path(var, path, kind):
    with pytest.raises(ConfigError) as err:
        env_layer({var: "1"}, "CFGCORE", BELOW)
    (problem,) = err.value.problems
    assert problem.path == path
    assert var in problem.message and kind in problem.message


def test_the_json_spelling_of_the_same_change_was_already_refused():
    with pytest.raises(ConfigError):
        env_layer({"CFGCORE__DB__PORT": '{"a": 1}'}, "CFGCORE", BELOW)


@pytest.mark.parametrize(
    ("var", "expected"),
    [
        ("CFGCORE__DB__POOL__SIZE", {"db": {"pool": {"size": 5}}}),  # null: a placeholder
        ("CFGCORE__DB__OPTS__LEVEL", {"db": {"opts": {"level": 5}}}),  # below a mapping
        ("CFGCORE__NEW__SECTION__KEY", {"new": {"section": {"key": 5}}}),  # a new key
    ],
)
def test_keys_below_mappings_nulls_and_new_keys_are_still_set(var, expected):
    assert env_layer({var: "5"}, "CFGCORE", BELOW).data == expected


def test_a_reload_with_such_a_variable_keeps_the_last_good_version(tmp_path):
    (tmp_path / "base.yaml").write_text("db:\n  port: 5432\n")
    (tmp_path / "development.yaml").write_text("{}\n")
    environ: dict[str, str] = {}
    m = ConfigurationManager(tmp_path, environment="development", environ=environ)
    m.load_environment_config()
    environ["CFGCORE__DB__PORT__A"] = "1"
    assert m.reload() is False
    assert m.get("db.port") == 5432
    assert "CFGCORE__DB__PORT__A" in str(m.last_error) and "db.port" in str(m.last_error)
