"""``asgi_app`` mounted below a root path (``uvicorn --root-path /ops`` behind a proxy
that strips ``/ops``, or a framework's mount at ``/ops``): the ASGI ``path`` includes
the ``root_path`` (uvicorn 0.26 and later), and the app compared it whole with
``/health/live``, so every probe and scrape answered 404 and the kubelet restarted a
healthy pod. ``wsgi_app`` under a ``SCRIPT_NAME`` was right all along (``PATH_INFO``
leaves it out): both answer the same now."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import urllib.error
import urllib.request

import pytest

from cfgcore.observability.http import asgi_app, wsgi_app
from tests.redis_server import wait_for


def _asgi(app, path, root_path=None):
    sent: list[dict] = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": path, "headers": []}
    if root_path is not None:
        scope["root_path"] = root_path
    asyncio.run(app(scope, receive, send))
    return sent[0]["status"], sent[1]["body"]


def _wsgi(app, path, script_name=""):
    got: list[str] = []
    body = b"".join(
        app(
            {"REQUEST_METHOD": "GET", "PATH_INFO": path, "SCRIPT_NAME": script_name},
            lambda status, headers: got.append(status),
        )
    )
    return int(got[0].split()[0]), body


@pytest.mark.parametrize(
    ("root", "path", "status"),
    [
        ("/ops", "/ops/health/live", 200),  # the ASGI path, root path included
        ("/ops", "/ops/health/ready", 200),
        ("/ops/", "/ops/health/ready", 200),  # (a trailing slash on the root path)
        ("/ops", "/health/live", 200),  # a server that leaves the root path out
        ("/health", "/health/live", 200),  # ... even where the root path is a probe's start
        ("/ops", "/ops/nope", 404),
        ("/ops", "/opsx/health/live", 404),  # not below /ops
        ("", "/health/live", 200),
    ],
)
def test_probes_answer_below_the_root_path(manager, root, path, status):
    got, body = _asgi(asgi_app(manager), path, root)
    assert got == status, body
    if status == 200:
        assert json.loads(body)["live"] is True


def test_asgi_and_wsgi_mounted_at_a_prefix_answer_alike(manager):
    pytest.importorskip("prometheus_client")
    asgi, wsgi = asgi_app(manager), wsgi_app(manager)
    for probe in ("/health/live", "/health/ready", "/metrics", "/nope"):
        wsgi_status, _ = _wsgi(wsgi, probe, script_name="/ops")
        assert _asgi(asgi, "/ops" + probe, "/ops")[0] == wsgi_status
        assert wsgi_status == (404 if probe == "/nope" else 200)


def test_uvicorn_with_a_root_path_serves_the_probes(manager):
    uvicorn = pytest.importorskip("uvicorn")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(asgi_app(manager), host="127.0.0.1", port=port, lifespan="off",
                            log_level="warning", root_path="/ops")  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started)
        # the proxy in front strips /ops: uvicorn gets /health/ready
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/ready", timeout=10) as r:
            assert r.status == 200 and json.loads(r.read())["ready"] is True
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/elsewhere", timeout=10)
        assert caught.value.code == 404
        caught.value.close()
    finally:
        server.should_exit = True
        thread.join(10)
    assert not thread.is_alive()
