"""The probe server (``serve()``) reads at most ``MAX_REQUEST_HEAD`` bytes of a request.
The standard library's own bounds (a 64 KB request line, 100 header lines of 64 KB)
let a client that sent 99 such lines and then waited make the server hold 6.6 MB for
its connection until the 10 s deadline, 1.7 GB over ``MAX_CONNECTIONS`` of them,
counted against the service's memory limit: a probe port reachable from the pod
network was a way to get the service killed for memory. Past the bound the request is
answered 431 (414 for a request line alone that long); probes with ordinary headers are
served as before."""

from __future__ import annotations

import socket

import pytest

from cfgcore.config.manager import ConfigurationManager
from cfgcore.observability.http import MAX_REQUEST_HEAD, serve


@pytest.fixture
def port(bundled_config):
    m = ConfigurationManager(bundled_config, environ={})
    m.load_environment_config("staging")
    server = serve(m, port=0)
    yield server.server_port
    server.shutdown()
    server.server_close()
    m.close()


def _exchange(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        return answer


def _status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def test_headers_past_the_bound_are_431_without_the_rest_being_read(port):
    start = b"GET /health/live HTTP/1.1\r\nHost: x\r\n"
    # exactly the bound, headers unfinished: all of it read, then refused (the server
    # holds no more of it than the bound, whatever the client goes on sending)
    line = b"X-Pad: " + b"a" * 1000 + b"\r\n"
    pad = line * (MAX_REQUEST_HEAD // len(line) + 1)
    head = (start + pad)[:MAX_REQUEST_HEAD]
    answer = _exchange(port, head)
    assert _status(answer) == 431
    assert b"Server: cfgcore" in answer


def test_a_request_line_past_the_bound_is_414(port):
    line = b"GET /" + b"a" * MAX_REQUEST_HEAD
    answer = _exchange(port, line[:MAX_REQUEST_HEAD])
    assert _status(answer) == 414


def test_probes_with_ordinary_headers_are_served(port):
    # a browser's worth of headers and cookies (under the bound): served as before
    headers = b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 500) for i in range(40))
    answer = _exchange(port, b"GET /health/ready HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n")
    assert _status(answer) == 200 and b'"ready": true' in answer
    assert _status(_exchange(port, b"GET /health/live HTTP/1.0\r\n\r\n")) == 200
