"""What one read of the fleet's guardrail stop register costs Redis when whoever can
write Redis made its field names huge.

Run by hand (not collected): ``python benchmarks/stop_register_names.py 65536``. Starts
a redis-server of its own (tests/redis_server.py, a temp dir, a free loopback port),
fills ``{m}:flags:guardrail-stops`` with ``--entries`` fields (default 4,096, the most
cfgcore enumerates) each named by NAME_BYTES bytes (small values), then reads the
register through ``RedisFlagStore.read_stop_register()`` ``--runs`` times and prints,
per read: the wall time, the read script's own time from ``SLOWLOG`` (the time the
whole server is blocked) and the growth of ``used_memory_peak`` (meaningful on the
first read only: Redis does not reset the peak). Only 127.0.0.1 is contacted.
"""

from __future__ import annotations

import argparse
import logging
import pathlib
import sys
import tempfile
import time

from cfgcore.runtime.redis_store import RedisFlagStore

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))  # (for tests/)
from tests.redis_server import RedisServer  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("name_bytes", type=int, help="bytes in each field name (>= 8)")
    parser.add_argument("--entries", type=int, default=4096)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    logging.disable(logging.CRITICAL)  # (the refusal's ERROR line, once)
    size, n = max(args.name_bytes, 8), args.entries
    with tempfile.TemporaryDirectory() as d:
        server = RedisServer(d).start()
        try:
            client = server.client()
            key = "{m}:flags:guardrail-stops"
            pipe = client.pipeline(transaction=False)
            for i in range(n):
                name = (b"%08d" % i) + b"n" * (size - 8)
                pipe.hset(key, name, b'{"at": 1, "record": null}')
                if i % 64 == 63:
                    pipe.execute()
            pipe.execute()
            client.config_set("slowlog-log-slower-than", 0)
            used = client.info("memory")["used_memory"]
            print(f"{n:,} names of {size:,} bytes: the key takes {used / 2**20:.1f} MiB")
            with RedisFlagStore(server.url + "?namespace=m&cache=off") as store:
                for _ in range(args.runs):
                    before = client.info("memory")
                    client.slowlog_reset()
                    started = time.perf_counter()
                    try:
                        outcome = f"{len(store.read_stop_register())} entries read"
                    except Exception as exc:
                        outcome = f"not read ({type(exc).__name__})"
                    wall = time.perf_counter() - started
                    scripts = [
                        e["duration"]
                        for e in client.slowlog_get(128)
                        if e["command"].upper().startswith((b"EVAL", b"EVALSHA"))
                    ]
                    peak = client.info("memory")["used_memory_peak"]
                    grown = peak - max(before["used_memory_peak"], before["used_memory"])
                    print(
                        f"  read: wall {wall * 1000:8.1f} ms, script "
                        f"{max(scripts, default=0) / 1000:8.1f} ms, peak "
                        f"+{max(grown, 0) / 2**20:6.1f} MiB; {outcome}"
                    )
        finally:
            server.stop()


if __name__ == "__main__":
    main()
