"""A report on logs that services keep appending to is one cut of both logs.

``cfgcore experiment report`` (``MetricsStore.load``) read the exposure log to its end,
then the metric log to a later end: a user whose exposure and metric event were both
written in between had the event counted (a ``record_metric`` event makes its user one
of the variant's users) without the exposure, so the variant's users in that window
were all converters. Both logs' ends are now taken at one instant, under their locks,
and each log is read up to its end only. The writers keep the cut meaningful: a
metric event reaches its log only after the exposures the process accepted before it
(``record_metric`` exposes the user first), so a cut never holds the event without
the exposure.

Real files, real writers: managers of one state directory in threads and in another
process append through ``record_metric`` while the report reads.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.dynamic_config import ABTestConfiguration, DynamicConfigurationManager
from cfgcore.engine import engine_class
from cfgcore.experiments import metrics as metrics_module
from cfgcore.experiments.dynamic import state_paths
from cfgcore.experiments.exposures import (
    ExposureRecord,
    JsonLinesSink,
    LogTail,
    _Append,
    _Journal,
    cut_logs,
    log_lock_path,
    read_exposures,
    read_to_cut,
)
from cfgcore.experiments.metrics import MetricsStore, read_metrics
from cfgcore.runtime.atomicio import FileLock
from tests.fuzz import examples

NOW = datetime.now(timezone.utc)
VARIANTS = ("control", "b")


def _test(name: str = "t") -> ABTestConfiguration:
    return ABTestConfiguration(
        name, "", NOW - timedelta(days=1), NOW + timedelta(days=9),
        {"control": 50.0, "b": 50.0}, {"control": {"x": 1}, "b": {"x": 2}}, ["buy"],
    )  # fmt: skip


def _manager(state: Path, impl: str) -> DynamicConfigurationManager:
    return DynamicConfigurationManager(
        state_dir=state, engine=engine_class(impl)(), record_usage=False
    )


def _files(state: Path) -> dict[str, str]:
    manager = DynamicConfigurationManager(state_dir=state, record_usage=False)
    try:
        return state_paths(manager.flags_file)
    finally:
        manager.close()


def _counts(store: MetricsStore, test: str = "t") -> dict[str, tuple]:
    """What a report shows per variant: exposed users, users, and the metric's
    conversions, users with an event, events and mean."""
    out = {}
    for v in VARIANTS:
        s = store.summary(test, v, "buy")
        out[v] = (
            store.exposed(test, v), store.users(test, v), store.conversions(test, v, "buy"),
            s.n, store.event_count(test, v, "buy"), round(s.mean, 12) if s.n else None,
        )  # fmt: skip
    return out


def _no_event_without_exposure(store: MetricsStore, test: str = "t") -> None:
    # Every event of these tests is a record_metric's, which exposes its user first: a
    # variant's users (exposed, or with an event that counts) are its exposed users
    # exactly when every counted event's user has its exposure counted.
    for v in VARIANTS:
        assert store.users(test, v) == store.exposed(test, v), v


def _truncated(files: dict[str, str], read_to: dict, into: Path) -> MetricsStore:
    """The logs as the cut had them (no rotation here: each log one file), read again
    quiescently."""
    into.mkdir()
    out = {}
    for kind in ("exposures", "metrics"):
        name, size = read_to[files[kind]]
        assert name == files[kind]
        copy = into / os.path.basename(name)
        with open(name, "rb") as fh:
            copy.write_bytes(fh.read(size))
        out[kind] = copy
    return MetricsStore.load(out["metrics"], out["exposures"])


def test_events_written_while_the_report_reads_are_left_out_with_their_exposures(tmp_path, impl):
    """Deterministic: the report's progress callback (after the exposures, before the
    metric events) has users exposed and converting through the manager, written to
    both logs. Before, their events were counted and their exposures not (20 users
    of each variant, all converted, none exposed)."""
    state = tmp_path / "state"
    manager = _manager(state, impl)
    try:
        assert manager.create_ab_test(_test())
        for i in range(40):
            manager.record_metric("t", "buy", float(i % 3 == 0), user_id=f"early-{i}")
        manager.exposures.flush()
        manager.metrics.flush()
        files = state_paths(manager.flags_file)
        quiet = _counts(MetricsStore.load(files["metrics"], files["exposures"]))
        calls = []

        def meanwhile(seen: int) -> None:
            if not calls:
                for i in range(80):
                    manager.record_metric("t", "buy", user_id=f"late-{i}")
                manager.exposures.flush()
                manager.metrics.flush()
            calls.append(seen)

        store = MetricsStore.load(
            files["metrics"], files["exposures"], progress=meanwhile,
            journal=files["ingest_journal"],
        )  # fmt: skip
    finally:
        manager.close()
    assert calls  # the callback ran between the two logs' reads
    _no_event_without_exposure(store)
    assert _counts(store) == quiet
    assert _counts(_truncated(files, store.read_to, tmp_path / "cut")) == quiet
    # ... and the late users are in the logs, for the next report
    later = MetricsStore.load(files["metrics"], files["exposures"])
    assert sum(later.exposed("t", v) for v in VARIANTS) == 120
    _no_event_without_exposure(later)


WRITER = textwrap.dedent(
    """
    import importlib, os, sys
    from cfgcore.dynamic_config import DynamicConfigurationManager
    from cfgcore.engine import engine_class

    state, impl, stop, started = sys.argv[1:5]
    engine = engine_class(importlib.import_module(impl))()
    manager = DynamicConfigurationManager(state_dir=state, engine=engine, record_usage=False)
    i = 0
    while not os.path.exists(stop):
        manager.record_metric("t", "buy", float(i % 2), user_id=f"proc-{i}")
        i += 1
        if i % 200 == 0:
            # (a bounded backlog: nothing dropped, every exposure written)
            assert manager.metrics.flush(30)
            if i == 200:
                open(started, "w").close()
    manager.close()
    assert manager.exposures.dropped == manager.metrics.dropped == 0
    """
)


def _wait_for(condition, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


def test_a_report_while_threads_and_a_process_write_is_one_cut(tmp_path, impl):
    """Two threads of this process and another process record metrics (each
    ``record_metric`` exposes its user first) while the report reads a metric log
    long enough to take a while: every event counted has its user's exposure counted,
    and the counts are those of the logs truncated where the report cut them."""
    state = tmp_path / "state"
    manager = _manager(state, impl)
    files = state_paths(manager.flags_file)
    stop, started = tmp_path / "stop", tmp_path / "started"
    proc = None
    threads: list[threading.Thread] = []
    try:
        assert manager.create_ab_test(_test())
        # Another test's events make the metric log long (the report reads it for a
        # while); written as the metric writer writes them, straight to the log.
        sink = JsonLinesSink(files["metrics"])
        other = [
            {"test": "other", "variant": "b", "user": f"o{i}", "metric": "m", "value": 1.0,
             "ts": 1.0}
            for i in range(120_000)
        ]  # fmt: skip
        for k in range(0, len(other), 10_000):
            sink.write(other[k : k + 10_000])
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(state), impl.__name__, str(stop), str(started)],
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        )
        stopping = threading.Event()
        written = [0, 0]

        def write(k: int) -> None:
            i = 0
            while not stopping.is_set():
                manager.record_metric("t", "buy", float(i % 3 == 0), user_id=f"t{k}-{i}")
                i += 1
                written[k] = i
                if i % 200 == 0:
                    # (a bounded backlog: nothing dropped, every exposure written)
                    manager.metrics.flush(30)

        threads = [threading.Thread(target=write, args=(k,)) for k in range(2)]
        for t in threads:
            t.start()
        _wait_for(lambda: started.exists() and min(written) > 200, "the writers")
        store = MetricsStore.load(
            files["metrics"], files["exposures"], journal=files["ingest_journal"]
        )
        # The writers went on after the cut (the report read logs being written).
        before = {v: store.exposed("t", v) for v in VARIANTS}
        _wait_for(
            lambda: (
                os.path.getsize(files["metrics"]) > store.read_to[files["metrics"]][1]
                and os.path.getsize(files["exposures"]) > store.read_to[files["exposures"]][1]
            ),
            "appends after the cut",
        )
    finally:
        stop.touch()
        for t in threads:
            stopping.set()
            t.join()
        if proc is not None:
            assert proc.wait(60) == 0
        manager.close()
    assert sum(before.values()) > 0
    assert manager.exposures.dropped == manager.metrics.dropped == 0
    _no_event_without_exposure(store)
    assert _counts(store) == _counts(_truncated(files, store.read_to, tmp_path / "cut"))
    # every writer's users are among those counted
    users = {e.user.split("-")[0] for e in read_exposures(files["exposures"])}
    assert users == {"t0", "t1", "proc"}
    # and the whole logs, read once the writers stopped, are one cut as well
    final = MetricsStore.load(files["metrics"], files["exposures"])
    _no_event_without_exposure(final)
    assert sum(final.exposed("t", v) for v in VARIANTS) > sum(before.values())


def _raw(path: str) -> list[dict]:
    try:
        with open(path, "rb") as fh:
            return [msgspec.json.decode(line) for line in fh if line.strip()]
    except FileNotFoundError:
        return []


def test_a_metric_event_reaches_its_log_only_after_its_users_exposure(tmp_path, impl):
    """The exposure and metric writers are two threads: with the exposure log's lock
    held (another process appending, a slow volume), the metric event was written at
    once, and a report cut then had it without its exposure. It now waits for the
    exposure (at most ``EXPOSURES_FIRST_WAIT``)."""
    state = tmp_path / "state"
    manager = _manager(state, impl)
    try:
        assert manager.create_ab_test(_test())
        manager.exposures.flush()
        files = state_paths(manager.flags_file)
        lock = FileLock(log_lock_path(files["exposures"]))
        lock.acquire()
        try:
            assert manager.record_metric("t", "buy", user_id="u1")
            # Whether or not it is written by then, the logs never hold the event
            # without the exposure.
            manager.metrics.flush(timeout=0.5)
            # (read as they are: the readers would wait for the lock held here)
            exposed = {r["user"] for r in _raw(files["exposures"])}
            recorded = {r["user"] for r in _raw(files["metrics"])}
            assert recorded <= exposed
        finally:
            lock.release()
        assert manager.exposures.flush()
        assert manager.metrics.flush()
        assert {m["user"] for m in read_metrics(files["metrics"])} == {"u1"}
        assert {e.user for e in read_exposures(files["exposures"])} == {"u1"}
    finally:
        manager.close()


def test_a_hung_exposure_sink_holds_metric_events_back_once(tmp_path, impl, monkeypatch, caplog):
    """An exposure sink that hangs (an application's callable) delays the metric
    writer by ``EXPOSURES_FIRST_WAIT`` once, said in a warning; later batches do not
    wait for it again while it stays stuck."""
    monkeypatch.setattr(metrics_module, "EXPOSURES_FIRST_WAIT", 0.2)
    release = threading.Event()
    manager = DynamicConfigurationManager(
        state_dir=tmp_path / "state", engine=engine_class(impl)(), record_usage=False,
        exposure_sinks=[lambda batch: release.wait(30)],
    )  # fmt: skip
    try:
        assert manager.create_ab_test(_test())
        caplog.set_level(logging.WARNING, "cfgcore.experiments")
        files = state_paths(manager.flags_file)
        for i in range(5):
            assert manager.record_metric("t", "buy", user_id=f"u{i}")
            assert manager.metrics.flush(timeout=10)
        assert {m["user"] for m in read_metrics(files["metrics"])} == {f"u{i}" for i in range(5)}
        said = [r for r in caplog.records if "exposures not written within" in r.getMessage()]
        assert len(said) == 1
    finally:
        release.set()
        manager.close()


def _line(**kw) -> bytes:
    return msgspec.json.encode(kw) + b"\n"


def test_an_unfinished_ingest_found_at_the_cut_is_taken_back_not_read(tmp_path):
    """An ingest that crashed after the report's own recovery (its journal and part
    of its events in the logs, found at the cut): taken back before the cut is
    made, so the report holds none of it."""
    exposures, metrics = tmp_path / "flags.exposures.jsonl", tmp_path / "flags.metrics.jsonl"
    journal = tmp_path / "flags.ingest-journal.json"
    kept_e = _line(test="t", variant="b", user="u1", ts=1.0)
    kept_m = _line(test="t", variant="b", user="u1", metric="buy", value=1.0, ts=2.0)
    exposures.write_bytes(kept_e)
    metrics.write_bytes(kept_m)
    # What a crash between the two appends leaves: the plan, the exposures written.
    dead_e = _line(test="t", variant="control", user="x", ts=3.0)
    dead_m = _line(test="t", variant="control", user="x", metric="buy", value=1.0, ts=3.0)
    plan = [
        _Append(str(exposures), len(kept_e), dead_e.decode()),
        _Append(str(metrics), len(kept_m), dead_m.decode()),
    ]
    journal.write_bytes(msgspec.json.encode(_Journal(plan)))
    with open(exposures, "ab") as fh:
        fh.write(dead_e)
    store = MetricsStore.load(metrics, exposures, journal=journal)
    assert store.exposures("t") == {"b": 1}
    assert store.users("t", "control") == 0
    assert not journal.exists()
    assert exposures.read_bytes() == kept_e


def test_a_cut_reads_rotated_files_whole_and_nothing_appended_after_it(tmp_path):
    """The cut opens every file of the log: rotations after it (which rename the
    current file and drop the oldest backups) change nothing of what is read."""
    path = tmp_path / "flags.exposures.jsonl"
    sink = JsonLinesSink(path, max_bytes=300, backups=3)

    def record(i: int) -> dict:
        return {"test": "t", "variant": "b", "user": f"u{i}", "ts": float(i)}

    for i in range(12):
        sink.write([record(i)])
    at_cut = [e.user for e in read_exposures(path)]
    assert len(JsonLinesSink(path, backups=3).files()) > 1  # rotated already
    tail = LogTail(path, ExposureRecord)
    try:
        cut_logs([tail])
        for i in range(12, 60):  # rotates many times: the cut's files are all dropped
            sink.write([record(i)])
        got = [r.user for r in read_to_cut(tail)]
    finally:
        tail.close()
    assert got == at_cut == [f"u{i}" for i in range(12)]
    assert "u11" not in {e.user for e in read_exposures(path)}


@pytest.mark.parametrize("rotating", [False, True])
def test_a_report_of_logs_nobody_writes_is_what_it_was(tmp_path, rotating):
    """On logs nobody writes, the cut is their ends: the report is the one reading
    each log to its end gives, unusable lines named the same way (a line cut short at
    the end of the metric log included)."""
    from cfgcore.experiments.analysis import analyze
    from cfgcore.experiments.exposures import Exposure, MetricRecord, SkippedLines, read_log

    e_path, m_path = tmp_path / "flags.exposures.jsonl", tmp_path / "flags.metrics.jsonl"
    size = 400 if rotating else 10**9
    e_sink, m_sink = JsonLinesSink(e_path, max_bytes=size), JsonLinesSink(m_path, max_bytes=size)
    for i in range(30):
        e_sink.write([{"test": "t", "variant": VARIANTS[i % 2], "user": f"u{i}", "ts": 1.0}])
        if i % 4:
            m_sink.write([{"test": "t", "variant": VARIANTS[i % 2], "user": f"u{i}",
                           "metric": "buy", "value": float(i % 3 == 0), "ts": 2.0}])  # fmt: skip
    with open(m_path, "ab") as fh:
        fh.write(b'{"oops": 1}\n{"test": "t", "vari')
    store = MetricsStore.load(m_path, e_path)
    # The reading before the cut: each log to its end, one after the other.
    old = MetricsStore(None)
    skipped = old.skipped = SkippedLines()
    old.write([Exposure(r.test, r.variant, r.user, r.ts, r.run)
               for r in read_log(e_path, ExposureRecord, skipped)])  # fmt: skip
    old._apply([(r.test, r.variant, r.metric, r.value, r.user, r.ts or 0.0, r.exposed_only)
                for r in read_log(m_path, MetricRecord, skipped)])  # fmt: skip
    meta = {"traffic_split": {"control": 50.0, "b": 50.0}, "success_metrics": ["buy"]}
    text = analyze("t", meta, store).to_text()
    assert text == analyze("t", meta, old).to_text()
    assert "2 unusable log line(s)" in text and "cut short" in text
    assert store.read_to[str(m_path)] == (str(m_path), os.path.getsize(m_path))


@settings(max_examples=examples(60), deadline=None)
@given(
    steps=st.lists(
        st.one_of(
            st.tuples(st.just("write"), st.integers(1, 8)),
            st.tuples(st.just("cut"), st.just(0)),
            st.tuples(st.just("read"), st.integers(1, 400)),
        ),
        max_size=30,
    )
)
def test_reads_stop_at_the_last_cut_whatever_is_written_and_rotated(tmp_path_factory, steps):
    """Writes (rotating the log), cuts and reads in small steps, in any order: what is
    read is the log's records in order, none twice, and after a cut never one written
    after the last cut; a read that is not behind ends at it."""
    path = tmp_path_factory.mktemp("log") / "x.jsonl"
    sink = JsonLinesSink(path, max_bytes=250, backups=1000)
    tail = LogTail(path, ExposureRecord)
    written = cut_at = 0
    cut = False
    got: list[int] = []
    try:
        for op, n in steps:
            if op == "write":
                for _ in range(n):
                    sink.write([{"test": "t", "variant": "v", "user": f"u{written}", "ts": 1.0}])
                    written += 1
            elif op == "cut":
                cut_logs([tail])
                cut, cut_at = True, written
            else:
                tail.read(lambda rs: got.extend(int(r.user[1:]) for r in rs), limit=n)
                # (before any cut a read follows the log to its end, as it always did)
                end = cut_at if cut else written
                assert got == list(range(len(got))) and len(got) <= end
                if not tail.behind:
                    assert len(got) == end
        cut_logs([tail])
        got.extend(int(r.user[1:]) for r in read_to_cut(tail))
    finally:
        tail.close()
    assert got == list(range(written))
