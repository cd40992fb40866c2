"""What a flood of probe and metrics requests costs an ASGI application's own thread work.

Run by hand (not collected): ``python benchmarks/asgi_probe_flood.py --flags 10000
--clients 200``. A service serving N flags mounts ``asgi_app(manager)``; on one event
loop, ``--clients`` tasks request ``--path`` over and over (the ASGI app called
directly, no sockets; each client gives the loop a turn between two requests, as a
network read would), while the application's own work, ``await
asyncio.to_thread(job)`` with a job of about 0.1 ms, is timed: alone, then during the
flood. The loop's default executor is the one ``to_thread`` shares with whatever the
probes take from it. Prints the job's latency (p50, p99, max), the requests answered
and the threads whose name starts with ``cfgcore-probe``/``asyncio_`` seen at once.
``--report-delay S`` makes each health report wait S seconds first, as on a store that
times out. ``--http`` serves the app with uvicorn instead and floods it over loopback from another
process (``probe_flood.py``'s flood), as a real server is flooded.
"""

from __future__ import annotations

import argparse
import asyncio
import threading
import time
from typing import Any

from probe_flood import service


def _job() -> int:
    end = time.perf_counter() + 0.0001
    n = 0
    while time.perf_counter() < end:
        n += 1
    return n


async def _request(app: Any, path: str) -> int:
    status = 0

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    scope = {"type": "http", "method": "GET", "path": path, "headers": []}
    await app(scope, receive, send)
    return status


async def _jobs(seconds: float) -> str:
    lat: list[float] = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        t = time.perf_counter()
        await asyncio.to_thread(_job)
        lat.append(time.perf_counter() - t)
    lat.sort()
    return (
        f"{len(lat):,} jobs, latency p50 {lat[len(lat) // 2] * 1e3:.2f} ms, "
        f"p99 {lat[int(len(lat) * 0.99)] * 1e3:.2f} ms, max {lat[-1] * 1e3:.1f} ms"
    )


def _threads() -> int:
    return sum(t.name.startswith(("cfgcore-probe", "asyncio_")) for t in threading.enumerate())


async def _run(app: Any, path: str, clients: int, seconds: float) -> None:
    print("alone:   ", await _jobs(seconds))
    stop = False
    answered: dict[int, int] = {}
    most = [0]

    async def client() -> None:
        while not stop:
            status = await _request(app, path)
            answered[status] = answered.get(status, 0) + 1
            await asyncio.sleep(0)  # the next request comes over the network: a turn of the loop
            most[0] = max(most[0], _threads())

    tasks = [asyncio.create_task(client()) for _ in range(clients)]
    await asyncio.sleep(0.5)  # the flood under way
    print("flooded: ", await _jobs(seconds))
    stop = True
    await asyncio.gather(*tasks)
    print(f"answered {answered}; at most {most[0]} probe/executor threads at once")


async def _over_http(app: Any, path: str, clients: int, seconds: float) -> None:
    """The same, the app served by uvicorn and the flood sent over loopback by
    another process (``probe_flood.py``'s flood: ``clients`` threads, one connection
    per request)."""
    import socket
    import subprocess
    import sys

    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    serving = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        print("alone:   ", await _jobs(seconds))
        here = __file__.rsplit("/", 1)[0]
        flood = subprocess.Popen(  # noqa: S603 - probe_flood.py, on loopback
            [sys.executable, f"{here}/probe_flood.py", "--flood-port", str(port),
             "--path", path, "--clients", str(clients)]
        )  # fmt: skip
        await asyncio.sleep(0.5)  # the flood under way
        most = _threads()
        print("flooded: ", await _jobs(seconds))
        print(f"at most {max(most, _threads())} probe/executor threads seen")
        await asyncio.to_thread(flood.wait)
    finally:
        server.should_exit = True
        await serving


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flags", type=int, default=10_000)
    parser.add_argument("--path", default="/metrics")
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--http", action="store_true", help="uvicorn, flooded over loopback")
    parser.add_argument("--report-delay", type=float, default=0.0,
                        help="seconds each health report waits first (a slow store)")  # fmt: skip
    args = parser.parse_args()

    from cfgcore.observability.http import asgi_app

    manager, _ = service(args.flags)
    if args.report_delay:
        report = manager.health

        def slow_report() -> Any:
            time.sleep(args.report_delay)
            return report()

        manager.health = slow_report
    try:
        run = _over_http if args.http else _run
        asyncio.run(run(asgi_app(manager), args.path, args.clients, args.seconds))
    finally:
        manager.close()


if __name__ == "__main__":
    main()
