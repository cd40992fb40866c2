"""The probe server an operator starts with ``serve()``: a burst of connections is
queued by the kernel instead of dropped (the standard library's backlog of 5 made the
sixth simultaneous probe wait a second for a SYN retransmit, past a kubelet's 1 s
timeout), and a port already in use is an error naming the address and what to do."""

from __future__ import annotations

import errno
import http.client
import select
import socket
import threading

import pytest

from cfgcore.observability.http import serve

BURST = 64


def _connect_all(port: int, count: int, wait: float) -> int:
    """Start ``count`` non-blocking connects; how many completed their handshake."""
    pending = {}
    for _ in range(count):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        pending[s.fileno()] = s
    done = []
    try:
        deadline_polls = int(wait / 0.05)
        for _ in range(deadline_polls):
            if not pending:
                break
            _, writable, _ = select.select([], list(pending.values()), [], 0.05)
            for s in writable:
                if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                    done.append(s)
                    del pending[s.fileno()]
        return len(done)
    finally:
        for s in [*done, *pending.values()]:
            s.close()


def test_a_burst_of_connections_waits_in_the_accept_queue(manager):
    server = serve(manager, port=0, host="127.0.0.1")
    port = server.server_port
    # Stop accepting (the socket still listens), as when every connection arrives at
    # once, faster than the accept loop: what the kernel queues is the backlog. Past it
    # SYNs are dropped, and stay dropped while nothing accepts.
    server.shutdown()
    try:
        assert _connect_all(port, BURST, wait=3.0) == BURST
    finally:
        server.server_close()


def test_the_queued_burst_is_answered_once_accepting(manager):
    server = serve(manager, port=0, host="127.0.0.1")
    try:
        conns = [http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=10)]
        conns += [
            http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=10)
            for _ in range(BURST - 1)
        ]
        for c in conns:
            c.request("GET", "/health/ready")
        statuses = []
        for c in conns:
            r = c.getresponse()
            r.read()
            statuses.append(r.status)
            c.close()
        assert statuses == [200] * BURST
    finally:
        server.shutdown()
        server.server_close()


def test_a_port_in_use_names_the_address_and_what_to_do(manager):
    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    port = holder.getsockname()[1]
    try:
        with pytest.raises(OSError) as info:
            serve(manager, port=port, host="127.0.0.1")
        message = str(info.value)
        assert info.value.errno == errno.EADDRINUSE
        assert f"127.0.0.1:{port}" in message
        assert "health probes" in message and "port=0" in message
    finally:
        holder.close()


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback on this machine")
def test_an_ipv6_address_is_served(manager):
    # The standard library's server is IPv4 only: host="::1" (or "::" in an IPv6-only
    # pod) failed with "Address family for hostname not supported".
    server = serve(manager, port=0, host="::1")
    try:
        conn = http.client.HTTPConnection("::1", server.server_port, timeout=10)
        conn.request("GET", "/health/live")
        response = conn.getresponse()
        response.read()
        conn.close()
        assert response.status == 200
    finally:
        server.shutdown()
        server.server_close()


def test_idle_connections_take_at_most_the_cap_of_threads(manager, monkeypatch):
    # Each idle client held a thread for up to 10 s, without limit: thousands of them
    # took the threads (and a container's pids) the service itself needs.
    from cfgcore.observability import http as probe_http

    cap = 8
    monkeypatch.setattr(probe_http._ProbeServer, "max_connections", cap, raising=False)
    # Idle clients are not dropped during the test: what bounds the threads is the cap.
    monkeypatch.setattr(probe_http._ProbeHandler, "timeout", 120)
    server = serve(manager, port=0, host="127.0.0.1")
    port = server.server_port
    before = threading.active_count()
    idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(3 * cap)]
    closed: set[socket.socket] = set()
    try:
        # Past the cap, a newcomer takes the place of the connection that waited longest
        # for its request: that one reads EOF, one for each connection past the cap.
        for _ in range(100):
            readable, _, _ = select.select([s for s in idle if s not in closed], [], [], 0.05)
            for s in readable:
                if s.recv(1) == b"":
                    closed.add(s)
            if len(closed) >= 2 * cap:
                break
        assert len(closed) == 2 * cap
        assert threading.active_count() - before <= cap
    finally:
        for s in idle:
            s.close()
    try:
        # The slots come back as the idle clients leave: probes are answered again.
        status = None
        for _ in range(100):
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                conn.request("GET", "/health/live")
                response = conn.getresponse()
                response.read()
                conn.close()
                status = response.status
                break
            except (ConnectionError, http.client.HTTPException):
                continue
        assert status == 200
    finally:
        server.shutdown()
        server.server_close()
