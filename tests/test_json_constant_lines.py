"""A JSON configuration file holding ``NaN``, ``Infinity`` or ``-Infinity`` (which JSON
does not have) is refused naming the file, the line and the key path of the first one,
as every other JSON error is: the error named the file only."""

from __future__ import annotations

import json
import shutil

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.config.manager import ConfigurationManager, default_config_dir
from cfgcore.errors import ConfigError
from tests.fuzz import examples

CONSTANTS = ["NaN", "Infinity", "-Infinity"]


def _refusal(tmp_path, text: str):
    d = tmp_path / "config"
    if not d.exists():
        shutil.copytree(default_config_dir(), d)
        (d / "staging.yaml").unlink()
    (d / "staging.json").write_text(text)
    m = ConfigurationManager(str(d), environ={})
    with pytest.raises(ConfigError) as err:
        m.load_environment_config("staging")
    (problem,) = err.value.problems
    return d / "staging.json", problem


@pytest.mark.parametrize("name", CONSTANTS)
def test_the_constant_is_named_with_its_line_and_key_path(tmp_path, name):
    text = (
        "{\n" + f'  "server": {{\n    "note": "{name}",\n    "limits": [1, {name}]\n  }}\n' + "}\n"
    )
    path, problem = _refusal(tmp_path, text)
    assert problem.file == str(path)
    assert (problem.line, problem.path) == (4, "server.limits.1")
    assert f"{name} is not JSON" in problem.message
    assert f"{path}:4: server.limits.1: invalid JSON" in str(ConfigError([problem]))


@settings(max_examples=examples(30), deadline=None)
@given(
    before=st.integers(0, 5),
    key=st.text(st.characters(min_codepoint=97, max_codepoint=122), min_size=1, max_size=6),
    name=st.sampled_from(CONSTANTS),
    later=st.sampled_from(CONSTANTS),
)
def test_the_first_constant_in_the_text_is_named(tmp_path_factory, before, key, name, later):
    entries = [f'  "k{i}": {json.dumps("NaN")}' for i in range(before)]
    entries.append(f'  "{key}_": {{"v": {name}}}')
    entries.append(f'  "zz": [{later}]')
    text = "{\n" + ",\n".join(entries) + "\n}\n"
    _, problem = _refusal(tmp_path_factory.mktemp("j"), text)
    assert (problem.line, problem.path) == (before + 2, f"{key}_.v")
    assert f"{name} is not JSON" in problem.message
