"""The HTTP probes: ``/health/live``, ``/health/ready`` and ``/metrics``, for WSGI and ASGI.

Both apps serve a manager with a ``health()`` method (the configuration manager or the
dynamic-config manager): the probes answer 200 or 503 with the report as JSON (see
:mod:`cfgcore.observability.health`), ``/metrics`` answers with the Prometheus text
format, or 404 saying what to install when ``prometheus-client`` is missing. GET and
HEAD only. The paths come from the live configuration's ``health_monitoring`` block::

    health_monitoring:
      comprehensive_health_checks:
        liveness_probe: {path: /health/live}
        readiness_probe: {path: /health/ready}
      metrics: {enabled: true, endpoint: /metrics}

>>> server = serve(get_config_manager(), port=8080)  # 127.0.0.1 only  # doctest: +SKIP
>>> server.shutdown()                                                     # doctest: +SKIP

A kubelet probes the pod's address: there, ``serve(manager, port=8080, host="0.0.0.0")``.
"""

from __future__ import annotations

import asyncio
import errno
import http.client
import io
import json
import logging
import socket
import socketserver
import sys
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from cfgcore._numbers import integer_within, shown
from cfgcore.runtime.forks import after_fork_in_child

__all__ = ["DEFAULT_HOST", "asgi_app", "paths", "serve", "wsgi_app"]

# A probe client that connects and sends nothing (or a header a byte a second) is
# dropped after this many seconds: its whole request must arrive within them, so it
# never holds a thread for long.
CLIENT_TIMEOUT = 10.0

# Open connections the probe server serves at once (see _ProbeServer).
MAX_CONNECTIONS = 256

# Bytes of a response the kernel holds for a client that is not reading it (see
# _ProbeHandler.setup); the kernel counts twice this for its bookkeeping.
SEND_BUFFER = 64 * 1024

# The probe server's Server header.
SERVER_NAME = "cfgcore"

# Bytes of a request (its line and headers) the probe server reads at most: past them it
# answers 431 (414 for a request line alone that long) and closes the connection. A
# probe's request is a few hundred bytes; the standard library's own bounds (a 64 KB
# request line, 100 headers of 64 KB each) let one client make the server hold 6.6 MB
# per connection while it held the request unfinished, 1.7 GB for MAX_CONNECTIONS of
# them, counted against the service's memory limit.
MAX_REQUEST_HEAD = 32 * 1024

DEFAULT_PATHS = {"live": "/health/live", "ready": "/health/ready", "metrics": "/metrics"}

_TEXT = "text/plain; charset=utf-8"
_NO_PROMETHEUS = (
    b"Prometheus metrics need the prometheus-client package: pip install "
    b"'cfgcore[prometheus]' (cfgcore.metrics.snapshot() has the same numbers without it)\n"
)
_REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}


def paths(manager: Any) -> dict[str, str | None]:
    """``live``/``ready``/``metrics`` paths: the live configuration's
    ``health_monitoring`` settings where present, else :data:`DEFAULT_PATHS`;
    ``metrics`` is None when ``health_monitoring.metrics.enabled`` is false. Reads the
    live snapshot only (a manager that has not loaded uses the defaults)."""
    snap = getattr(manager, "_snap", None)
    config: Any = snap.config if snap is not None and snap.version else {}
    monitoring = _section(config, "health_monitoring")
    probes = _section(monitoring, "comprehensive_health_checks")
    metrics = _section(monitoring, "metrics")
    out: dict[str, str | None] = {
        "live": _path(_section(probes, "liveness_probe").get("path"), DEFAULT_PATHS["live"]),
        "ready": _path(_section(probes, "readiness_probe").get("path"), DEFAULT_PATHS["ready"]),
        "metrics": _path(metrics.get("endpoint"), DEFAULT_PATHS["metrics"]),
    }
    if metrics.get("enabled") is False:
        out["metrics"] = None
    return out


