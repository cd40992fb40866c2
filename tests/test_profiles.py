"""Deployment and geographic profiles, built-in and custom."""

from __future__ import annotations

import os

import pytest

from cfgcore.config.manager import ConfigurationManager
from cfgcore.config.tree import thaw
from cfgcore.configuration_profiles import DeploymentProfile, ProfileManager, get_profile_manager
from cfgcore.errors import ConfigError


@pytest.fixture(scope="module")
def base_config():
    return thaw(ConfigurationManager(validate=False).build_config("staging"))


def test_seed_example(base_config):
    profile_manager = get_profile_manager()
    high_performance_profile = profile_manager.get_deployment_profile(DeploymentProfile.HIGH_VOLUME)
    optimized_config = profile_manager.apply_profile(base_config, high_performance_profile)
    eu_profile = profile_manager.get_geographic_profile("EU")
    eu_config = profile_manager.apply_geographic_profile(base_config, eu_profile)

    assert optimized_config["performance"]["worker_threads"] == 32
    assert all(
        optimized_config["caching_layers"][c]["ttl"] == 3600 for c in ("l1_cache", "l2_cache")
    )
    assert eu_config["geographic_profile"] == "EU"
    assert eu_config["gdpr_compliance"]["consent_required"] is True
    assert eu_config["gdpr_compliance"]["data_retention"]["user_data_days"] == 2555
    # applying does not modify the input, and keeps keys the profile does not mention
    assert base_config["performance"]["worker_threads"] == 8
    assert optimized_config["music_streaming"] == base_config["music_streaming"]


def test_builtin_profiles_carry_the_seed_settings(base_config):
    pm = ProfileManager()
    low = pm.apply_profile(base_config, DeploymentProfile.LOW_LATENCY)
    assert low["server"]["request_timeout_seconds"] == 15
    assert low["performance"]["batch_size"] == 500
    assert low["performance"]["prioritize_premium_users"] is True

    acc = pm.apply_profile(base_config, "high_accuracy")
    assert acc["anomaly_detection"]["sample_size"] == 50000
    assert len(acc["anomaly_detection"]["ensemble_models"]) > len(
        base_config["anomaly_detection"]["ensemble_models"]
    )
    assert (
        acc["anomaly_detection"]["validation_threshold"]
        > base_config["anomaly_detection"]["validation_threshold"]
    )

    cost = pm.apply_profile(base_config, DeploymentProfile.COST_OPTIMIZED)
    assert cost["performance"]["worker_threads"] < base_config["performance"]["worker_threads"]
    for layer in ("l1_cache", "l2_cache", "l3_cache"):
        assert cost["caching_layers"][layer]["ttl"] > base_config["caching_layers"][layer]["ttl"]
    assert cost["performance"]["processing_mode"] == "batch"


@pytest.mark.parametrize("region", ["EU", "us", "Apac"])
def test_geographic_profiles_exist_case_insensitively(region, base_config):
    profile = get_profile_manager().get_geographic_profile(region)
    out = get_profile_manager().apply_geographic_profile(base_config, profile)
    assert out["data_residency"]["region"] == region.lower()


def test_unknown_profile_lists_the_known_ones():
    with pytest.raises(ConfigError, match="unknown deployment profile 'turbo'.*high_volume"):
        get_profile_manager().get_deployment_profile("turbo")


def test_custom_profiles_from_files_extend_and_override(tmp_path):
    (tmp_path / "black_friday.yaml").write_text(
        "kind: deployment\ndescription: peak\nextends: high_volume\n"
        "overrides:\n  performance:\n    worker_threads: 64\n"
    )
    (tmp_path / "latam.json").write_text(
        '{"kind": "geographic", "overrides": {"data_residency": {"region": "latam"}}}'
    )
    pm = ProfileManager([str(tmp_path)])
    bf = pm.get_deployment_profile("black_friday")
    out = pm.apply_profile({"performance": {"worker_threads": 8}}, bf)
    assert out["performance"]["worker_threads"] == 64
    assert out["caching_layers"]["l1_cache"]["ttl"] == 3600  # from high_volume
    assert bf.source.endswith("black_friday.yaml")
    assert pm.get_geographic_profile("LATAM").overrides["data_residency"]["region"] == "latam"
    assert {p.name for p in pm.list_profiles("geographic")} >= {"EU", "US", "APAC", "latam"}


