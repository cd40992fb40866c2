"""The ASGI probe app under a flood of probes and scrapes while a report or a scrape is
slow: the application it is mounted in keeps its own threads. The loop's default
executor (``asyncio.to_thread``, ``run_in_executor(None, ...)``) has
min(32, cpus + 4) threads, 6 on a 2-core machine: each request took one and held it,
blocked behind the one computing, so the application's own work waited for the slowest
report."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
import threading
import time

import pytest

from cfgcore.observability import http as probe_http
from cfgcore.observability.http import asgi_app
from tests.redis_server import wait_for

FLOOD = 200
OURS = ("cfgcore-probe-report", "cfgcore-probe-scrape")


class _Gated:
    """Blocks on ``gate`` until the test opens it, counting its calls (in the process
    that created it only: a forked child passes through)."""

    def __init__(self, gate: threading.Event, then=None) -> None:
        self.gate = gate
        self.then = then
        self.calls = 0
        self._pid = os.getpid()

    def __call__(self, *args, **kwargs):
        if os.getpid() == self._pid:
            self.calls += 1
            self.gate.wait()
        return self.then(*args, **kwargs) if self.then is not None else []


@pytest.fixture
def gated(manager, monkeypatch):
    """The manager's reports and every scrape block until ``gate.set()``."""
    pytest.importorskip("prometheus_client")
    from cfgcore.observability.registry import registry

    gate = threading.Event()
    report = _Gated(gate, manager.health)
    scrape = _Gated(gate)
    monkeypatch.setattr(manager, "health", report)
    registry().add_collector(scrape)
    try:
        yield gate, report, scrape
    finally:
        gate.set()
        registry().remove_collector(scrape)


async def _request(app, path: str, method: str = "GET") -> tuple[int, dict[bytes, bytes], bytes]:
    sent: list[dict] = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    await app({"type": "http", "method": method, "path": path, "headers": []}, receive, send)
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    return sent[0]["status"], dict(sent[0]["headers"]), sent[1]["body"]


def _in_cfgcore_http(thread: threading.Thread) -> bool:
    """Whether ``thread`` is running (or blocked) inside the probe app's module."""
    frame = sys._current_frames().get(thread.ident or -1)
    while frame is not None:
        if frame.f_code.co_filename == probe_http.__file__:
            return True
        frame = frame.f_back
    return False


_BEFORE: set[threading.Thread] = set()


@pytest.fixture(autouse=True)
def _threads_before():
    _BEFORE.clear()
    _BEFORE.update(threading.enumerate())


def _default_executor_threads() -> list[threading.Thread]:
    """The default executors' threads started by this test."""
    return [t for t in threading.enumerate() if t.name.startswith("asyncio_") and t not in _BEFORE]


def _ours() -> list[threading.Thread]:
    """The probe app's computing threads started by this test."""
    return [t for t in threading.enumerate() if t.name in OURS and t not in _BEFORE]


def _flood_paths() -> list[tuple[str, str]]:
    kinds = [("GET", "/metrics"), ("GET", "/health/ready"), ("GET", "/health/live"),
             ("HEAD", "/health/ready"), ("HEAD", "/metrics")]  # fmt: skip
    return [kinds[i % len(kinds)] for i in range(FLOOD)]


def _failing_report(manager, monkeypatch, error=None, every: bool = False):
    """Make ``manager.health`` wait for the returned gate, then raise ``error()`` (on the
    first call only, unless ``every``; never without ``error``); returns (gate, the list
    of its calls)."""
    gate = threading.Event()
    calls: list[int] = []
    real = manager.health

    def health(*args, **kwargs):
        calls.append(1)
        gate.wait()
        if error is not None and (every or len(calls) == 1):
            raise error()
        return real(*args, **kwargs)

    monkeypatch.setattr(manager, "health", health)
    return gate, calls


async def _until(predicate, what: str) -> None:
    """Let the loop run until ``predicate()`` holds (AssertionError after 30 s)."""
    deadline = time.monotonic() + 30
    while not predicate():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.005)


