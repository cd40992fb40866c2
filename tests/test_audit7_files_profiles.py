"""Round 7, custom profiles: a profile that extends itself.

``profiles/peak.yaml`` with ``extends: peak`` (a copy-paste slip) was refused as
"unknown deployment profile 'peak'" - about the very profile the file defines, which
sends the operator looking for a missing file. The refusal now says the profile
extends itself; a custom profile named after a built-in still extends that built-in.
"""

from __future__ import annotations

import pytest

from cfgcore.config.manager import ConfigurationManager
from cfgcore.errors import ConfigError


def _dir(tmp_path, profile: str):
    (tmp_path / "base.yaml").write_text("performance:\n  worker_threads: 4\n")
    (tmp_path / "development.yaml").write_text("{}\n")
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "peak.yaml").write_text(profile)
    return tmp_path


@pytest.mark.parametrize("extends", ["peak", "PEAK"])
def test_a_profile_extending_itself_is_refused_as_such(tmp_path, extends):
    d = _dir(
        tmp_path,
        f"kind: deployment\nextends: {extends}\noverrides:\n  performance:\n"
        "    worker_threads: 64\n",
    )
    m = ConfigurationManager(d, environment="development", profile="peak", environ={})
    with pytest.raises(ConfigError) as err:
        m.load_environment_config()
    (problem,) = err.value.problems
    assert problem.file is not None and problem.file.endswith("peak.yaml")
    assert (problem.path, problem.line) == ("extends", 2)
    assert "extends itself" in problem.message
    assert "unknown" not in problem.message


def test_a_custom_profile_named_after_a_built_in_extends_the_built_in(tmp_path):
    d = _dir(tmp_path, "")
    (d / "profiles" / "peak.yaml").unlink()
    (d / "profiles" / "high_volume.yaml").write_text(
        "kind: deployment\nextends: high_volume\noverrides:\n  performance:\n"
        "    worker_threads: 64\n"
    )
    m = ConfigurationManager(d, environment="development", profile="high_volume", environ={})
    m.load_environment_config()
    assert m.get("performance.worker_threads") == 64
    assert m.get("caching_layers.l1_cache.ttl") == 3600  # from the built-in it extends
