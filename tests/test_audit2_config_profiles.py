"""Second audit, custom profile files: errors name the file, the line and the key path.

Activation refused a value a custom profile set naming the profile file but no line
(``cfgcore validate`` found the line on its own); a ``${VAR}`` that did not resolve in
any file named no line either; profile-file errors (circular or missing ``extends``)
named no line, and two files defining one profile silently let one of them win.
"""

from __future__ import annotations

import pytest

from cfgcore.config.manager import ConfigurationManager
from cfgcore.errors import ConfigError

YAML_PROFILE = """\
kind: deployment
name: black_friday
description: peak
overrides:
  performance:
    worker_threads: "lots"
"""
JSON_PROFILE = """\
{"kind": "deployment", "name": "black_friday",
 "overrides": {"performance": {
   "worker_threads": "lots"}}}
"""
TOML_PROFILE = """\
kind = "deployment"
name = "black_friday"

[overrides.performance]
worker_threads = "lots"
"""


def _config_dir(tmp_path, name, text):
    (tmp_path / "development.yaml").write_text("performance:\n  worker_threads: 4\n")
    (tmp_path / "profiles").mkdir(exist_ok=True)
    (tmp_path / "profiles" / name).write_text(text)
    return tmp_path


def _refusal(manager, **kwargs):
    with pytest.raises(ConfigError) as info:
        manager.load_environment_config(**kwargs)
    return info.value


@pytest.mark.parametrize(
    "name, text, line",
    [("bf.yaml", YAML_PROFILE, 6), ("bf.json", JSON_PROFILE, 3), ("bf.toml", TOML_PROFILE, 5)],
)
def test_activation_names_the_profile_files_line_and_key_path(tmp_path, name, text, line):
    d = _config_dir(tmp_path, name, text)
    m = ConfigurationManager(d, environment="development", profile="black_friday", environ={})
    err = _refusal(m)
    [problem] = err.problems
    assert problem.file == str(d / "profiles" / name)
    assert problem.line == line
    assert problem.path == "performance.worker_threads"
    assert f"{name}:{line}: performance.worker_threads" in str(err)


def test_geographic_profile_and_a_hot_reload_name_the_line(tmp_path):
    good = "kind: geographic\nname: mars\noverrides:\n  performance:\n    worker_threads: 8\n"
    d = _config_dir(tmp_path, "mars.yaml", good)
    m = ConfigurationManager(d, environment="development", geographic_profile="mars", environ={})
    m.load_environment_config()
    assert m.get("performance.worker_threads") == 8
    # explain() points at the profile's line too
    assert m.explain("performance.worker_threads").winner.line == 5
    (d / "profiles" / "mars.yaml").write_text(good.replace("8", "[1, 2]"))
    assert m.reload() is False
    [problem] = m.last_error.problems
    assert (problem.file, problem.line) == (str(d / "profiles" / "mars.yaml"), 5)
    assert m.get("performance.worker_threads") == 8  # the last good state stays


def test_unresolved_variable_names_the_line_in_a_profile_and_in_a_file(tmp_path):
    d = _config_dir(
        tmp_path,
        "bf.yaml",
        "name: bf\noverrides:\n  performance:\n    worker_threads: ${NO_SUCH_VAR}\n",
    )
    m = ConfigurationManager(d, environment="development", profile="bf", environ={})
    [problem] = _refusal(m).problems
    assert (problem.path, problem.line) == ("performance.worker_threads", 4)
    assert "NO_SUCH_VAR" in problem.message
    (d / "base.yaml").write_text("app:\n  name: svc\n  secret: ${NO_SUCH_VAR}\n")
    m = ConfigurationManager(d, environment="development", environ={})
    [problem] = _refusal(m).problems
    assert (problem.file, problem.path, problem.line) == (str(d / "base.yaml"), "app.secret", 3)


def test_circular_and_missing_extends_name_the_line(tmp_path):
    d = _config_dir(tmp_path, "a.yaml", "name: a\nextends: b\noverrides: {}\n")
    (d / "profiles" / "b.yaml").write_text("name: b\ndescription: x\nextends: a\noverrides: {}\n")
    m = ConfigurationManager(d, environment="development", profile="a", environ={})
    [problem] = _refusal(m).problems
    assert problem.message == "circular extends" and problem.line in (2, 3)
    (d / "profiles" / "b.yaml").unlink()
    (d / "profiles" / "a.yaml").write_text("name: a\n\nextends: nowhere\noverrides: {}\n")
    [problem] = _refusal(m).problems
    assert (problem.path, problem.line) == ("extends", 3)
    assert problem.message.startswith("unknown deployment profile 'nowhere'")  # no "<input>:"


def test_two_files_defining_one_profile_are_refused(tmp_path):
    d = _config_dir(
        tmp_path, "a.yaml", "name: peak\noverrides: {performance: {worker_threads: 1}}\n"
    )
    (d / "profiles" / "b.yaml").write_text(
        "name: Peak\noverrides: {performance: {worker_threads: 2}}\n"
    )
    m = ConfigurationManager(d, environment="development", profile="peak", environ={})
    [problem] = _refusal(m).problems
    assert problem.file == str(d / "profiles" / "b.yaml") and problem.line == 1
    assert "also defined in" in problem.message and "a.yaml" in problem.message
    # One of each kind is two profiles, not a clash.
    (d / "profiles" / "b.yaml").write_text(
        "kind: geographic\nname: peak\noverrides: {performance: {worker_threads: 2}}\n"
    )
    m.load_environment_config()
    assert m.get("performance.worker_threads") == 1
