"""What a large flag document costs the rest of the process: pauses, not throughput.

Loading a document (decode and compile) runs off the request threads (a watcher's or
a Redis follower's thread), but holds the GIL in every C call it makes, and the
objects it leaves behind are walked by the cyclic garbage collector, which also holds
the GIL. Two figures per document size, each beside its floor:

* ``g-collect``: one full ``gc.collect()`` with the loaded engine alive, against the
  same collection in the same process with no engine (the floor); ``from-dict`` is the
  engine built from the document as Python data, the caller's dict kept alive, beside
  ``floor-dict`` (that dict alone).
* ``g-pause``: the longest time a 1 ms ticker thread was kept waiting while the document
  was decoded from JSON bytes and compiled (``extra_info["longest_pause_ms"]``, the
  worst of the rounds), and the load's own time. Two floors: the ticker's longest wait
  while the main thread sleeps for as long (``floor``), and while it runs plain Python
  code for as long (``floor-busy``: the GIL handed over only between bytecodes, every
  switch interval, as from any busy thread). ``reload`` is a hot reload as a manager
  runs it: a flags file served by a :class:`~cfgcore.runtime.flags.LiveFlags` changes
  and ``refresh()`` reads, decodes, compiles and swaps it in, and the older snapshot is
  freed by the reclaimer's thread (the pause a request thread sees at each reload).
  ``swap`` is a hand-written swap: ``engine.swap(compiled)`` of a document compiled
  beforehand, the older snapshot dropped by the caller (what :meth:`Engine.swap` leaves
  to the reclaimer from ``_reclaim.LARGE_FLAGS`` flags).

Run::

    python -m pytest benchmarks/bench_gc.py --benchmark-enable -q \\
        --benchmark-columns=median --benchmark-json=gc.json
"""

from __future__ import annotations

import gc
import json
import threading
import time

import pytest

from cfgcore import _reclaim as reclaim
from cfgcore.engine import Engine
from cfgcore.runtime.flags import LiveFlags
from cfgcore.runtime.flagstore import open_store
from cfgcore.snapshot import decode_snapshot, encode_snapshot

SIZES = [10_000, 43_000]


def document(n_flags: int) -> bytes:
    """A flags file of ``n_flags`` rule flags (two conditions, a rollout), as JSON."""
    flags = {}
    for i in range(n_flags):
        flags[f"flag_{i:05d}"] = {
            "description": "recommendations shelf for premium listeners",
            "rules": [
                {
                    "when": {
                        "all": [
                            {"attr": "user_segment", "eq": "premium"},
                            {"attr": "region", "in": ["EU", "US"]},
                        ]
                    },
                    "rollout": 25,
                    "serve": "on",
                }
            ],
            "tags": ["recs"],
            "default": "off",
        }
    return json.dumps({"flags": flags}).encode()


def _load(data: bytes) -> Engine:
    return Engine.from_snapshot(decode_snapshot(data, "json"))


class _Ticker:
    """A thread that sleeps 1 ms at a time and records the longest it was kept."""

    def __init__(self) -> None:
        self.longest = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        last = time.perf_counter()
        while not self._stop.is_set():
            time.sleep(0.001)
            now = time.perf_counter()
            self.longest = max(self.longest, now - last)
            last = now

    def __enter__(self) -> _Ticker:
        self._thread.start()
        time.sleep(0.02)
        self.longest = 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@pytest.mark.parametrize("n_flags", SIZES)
@pytest.mark.parametrize("who", ["floor", "cfgcore", "floor-dict", "from-dict"])
def test_full_collection(benchmark, who, n_flags):
    """``from-dict``: the engine built from the document as Python data
    (``Engine.from_snapshot(dict)``), the caller's dict kept alive; its floor is
    ``floor`` plus that dict (``floor-dict``)."""
    n_flags = n_flags if not benchmark.disabled else 500  # the suite's smoke run
    data = json.loads(document(n_flags)) if who in ("from-dict", "floor-dict") else None
    if who == "cfgcore":
        engine = _load(document(n_flags))
    elif who == "from-dict":
        engine = Engine.from_snapshot(data)
    else:
        engine = None
    gc.collect()
    benchmark.extra_info.update(who=f"{who}-{n_flags}", calls=1, group=f"g-collect-{n_flags}")
    benchmark.pedantic(gc.collect, rounds=5, iterations=1)
    if engine is not None:
        assert engine.snapshot().keys[-1] == f"flag_{n_flags - 1:05d}"


