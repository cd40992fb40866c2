"""Health reports, and the probes served over real loopback HTTP (wsgiref and uvicorn)."""

from __future__ import annotations

import json
import os
import re
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest

from cfgcore.cli import main
from cfgcore.config.manager import ConfigurationManager
from cfgcore.experiments.dynamic import DynamicConfigurationManager
from cfgcore.observability.health import asgi_app, wsgi_app
from tests.redis_server import refused_port, wait_for


@pytest.fixture
def manager(bundled_config):
    m = ConfigurationManager(bundled_config, environ={})
    yield m
    m.close()


def _checks(report, status):
    return {c.name for c in (*report.liveness, *report.readiness) if c.status == status}


def test_a_loaded_manager_is_live_and_ready(manager):
    manager.load_environment_config("staging")
    manager.flags  # noqa: B018 - serve flags, so the evaluation is probed too
    report = manager.health()
    assert report.live and report.ready and report.reasons == []
    assert {"config_read", "flag_evaluation"} <= _checks(report, "ok")
    assert "version 1 of 'staging'" in str(report)
    assert json.loads(json.dumps(report.to_dict()))["ready"] is True


def test_a_closed_manager_is_live_but_not_ready_over_http_too(manager):
    # A process shutting down closes its manager: reads keep serving the last version,
    # but nothing follows changes any more, so the kubelet should send no new traffic.
    from cfgcore.observability.http import serve

    manager.load_environment_config("staging")
    server = serve(manager, port=0)
    url = f"http://127.0.0.1:{server.server_port}/health/ready"
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            assert response.status == 200
        manager.close()
        report = manager.health()
        assert report.live and not report.ready
        assert report.reasons == ["manager: closed: shutting down (reads serve the last version)"]
        assert manager.get("environment") == "staging"  # still served
        deadline = time.monotonic() + 10  # the server may share a report while it is young
        while True:
            try:
                urllib.request.urlopen(url, timeout=10).close()
            except urllib.error.HTTPError as exc:
                assert exc.code == 503
                break
            assert time.monotonic() < deadline, "/health/ready still answers 200 after close()"
            time.sleep(0.05)
    finally:
        server.shutdown()
        server.server_close()


def test_nothing_loaded_is_live_but_not_ready_and_the_report_loads_nothing(manager):
    report = manager.health()
    assert report.live and not report.ready
    assert report.reasons == ["configuration: no configuration loaded"]
    assert manager.version == 0  # asking did not load


def test_a_bad_reload_keeps_serving_and_stays_ready_with_a_reason(manager, bundled_config):
    manager.load_environment_config("staging")
    (bundled_config / "staging.yaml").write_text("music_streaming: [unclosed\n")
    assert manager.reload() is False
    report = manager.health()
    assert report.ready
    (reason,) = report.reasons
    assert reason.startswith("last_reload: rejected (parse); still serving version 1")
    assert "staging.yaml" in reason


def test_a_load_that_never_succeeded_says_why(bundled_config):
    (bundled_config / "staging.yaml").write_text("a: [\n")
    m = ConfigurationManager(bundled_config, environ={})
    with pytest.raises(Exception, match="invalid YAML"):
        m.load_environment_config("staging")
    report = m.health()
    assert not report.ready and "invalid YAML" in report.reasons[0]


def test_validation_disabled_is_reported_not_failed(bundled_config):
    m = ConfigurationManager(bundled_config, environ={}, validate=False)
    m.load_environment_config("staging")
    report = m.health()
    assert report.ready and report.reasons == [
        "validation: validation is disabled for this manager"
    ]


def test_a_watcher_that_stops_confirming_makes_the_configuration_stale(manager):
    manager.load_environment_config("staging")
    # the watcher polls once when ready, then only every 30 s: longer than the bound
    manager.enable_hot_reload(poll_interval=30)
    assert manager.health(max_staleness=5).ready
    wait_for(lambda: not manager.health(max_staleness=0.2).ready, timeout=10)
    report = manager.health(max_staleness=0.2)
    (reason,) = report.reasons
    assert reason.startswith("freshness: the file watcher has not confirmed the inputs")


def test_a_watcher_thread_that_died_is_not_reported_as_loaded_on_demand(manager):
    # The thread ends without stop() (as an uncaught error would end it): hot reload
    # stopped silently, which readiness must say; a deliberate disable stays "ok".
    manager.load_environment_config("staging")
    manager.enable_hot_reload(poll_interval=30)
    watcher = manager.reloader._watcher
    watcher._stop.set()  # the thread's loop ends; nobody asked for it (wanted stays set)
    assert wait_for(lambda: not watcher.running, timeout=10)
    report = manager.health(max_staleness=60)
    assert not report.ready
    assert report.reasons == [
        "freshness: hot reload is enabled but its file watcher thread is not running"
    ]
    manager.disable_hot_reload()
    report = manager.health(max_staleness=60)
    assert report.ready and "freshness" in _checks(report, "ok")