def test_a_flood_takes_no_default_executor_thread_and_one_per_computation(manager, gated):
    gate, report, scrape = gated
    app = asgi_app(manager)
    seen: dict[str, object] = {}

    async def main() -> list[tuple[int, dict[bytes, bytes], bytes]]:
        loop = asyncio.get_running_loop()
        flood = [asyncio.create_task(_request(app, p, m)) for m, p in _flood_paths()]
        try:
            await _until(lambda: report.calls and scrape.calls, "the report and the scrape started")
            # What needs no report is answered meanwhile, on the loop.
            seen["404"] = await asyncio.wait_for(_request(app, "/nope"), 30)
            seen["405"] = await asyncio.wait_for(_request(app, "/health/ready", "POST"), 30)
            # The application's own work on the default executor runs while the flood
            # waits (before: every one of its threads was blocked behind the report,
            # and this waited for the gate).
            seen["job"] = await asyncio.wait_for(loop.run_in_executor(None, lambda: "done"), 30)
            seen["pending"] = sum(not t.done() for t in flood)
            seen["ours"] = sorted(t.name for t in _ours())
            seen["executor"] = [t.name for t in _default_executor_threads() if _in_cfgcore_http(t)]
            seen["calls"] = (report.calls, scrape.calls)
        finally:
            gate.set()
        return await asyncio.gather(*flood)

    answers = asyncio.run(main())

    assert seen["job"] == "done"
    assert seen["pending"] == FLOOD  # the gate held every one of them
    assert seen["executor"] == []  # no default-executor thread inside the probe app
    assert seen["ours"] == sorted(OURS)  # one thread per computation, whatever the flood
    assert seen["calls"] == (1, 1)
    assert seen["404"][0] == 404 and b"/health/live" in seen["404"][2]
    assert seen["405"][0] == 405 and seen["405"][1][b"allow"] == b"GET, HEAD"
    # Every request answered, and as before: the one report and the one scrape shared.
    assert (report.calls, scrape.calls) == (1, 1)
    gets: dict[str, bytes] = {}
    for (method, path), (status, headers, body) in zip(_flood_paths(), answers, strict=True):
        assert status == 200, (method, path)
        assert headers[b"cache-control"] == b"no-store"
        if method == "HEAD":
            assert body == b""
        else:
            assert int(headers[b"content-length"]) == len(body)
            gets.setdefault(path, body)
            assert body == gets[path]  # the shared answer
    assert json.loads(gets["/health/ready"])["ready"] is True
    assert json.loads(gets["/health/live"]) == json.loads(gets["/health/ready"])
    assert b"cfgcore_" in gets["/metrics"]
    # No thread left behind once the loop is closed.
    for t in _ours() + _default_executor_threads():
        t.join(30)
    assert _ours() == [] and _default_executor_threads() == []


