"""Guardrails check every process's data, not each process its own slice.

Each process used to analyse only the metric events and exposures it recorded itself,
so N processes ran N always-valid tests on N slices, and a harmless test was rolled
back by one of them with probability up to about N x alpha. The check now reads the
shared logs incrementally (``LogTail``), so every process looks at prefixes of one
sequence of records. These tests check the tail against real rotating logs written
concurrently, and that a check sees the other processes' events.
"""

from __future__ import annotations

import json
import threading

from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.dynamic_config import DynamicConfigurationManager
from cfgcore.engine import engine_class
from cfgcore.experiments.exposures import ExposureRecord, JsonLinesSink, LogTail
from tests.fuzz import examples
from tests.test_experiments import NOW, Clock, seed_test


def _record(i: int, writer: str = "w") -> dict:
    return {"test": "t", "variant": writer, "user": f"u{i}", "ts": float(i)}


@settings(max_examples=examples(60), deadline=None)
@given(st.lists(st.one_of(st.integers(1, 6), st.just(0)), max_size=40))
def test_the_tail_hands_over_every_record_once_in_order_across_rotations(tmp_path_factory, ops):
    # ops: k > 0 writes a batch of k records, 0 reads. The file rotates every few
    # batches, often several times between two reads.
    path = tmp_path_factory.mktemp("log") / "x.jsonl"
    sink = JsonLinesSink(path, max_bytes=300, backups=100)
    tail = LogTail(path, ExposureRecord)
    got: list[str] = []
    written = 0
    try:
        for k in ops:
            if k:
                sink.write([_record(i) for i in range(written, written + k)])
                written += k
            else:
                tail.read(lambda rs: got.extend(r.user for r in rs))
        tail.read(lambda rs: got.extend(r.user for r in rs))
    finally:
        tail.close()
    assert got == [f"u{i}" for i in range(written)]
    assert tail.gaps == 0 and tail.skipped.count == 0


def test_the_tail_follows_writers_rotating_under_it(tmp_path):
    path = tmp_path / "x.jsonl"
    per_writer, writers = 1500, ("a", "b")
    tail = LogTail(path, ExposureRecord)
    got: list[tuple[str, int]] = []

    def take(rs):
        got.extend((r.variant, int(r.ts)) for r in rs)

    def write(name):
        sink = JsonLinesSink(path, max_bytes=4096, backups=10_000)  # its own, as a process
        for i in range(0, per_writer, 3):
            sink.write([_record(j, name) for j in range(i, i + 3)])

    threads = [threading.Thread(target=write, args=(w,)) for w in writers]
    try:
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):
            tail.read(take)
        for t in threads:
            t.join()
        tail.read(take)
    finally:
        tail.close()
    for w in writers:  # each writer's records, every one once, in its order
        assert [i for v, i in got if v == w] == list(range(per_writer))
    assert len(got) == per_writer * len(writers) and tail.gaps == 0


def test_a_file_rotated_out_of_the_backups_is_counted_as_a_gap(tmp_path):
    path = tmp_path / "x.jsonl"
    sink = JsonLinesSink(path, max_bytes=200, backups=1)
    tail = LogTail(path, ExposureRecord)
    got: list[str] = []
    try:
        sink.write([_record(0)])
        tail.read(lambda rs: got.extend(r.user for r in rs))
        for i in range(1, 12):  # many rotations: the followed file and more deleted
            sink.write([_record(i)])
        tail.read(lambda rs: got.extend(r.user for r in rs))
    finally:
        tail.close()
    assert tail.gaps == 1
    assert got[0] == "u0" and got[-1] == "u11" and got == sorted(got, key=lambda u: int(u[1:]))


