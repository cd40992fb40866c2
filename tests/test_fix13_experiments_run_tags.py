"""Thirteenth round: a test deleted and created again, and a host whose clock runs ahead
still serving the earlier run. Records of a test are attributed to its runs by time: a
record stamped up to the new run's ``since`` is the earlier run's. A host that has not
taken the document with the new run yet (a Redis follower behind, a file not reloaded)
keeps logging the earlier run's exposures and metric events, and with a clock ahead of
the host that deleted the test (or merely after the re-creation) it stamps them after
the new ``since``: the new run's reports counted them, and its guardrail judged the
new run on the earlier one's harm and stopped it. Now each record carries the run it
was logged for (``run``: the test's ``since`` as the document served held it, null for
a test never created again), and every reader attributes a tagged record by that tag;
lines without one (older logs) are still judged by their time. Real managers over the
same files, one with its clock ahead (a clock parameter, and ``time.time`` patched as
tests/test_fix12_experiments_recreated_clock.py does), the real CLI."""

from __future__ import annotations

import contextlib
import json
import time
from datetime import datetime, timedelta, timezone

import msgspec

from cfgcore.dynamic_config import ABTestConfiguration, DynamicConfigurationManager
from cfgcore.engine import engine_class
from cfgcore.experiments.dynamic import state_paths
from cfgcore.experiments.exposures import ExposureRecord, MetricRecord, read_log
from tests.conftest import run_cli

NOW = datetime.now(timezone.utc)
AHEAD = 600.0  # the lagging host's clock, ahead of the one that re-creates the test
_REAL_TIME = time.time
GUARD = {"err": "lower_is_better"}


def _test(**kw):
    split = {"control": 50.0, "b": 50.0}
    return ABTestConfiguration(
        "t", "", NOW - timedelta(days=1), NOW + timedelta(days=9), split,
        {k: {"v": k} for k in split}, ["buy"], guardrail_metrics=GUARD, **kw,
    )  # fmt: skip


def _manager(directory, impl, **kw):
    # An engine of its own: a private flag set over the same file, which it takes again
    # only when reloaded (another host, for what the flag document says).
    return DynamicConfigurationManager(
        state_dir=directory, engine=engine_class(impl)(), record_usage=False,
        guardrail_check_every=10**9, guardrail_min_samples=20, **kw,
    )  # fmt: skip


@contextlib.contextmanager
def _clock_ahead():
    """This host's ``time.time`` ``AHEAD`` seconds ahead while the block runs."""
    time.time = lambda: _REAL_TIME() + AHEAD
    try:
        yield
    finally:
        time.time = _REAL_TIME


def _serve(m, users, *, harmful):
    """Each user is served and records ``err`` (1 in variant b when ``harmful``)."""
    got = {}
    for u in users:
        v = m.get_ab_test_variant("t", {"user_id": u})
        assert v in ("control", "b")
        assert m.record_metric("t", "err", 1.0 if harmful and v == "b" else 0.0, user_id=u)
        got[u] = v
    return got


def _flush(*managers):
    for m in managers:
        assert m.exposures.flush(10) and m.metrics.flush(10)


def _lagging_host_scenario(tmp_path, impl):
    """Host B creates the test; host A (clock ahead, reading the same flag file) serves
    its first run, harmful in b; B deletes it and creates it again (harmless now) while
    A, not reloaded yet, keeps serving the first run. Returns (A, B, new-run users)."""
    b = _manager(tmp_path, impl)
    assert b.create_ab_test(_test())
    a = _manager(tmp_path, impl, clock=lambda: _REAL_TIME() + AHEAD)
    with _clock_ahead():
        _serve(a, [f"early-{i}" for i in range(150)], harmful=True)
    assert b.delete_ab_test("t") and b.create_ab_test(_test())
    since = b.list_ab_tests()["t"]["since"]
    assert "since" not in a.list_ab_tests()["t"]  # A still serves the first run
    with _clock_ahead():  # after the re-creation, in A's document still the first run
        _serve(a, [f"late-{i}" for i in range(150)], harmful=True)
    new = _serve(b, [f"new-{i}" for i in range(150)], harmful=False)
    _flush(a, b)
    # The first run's records A wrote are stamped after the new run's since: the time
    # rule alone counted them in the new run.
    paths = state_paths(f"{tmp_path}/flags.json")
    late = [r for r in read_log(paths["exposures"], ExposureRecord) if r.user.startswith("late")]
    assert len(late) == 150 and all(r.ts > since for r in late)
    return a, b, new


