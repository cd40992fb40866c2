"""A custom flag's status reads as its switch: ``register_custom_feature_flag(f,
enabled=False)`` reports ``enabled: False``, as ``set_feature_flag(f, False)`` does."""

from __future__ import annotations

import pytest

from cfgcore.dynamic_config import DynamicConfigurationManager

USERS = [{"user_id": f"u{i}"} for i in range(2000)]


@pytest.fixture
def manager(tmp_path):
    m = DynamicConfigurationManager(state_dir=str(tmp_path))
    yield m
    m.close()


def served(manager, flag: str) -> int:
    return sum(manager.is_feature_enabled(flag, u) for u in USERS)


@pytest.mark.parametrize("enabled", [False, True, 0, 1])
def test_registered_status_matches_what_is_served(manager, enabled):
    assert manager.register_custom_feature_flag("custom_x", enabled=enabled)
    status = manager.get_feature_flags_status()["custom_x"]
    assert status["enabled"] is bool(enabled)
    assert status["rollout_percentage"] == 100.0
    assert status["tags"] == ["custom"]
    assert served(manager, "custom_x") == (len(USERS) if enabled else 0)


def test_registered_off_reads_as_set_off_and_rolls_out_like_any_flag(manager):
    manager.register_custom_feature_flag("custom_x")
    manager.set_feature_flag("plain_y", False)
    statuses = manager.get_feature_flags_status()
    strip = ("description", "tags")
    assert {k: v for k, v in statuses["custom_x"].items() if k not in strip} == {
        k: v for k, v in statuses["plain_y"].items() if k not in strip
    }
    manager.set_feature_flag("custom_x", True, 25)
    status = manager.get_feature_flags_status()["custom_x"]
    assert (status["enabled"], status["rollout_percentage"]) == (True, 25.0)
    assert 350 < served(manager, "custom_x") < 650  # 25% of 2,000 users, bucketed
