"""``events.wait_idle()`` called once a change is visible waits for that change's events.

An activation swaps its snapshot in (readers see the new value) and then audits the
change (an fsync) and queues its events for the listeners. A caller who saw the new
value and then asked ``wait_idle()`` got True before the events were even queued when
the audit write was slow (a loaded disk): its listeners had not heard of the version
the caller had just read. Found as a rare failure of a reload race test on a loaded
machine; here a slow disk is stood in for by an audit write that takes 0.3 s. Real
files, a real watcher for the reload case."""

from __future__ import annotations

import os
import shutil
import threading
import time

import pytest

from cfgcore.config.manager import ConfigurationManager, default_config_dir
from cfgcore.runtime.atomicio import atomic_write_text
from tests.waiting import wait_for

DEFAULTS = default_config_dir()


@pytest.fixture
def manager(tmp_path):
    d = tmp_path / "config"
    shutil.copytree(DEFAULTS, d)
    m = ConfigurationManager(d, environ={})
    m.load_environment_config("staging")
    slow = m.audit.record_all

    def record_all(events):  # a disk that takes its time
        time.sleep(0.3)
        slow(events)

    m.audit.record_all = record_all
    yield m
    m.close()


def _listen(m) -> list[int]:
    seen: list[int] = []
    m.register_change_listener(lambda e: None if e.is_error else seen.append(e.version))
    return seen


def test_an_update_seen_by_a_reader_is_delivered_when_wait_idle_returns(manager):
    seen = _listen(manager)
    writer = threading.Thread(target=manager.update_config, args=("audit_wait.x", 1))
    writer.start()
    try:
        assert wait_for(lambda: manager.get("audit_wait.x") == 1)
        version = manager.version
        assert manager.events.wait_idle()
        assert version in seen, (version, seen)
    finally:
        writer.join()


def test_a_watcher_reload_seen_by_a_reader_is_delivered_when_wait_idle_returns(manager):
    seen = _listen(manager)
    manager.enable_hot_reload(poll_interval=3600.0)
    assert wait_for(lambda: manager.reloader.confirmed_at)
    path = os.path.join(manager.config_dir, "staging.yaml")
    with open(path, encoding="utf-8") as f:
        body = f.read()
    atomic_write_text(path, body + "\naudit_wait:\n  reload: 1\n")
    assert wait_for(lambda: manager.get("audit_wait.reload") == 1)
    version = manager.version
    assert manager.events.wait_idle()
    assert version in seen, (version, seen)
