"""Fourth audit, hot reload: an edited ``.env`` file goes live (as the README promises).

The ``.env`` file beside the configuration directory (or ``$CFGCORE_ENV_FILE``) fills
``${VAR}`` references. Hot reload only fingerprinted the configuration files, so an
edited ``.env`` went live only with the next change to one of them, or an explicit
``reload()``. Real files, the real watcher and its poll.
"""

from __future__ import annotations

import os
import time

import pytest

from cfgcore.config.manager import ConfigurationManager
from cfgcore.runtime.atomicio import atomic_write_text
from tests.waiting import wait_for

VAR = "AUDIT4_RELOAD_SVC_URL"


@pytest.fixture
def service(tmp_path, monkeypatch):
    monkeypatch.delenv(VAR, raising=False)
    monkeypatch.delenv("CFGCORE_ENV_FILE", raising=False)
    config = tmp_path / "config"
    config.mkdir()
    (config / "base.yaml").write_text(f"app:\n  name: svc\nsvc:\n  url: ${{{VAR}}}\n")
    (config / "development.yaml").write_text("{}\n")
    env_file = tmp_path / ".env"
    env_file.write_text(f"{VAR}=http://one\n")
    m = ConfigurationManager(config, environment="development")  # reads ../.env
    m.load_environment_config()
    assert m.get("svc.url") == "http://one"
    events: list = []
    m.register_change_listener(events.append)
    yield m, env_file, events
    m.close()


def test_an_edited_env_file_goes_live_with_one_change(service):
    m, env_file, events = service
    m.enable_hot_reload(poll_interval=0.1)
    atomic_write_text(env_file, f"{VAR}=http://two\n")
    assert wait_for(lambda: m.get("svc.url") == "http://two")
    assert wait_for(lambda: events)
    assert [(e.config_path, e.old_value, e.new_value) for e in events] == [
        ("svc.url", "http://one", "http://two")
    ]
    assert m.last_error is None


def test_an_env_file_written_in_two_chunks_never_serves_the_first(service):
    m, env_file, events = service
    m.reloader.settle_ms = 1500  # wide against a loaded machine stretching the pause
    m.enable_hot_reload(poll_interval=0.05)
    with open(env_file, "w", encoding="utf-8") as fh:  # truncates: briefly empty
        fh.write(f"{VAR}=http://tw")
        fh.flush()
        os.fsync(fh.fileno())
        time.sleep(0.2)  # the writer's pause between its two writes (not a wait for us)
        fh.write("o-long\n")
    assert wait_for(lambda: m.get("svc.url") == "http://two-long")
    assert wait_for(lambda: events)
    assert [(e.config_path, e.new_value) for e in events] == [("svc.url", "http://two-long")]
    assert not any(e.is_error for e in events)
