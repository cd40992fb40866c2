"""A JSON syntax error in a ``CFGCORE__`` value a ``.env`` file sets, or in a ``cfgcore
eval --ctx KEY=VALUE`` value, names where it is as a configuration file's does: the
.env file, the line setting the variable, the variable and the key path inside the
value (``/srv/.env:3: database.replicas.1: environment variable
CFGCORE__DATABASE__REPLICAS: invalid JSON: ...``), and ``argument --ctx:
prefs.langs.0: invalid JSON: ...``. Before, the .env file's error said
``<environment>`` (no file, no line), and ``--ctx`` evaluated the broken JSON as a
string without a word."""

from __future__ import annotations

import argparse
import json

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from cfgcore import ConfigurationManager
from cfgcore.cli import build_parser
from cfgcore.cli.config import _ctx_item
from cfgcore.config.envfile import EnvironWithFile
from cfgcore.errors import ConfigError, parse_key_path
from tests.fuzz import examples
from tests.key_paths import resolves

BASE = "database:\n  replicas: [1]\n  opts: {a: 1}\n  port: 5432\n  name: main\n"


def _problems(root, dotenv: str, environ=None):
    (root / "cfg").mkdir(exist_ok=True)
    (root / "cfg" / "development.yaml").write_text(BASE)
    (root / ".env").write_text(dotenv)
    # the process environment (here ``environ``), then the file, as a manager reads them
    # by itself with CFGCORE_ENV_FILE set
    environ = EnvironWithFile(str(root / ".env"), base=environ or {}, named=True)
    with pytest.raises(ConfigError) as info:
        ConfigurationManager(
            root / "cfg", environment="development", environ=environ, validate=False
        ).load_environment_config()
    return info.value.problems


def test_a_dotenv_json_error_names_the_file_line_variable_and_key_path(tmp_path):
    dotenv = "# db\nOTHER=1\nCFGCORE__DATABASE__REPLICAS='[1, 2'\n"
    [problem] = _problems(tmp_path, dotenv)
    env = str(tmp_path / ".env")
    assert (problem.file, problem.line, problem.path) == (env, 3, "database.replicas.1")
    assert str(problem) == (
        f"{env}:3: database.replicas.1: environment variable CFGCORE__DATABASE__REPLICAS: "
        "invalid JSON: Expecting ',' delimiter (column 6)"
    )


def test_the_last_line_setting_a_variable_is_named(tmp_path):
    dotenv = (
        "CFGCORE__DATABASE__OPTS='{\"a\": 1}'\n\nexport CFGCORE__DATABASE__OPTS='{\"a\": tru}'\n"
    )
    [problem] = _problems(tmp_path, dotenv)
    assert (problem.line, problem.path) == (3, "database.opts.a")


def test_other_problems_of_a_dotenv_variable_name_its_line_too(tmp_path):
    [problem] = _problems(tmp_path, "A=1\nCFGCORE__DATABASE__PORT=high\n")
    assert (problem.file, problem.line) == (str(tmp_path / ".env"), 2)
    assert "CFGCORE__DATABASE__PORT gives a str, expected int" in problem.message


def test_the_environment_wins_and_is_named_where_it_sets_the_variable(tmp_path):
    dotenv = "CFGCORE__DATABASE__REPLICAS='[1, 2]'\n"
    [problem] = _problems(tmp_path, dotenv, {"CFGCORE__DATABASE__REPLICAS": "[1, 2, @]"})
    assert (problem.file, problem.line, problem.path) == (
        "<environment>",
        None,
        "database.replicas.2",
    )


def test_a_secret_in_the_value_is_not_shown(tmp_path):
    [problem] = _problems(tmp_path, 'CFGCORE__DATABASE__OPTS=\'{"password": "s3cr3t" x}\'\n')
    assert problem.path == "database.opts.password"
    assert "s3cr3t" not in str(problem)


# Keys and strings of letters, digits and spaces: the value sits in single quotes in the
# .env file, which python-dotenv reads literally but for \\ and \'.
_TEXT = st.text("abcxyz 019", max_size=4)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**6), 10**6) | _TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=4),
    max_leaves=12,
)
_BREAKERS = st.sampled_from(["@", "}", "]", ",", ":", "x", "1"])


