"""Round 4, the new user: an error about no file says what it is about.

A problem raised for something that is not a file (an unknown profile name asked of the
profile manager, a misspelt transformation step, a value passed in code) used to print
as ``<input>: ...``, a name the reader could not look up. It is now the key path and
the message (or the message alone, which names the profile or step); a problem about a
file still starts with the file and line.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cfgcore.config.transforms import ConfigurationTransformer
from cfgcore.configuration_profiles import ProfileManager
from cfgcore.errors import ConfigError, Problem, TransformError
from cfgcore.validation_engine import validate_configuration


def test_an_unknown_profile_name_is_the_error_itself():
    pm = ProfileManager()
    with pytest.raises(ConfigError) as exc:
        pm.get_deployment_profile("xyz")
    assert str(exc.value) == (
        "unknown deployment profile 'xyz'; known: cost_optimized, high_accuracy, "
        "high_volume, low_latency"
    )
    with pytest.raises(ConfigError) as exc:
        pm.apply_geographic_profile({}, "Mars")
    assert str(exc.value) == "unknown geographic profile 'Mars'; known: apac, eu, us"


def test_a_misspelt_step_is_named_without_a_file():
    with pytest.raises(TransformError) as exc:
        ConfigurationTransformer().transform({}, ["size_parsin"])
    assert str(exc.value).startswith("unknown transformation step(s) 'size_parsin'")
    # With the file it came from, the file leads as before.
    with pytest.raises(TransformError) as exc:
        ConfigurationTransformer().transform({}, ["size_parsin"], file="app.yaml")
    assert str(exc.value).startswith("app.yaml: unknown transformation step(s)")


def test_values_passed_in_code_are_named_by_their_key_path():
    with pytest.raises(TransformError) as exc:
        ConfigurationTransformer(env={}).transform(
            {"db": {"password": "${CFGCORE_T_NOPE}"}}, ["env_var_substitution"]
        )
    assert str(exc.value) == (
        "db.password: environment variable CFGCORE_T_NOPE is not set and "
        "${CFGCORE_T_NOPE} has no default"
    )
    report = validate_configuration({"server": {"port": "x"}}, "development")
    with pytest.raises(ConfigError) as exc:
        report.raise_for_blocking()
    assert str(exc.value).startswith("server.port: expected an integer")


def test_a_line_without_a_file_is_shown_as_a_line():
    assert str(Problem("a.b", "bad", line=3)) == "line 3: a.b: bad"
    assert str(Problem("a.b", "bad", file="f.yaml", line=3)) == "f.yaml:3: a.b: bad"
    assert str(Problem("", "bad", file="f.yaml")) == "f.yaml: bad"


# (Characters shown as they are: errors escape controls, line separators and the
# bidirectional controls, cfgcore.errors.printable, which other tests check.)
_BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
_text = st.text(
    st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp"), blacklist_characters=_BIDI),
    max_size=20,
)


@given(path=_text, message=_text.filter(bool), line=st.none() | st.integers(1, 10**6))
def test_no_problem_about_no_file_says_input(path, message, line):
    shown = str(Problem(path, message, line=line))
    assert "<input>" not in shown.replace(path, "").replace(message, "")
    assert shown.endswith(message)
    if path:
        assert f"{path}: {message}" in shown
    several = str(ConfigError([Problem(path, message, line=line), Problem("x", "y")]))
    assert several.splitlines()[1:] == [f"  - {shown}", "  - x: y"]


@pytest.mark.parametrize(
    ("var", "value", "expected"),
    [
        (
            "CFGCORE__SERVER__PORT",
            "abc",
            "server.port: environment variable CFGCORE__SERVER__PORT gives a str, expected "
            "int: set it to a number, or unset CFGCORE__SERVER__PORT",
        ),
        (
            "CFGCORE__SERVER__HTTPS_ONLY",
            "3",
            "server.https_only: environment variable CFGCORE__SERVER__HTTPS_ONLY gives an "
            "int, expected bool: set it to true or false, or unset "
            "CFGCORE__SERVER__HTTPS_ONLY",
        ),
        (
            "CFGCORE__SERVER__CORS",
            "3",
            "server.cors: environment variable CFGCORE__SERVER__CORS gives an int, expected "
            "dict: set it to a JSON object, or unset CFGCORE__SERVER__CORS",
        ),
    ],
)
def test_an_override_of_the_wrong_type_says_what_to_set(
    tmp_path, monkeypatch, capsys, var, value, expected
):
    from tests.conftest import run_cli, scaffolded_config

    scaffolded_config(tmp_path, monkeypatch, "staging")
    monkeypatch.setenv(var, value)
    capsys.readouterr()
    code, out, err = run_cli(capsys, "get", "server.port")
    assert code == 1
    assert err == f"cfgcore: error: <environment>: {expected}\n"


def test_a_misspelt_profile_name_gets_a_suggestion(tmp_path, monkeypatch, capsys):
    from tests.conftest import run_cli, scaffolded_config

    with pytest.raises(ConfigError) as exc:
        ProfileManager().get_deployment_profile("hi_volume")
    assert str(exc.value).startswith(
        "unknown deployment profile 'hi_volume' (did you mean 'high_volume'?); known: "
    )
    d = scaffolded_config(tmp_path, monkeypatch, "staging")
    capsys.readouterr()
    code, out, err = run_cli(capsys, "show", "--profile", "Low-Latency")
    assert code == 1
    assert err == (
        f"cfgcore: error: {d / 'profiles'}: unknown deployment profile 'Low-Latency' (did you "
        "mean 'low_latency'?); known: cost_optimized, high_accuracy, high_volume, low_latency "
        "(custom profiles are files in this directory)\n"
    )


def test_a_bad_mapping_file_names_the_line_of_each_problem(tmp_path):
    from cfgcore.migration import LegacyConfigMigrator

    mapping = tmp_path / "map.yaml"
    mapping.write_text(
        "kees:\n  a: b\nkeys:\n  streaming.hq_kbps: [1]\nprefixes: 3\nenv_prefix: [1]\n"
    )
    with pytest.raises(ConfigError) as exc:
        LegacyConfigMigrator(str(mapping))
    assert [str(p) for p in exc.value.problems] == [
        f"{mapping}:1: kees: unknown field (did you mean 'keys'?); a mapping file's fields "
        "are defaults, env_prefix, keys, prefixes",
        # a legacy key is one name holding dots: shown quoted, as every key path is
        f'{mapping}:4: keys["streaming.hq_kbps"]: expected a dotted path or null',
        f"{mapping}:5: prefixes: expected a mapping",
        f"{mapping}:6: env_prefix: expected a string",
    ]
    # A mapping given in code has no file and no lines: the key path leads.
    with pytest.raises(ConfigError) as exc:
        LegacyConfigMigrator({"keys": {"a": 1}})
    assert str(exc.value) == "keys.a: expected a dotted path or null"