def test_a_lagging_hosts_earlier_run_records_stay_out_of_the_new_run(tmp_path, impl):
    a, b = None, None
    try:
        a, b, new = _lagging_host_scenario(tmp_path, impl)
        # The new run is harmless: its guardrail judges its own records, not the
        # earlier run's harm that A kept logging (which stopped the new run).
        assert b.check_guardrails("t") == []
        assert b.list_ab_tests()["t"].get("status", "active") == "active"
        report = b.analyze("t")
        want = {v: sum(x == v for x in new.values()) for v in ("control", "b")}
        assert report.exposures == want
        rows = report.for_metric("err")
        assert sum(r.n for r in rows) == 150 and all(r.successes == 0 for r in rows)
        # A, judging the run it serves, still sees the earlier run's harm (its records,
        # before and after the re-creation, and none of the new run's).
        first = a.analyze("t")
        assert sum(first.exposures.values()) == 300
        # A takes the new document: its records are the new run's from then on, and
        # count there although its clock is ahead.
        assert a.reload()
        assert a.list_ab_tests()["t"]["since"] == b.list_ab_tests()["t"]["since"]
        with _clock_ahead():
            more = _serve(a, [f"moved-{i}" for i in range(40)], harmful=False)
        _flush(a, b)
        report = b.analyze("t")
        assert sum(report.exposures.values()) == 190
        assert set(more) <= {f"moved-{i}" for i in range(40)}
        assert b.check_guardrails("t") == []
    finally:
        for m in (a, b):
            if m is not None:
                m.close()


def test_the_cli_report_attributes_records_by_their_run(tmp_path, impl, capsys):
    a, b = None, None
    try:
        a, b, new = _lagging_host_scenario(tmp_path, impl)
    finally:
        for m in (a, b):
            if m is not None:
                m.close()
    code, out, err = run_cli(
        capsys, "experiment", "report", "t", "--state-dir", str(tmp_path), "--json"
    )
    assert code == 0, err
    data = json.loads(out)
    assert data["exposures"] == {v: sum(x == v for x in new.values()) for v in ("control", "b")}
    assert sum(r["successes"] for r in data["results"]) == 0


def test_the_log_lines_carry_their_run_and_older_readers_pass_it_over(tmp_path, impl):
    a, b = None, None
    try:
        a, b, _ = _lagging_host_scenario(tmp_path, impl)
        since = b.list_ab_tests()["t"]["since"]
    finally:
        for m in (a, b):
            if m is not None:
                m.close()
    paths = state_paths(f"{tmp_path}/flags.json")
    for path in (paths["exposures"], paths["metrics"]):
        with open(path, "rb") as fh:
            lines = [json.loads(line) for line in fh]
        for line in lines:
            first_run = line["user"].startswith(("early", "late"))
            assert line["run"] == (None if first_run else since), line

    # A reader of the format before run tags decodes every line (unknown fields are
    # passed over).
    class OldExposureRecord(msgspec.Struct):
        test: str
        variant: str
        user: str
        ts: float

    with open(paths["exposures"], "rb") as fh:
        old = [msgspec.json.decode(line, type=OldExposureRecord) for line in fh]
    assert len(old) == 450


def _write_lines(path, lines):
    with open(path, "a", encoding="utf-8") as fh:
        for line in lines:
            fh.write(json.dumps(line) + "\n")


def test_untagged_lines_of_older_logs_are_still_judged_by_their_time(tmp_path, impl, capsys):
    """Logs written before run tags: the time rule attributes them (a line stamped up
    to the new run's since is the earlier run's); tagged lines go by their tag."""
    m = _manager(tmp_path, impl)
    try:
        assert m.create_ab_test(_test())
        assert m.delete_ab_test("t") and m.create_ab_test(_test())
        since = m.list_ab_tests()["t"]["since"]
        variant = {u: m.get_ab_test_variant("t", {"user_id": u}) for u in ("n1", "n2")}
        _flush(m)
        paths = state_paths(f"{tmp_path}/flags.json")
        old_lines, old_events = [], []
        for i in range(30):  # untagged, before the since: the deleted run's
            u = f"old-{i}"
            old_lines.append({"test": "t", "variant": "b", "user": u, "ts": since - 10})
            old_events.append({"test": "t", "variant": "b", "user": u, "metric": "err",
                               "value": 1.0, "ts": since - 10})  # fmt: skip
        # Untagged after the since: the new run's, as before tags.
        old_lines.append({"test": "t", "variant": "control", "user": "u-after", "ts": since + 1})
        # Tagged for the first run but stamped after the since: not the new run's.
        old_lines.append(
            {"test": "t", "variant": "b", "user": "tagged-old", "ts": since + 5, "run": None}
        )
        _write_lines(paths["exposures"], old_lines)
        _write_lines(paths["metrics"], old_events)
        report = m.analyze("t")
        want = {"control": 0, "b": 0}
        for v in variant.values():
            want[v] += 1
        want["control"] += 1  # u-after
        assert report.exposures == want
        assert all(r.successes == 0 for r in report.for_metric("err"))
        assert m.check_guardrails("t") == []
    finally:
        m.close()
    code, out, err = run_cli(
        capsys, "experiment", "report", "t", "--state-dir", str(tmp_path), "--json"
    )
    assert code == 0, err
    assert json.loads(out)["exposures"] == want