def test_max_staleness_comes_from_the_configuration(bundled_config):
    path = bundled_config / "base.yaml"
    path.write_text(path.read_text().replace("health_monitoring:\n", "health_monitoring:\n"
                                             "  max_staleness: 0.2\n", 1))  # fmt: skip
    m = ConfigurationManager(bundled_config, environ={})
    try:
        m.load_environment_config("staging")
        m.enable_hot_reload(poll_interval=30)
        wait_for(lambda: not m.health().ready, timeout=10)
        assert "bound 0.2 s" in m.health().reasons[0]
        assert m.health(max_staleness=600).ready  # the argument wins
    finally:
        m.close()


# --------------------------------------------------------------------------- Redis


def test_a_disconnected_follower_goes_stale_and_recovers(redis_server, tmp_path):
    url = redis_server.url + f"?namespace=h&cache={tmp_path / 'cache.msgpack'}&poll=0.2"
    (tmp_path / "state").mkdir()
    dyn = DynamicConfigurationManager(store=url, state_dir=tmp_path / "state")
    try:
        wait_for(lambda: dyn.store.connected)
        report = dyn.health(max_staleness=1.0)
        assert report.ready, report.reasons
        assert "flag_store" in _checks(report, "ok")
        redis_server.stop()
        wait_for(lambda: not dyn.store.connected)
        # within the bound: still ready, with a warning saying what is served
        wait_for(lambda: "flag_store" in _checks(dyn.health(max_staleness=30), "warn"))
        # beyond it: not ready
        wait_for(lambda: not dyn.health(max_staleness=1.0).ready, timeout=15)
        (reason,) = dyn.health(max_staleness=1.0).reasons
        assert reason.startswith("flag_store: not following") and "bound 1 s" in reason
        assert dyn.health(max_staleness=1.0).live  # it still evaluates
        redis_server.start()
        wait_for(lambda: dyn.health(max_staleness=1.0).ready, timeout=20)
    finally:
        dyn.close()
        dyn.store.close()  # the shared flag set's follower thread, too


def test_a_process_started_from_an_old_cache_file_is_not_ready(redis_server, tmp_path):
    from cfgcore.runtime.redis_store import RedisFlagStore

    cache = tmp_path / "cache.msgpack"
    url = redis_server.url + f"?namespace=c&cache={cache}"
    writer = RedisFlagStore(url)  # another process that followed the store, once
    writer.watch(lambda doc: None)
    writer.update(lambda snapshot: snapshot)
    wait_for(lambda: cache.exists())
    writer.close()
    redis_server.stop()
    old = time.time() - 3600
    os.utime(cache, (old, old))  # written an hour ago
    (tmp_path / "state").mkdir()
    dyn = DynamicConfigurationManager(store=url, state_dir=tmp_path / "state")
    try:
        assert dyn.store.serving_cache
        assert dyn.health(max_staleness=7200).ready  # fresh enough for a loose bound
        report = dyn.health(max_staleness=60)
        assert not report.ready
        (reason,) = report.reasons
        assert "from the cache file" in reason
        age = re.search(r"last confirmed current (\d+) s ago", reason)
        assert age is not None and int(age[1]) >= 3599, reason
    finally:
        dyn.close()
        dyn.store.close()  # the shared flag set's follower thread, too


# --------------------------------------------------------------------------- HTTP


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args):  # keep test output clean
        pass


@pytest.fixture
def wsgi_server():
    servers = []

    def serve(app):
        server = make_server("127.0.0.1", 0, app, handler_class=_Quiet)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}"

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


def fetch(url, method="GET"):
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


def _probe_everything(base, manager, bundled_config):
    status, headers, body = fetch(base + "/health/live")
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert json.loads(body)["live"] is True
    status, _, body = fetch(base + "/health/ready")
    assert status == 503 and json.loads(body)["ready"] is False  # nothing loaded yet
    manager.load_environment_config("staging")
    status, _, body = fetch(base + "/health/ready")
    assert status == 200 and json.loads(body)["ready"] is True
    status, headers, body = fetch(base + "/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain; version=0.0.4")
    from prometheus_client.parser import text_string_to_metric_families

    names = {f.name for f in text_string_to_metric_families(body.decode())}
    assert {"cfgcore_config_loads", "cfgcore_config_version"} <= names
    # a rejected reload: still 200, the reason in the body
    (bundled_config / "staging.yaml").write_text("music_streaming: [unclosed\n")
    assert manager.reload() is False
    status, _, body = fetch(base + "/health/ready")
    checks = {c["name"]: c for c in json.loads(body)["readiness"]}
    assert status == 200 and checks["last_reload"]["status"] == "warn"
    assert fetch(base + "/nope")[0] == 404
    assert fetch(base + "/health/live", method="POST")[0] == 405
    status, headers, body = fetch(base + "/health/live", method="HEAD")
    assert status == 200 and body == b"" and int(headers["Content-Length"]) > 0