def _section(tree: Any, key: str) -> Mapping[str, Any]:
    value = tree.get(key) if isinstance(tree, Mapping) else None
    return value if isinstance(value, Mapping) else {}


def _path(value: Any, default: str) -> str:
    return value if isinstance(value, str) and value.startswith("/") else default


#: A report or a scrape one request computed is served to the requests that come while
#: it is younger than this many times what computing it took. Each is Python run under
#: the GIL the service's own threads need (a scrape of 10,000 flags takes ~180 ms): a
#: client asking in a loop, or many at once, took up to 80% of the service's throughput
#: and stalled its requests for 100 ms and more. So at most one in REUSE_FACTOR + 1 of
#: the time goes to them, whatever the request rate; an answer is at most that many
#: times its cost old (a few ms for a small service, under 2 s for 10,000 flags; a
#: kubelet probes every 10 s, Prometheus scrapes every 15-60 s).
REUSE_FACTOR = 9.0


class _Shared:
    """One computation at a time, its result reused while young (see REUSE_FACTOR):
    :meth:`get` for threads, :meth:`aget` for event loops."""

    __slots__ = ("_compute", "_name", "_lock", "_state", "_fresh", "_waiters", "_running",
                 "__weakref__")  # fmt: skip

    def __init__(self, compute: Callable[[], Any], name: str) -> None:
        self._compute = compute
        self._name = name  # of the thread computing for event loops
        self._lock = threading.Lock()  # held while computing
        self._state = threading.Lock()  # held for a moment: _waiters and _running
        self._fresh: tuple[Any, float, float] = (None, 0.0, 0.0)  # value, made, cost
        # Each request's future awaiting the computation, and its loop, oldest first.
        self._waiters: dict[asyncio.Future[Any], asyncio.AbstractEventLoop] = {}
        self._running = False
        _ALL_SHARED.add(self)

    def _young(self, now: float) -> Any:
        value, made, cost = self._fresh
        return value if value is not None and now - made <= cost * REUSE_FACTOR else None

    def get(self) -> Any:
        # Requests that arrive while one computes wait for it and take its result,
        # instead of each computing its own at the same time.
        with self._lock:
            started = time.monotonic()
            value = self._young(started)
            if value is not None:
                return value
            value = self._compute()
            made = time.monotonic()
            self._fresh = (value, made, made - started)
            return value

    async def aget(self) -> Any:
        """:meth:`get` for a coroutine, holding no thread while it waits: a young
        result is taken on the loop; otherwise the request awaits the one computation
        in flight, whatever loop started it, or starts it on a thread of its own
        (:attr:`_name`). However many requests come at once, one thread computes;
        none of the loop's default executor, which the application's own
        ``to_thread`` work shares, is taken."""
        value = self._young(time.monotonic())
        if value is not None:
            return value
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        with self._state:
            self._waiters[future] = loop
            start, self._running = not self._running, True
        if start:
            try:
                worker = threading.Thread(target=self._compute_for_loops, name=self._name)
                worker.daemon = True  # a report that never ends never holds up an exit
                worker.start()
            except BaseException as exc:  # no thread to be had (a pids limit)
                self._settle_waiters(exc, failed=True)
        try:
            return await future
        except asyncio.CancelledError:
            # Its client is gone: it leaves the queue, so a failure is told to a request
            # still waiting (each cancelled one cost a computation of its own: a report
            # failing after a slow store's timeout kept the next request waiting that long
            # for each), and requests cancelled while a report hangs are not kept.
            with self._state:
                self._waiters.pop(future, None)
            raise

    def _compute_for_loops(self) -> None:
        while True:
            try:
                value = self.get()
            except BaseException as exc:
                # As requests queued on the lock do: the first is told, and the next
                # computes again (a failure is not kept).
                with self._state:
                    first = next(iter(self._waiters), None)
                    loop = self._waiters.pop(first) if first is not None else None
                    again = self._running = bool(self._waiters)
                if first is not None and loop is not None:
                    self._settle_one(loop, first, exc, failed=True)
                if again:
                    continue
                return
            self._settle_waiters(value, failed=False)
            return

    def _settle_waiters(self, outcome: Any, failed: bool) -> None:
        with self._state:
            waiters, self._waiters = self._waiters, {}
            self._running = False
        for future, loop in waiters.items():
            self._settle_one(loop, future, outcome, failed)

    @staticmethod
    def _settle_one(
        loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any], outcome: Any, failed: bool
    ) -> None:
        try:
            loop.call_soon_threadsafe(_settle, future, outcome, failed)
        except RuntimeError:  # its loop closed meanwhile: nobody awaits it
            pass

    def _after_fork_in_child(self) -> None:
        # The computing thread, and the loops awaiting it, stayed in the parent.
        self._lock = threading.Lock()
        self._state = threading.Lock()
        self._waiters = {}
        self._running = False


