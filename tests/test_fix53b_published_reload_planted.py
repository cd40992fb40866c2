"""``config_source=``: the ``ENV.json`` a manager follows lives in its state directory,
and a start with Redis unreachable refuses one another user put there. A running
manager did not: another user's file renamed over it (a state directory its group may
write) was taken by the next reload (``reload()``, the hot-reload watcher) and served
while Redis was unreachable (the pair cannot be confirmed, so the file goes live
alone). The reload now refuses it, naming the file, and the live configuration keeps
serving; this user's own file goes live as before. Real redis-server, real files owned
by another uid (root gives them away)."""

from __future__ import annotations

import json
import os
import pathlib

import pytest

from cfgcore.cli import main
from cfgcore.config.manager import ConfigurationManager
from tests.planted import as_root, plant
from tests.test_fleet_cli import _config_dir

pytestmark = as_root

KEY = "music_streaming.streaming.prefetch_tracks"


@pytest.fixture
def followed(redis_server, monkeypatch, tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    os.chmod(state, 0o2775)  # (its group may create files there)
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(state))
    monkeypatch.setenv("JWT_SIGNING_KEY", "local-secret-0123456789abcdef0123456789")
    config = _config_dir(tmp_path)
    url = redis_server.url + "?namespace=reloadplanted&poll=0.2&cache=off"
    assert main(["publish", "--store", url, "--config-dir", str(config), "-e", "staging"]) == 0
    manager = ConfigurationManager(config_source=url, environment="staging")
    try:
        manager.load_environment_config()
        assert manager.get(KEY) == 2
        path = pathlib.Path(manager._published.path("staging"))
        os.chmod(path.parent, 0o2775)
        redis_server.kill()  # (the pair cannot be confirmed: the file would go live alone)
        yield manager, path
    finally:
        manager.close()


def _edited(path, value):
    tree = json.loads(path.read_text())
    tree["music_streaming"]["streaming"]["prefetch_tracks"] = value
    return json.dumps(tree).encode()


def test_another_users_file_is_not_taken_by_a_reload(followed):
    manager, path = followed
    plant(path, _edited(path, 7))
    assert manager.reload() is False
    assert manager.get(KEY) == 2  # (was 7: the planted value served)
    assert str(path) in str(manager.last_error) and "uid 4321" in str(manager.last_error)


def test_this_users_own_file_goes_live_alone_as_before(followed):
    manager, path = followed
    data = _edited(path, 9)
    aside = path.parent / ".mine"
    aside.write_bytes(data)
    os.replace(aside, path)  # (another process of this host, as this user)
    assert manager.reload() is True
    assert manager.get(KEY) == 9
