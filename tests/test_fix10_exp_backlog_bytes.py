"""Tenth round: the exposure and metric backlogs (what waits for the background writer)
were bounded by count only: 100,000 waiting records with huge user ids or metric names
could take gigabytes. Now they are bounded by bytes too (an estimate from the text a
request gives a record; ``ExposureLogger(queue_bytes=)``, ``MetricsStore(
max_pending_bytes=)``, ``BackgroundWriter(max_bytes=)``). What the byte bound refuses
is counted exactly as a full backlog's drops (``dropped``, the stats,
``cfgcore_dropped_events_total``, the writer's log line); the request thread never
waits or raises for it, and every record accepted is written by ``flush()`` and
``close()``. Real writers with a sink held up (a stuck disk), on both evaluators."""

from __future__ import annotations

import logging
import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfgcore import metrics as cfg_metrics
from cfgcore.dynamic_config import DynamicConfigurationManager
from cfgcore.engine import engine_class
from cfgcore.experiments import writer as writer_module
from cfgcore.experiments.exposures import ExposureLogger, MemorySink, read_exposures
from cfgcore.experiments.metrics import MetricsStore, read_metrics
from cfgcore.experiments.writer import MAX_PENDING_BYTES, RECORD_BYTES, BackgroundWriter
from tests.conftest import IMPLS
from tests.fuzz import examples
from tests.test_experiments import seed_test

TEST = "recommendation_algorithm_v2"
MB = 1 << 20
# A huge id: a quarter of the backlog bound the exposure test sets (the reference
# evaluator hashes it in Python: 40 ids of 1 MB took 15 s there; the ratio is the point).
ID = MB // 4


@pytest.fixture
def queue_impl(impl, monkeypatch):
    """The writers' request-path queue of the parametrised evaluator too."""
    monkeypatch.setattr(writer_module, "_impl", impl)
    return impl


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


def _held_writer(max_bytes: int, max_pending: int = 100_000):
    sink = HeldSink()
    w = BackgroundWriter(
        sink.write, name="cfgcore-test", max_pending=max_pending, max_bytes=max_bytes,
        sized=(2,), batch_size=1,
    )  # fmt: skip
    # The first record is taken by the writer, which then waits in the sink: every
    # later one waits in the backlog.
    assert w.append(("t", "v", "first", 0.0)) is True
    assert sink.entered.wait(30)
    return w, sink


def test_huge_ids_are_refused_past_the_byte_bound_and_counted(queue_impl):
    w, sink = _held_writer(max_bytes=10 * MB)
    huge = "u" * MB  # one object: the test's own memory stays small
    try:
        answers = [w.append(("t", "v", huge, float(i))) for i in range(100)]
        accepted = answers.count(True)
        # About max_bytes of them wait; the rest were refused, each counted.
        assert 8 <= accepted <= 10
        assert answers == [True] * accepted + [False] * (100 - accepted)
        assert w.dropped == 100 - accepted
        assert w.pending_bytes <= w.max_bytes
        # Short records still fit the room left, as the count bound allows.
        assert w.append(("t", "v", "short", 0.0)) is True
    finally:
        sink.release.set()
    assert w.flush(30)
    # Every record accepted was written; none of the refused ones.
    assert len(sink.records) == 1 + accepted + 1 == w.appended
    assert w.pending_bytes == 0
    # Room again once written.
    assert w.append(("t", "v", huge, 0.0)) is True
    assert w.close(30) and len(sink.records) == w.appended


def test_a_record_larger_than_the_bound_is_refused_even_with_an_empty_backlog(queue_impl):
    sink = MemorySink()
    w = BackgroundWriter(sink.write, name="cfgcore-test", max_bytes=MB, sized=(2,))
    assert w.append(("t", "v", "x" * MB, 0.0)) is False
    assert w.dropped == 1 and w.appended == 0
    assert w.append(("t", "v", "x" * 1000, 0.0)) is True
    assert w.close(30) and [r[2] for r in sink.exposures] == ["x" * 1000]


