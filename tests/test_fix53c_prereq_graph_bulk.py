"""The prerequisite graph kept in the compiled tables (Tables.readers) is updated once
per flag read, not once per changed flag that reads it: an incremental compile in which
many flags start (or stop) reading one flag (a kill switch every flag requires, added or
removed in one change, or many new flags appended that require it) costs what a full
compile of the document costs, not the square of the flags."""

from __future__ import annotations

import time

import pytest

from cfgcore.compiler import compile_incremental, compile_snapshot
from cfgcore.snapshot import snapshot_from_dict

N = 10_000


def _flags(reading: bool, n: int = N) -> dict:
    flags: dict = {"kill": {"default": "on"}}
    for i in range(n):
        flags[f"f{i}"] = {"default": "on"}
        if reading:
            flags[f"f{i}"]["prerequisites"] = ["kill"]
    return flags


def _cpu(call) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(2):
        start = time.thread_time()
        out = call()
        best = min(best, time.thread_time() - start)
    return best, out


@pytest.mark.parametrize("case", ["appended", "gained", "dropped"])
def test_many_flags_changing_their_reads_of_one_flag_is_linear(case: str) -> None:
    """Before, each of the N changed flags rebuilt the kill switch's reader tuple: at
    10,000 flags about six times a full compile's CPU (20,000: twelve)."""
    if case == "appended":
        before, after = {"kill": {"default": "on"}}, _flags(True)
    elif case == "gained":
        before, after = _flags(False), _flags(True)
    else:
        before, after = _flags(True), _flags(False)
    previous = compile_snapshot(snapshot_from_dict({"flags": before}))
    snapshot = snapshot_from_dict({"flags": after})
    full_cpu, full = _cpu(lambda: compile_snapshot(snapshot))
    incremental_cpu, incremental = _cpu(lambda: compile_incremental(previous, snapshot))
    assert incremental.garbage > 0  # compiled incrementally, not in full
    assert incremental.deps == full.deps
    assert incremental.readers == full.readers
    assert incremental_cpu < 3 * full_cpu + 0.05, (incremental_cpu, full_cpu)