def test_floods_from_several_loops_share_one_computation(manager, gated):
    gate, report, _ = gated
    app = asgi_app(manager)
    loops = 3
    started = threading.Barrier(loops + 1)
    answers: list[list[int]] = []

    async def flood() -> list[int]:
        tasks = [asyncio.create_task(_request(app, "/health/ready")) for _ in range(FLOOD // loops)]
        await asyncio.sleep(0)  # every request reaches its wait
        started.wait(30)
        return [status for status, _, _ in await asyncio.gather(*tasks)]

    def run() -> None:
        answers.append(asyncio.run(flood()))

    threads = [threading.Thread(target=run) for _ in range(loops)]
    for t in threads:
        t.start()
    try:
        started.wait(30)
        # Every loop's requests wait; one thread computes for all of them.
        assert [t.name for t in _ours()] == ["cfgcore-probe-report"]
        assert not any(_in_cfgcore_http(t) for t in _default_executor_threads())
    finally:
        gate.set()
        for t in threads:
            t.join(60)
    assert answers == [[200] * (FLOOD // loops)] * loops
    assert report.calls == 1
    for t in _ours():
        t.join(30)
    assert _ours() == []


def test_a_loop_closed_while_its_requests_wait_leaves_nothing_behind(manager, gated):
    gate, report, _ = gated
    app = asgi_app(manager)

    async def abandon() -> None:
        asyncio.get_running_loop().create_task(_request(app, "/health/ready"))
        await _until(lambda: report.calls, "the report started")

    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(abandon())
    finally:
        loop.close()  # its request still waiting
        gate.set()  # the computation ends with nobody to tell on a closed loop
    for t in _ours():
        t.join(30)
    assert _ours() == []
    # The app serves on: a new loop, a young report shared, nothing computing.
    assert asyncio.run(_request(app, "/health/ready"))[0] == 200
    assert report.calls == 1


def test_a_failing_report_fails_its_request_and_the_next_waiting_one_computes_again(
    manager, monkeypatch
):
    # As the requests queued behind a failed computation did in threads: a failure is
    # not shared; the next request computes, and the others share its report.
    gate, calls = _failing_report(manager, monkeypatch, lambda: OSError("the disk went away"))
    app = asgi_app(manager)

    async def main():
        tasks = [asyncio.create_task(_request(app, "/health/ready")) for _ in range(20)]
        await _until(lambda: calls, "the report started")
        gate.set()
        return await asyncio.gather(*tasks, return_exceptions=True)

    outcomes = asyncio.run(main())
    assert isinstance(outcomes[0], OSError)
    assert [o[0] for o in outcomes[1:]] == [200] * 19  # type: ignore[index]
    assert len(calls) == 2


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork")
def test_a_child_forked_while_a_report_is_computed_answers(manager, gated):
    gate, report, _ = gated
    app = asgi_app(manager)

    async def start() -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(_request(app, "/health/ready"))
        await _until(lambda: report.calls, "the report started")
        return task

    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(start())  # the parent's report thread holds its locks
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            status = 0
            try:
                signal.alarm(30)
                status = asyncio.run(_request(app, "/health/ready"))[0]
            finally:
                os.write(write, str(status).encode())
                os._exit(0)
        os.close(write)
        try:
            assert os.read(read, 16) == b"200"  # before: it waited for ever on the lock
        finally:
            os.close(read)
            os.waitpid(pid, 0)
        gate.set()
        loop.run_until_complete(asyncio.sleep(0))
    finally:
        gate.set()
        for task in asyncio.all_tasks(loop):
            loop.run_until_complete(task)
        loop.close()


def test_an_application_with_the_probes_mounted_keeps_its_threads_under_uvicorn(manager, gated):
    uvicorn = pytest.importorskip("uvicorn")
    gate, report, scrape = gated
    probes = asgi_app(manager)

    async def application(scope, receive, send):
        """An application's own ASGI app, mounting the probes, with a route of its
        own that runs in the loop's default executor."""
        if scope["type"] == "http" and scope["path"] == "/work":
            body = await asyncio.to_thread(lambda: b"worked")
            headers = [(b"content-length", str(len(body)).encode())]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        await probes(scope, receive, send)

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(application, host="127.0.0.1", port=port, lifespan="on",
                            log_level="warning", backlog=FLOOD * 2)  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()

    async def get(path: str) -> tuple[int, bytes]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        response = await reader.read()
        writer.close()
        head, _, body = response.partition(b"\r\n\r\n")
        return int(head.split()[1]), body

    async def clients() -> tuple[tuple[int, bytes], list[tuple[int, bytes]]]:
        flood = [asyncio.create_task(get(path)) for _, path in _flood_paths()]
        await _until(lambda: report.calls and scrape.calls, "the report and the scrape started")
        work = await asyncio.wait_for(get("/work"), 30)  # before: waited for the gate
        gate.set()
        return work, await asyncio.gather(*flood)

    try:
        wait_for(lambda: server.started)
        work, answers = asyncio.run(clients())
    finally:
        gate.set()
        server.should_exit = True
        thread.join(30)
    assert not thread.is_alive()
    assert work == (200, b"worked")
    assert [status for status, _ in answers] == [200] * FLOOD
    assert (report.calls, scrape.calls) == (1, 1)
