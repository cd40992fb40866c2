"""What the MessagePack item bound (``cfgcore.snapshot.MAX_MSGPACK_ITEMS``) lets a flag
document cost, and what its count costs: a document of nothing but empty arrays (one
byte an item, the densest) at the bound and past it, decoded and served in a fresh
process each (its time and the peak memory it adds), and the scan that counts the items
of a 10,000-flag document (median of 7 runs of 20 scans). The default bound's figures
are the cost per million items that ``max_items=`` (a store's setting, up to
``snapshot.MAX_MSGPACK_ITEMS_BOUND``) scales.

Run: ``python benchmarks/msgpack_items.py``
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import textwrap
import timeit

import msgspec

from cfgcore import _compat
from cfgcore.snapshot import MAX_MSGPACK_ITEMS

HERE = os.path.dirname(os.path.abspath(__file__))

# (in a fresh process: ru_maxrss is the process's peak)
DECODE = textwrap.dedent(
    """
    import resource, sys, time
    import msgspec
    from cfgcore.engine import Engine
    from cfgcore.errors import ConfigError
    from cfgcore.snapshot import decode_snapshot

    items = int(sys.argv[1])
    head = msgspec.msgpack.encode({"flags": {"a": {"default": "on", "variants": {"on": "X"}}}})
    def count(v):
        if isinstance(v, dict):
            return 1 + sum(count(k) + count(x) for k, x in v.items())
        return 1 + sum(count(x) for x in v) if isinstance(v, list) else 1

    n = items - count(msgspec.msgpack.decode(head[:-2] + b"\\xc0"))  # the rest of it
    data = head[:-2] + b"\\xdd" + n.to_bytes(4, "big") + b"\\x90" * n
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    try:
        engine = Engine.from_snapshot(decode_snapshot(data, "msgpack", file="doc"))
        assert engine.variant("a") == "on"
        outcome = "served"
    except ConfigError:
        outcome = "refused"
    took = time.perf_counter() - start
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    print(f"{len(data) / 1e6:.1f} MB, {outcome} in {took:.2f} s, peak memory +{grown:.0f} MB")
    """
)


def main() -> None:
    for items in (MAX_MSGPACK_ITEMS, MAX_MSGPACK_ITEMS + 1):
        out = subprocess.run(
            [sys.executable, "-c", DECODE, str(items)], capture_output=True, text=True, check=True
        )
        print(f"{items:>9,} items: {out.stdout.strip()}")
    sys.path.insert(0, HERE)
    from bench_core import cfgcore_snapshot

    doc = msgspec.msgpack.encode(cfgcore_snapshot(10_000))
    scan = _compat.impl.msgpack_scan
    duplicate, items = scan(doc)
    assert duplicate == -1
    runs = timeit.repeat(lambda: scan(doc), number=20, repeat=7)
    per = statistics.median(runs) / 20 * 1e3
    impl = _compat.IMPLEMENTATION
    print(f"10,000 flags: {len(doc):,} bytes, {items:,} items, scan {per:.2f} ms ({impl})")


if __name__ == "__main__":
    main()