def _settle(future: asyncio.Future[Any], outcome: Any, failed: bool) -> None:
    if future.done():  # its request was cancelled (a client gone, a server stopping)
        return
    if not failed:
        future.set_result(outcome)
    elif isinstance(outcome, StopIteration) or not isinstance(outcome, Exception):
        # A StopIteration a future cannot hold; a KeyboardInterrupt or SystemExit raised
        # by a report on cfgcore's thread, awaited, stopped the request's whole event loop
        # (asyncio lets them through), and a CancelledError passed for the request's own
        # cancellation: each fails its request only, as on a server's thread.
        error = RuntimeError(f"the computation raised {outcome!r}")
        error.__cause__ = outcome
        future.set_exception(error)
    else:
        future.set_exception(outcome)


_ALL_SHARED: weakref.WeakSet[_Shared] = weakref.WeakSet()


@after_fork_in_child
def _reset_shared_after_fork() -> None:
    for shared in list(_ALL_SHARED):
        shared._after_fork_in_child()


def _import_computations() -> None:
    """Import what reports and scrapes import on first use where the app is made, not on
    the thread of the first one: a process forked while that thread imported a module (a
    ``multiprocessing`` child started as a scrape came) had the module half imported,
    its lock held by a thread the child does not have, and every report or scrape in the
    child waited for ever."""
    import cfgcore.observability.evaluations  # noqa: F401 - what a scrape reads
    import cfgcore.observability.health  # noqa: F401 - what manager.health() imports

    try:
        import cfgcore.observability.prometheus  # noqa: F401
    except ImportError:  # answered by _scrape
        pass


def _scrape() -> tuple[int, str, bytes]:
    try:
        from cfgcore.observability.prometheus import CONTENT_TYPE, exposition
    except ImportError:
        return 404, _TEXT, _NO_PROMETHEUS
    return 200, CONTENT_TYPE, exposition()


class _Responder:
    """:func:`respond` for one app: reports and scrapes shared as :class:`_Shared` says."""

    def __init__(self, manager: Any) -> None:
        self.manager = manager
        _import_computations()
        self._report = _Shared(lambda: _rendered(manager.health()), "cfgcore-probe-report")
        self._scrape = _Shared(_scrape, "cfgcore-probe-scrape")

    def __call__(self, method: str, path: str) -> tuple[int, str, bytes]:
        return respond(self.manager, method, path, _shared=self)

    async def answer(self, method: str, path: str) -> tuple[int, str, bytes]:
        """:meth:`__call__` for an event loop: answered on the loop, a report or a
        scrape awaited from :meth:`_Shared.aget`."""
        route = _route(self.manager, method, path)
        if route == "metrics":
            return await self._scrape.aget()  # type: ignore[no-any-return]
        if isinstance(route, str):
            return _report_answer(route, await self._report.aget())
        return route