def test_bad_custom_profile_names_the_file_and_field(tmp_path):
    (tmp_path / "bad.yaml").write_text("kind: regional\noverides: {}\n")
    with pytest.raises(ConfigError) as err:
        ProfileManager([str(tmp_path)])
    text = str(err.value)
    assert "bad.yaml" in text and "kind" in text and "overides" in text


def test_profiles_are_read_only():
    profile = get_profile_manager().get_deployment_profile(DeploymentProfile.HIGH_VOLUME)
    with pytest.raises(TypeError):
        profile.overrides["performance"]["worker_threads"] = 1


def test_extends_finds_a_profile_of_the_same_directory_whatever_the_file_order(tmp_path):
    # "a_peak" sorts before the profile it extends; "black_friday" extends "high_volume",
    # which a file of this directory replaces: the file's version must be the base.
    (tmp_path / "a_peak.yaml").write_text(
        "extends: z_base\noverrides:\n  performance:\n    batch_size: 7\n"
    )
    (tmp_path / "z_base.yaml").write_text("overrides:\n  performance:\n    worker_threads: 3\n")
    (tmp_path / "black_friday.yaml").write_text(
        "extends: high_volume\noverrides:\n  performance:\n    batch_size: 9\n"
    )
    (tmp_path / "high_volume.yaml").write_text(
        "overrides:\n  performance:\n    worker_threads: 48\n"
    )
    pm = ProfileManager([str(tmp_path)])
    assert pm.get_deployment_profile("a_peak").overrides["performance"] == {
        "worker_threads": 3,
        "batch_size": 7,
    }
    bf = pm.get_deployment_profile("black_friday").overrides
    assert bf["performance"] == {"worker_threads": 48, "batch_size": 9}
    assert "caching_layers" not in bf  # the built-in high_volume was replaced


def test_circular_extends_names_the_files(tmp_path):
    (tmp_path / "a.yaml").write_text("extends: b\noverrides: {}\n")
    (tmp_path / "b.yaml").write_text("extends: a\noverrides: {}\n")
    with pytest.raises(ConfigError, match=r"a\.yaml|b\.yaml") as err:
        ProfileManager([str(tmp_path)])
    assert "extends" in str(err.value)


def test_a_custom_profile_may_take_a_secret_from_a_reference(tmp_path):
    import shutil

    from cfgcore.config.manager import default_config_dir

    config_dir = tmp_path / "config"
    shutil.copytree(default_config_dir(), config_dir)
    (config_dir / "profiles").mkdir()
    (config_dir / "profiles" / "peak.yaml").write_text(
        "overrides:\n  data_sources:\n    kafka_cluster:\n      sasl_password: ${PEAK_KAFKA_PW}\n"
    )
    m = ConfigurationManager(config_dir, environ={"PEAK_KAFKA_PW": "pk-s3cret"}, profile="peak")
    m.load_environment_config("production")  # "${PEAK_KAFKA_PW}" is not a literal secret
    assert m.get("data_sources.kafka_cluster.sasl_password") == "pk-s3cret"


def test_profiles_directory_mounted_from_a_configmap(tmp_path):
    # kubelet's layout: a timestamped directory, "..data" pointing at it, visible symlinks.
    import shutil

    from cfgcore.config.manager import default_config_dir

    config_dir = tmp_path / "config"
    shutil.copytree(default_config_dir(), config_dir)
    profiles = config_dir / "profiles"
    real = profiles / "..2026_11_25_10_00_00.000000001"
    real.mkdir(parents=True)
    (real / "peak.yaml").write_text("overrides:\n  performance:\n    worker_threads: 77\n")
    os.symlink(real.name, profiles / "..data")
    os.symlink(os.path.join("..data", "peak.yaml"), profiles / "peak.yaml")
    m = ConfigurationManager(config_dir, environ={})
    m.load_environment_config("staging")  # directories among the profiles are not inputs
    m.set_profile("peak")
    assert m.get("performance.worker_threads") == 77


def test_custom_profile_merge_markers_delete_and_replace(tmp_path, base_config):
    (tmp_path / "lean.yaml").write_text(
        "overrides:\n"
        "  elasticsearch_cluster: __delete__\n"
        "  caching_layers:\n"
        "    __replace__: true\n"
        "    l1_cache: {type: in_memory, ttl: 5}\n"
    )
    pm = ProfileManager([str(tmp_path)])
    out = pm.apply_profile(base_config, "lean")
    assert "elasticsearch_cluster" in base_config and "elasticsearch_cluster" not in out
    assert out["caching_layers"] == {"l1_cache": {"type": "in_memory", "ttl": 5}}
    assert "__replace__" not in str(out)
