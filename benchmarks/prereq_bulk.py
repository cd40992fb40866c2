"""An incremental compile in which many flags start reading one flag: every flag of
``--flags`` (20,000 by default) gaining a kill switch as its prerequisite, or as many
new flags appended that require it. Prints the CPU time (``time.thread_time``, best of
``--runs``, 3 by default) of ``compile_incremental(before, after)`` beside a full
``compile_snapshot(after)``: the prerequisite graph kept with the compiled tables is
updated per change, and should cost about what a full compile does, not the square of
the flags. Each run checks that the incremental tables' graph is the full compile's.
Run with the tree to measure on ``PYTHONPATH``::

    PYTHONPATH=src python benchmarks/prereq_bulk.py [--flags 20000]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

from cfgcore.compiler import compile_incremental, compile_snapshot
from cfgcore.snapshot import snapshot_from_dict


def _flags(n: int, reading: bool) -> dict[str, Any]:
    flags: dict[str, Any] = {"kill": {"default": "on"}}
    for i in range(n):
        flags[f"f{i}"] = {"default": "on"}
        if reading:
            flags[f"f{i}"]["prerequisites"] = ["kill"]
    return flags


def _cpu(call: Callable[..., Any], args: tuple[Any, ...], runs: int) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(runs):
        start = time.thread_time()
        out = call(*args)
        best = min(best, time.thread_time() - start)
    return best, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--flags", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    cases = {
        "every flag gains the prerequisite": (_flags(args.flags, False), _flags(args.flags, True)),
        "flags appended that require it": ({"kill": {"default": "on"}}, _flags(args.flags, True)),
    }
    for case, (before, after) in cases.items():
        previous = compile_snapshot(snapshot_from_dict({"flags": before}))
        snapshot = snapshot_from_dict({"flags": after})
        full_cpu, full = _cpu(compile_snapshot, (snapshot,), args.runs)
        inc_cpu, inc = _cpu(compile_incremental, (previous, snapshot), args.runs)
        assert inc.deps == full.deps and inc.readers == full.readers, case
        print(f"{case}, {args.flags} flags: full {full_cpu:.2f} s, incremental {inc_cpu:.2f} s")


if __name__ == "__main__":
    main()
