"""Tenth round: the exposure and metric backlogs' byte bound moved into the evaluators'
``RecordQueue`` (``RecordQueue(pending, max_pending, start, max_bytes=, sized=)``), so
``BackgroundWriter.append`` is the queue's own append again: no Python frame in front
of it on the request path (the compiled one adds and compares in C).

The queue on its own, on both evaluators: its answers follow the rule written out in
``expected_answer`` below (a model of the semantics), the two evaluators agree on any
record, the estimate never passes ``max_bytes``, every record accepted is delivered in
order, and accepted plus refused is every append. And the writer around it: its append
is the queue's, and a refusal by the byte bound is logged by the writer thread, not
only at close."""

from __future__ import annotations

import collections
import logging
import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.experiments import writer as writer_module
from cfgcore.experiments.exposures import MemorySink
from cfgcore.experiments.writer import RECORD_BYTES, BackgroundWriter
from tests.conftest import IMPLS
from tests.fuzz import examples

NAMES = sorted(IMPLS)


def _queue(name, max_pending=100, max_bytes=10_000, sized=(2,)):
    starts: list = []
    pending: collections.deque = collections.deque()
    q = IMPLS[name].RecordQueue(
        pending, max_pending, lambda: starts.append(1), max_bytes=max_bytes, sized=sized
    )
    return q, pending, starts


class Text(str):
    """A str subclass: not the text a request gives (counts 0, as in the writer)."""


class Raising:
    def __getitem__(self, i):
        raise RuntimeError("no items")

    def __len__(self):
        raise RuntimeError("no length")


# -- the constructor --------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_share_and_short_text_follow_max_bytes_over_max_pending(name):
    q, _, _ = _queue(name, max_pending=1_000, max_bytes=1_000_000)
    assert (q.share, q.short_text, q.max_bytes) == (1_000, 1_000 - RECORD_BYTES, 1_000_000)
    assert q.sized == (2,)
    assert (q.long_added, q.long_taken, q.byte_dropped) == (0, 0, 0)
    q, _, _ = _queue(name, max_pending=1_000, max_bytes=5_000)
    assert (q.share, q.short_text) == (RECORD_BYTES, 0)  # never below RECORD_BYTES
    q, _, _ = _queue(name, max_pending=0, max_bytes=5_000, sized=())
    assert q.share == 5_000 and q.sized == ()


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("sized", [(1, 2, 3), (0, 0, 0, 0), ("2",), (2.0,), (1 << 40,)])
def test_more_than_two_sized_fields_or_no_index_is_refused(name, sized):
    with pytest.raises(ValueError, match="sized must name at most 2 field indices"):
        IMPLS[name].RecordQueue(collections.deque(), 10, lambda: None, sized=sized)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("max_bytes", [0, -1, 1.5, "64", None, True])
def test_max_bytes_must_be_a_positive_int(name, max_bytes):
    with pytest.raises(ValueError, match="max_bytes must be a positive integer"):
        IMPLS[name].RecordQueue(collections.deque(), 10, lambda: None, max_bytes=max_bytes)


@pytest.mark.parametrize("name", NAMES)
def test_without_max_bytes_there_is_no_byte_bound(name):
    pending: collections.deque = collections.deque()
    q = IMPLS[name].RecordQueue(pending, 3, lambda: None, sized=(0,))
    huge = "x" * 10_000_000
    assert [q.append((huge,)) for _ in range(4)] == [True, True, True, False]
    assert (q.dropped, q.byte_dropped) == (1, 0)
    # A bound past long long's range is the ceiling (no bound), on both.
    q = IMPLS[name].RecordQueue(collections.deque(), 3, lambda: None, max_bytes=1 << 80)
    assert q.max_bytes == IMPLS[name].MAX_QUEUE_BYTES == 1 << 60


