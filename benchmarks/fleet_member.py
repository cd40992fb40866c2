"""Fleet members for benchmarks/bench_fleet.py, each run as its own process.

    python fleet_member.py follow URL N      # N follower stores (own connections, own
                                             # engine each); prints "VERSION T" once all
                                             # N serve VERSION (T: time.monotonic(), one
                                             # clock for every process on the machine)
    python fleet_member.py follow-light URL N  # the same, but receive, read and decode
                                             # only (no compile): Redis's side of fan-out
    python fleet_member.py write URL RATE    # one write every 1/RATE s until stdin closes

A follower swaps the way the live flag set does: compile to the side (incrementally,
on top of the live tables), then swap; never to an older version.
"""

from __future__ import annotations

import sys
import threading
import time

import msgspec

from cfgcore.engine import Engine
from cfgcore.runtime.redis_store import RedisFlagStore
from cfgcore.snapshot import Flag


def follow(url: str, n: int, light: bool = False) -> None:
    lock = threading.Lock()
    counts: dict[int, int] = {}
    stores = []

    def member() -> None:
        store = RedisFlagStore(url)
        engine = Engine()
        live = [0]
        first = store.read()
        engine.swap(first.snapshot)
        live[0] = first.version

        def apply(doc) -> None:
            if doc.version <= live[0]:
                return
            if not light:
                engine.swap(engine.compile(doc.snapshot, previous=engine.snapshot()))
            live[0] = doc.version
            now = time.monotonic()
            with lock:
                counts[doc.version] = counts.get(doc.version, 0) + 1
                if counts[doc.version] == n:
                    print(f"{doc.version} {now:.6f}", flush=True)

        store.watch(apply)
        stores.append(store)

    for _ in range(n):
        member()
    while not all(s.connected for s in stores):
        time.sleep(0.01)
    print("ready", flush=True)
    sys.stdin.read()  # until the benchmark closes our stdin
    for s in stores:
        s.close()


def write(url: str, rate: float) -> None:
    store = RedisFlagStore(url)
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    print("ready", flush=True)
    i = 0
    while not stop.wait(1.0 / rate):
        i += 1
        store.update(
            lambda s, i=i: msgspec.structs.replace(
                s, flags={**s.flags, "bench_counter": Flag(default="on", description=str(i))}
            )
        )
    store.close()


if __name__ == "__main__":
    if sys.argv[1] in ("follow", "follow-light"):
        follow(sys.argv[2], int(sys.argv[3]), light=sys.argv[1] == "follow-light")
    else:
        write(sys.argv[2], float(sys.argv[3]))