def _route(manager: Any, method: str, path: str) -> tuple[int, str, bytes] | str:
    """The answer to a request that needs no report or scrape; else what it needs:
    ``"live"``, ``"ready"`` or ``"metrics"``."""
    if method not in ("GET", "HEAD"):
        return 405, _TEXT, b"GET or HEAD only\n"
    where = paths(manager)
    if path in (where["live"], where["ready"]):
        return "live" if path == where["live"] else "ready"
    if where["metrics"] is not None and path == where["metrics"]:
        return "metrics"
    known = ", ".join(p for p in where.values() if p)
    return 404, _TEXT, f"not found; this server answers {known}\n".encode()


def _rendered(report: Any) -> tuple[bool, bool, bytes]:
    """A report as both probes answer it: live, ready, and the JSON body."""
    body = json.dumps(report.to_dict(), allow_nan=False).encode() + b"\n"
    return report.live, report.ready, body


def _report_answer(probe: str, rendered: tuple[bool, bool, bytes]) -> tuple[int, str, bytes]:
    live, ready, body = rendered
    ok = live if probe == "live" else ready
    return (200 if ok else 503), "application/json", body


def respond(
    manager: Any, method: str, path: str, *, _shared: _Responder | None = None
) -> tuple[int, str, bytes]:
    """``(status, content type, body)`` for one request (the body of a HEAD included:
    the server sends its length, not its bytes)."""
    route = _route(manager, method, path)
    if route == "metrics":
        return _scrape() if _shared is None else _shared._scrape.get()  # type: ignore[no-any-return]
    if isinstance(route, str):
        rendered = _rendered(manager.health()) if _shared is None else _shared._report.get()
        return _report_answer(route, rendered)
    return route


def _headers(status: int, ctype: str, body: bytes) -> list[tuple[str, str]]:
    headers = [
        ("Content-Type", ctype),
        ("Content-Length", str(len(body))),
        ("Cache-Control", "no-store"),
    ]
    if status == 405:  # RFC 9110 15.5.6: a 405 says which methods the resource takes
        headers.append(("Allow", "GET, HEAD"))
    return headers


def _wsgi_path(path: str) -> str:
    """A WSGI ``PATH_INFO`` as the text the client meant: WSGI gives the request's
    bytes read as Latin-1 (PEP 3333), so a configured ``/santé/live`` requested as
    ``/sant%C3%A9/live`` came as ``/santÃ©/live``. Bytes that are not UTF-8 stay
    undecoded (lone surrogates), matching no configured path."""
    if path.isascii():
        return path
    try:
        return path.encode("latin-1").decode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a server that decoded it already
        return path


def wsgi_app(manager: Any) -> Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]:
    """A WSGI application serving ``manager``'s probes and ``/metrics``. One request
    computes a report or a scrape at a time; requests meanwhile, and shortly after,
    share it (:data:`REUSE_FACTOR`)."""

    responder = _Responder(manager)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        status, ctype, body = responder(method, _wsgi_path(environ.get("PATH_INFO") or "/"))
        start_response(f"{status} {_REASONS[status]}", _headers(status, ctype, body))
        return [b"" if method == "HEAD" else body]

    return app


_log = logging.getLogger("cfgcore.observability.http")


class _RequestTooLarge(http.client.HTTPException):
    """More than :data:`MAX_REQUEST_HEAD` bytes of request: answered 431 (an
    ``HTTPException`` from reading the headers is the standard library's 431)."""


class _DeadlineReader(io.RawIOBase):
    """A connection's reading side that gives the whole request one deadline: the
    socket's timeout alone restarts at every read, so a client sending a header line
    every few seconds held its connection for ever. It reads at most ``limit`` bytes
    (:data:`MAX_REQUEST_HEAD`), then raises :class:`_RequestTooLarge`."""

    def __init__(self, sock: socket.socket, deadline: float, limit: int = MAX_REQUEST_HEAD) -> None:
        super().__init__()
        self._sock = sock
        self._deadline = deadline
        self._left = limit
        self._limit = limit

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the request did not arrive in time")
        if self._left <= 0:
            raise _RequestTooLarge(f"the request is over {self._limit:,} bytes")
        # Also bounds the response's send (sendall's timeout is its total time).
        self._sock.settimeout(left)
        with memoryview(buffer) as view:
            got = self._sock.recv_into(view, min(view.nbytes, self._left))
        self._left -= got
        return got