# -- what an append answers ---------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_short_records_are_bounded_by_count_closed_and_start_as_before(name):
    q, pending, starts = _queue(name, max_pending=3, max_bytes=3_000)
    assert q.short_text == 1_000 - RECORD_BYTES
    records = [("t", "v", "u" * q.short_text, i) for i in range(5)]
    assert [q.append(r) for r in records] == [True] * 3 + [False] * 2
    assert list(pending) == records[:3]
    assert (q.appended, q.dropped, q.byte_dropped, q.long_added) == (3, 2, 0, 0)
    assert starts == [1, 1, 1]
    q.started = True
    pending.popleft()
    assert q.append(records[3]) is True and starts == [1, 1, 1]
    q.closed = True
    assert q.append(records[4]) is False and (q.dropped, q.byte_dropped) == (3, 0)


@pytest.mark.parametrize("name", NAMES)
def test_a_long_record_counts_its_size_and_is_refused_past_max_bytes(name):
    q, pending, _ = _queue(name, max_pending=10, max_bytes=10_000)  # share 1,000
    long = "u" * 3_000
    assert q.append(("t", "v", long, 0)) is True
    # Its excess over its share (fix11: its size was added on top of its share).
    assert (q.long_added, q.long_taken) == (3_000 + RECORD_BYTES - 1_000, 0)
    # While a long record waits, short ones are judged by bytes too: each record waiting
    # at its share (1,000), the long one's excess (2,096) on top, so the long one counts
    # its size (3,096) once, and 1,000 for the new one.
    answers = [q.append(("t", "v", "s", i)) for i in range(10)]
    assert answers == [True] * 6 + [False] * 4
    assert (q.appended, q.dropped, q.byte_dropped) == (7, 0, 4)
    assert len(pending) * q.share + q.long_added - q.long_taken <= q.max_bytes
    # A closed queue refuses as closed: counted in `dropped`, not by the byte bound.
    q.closed = True
    assert q.append(("t", "v", long, 0)) is False
    assert (q.dropped, q.byte_dropped, q.long_added) == (1, 4, 3_000 + RECORD_BYTES - 1_000)


@pytest.mark.parametrize("name", NAMES)
def test_a_record_larger_than_max_bytes_is_refused_even_when_nothing_waits(name):
    q, pending, _ = _queue(name, max_pending=10, max_bytes=10_000)
    assert q.append(("t", "v", "x" * 10_000, 0)) is False
    assert (q.byte_dropped, q.long_added, len(pending)) == (1, 0, 0)
    assert q.append(("t", "v", "x" * (10_000 - RECORD_BYTES), 0)) is True
    assert q.long_added == 10_000 - q.share  # its size, its share counted with the waiting


@pytest.mark.parametrize("name", NAMES)
def test_a_long_record_the_count_refuses_leaves_no_bytes_behind(name):
    q, pending, _ = _queue(name, max_pending=2, max_bytes=1_000_000)  # share 500,000
    q.max_pending = 0  # (the count bound lowered while the queue lives)
    assert q.append(("t", "v", "x" * 600_000, 0)) is False
    assert (q.dropped, q.byte_dropped, q.long_added) == (1, 0, 0)


@pytest.mark.parametrize("name", NAMES)
def test_two_sized_fields_add_up_and_negative_indices_count_from_the_end(name):
    q, _, _ = _queue(name, sized=(2, -2))
    assert q.text_size(("t", "v", "m" * 7, 1.0, "u" * 5, 0.0)) == 12
    assert q.text_size(("t", "vv", "m" * 7)) == 9
    q, _, _ = _queue(name, sized=(2, 2))
    assert q.text_size(("t", "v", "m" * 7)) == 14  # one field twice
    q, _, _ = _queue(name, sized=(2, 4))
    assert q.text_size(("t", "v", "m" * 7, 1.0, "u" * 5, 0.0)) == 12
    assert q.text_size(("t", "v", "m" * 7)) == 7  # a short record: the missing one is 0


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(
    "record",
    [
        ["t", "v", "x" * 5_000],  # not a tuple
        ("t", "v", Text("x" * 5_000)),  # not an exact str
        ("t", "v", b"x" * 5_000),
        ("t", "v"),  # too short
        (),
        None,
        42,
        "x" * 5_000,
        Raising(),
        collections.namedtuple("R", "a b c")("t", "v", "x" * 5_000),
    ],
    ids=lambda r: type(r).__name__,
)
def test_anything_but_exact_str_fields_of_a_tuple_counts_nothing_and_never_raises(name, record):
    q, pending, _ = _queue(name, max_pending=10, max_bytes=10_000)
    assert q.text_size(record) == 0
    assert q.append(record) is True
    assert list(pending) == [record] and q.long_added == 0


