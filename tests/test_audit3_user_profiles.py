"""Round 3, the new user: a first custom profile file.

README names ``profiles/<name>.yaml`` but not its fields, so a first profile is often
written like a configuration layer (``performance:`` at the top). The refusal names
the file, line and key, the fields a profile file has, and where configuration keys go.
"""

from __future__ import annotations

import pytest

from cfgcore.config.manager import ConfigurationManager
from cfgcore.configuration_profiles import ProfileManager
from cfgcore.errors import ConfigError
from tests.conftest import run_cli as run
from tests.conftest import scaffolded_config


def test_configuration_keys_at_the_top_of_a_profile_say_to_use_overrides(tmp_path):
    (tmp_path / "peak.yaml").write_text("kind: deployment\nperformance:\n  worker_threads: 64\n")
    with pytest.raises(ConfigError) as exc:
        ProfileManager([str(tmp_path)])
    assert str(exc.value) == (
        f"{tmp_path / 'peak.yaml'}:2: performance: unknown profile field(s); a profile "
        "file's fields are kind, name, description, extends, region, overrides: the "
        "configuration keys a profile sets go under overrides (overrides: {performance: ...})"
    )


def test_a_misspelt_profile_field_gets_a_suggestion(tmp_path):
    (tmp_path / "peak.yaml").write_text("kind: deployment\noverides:\n  app: {debug: true}\n")
    with pytest.raises(ConfigError) as exc:
        ProfileManager([str(tmp_path)])
    text = str(exc.value)
    assert text.startswith(f"{tmp_path / 'peak.yaml'}:2: overides: unknown profile field(s)")
    assert "(did you mean 'overrides'?)" in text


def test_the_suggested_form_loads_and_applies(tmp_path, monkeypatch, capsys):
    cfg = scaffolded_config(tmp_path, monkeypatch, "staging")
    (cfg / "profiles").mkdir()
    (cfg / "profiles" / "peak.yaml").write_text(
        "kind: deployment\nperformance:\n  worker_threads: 64\n"
    )
    code, _, err = run(capsys, "get", "performance.worker_threads", "--profile", "peak")
    assert code == 1 and "go under overrides" in err and "peak.yaml:2: performance" in err
    (cfg / "profiles" / "peak.yaml").write_text(
        "kind: deployment\noverrides:\n  performance:\n    worker_threads: 64\n"
    )
    code, out, _ = run(capsys, "get", "performance.worker_threads", "--profile", "peak")
    assert (code, out) == (0, "64\n")
    manager = ConfigurationManager(cfg, profile="peak", record_usage=False)
    try:
        assert manager.load_environment_config("staging")["performance"]["worker_threads"] == 64
    finally:
        manager.close()