class _ResponseWriter(io.BufferedIOBase):
    """A connection's writing side that, as the response starts, files the connection
    as waiting on its client again: a client that sent its request and then reads
    nothing holds its connection while a response bigger than the socket buffers (a
    scrape of thousands of flags) waits to be sent, as a slowloris client holds one
    while its request is awaited."""

    def __init__(self, sock: socket.socket, started: Callable[[], None]) -> None:
        super().__init__()
        self._sock = sock
        self._started: Callable[[], None] | None = started

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        if self._started is not None:
            started, self._started = self._started, None
            started()
        self._sock.sendall(data)
        with memoryview(data) as view:
            return view.nbytes

    def fileno(self) -> int:
        return self._sock.fileno()


class _ProbeHandler(WSGIRequestHandler):
    timeout = CLIENT_TIMEOUT
    # The Server header names no Python version (the standard library's says
    # "WSGIServer/0.2 CPython/3.11.7" to whoever reaches the port): here, on the
    # errors answered before the application, and in _named_server on the others.
    server_version = SERVER_NAME

    def version_string(self) -> str:
        return SERVER_NAME

    def setup(self) -> None:
        super().setup()
        self.rfile.close()  # the socket's own reader: it would keep the socket open
        deadline = time.monotonic() + float(self.timeout or CLIENT_TIMEOUT)
        self.rfile = io.BufferedReader(_DeadlineReader(self.connection, deadline))
        sock = self.connection
        # Left to itself the kernel grows a connection's send buffer to 4 MB
        # (net.ipv4.tcp_wmem) for a client that reads nothing: MAX_CONNECTIONS of them
        # asking for a big scrape held 1 GB of kernel memory, which a container's
        # memory limit counts. Bounded, they hold under 40 MB; a scrape still leaves at
        # 128 KB per round trip (over 100 MB/s within a cluster).
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
        except OSError:  # a platform without it: the kernel's own size
            pass
        server = self.server
        self.wfile = _ResponseWriter(sock, lambda: server._awaiting_client(sock))  # type: ignore[attr-defined]

    def handle(self) -> None:
        try:
            super().handle()
        except _RequestTooLarge:
            # (the request line alone: the headers' are answered by parse_request)
            self.requestline = self.request_version = self.command = ""
            self.server._request_read(self.connection)  # type: ignore[attr-defined]
            self.send_error(414, "Request line too long")

    def parse_request(self) -> bool:
        # The request (line and headers) has arrived, good or bad: the connection is
        # no longer one a newcomer may take the place of.
        try:
            return super().parse_request()
        finally:
            self.server._request_read(self.connection)  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: Any) -> None:
        """Probes come every few seconds: no stderr line per request."""


