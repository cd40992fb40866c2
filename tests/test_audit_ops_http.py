"""The probe endpoint under requests a scanner or a misconfigured client sends: methods
it does not take (405 with ``Allow``, over real loopback HTTP for WSGI), and paths it
does not serve (404 naming what it serves, nothing else)."""

from __future__ import annotations

import asyncio
import http.client
import json
import threading
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest

from cfgcore.config.manager import ConfigurationManager
from cfgcore.observability.http import asgi_app, wsgi_app


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def wsgi_port(manager):
    server = make_server("127.0.0.1", 0, wsgi_app(manager), handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_port
    server.shutdown()
    server.server_close()


def _request(port, method, path):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=b"x" if method in ("POST", "PUT") else None)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "OPTIONS", "PATCH"])
def test_other_methods_get_405_with_allow_over_loopback(wsgi_port, method):
    status, headers, _ = _request(wsgi_port, method, "/health/ready")
    assert status == 405
    assert headers["Allow"] == "GET, HEAD"


@pytest.mark.parametrize("path", ["/../../etc/passwd", "/health/ready/../../../etc/passwd", "/%00"])
def test_odd_paths_are_404_naming_only_the_probes(wsgi_port, path):
    status, headers, body = _request(wsgi_port, "GET", path)
    assert status == 404 and headers["Content-Type"].startswith("text/plain")
    assert body == b"not found; this server answers /health/live, /health/ready, /metrics\n"


def test_asgi_405_carries_allow(manager):
    app = asgi_app(manager)
    sent: list[dict] = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "DELETE", "path": "/health/live", "headers": []}
    asyncio.run(app(scope, receive, send))
    assert sent[0]["status"] == 405
    assert (b"allow", b"GET, HEAD") in sent[0]["headers"]


def test_serve_answers_probes_while_a_client_sits_on_a_connection(manager):
    # make_server alone answers one connection at a time: a client that connects and
    # sends half a request line stalled every probe (the README's example did that).
    import socket

    from cfgcore.observability.http import serve

    server = serve(manager, port=0, host="127.0.0.1")
    idle = socket.create_connection(("127.0.0.1", server.server_port))
    try:
        idle.sendall(b"GET /hea")
        status, _, body = _request(server.server_port, "GET", "/health/live")
        assert status == 200 and json.loads(body)["live"] is True
        status, _, _ = _request(server.server_port, "GET", "/health/ready")
        assert status == 200
    finally:
        idle.close()
        server.shutdown()
        server.server_close()


def test_a_probe_path_beyond_ascii_is_served_by_wsgi_as_by_asgi(bundled_config):
    # WSGI gives the path as the request's bytes read as Latin-1 (PEP 3333): a
    # configured `/santé/live`, requested as `/sant%C3%A9/live`, was compared as
    # `/santÃ©/live` and answered 404 while the 404 named it (ASGI served it).
    from cfgcore.observability.http import serve

    base = bundled_config / "base.yaml"
    text = base.read_text(encoding="utf-8")
    assert 'path: "/health/live"' in text
    base.write_text(text.replace('path: "/health/live"', 'path: "/santé/live"'), "utf-8")
    m = ConfigurationManager(bundled_config, environ={})
    m.load_environment_config("staging")
    server = serve(m, port=0)
    try:
        status, _, body = _request(server.server_port, "GET", "/sant%C3%A9/live")
        assert status == 200 and json.loads(body)["live"] is True
        # the same character sent as one Latin-1 byte is another path
        assert _request(server.server_port, "GET", "/sant%E9/live")[0] == 404
        assert _request(server.server_port, "GET", "/sant%FF%C3/live")[0] == 404
    finally:
        server.shutdown()
        server.server_close()
        m.close()
