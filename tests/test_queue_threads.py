"""The backlog queue (``RecordQueue``, both evaluators) under many appending threads.

Request threads append first exposures and metric events concurrently, while another
thread flushes or closes the writer. Nothing accepted may be lost, nothing refused
written, and the counts (``appended``, ``dropped``, ``byte_dropped``, ``long_added``)
must equal what the appends answered, exactly: ``flush()`` waits for ``appended``
records, so one increment lost lets it return before a record is written.

A free-threaded CPython runs other threads between any two steps of the reference
queue; under the GIL they run only where the interpreter switches. So on the reference
queue the deque's append is wrapped to give up the GIL just before and just after it:
every other thread may run between the queue's checks, its append and its counts, as
on a free-threaded build. (The compiled queue's append runs no Python code between
them: it is not wrapped.)
"""

from __future__ import annotations

import collections
import threading
import time
from typing import Any

from cfgcore.experiments import writer as writer_module
from cfgcore.experiments.writer import RECORD_BYTES, BackgroundWriter
from tests.waiting import wait_for

THREADS = 8
# Text lengths of the records: short ones (bounded by the count) and long ones (past
# their share of max_bytes below: added up in long_added).
TEXTS = ("u" * 5, "u" * 40, "u" * 3_000, "u" * 12)


def _yielding(queue: Any) -> None:
    """On the reference queue, give up the GIL around its deque append (see above)."""
    push = getattr(queue, "_push", None)
    if push is None:  # the compiled queue: no Python code inside its append
        return

    def yielding_push(record: Any) -> None:
        time.sleep(0)
        push(record)
        time.sleep(0)

    queue._push = yielding_push


def _excess(queue: Any, record: tuple[Any, ...]) -> int:
    """What a record adds to ``long_added`` when accepted (its excess over its share)."""
    return max(0, queue.text_size(record) + RECORD_BYTES - queue.share)


def test_counts_and_bounds_are_exact_with_threads_appending_at_once(impl):
    max_pending, max_bytes = 300, 300 * 200  # share 200: a 3,000-character text is long
    pending: collections.deque[Any] = collections.deque()
    starts = []
    q = impl.RecordQueue(pending, max_pending, lambda: starts.append(1), max_bytes=max_bytes,
                         sized=(2,))  # fmt: skip
    _yielding(q)
    go = threading.Barrier(THREADS)
    answers: list[list[tuple[tuple[Any, ...], bool]]] = [[] for _ in range(THREADS)]

    def appender(t: int) -> None:
        go.wait()
        for i in range(400):
            record = (t, i, TEXTS[i % len(TEXTS)])
            answers[t].append((record, q.append(record)))

    threads = [threading.Thread(target=appender, args=(t,)) for t in range(THREADS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()

    accepted = [r for mine in answers for r, ok in mine if ok]
    refused = [r for mine in answers for r, ok in mine if not ok]
    assert len(accepted) + len(refused) == THREADS * 400
    # No writer takes anything: every accepted record waits, once, in each thread's order.
    assert sorted(pending) == sorted(accepted)
    for t in range(THREADS):
        assert [r for r in pending if r[0] == t] == [r for r, ok in answers[t] if ok]
    assert q.appended == len(accepted) == len(starts)  # never started: every append asks
    assert q.dropped + q.byte_dropped == len(refused) > 0
    assert q.long_added == sum(_excess(q, r) for r in accepted) and q.long_taken == 0
    # The bounds hold exactly, whatever the interleaving: by count, and the estimate
    # (share per record waiting plus the long ones' excess) by bytes.
    assert len(pending) <= max_pending
    assert len(pending) * q.share + q.long_added <= max_bytes


class _Sink:
    def __init__(self) -> None:
        self.records: list[tuple[Any, ...]] = []

    def __call__(self, batch: list[tuple[Any, ...]]) -> None:
        self.records.extend(batch)


def test_no_record_is_lost_with_threads_appending_through_flush_and_close(impl, monkeypatch):
    monkeypatch.setattr(writer_module, "_impl", impl)
    sink = _Sink()
    w = BackgroundWriter(sink, name="cfgcore-test-threads", max_pending=400,
                         max_bytes=400 * 200, sized=(2,), batch_size=16)  # fmt: skip
    _yielding(w._queue)
    answers: list[list[tuple[tuple[Any, ...], bool]]] = [[] for _ in range(THREADS)]
    after_close: list[list[bool]] = [[] for _ in range(THREADS)]
    # Each thread appends up to `quota` records, then waits for more (the compiled queue
    # would otherwise append millions of refused records while the writer flushes).
    quota = [0]
    more = threading.Condition()
    ended = threading.Event()

    def appender(t: int) -> None:
        mine, late = answers[t], after_close[t]
        i = 0
        while len(late) < 20 and not ended.is_set():
            with more:
                more.wait_for(lambda i=i: i < quota[0] or ended.is_set())
            was_closed = w.closed
            record = (t, i, TEXTS[i % len(TEXTS)])
            ok = w.append(record)
            mine.append((record, ok))
            if was_closed:
                late.append(ok)
            i += 1

    def allow(n: int) -> None:
        with more:
            quota[0] = n
            more.notify_all()

    threads = [threading.Thread(target=appender, args=(t,)) for t in range(THREADS)]
    for th in threads:
        th.start()
    try:
        step = 100
        for round_ in range(1, 31):
            allow(step * (round_ + 1))  # they go on appending while this one flushes
            assert wait_for(lambda n=step * round_: all(len(a) >= n for a in answers))
            # Every record accepted before flush() is called is written when it returns.
            before = [r for mine in answers for r, ok in list(mine) if ok]
            assert w.flush(30)
            written = set(sink.records)
            assert [r for r in before if r not in written] == []
        assert w.close(30)  # while they append
        allow(1 << 62)  # each appends 20 more, after the close, and ends
        for th in threads:
            th.join(30)
    finally:
        w.close(30)
        ended.set()  # (a failed assertion above: stop them)
        allow(1 << 62)
        for th in threads:
            th.join(30)

    assert not any(th.is_alive() for th in threads)
    assert after_close == [[False] * 20] * THREADS  # refused once closed
    accepted = [r for mine in answers for r, ok in mine if ok]
    refused = [r for mine in answers for r, ok in mine if not ok]
    # Every accepted record written once, no refused one, each thread's in its order.
    assert sorted(sink.records) == sorted(accepted)
    for t in range(THREADS):
        assert [r for r in sink.records if r[0] == t] == [r for r, ok in answers[t] if ok]
    # The counts are the answers, exactly.
    assert w.appended == w.done == len(accepted)
    assert w.dropped == len(refused) >= THREADS * 20
    assert (w.lost, w.errors) == (0, 0)
    assert not w._pending and w.pending_bytes == 0
