"""The probe server ``serve()`` starts, as an attacker on the network and as a new user
see it: it listens on this host only unless given an address."""

from __future__ import annotations

import http.client
import json
import socket

import pytest

from cfgcore.config.manager import ConfigurationManager
from cfgcore.observability import http as probe_http
from cfgcore.observability.http import serve


@pytest.fixture
def manager(bundled_config):
    m = ConfigurationManager(bundled_config, environ={})
    m.load_environment_config("staging")
    yield m
    m.close()


def _get(host: str, port: int, path: str = "/health/live") -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(host, port, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _refused(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


def test_by_default_only_this_host_can_connect(manager):
    # It listened on every interface: the reports (files, stores, refusals) and every
    # flag's name went to whoever could reach the port, unless the caller thought to
    # pass a host. 127.0.0.2 is another address of this machine (all of 127/8 is
    # loopback on Linux), as the pod's or the LAN's address would be.
    server = serve(manager, port=0)
    try:
        assert server.socket.getsockname()[0] == "127.0.0.1"
        status, body = _get("127.0.0.1", server.server_port)
        assert status == 200 and json.loads(body)["live"] is True
        assert _refused("127.0.0.2", server.server_port)
        assert probe_http.DEFAULT_HOST == "127.0.0.1"
    finally:
        server.shutdown()
        server.server_close()


def test_every_interface_when_asked(manager):
    server = serve(manager, port=0, host="0.0.0.0")  # noqa: S104 - what the test asks for
    try:
        for address in ("127.0.0.1", "127.0.0.2"):
            assert _get(address, server.server_port)[0] == 200
    finally:
        server.shutdown()
        server.server_close()
