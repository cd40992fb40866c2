"""A published configuration, or a configuration file, this process refuses shows in
``health()`` and on the readiness probe while the source holds it, as a refused flag
document does (``flags``: refused what the source holds now; serving version N: why).

A published configuration: the ``config_source`` check warns
(ready: the last good configuration keeps serving) naming the version served, the
published version refused and why, with the key path, until a good version goes live.

Before, a refusal by the store (a document that does not decode, is nested too deeply
or fails its checksum) showed in the store's stats, its ``last_error`` and the log
only: ``health()`` said ``config_source: following ...; at version 1``, all well. A
configuration the manager refused (a reference this host cannot resolve) showed as
``last_reload`` until the next runtime update cleared it, the refused version still
stored. A configuration file a hot reload refused went out of ``health()`` as soon as a
runtime update went live, the broken file still on disk (until the watcher read it
again, or for good without one). A real redis-server, a real follower, real files and
a real watcher, real probes over loopback."""

from __future__ import annotations

import hashlib
import json
import threading
import urllib.request
from wsgiref.simple_server import WSGIRequestHandler, make_server

import msgspec
import pytest

from cfgcore.config.manager import ConfigurationManager
from cfgcore.observability.http import wsgi_app
from cfgcore.runtime.atomicio import atomic_write_text
from cfgcore.runtime.redis_store import PublishedConfig, RedisConfigStore
from tests.conftest import minimal_config_dir
from tests.waiting import wait_for

ENV = "development"
NS = "refusedhealth"
KEY = f"{{{NS}}}:config:{ENV}"


def _tree(a: int, **more: object) -> dict:
    return {"app": {"name": "svc"}, "svc": {"a": a}, **more}


def _deep(levels: int) -> dict:
    tree = _tree(2)
    node = tree["svc"]
    for _ in range(levels):
        node["d"] = {}
        node = node["d"]
    return tree


def _store_by_hand(redis_server, data: bytes, *, checksum: str | None = None) -> int:
    """``data`` written into the key as another program would (no checks), as the next
    version; returns that version."""
    r = redis_server.client()
    version = int(r.hget(KEY, "version") or 0) + 1
    checksum = checksum or hashlib.sha256(data).hexdigest()
    r.hset(KEY, mapping={"data": data, "checksum": checksum, "version": version})
    r.publish(KEY + ":changes", f"{version} {checksum}")
    return version


def _encoded(tree: dict) -> bytes:
    return msgspec.msgpack.encode(PublishedConfig(environment=ENV, config=tree))


def _check(manager, name: str = "config_source"):
    (check,) = [c for c in manager.health().readiness if c.name == name]
    return check


@pytest.fixture
def manager(redis_server, tmp_path, monkeypatch):
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    url = redis_server.url + f"?namespace={NS}&poll=0.2"
    with RedisConfigStore(url, ENV) as store:
        store.update(lambda _: PublishedConfig(environment=ENV, config=_tree(1)))
    m = ConfigurationManager(config_source=url, environment=ENV, environ={}, record_usage=False)
    m.load_environment_config()
    store = m._published.store(ENV)
    assert wait_for(lambda: store.connected)  # (until then: a warning of its own)
    yield m
    m.close()


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args):  # (no request lines on stderr)
        pass


