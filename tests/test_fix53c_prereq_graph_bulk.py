"""The prerequisite graph kept in the compiled tables (Tables.readers) is updated once
per flag read, not once per changed flag that reads it: an incremental compile in which
many flags start (or stop) reading one flag (a kill switch every flag requires, added or
removed in one change, or many new flags appended that require it) does the work a full
compile of the document does, not the square of the flags (20,000 flags: 12 s where a
full compile takes 1 s).

No clock (the suite runs on shared, noisy machines): the graph's work is counted as the
lines of :mod:`cfgcore._prereq` run (its generator expressions included) plus the
elements it sorts (``sorted`` runs in C, unseen by the line count)."""

from __future__ import annotations

import builtins
import sys

import pytest

import cfgcore._prereq as prereq
from cfgcore.compiler import compile_incremental, compile_snapshot
from cfgcore.snapshot import snapshot_from_dict

N = 3_000


def _flags(reading: bool, n: int = N) -> dict:
    flags: dict = {"kill": {"default": "on"}}
    for i in range(n):
        flags[f"f{i}"] = {"default": "on"}
        if reading:
            flags[f"f{i}"]["prerequisites"] = ["kill"]
    return flags


def _work(call, monkeypatch) -> tuple[int, object]:
    """(lines of cfgcore._prereq run + elements it sorted, what ``call()`` returned)."""
    count = 0
    here = prereq.__file__

    def counting_sorted(items, **kwargs):
        nonlocal count
        out = builtins.sorted(items, **kwargs)
        count += len(out)
        return out

    def trace(frame, event, arg):
        nonlocal count
        if frame.f_code.co_filename != here:
            return None
        if event == "line":
            count += 1
        return trace

    with monkeypatch.context() as m:
        m.setattr(prereq, "sorted", counting_sorted, raising=False)
        sys.settrace(trace)
        try:
            out = call()
        finally:
            sys.settrace(None)
    return count, out


@pytest.mark.parametrize("case", ["appended", "gained", "dropped"])
def test_many_flags_changing_their_reads_of_one_flag_is_linear(case: str, monkeypatch) -> None:
    """Before, each of the N changed flags rebuilt the kill switch's reader tuple:
    about N**2 / 2 elements (4.5 million at 3,000 flags) against a full compile's
    tens of thousands."""
    if case == "appended":
        before, after = {"kill": {"default": "on"}}, _flags(True)
    elif case == "gained":
        before, after = _flags(False), _flags(True)
    else:
        before, after = _flags(True), _flags(False)
    previous = compile_snapshot(snapshot_from_dict({"flags": before}))
    snapshot = snapshot_from_dict({"flags": after})
    full_work, full = _work(lambda: compile_snapshot(snapshot), monkeypatch)
    work, incremental = _work(lambda: compile_incremental(previous, snapshot), monkeypatch)
    assert incremental.garbage > 0  # compiled incrementally, not in full
    assert incremental.deps == full.deps
    assert incremental.readers == full.readers
    assert full_work > N  # (the count sees the graph being built)
    assert work < 3 * full_work, (work, full_work)


def test_the_benchmark_runs_as_results_md_writes_it(tmp_path) -> None:
    """benchmarks/prereq_bulk.py (RESULTS.md, fifty-third pass), small: it checks that
    the incremental graph is the full compile's before printing a line per case."""
    import os
    import subprocess
    from pathlib import Path

    import cfgcore

    script = Path(__file__).resolve().parent.parent / "benchmarks" / "prereq_bulk.py"
    if not script.is_file():
        pytest.skip("benchmarks/ is not here")
    env = {**os.environ, "PYTHONPATH": str(Path(cfgcore.__file__).resolve().parent.parent)}
    done = subprocess.run(
        [sys.executable, str(script), "--flags", "300", "--runs", "1"],
        capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line.split(",")[0] for line in lines] == [
        "every flag gains the prerequisite",
        "flags appended that require it",
    ]
    assert all("300 flags: full " in line and " s, incremental " in line for line in lines)
