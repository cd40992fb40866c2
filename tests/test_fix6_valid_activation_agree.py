"""Validation says "valid" only for what activation accepts.

``validate_configuration`` passed a tree holding NaN, an infinite float, a non-string
key (``1``, ``(1, 2)``), bytes, a set or a tree nested past the loaders' depth limit
(a YAML alias that contains itself) anywhere the schema does not type: only integers
beyond 64 bits were checked. Activating the same tree (``set_active_config``, a file, a
transform) refused it. Both sides now run the one check (``config.files.tree_problem``)
and name the same key path. ``cfgcore validate`` said "valid" for the production
environment of the embedded demo set, which loading refuses.
"""

from __future__ import annotations

import math
from types import MappingProxyType

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfgcore.cli import main
from cfgcore.config.manager import ConfigurationManager
from cfgcore.errors import ConfigError
from cfgcore.validation_engine import validate_configuration
from tests.fuzz import examples
from tests.texts import any_text


@pytest.fixture(scope="module")
def manager(tmp_path_factory):
    d = tmp_path_factory.mktemp("agree")
    (d / "development.yaml").write_text("environment: development\napp:\n  name: svc\n")
    m = ConfigurationManager(d, environment="development", environ={})
    m.disable_audit()
    m.load_environment_config()
    yield m
    m.close()


def activation(manager, tree):
    """None when ``set_active_config`` accepts ``tree``, else the refusal's problems."""
    try:
        manager.set_active_config(tree)
    except ConfigError as exc:
        return exc.problems
    return None


def _deep(levels):
    root: dict = {}
    node = root
    for _ in range(levels):
        node["n"] = {}
        node = node["n"]
    return root


def _loop():
    loop: dict = {"a": {}}
    loop["a"]["back"] = loop
    return loop


HOSTILE = [
    ({"custom": {"x": float("nan")}}, "custom.x", "not a finite number"),
    ({"custom": {"x": float("inf")}}, "custom.x", "not a finite number"),
    ({"custom": {"x": [1.0, -math.inf]}}, "custom.x.1", "not a finite number"),
    ({"custom": {1: "a"}}, "custom[1]", "key 1 (int) is not a string"),
    ({"custom": {(1, 2): "a"}}, "custom[(1, 2)]", "key (1, 2) (tuple) is not a string"),
    ({"custom": {"x": b"raw"}}, "custom.x", "a bytes is not a configuration value"),
    ({"custom": {"x": {1, 2}}}, "custom.x", "a set is not a configuration value"),
    ({"custom": {"x": 1 + 2j}}, "custom.x", "a complex is not a configuration value"),
    ({"custom": _deep(150)}, None, "nested more than 100 levels deep"),
    (_loop(), None, "nested more than 100 levels deep"),
    # set_active_config takes any mapping, copies it into a dict and judges that
    (MappingProxyType({"custom": {"x": math.nan}}), "custom.x", "not a finite number"),
    (MappingProxyType({7: {"x": 1}}), "[7]", "key 7 (int) is not a string"),
]


@pytest.mark.parametrize(("tree", "path", "words"), HOSTILE)
def test_validation_refuses_what_activation_refuses(manager, tree, path, words):
    refused = activation(manager, tree)
    assert refused is not None and words in str(refused[0])
    report = validate_configuration(tree, "development")
    assert not report.overall_valid
    [found] = report.blocking
    assert found.rule_id == "structure.limits" and found.severity == "critical"
    assert found.key_path == refused[0].path  # the same key path on both sides
    assert words in found.message
    if path is not None:
        assert found.key_path == path and found.message.startswith(f"{path}: ")


def test_each_section_reports_its_first_problem():
    tree = {"a": {"x": float("nan")}, "b": {"ok": 1, "y": [{2: "z"}]}, "c": {"fine": 1.5}}
    report = validate_configuration(tree, "production")
    assert [(r.rule_id, r.key_path) for r in report.failures] == [
        ("structure.limits", "a.x"),
        ("structure.limits", "b.y.0[2]"),
    ]


def test_the_seed_facade_and_a_custom_validator_agree(manager):
    from cfgcore.validation_engine import ConfigValidator

    tree = {"custom": {"x": float("nan")}}
    assert not ConfigValidator().validate_config(tree, "c", "production").overall_valid
    assert not validate_configuration(tree).overall_valid  # no environment given


# --- hostile trees: the two sides agree on every one --------------------------------------

