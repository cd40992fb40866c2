"""An append racing ``close()`` on the pure-Python backlog queue.

The reference ``RecordQueue`` (``cfgcore._eval_py``) checks ``closed`` and appends in
two steps (the compiled one in one, with no Python code between them). A request
thread could pass the check, lose the GIL, and append after ``close()`` had flushed
and the writer thread had ended: the append answered True (an exposure marked logged,
a metric event counted as recorded) and the record waited in the backlog, written only
by the exit flush, or lost with a forked child or an abandoned writer. Now such an
append finds the queue closed once its record is queued and asks the writer: while
the writing goes on the record is written; after it ended the record is taken back
(False, counted as dropped), so an append answers True exactly when its record is
written.

The interleaving is forced, not hoped for: the queue's deque append is wrapped so
that the chosen record's append waits in the window (after the closed check, before
the append) until the test lets it go. Real writer threads, real queues.
"""

from __future__ import annotations

import threading

import pytest

from cfgcore import _eval_py
from cfgcore.experiments import writer as writer_module
from cfgcore.experiments.writer import BackgroundWriter
from tests.waiting import wait_for


class Sink:
    """``deliver``: keeps every batch; ``hold()`` makes the next delivery wait."""

    def __init__(self) -> None:
        self.records: list[object] = []
        self.entered = threading.Event()
        self.open = threading.Event()
        self.open.set()

    def hold(self) -> None:
        self.entered.clear()
        self.open.clear()

    def __call__(self, batch: list[object]) -> None:
        self.entered.set()
        assert self.open.wait(10)
        self.records.extend(batch)


@pytest.fixture
def reference_writer(monkeypatch):
    """``make(sink, **kw)``: a BackgroundWriter on the pure-Python queue, closed after."""
    monkeypatch.setattr(writer_module, "_impl", _eval_py)
    made: list[BackgroundWriter] = []

    def make(sink: Sink, **kw) -> BackgroundWriter:
        w = BackgroundWriter(sink, name="cfgcore-test-late", batch_size=4, **kw)
        assert isinstance(w._queue, _eval_py.RecordQueue)
        made.append(w)
        return w

    yield make
    for w in made:
        w.close(5)


def park(writer: BackgroundWriter, late: object) -> tuple[threading.Event, threading.Event]:
    """Hold the append of ``late`` in the queue's window (checked, not yet appended):
    ``(in_window, release)``."""
    queue = writer._queue
    push = queue._push
    in_window, release = threading.Event(), threading.Event()

    def parked(record: object) -> None:
        if record is late:
            in_window.set()
            assert release.wait(10)
        push(record)

    queue._push = parked
    return in_window, release


def appending(writer: BackgroundWriter, record: object) -> tuple[threading.Thread, list[bool]]:
    answer: list[bool] = []
    t = threading.Thread(target=lambda: answer.append(writer.append(record)))
    t.start()
    return t, answer


LONG = "u" * 5_000  # past its share of max_bytes below: counted in the long records' sum


@pytest.mark.parametrize("text", ["u1", LONG], ids=["short", "long"])
def test_an_append_that_arrives_after_close_finished_is_taken_back(reference_writer, text):
    sink = Sink()
    w = reference_writer(sink, max_pending=100, max_bytes=100_000, sized=(2,))
    early = [("t", "v", text, float(i)) for i in range(5)]
    assert all(w.append(r) for r in early)
    assert w.flush(10)
    late = ("t", "v", text, 99.0)
    in_window, release = park(w, late)
    t, answer = appending(w, late)
    assert in_window.wait(10)

    assert w.close(10)  # flushed; the writer thread ends the writing
    assert wait_for(lambda: not w._thread.is_alive())
    release.set()
    t.join(10)

    assert answer == [False]  # not written, so not accepted
    assert sink.records == early and not w._pending
    assert w.appended == len(early) == w.done and w.dropped == 1
    assert w.pending_bytes == 0  # (a long record's excess taken off with it)
    assert w.flush(1)  # nothing left to wait for (the exit flush included)


def test_an_append_that_arrives_while_close_still_writes_is_written(reference_writer):
    sink = Sink()
    w = reference_writer(sink, max_pending=100)
    assert w.append(("first",))
    assert wait_for(lambda: sink.records == [("first",)])
    sink.hold()
    assert w.append(("held",))  # the writer thread takes it and waits in the sink
    assert sink.entered.wait(10)
    late = ("late",)
    in_window, release = park(w, late)
    t, answer = appending(w, late)
    assert in_window.wait(10)

    closing: list[bool] = []
    closer = threading.Thread(target=lambda: closing.append(w.close(10)))
    closer.start()
    assert wait_for(lambda: w.closed)  # close() waits for the held batch
    release.set()  # queued while the writing goes on (the delivery lock is held)
    # The late record must be queued before the held delivery ends: released, its
    # thread may not run until the writer has finished, sealed and returned from
    # close() (seen once with three test workers on two CPUs), and the record is then
    # taken back, as the test above shows.
    assert wait_for(lambda: any(r is late for r in w._pending))
    sink.open.set()
    t.join(10)
    closer.join(10)

    assert closing == [True] and answer == [True]
    assert sink.records == [("first",), ("held",), ("late",)]
    assert w.appended == 3 == w.done and w.dropped == 0 and not w._pending


def test_an_append_after_close_is_refused_at_the_check_on_both_queues(monkeypatch):
    """The usual case, no race: the closed check refuses it (the compiled queue too)."""
    from tests.conftest import IMPLS

    for impl in IMPLS.values():
        monkeypatch.setattr(writer_module, "_impl", impl)
        sink = Sink()
        w = BackgroundWriter(sink, name="cfgcore-test-late")
        assert w.append(1)
        assert w.close(10)
        assert w.append(2) is False
        assert sink.records == [1] and w.appended == 1 and w.dropped == 1
