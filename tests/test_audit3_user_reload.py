"""Round 3, the new user: what a reload says when it keeps the last good version."""

from __future__ import annotations

import pytest

from cfgcore.config.manager import ConfigurationManager
from tests.conftest import scaffolded_config


@pytest.fixture
def manager(tmp_path, monkeypatch):
    cfg = scaffolded_config(tmp_path, monkeypatch, "staging")
    m = ConfigurationManager(cfg, record_usage=False)
    m.load_environment_config("staging")
    yield m
    m.close()


def test_an_emptied_file_keeps_the_last_version_and_says_how_to_empty_a_layer(manager):
    staging = manager.config_dir + "/staging.yaml"
    with open(staging, "w"):
        pass  # emptied: a write in progress, or on purpose
    assert manager.reload() is False
    assert manager.get("performance.worker_threads") == 8
    assert str(manager.last_error) == (
        f"{staging}: file is empty (a write in progress?); keeping the previous "
        "configuration (write '{}' for an intentionally empty layer, then reload)"
    )
    with open(staging, "w") as f:
        f.write("{}\n")  # what the message says: the layer is now empty on purpose
    assert manager.reload() is True
    # base.yaml's own value: the staging overlay is gone
    assert manager.get("music_streaming.cdn.base_url") == "http://localhost:8081/audio"
