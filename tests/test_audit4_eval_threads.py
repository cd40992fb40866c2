"""Fourth audit of the two evaluators under threads: one Context shared by several
threads while another swaps snapshots whose attribute slots differ and another calls
set_clock. tests/test_core_concurrency.py gives each reader its own contexts; here
the readers share them, so a context re-binds to the other snapshot while another
thread reads it, and slots are bound lazily by whichever thread gets there first
(a mapping whose get() lets other threads in mid-binding, a semver parse, a
case-folded slot). Every answer must be one snapshot's (never a mix), nothing may
raise, and nothing may leak.
"""

from __future__ import annotations

import gc
import sys
import threading
import time

import pytest

from tests.mappings import DictMapping

N = 10
WINDOW = {"start": "2020-01-01T00:00:00Z", "end": "2040-01-01T00:00:00Z"}


def _snapshot(on: bool) -> dict:
    """A: every flag on for the shared attributes; B: every flag off, its slots in
    another order (and one more), so a binding to the wrong snapshot reads the wrong
    attributes."""
    served, other = ("on", "off") if on else ("off", "on")
    names = list(range(N)) if on else list(reversed(range(N)))
    zz = {"default": "off", "rules": [{"when": {"attr": "zzz", "exists": True}, "serve": "on"}]}
    flags = {} if on else {"zz": zz}
    for i in names:
        flags[f"f{i}"] = {
            "default": other,
            "rules": [{"when": {"attr": f"a{i}", "eq": "xval"}, "serve": served}],
        }
    flags["v"] = {
        "default": other,
        "rules": [{"when": {"attr": "ver", "semver_gt": "1.0.0"}, "serve": served}],
    }
    flags["c"] = {
        "default": other,
        "rules": [{"when": {"attr": "name", "eq": "BOB", "ignore_case": True}, "serve": served}],
    }
    flags["t"] = {"default": other, "schedule": WINDOW, "rules": [{"serve": served}]}
    flags["p"] = {"default": other, "prerequisites": ["f0", "v"], "rules": [{"serve": served}]}
    return {"flags": flags}


class Yielding(DictMapping):
    """A mapping whose get() lets other threads run (as I/O or a lock would)."""

    def get(self, key, default=None):
        time.sleep(0)
        return self.data.get(key, default)


KEYS = [f"f{i}" for i in range(N)] + ["v", "c", "t", "p"]


def test_a_context_shared_by_threads_across_swaps_answers_one_snapshot(make):
    old_interval = sys.getswitchinterval()
    engine = make(_snapshot(True))
    a, b = engine.snapshot(), engine.compile(_snapshot(False))
    # Objects of their own (not interned), so their reference counts show a leak.
    value, version, name = "".join(["xv", "al"]), "".join(["2.", "0.0"]), "".join(["b", "ob"])
    attrs = {f"a{i}": value for i in range(N)} | {"ver": version, "name": name, "user_id": "u1"}
    all_a = {k: True for k in KEYS}
    all_b = {"zz": False} | {k: False for k in KEYS}
    refs = [sys.getrefcount(v) for v in (value, version, name)]
    errors: list[BaseException] = []
    bad: list[object] = []
    stop = threading.Event()

    def reader(seed: int, shared: list) -> None:
        n = 0
        try:
            while not stop.is_set() or n < 300:
                ctx = shared[(seed + n) % len(shared)]
                key = KEYS[(seed * 7 + n) % len(KEYS)]
                if engine.is_enabled(key, ctx) not in (True, False):
                    bad.append(key)
                got = engine.evaluate_all(ctx)
                if got != all_a and got != all_b:
                    bad.append(got)
                details = engine.evaluate(key, ctx)
                if details.error_code is not None or details.value not in (True, False):
                    bad.append(details)
                n += 1
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    def clock() -> None:
        while not stop.is_set():
            engine.set_clock(lambda: 1.9e9)
            engine.set_clock(None)
            engine.set_clock(lambda: 2.0e9)

    sys.setswitchinterval(1e-5)
    try:
        for round_ in range(3):  # fresh shared contexts each round: their bindings are freed
            shared = [engine.context(Yielding(attrs)), engine.context(attrs)]
            threads = [threading.Thread(target=reader, args=(k, shared)) for k in range(3)]
            threads.append(threading.Thread(target=clock))
            stop.clear()
            for t in threads:
                t.start()
            for k in range(400):
                engine.swap(b if k % 2 == 0 else a)
            stop.set()
            for t in threads:
                t.join(timeout=120)
            assert not any(t.is_alive() for t in threads)
            # Pinned, each snapshot's single answers agree with its evaluate_all.
            for snap in (a, b):
                for ctx in shared:
                    every = snap.evaluate_all(ctx)
                    assert all(snap.value(k, ctx) == every[k] for k in KEYS), round_
    finally:
        sys.setswitchinterval(old_interval)
    assert not errors, errors[:3]
    assert not bad, bad[:3]
    del shared, threads, ctx  # the last context a loop above left bound
    gc.collect()
    assert [sys.getrefcount(v) for v in (value, version, name)] == pytest.approx(refs, abs=2)
