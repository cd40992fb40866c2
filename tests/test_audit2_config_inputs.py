"""Second audit, hostile inputs: environment variable overrides and profile files.

Found: a ``CFGCORE__`` value nested past the JSON parser's limit raised RecursionError
and one with more than 4300 digits raised ValueError, out of load_environment_config
and every reload, instead of a ConfigError; two variables for one key (differing in
case, or one for a key and one below it) silently let the later name win; a profile
file's ``name``/``extends``/``region`` holding a list became its repr ("[1]"); an
unknown profile's error named no place to look.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.config.environ import env_layer, parse_env_value
from cfgcore.config.manager import ConfigurationManager
from cfgcore.errors import ConfigError
from tests.fuzz import examples
from tests.texts import any_text

BELOW = {"app": {"name": "svc", "n": 1, "tags": ["a"]}}


def _manager(tmp_path, environ, **kwargs):
    (tmp_path / "development.yaml").write_text("app:\n  name: svc\n  n: 1\n  tags: [a]\n")
    return ConfigurationManager(tmp_path, environment="development", environ=environ, **kwargs)


def _problems(manager):
    with pytest.raises(ConfigError) as info:
        manager.load_environment_config()
    return info.value.problems


@pytest.mark.parametrize(
    "var, value, message",
    [
        # what the parsers cannot take is judged as what it is (test_audit8_files_environ_values)
        ("CFGCORE__APP__TAGS", "[" * 100_000 + "]" * 100_000, "nested more than 100 levels"),
        ("CFGCORE__APP__N", "1" * 5000, "integer out of range (5,000 digits"),
    ],
)
def test_values_the_parsers_cannot_take_are_config_errors(tmp_path, var, value, message):
    m = _manager(tmp_path, {var: value})
    [problem] = _problems(m)
    assert problem.file == "<environment>" and var in problem.message
    assert message in problem.message
    assert value not in problem.message  # the value is not shown (secrets)


def test_a_hostile_value_on_reload_keeps_the_last_good_configuration(tmp_path):
    environ = {"CFGCORE__APP__N": "2"}
    m = _manager(tmp_path, environ)
    m.load_environment_config()
    environ["CFGCORE__APP__N"] = "9" * 5000
    assert m.reload() is False
    assert "CFGCORE__APP__N" in str(m.last_error) and m.get("app.n") == 2


@pytest.mark.parametrize(
    "environ, first, second, path",
    [
        ({"CFGCORE__APP__NAME": "a", "CFGCORE__app__name": "b"},
         "CFGCORE__APP__NAME", "CFGCORE__app__name", "app.name"),
        ({"CFGCORE__APP__Q": "1", "CFGCORE__APP__Q__R": "2"},
         "CFGCORE__APP__Q", "CFGCORE__APP__Q__R", "app.q.r"),
        ({"CFGCORE__APP__Q__R": "2", "CFGCORE__app__q": "1"},
         "CFGCORE__APP__Q__R", "CFGCORE__app__q", "app.q"),
    ],
)  # fmt: skip
def test_two_variables_for_one_key_are_refused_naming_both(tmp_path, environ, first, second, path):
    [problem] = _problems(_manager(tmp_path, environ))
    assert problem.path == path
    assert first in problem.message and second in problem.message


def test_variables_for_sibling_keys_still_combine(tmp_path):
    environ = {"CFGCORE__APP__A": "1", "CFGCORE__APP__B__C": "2", "CFGCORE__APP__B__D": "x"}
    m = _manager(tmp_path, environ)
    m.load_environment_config()
    assert (m.get("app.a"), m.get("app.b.c"), m.get("app.b.d")) == (1, 2, "x")


@settings(max_examples=examples(300), deadline=None)
@given(
    names=st.lists(
        st.lists(st.sampled_from(["app", "APP", "n", "N", "tags", "x", ""]), min_size=0,
                 max_size=4),
        max_size=4,
    ),
    values=st.lists(
        st.one_of(
            any_text(max_size=30),
            st.sampled_from(["[", "{", "[[]]", "1e999", "NaN", "9" * 5000, "[" * 2000]),
        ),
        min_size=4,
        max_size=4,
    ),
)  # fmt: skip
def test_any_environment_raises_only_config_errors(names, values):
    environ = {"CFGCORE__" + "__".join(n): v for n, v in zip(names, values, strict=False)}
    for value in values:
        parse_env_value(value)  # never raises: anything it cannot parse stays text
    try:
        layer = env_layer(environ, "CFGCORE", BELOW)
    except ConfigError as exc:
        assert exc.problems and all(p.file == "<environment>" for p in exc.problems)
    else:
        assert set(layer.env_vars.values()) <= set(environ)


@pytest.mark.parametrize(
    "text, field, line",
    [
        ("name: [1]\noverrides: {}\n", "name", 1),
        ("name: x\nextends: {a: 1}\noverrides: {}\n", "extends", 2),
        ("name: x\nkind: geographic\nregion: [eu]\noverrides: {}\n", "region", 3),
        ("name: x\ndescription: [1]\noverrides: {}\n", "description", 2),
    ],
)
def test_profile_fields_that_are_not_text_are_refused(tmp_path, text, field, line):
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "x.yaml").write_text(text)
    m = _manager(tmp_path, {}, profile="high_volume")
    [problem] = _problems(m)
    assert (problem.path, problem.line) == (field, line)
    assert problem.file == str(tmp_path / "profiles" / "x.yaml")
    assert "must be text" in problem.message


def test_an_unknown_profile_says_where_custom_profiles_live(tmp_path):
    m = _manager(tmp_path, {}, profile="hihg_volume")
    [problem] = _problems(m)
    assert problem.file == str(tmp_path / "profiles")
    assert "unknown deployment profile 'hihg_volume'" in problem.message
    assert "high_volume" in problem.message  # the known names


@pytest.mark.parametrize("levels", [101, 5000])
def test_a_variable_name_nesting_past_the_file_limit_is_refused(tmp_path, levels):
    """A name of 5000 segments raised RecursionError while merging; 101 built a tree
    deeper than any file may be."""
    var = "CFGCORE__" + "__".join(["deep"] * levels)
    [problem] = _problems(_manager(tmp_path, {var: "1"}))
    assert "nests more than 100 levels deep" in problem.message
    assert problem.file == "<environment>" and len(problem.message) < 200


def test_a_variable_name_at_the_file_limit_still_works(tmp_path):
    m = _manager(tmp_path, {"CFGCORE__" + "__".join(["k"] * 100): "1"})
    m.load_environment_config()
    assert m.get(".".join(["k"] * 100)) == 1