class _ProbeServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True  # an open connection never keeps the process from exiting
    block_on_close = False
    # The standard library listens with a backlog of 5: a burst of more connections
    # than that (a scrape and the probes of several kubelets at once, a load balancer's
    # health checks) overflows the accept queue and the kernel drops the extra SYNs,
    # so those clients wait a whole second for the retransmit, past a kubelet's default
    # 1 s probe timeout. The kernel caps this at net.core.somaxconn.
    request_queue_size = socket.SOMAXCONN
    # A thread per connection, but not without end: each idle client holds one for up
    # to CLIENT_TIMEOUT seconds, and thousands of them (a flood, a leaking client)
    # would take the threads and pids the service itself needs (a container's pids
    # limit is shared by the whole process). Past this many open connections a new
    # one takes the place of the one that has waited longest on its client, for its
    # request or to take its response (see process_request); with none waiting, it is
    # closed at once, without a thread.
    max_connections = MAX_CONNECTIONS

    def server_activate(self) -> None:
        self._slots = threading.BoundedSemaphore(self.max_connections)
        # Connections waiting on their client (their request not arrived yet, or their
        # response started and not all taken), longest waiting first.
        self._waiting: dict[socket.socket, None] = {}
        self._waiting_lock = threading.Lock()
        super().server_activate()

    def process_request(self, request: Any, client_address: Any) -> None:
        # Full: the connections that sent nothing (or trickle their headers) are what a
        # slowloris client holds, and refusing the newcomer locked every kubelet probe
        # out for as long as one client kept MAX_CONNECTIONS of them open, reopening
        # each as CLIENT_TIMEOUT dropped it. The oldest is dropped instead: a probe
        # sends its request at once and reads its answer, so it is served, and only a
        # client still sending its request (or not reading its response) after all the
        # others is ever dropped.
        if not self._slots.acquire(blocking=False) and not (
            self._drop_oldest_waiting() and self._slots.acquire(timeout=1.0)
        ):
            self.shutdown_request(request)
            return
        with self._waiting_lock:
            self._waiting[request] = None
        try:
            super().process_request(request, client_address)  # starts the thread
        except BaseException:
            self._request_read(request)
            self._slots.release()
            raise

    def _drop_oldest_waiting(self) -> bool:
        """Shut down the connection that has waited longest on its client (its
        thread reads the end of the stream, or fails to send, gives up, and frees its
        slot)."""
        with self._waiting_lock:
            if not self._waiting:
                return False
            oldest = next(iter(self._waiting))
            del self._waiting[oldest]
            try:  # under the lock: its thread cannot have closed it meanwhile
                oldest.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        return True

    def _request_read(self, request: Any) -> None:
        with self._waiting_lock:
            self._waiting.pop(request, None)

    def _awaiting_client(self, request: Any) -> None:
        """``request``'s response has started: until it is sent, the connection waits
        on its client (to read it) and may make room for a newcomer, as one still
        sending its request does."""
        with self._waiting_lock:
            self._waiting[request] = None

    def shutdown_request(self, request: Any) -> None:
        self._request_read(request)  # before the socket is closed
        super().shutdown_request(request)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client dropped for being too slow, or one that reset or closed its
        connection, is routine on a network: a debug line, not a traceback on the
        service's stderr (the standard library prints one for each)."""
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):
            _log.debug("probe client %s dropped: %s", client_address, exc)
            return
        super().handle_error(request, client_address)


class _ProbeServer6(_ProbeServer):
    address_family = socket.AF_INET6


#: Where :func:`serve` listens unless told: this host only. The reports name files,
#: stores and refusals, and the metrics name every flag: other hosts see them only
#: when asked for (``host="0.0.0.0"``, or ``"::"``, for a kubelet, which reaches the
#: pod's address).
DEFAULT_HOST = "127.0.0.1"


