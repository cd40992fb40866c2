"""Importing flagd documents whose flags hold long ``if`` chains ("else if" branches).

Each document is about 320 KB of flags whose targeting is one chain
``{"if": [c1, v1, c2, v2, ..., default]}`` of ``==`` tests naming variants, ``BRANCHES``
branches per flag (50 or 200). One round is ``flagd.to_snapshot`` of the document and
the compile of the snapshot (what ``Engine.from_snapshot`` does on top), answers checked
on a few users first.

Run::

    python -m pytest benchmarks/bench_flagd_chains.py --benchmark-enable -q \\
        --benchmark-columns=min,median,max

or, for a quick figure without pytest (median and min of ``--rounds`` runs, wall and
CPU time; run it with ``PYTHONPATH=<tree>/src`` to time another tree's cfgcore)::

    python benchmarks/bench_flagd_chains.py --rounds 5
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

import pytest

from cfgcore.compiler import compile_snapshot
from cfgcore.engine import Engine
from cfgcore.interop import flagd

DOC_BYTES = 320_000  # about the size of each document


def chain_document(branches: int, doc_bytes: int = DOC_BYTES) -> dict[str, Any]:
    """Flags of one ``if`` chain of ``branches`` ``==`` tests each, up to ``doc_bytes``."""
    flags: dict[str, Any] = {}
    size = 0
    while size < doc_bytes:
        args: list[Any] = []
        for b in range(branches):
            args += [{"==": [{"var": "email"}, f"user{b}@example.com"]}, "on" if b % 2 else "off"]
        flag = {
            "state": "ENABLED",
            "variants": {"on": True, "off": False},
            "defaultVariant": "off",
            "targeting": {"if": [*args, "on"]},
        }
        flags[f"flag-{len(flags)}"] = flag
        size += len(json.dumps(flag))
    return {"flags": flags}


def import_and_compile(doc: dict[str, Any]) -> Any:
    snapshot = flagd.to_snapshot(doc)
    compile_snapshot(snapshot)
    return snapshot


def _check(snapshot: Any, branches: int) -> None:
    """Answers of the imported document's first flag (``snapshot``: ``flagd.to_snapshot``
    of a :func:`chain_document` of ``branches``)."""
    engine = Engine.from_snapshot(snapshot)
    for b, want in ((0, False), (1, True), (branches - 1, (branches - 1) % 2 == 1)):
        ctx = flagd.context("u1", {"email": f"user{b}@example.com"})
        assert engine.evaluate("flag-0", ctx).value is want
    assert engine.evaluate("flag-0", flagd.context("u1", {"email": "x"})).value is True


@pytest.mark.parametrize("branches", [50, 200])
def test_import_if_chains(benchmark, branches):
    doc = chain_document(branches)
    benchmark.group = "interop-flagd-if-chains"
    benchmark.extra_info["branches"] = branches
    benchmark.extra_info["bytes"] = len(json.dumps(doc))
    if benchmark.enabled:
        _check(flagd.to_snapshot(doc), branches)  # the answers first, then the timing
        benchmark(import_and_compile, doc)
    else:  # a smoke run (--benchmark-disable, as in the test suite) checks its one import
        _check(benchmark(import_and_compile, doc), branches)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--branches", type=int, nargs="*", default=[50, 200])
    opts = parser.parse_args()
    for branches in opts.branches:
        doc = chain_document(branches)
        _check(flagd.to_snapshot(doc), branches)
        walls, cpus = [], []
        for _ in range(opts.rounds):
            wall, cpu = time.perf_counter(), time.process_time()
            import_and_compile(doc)
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
        print(
            f"{branches:4d} branches x {len(doc['flags'])} flags "
            f"({len(json.dumps(doc)) / 1000:.0f} KB): import + compile median "
            f"{statistics.median(walls):.3f} s wall, {statistics.median(cpus):.3f} s CPU "
            f"(min {min(walls):.3f} s wall; {opts.rounds} rounds)"
        )


if __name__ == "__main__":
    main()