def _broken(doc, at, junk):
    text = json.dumps(doc)
    at = 1 + at % max(1, len(text) - 1)  # after the opening bracket: JSON meant
    raw = text[:at] + junk + text[at:]
    try:
        json.loads(raw)
    except json.JSONDecodeError:
        return raw
    except ValueError:
        pass
    return None  # still JSON (a digit in a number, a breaker inside a string)


def _inner(path: str, prefix: int) -> list[str]:
    return list(parse_key_path(path.removesuffix(".…").removesuffix("…")))[prefix:]


def _a_place(doc, segments: list[str], raw: str) -> bool:
    """Whether ``segments`` name a place of ``doc``, or a key the broken text ``raw``
    holds in an object of ``doc``: the junk can make a string a key (``["a"], "9",``
    read in an object: the error is at key "9", which the document never had)."""
    if resolves(doc, segments):
        return True
    return bool(segments) and resolves(doc, segments[:-1]) and json.dumps(segments[-1]) in raw


@settings(max_examples=examples(100), deadline=None)
@given(
    doc=st.dictionaries(_TEXT, _JSON, min_size=1, max_size=4),
    at=st.integers(0, 10**6),
    junk=_BREAKERS,
    blank=st.integers(0, 5),
)
@example(  # "]" closes a list early: its next item, "9", is read as a key, where it stops
    doc={"0001": [[None], {"": -1, "0": ["0000", "9", None], "1": None}]}, at=38, junk="]", blank=0
)
def test_any_broken_json_in_a_dotenv_file_names_its_line_and_a_path_of_the_value(
    tmp_path_factory, doc, at, junk, blank
):
    raw = _broken(doc, at, junk)
    if raw is None:
        return
    root = tmp_path_factory.mktemp("e")
    [problem] = _problems(root, "\n" * blank + f"CFGCORE__DATABASE__OPTS='{raw}'\n")
    assert (problem.file, problem.line) == (str(root / ".env"), blank + 1)
    assert problem.message.startswith(
        "environment variable CFGCORE__DATABASE__OPTS: invalid JSON: "
    )
    assert problem.path.startswith("database.opts")
    assert _a_place(doc, _inner(problem.path, 2), raw), (problem.path, raw)


@settings(max_examples=examples(200), deadline=None)
@given(doc=_JSON.filter(lambda d: isinstance(d, (dict, list))), at=st.integers(0, 10**6),
       junk=_BREAKERS)  # fmt: skip
def test_any_broken_ctx_json_is_refused_naming_a_path_of_the_value(doc, at, junk):
    raw = _broken(doc, at, junk)
    if raw is None:
        return
    with pytest.raises(argparse.ArgumentTypeError) as info:
        _ctx_item(f"prefs={raw}")
    where, _, what = str(info.value).partition(": invalid JSON: ")
    assert what, str(info.value)
    assert where == "prefs" or where.startswith(("prefs.", "prefs[")), where
    assert _a_place(doc, _inner(where, 1), raw), (where, raw)


def test_the_command_line_names_the_option_and_the_key_path(capsys):
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["eval", "f", "--ctx", "a=1", 'prefs={"langs": ["en" "fr"]}'])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "argument --ctx: prefs.langs.0: invalid JSON: Expecting ',' delimiter (column 17)" in err


@pytest.mark.parametrize(
    ("item", "message"),
    [
        (
            "user.prefs=[1, 2",
            "[\"user.prefs\"].1: invalid JSON: Expecting ',' delimiter (column 6)",
        ),
        ('p={"a": 1, "a": 2}', "p: duplicate key 'a' (JSON objects must not repeat a key)"),
    ],
)
def test_other_refusals_of_ctx_json(item, message):
    with pytest.raises(argparse.ArgumentTypeError) as info:
        _ctx_item(item)
    assert str(info.value) == message


def test_ctx_values_that_are_json_or_text_read_as_before():
    assert _ctx_item('tags=["a", 1]') == ("tags", ["a", 1])
    assert _ctx_item('p={"a": {"b": null}}') == ("p", {"a": {"b": None}})
    assert _ctx_item("region=EU") == ("region", "EU")
    assert _ctx_item("n=12") == ("n", 12)
    assert _ctx_item("note=a [draft]") == ("note", "a [draft]")


def test_a_quoted_key_inside_the_value_joins_the_variables_path(tmp_path):
    [problem] = _problems(tmp_path, "CFGCORE__DATABASE__OPTS='{\"a.b\": @}'\n")
    assert problem.path == 'database.opts["a.b"]'
