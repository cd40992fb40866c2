"""A line of an exposure or metric log longer than any record is passed over, never
held whole (audit 8).

``LogTail`` (every report, and the guardrail check each process runs over the shared
logs) kept the text after the last newline and prepended it to the next 1 MiB read:
a planted or damaged line of hundreds of MB without a newline was held whole, and
copied again at every read (a 400 MB line: minutes and GBs, on every process of the
host). Now a line past ``MAX_LINE`` is skipped to its newline a chunk at a time and
counted as unusable with its file and line."""

from __future__ import annotations

import json
import tracemalloc

import pytest

from cfgcore.experiments import exposures
from cfgcore.experiments.exposures import LogTail, MetricRecord, SkippedLines
from cfgcore.experiments.metrics import read_metrics

BOUND = 1 << 20  # MAX_LINE for these tests, so that a line past it stays small on disk
LONG = 24 << 20


def _record(user: str) -> bytes:
    event = {"test": "t", "variant": "b", "metric": "m", "value": 1.0, "user": user, "ts": 1.0}
    return json.dumps(event).encode() + b"\n"


@pytest.fixture
def log(tmp_path, monkeypatch):
    monkeypatch.setattr(exposures, "MAX_LINE", BOUND, raising=False)
    path = tmp_path / "flags.metrics.jsonl"
    with open(path, "wb") as fh:
        fh.write(_record("u1"))
        fh.write(b'{"test": "' + b"x" * LONG + b'"}\n')  # line 2: JSON, no record
        fh.write(_record("u2"))
        fh.write(b"y" * LONG + b"\n")  # line 4
        fh.write(_record("u3"))
        fh.write(b"z" * (3 * BOUND))  # line 6: long, and cut short by the end of the file
    return path


def _too_long(skipped):
    return [entry.split(": ", 1) for entry in skipped.first]


def test_a_line_past_the_bound_is_counted_not_held(log):
    skipped = SkippedLines()
    tracemalloc.start()
    try:
        events = read_metrics(log, skipped)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [e["user"] for e in events] == ["u1", "u2", "u3"]
    assert [where for where, _ in _too_long(skipped)] == [f"{log}:2", f"{log}:4", f"{log}:6"]
    assert all(why.startswith("line longer than") for _, why in _too_long(skipped))
    assert peak < 8 * BOUND  # a few chunks, never one of the 24 MiB lines


def test_reads_in_steps_see_the_same_records_and_lines(log):
    tail = LogTail(log, MetricRecord)
    users: list[str | None] = []
    while True:
        tail.read(lambda batch: users.extend(r.user for r in batch), limit=BOUND)
        if not tail.behind:
            break
    tail.close()
    assert users == ["u1", "u2", "u3"]
    # Line 6 is the end of the file being followed, not yet known to be cut short.
    assert [where for where, _ in _too_long(tail.skipped)] == [f"{log}:2", f"{log}:4"]
    assert all(why.startswith("line longer than") for _, why in _too_long(tail.skipped))
    with open(log, "ab") as fh:  # the writer finishes line 6 and appends another
        fh.write(b"\n" + _record("u4"))
    more: list[str | None] = []
    tail2 = LogTail(log, MetricRecord)
    tail2.read(lambda batch: more.extend(r.user for r in batch))
    tail2.close()
    assert more == ["u1", "u2", "u3", "u4"]
    assert _too_long(tail2.skipped)[-1] == [f"{log}:6", exposures._TOO_LONG]
