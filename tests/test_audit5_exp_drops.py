"""Fifth audit, records dropped on a full backlog.

A batch job that assigns variants in a tight loop appends exposures faster than one
writer thread can write them: past ``max_pending`` they are dropped. Before, that was
only a counter (a job assigning 300,000 users lost 60 % of their exposures and the
report's conversion rates doubled, with nothing in the log); and the users whose
exposure was dropped stayed in the dedup set, so their next evaluation did not log
them either. Now the writer says so in the log (at once, then at most once a minute,
and the rest at close), and a dropped exposure leaves the user out of the dedup set.
"""

from __future__ import annotations

import logging
import threading

from cfgcore.experiments.exposures import ExposureLogger, MemorySink
from cfgcore.experiments.writer import BackgroundWriter


class Gate:
    """A deliver function that blocks on its first batch until opened."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.open = threading.Event()
        self.batches: list[list] = []

    def __call__(self, batch):
        self.entered.set()
        assert self.open.wait(10)
        self.batches.append(list(batch))


def _drop_lines(caplog):
    return [r.getMessage() for r in caplog.records if "records dropped" in r.getMessage()]


def test_dropped_records_are_logged_once_then_summed_up_at_close(caplog):
    caplog.set_level(logging.WARNING, logger="cfgcore.experiments")
    gate = Gate()
    writer = BackgroundWriter(gate, name="cfgcore-test-drops", max_pending=5, batch_size=1)
    try:
        assert writer.append(0)  # taken by the writer thread, which then blocks
        assert gate.entered.wait(10)
        results = [writer.append(i) for i in range(1, 16)]
        assert results.count(False) == 10 and writer.dropped == 10
        writer._log_drops()  # what the writer thread's next poll does
        assert _drop_lines(caplog) == [
            "cfgcore-test-drops: 10 records dropped (10 in all): the backlog of 5 was full "
            "(records came faster than they could be written) or the writer was closed; a "
            "batch job should flush its logger every few thousand records"
        ]
        gate.open.set()
        assert writer.flush(10)
        for i in range(3):  # appended after close: dropped too
            writer._queue.closed = True
            assert writer.append(i) is False
        writer._log_drops()  # within a minute of the last line: nothing more yet
        assert len(_drop_lines(caplog)) == 1
    finally:
        gate.open.set()
        writer.close()
    lines = _drop_lines(caplog)
    assert len(lines) == 2 and lines[1].startswith(
        "cfgcore-test-drops: 3 records dropped (13 in all)"
    )
    assert [b[0] for b in gate.batches] == list(range(6))  # the kept ones, in order


def test_an_exposure_dropped_is_logged_at_the_users_next_evaluation(caplog):
    sink = MemorySink()
    logger = ExposureLogger([sink], queue_size=1)
    gate = Gate()
    logger._writer._deliver = gate  # the writer blocks on its first batch
    try:
        logger.log("t", "b", "first")
        assert gate.entered.wait(10)
        logger.log("t", "b", "waiting")  # the backlog's one place
        logger.log("t", "b", "u1")  # dropped
        logger.expose("t", "b", {"user_id": "u2"})  # dropped
        assert logger.dropped == 2
        gate.open.set()
        assert logger.flush(10)
        logger._writer._deliver = logger._deliver
        logger.log("t", "b", "u1")
        assert logger.flush(10)  # (a backlog of one)
        logger.expose("t", "b", {"user_id": "u2"})
        assert logger.flush(10)
        logger.log("t", "b", "waiting")  # logged already: not again
        assert logger.flush(10) and logger.dropped == 2
    finally:
        gate.open.set()
        logger.close()
    assert [e.user for e in sink.exposures] == ["u1", "u2"]
    assert [b[0][2] for b in gate.batches] == ["first", "waiting"]