_keys = st.one_of(
    any_text(max_size=4),
    st.integers(-2, 2),
    st.tuples(st.integers(0, 1)),
    st.none(),
    st.booleans(),
    st.floats(allow_nan=True),
)
_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    any_text(max_size=6),
    st.binary(max_size=3),
    st.frozensets(st.integers(0, 3), max_size=2),
    st.complex_numbers(max_magnitude=10, allow_nan=False, allow_infinity=False),
)
_values = st.recursive(
    _leaves,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_keys, inner, max_size=3),
    max_leaves=12,
)
_section = st.sampled_from(["custom", "music_streaming", "app", "auto_scaling"])
_trees = st.dictionaries(_section, _values, min_size=1, max_size=2)


@settings(
    max_examples=examples(150),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(tree=_trees)
def test_validation_and_activation_agree_on_hostile_trees(manager, tree):
    refused = activation(manager, tree)
    report = validate_configuration(tree, "development")
    assert report.overall_valid == (refused is None), (report.blocking, refused)
    if refused is not None:
        # Activation names the first problem it met; validation reports it by the
        # same key path (a tree limit) or, when the tree is usable, the same findings.
        paths = {r.key_path for r in report.blocking}
        assert refused[0].path in paths


# --- cfgcore validate against loading -----------------------------------------------------


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ("custom:\n  x: .nan\n", "custom.x"),
        ("custom:\n  1: a\n", "custom.1"),
        ("custom:\n  x: -.inf\n", "custom.x"),
    ],
)
def test_cli_validate_and_load_agree_on_a_file(tmp_path, capsys, text, path):
    (tmp_path / "development.yaml").write_text(text)
    m = ConfigurationManager(tmp_path, environment="development", environ={})
    m.disable_audit()
    with pytest.raises(ConfigError) as load:
        m.load_environment_config()
    m.close()
    assert load.value.problems[0].path == path
    assert main(["validate", "--config-dir", str(tmp_path), "-e", "development"]) == 1
    assert main(["validate", str(tmp_path / "development.yaml")]) == 1
    err = capsys.readouterr().err
    assert f"{path}:" in err


def test_cli_validate_production_of_the_embedded_set_fails_as_loading_does(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)  # no ./config: the embedded demo set is chosen
    monkeypatch.delenv("CFGCORE_CONFIG_DIR", raising=False)
    m = ConfigurationManager(environment="production")
    with pytest.raises(ConfigError) as load:
        m.load_environment_config()
    m.close()
    assert "refuses the embedded demo configuration" in str(load.value)
    assert main(["validate", "-e", "production"]) == 1
    out = capsys.readouterr().out
    assert "refuses the embedded demo configuration" in out
    assert "INVALID" in out.splitlines()[-1]
    assert main(["validate", "-e", "production", "--format", "json"]) == 1
    assert '"overall_valid": false' in capsys.readouterr().out
    # Asked for on purpose (CFGCORE_CONFIG_DIR=embedded), both accept it.
    monkeypatch.setenv("CFGCORE_CONFIG_DIR", "embedded")
    m = ConfigurationManager(environment="production")
    m.disable_audit()
    m.load_environment_config()
    m.close()
    assert main(["validate", "-e", "production"]) == 0
    # The other environments of the embedded set stay valid.
    monkeypatch.delenv("CFGCORE_CONFIG_DIR")
    assert main(["validate", "-e", "staging"]) == 0


# --- cfgcore validate --config-dir against loading, on hostile files ----------------------

_file_keys = st.one_of(st.text("abxyz_", min_size=1, max_size=4), st.integers(0, 3))
_file_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**66), max_value=2**66),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text("ab0 :$%{}", max_size=6),
)
_file_values = st.recursive(
    _file_leaves,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_file_keys, inner, max_size=3),
    max_leaves=10,
)
_file_trees = st.dictionaries(
    st.sampled_from(["custom", "server", "auto_scaling", "music_streaming"]),
    _file_values,
    min_size=1,
    max_size=2,
)


@settings(max_examples=examples(40), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tree=_file_trees)
def test_cli_validate_and_load_agree_on_hostile_files(tree):
    import tempfile

    import yaml

    with tempfile.TemporaryDirectory() as d:
        with open(f"{d}/development.yaml", "w") as f:
            yaml.safe_dump(tree, f)
        m = ConfigurationManager(d, environment="development")
        m.disable_audit()
        try:
            m.load_environment_config()
            loaded = True
        except ConfigError:
            loaded = False
        finally:
            m.close()
        code = main(["-q", "validate", "--config-dir", d, "-e", "development", "--format", "json"])
        assert (code == 0) == loaded, tree