def test_ingest_tags_its_lines_with_the_run_it_read(tmp_path, impl, capsys):
    m = _manager(tmp_path, impl)
    try:
        assert m.create_ab_test(_test())
        assert m.delete_ab_test("t") and m.create_ab_test(_test())
        since = m.list_ab_tests()["t"]["since"]
    finally:
        m.close()
    events = tmp_path / "events.jsonl"
    _write_lines(events, [
        {"test": "t", "user": "i1", "variant": "b", "ts": since + 1},
        {"test": "t", "user": "i1", "variant": "b", "metric": "err", "value": 1, "ts": since + 2},
        {"test": "t", "user": "i0", "variant": "b", "ts": since - 1},  # before the run
    ])  # fmt: skip
    code, out, err = run_cli(
        capsys, "experiment", "ingest", str(events), "--state-dir", str(tmp_path)
    )
    assert code == 0, err
    paths = state_paths(f"{tmp_path}/flags.json")
    runs = {r.user: r.run for r in read_log(paths["exposures"], ExposureRecord)}
    assert runs == {"i1": since, "i0": msgspec.UNSET}
    assert [r.run for r in read_log(paths["metrics"], MetricRecord)] == [since]
    code, out, err = run_cli(
        capsys, "experiment", "report", "t", "--state-dir", str(tmp_path), "--json"
    )
    assert code == 0, err
    assert json.loads(out)["exposures"] == {"control": 0, "b": 1}


class _HeldSink:
    """An exposure sink whose first write waits until released: the writer thread is
    held up (a slow volume), and the exposures queued behind it wait."""

    def __init__(self):
        import threading

        self.release = threading.Event()

    def write(self, batch):
        self.release.wait(30)


def test_a_record_keeps_the_run_it_was_logged_for_however_late_it_is_written(tmp_path, impl):
    """The run is the request's (resolved with the document it was served from), not the
    writer's when it gets to the record: exposures of the earlier run still queued when
    this process takes the new run (its writer held up past the wait for it) stay that
    run's."""
    held = _HeldSink()
    m = DynamicConfigurationManager(
        state_dir=tmp_path, engine=engine_class(impl)(), record_usage=False,
        guardrail_check_every=10**9, exposure_sinks=[held],
    )  # fmt: skip
    try:
        assert m.create_ab_test(_test())
        m.get_ab_test_variant("t", {"user_id": "first"})
        deadline = time.monotonic() + 10
        while m.exposures.written == 0 and m.exposures._writer._pending:  # taken: held up
            assert time.monotonic() < deadline
            time.sleep(0.01)
        queued = [f"queued-{i}" for i in range(30)]
        for u in queued:
            m.get_ab_test_variant("t", {"user_id": u})
        assert m.delete_ab_test("t") and m.create_ab_test(_test())
        since = m.list_ab_tests()["t"]["since"]
        new = {u: m.get_ab_test_variant("t", {"user_id": u}) for u in ("n1", "n2", "n3")}
        held.release.set()
        _flush(m)
        paths = state_paths(f"{tmp_path}/flags.json")
        runs = {r.user: r.run for r in read_log(paths["exposures"], ExposureRecord)}
        assert {u: runs[u] for u in ["first", *queued]} == dict.fromkeys(["first", *queued])
        assert {u: runs[u] for u in new} == dict.fromkeys(new, since)
        report = m.analyze("t")
        assert sum(report.exposures.values()) == 3
    finally:
        held.release.set()
        m.close()
