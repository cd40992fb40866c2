"""Audit of validation and profiles: custom rules that misbehave, profiles that extend
others, and where ``cfgcore validate`` says a bad value was set."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.config.profiles import Profile, ProfileManager, compose_overrides
from cfgcore.config.tree import DELETE, REPLACE
from cfgcore.validation_engine import (
    ConfigValidator,
    TreeRule,
    ValidationResult,
    ValidationRule,
)
from tests.conftest import run_cli
from tests.fuzz import examples

# --- custom rules that misbehave are reported under their id, and block -----------------


class _GeneratorThatRaises(ValidationRule):
    def validate(self, config, context=None):
        yield self.create_result(False, "first finding")
        raise RuntimeError("boom")


class _UnknownSeverity(ValidationRule):
    def validate(self, config, context=None):
        limit = config.get("user_limits", {}).get("premium_concurrent_streams", 0)
        if limit < 5:
            return [ValidationResult(self.rule_id, "fatal", "premium users need 5 streams")]
        return []


class _WantsKeyRaises(TreeRule):
    def wants_key(self, key):
        raise KeyError(key)


@pytest.mark.parametrize(
    ("rule", "words"),
    [
        (_GeneratorThatRaises("gen_rule"), "failed with RuntimeError"),
        (_UnknownSeverity("premium_stream_limit"), "severity 'fatal'"),
        (_WantsKeyRaises("key_rule"), "failed with KeyError"),
    ],
    ids=["generator-raises", "unknown-severity", "wants-key-raises"],
)
def test_a_misbehaving_custom_rule_blocks_with_an_error_naming_it(rule, words):
    validator = ConfigValidator()
    validator.add_rule(rule)
    config = {"user_limits": {"premium_concurrent_streams": 1}, "app": {"name": "x"}}
    for _ in range(2):  # the second run (cached rule plans) reports it too
        report = validator.validate_config(config, "staging_config", "staging")
        assert not report.overall_valid
        (found,) = report.by_rule(rule.rule_id)
        assert found.severity == "error" and words in found.message
        assert rule.rule_id in validator.get_validation_summary(report)


def test_a_well_behaved_generator_rule_is_accepted():
    class Gen(ValidationRule):
        def validate(self, config, context=None):
            yield self.create_result(False, "premium users need 5 streams", severity="warning")

    validator = ConfigValidator(builtin=False)
    validator.add_rule(Gen("gen"))
    report = validator.validate_config({}, "c", "staging")
    assert report.overall_valid
    assert [r.message for r in report.by_rule("gen")] == ["premium users need 5 streams"]


# --- profiles that extend others keep their deletions ---------------------------------------


def test_an_extending_profile_still_deletes_keys(tmp_path):
    (tmp_path / "parent.yaml").write_text("overrides:\n  performance:\n    batch_size: 200\n")
    (tmp_path / "child.yaml").write_text(
        "extends: parent\noverrides:\n  legacy_section: __delete__\n"
        "  performance:\n    worker_threads: 4\n"
    )
    pm = ProfileManager([str(tmp_path)])
    base = {"performance": {"worker_threads": 8, "batch_size": 1}, "legacy_section": {"x": 1}}
    assert pm.apply_profile(base, "child") == {
        "performance": {"worker_threads": 4, "batch_size": 200}
    }


_keys = st.sampled_from(["a", "b", "c"])
_configs = st.dictionaries(
    _keys, st.recursive(st.integers(0, 3), lambda ch: st.dictionaries(_keys, ch, max_size=3)),
    max_size=3,
)  # fmt: skip


def _with_replace(d):
    return {k: (True if k == REPLACE else v) for k, v in d.items()}


_overrides = st.dictionaries(
    _keys,
    st.recursive(
        st.one_of(st.integers(0, 3), st.just(DELETE)),
        lambda ch: st.dictionaries(st.one_of(_keys, st.just(REPLACE)), ch, max_size=3).map(
            _with_replace
        ),
        max_leaves=8,
    ),
    max_size=3,
)


@settings(max_examples=examples(300), deadline=None)
@given(_configs, _overrides, _overrides)
def test_composed_overrides_do_what_applying_both_in_turn_does(config, first, then):
    def apply(overrides, tree):
        return Profile("p", "deployment", overrides).apply(tree)

    assert apply(compose_overrides(first, then), config) == apply(then, apply(first, config))


# --- cfgcore validate names the file that set the value ---------------------------------------


def test_validate_blames_the_profile_file_that_set_a_bad_value(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = tmp_path / "cfg"
    (cfg / "profiles").mkdir(parents=True)
    (cfg / "base.yaml").write_text("environment: staging\nperformance:\n  worker_threads: 8\n")
    (cfg / "staging.yaml").write_text("environment: staging\n")
    (cfg / "profiles" / "peak.yaml").write_text(
        "description: peak\noverrides:\n  performance:\n    worker_threads: -5\n"
    )
    argv = ["validate", "--config-dir", str(cfg), "-e", "staging", "--profile", "peak"]
    code, out, _ = run_cli(capsys, *argv)
    assert code == 1
    assert "cfg/profiles/peak.yaml:4: error: performance.worker_threads: -5" in out
    assert "base.yaml" not in out
    code, out, _ = run_cli(capsys, *argv, "--format", "json")
    (result,) = [r for r in json.loads(out)["results"] if r["rule_id"] == "structure.range"]
    assert (result["file"], result["line"]) == ("cfg/profiles/peak.yaml", 4)