def test_wsgi_probes_over_loopback(wsgi_server, manager, bundled_config):
    pytest.importorskip("prometheus_client")
    _probe_everything(wsgi_server(wsgi_app(manager)), manager, bundled_config)


def test_asgi_probes_over_loopback_with_uvicorn(manager, bundled_config):
    pytest.importorskip("prometheus_client")
    uvicorn = pytest.importorskip("uvicorn")
    # The socket bound here and handed over: a port chosen and given up before uvicorn
    # binds it may be taken by another worker's server meanwhile.
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(asgi_app(manager), host="127.0.0.1", port=port, lifespan="on",
                            log_level="warning")  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started)
        _probe_everything(f"http://127.0.0.1:{port}", manager, bundled_config)
    finally:
        server.should_exit = True
        thread.join(10)
    assert not thread.is_alive()


def test_probe_paths_come_from_health_monitoring(wsgi_server, bundled_config):
    path = bundled_config / "base.yaml"
    text = path.read_text().replace('path: "/health/live"', 'path: "/livez"')
    text = text.replace('path: "/health/ready"', 'path: "/readyz"')
    path.write_text(text.replace('endpoint: "/metrics"', 'endpoint: "/internal/metrics"'))
    m = ConfigurationManager(bundled_config, environ={})
    try:
        m.load_environment_config("staging")
        base = wsgi_server(wsgi_app(m))
        assert fetch(base + "/livez")[0] == 200
        assert fetch(base + "/readyz")[0] == 200
        assert fetch(base + "/health/live")[0] == 404
        if "prometheus_client" in sys.modules or _has_prometheus():
            assert fetch(base + "/internal/metrics")[0] == 200
        assert m.update_config("health_monitoring.metrics.enabled", False)
        status, _, body = fetch(base + "/internal/metrics")
        assert status == 404 and b"/livez" in body
    finally:
        m.close()


def _has_prometheus() -> bool:
    try:
        import prometheus_client  # noqa: F401
    except ImportError:
        return False
    return True


def test_metrics_without_prometheus_client_is_a_clear_404(wsgi_server, manager, monkeypatch):
    for name in [m for m in sys.modules if m.startswith("prometheus_client")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.delitem(sys.modules, "cfgcore.observability.prometheus", raising=False)
    monkeypatch.setitem(sys.modules, "prometheus_client", None)  # import fails
    status, _, body = fetch(wsgi_server(wsgi_app(manager)) + "/metrics")
    assert status == 404
    assert b"pip install 'cfgcore[prometheus]'" in body


def test_the_dynamic_manager_serves_probes_too(wsgi_server, tmp_path):
    dyn = DynamicConfigurationManager(state_dir=tmp_path)
    try:
        base = wsgi_server(wsgi_app(dyn))
        status, _, body = fetch(base + "/health/ready")
        assert status == 200
        names = {c["name"] for c in json.loads(body)["liveness"]}
        assert names == {"flag_evaluation"}
    finally:
        dyn.close()


# --------------------------------------------------------------------------- CLI


def test_cli_health_ready_and_json(bundled_config, capsys):
    assert main(["health", "--config-dir", str(bundled_config), "-e", "staging"]) == 0
    out = capsys.readouterr().out
    assert "ready: yes" in out and "[  ok] flag_evaluation" in out
    assert main(["health", "--config-dir", str(bundled_config), "-e", "staging", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["ready"] is True and data["live"] is True


def test_cli_health_not_ready_exits_1_with_the_reason(bundled_config, capsys):
    (bundled_config / "staging.yaml").write_text("a: [\n")
    assert main(["health", "--config-dir", str(bundled_config), "-e", "staging"]) == 1
    out = capsys.readouterr().out
    assert "ready: NO" in out and "[fail] configuration: no configuration loaded" in out
    assert "staging.yaml" in out


def test_cli_health_asks_a_running_service(wsgi_server, manager, capsys):
    base = wsgi_server(wsgi_app(manager))
    assert main(["health", "--url", base + "/health/ready"]) == 1  # not loaded: 503
    assert "ready: NO" in capsys.readouterr().out
    manager.load_environment_config("staging")
    assert main(["health", "--url", base + "/health/ready", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ready"] is True
    assert main(["health", "--url", f"http://127.0.0.1:{refused_port()}/health/ready"]) == 1
    assert "cfgcore: error:" in capsys.readouterr().err
