"""What clients hammering the probe server cost the service's own request path.

Run by hand (not collected): ``python benchmarks/probe_flood.py --flags 10000 --path
/metrics --clients 4``. A service serves N flags and its probes with ``serve()``; one
thread of it checks a flag in batches of 100 for 3 s, alone and then while another
process runs ``--clients`` threads that GET ``--path`` in a loop over loopback. It
prints the checks per second and the batch latencies of both runs. Only 127.0.0.1 is
contacted, and the flood stops by itself.
"""

from __future__ import annotations

import argparse
import http.client
import json
import pathlib
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any


def flood(port: int, path: str, clients: int, seconds: float) -> None:
    """The other process: ``clients`` threads GETting ``path`` until ``seconds`` pass."""
    end = time.monotonic() + seconds
    served = [0]

    def loop() -> None:
        while time.monotonic() < end:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                conn.request("GET", path)
                conn.getresponse().read()
                conn.close()
                served[0] += 1
            except (OSError, http.client.HTTPException):
                pass

    threads = [threading.Thread(target=loop) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(f"flood: {served[0]} responses", file=sys.stderr)


def checks(engine: object, seconds: float) -> str:
    lat: list[float] = []
    ctx = {"country": "US"}
    is_enabled = engine.is_enabled  # type: ignore[attr-defined]
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        t = time.perf_counter()
        for _ in range(100):
            is_enabled("flag_1", ctx)
        lat.append(time.perf_counter() - t)
    lat.sort()
    return (
        f"{len(lat) * 100 / seconds:,.0f} checks/s, batch of 100: p50 "
        f"{lat[len(lat) // 2] * 1e6:.0f} us, p99 {lat[int(len(lat) * 0.99)] * 1e6:.0f} us, "
        f"max {lat[-1] * 1e3:.1f} ms"
    )


def service(n_flags: int) -> tuple[Any, Any]:
    """A staging manager (the bundled defaults) serving ``n_flags`` flags, each checked
    once so a scrape exports them all; and its engine."""
    from cfgcore.config.manager import ConfigurationManager, default_config_dir

    config = pathlib.Path(tempfile.mkdtemp()) / "config"
    config.mkdir()
    for src in pathlib.Path(default_config_dir()).iterdir():
        (config / src.name).write_bytes(src.read_bytes())
    rule = {"when": {"attr": "country", "eq": "US"}, "serve": "on"}
    flag = {"variants": {"on": True, "off": False}, "rules": [rule], "default": "off"}
    flags = {f"flag_{i}": flag for i in range(n_flags)}
    (config / "flags.json").write_text(json.dumps({"flags": flags}))
    manager = ConfigurationManager(str(config), environ={})
    manager.load_environment_config("staging")
    engine = manager._flags._live.engine
    for i in range(n_flags):
        engine.is_enabled(f"flag_{i}", {"country": "US"})
    return manager, engine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flags", type=int, default=10_000)
    parser.add_argument("--path", default="/metrics")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--flood-port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.flood_port:
        flood(args.flood_port, args.path, args.clients, 4.5)
        return

    from cfgcore.observability.http import serve

    manager, engine = service(args.flags)
    server = serve(manager, port=0)
    try:
        print("alone:   ", checks(engine, 3.0))
        other = subprocess.Popen(  # noqa: S603 - this script, on loopback
            [sys.executable, __file__, "--flood-port", str(server.server_port),
             "--path", args.path, "--clients", str(args.clients)]
        )  # fmt: skip
        time.sleep(0.5)  # let the flood start
        print("flooded: ", checks(engine, 3.0))
        other.wait()
    finally:
        server.shutdown()
        server.server_close()
        manager.close()


if __name__ == "__main__":
    main()