def _named_server(app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    """``app`` answering with :data:`SERVER_NAME` as its Server header: the standard
    library's server adds its own (with the Python version) only where none is set."""

    def named(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        def start(status: str, headers: list[tuple[str, str]], *exc_info: Any) -> Any:
            return start_response(status, [*headers, ("Server", SERVER_NAME)], *exc_info)

        return app(environ, start)

    return named


def serve(manager: Any, port: int = 8080, host: str = DEFAULT_HOST) -> WSGIServer:
    """Serve ``manager``'s probes and ``/metrics`` on ``host:port`` (this host only by
    default, :data:`DEFAULT_HOST`: pass ``host="0.0.0.0"`` for every IPv4 interface,
    as a kubelet's probes need, or ``"::"`` on an IPv6 pod) from a background thread, one
    thread per connection, so a slow or idle client never holds up the others (the
    standard library's ``make_server`` alone answers one connection at a time: a client
    that connects and sends nothing stalls every probe), at most
    :data:`MAX_CONNECTIONS` at once (past them a new connection takes the place of the
    one that has waited longest on its client, to send its request or to read its
    response, or is closed when none is waiting).
    Returns the server: its ``server_port`` is the port bound (``port=0`` picks a free
    one); ``shutdown()`` then ``server_close()`` stop it. ``port`` is an integer from 0
    to 65535 (``numpy.int64`` too), else ValueError before anything is bound: ``True``
    bound port 1, ``"8080"`` and ``8080.0`` failed deep inside the socket code; ``host``
    is text, else TypeError (``""``, as for any socket, is every interface)."""
    port = integer_within("port", port, 0, 65535)
    if not isinstance(host, str):  # (None or bytes failed inside the socket code)
        raise TypeError(f"host: expected text such as '127.0.0.1' or '::', got {shown(host)}")
    # An IPv6 address ("::" for every interface of an IPv6-only pod, "::1") needs an
    # IPv6 socket: the standard library's server is IPv4 only.
    server_class = _ProbeServer6 if ":" in host else _ProbeServer
    try:
        server = make_server(
            host,
            port,
            _named_server(wsgi_app(manager)),
            server_class=server_class,
            handler_class=_ProbeHandler,
        )
    except OSError as exc:
        where = f"[{host}]:{port}" if ":" in host else f"{host or '*'}:{port}"
        hint = (
            "another process is listening there: stop it, or pass another port (port=0 "
            "picks a free one)"
            if exc.errno == errno.EADDRINUSE
            else "check the host and port"
        )
        raise OSError(
            exc.errno, f"cannot serve the health probes on {where}: {exc.strerror}; {hint}"
        ) from exc
    threading.Thread(target=server.serve_forever, name="cfgcore-probes", daemon=True).start()
    return server


Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def asgi_app(manager: Any) -> Callable[[dict[str, Any], Receive, Send], Awaitable[None]]:
    """An ASGI 3 application serving ``manager``'s probes and ``/metrics`` (mount it
    in a framework, or run it: ``uvicorn.run(asgi_app(manager), port=8080)``). Reports
    and scrapes run in a worker thread: a probe never blocks the event loop. However many
    requests come at once, the app holds at most two threads of its own (one computing a
    report, one a scrape) and none of the loop's default executor, which the
    application's own ``asyncio.to_thread`` work needs: requests meanwhile await the
    computation in flight, and a 404 or 405 is answered on the loop."""

    responder = _Responder(manager)

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        method = scope.get("method", "GET")
        status, ctype, body = await responder.answer(method, _asgi_path(manager, scope))
        headers = [(k.lower().encode(), v.encode()) for k, v in _headers(status, ctype, body)]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if method == "HEAD" else body})

    return app


def _asgi_path(manager: Any, scope: Mapping[str, Any]) -> str:
    """The path the app answers for: the request's ``path`` within the app's
    ``root_path``, where the app is mounted. The ASGI ``path`` includes the root path
    (uvicorn 0.26 and later give ``--root-path /ops`` and ``/health/live`` as
    ``/ops/health/live``, a framework's mount at ``/ops`` the same), so the probes
    answered 404 at every URL; WSGI's ``PATH_INFO`` leaves ``SCRIPT_NAME`` out already.
    A server that leaves the root path out of ``path`` (as older ones did) is answered
    at the path as given."""
    path = scope.get("path") or "/"
    root = (scope.get("root_path") or "").rstrip("/")
    if root and path.startswith(root) and path[len(root) : len(root) + 1] in ("/", ""):
        inner = path[len(root) :] or "/"
        if inner in paths(manager).values():
            return inner
    return path  # type: ignore[no-any-return]


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
