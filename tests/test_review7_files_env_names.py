"""Review 7: a CFGCORE__ variable whose name is not valid Unicode.

Round 7 (aa0548c) refused text that is not valid Unicode "for every way in", naming
the variable for a CFGCORE__ variable's value. A variable whose *name* holds bytes
that are not UTF-8 (Python hands them over as lone surrogates) became a key that no
writer can write; it was refused only later, by validation, naming neither the
variable nor the environment ("db.n\\udcffame: key is not valid Unicode (fix: Use a
value that fits at ...)"), and this layer's own messages (a malformed name) quoted
the raw name, so the error itself could not be written. The environment layer now
refuses such a variable itself, naming it escaped.
"""

from __future__ import annotations

import pytest

from cfgcore.config.environ import env_layer
from cfgcore.config.manager import ConfigurationManager
from cfgcore.errors import ConfigError


@pytest.mark.parametrize(
    ("var", "shown"),
    [
        ("CFGCORE__DB__N\udcffAME", "CFGCORE__DB__N\\udcffAME"),
        ("CFGCORE__\udcff____X", "CFGCORE__\\udcff____X"),
    ],
    ids=["new-key", "malformed"],
)
def test_the_variable_is_refused_by_the_environment_layer_naming_it(var, shown):
    with pytest.raises(ConfigError) as err:
        env_layer({var: "1", "CFGCORE__DB__PORT": "2"}, "CFGCORE", {"db": {"port": 1}})
    (problem,) = err.value.problems
    assert problem.file == "<environment>"
    assert shown in problem.message and "not valid Unicode" in problem.message
    str(err.value).encode("utf-8")  # the error itself can be written


def test_a_reload_with_such_a_variable_keeps_the_last_good_version(tmp_path):
    (tmp_path / "base.yaml").write_text("db:\n  port: 5432\n")
    (tmp_path / "development.yaml").write_text("{}\n")
    environ: dict[str, str] = {"CFGCORE__DB__HOST": "h\u00e9"}  # valid non-ASCII: fine
    m = ConfigurationManager(tmp_path, environment="development", environ=environ)
    m.disable_audit()
    m.load_environment_config()
    assert m.get("db.host") == "h\u00e9"
    environ["CFGCORE__DB__N\udcffAME"] = "x"
    assert m.reload() is False
    assert m.get("db") == {"port": 5432, "host": "h\u00e9"}
    text = str(m.last_error)
    assert "CFGCORE__DB__N\\udcffAME" in text and "<environment>" in text
    text.encode("utf-8")


def test_names_and_values_in_other_scripts_are_still_set():
    layer = env_layer(
        {"CFGCORE__SVC__NAME": "設定 😀", "CFGCORE__SVC__CAFÉ": "e\u0301"},
        "CFGCORE",
        {"svc": {"name": "x"}},
    )
    assert layer.data == {"svc": {"name": "設定 😀", "café": "e\u0301"}}
