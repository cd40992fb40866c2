"""The probe server ``serve()`` starts, as an attacker on the network and as a new user
see it: it listens on this host only unless given an address."""

from __future__ import annotations

import http.client
import json
import select
import socket
import threading
import time

import pytest

from cfgcore.observability import http as probe_http
from cfgcore.observability.http import serve


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


def _burst(port: int, path: str, count: int) -> list[int]:
    """``count`` GETs of ``path`` sent at once from as many threads; their statuses."""
    barrier = threading.Barrier(count)
    statuses: list[int] = []

    def one() -> None:
        barrier.wait()
        statuses.append(_get("127.0.0.1", port, path)[0])

    threads = [threading.Thread(target=one) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return statuses


class _CountingHealth:
    """The manager's own health(), counted, taking ``cost`` seconds more as a big
    snapshot's report does (a report copies the flag tables)."""

    def __init__(self, manager, cost: float) -> None:
        self.calls = 0
        self._health = manager.health
        self._cost = cost

    def __call__(self, *args, **kwargs):
        self.calls += 1
        time.sleep(self._cost)
        return self._health(*args, **kwargs)


def test_a_burst_of_probes_computes_one_report(manager, monkeypatch):
    # Each probe computed its own report, in Python, under the GIL the service's own
    # threads need: clients asking in a loop took most of the service's throughput.
    counting = _CountingHealth(manager, 0.2)
    monkeypatch.setattr(manager, "health", counting)
    server = serve(manager, port=0)
    try:
        statuses = _burst(server.server_port, "/health/ready", 16)
        assert statuses == [200] * 16
        assert counting.calls < 4  # 16 before: one report per request
    finally:
        server.shutdown()
        server.server_close()


def test_a_burst_of_scrapes_collects_once(manager):
    pytest.importorskip("prometheus_client")
    from cfgcore.observability.registry import registry

    calls: list[float] = []

    def slow_collector():
        calls.append(time.monotonic())
        time.sleep(0.2)  # what a scrape of thousands of flags costs
        return []

    registry().add_collector(slow_collector)
    server = serve(manager, port=0)
    try:
        statuses = _burst(server.server_port, "/metrics", 16)
        assert statuses == [200] * 16
        assert len(calls) < 4  # 16 before
    finally:
        registry().remove_collector(slow_collector)
        server.shutdown()
        server.server_close()


def test_a_change_is_reported_once_the_shared_report_is_old(manager):
    server = serve(manager, port=0)
    try:
        status, body = _get("127.0.0.1", server.server_port, "/health/ready")
        assert status == 200 and "version 1 of 'staging'" in body.decode()
        manager.load_environment_config("production")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            status, body = _get("127.0.0.1", server.server_port, "/health/ready")
            if "of 'production'" in body.decode():
                break
            time.sleep(0.01)
        assert "of 'production'" in body.decode()
    finally:
        server.shutdown()
        server.server_close()


def _wait_closed_by_server(sock: socket.socket, seconds: float = 10.0) -> bool:
    """Whether the server closes ``sock`` (EOF or reset) within ``seconds``."""
    ready, _, _ = select.select([sock], [], [], seconds)
    if not ready:
        return False
    try:
        return sock.recv(1) == b""
    except OSError:
        return True


def _handler_threads() -> list[threading.Thread]:
    """The probe server's connection threads (socketserver names them by their target)."""
    return [t for t in threading.enumerate() if "process_request_thread" in t.name]


def test_a_probe_is_served_while_slow_clients_hold_every_slot(manager, monkeypatch):
    # A slowloris client kept MAX_CONNECTIONS connections open, each trickling its
    # request: every new connection, a kubelet's probe included, was closed on arrival,
    # and the pod was restarted. The newcomer now takes the place of the connection that
    # has waited longest for its request.
    cap = 8
    monkeypatch.setattr(probe_http._ProbeServer, "max_connections", cap)
    monkeypatch.setattr(probe_http._ProbeHandler, "timeout", 120)  # none drops by itself
    server = serve(manager, port=0)
    port = server.server_port
    slow = []
    try:
        for _ in range(cap):
            sock = socket.create_connection(("127.0.0.1", port))
            sock.sendall(b"GET /health/li")  # and nothing more
            slow.append(sock)
        status, body = _get("127.0.0.1", port)
        assert status == 200 and json.loads(body)["live"] is True
        assert _wait_closed_by_server(slow[0])  # the oldest made room
        assert not _wait_closed_by_server(slow[-1], 0.2)  # the newest still waits
        # Again and again, with the slots filled up each time: a probe is always
        # served, and those dropped are always the oldest slow clients.
        for _ in range(4):
            sock = socket.create_connection(("127.0.0.1", port))
            sock.sendall(b"GET /health/li")
            slow.append(sock)
            assert _get("127.0.0.1", port)[0] == 200
        readable, _, _ = select.select(slow, [], [], 0.5)
        closed = [sock in readable and sock.recv(1) == b"" for sock in slow]
        assert closed[0] and not closed[-1]
        assert closed == sorted(closed, reverse=True)  # a prefix: oldest first
        # one thread per connection still held, the dropped ones' threads ended (counted
        # by name: other tests in this worker may leave threads of their own running)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and len(_handler_threads()) > cap:
            time.sleep(0.05)
        assert len(_handler_threads()) <= cap
    finally:
        for sock in slow:
            sock.close()
        server.shutdown()
        server.server_close()


def test_without_a_waiting_connection_a_newcomer_is_closed(manager, monkeypatch):
    # Connections being answered are never dropped for a newcomer: with every slot
    # taken by one (a report and a scrape that take a while), the newcomer is refused.
    pytest.importorskip("prometheus_client")
    from cfgcore.observability.registry import registry

    cap = 2
    monkeypatch.setattr(probe_http._ProbeServer, "max_connections", cap)
    release = threading.Event()
    entered = threading.Semaphore(0)
    health = manager.health

    def held_health(*args, **kwargs):
        entered.release()
        release.wait(30)
        return health(*args, **kwargs)

    def held_collector():
        entered.release()
        release.wait(30)
        return []

    monkeypatch.setattr(manager, "health", held_health)
    registry().add_collector(held_collector)
    server = serve(manager, port=0)
    port = server.server_port
    busy = []
    try:
        for path in (b"/health/live", b"/metrics"):
            sock = socket.create_connection(("127.0.0.1", port))
            sock.sendall(b"GET " + path + b" HTTP/1.0\r\n\r\n")
            busy.append(sock)
        for _ in range(cap):  # both requests read and being answered
            assert entered.acquire(timeout=30)
        newcomer = socket.create_connection(("127.0.0.1", port))
        busy.append(newcomer)
        assert _wait_closed_by_server(newcomer)
        release.set()
        for sock in busy[:cap]:
            sock.settimeout(30)
            assert sock.recv(12).startswith(b"HTTP/1.0 200")
    finally:
        release.set()
        registry().remove_collector(held_collector)
        for sock in busy:
            sock.close()
        server.shutdown()
        server.server_close()


def test_a_refusal_with_an_empty_message_is_reported_not_raised(tmp_path):
    # The report quoted the first line of the refusal's message; an empty message (a
    # ConfigError("") from a store's or a listener's code) made it raise IndexError,
    # and every probe answered 500.
    import shutil

    from cfgcore.engine import bundled_flags_path
    from cfgcore.errors import ConfigError
    from cfgcore.experiments.dynamic import DynamicConfigurationManager

    shutil.copy(bundled_flags_path(), tmp_path / "flags.yaml")
    dyn = DynamicConfigurationManager(str(tmp_path / "flags.yaml"))
    server = serve(dyn, port=0)
    try:
        dyn._live.reject(ConfigError(""), "test", "test")
        status, body = _get("127.0.0.1", server.server_port, "/health/ready")
        assert status == 200
        (flags,) = [c for c in json.loads(body)["readiness"] if c["name"] == "flags"]
        assert flags["status"] == "warn"
        assert flags["detail"].endswith("ConfigError")
    finally:
        server.shutdown()
        server.server_close()
        dyn.close()


def test_a_probe_is_served_while_clients_that_do_not_read_hold_every_slot(manager, monkeypatch):
    # A client that sends its whole request for /metrics and then reads nothing holds
    # its connection while the server waits to send a scrape too big for the socket
    # buffers (thousands of flags): it was no longer "waiting for its request", so with
    # MAX_CONNECTIONS of them every newcomer, a kubelet's probe included, was closed on
    # arrival until the send timed out. A connection waiting on its client to take the
    # response may be dropped for a newcomer too, oldest first.
    pytest.importorskip("prometheus_client")
    from cfgcore.observability.registry import Family, registry

    cap = 4
    monkeypatch.setattr(probe_http._ProbeServer, "max_connections", cap)
    monkeypatch.setattr(probe_http._ProbeHandler, "timeout", 120)  # none drops by itself
    big = Family("cfgcore_test_big_scrape", "gauge", "x" * 8_000_000)  # past any buffer

    def big_scrape():
        return [big]

    registry().add_collector(big_scrape)
    server = serve(manager, port=0)
    port = server.server_port
    stalled = []
    try:
        for _ in range(cap):
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.connect(("127.0.0.1", port))
            sock.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
            stalled.append(sock)
            # its response has begun (and stalls): the request was read
            assert select.select([sock], [], [], 30)[0]
        status, body = _get("127.0.0.1", port)
        assert status == 200 and json.loads(body)["live"] is True
        # the oldest made room: its response was cut short
        oldest = stalled[0]
        oldest.settimeout(30)
        received = 0
        try:
            while chunk := oldest.recv(1 << 20):
                received += len(chunk)
        except ConnectionResetError:
            pass
        assert received < 8_000_000
    finally:
        registry().remove_collector(big_scrape)
        for sock in stalled:
            sock.close()
        server.shutdown()
        server.server_close()


def _send_queue(server_port: int, client_port: int) -> int | None:
    """Bytes the kernel holds unsent on the server's side of a loopback connection
    (Linux's /proc/net/tcp ``tx_queue``), or None when the row is not there."""
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(path, encoding="ascii") as rows:
            for row in list(rows)[1:]:
                fields = row.split()
                local, remote = fields[1].rsplit(":", 1)[1], fields[2].rsplit(":", 1)[1]
                if int(local, 16) == server_port and int(remote, 16) == client_port:
                    return int(fields[4].split(":")[0], 16)
    return None


def test_a_client_that_does_not_read_holds_a_bounded_send_buffer(manager):
    # A client that asks for a big scrape and reads nothing made the kernel grow the
    # connection's send buffer to 4 MB (net.ipv4.tcp_wmem): MAX_CONNECTIONS of them
    # held 1 GB of kernel memory, counted by a container's memory limit.
    import os

    if not os.path.exists("/proc/net/tcp"):
        pytest.skip("reads the kernel's send queue from Linux's /proc/net/tcp")
    pytest.importorskip("prometheus_client")
    from cfgcore.observability.registry import Family, registry

    big = Family("cfgcore_test_big_scrape", "gauge", "x" * 8_000_000)

    def big_scrape():
        return [big]

    registry().add_collector(big_scrape)
    server = serve(manager, port=0)
    client = socket.socket()
    try:
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        client.connect(("127.0.0.1", server.server_port))
        client.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
        assert select.select([client], [], [], 30)[0]  # the response has begun
        # wait for the queue to stop growing (the server is blocked sending)
        seen: list[int | None] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (len(seen) < 5 or len(set(seen[-5:])) > 1):
            seen.append(_send_queue(server.server_port, client.getsockname()[1]))
            time.sleep(0.05)
        queued = seen[-1]
        assert queued is not None and 0 < queued <= 512 * 1024, queued  # 2-4 MB before
    finally:
        registry().remove_collector(big_scrape)
        client.close()
        server.shutdown()
        server.server_close()


def test_the_server_header_names_no_python_version(manager):
    server = serve(manager, port=0)
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=10)
        try:
            conn.request("GET", "/health/live")
            response = conn.getresponse()
            response.read()
            assert response.status == 200
            assert response.getheader("Server") == "cfgcore", response.getheaders()
        finally:
            conn.close()
    finally:
        server.shutdown()
        server.server_close()


def test_an_error_answered_before_the_application_names_no_python_version(manager):
    server = serve(manager, port=0)
    try:
        with socket.create_connection(("127.0.0.1", server.server_port), timeout=10) as sock:
            sock.sendall(b"GET /health/live HTTP/1.1\r\n" + b"X: y\r\n" * 200 + b"\r\n")
            head = sock.makefile("rb").read().split(b"\r\n\r\n", 1)[0].decode("latin-1")
        assert head.startswith("HTTP/1.") and " 200 " not in head.splitlines()[0], head
        assert "Server: cfgcore\r\n" in head + "\r\n" and "Python" not in head, head
    finally:
        server.shutdown()
        server.server_close()