def _busy(seconds: float) -> None:
    """Plain Python work (no long C call) for ``seconds``: what the ticker waits for
    when the GIL is only ever handed over between bytecodes."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        sum(range(200))


def _longest_pause(benchmark, step, *, setup=None, who: str, group: str) -> None:
    """Time ``step`` (3 rounds; ``setup()`` before each, untimed) with a 1 ms ticker
    thread running, and record the longest the ticker was kept waiting in any round."""
    worst = 0.0

    def prepare():
        if setup is not None:
            setup()
        gc.collect()
        return (), {}

    def run() -> None:
        nonlocal worst
        with _Ticker() as ticker:
            step()
            gc.collect(1)  # the younger generations, as the next allocations would
        worst = max(worst, ticker.longest)

    benchmark.pedantic(run, setup=prepare, rounds=3, iterations=1)
    benchmark.extra_info.update(
        who=who, calls=1, group=group, longest_pause_ms=round(worst * 1000, 1)
    )


@pytest.mark.parametrize("n_flags", SIZES)
@pytest.mark.parametrize("who", ["floor", "floor-busy", "cfgcore", "reload", "swap"])
def test_longest_pause(benchmark, who, n_flags, tmp_path):
    n_flags = n_flags if not benchmark.disabled else 500  # the suite's smoke run
    data = document(n_flags)
    older = data.replace(b'"rollout": 25', b'"rollout": 30')
    load_time = time.perf_counter()
    _load(data)
    load_time = time.perf_counter() - load_time
    engines: list[Engine] = []
    path = tmp_path / "flags.json"
    live: list[LiveFlags] = []
    compiled: list = []

    def setup() -> None:
        engines.clear()
        if who == "swap":
            engines.append(_load(older))  # serving, as a hand-written loop's engine does
            compiled[:] = [engines[0].compile(decode_snapshot(data, "json"))]
            reclaim.drain()
        if who == "reload":
            # A flags file served (as a manager serves it) and then changed: the same
            # refresh a watcher's event runs, on this thread.
            path.write_bytes(older)
            if live:
                live.pop().close()
            live.append(LiveFlags(open_store(str(path))))
            engines.append(live[0].engine)
            path.write_bytes(data)
            reclaim.drain()

    def step() -> None:
        if who == "cfgcore":
            engines.append(_load(data))
        elif who == "reload":
            assert live[0].refresh()
            reclaim.drain()  # the older snapshot, freed on the reclaimer's thread
        elif who == "swap":
            engines[0].swap(compiled.pop())  # the older one returned and dropped here
            reclaim.drain()
        elif who == "floor-busy":
            _busy(load_time)
        else:
            time.sleep(load_time)

    _longest_pause(benchmark, step, setup=setup, who=f"{who}-{n_flags}", group=f"g-pause-{n_flags}")
    if not who.startswith("floor"):
        assert engines[0].snapshot().keys[0] == "flag_00000"
        # (the reload served the new document: rollout 25, not the older one's 30)
        assert engines[0].snapshot().tables.source.flags["flag_00000"].rules[0].rollout == 25


@pytest.mark.parametrize("n_flags", [10_000, 25_000])
def test_longest_pause_msgpack(benchmark, n_flags):
    """The same pause for a MessagePack document, the form a fleet's Redis store ships
    (decoded and compiled into a new engine). 25,000 flags of this shape are 800,003
    MessagePack items, below the 1,000,000 a document may hold; the 43,000-flag one
    is refused for its size."""
    n_flags = n_flags if not benchmark.disabled else 500  # the suite's smoke run
    data = encode_snapshot(decode_snapshot(document(n_flags), "json"), "msgpack")
    engines: list[Engine] = []

    def step() -> None:
        engines.append(Engine.from_snapshot(decode_snapshot(data, "msgpack")))

    # (the previous round's engine is dropped before the timing, as the other rows do)
    _longest_pause(
        benchmark,
        step,
        setup=engines.clear,
        who=f"msgpack-{n_flags}",
        group=f"g-pause-msgpack-{n_flags}",
    )
    assert engines[0].snapshot().keys[-1] == f"flag_{n_flags - 1:05d}"
