"""Hostile and broken clients of the probe server ``serve()`` starts.

A slowloris client that trickles its request a header line at a time, each within the
per-read timeout, held a connection (and a thread, and one of the server's
MAX_CONNECTIONS slots) for as long as it liked: enough of them locked every kubelet
probe out, and the pod was restarted. The whole request now has CLIENT_TIMEOUT
seconds. A client dropped for being too slow, or one that resets its connection, is
routine for a server on a network: it no longer prints a traceback on the service's
stderr.
"""

from __future__ import annotations

import http.client
import socket
import time

import pytest

from cfgcore.observability import http as probe_http
from cfgcore.observability.http import serve


@pytest.fixture
def short_timeout(monkeypatch):
    monkeypatch.setattr(probe_http._ProbeHandler, "timeout", 1.0)


def _closed_by_server(sock: socket.socket) -> bool:
    """Whether the server has closed (or reset) ``sock``: EOF or an error on read."""
    sock.settimeout(0.0)
    try:
        return sock.recv(1) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        sock.settimeout(None)


def _live_status(port: int) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/health/live")
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def test_a_request_trickled_a_line_at_a_time_is_dropped(manager, short_timeout):
    server = serve(manager, port=0, host="127.0.0.1")
    client = socket.create_connection(("127.0.0.1", server.server_port))
    try:
        client.sendall(b"GET /health/live HTTP/1.1\r\n")
        dropped = False
        # Each line comes well within the 1 s per-read timeout; the whole request
        # would take 6 s, six times what a request may take.
        for i in range(30):
            time.sleep(0.2)
            try:
                client.sendall(b"X-Slow-%d: x\r\n" % i)
            except OSError:
                dropped = True
                break
            if _closed_by_server(client):
                dropped = True
                break
        assert dropped, "a client trickling its headers kept its connection"
        # The server still answers others.
        assert _live_status(server.server_port) == 200
    finally:
        client.close()
        server.shutdown()
        server.server_close()


def test_a_prompt_request_is_still_answered(manager, short_timeout):
    server = serve(manager, port=0, host="127.0.0.1")
    try:
        for _ in range(3):
            assert _live_status(server.server_port) == 200
        client = socket.create_connection(("127.0.0.1", server.server_port))
        try:
            # Sent in pieces, but all of it long before the deadline.
            for piece in (b"GET /health/", b"live HTTP/1.1\r\n", b"Host: x\r\n", b"\r\n"):
                client.sendall(piece)
            client.settimeout(10)
            data = b""
            while chunk := client.recv(65536):
                data += chunk
            assert data.startswith(b"HTTP/1.0 200 ")
        finally:
            client.close()
    finally:
        server.shutdown()
        server.server_close()


def test_an_idle_or_resetting_client_prints_no_traceback(manager, short_timeout, capfd):
    server = serve(manager, port=0, host="127.0.0.1")
    try:
        idle = socket.create_connection(("127.0.0.1", server.server_port))
        try:
            idle.sendall(b"GET /health/li")
            for _ in range(100):  # dropped after the 1 s the request may take
                time.sleep(0.1)
                if _closed_by_server(idle):
                    break
            else:
                pytest.fail("an idle client was never dropped")
        finally:
            idle.close()
        # A client that resets its connection mid-request (SO_LINGER 0: RST on close).
        reset = socket.create_connection(("127.0.0.1", server.server_port))
        reset.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        reset.sendall(b"GET /health/live HTTP/1.1\r\n")
        reset.close()
        assert _live_status(server.server_port) == 200
    finally:
        server.shutdown()
        server.server_close()
    err = capfd.readouterr().err
    assert "Traceback" not in err, err
    assert "Exception occurred" not in err, err
