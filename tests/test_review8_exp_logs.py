"""Reading experiment logs, eighth review: ``read_log(..., rotated=False)`` passes over a
line longer than ``MAX_LINE`` without holding it (it iterated the file, so a planted
line of a GB was read whole into memory), as the rotated readers already did."""

from __future__ import annotations

import json
import tracemalloc

from cfgcore.experiments.exposures import (
    MAX_LINE,
    ExposureRecord,
    MetricRecord,
    SkippedLines,
    read_log,
)


def _line(**kw):
    return (json.dumps(kw) + "\n").encode()


def test_a_huge_line_is_passed_over_in_bounded_memory_by_the_single_file_reader(tmp_path):
    log = tmp_path / "flags.metrics.jsonl"
    size = 4 * MAX_LINE  # 256 MiB of one line
    with open(log, "wb") as fh:
        fh.write(_line(test="t", variant="a", metric="m", value=1.0, user="u1", ts=1.0))
        fh.write(b'{"test": "t", "pad": "')
        block = b"x" * (1 << 20)
        for _ in range(size >> 20):
            fh.write(block)
        fh.write(b'"}\n')
        fh.write(_line(test="t", variant="b", metric="m", value=2.0, user="u2", ts=2.0))
        fh.write(b'{"test": "t", "variant": "b", "met')  # cut short
    skipped = SkippedLines()
    tracemalloc.start()
    try:
        records = list(read_log(log, MetricRecord, skipped, rotated=False))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [(r.variant, r.value) for r in records] == [("a", 1.0), ("b", 2.0)]
    # readline(MAX_LINE + 1) may copy its 64 MiB once; never the 256 MiB line (545 MB
    # before: the line and the copies made finding its end)
    assert peak < 3 * MAX_LINE
    assert skipped.count == 2
    assert skipped.first[0] == f"{log}:2: line longer than 64 MiB (no record is)"
    assert skipped.first[1].startswith(f"{log}:4: cut short")


def test_a_line_of_exactly_max_line_bytes_is_read(tmp_path):
    """The bound is on the line with its newline, as LogTail's: a record of MAX_LINE
    bytes in all is decoded (and is unusable only for what it holds)."""
    log = tmp_path / "flags.exposures.jsonl"
    head = b'{"test": "t", "variant": "a", "ts": 1.0, "user": "'
    user = b"u" * (MAX_LINE - len(head) - len(b'"}\n'))
    log.write_bytes(head + user + b'"}\n' + _line(test="t", variant="b", user="v", ts=2.0))
    skipped = SkippedLines()
    records = list(read_log(log, ExposureRecord, skipped, rotated=False))
    assert [len(r.user) for r in records] == [len(user), 1]
    assert not skipped


def test_a_report_reads_the_exposure_log_without_holding_every_record(tmp_path):
    """``MetricsStore.load`` (what ``cfgcore experiment report`` reads the logs with)
    listed every exposure of the log before counting them: about 330 bytes each at its
    peak (99 MB for 300,000; 10 GB for 30 million), where the counts keep ~20 per user
    here. It now counts them in batches, as it does metric events."""
    from cfgcore.experiments.metrics import MetricsStore

    n = 150_000
    exposures, metrics = tmp_path / "flags.exposures.jsonl", tmp_path / "flags.metrics.jsonl"
    # the lines _line(test="t", variant=..., user=f"user-{i:012d}-abcdef", ts=1.0 + i)
    # writes, byte for byte, formatted directly (json.dumps took 2 s of worker time)
    line = b'{"test": "t", "variant": "%s", "user": "user-%012d-abcdef", "ts": %s}\n'
    assert line % (b"b", 0, b"1.0") == _line(
        test="t", variant="b", user=f"user-{0:012d}-abcdef", ts=1.0
    )
    with open(exposures, "wb") as fh:
        fh.writelines(
            line % (b"control" if i % 2 else b"b", i, repr(1.0 + i).encode()) for i in range(n)
        )
    metrics.write_bytes(_line(test="t", variant="b", metric="m", value=1.0, user="user-x"))
    tracemalloc.start()
    try:
        store = MetricsStore.load(metrics, exposures)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert store.exposures("t") == {"control": n // 2, "b": n // 2}
    assert store.users("t", "b") == n // 2 + 1
    assert peak < 200 * n  # 30 MB; the list of records alone took 50