@pytest.fixture
def ready_probe(manager):
    """GET /health/ready of ``manager``'s WSGI app served over loopback: (status, body)."""
    server = make_server("127.0.0.1", 0, wsgi_app(manager), handler_class=_Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()

    def get() -> tuple[int, dict]:
        url = f"http://127.0.0.1:{server.server_port}/health/ready"
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    yield get
    server.shutdown()
    server.server_close()


STORE_REFUSALS = {
    # what is stored, and a part of the reason health must quote
    "nested too deeply": (lambda: (_encoded(_deep(600)), None), "svc.d.d.d"),
    "not MessagePack": (lambda: (b"\xc1\xc1 not msgpack", None), "published configuration"),
    "checksum mismatch": (lambda: (_encoded(_tree(7)), "0" * 64), "checksum"),
}


@pytest.mark.parametrize("kind", STORE_REFUSALS)
def test_a_version_the_store_refuses_warns_until_a_good_one_goes_live(redis_server, manager, kind):
    stored, quoted = STORE_REFUSALS[kind]
    data, checksum = stored()
    store = manager._published.store(ENV)
    assert _check(manager).status == "ok"

    refused = _store_by_hand(redis_server, data, checksum=checksum)
    assert wait_for(lambda: store.stats["rejected"] == 1)
    # (counted, then told to the manager: on the follower's thread)
    assert wait_for(lambda: _check(manager).status == "warn"), _check(manager)

    report = manager.health()
    assert report.live and report.ready  # degraded, not down: version 1 serves
    check = _check(manager)
    assert "serving version 1;" in check.detail
    assert f"the published version {refused} was refused: " in check.detail
    assert quoted in check.detail
    assert any(r.startswith("config_source: ") for r in report.reasons)
    assert manager.get("svc.a") == 1

    good = _store_by_hand(redis_server, _encoded(_tree(3)))
    assert wait_for(lambda: store.version == good)  # (once live, the store counts it seen)
    assert manager.get("svc.a") == 3
    check = _check(manager)
    assert check.status == "ok" and f"at version {good}" in check.detail
    assert manager.health().reasons == []


def test_a_version_the_manager_refuses_warns_on_the_probe_until_a_good_one_goes_live(
    redis_server, manager, ready_probe
):
    # (a reference to a variable this host does not set: the publisher's host may)
    refused = _store_by_hand(
        redis_server, _encoded(_tree(2, db={"password": "${NOT_SET_ON_THIS_HOST}"}))
    )
    store = manager._published.store(ENV)
    assert wait_for(lambda: store.stats["rejected"] == 1)
    assert manager.last_error is not None

    status, body = ready_probe()
    checks = {c["name"]: c for c in body["readiness"]}
    assert status == 200 and body["ready"] is True
    detail = checks["config_source"]["detail"]
    assert checks["config_source"]["status"] == "warn", detail
    assert "serving version 1;" in detail
    assert f"the published version {refused} was refused: " in detail
    assert "db.password: environment variable NOT_SET_ON_THIS_HOST is not set" in detail

    # A runtime update goes live, yet the store still holds the refused version: the
    # process serves what the fleet's newer processes would not start on.
    assert manager.update_config("svc.b", 5) is True
    check = _check(manager)
    assert check.status == "warn" and f"published version {refused} was refused" in check.detail

    good = _store_by_hand(redis_server, _encoded(_tree(4)))
    assert wait_for(lambda: store.version == good)
    assert manager.get("svc.a") == 4
    status, body = ready_probe()
    checks = {c["name"]: c for c in body["readiness"]}
    assert status == 200 and checks["config_source"]["status"] == "ok"
    assert f"at version {good}" in checks["config_source"]["detail"]
    assert [c for c in body["readiness"] if c["status"] != "ok"] == []


def test_a_process_started_on_a_refused_version_serves_the_last_followed_and_warns(
    redis_server, manager
):
    # This host followed version 1 (on disk in the state directory); the store holds a
    # version no process can take when the next one starts.
    manager.close()
    refused = _store_by_hand(redis_server, _encoded(_deep(600)))
    m = ConfigurationManager(
        config_source=manager._published.url, environment=ENV, environ={}, record_usage=False
    )
    try:
        m.load_environment_config()
        assert m.get("svc.a") == 1
        assert wait_for(lambda: _check(m).status == "warn"), _check(m)
        report = m.health()
        assert report.ready
        detail = _check(m).detail
        assert "serving what this host followed last;" in detail
        assert f"the published version {refused} was refused: " in detail
        assert "svc.d.d.d" in detail and "nested deeper than" in detail
    finally:
        m.close()


def test_a_refused_config_file_stays_reported_after_a_runtime_update(
    tmp_path, monkeypatch, config_manager_factory
):
    config_dir = minimal_config_dir(tmp_path, monkeypatch)
    m = config_manager_factory(config_dir, hot=True)
    env_file = config_dir / "development.yaml"
    atomic_write_text(env_file, "environment: development\nsvc: {a: [unclosed\n")
    assert wait_for(lambda: m.last_error is not None)
    assert _check(m, "last_reload").detail.startswith("rejected (parse); still serving version 1")

    # A runtime update goes live; the file the watcher refused is still what is on disk.
    assert m.update_config("svc.b", 5) is True
    report = m.health()
    assert report.ready
    check = _check(m, "last_reload")
    assert check.status == "warn"
    assert check.detail.startswith("rejected (parse); still serving version 2: ")
    assert f"{env_file}:" in check.detail and "svc.a: invalid YAML" in check.detail

    atomic_write_text(env_file, "environment: development\nsvc: {a: 2}\n")
    assert wait_for(lambda: m.get("svc.a") == 2)
    assert m.health().reasons == []


def test_a_runtime_update_does_not_report_a_refused_file_again(
    tmp_path, monkeypatch, config_manager_factory
):
    # The update reset what had been told: the watcher's next read of the same broken
    # file sent a second error event and wrote a second audit entry for it.
    config_dir = minimal_config_dir(tmp_path, monkeypatch)
    m = config_manager_factory(config_dir, hot=True)
    events: list = []
    m.register_change_listener(events.append)
    env_file = config_dir / "development.yaml"
    atomic_write_text(env_file, "environment: development\nsvc: {a: [unclosed\n")
    assert wait_for(lambda: [e.kind for e in events] == ["error"])

    def refusals() -> int:
        m.audit.flush()
        return sum(1 for e in m.audit.entries() if "unclosed" in str(e) or "invalid YAML" in str(e))

    told = refusals()
    assert told >= 1
    assert m.update_config("svc.b", 5) is True
    m.reloader.poll()  # reads the inputs again (the update may have made them valid)
    assert [e.kind for e in events] == ["error", "change"]
    assert refusals() == told
    assert _check(m, "last_reload").detail.startswith("rejected (parse); still serving version 2")
    # a new break of the same file is told again
    atomic_write_text(env_file, "environment: development\nsvc: {a: {unclosed\n")
    assert wait_for(lambda: [e.kind for e in events] == ["error", "change", "error"])
