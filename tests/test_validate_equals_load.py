"""Issue 10, item 6: ``cfgcore validate`` runs the checks activation runs, and the
schema types every section the bundled configuration uses."""

from __future__ import annotations

import msgspec
import pytest

from cfgcore.cli import main
from cfgcore.config.manager import ConfigurationManager, default_config_dir
from cfgcore.config.profiles import _BUILTIN_DEPLOYMENT, _BUILTIN_GEOGRAPHIC
from cfgcore.config.schema import ConfigSchema
from cfgcore.errors import ConfigError
from cfgcore.validation_engine import validate_configuration

ENVIRONMENTS = ["development", "staging", "production", "test"]

BAD_FLAGS = """\
version: 1
flags:
  algo:
    variants:
      control: {a: 1}
      variant_a: {a: 2}
    default: control
    rules:
      - split: {control: 50, variant_a: 40}
        serve: control
"""


def _dir(tmp_path, flags=BAD_FLAGS, env_text="app:\n  name: svc\n"):
    (tmp_path / "development.yaml").write_text(env_text)
    if flags is not None:
        (tmp_path / "flags.yaml").write_text(flags)
    return tmp_path


def test_validate_fails_on_flags_that_load_refuses(tmp_path, capsys):
    d = _dir(tmp_path)
    m = ConfigurationManager(d, environment="development", environ={})
    with pytest.raises(ConfigError) as load_error:
        m.load_environment_config()
    assert main(["validate", "--config-dir", str(d)]) == 1
    out = capsys.readouterr().out
    assert "[flags.compile]" in out and "weights sum to 90" in out
    assert "flags.algo.rules[0]" in out and str(d / "flags.yaml") in out
    # The same problems, word for word.
    for problem in load_error.value.problems:
        assert str(problem) in out
    assert "INVALID" in out.splitlines()[-1]


def test_validate_a_flags_file_given_on_the_command_line(tmp_path, capsys):
    d = _dir(tmp_path)
    assert main(["validate", str(d / "flags.yaml")]) == 1
    assert "weights sum to 90" in capsys.readouterr().out
    (d / "flags.yaml").write_text(
        BAD_FLAGS.replace("40}", "50}").replace("        serve: control\n", "")
    )
    assert main(["validate", str(d / "development.yaml"), str(d / "flags.yaml")]) == 0


def test_validate_passes_good_flags_and_loads_agree(tmp_path, capsys):
    good = BAD_FLAGS.replace("40}", "50}").replace("        serve: control\n", "")
    d = _dir(tmp_path, flags=good)
    assert main(["validate", "--config-dir", str(d)]) == 0
    m = ConfigurationManager(d, environment="development", environ={})
    m.load_environment_config()  # and load accepts it


def test_validate_json_lists_flag_problems(tmp_path, capsys):
    import json

    d = _dir(tmp_path)
    assert main(["validate", "--config-dir", str(d), "--format", "json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert any(
        r["rule_id"] == "flags.compile" and r["severity"] == "critical" for r in doc["results"]
    )


@pytest.mark.parametrize(
    "text",
    ["", "  \n\t\n"],
    ids=["zero-byte", "whitespace-only"],
)
def test_validate_refuses_an_empty_environment_file_as_load_does(tmp_path, text, capsys):
    d = _dir(tmp_path, flags=None, env_text=text)
    m = ConfigurationManager(d, environment="development", environ={})
    with pytest.raises(ConfigError, match="empty"):
        m.load_environment_config()
    assert main(["validate", "--config-dir", str(d)]) == 1
    assert main(["validate", str(d / "development.yaml")]) == 1
    assert "empty" in capsys.readouterr().err


def test_validate_judges_the_environment_it_builds(tmp_path, capsys):
    # Production rules are stricter (a plain-http CDN is an error there): validate of a
    # production build must apply them even when the files do not name the environment.
    (tmp_path / "production.yaml").write_text(
        "music_streaming:\n  cdn:\n    base_url: http://cdn.example.com\n"
    )
    m = ConfigurationManager(tmp_path, environment="production", environ={})
    with pytest.raises(ConfigError):
        m.load_environment_config()
    assert main(["validate", "--config-dir", str(tmp_path), "-e", "production"]) == 1


# --- the schema types what the bundled configuration uses ----------------------------------


def _bundled_trees(profiles=True):
    # Every environment alone, and with each built-in profile (deployment or geographic)
    # on top: together they use every section the bundled configuration has.
    combos = [(None, None)]
    if profiles:
        combos += [(p, None) for p in _BUILTIN_DEPLOYMENT]
        combos += [(None, g) for g in _BUILTIN_GEOGRAPHIC]
    for env in ENVIRONMENTS:
        m = ConfigurationManager(default_config_dir(), environment=env, environ={})
        for profile, geo in combos:
            tree = m.build_config(
                env, profile=profile, geographic_profile=geo, keep_references=True
            )
            yield (env, profile, geo), tree


def test_every_bundled_top_level_section_is_typed_by_the_schema():
    declared = set(ConfigSchema.__struct_fields__)
    for where, tree in _bundled_trees():
        assert set(tree) <= declared, (where, set(tree) - declared)
        # ...and every key inside them is declared too (no unknown-key finding).
        report = validate_configuration(tree, where[0])
        unknown = [r.message for r in report.failures if r.rule_id == "structure.unknown_key"]
        assert unknown == [], where
        assert not report.blocking, (where, [r.message for r in report.blocking])


def test_every_bundled_section_decodes_into_its_struct():
    for where, tree in _bundled_trees(profiles=False):
        typed = msgspec.convert(dict(tree), type=ConfigSchema, str_keys=True)
        for section in tree:
            assert getattr(typed, section) is not msgspec.UNSET, (where, section)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("server.port", "eighty"),
        ("server.port", 70000),
        ("server.https_only", "yes"),
        ("app.debug", "false"),
        ("app.log_level", "LOUD"),
        ("security.password_policy.min_length", "twelve"),
        ("security.rate_limiting.requests_per_minute", 0),
        ("security.api_keys", ["not", "a", "map"]),
        ("performance.worker_threads", 5.5),
        ("performance.memory_limit", "lots"),
        ("performance.processing_mode", "turbo"),
        ("performance.connection_pool.max_size", "many"),
        ("config_management.reload_debounce_ms", -1),
        ("data_residency.allowed_regions", "eu-west-1"),
    ],
)
def test_type_errors_in_service_sections_block_activation(tmp_path, key, value):
    (tmp_path / "development.yaml").write_text("app:\n  name: svc\n")
    m = ConfigurationManager(tmp_path, environment="development", environ={})
    m.load_environment_config()
    assert m.update_config(key, value) is False
    assert key in str(m.last_error)
