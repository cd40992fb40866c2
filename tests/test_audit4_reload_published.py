"""Fourth audit, hot reload: a configuration followed from Redis (``config_source``).

A new published version is written to the manager's directory and reloaded under the
manager's lock, on the Redis follower's thread. Its listeners ran right there, still
under that lock: a listener that handed work to another thread and waited for it (the
worker calling ``update_config``) waited forever, as did every other thread changing
the configuration while a slow listener ran. A real redis-server, a real follower.
"""

from __future__ import annotations

import threading

from cfgcore.config.manager import ConfigurationManager
from cfgcore.runtime.redis_store import PublishedConfig, RedisConfigStore
from tests.waiting import wait_for


def _publish(url: str, a: int) -> None:
    tree = {"app": {"name": "svc"}, "svc": {"a": a, "b": 0}}
    with RedisConfigStore(url, "development") as store:
        store.update(lambda _: PublishedConfig(environment="development", config=tree))


def test_a_listener_of_a_published_version_may_wait_for_another_threads_update(
    redis_server, tmp_path, monkeypatch
):
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    url = redis_server.url + "?namespace=audit4&poll=0.2"
    _publish(url, 1)
    m = ConfigurationManager(config_source=url, environment="development", environ={})
    outcome: list = []

    def listener(event):
        if event.source == "redis" and event.config_path == "svc.a":
            # hand the follow-up to a worker thread and wait for it, as services do
            def follow_up():
                outcome.append(("updated", m.update_config("svc.b", event.new_value)))

            worker = threading.Thread(target=follow_up)
            worker.start()
            worker.join(10)
            outcome.append(("worker finished", not worker.is_alive()))

    try:
        m.load_environment_config()
        assert m.get("svc.a") == 1
        m.register_change_listener(listener)
        _publish(url, 2)
        assert wait_for(lambda: len(outcome) == 2, timeout=30)
        assert outcome == [("updated", True), ("worker finished", True)]
        assert m.get("svc.a") == 2 and m.get("svc.b") == 2
    finally:
        m.close()


def test_a_slow_listener_holds_up_no_later_published_version(redis_server, tmp_path, monkeypatch):
    # The listeners ran on the follower's thread (after the lock): one that took its
    # time delayed every later published version for every reader of the process.
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    url = redis_server.url + "?namespace=audit4slow&poll=0.2"
    _publish(url, 1)
    m = ConfigurationManager(config_source=url, environment="development", environ={})
    release = threading.Event()
    seen: list[int] = []

    def slow(event):
        if event.config_path == "svc.a":
            seen.append(event.new_value)
            release.wait(30)

    try:
        m.load_environment_config()
        m.register_change_listener(slow)
        _publish(url, 2)
        assert wait_for(lambda: seen == [2], timeout=30)
        _publish(url, 3)  # goes live while the listener still holds version 2's event
        assert wait_for(lambda: m.get("svc.a") == 3, timeout=30)
        assert seen == [2] and not release.is_set()
        release.set()
        assert wait_for(lambda: seen == [2, 3], timeout=30)
    finally:
        release.set()
        m.close()