def test_first_exposures_with_huge_ids_are_dropped_counted_and_logged_again_later(
    tmp_path, impl, queue_impl, caplog
):
    """Through the manager's request path (the evaluator's SeedAPI): a first exposure
    the byte bound refuses is counted like a full backlog's, in the stats, the metric
    and the writer's log line, and the user is logged at a later evaluation."""
    held = HeldSink()
    m = DynamicConfigurationManager(
        state_dir=tmp_path, engine=engine_class(impl)(), exposure_sinks=[held]
    )
    try:
        assert m.create_ab_test(seed_test(start_date=_now() - _day(), end_date=_now() + _day()))
        logger = m.exposures
        assert logger is not None
        logger._writer.max_bytes = 4 * ID  # (a smaller bound than the default, to test)
        before = cfg_metrics.snapshot()
        assert m.get_ab_test_variant(TEST, {"user_id": "opener"})  # the writer takes it...
        assert held.entered.wait(30)  # ...and waits in the held sink
        ids = [f"{i:08d}" + "x" * ID for i in range(40)]
        served = {u: m.get_ab_test_variant(TEST, {"user_id": u}) for u in ids}
        stats = logger.stats()
        assert 0 < stats["dropped"] < 40
        dropped = stats["dropped"]
        assert stats["logged"] == 1 + 40 - dropped
        assert logger._writer.pending_bytes <= 4 * ID
        with caplog.at_level(logging.WARNING, logger="cfgcore.experiments"):
            held.release.set()
            assert logger.flush(30)
            logger._writer._log_drops(final=True)
        said = [r.getMessage() for r in caplog.records if "records dropped" in r.getMessage()]
        assert said and f"{4 * ID} bytes was full" in said[0]
        after = cfg_metrics.snapshot()
        assert _dropped(after, "exposures") - _dropped(before, "exposures") >= dropped
        # Not deduplicated: their next evaluation logs them (the same variant), each
        # one now that the backlog has room.
        for u in ids:
            assert m.get_ab_test_variant(TEST, {"user_id": u}) == served[u]
            assert logger.flush(30)
        # (A user may be logged twice: ids this long also meet the dedup's byte bound.)
        assert {e.user for e in held.records} == {"opener", *ids}
        assert {e.user for e in read_exposures(tmp_path / "flags.exposures.jsonl")} >= set(ids)
    finally:
        held.release.set()
        m.close()


def test_metric_events_with_huge_names_are_dropped_and_counted(tmp_path, queue_impl):
    store = MetricsStore(tmp_path / "m.jsonl", max_pending_bytes=2 * MB)
    gate = threading.Event()
    entered = threading.Event()
    deliver = store._writer._deliver

    def held(events):
        entered.set()
        assert gate.wait(60)
        deliver(events)

    store._writer._deliver = held
    try:
        assert store.record("t", "v", "opener", 1.0, "u0") is True
        assert entered.wait(30)
        name = "m" * (MB // 2)
        answers = [store.record("t", "v", name, 1.0, f"u{i}") for i in range(20)]
        answers += [store.record("t", "v", "ctr", 1.0, "u" * (MB // 2)) for _ in range(20)]
        assert False in answers
        assert store.dropped == answers.count(False)
        assert store._writer.pending_bytes <= 2 * MB
    finally:
        gate.set()
    assert store.flush(30)
    events = read_metrics(tmp_path / "m.jsonl")
    assert len(events) == 1 + answers.count(True)
    assert store.close(30)


@pytest.mark.parametrize("name", sorted(IMPLS))
def test_the_defaults(name):
    """The defaults: 64 MiB, and typical records never meet it before the count."""
    assert MAX_PENDING_BYTES == 64 * MB
    logger = ExposureLogger([MemorySink()])
    store = MetricsStore(None)
    try:
        assert logger._writer.max_bytes == store._writer.max_bytes == MAX_PENDING_BYTES
        share = logger._writer._share
        assert 100_000 * share <= MAX_PENDING_BYTES and share - RECORD_BYTES >= 500
    finally:
        logger.close()
        store.close()


@settings(max_examples=examples(30), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sizes=st.lists(st.sampled_from([0, 10, 500, 700, 5_000, 300_000, 2_000_000]), max_size=60),
    max_bytes=st.integers(100_000, 4_000_000),
    which=st.sampled_from(sorted(IMPLS)),
)
def test_the_estimate_never_passes_the_bound_and_nothing_accepted_is_lost(sizes, max_bytes, which):
    """Whatever ids come while the writer is held up: each append answers at once,
    accepted plus refused is every append, the estimate of what waits stays within
    ``max_bytes``, and after the writer is released every accepted record is
    written, in order."""
    old = writer_module._impl
    writer_module._impl = IMPLS[which]
    try:
        w, sink = _held_writer(max_bytes=max_bytes, max_pending=1_000)
    finally:
        writer_module._impl = old
    texts = {n: "i" * n for n in set(sizes)}
    accepted = []
    try:
        for k, n in enumerate(sizes):
            record = ("t", "v", texts[n], float(k))
            if w.append(record):
                accepted.append(k)
            assert w.pending_bytes <= max_bytes
        assert w.appended == 1 + len(accepted)
        assert w.dropped == len(sizes) - len(accepted)
    finally:
        sink.release.set()
    assert w.close(30)
    assert [r[3] for r in sink.records[1:]] == [float(k) for k in accepted]
    assert w.pending_bytes == 0


# -- helpers ------------------------------------------------------------------------


def _now():
    from datetime import datetime, timezone

    return datetime.now(timezone.utc)


def _day():
    from datetime import timedelta

    return timedelta(days=1)


def _dropped(snapshot, stream: str) -> float:
    family = snapshot["metrics"]["cfgcore_dropped_events_total"]
    return sum(s["value"] for s in family["samples"] if s["labels"]["stream"] == stream)