@pytest.mark.parametrize("name", NAMES)
def test_reset_zeroes_the_sums_and_keeps_the_counts(name):
    q, pending, _ = _queue(name, max_pending=10, max_bytes=10_000)
    assert q.append(("t", "v", "x" * 5_000, 0)) is True
    assert q.append(("t", "v", "x" * 5_000, 1)) is False
    fresh: collections.deque = collections.deque()
    q.reset(fresh)
    assert (q.long_added, q.long_taken, q.appended) == (0, 0, 0)
    assert (q.byte_dropped, q.dropped) == (1, 0)
    assert q.append(("t", "v", "x" * 5_000, 2)) is True and len(fresh) == 1


def test_the_compiled_sums_lose_nothing_to_threads():
    """Request threads add to long_added in C, with no Python code between the read and
    the write: with a writer taking at the same time, the sums end exact."""
    if "c" not in IMPLS:
        pytest.skip("cfgcore._eval is not built here")
    q, pending, _ = _queue("c", max_pending=1_000_000, max_bytes=100_000_000)  # share 100
    q.started = True
    size = 700 + RECORD_BYTES
    stop = threading.Event()
    taken = [0]

    def take():
        while not stop.is_set() or pending:
            try:
                pending.popleft()
            except IndexError:
                continue
            taken[0] += size - 100  # the excess over the share
            q.long_taken += size - 100

    def request():
        for i in range(20_000):
            q.append(("t", "v", "x" * 700, i))

    writer = threading.Thread(target=take)
    writer.start()
    threads = [threading.Thread(target=request) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    writer.join()
    assert q.appended == 80_000 and q.dropped == q.byte_dropped == 0
    assert q.long_added == 80_000 * (size - 100) == taken[0] == q.long_taken


# -- the semantics, modelled ----------------------------------------------------------------


def text_size(record, sized):
    if type(record) is not tuple:
        return 0
    n = 0
    for i in sized:
        if -len(record) <= i < len(record) and type(record[i]) is str:
            n += len(record[i])
    return n


def expected_answer(state, record, max_pending, max_bytes, sized, closed):
    """The rule the queue follows (the brief's, written out): 'ok', 'count', 'bytes'."""
    share = max(RECORD_BYTES, max_bytes // max(1, max_pending))
    n = text_size(record, sized)
    size = 0
    if n > share - RECORD_BYTES or state["added"] != state["taken"]:
        size = max(n + RECORD_BYTES, share)
        waiting = state["waiting"] * share + max(0, state["added"] - state["taken"])
        if waiting + size > max_bytes and not closed:
            return "bytes", 0
    if closed or state["waiting"] >= max_pending:
        return "count", 0
    return "ok", size - share if size > share else 0  # its excess (fix11)


fields = st.one_of(
    st.integers(0, 3_000).map(lambda n: "x" * n),
    st.sampled_from([None, 7, b"bytes", Text("y" * 2_000)]),
)
records = st.one_of(
    st.lists(fields, max_size=6).map(tuple),
    st.lists(fields, max_size=6),
    st.sampled_from([None, 3, "z" * 4_000]),
)
ops = st.lists(
    st.one_of(
        st.tuples(st.just("append"), records),
        st.tuples(st.just("take"), st.integers(0, 5)),
        st.tuples(st.just("close"), st.none()),
    ),
    max_size=80,
)


@settings(max_examples=examples(150), deadline=None)
@given(
    steps=ops,
    max_pending=st.integers(1, 12),
    per_record=st.integers(RECORD_BYTES, 3_000),
    extra=st.integers(0, 5_000),
    sized=st.lists(st.integers(-7, 7), max_size=2).map(tuple),
)
def test_both_queues_follow_the_rule_and_keep_the_estimate_within_max_bytes(
    steps, max_pending, per_record, extra, sized
):
    """Random records and sizes, with a writer taking some now and then (as
    BackgroundWriter._write_some does): each append answers as the model says, on both
    evaluators alike; the estimate stays within max_bytes (which holds every
    ``max_pending`` records at their share); accepted records come out in order;
    accepted + refused is every append."""
    max_bytes = per_record * max_pending + extra
    queues = {name: _queue(name, max_pending, max_bytes, sized) for name in NAMES}
    model = {"waiting": 0, "added": 0, "taken": 0}
    closed = False
    appended = []
    delivered: dict[str, list] = {name: [] for name in NAMES}
    attempts = 0
    for op, arg in steps:
        if op == "append":
            attempts += 1
            want, size = expected_answer(model, arg, max_pending, max_bytes, sized, closed)
            for name, (q, _, _) in queues.items():
                assert q.append(arg) is (want == "ok"), (name, want)
                assert q.text_size(arg) == text_size(arg, sized)
            if want == "ok":
                appended.append(arg)
                model["waiting"] += 1
                model["added"] += size
        elif op == "take":
            for name, (q, pending, _) in queues.items():
                batch = [pending.popleft() for _ in range(min(arg, len(pending)))]
                delivered[name].extend(batch)
                if not batch:
                    q.long_taken = q.long_added
                elif q.long_added != q.long_taken:
                    taken = sum(
                        q.text_size(r) + RECORD_BYTES - q.share
                        for r in batch
                        if q.text_size(r) + RECORD_BYTES > q.share
                    )
                    q.long_taken = min(q.long_taken + taken, q.long_added)
            q0 = queues[NAMES[0]][0]
            model["waiting"] = len(queues[NAMES[0]][1])
            model["taken"] = q0.long_taken
        else:
            closed = True
            for q, _, _ in queues.values():
                q.closed = True
        for name, (q, pending, _) in queues.items():
            estimate = len(pending) * q.share + max(0, q.long_added - q.long_taken)
            assert estimate <= max_bytes, name
            assert (q.long_added, q.long_taken) == (model["added"], model["taken"]), name
            assert q.appended + q.dropped + q.byte_dropped == attempts, name
    for name, (q, pending, _) in queues.items():
        assert delivered[name] + list(pending) == appended, name
        assert q.appended == len(appended), name


# -- the writer around it ------------------------------------------------------------------


@pytest.fixture
def queue_impl(impl, monkeypatch):
    monkeypatch.setattr(writer_module, "_impl", impl)
    return impl


def test_the_writers_append_is_the_queues_own(queue_impl):
    """No Python frame in front of the queue's append (a9afee4 put a closure there)."""
    w = BackgroundWriter(MemorySink().write, name="cfgcore-test", max_bytes=1 << 20, sized=(2, 4))
    try:
        assert w.append == w._queue.append and w.append.__self__ is w._queue
        assert w._queue.sized == (2, 4) and w.max_bytes == 1 << 20
        w.max_bytes = 5_000
        assert w._queue.max_bytes == 5_000
        with pytest.raises(ValueError):
            w.max_bytes = 0
    finally:
        w.close(10)


def test_byte_bound_drops_are_logged_by_the_writer_thread(queue_impl, caplog):
    """A record the byte bound refuses is logged by the running writer (within its poll
    interval), as a full backlog's drops are, not first at close."""
    sink = MemorySink()
    w = BackgroundWriter(sink.write, name="cfgcore-test", max_bytes=10_000, sized=(2,))
    try:
        with caplog.at_level(logging.WARNING, logger="cfgcore.experiments"):
            assert w.append(("t", "v", "first", 0.0)) is True  # starts the writer
            assert w.flush(10)
            assert w.append(("t", "v", "x" * 20_000, 0.0)) is False
            deadline = time.monotonic() + 10
            said: list = []
            while not said and time.monotonic() < deadline:
                said = [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()]
                time.sleep(0.01)
            assert said and "10000 bytes was full" in said[0]
            assert not w.closed
    finally:
        w.close(10)