def test_unusable_lines_of_the_tail_are_counted_and_named(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_bytes(json.dumps(_record(0)).encode() + b"\nnot json\n" + b'{"test": "t"')
    tail = LogTail(path, ExposureRecord)
    got: list[str] = []
    try:
        tail.read(lambda rs: got.extend(r.user for r in rs))
        assert got == ["u0"] and tail.skipped.count == 1
        assert tail.skipped.first[0].startswith(f"{path}:2: JSON is malformed")
        with open(path, "ab") as fh:  # the last line was still being written
            fh.write(b', "variant": "w", "user": "u1", "ts": 1}\n')
        tail.read(lambda rs: got.extend(r.user for r in rs))
    finally:
        tail.close()
    assert got == ["u0", "u1"] and tail.skipped.count == 1


def _manager(state, impl):
    return DynamicConfigurationManager(
        state_dir=state, engine=engine_class(impl)(), clock=Clock(NOW),
        guardrail_check_every=10**9,  # checked by hand below
    )  # fmt: skip


def test_a_check_sees_every_process_events(tmp_path, impl):
    """Two managers on one state directory, as two processes: each records half the
    users, too few for a check on its own (100 users per variant at least), while
    together a variant with 40 % playback errors against 5 % is clear."""
    a, b = _manager(tmp_path, impl), _manager(tmp_path, impl)
    test = "recommendation_algorithm_v2"
    try:
        assert a.create_ab_test(
            seed_test(test, guardrail_metrics={"playback_errors": "lower_is_better"})
        )
        b.reload()  # as another process's watcher would
        assert test in b.list_ab_tests()
        for i in range(600):
            m, user = (a, b)[i % 2], f"user-{i}"
            variant = m.get_ab_test_variant(test, {"user_id": user})
            error = (i % 5 < 2) if variant == "variant_a" else (i % 20 == 0)
            for _ in range(3):  # three events per user: one user, not three
                assert m.record_metric(test, "playback_errors", float(error), user_id=user)
        for m in (a, b):  # each process alone: below the floor in variant_a
            m.metrics.flush()
            assert m.metrics.users(test, "variant_a") < 100
        found = a.check_guardrails(test)
        assert len(found) == 1 and "playback_errors worse in variant_a" in found[0]
        assert a.list_ab_tests()[test]["status"] == "stopped"
    finally:
        a.close()
        b.close()


def test_closing_the_guardrails_closes_the_logs_and_a_later_check_reopens_them(tmp_path, impl):
    m = _manager(tmp_path, impl)
    test = "recommendation_algorithm_v2"
    try:
        assert m.create_ab_test(
            seed_test(test, guardrail_metrics={"playback_errors": "lower_is_better"})
        )
        m.record_metric(test, "playback_errors", 0.0, user_id="u1")
        assert m.check_guardrails(test) == []
        shared = m.guardrails._shared
        assert shared is not None and shared.metrics._fh is not None
        m.guardrails.close()
        assert shared.metrics._fh is None and m.guardrails._shared is None
        m.record_metric(test, "playback_errors", 1.0, user_id="u2")
        assert m.check_guardrails(test) == []
        store = m.guardrails.shared_store()  # both events, the one before the close too
        variants = ("control", "variant_a", "variant_b")
        assert sum(store.event_count(test, v, "playback_errors") for v in variants) == 2
    finally:
        m.guardrails.close()
        m.close()


def test_closing_the_manager_closes_the_guardrails_logs(tmp_path, impl):
    """manager.close() lets go of the shared logs the guardrails tail, instead of
    leaving their files open until the object is collected."""
    m = _manager(tmp_path, impl)
    test = "recommendation_algorithm_v2"
    assert m.create_ab_test(
        seed_test(test, guardrail_metrics={"playback_errors": "lower_is_better"})
    )
    m.record_metric(test, "playback_errors", 0.0, user_id="u1")
    assert m.check_guardrails(test) == []
    shared = m.guardrails._shared
    assert shared is not None and shared.metrics._fh is not None
    m.close()
    assert shared.metrics._fh is None and m.guardrails._shared is None


def test_analyze_sees_every_process_events(tmp_path, impl):
    """manager.analyze() reported this process's slice only (half the users when two
    processes share a state directory), unlike the CLI report and the guardrails."""
    a, b = _manager(tmp_path, impl), _manager(tmp_path, impl)
    test = "recommendation_algorithm_v2"
    try:
        assert a.create_ab_test(seed_test(test))
        b.reload()
        for i in range(200):
            m, user = (a, b)[i % 2], f"user-{i}"
            m.get_ab_test_variant(test, {"user_id": user})
            assert m.record_metric(test, "click_through_rate", 1.0, user_id=user)
        b.metrics.flush()
        b.exposures.flush()
        report = a.analyze(test)
        assert sum(report.exposures.values()) == 200
        rows = [r for r in report.results if r.metric == "click_through_rate"]
        assert sum(r.n for r in rows) == 200
        # and once more, incrementally: the next users of both processes are seen too
        for i in range(200, 260):
            m, user = (a, b)[i % 2], f"user-{i}"
            m.get_ab_test_variant(test, {"user_id": user})
            m.record_metric(test, "click_through_rate", 1.0, user_id=user)
        b.metrics.flush()
        b.exposures.flush()
        assert sum(a.analyze(test).exposures.values()) == 260
    finally:
        a.close()
        b.close()
