"""Fix 10: hostile configuration and ``.env`` files found by an audit, each refused with
the file and line, and the last good configuration kept on reload.

* A YAML file holding a character YAML does not allow (NUL, another control
  character, U+FFFE) was refused with PyYAML's two-line text (``in "<unicode string>",
  position 8``) and no line.
* A JSON file's decoder message lost its place: "invalid JSON: Invalid control
  character at". The column is now said.
* A key longer than 1,024 characters (YAML's bound on a key before ``:``) was refused as
  "could not find expected ':'"; the message now says what it probably is and how to
  write such a key.
* A ``.env`` value holding a NUL character was served (``'a\\x00b'``): no environment
  variable can hold one, and a program given the value cuts it short.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.config.manager import ConfigurationManager
from cfgcore.errors import ConfigError
from tests.fuzz import examples


@pytest.fixture
def directory(tmp_path):
    d = tmp_path / "config"
    d.mkdir()
    (d / "base.yaml").write_text("app:\n  name: svc\n  port: 80\n")
    (d / "production.yaml").write_text("{}\n")
    return d


def _reload_refused(directory, name, data):
    if name != "production.yaml":
        (directory / "production.yaml").unlink()
        (directory / name).write_text("{}\n")
    m = ConfigurationManager(str(directory), environ={}, validate=False)
    m.load_environment_config("production")
    (directory / name).write_bytes(data)
    assert m.reload() is False
    assert m.get("app.name") == "svc"  # the last good configuration stays
    (problem,) = m.last_error.problems
    assert problem.file == str(directory / name)
    return problem


@settings(max_examples=examples(30), deadline=None)
@given(
    char=st.sampled_from(["\x00", "\x01", "\x07", "\x1b", "\x7f", "\ufffe", "\uffff"]),
    before=st.integers(0, 5),
)
def test_a_character_yaml_refuses_is_named_with_its_line(tmp_path_factory, char, before):
    directory = tmp_path_factory.mktemp("c")
    (directory / "base.yaml").write_text("app:\n  name: svc\n")
    (directory / "production.yaml").write_text("{}\n")
    text = "app:\n" + "".join(f"  k{i}: {i}\n" for i in range(before)) + f"  bad: a{char}b\n"
    problem = _reload_refused(directory, "production.yaml", text.encode("utf-8"))
    assert problem.line == before + 2
    if char == "\x00":  # judged before YAML reads it, as in every text file (_encoding)
        assert problem.message.startswith("a NUL character (byte ")
    else:
        assert f"character U+{ord(char):04X} is not allowed" in problem.message
    assert "\n" not in problem.message and "<unicode string>" not in problem.message


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        (b'{"app": {"name": "a\x01b"}}', 1, "Invalid control character (column 20)"),
        (b'{"app":\n  {"name": "a\tb"}}', 2, "Invalid control character (column 14)"),
    ],
)
def test_a_json_error_says_where(directory, text, line, message):
    problem = _reload_refused(directory, "production.json", text)
    assert problem.line == line
    assert message in problem.message
    assert not problem.message.endswith(" at")


def test_a_nul_in_a_dotenv_value_is_refused_naming_the_file_and_line(tmp_path, directory):
    os.chmod(tmp_path, 0o755)
    env = tmp_path / ".env"
    env.write_bytes(b"# values\nCFGCORE__APP__NAME=a\x00b\n")
    os.chmod(env, 0o600)
    m = ConfigurationManager(str(directory), validate=False)
    with pytest.raises(ConfigError) as info:
        m.load_environment_config("production")
    (problem,) = info.value.problems
    assert (problem.file, problem.line) == (str(env), 2)
    assert "NUL character" in problem.message
    assert "a\x00b" not in str(info.value)  # the value itself is never shown


@pytest.mark.parametrize("flow", [False, True])
def test_a_key_past_yamls_length_bound_says_so(directory, flow):
    key = "k" * 1100
    text = f"app:\n  name: x\nother: {{{key}: 1}}\n" if flow else f"app:\n  name: x\n{key}: 1\n"
    problem = _reload_refused(directory, "production.yaml", text.encode())
    assert problem.line == 3
    assert "a key longer than 1,024 characters?" in problem.message
    assert "'? <key>' on one line, ': <value>' on the next" in problem.message
    (directory / "production.yaml").write_text(f"? {key}\n: 1\n")  # as it says: it loads
    m = ConfigurationManager(str(directory), environ={}, validate=False)
    assert m.load_environment_config("production")[key] == 1
