"""Round 7: values that contain themselves, handed to the configuration APIs.

``update_config("x", v)`` with a dict that contains itself hung: the access-policy
targets of the change (``policy.config_change``) were computed by walking the dict,
which never ended, each lap building a longer key path, until memory ran out. The
update is refused anyway (``tree_problem``: nested more than 100 levels), and now
returns False at once. ``ProfileManager.apply_profile`` of such a configuration (or
one nested thousands of levels deep) raised a bare ``RecursionError``; it is now the
``ConfigError`` it raises for any configuration it cannot apply.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from typing import Any

import pytest

from cfgcore.config.manager import ConfigurationManager
from cfgcore.configuration_profiles import DeploymentProfile, get_profile_manager
from cfgcore.errors import ConfigError


def _self_containing() -> dict[str, Any]:
    tree: dict[str, Any] = {"a": 1}
    tree["self"] = tree
    return tree


def _deep(levels: int) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for _ in range(levels):
        tree = {"k": tree}
    return tree


def test_update_config_with_a_self_containing_dict_returns_false(tmp_path):
    # In a child with a memory cap and a time bound: the old code loops for ever,
    # growing, and must not take the test run (or the machine) with it.
    (tmp_path / "base.yaml").write_text("svc:\n  n: 1\n")
    (tmp_path / "development.yaml").write_text("{}\n")
    code = textwrap.dedent(
        f"""
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
        from cfgcore.config.manager import ConfigurationManager
        m = ConfigurationManager({str(tmp_path)!r}, environment="development", environ={{}})
        m.load_environment_config()
        v = {{"a": 1}}
        v["self"] = v
        ok = m.update_config("svc.extra", v)
        print(ok, m.get("svc"), "nested more than" in str(m.last_error))
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["False", "{'n':", "1}", "True"]


@pytest.mark.parametrize("value", [_deep(500), {"x": [_deep(300)]}], ids=["deep", "in-list"])
def test_update_config_refuses_a_too_deep_value_with_its_path(tmp_path, value):
    (tmp_path / "base.yaml").write_text("svc:\n  n: 1\n")
    (tmp_path / "development.yaml").write_text("{}\n")
    m = ConfigurationManager(tmp_path, environment="development", environ={})
    m.load_environment_config()
    assert m.update_config("svc.extra", value) is False
    assert "nested more than" in str(m.last_error)
    assert m.get("svc") == {"n": 1}


@pytest.mark.parametrize(
    "config", [_self_containing(), _deep(5000)], ids=["self-containing", "deep"]
)
@pytest.mark.parametrize("kind", ["deployment", "geographic"])
def test_apply_profile_refuses_such_a_configuration_with_a_config_error(config, kind):
    pm = get_profile_manager()
    with pytest.raises(ConfigError) as err:
        if kind == "deployment":
            pm.apply_profile(config, DeploymentProfile.HIGH_VOLUME)
        else:
            pm.apply_geographic_profile(config, "EU")
    assert "cannot apply profile" in str(err.value)


def test_apply_profile_still_merges_a_deep_but_allowed_configuration():
    config = {"svc": _deep(90)}
    out = get_profile_manager().apply_profile(config, DeploymentProfile.HIGH_VOLUME)
    assert out["svc"] == config["svc"]
    assert out["performance"]["worker_threads"] == 32
