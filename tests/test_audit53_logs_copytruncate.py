"""Exposure and metric logs emptied in their place, as logrotate's ``copytruncate`` does.

logrotate's ``copytruncate`` copies a log to ``<log>.1`` and truncates the log where it
is; the writers (``O_APPEND``) then append from its start. A reader that follows the
logs (the guardrail checks' ``SharedLogs``, any ``LogTail``) kept its old offset into
the emptied file: it read nothing until the file grew past that offset, then read from
the middle of a record (counted as an "unusable line") and never saw the records before
it, so the checks judged on fewer users and events than the logs hold. The followed
file's end is now checked against what was read there: a file cut back or written over
counts in ``gaps`` and is read again from its start.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading

import pytest

from cfgcore.errors import ConfigError
from cfgcore.experiments.exposures import (
    Exposure,
    ExposureRecord,
    JsonLinesSink,
    LogTail,
    read_log,
)
from cfgcore.experiments.guardrails import SharedLogs


def _write(exposures: JsonLinesSink, metrics: JsonLinesSink, prefix: str, n: int) -> None:
    exposures.write([Exposure("t", "a", f"{prefix}{i}", 1.7e9 + i) for i in range(n)])
    event = {"test": "t", "variant": "a", "metric": "m", "value": 1}
    metrics.write([{**event, "user": f"{prefix}{i}", "ts": 1.7e9 + i} for i in range(n)])


def _copytruncate(path) -> None:
    shutil.copyfile(path, f"{path}.1")
    with open(path, "r+b") as fh:
        fh.truncate(0)


@pytest.mark.parametrize("grown", [10, 80], ids=["shorter-than-read", "grown-past-it"])
def test_guardrail_logs_count_each_record_once_across_a_copytruncate(tmp_path, grown, caplog):
    exposures_path, metrics_path = tmp_path / "e.jsonl", tmp_path / "m.jsonl"
    exposures, metrics = JsonLinesSink(exposures_path), JsonLinesSink(metrics_path)
    _write(exposures, metrics, "u", 50)
    logs = SharedLogs(str(metrics_path), str(exposures_path))
    store = logs.refresh(frozenset({"t"}))
    assert (store.exposed("t", "a"), store.event_count("t", "a", "m")) == (50, 50)

    _copytruncate(exposures_path)
    _copytruncate(metrics_path)
    _write(exposures, metrics, "v", grown)  # 10: the file stays shorter than was read
    with caplog.at_level(logging.WARNING, logger="cfgcore.experiments"):
        store = logs.refresh(frozenset({"t"}))
    assert (store.exposed("t", "a"), store.event_count("t", "a", "m")) == (50 + grown,) * 2
    assert not store.skipped, store.skipped  # no record read from its middle
    assert any("copytruncate" in r.getMessage() and "e.jsonl" in r.getMessage()
               for r in caplog.records)  # fmt: skip

    _write(exposures, metrics, "w", 5)
    store = logs.refresh(frozenset({"t"}))
    fresh = SharedLogs(str(metrics_path), str(exposures_path)).refresh(frozenset({"t"}))
    assert store.exposed("t", "a") == fresh.exposed("t", "a") == 55 + grown
    assert store.event_count("t", "a", "m") == fresh.event_count("t", "a", "m") == 55 + grown


def test_a_followed_file_written_over_in_its_place_is_read_again_from_its_start(tmp_path):
    """The same for a plain tail, without a cut: the file emptied and written again past
    the old offset is noticed by its bytes there, not only by its size."""
    path = tmp_path / "e.jsonl"
    sink = JsonLinesSink(path)
    sink.write([Exposure("t", "a", f"u{i}", 1.7e9 + i) for i in range(20)])
    tail: LogTail[ExposureRecord] = LogTail(path, ExposureRecord)
    seen: list[str] = []
    tail.read(lambda batch: seen.extend(r.user for r in batch))
    assert len(seen) == 20 and tail.gaps == 0
    _copytruncate(path)
    sink.write([Exposure("t", "a", f"v{i}", 1.8e9 + i) for i in range(40)])
    tail.read(lambda batch: seen.extend(r.user for r in batch))
    assert seen == [f"u{i}" for i in range(20)] + [f"v{i}" for i in range(40)]
    assert tail.gaps == 1 and not tail.skipped, tail.skipped
    sink.write([Exposure("t", "a", "x", 1.9e9)])
    tail.read(lambda batch: seen.extend(r.user for r in batch))
    assert seen[-1] == "x" and len(seen) == 61 and tail.gaps == 1
    tail.close()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are POSIX")
def test_read_log_of_the_current_file_only_refuses_a_fifo_instead_of_waiting(tmp_path):
    """``read_log(rotated=False)`` opened the log with open(), which waits for a FIFO's
    writer for ever; it refuses anything but a regular file, as the rotated reading does."""
    path = tmp_path / "e.jsonl"
    os.mkfifo(path)
    done: list[BaseException] = []

    def read() -> None:
        try:
            list(read_log(path, ExposureRecord, rotated=False))
        except BaseException as exc:
            done.append(exc)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(10)
    if reader.is_alive():  # let the stuck reader go before failing
        with open(path, "wb"):
            pass
        pytest.fail("read_log waited on a FIFO")
    assert isinstance(done[0], ConfigError) and "not a regular file" in str(done[0])
