"""Guardrails, third audit: the first check in a process has the whole shared logs to
read (up to 6 files of 50 MB each). The background check now reads them in bounded
steps (``LogTail.read(limit=)``, ``SharedLogs.catch_up``), pausing between steps, and
judges only once caught up, on exactly the records one read would have handed over:
the per-user summaries are identical. ``close()`` ends a catch-up in progress. Real
rotating logs (JsonLinesSink), real managers and their background check thread."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.dynamic_config import DynamicConfigurationManager
from cfgcore.engine import engine_class
from cfgcore.experiments import guardrails as guardrails_mod
from cfgcore.experiments.exposures import ExposureRecord, JsonLinesSink, LogTail
from cfgcore.experiments.guardrails import SharedLogs
from tests.fuzz import examples
from tests.test_experiments import NOW, Clock, seed_test
from tests.waiting import wait_for


def _exposure(i: int) -> dict:
    return {"test": "t", "variant": "v", "user": f"u{i}", "ts": float(i)}


@settings(max_examples=examples(60), deadline=None)
@given(
    ops=st.lists(st.one_of(st.integers(1, 6), st.just(0)), max_size=40),
    chunk=st.integers(1, 200),
    limit=st.integers(1, 400),
)
def test_a_tail_read_in_limited_steps_hands_over_every_record_once_in_order(
    tmp_path_factory, ops, chunk, limit
):
    """Writes (k > 0: a batch of k records; the file rotates every few batches) and
    reads limited to ``limit`` bytes, ``chunk`` bytes at a time: every record once, in
    order, and a tail read until it is not ``behind`` has read everything written."""
    path = tmp_path_factory.mktemp("log") / "x.jsonl"
    sink = JsonLinesSink(path, max_bytes=300, backups=100)
    tail = LogTail(path, ExposureRecord)
    tail.chunk = chunk
    got: list[str] = []
    written = 0
    steps = 0
    try:
        for k in ops:
            if k:
                sink.write([_exposure(i) for i in range(written, written + k)])
                written += k
            else:
                tail.read(lambda rs: got.extend(r.user for r in rs), limit=limit)
        while True:
            tail.read(lambda rs: got.extend(r.user for r in rs), limit=limit)
            steps += 1
            if not tail.behind:
                break
            assert steps < 10_000
    finally:
        tail.close()
    assert got == [f"u{i}" for i in range(written)]
    assert tail.gaps == 0 and tail.skipped.count == 0


def _fill(state, n_users: int, *, seed: int = 7) -> None:
    """Metric events and exposures of two tests, as other processes appended them,
    over rotated files of both logs."""
    rnd = random.Random(seed)
    metrics = JsonLinesSink(state / "flags.metrics.jsonl", max_bytes=40_000, backups=50)
    exposures = JsonLinesSink(state / "flags.exposures.jsonl", max_bytes=20_000, backups=50)
    for start in range(0, n_users, 50):
        ev, ex = [], []
        for i in range(start, min(start + 50, n_users)):
            test = ("t1", "t2")[i % 2]
            variant = rnd.choice(["control", "variant_a"])
            ex.append({"test": test, "variant": variant, "user": f"user-{i}", "ts": 1.0})
            for _ in range(rnd.randint(0, 3)):
                value = rnd.choice([0.0, 1.0, rnd.uniform(-5, 5)])
                metric = rnd.choice(["m", "errors"])
                ev.append({"test": test, "variant": variant, "user": f"user-{i}",
                           "metric": metric, "value": value, "ts": 1.0})  # fmt: skip
        exposures.write(ex)
        metrics.write(ev)


def _facts(store, tests=("t1", "t2")):
    out = {}
    for test in tests:
        for variant in ("control", "variant_a"):
            out[(test, variant)] = (
                store.exposed(test, variant),
                store.users(test, variant),
                {m: (store.summary(test, variant, m), store.conversions(test, variant, m),
                     store.event_count(test, variant, m)) for m in store.metrics(test)},
            )  # fmt: skip
    return out


def test_a_catch_up_in_steps_builds_the_same_per_user_state_as_one_read(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    _fill(state, 3000)
    paths = (str(state / "flags.metrics.jsonl"), str(state / "flags.exposures.jsonl"))
    tests = frozenset({"t1", "t2"})
    whole = SharedLogs(*paths)
    stepped = SharedLogs(*paths)
    try:
        expected = _facts(whole.refresh(tests))
        stepped.metrics.chunk = stepped.exposures.chunk = 4096
        steps = 1
        while not stepped.catch_up(tests, 10_000):
            steps += 1
        assert steps > 10  # the logs (about 250 kB) were read in steps of about 10 kB
        assert _facts(stepped.store) == expected
        assert stepped.refresh(tests) is stepped.store  # caught up: nothing left to read
        assert _facts(stepped.store) == expected
    finally:
        whole.close()
        stepped.close()


def _manager(state, impl):
    return DynamicConfigurationManager(
        state_dir=state, engine=engine_class(impl)(), clock=Clock(NOW),
        guardrail_check_every=10**9,  # checks started by hand below
    )  # fmt: skip


def test_a_background_check_catches_up_in_steps_then_rolls_a_harmful_test_back(
    tmp_path, impl, monkeypatch
):
    """Other processes' events fill the shared logs; this process's first background
    check reads them in small steps and then rolls the harmful variant back, as a
    check reading them at once does."""
    test = "recommendation_algorithm_v2"
    m = _manager(tmp_path, impl)
    try:
        assert m.create_ab_test(
            seed_test(test, guardrail_metrics={"playback_errors": "lower_is_better"})
        )
        other = _manager(tmp_path, impl)  # another process, gone before the check
        for i in range(900):
            user = f"user-{i}"
            variant = other.get_ab_test_variant(test, {"user_id": user})
            error = (i % 5 < 2) if variant == "variant_a" else (i % 20 == 0)
            assert other.record_metric(test, "playback_errors", float(error), user_id=user)
        other.close()
        steps = []
        real = SharedLogs.catch_up

        def counting(self, tests, limit):
            steps.append(limit)
            return real(self, tests, limit)

        monkeypatch.setattr(SharedLogs, "catch_up", counting)
        monkeypatch.setattr(guardrails_mod, "CATCH_UP_STEP", 2048)
        monkeypatch.setattr(LogTail, "chunk", 1024)
        m.guardrails.check_soon(test)
        assert wait_for(lambda: m.list_ab_tests()[test]["status"] == "stopped")
        assert len(steps) > 5 and set(steps) == {2048}
        assert "playback_errors worse in variant_a" in m.list_ab_tests()[test]["stopped_reason"]
    finally:
        m.close()


def test_a_closed_manager_starts_no_catch_up_and_opens_no_log(tmp_path, impl):
    test = "recommendation_algorithm_v2"
    m = _manager(tmp_path, impl)
    assert m.create_ab_test(
        seed_test(test, guardrail_metrics={"playback_errors": "lower_is_better"})
    )
    assert m.record_metric(test, "playback_errors", 1.0, user_id="u1")
    m.close()
    assert m.guardrails.catch_up() is False
    assert m.guardrails._shared is None


def test_a_closed_view_reopens_no_file(tmp_path):
    """A check that reaches the shared logs after close() (a thread that began before
    it) gets what was read and opens nothing: close()'s finalizer has run, so a file
    opened then would be left to the garbage collector (a ResourceWarning)."""
    state = tmp_path / "state"
    state.mkdir()
    _fill(state, 300)
    paths = (str(state / "flags.metrics.jsonl"), str(state / "flags.exposures.jsonl"))
    tests = frozenset({"t1", "t2"})
    logs = SharedLogs(*paths)
    store = logs.refresh(tests)
    read = _facts(store)
    assert logs.metrics._fh is not None  # following the logs
    logs.close()
    _fill(state, 30)  # more appended after the close
    for tail in (logs.metrics, logs.exposures):
        assert tail._fh is None and tail._ahead == []
    assert logs.refresh(tests) is store and _facts(store) == read
    assert logs.refresh(tests | {"t3"}) is store  # a new test after close: nothing read
    assert not logs.catch_up(tests, 10_000)
    for tail in (logs.metrics, logs.exposures):
        assert tail._fh is None and tail._ahead == []
