"""Bytes a ``MetricsStore`` keeps per user for reports (and, a second time, for
guardrails): 100,000 to 300,000 users, one event each per metric, one and two metrics,
measured with ``tracemalloc`` (no log file; user ids are kept as 64-bit keys).

Run: ``python benchmarks/per_user_memory.py``
"""

from __future__ import annotations

import gc
import tracemalloc

from cfgcore.experiments.metrics import MetricsStore


def main() -> None:
    for users in (100_000, 150_000, 200_000, 300_000):
        for metrics in (1, 2):
            store = MetricsStore(None, max_pending=10**7, max_pending_bytes=10**10)
            gc.collect()
            tracemalloc.start()
            for i in range(users):
                for m in range(metrics):
                    store.record("t", "a", f"m{m}", 1.5, user=f"user-{i:08d}", write=False)
            store.summary("t", "a", "m0")  # the writer's queue summarised
            gc.collect()
            held, _ = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            print(f"{users:>7,} users, {metrics} metric(s): {held / users:5.1f} bytes per user")
            del store
            gc.collect()


if __name__ == "__main__":
    main()
