"""Eleventh round: the backlog's byte estimate counted a long record twice. A record
whose text is longer than its share of ``max_bytes`` was counted as its share (with
every record waiting) and then in full again in the long records' sum, so the byte
bound refused records early: with ids of 100 KB and a bound of 1 MiB, 9 waited where
the documented estimate (the text, one byte a character, plus ``RECORD_BYTES``) lets
10 fit. Now the sum holds each long record's excess over its share: exactly
``max_bytes // (text + RECORD_BYTES)`` long records of one size fit. Both evaluators'
``RecordQueue``, alone and under a real writer whose sink is held up."""

from __future__ import annotations

import collections
import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfgcore.experiments import writer as writer_module
from cfgcore.experiments.writer import RECORD_BYTES, BackgroundWriter
from tests.conftest import IMPLS
from tests.fuzz import examples

KB = 1024


def _queue(impl, max_bytes, max_pending=100_000):
    pending: collections.deque = collections.deque()
    q = impl.RecordQueue(pending, max_pending, lambda: None, max_bytes=max_bytes, sized=(2,))
    q.started = True
    return q, pending


def _fits(q, text: str, tries: int) -> int:
    answers = [q.append(("t", "v", text, float(i))) for i in range(tries)]
    accepted = answers.count(True)
    assert answers == [True] * accepted + [False] * (tries - accepted)
    return accepted


@pytest.mark.parametrize("impl_name", sorted(IMPLS))
@settings(max_examples=examples(200), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    max_bytes=st.integers(1 * KB, 4 * KB * KB),
    max_pending=st.integers(1, 100_000),
    extra=st.integers(1, 20 * KB),
)
def test_exactly_the_documented_number_of_long_records_fits(
    impl_name, max_bytes, max_pending, extra
):
    impl = IMPLS[impl_name]
    q, pending = _queue(impl, max_bytes, max_pending)
    share = q.share
    size = share + extra  # longer than its share: a long record
    text = "u" * (size - RECORD_BYTES)
    expected = min(max_bytes // size, max_pending)
    assert _fits(q, text, expected + 3) == expected
    assert q.byte_dropped + q.dropped == 3
    # Every one of them waits, counted once: the estimate is their sizes.
    assert len(pending) * share + (q.long_added - q.long_taken) == expected * size


@pytest.mark.parametrize("impl_name", sorted(IMPLS))
@settings(max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    max_bytes=st.integers(16 * KB, 1 << 20),
    shorts=st.integers(0, 40),
    sizes=st.lists(st.integers(1, 64 * KB), min_size=1, max_size=40),
)
def test_a_mixed_backlog_is_its_records_sizes(impl_name, max_bytes, shorts, sizes):
    """Short records count their share, long ones their size, each once: a record is
    accepted exactly while the sum with it stays within max_bytes (after the first
    long one: short ones before it are bounded by the count)."""
    impl = IMPLS[impl_name]
    q, pending = _queue(impl, max_bytes, max_pending=1000)
    share = q.share
    for i in range(shorts):
        assert q.append(("t", "v", "", float(i))) is True  # no text: short
    total = shorts * share
    for n in sizes:
        size = max(n + RECORD_BYTES, share)
        accepted = q.append(("t", "v", "x" * n, 0.0))
        assert accepted == (total + size <= max_bytes and len(pending) < 1000)
        if accepted:
            total += size
    assert len(pending) * share + (q.long_added - q.long_taken) == total


class HeldSink:
    """A sink whose writes wait until released (a stuck disk): the backlog builds."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.entered = threading.Event()
        self.records: list = []

    def write(self, batch) -> None:
        self.entered.set()
        assert self.release.wait(60)
        self.records.extend(batch)


def test_a_writer_holds_max_bytes_of_100kb_ids(impl, monkeypatch):
    """1 MiB of backlog, ids of 100 KB (less RECORD_BYTES): 10 wait, as documented
    (9 before); once written, the estimate is back to nothing and 10 fit again."""
    monkeypatch.setattr(writer_module, "_impl", impl)
    sink = HeldSink()
    w = BackgroundWriter(
        sink.write, name="cfgcore-test", max_pending=1000, max_bytes=KB * KB,
        sized=(2,), batch_size=1,
    )  # fmt: skip
    try:
        assert w.append(("t", "v", "first", 0.0)) is True
        assert sink.entered.wait(30)  # the writer holds it; the rest wait
        long_id = "u" * (100 * KB - RECORD_BYTES)
        answers = [w.append(("t", "v", long_id, float(i))) for i in range(12)]
        assert answers == [True] * 10 + [False] * 2
        assert w.pending_bytes == 10 * 100 * KB <= w.max_bytes
        sink.release.set()
        assert w.flush(30)
        assert w.pending_bytes == 0
        assert [w.append(("t", "v", long_id, 0.0)) for _ in range(11)] == [True] * 10 + [False]
        assert w.flush(30)
        assert len(sink.records) == 1 + 10 + 10
    finally:
        sink.release.set()
        w.close()
