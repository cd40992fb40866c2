"""Event ids in metric records: duplicates told apart from distinct events.

Every metric line carries an ``event_id`` (the caller's, or one the writer makes), the
readers count each (test, user, metric, id) once within a bounded window, and
``cfgcore experiment ingest`` leaves out events whose ids the metric log holds, so a
file corrected in place and ingested whole again adds only its new lines. An input
already ingested, or one whose every event is in the logs already, exits 3 (nothing
to do), not 1. The record of ingested inputs keeps its newest entries.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfgcore.cli import EXIT_NOTHING_TO_DO
from cfgcore.dynamic_config import ABTestConfiguration, DynamicConfigurationManager
from cfgcore.experiments import ingested as ingested_mod
from cfgcore.experiments.event_ids import IDS, MAX_EVENT_ID, IdWindow, event_key
from cfgcore.experiments.ingested import read_ledger, trimmed
from cfgcore.experiments.metrics import MetricsStore, read_metrics
from tests.conftest import run_cli, started_experiment_state
from tests.fuzz import examples
from tests.texts import any_text

SRC = os.path.dirname(os.path.dirname(os.path.abspath(__import__("cfgcore").__file__)))
TS = 1764547200


# -- the writers ----------------------------------------------------------------------


def _ab(name: str = "exp") -> ABTestConfiguration:
    now = datetime.now(timezone.utc)
    return ABTestConfiguration(
        test_name=name, description="t", start_date=now - timedelta(days=1),
        end_date=now + timedelta(days=1), traffic_split={"control": 50.0, "treatment": 50.0},
        configurations={"control": {}, "treatment": {}}, success_metrics=["ctr"],
    )  # fmt: skip


def _manager(impl, path):
    from cfgcore.engine import engine_class

    engine = engine_class(impl).from_snapshot({"flags": {}})
    m = DynamicConfigurationManager(state_dir=path, engine=engine)
    assert m.create_ab_test(_ab())
    return m


def _lines(path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def test_identical_record_metric_calls_are_two_events_with_two_ids(tmp_path, impl):
    """Two calls alike in every field (one user, metric, value, second) are two events:
    each line gets its own id, and the report counts both."""
    m = _manager(impl, tmp_path / "state")
    try:
        ctx = {"user_id": "u1"}
        assert m.record_metric("exp", "ctr", 1.0, user_context=ctx)
        assert m.record_metric("exp", "ctr", 1.0, user_context=ctx)
        m.metrics.flush()
        lines = _lines(m.metrics.path)
        assert len(lines) == 2
        ids = [line["event_id"] for line in lines]
        assert len(set(ids)) == 2 and all(i.startswith(IDS.prefix) for i in ids)
        assert {k: v for k, v in lines[0].items() if k not in ("event_id", "ts")} == {
            k: v for k, v in lines[1].items() if k not in ("event_id", "ts")
        }
        variant = m.get_ab_test_variant("exp", ctx)
        store = MetricsStore.load(m.metrics.path)
        assert store.event_count("exp", variant, "ctr") == 2 and store.duplicates == {}
    finally:
        m.close()


def test_track_metric_with_the_same_event_id_is_one_event(tmp_path, impl):
    """A retried call with the application's id is one event: logged once, counted
    once, wherever the report reads it."""
    m = _manager(impl, tmp_path / "state")
    try:
        ctx = {"user_id": "u1"}
        m.get_ab_test_variant("exp", ctx)  # exposed: the tracked events count
        for _ in range(3):
            assert m.track_metric("exp", "ctr", 2.0, user_context=ctx, event_id="order-1")
        assert m.track_metric("exp", "ctr", 2.0, user_context=ctx, event_id="order-2")
        # Another metric or another user under the same id is another event.
        assert m.track_metric("exp", "revenue", 9.0, user_context=ctx, event_id="order-1")
        assert not m.track_metric("exp", "ctr", 1.0, user_context=ctx, event_id="")
        assert not m.track_metric("exp", "ctr", 1.0, user_context=ctx, event_id=["x"])
        m.metrics.flush()
        ids = [(line["metric"], line["event_id"]) for line in _lines(m.metrics.path)]
        assert ids == [("ctr", "order-1"), ("ctr", "order-2"), ("revenue", "order-1")]
        assert m.metrics.duplicates == {"exp": 2}
        report = m.analyze("exp")
        ctr = [r for r in report.for_metric("ctr") if r.events]
        assert [r.events for r in ctr] == [2]
    finally:
        m.close()


def test_a_copied_line_counts_once_old_lines_without_ids_each(tmp_path, capsys, monkeypatch):
    """A log holding a copy of a line (a backup appended, files concatenated) counts it
    once in every reader; lines of older releases, without ids, count as before."""
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("CFGCORE_FLAG_STORE", raising=False)
    assert run_cli(capsys, "experiment", "create", "t", "--split", "control=50,b=50",
                   "--start")[0] == 0  # fmt: skip
    log = tmp_path / "state" / "flags.metrics.jsonl"
    with_id = {"test": "t", "variant": "b", "user": "u1", "metric": "ctr", "value": 1.0,
               "event_id": "e-1", "ts": TS}  # fmt: skip
    old = {"test": "t", "variant": "b", "user": "u1", "metric": "ctr", "value": 1.0, "ts": TS}
    other_user = {**with_id, "user": "u2"}
    lines = [with_id, old, with_id, old, other_user, with_id]
    log.write_text("".join(json.dumps(r) + "\n" for r in lines))

    store = MetricsStore.load(log)
    assert store.event_count("t", "b", "ctr") == 4  # e-1 once, both old lines, u2's e-1
    assert store.duplicates == {"t": 2}
    assert [r.get("event_id") for r in read_metrics(log)] == ["e-1", None, "e-1", None,
                                                              "e-1", "e-1"]  # fmt: skip
    code, out, _ = run_cli(capsys, "experiment", "report", "t", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["duplicate_events"] == 2
    assert [r["events"] for r in data["results"] if r["variant"] == "b"] == [4]
    code, out, _ = run_cli(capsys, "experiment", "report", "t")
    assert "2 metric event(s) left out as copies" in out

    # The manager's analysis (the guardrails' view of the shared logs) alike.
    m = DynamicConfigurationManager(state_dir=tmp_path / "state")
    try:
        b = [r for r in m.analyze("t").for_metric("ctr") if r.variant == "b"]
        assert [r.events for r in b] == [4]
    finally:
        m.close()


def test_a_forked_child_makes_ids_of_its_own():
    read, write = os.pipe()
    parent = [IDS.next(), IDS.next()]
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.write(write, json.dumps([IDS.prefix, IDS.next()]).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as f:
        prefix, first = json.loads(f.read())
    os.waitpid(pid, 0)
    assert prefix != IDS.prefix and first == f"{prefix}1"
    assert not set(parent) & {first}


@settings(max_examples=examples(100), deadline=None)
@given(st.one_of(any_text(min_size=1, max_size=MAX_EVENT_ID), st.integers(-(10**30), 10**30)))
def test_any_valid_event_id_is_logged_as_given_and_counts_once(tmp_path_factory, eid):
    path = tmp_path_factory.mktemp("ids") / "m.jsonl"
    store = MetricsStore(path)
    try:
        text = str(eid)
        if any(0xD800 <= ord(c) <= 0xDFFF for c in text):
            assert not store.record("t", "a", "m", 1.0, "u", event_id=eid)
            return
        assert store.record("t", "a", "m", 1.0, "u", event_id=eid)
        assert store.record("t", "a", "m", 1.0, "u", event_id=eid)  # a retry: known
        store.flush()
    finally:
        store.close()
    assert [r["event_id"] for r in read_metrics(path)] == [text]
    assert MetricsStore.load(path).event_count("t", "a", "m") == 1


@pytest.mark.parametrize("bad", ["", "x" * (MAX_EVENT_ID + 1), True, 1.5, ["a"], {"a": 1}])
def test_an_event_id_that_is_no_id_is_refused(tmp_path, bad):
    store = MetricsStore(tmp_path / "m.jsonl")
    try:
        assert store.record("t", "a", "m", 1.0, "u", event_id=bad) is False
        store.flush()
    finally:
        store.close()
    assert not (tmp_path / "m.jsonl").exists()


class _Name(str):
    """An application's str type (an enum's member, say): read by its text."""


def _as_defined(value):
    """``event_id_text`` as its docstring defines it: a str or an int (no bool) by its
    real type, as the metric log files a user id (``user_id_text``), of 1 to
    MAX_EVENT_ID characters."""
    from cfgcore.details import user_id_text

    kind = type(value)
    if issubclass(kind, bool) or not issubclass(kind, (str, int)):
        return None
    text = user_id_text(value)
    return text if text is not None and 0 < len(text) <= MAX_EVENT_ID else None


_ascii = st.text(st.characters(max_codepoint=127), max_size=MAX_EVENT_ID + 2)


@settings(max_examples=examples(300), deadline=None)
@given(
    st.one_of(
        _ascii,
        any_text(max_size=MAX_EVENT_ID + 2),
        st.sampled_from(["", "x" * MAX_EVENT_ID, "x" * (MAX_EVENT_ID + 1), "\ud800", "é"]),
        _ascii.map(_Name),
        st.integers(-(10**400), 10**400),
        st.booleans(),
        st.floats(),
        st.binary(max_size=3),
        st.none(),
    )
)
def test_event_id_text_reads_every_value_as_defined(value):
    # Its fast path for ASCII str ids (read twice per OpenFeature track) answers as
    # the definition does.
    from cfgcore.experiments.event_ids import event_id_text

    assert event_id_text(value) == _as_defined(value)


# -- the window -----------------------------------------------------------------------


@settings(max_examples=examples(200), deadline=None)
@given(st.integers(1, 8), st.lists(st.integers(-20, 20).filter(bool), max_size=300))
def test_the_window_finds_every_copy_within_it_and_stays_bounded(window, keys):
    """A key given again within ``window`` new keys after its last one is a duplicate;
    a key never given before never is; the window holds at most 2 * window keys."""
    ids = IdWindow(window)
    fresh: list[int] = []  # the new keys, in order
    for key in keys:
        dup = ids.seen(key)
        if key not in fresh:
            assert not dup
        elif key in fresh[-window:]:
            assert dup
        if not dup:
            fresh.append(key)
        assert ids.size <= 2 * window


def test_the_window_of_a_store_is_its_bound(tmp_path):
    """A copy further back than the window (and its second generation) counts again,
    as documented; one within it does not."""
    log = tmp_path / "m.jsonl"
    rows = [{"test": "t", "variant": "a", "user": f"u{i}", "metric": "m", "value": 1.0,
             "event_id": f"e{i}"} for i in range(10)]  # fmt: skip
    log.write_text("".join(json.dumps(r) + "\n" for r in [*rows, rows[9], rows[0]]))
    store = MetricsStore(None, event_id_window=4)
    events = [(r["test"], r["variant"], r["metric"], r["value"], r["user"], 0.0, False, None,
               r["event_id"]) for r in [*rows, rows[9], rows[0]]]  # fmt: skip
    store._apply(events)
    assert store.duplicates == {"t": 1}  # rows[9] again; rows[0] is out of the window
    assert store.event_count("t", "a", "m") == 11
    assert event_key("u1", "m", "e1") != event_key("u2", "m", "e1")


# -- ingest ---------------------------------------------------------------------------


@pytest.fixture
def state(tmp_path, monkeypatch, capsys):
    return started_experiment_state(tmp_path, monkeypatch, capsys)


def _metric(user: str, eid: str | None, value: float = 1.0, **more) -> dict:
    line = {"test": "t", "user": user, "variant": "b", "metric": "ctr", "value": value,
            "ts": TS, **more}  # fmt: skip
    if eid is not None:
        line["event_id"] = eid
    return line


def _write(path, lines) -> None:
    path.write_text("".join(r if isinstance(r, str) else json.dumps(r) + "\n" for r in lines))


def _logged(state) -> list[dict]:
    path = state / "state" / "flags.metrics.jsonl"
    return _lines(path) if path.exists() else []


def test_a_corrected_file_ingested_whole_again_adds_only_its_new_lines(state, capsys):
    batch = state / "batch.jsonl"
    good = [_metric(f"u{i}", f"e{i}") for i in range(4)]
    _write(batch, [*good, "not json\n", {"test": "t", "user": "u1", "variant": "b"}])
    code, _, err = run_cli(capsys, "experiment", "ingest", str(batch))
    assert code == 1 and "batch.jsonl:5" in err
    assert len(_logged(state)) == 4

    # The unusable line corrected in place, the file ingested whole again.
    _write(batch, [*good, _metric("u9", "e9", 3.0), {"test": "t", "user": "u1", "variant": "b"}])
    code, _, err = run_cli(capsys, "experiment", "ingest", str(batch))
    assert code == 0, err
    assert "1 metric event(s)" in err and "4 metric event(s) already ingested" in err
    assert [r["event_id"] for r in _logged(state)] == ["e0", "e1", "e2", "e3", "e9"]
    assert (
        MetricsStore.load(state / "state" / "flags.metrics.jsonl").event_count("t", "b", "ctr") == 5
    )

    # The same content once more: refused by its content, nothing to do (3).
    code, _, err = run_cli(capsys, "experiment", "ingest", str(batch))
    assert code == EXIT_NOTHING_TO_DO == 3
    assert "already ingested" in err and "error" not in err
    # Other content whose every event is in already (reordered, no exposures): 3 too.
    again = state / "again.jsonl"
    _write(again, list(reversed(good)))
    code, _, err = run_cli(capsys, "experiment", "ingest", str(again))
    assert code == 3 and "4 metric event(s) already ingested" in err
    assert len(_logged(state)) == 5
    assert len(read_ledger(str(state / "state" / "flags.ingested.json"))) == 2


def test_lines_without_ids_in_a_corrected_file_still_count_twice(state, capsys):
    """Documented: what has no id is known only by the whole input's content."""
    batch = state / "batch.jsonl"
    _write(batch, [_metric("u1", None), _metric("u2", "e2")])
    assert run_cli(capsys, "experiment", "ingest", str(batch))[0] == 0
    _write(batch, [_metric("u1", None), _metric("u2", "e2"), _metric("u3", "e3")])
    assert run_cli(capsys, "experiment", "ingest", str(batch))[0] == 0
    assert [(r["user"], r.get("event_id")) for r in _logged(state)] == [
        ("u1", None), ("u2", "e2"), ("u1", None), ("u3", "e3"),
    ]  # fmt: skip


def test_an_id_given_again_with_other_content_is_reported_not_written(state, capsys):
    first, second = state / "a.jsonl", state / "b.jsonl"
    _write(first, [_metric("u1", "e1", 2.0)])
    assert run_cli(capsys, "experiment", "ingest", str(first))[0] == 0
    _write(second, [_metric("u1", "e1", 5.0), _metric("u2", "e2"), _metric("u2", "e2", 7.0)])
    code, _, err = run_cli(capsys, "experiment", "ingest", str(second))
    assert code == 1
    assert "b.jsonl:1: event_id e1: given before with other content (value 2.0 in the metric " \
           "log, 5.0 here)" in err  # fmt: skip
    assert "b.jsonl:3: event_id e2: given before with other content (value 1.0 at line 2, " \
           "7.0 here)" in err  # fmt: skip
    assert [(r["event_id"], r["value"]) for r in _logged(state)] == [("e1", 2.0), ("e2", 1.0)]


def test_again_never_writes_an_id_the_log_holds_and_rotated_files_count(state, capsys):
    log = state / "state" / "flags.metrics.jsonl"
    batch = state / "batch.jsonl"
    _write(batch, [_metric("u1", "e1"), _metric("u2", "e2")])
    assert run_cli(capsys, "experiment", "ingest", str(batch))[0] == 0
    os.replace(log, f"{log}.1")  # rotated since
    code, _, err = run_cli(capsys, "experiment", "ingest", "--again", str(batch))
    assert code == 3 and "2 metric event(s) already ingested" in err
    assert not log.exists() or log.read_bytes() == b""
    # Removed from the logs, the events are ingested again.
    os.unlink(f"{log}.1")
    assert run_cli(capsys, "experiment", "ingest", "--again", str(batch))[0] == 0
    assert [r["event_id"] for r in _logged(state)] == ["e1", "e2"]


def test_an_id_of_a_deleted_tests_earlier_run_is_another_event(state, capsys):
    batch = state / "batch.jsonl"
    _write(batch, [_metric("u1", "e1")])
    assert run_cli(capsys, "experiment", "ingest", str(batch))[0] == 0
    assert run_cli(capsys, "experiment", "delete", "t")[0] == 0
    assert run_cli(capsys, "experiment", "create", "t", "--split", "control=50,b=50",
                   "--start")[0] == 0  # fmt: skip
    later = state / "later.jsonl"
    line = _metric("u1", "e1")
    del line["ts"]  # now: the new run's
    _write(later, [line])
    code, _, err = run_cli(capsys, "experiment", "ingest", str(later))
    assert code == 0, err
    assert [r["event_id"] for r in _logged(state)] == ["e1", "e1"]


@pytest.mark.parametrize("bad", ['""', '"' + "x" * (MAX_EVENT_ID + 1) + '"', "true", "[1]",
                                 "1.5"])  # fmt: skip
def test_an_ingested_event_id_that_is_no_id_is_an_unusable_line(state, capsys, bad):
    batch = state / "batch.jsonl"
    batch.write_text(
        '{"test": "t", "user": "u1", "variant": "b", "metric": "ctr", "event_id": ' + bad + "}\n"
    )
    code, _, err = run_cli(capsys, "experiment", "ingest", str(batch))
    assert code == 1 and "batch.jsonl:1: event_id: expected text or an integer" in err
    assert _logged(state) == []


def test_a_logged_event_id_ingest_refuses_is_an_unusable_line_for_every_reader(state, capsys):
    """One rule for what an event id is: a log line whose id ``cfgcore experiment
    ingest`` (and ``record``) refuses, empty or longer than MAX_EVENT_ID, is an unusable
    line for every reader of the log, not an event (two such lines with the empty id
    counted once, as copies); an id of exactly MAX_EVENT_ID characters counts."""
    log = state / "state" / "flags.metrics.jsonl"
    good = _metric("u1", "x" * MAX_EVENT_ID)
    lines = [_metric("u1", ""), _metric("u1", ""), _metric("u2", "y" * (MAX_EVENT_ID + 1)),
             good, _metric("u3", "é" * MAX_EVENT_ID)]  # fmt: skip
    _write(log, lines)

    store = MetricsStore.load(log)
    assert store.event_count("t", "b", "ctr") == 2 and store.duplicates == {}
    assert store.skipped.count == 3
    for n, got in zip((1, 2, 3), store.skipped.first, strict=True):
        assert f"flags.metrics.jsonl:{n}: event_id: expected str of length" in got
    assert [r["user"] for r in read_metrics(log)] == ["u1", "u3"]

    code, out, err = run_cli(capsys, "experiment", "report", "t", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["unusable_lines"]["count"] == 3 and data["duplicate_events"] == 0
    assert [r["events"] for r in data["results"] if r["variant"] == "b"] == [2]

    # Ingested again, the same lines are refused there too (the good ones are in the log).
    batch = state / "batch.jsonl"
    _write(batch, lines[:3])
    code, _, err = run_cli(capsys, "experiment", "ingest", str(batch))
    assert code == 1 and err.count("event_id: expected text or an integer") == 3

    # The manager's analysis (the guardrails' reader) alike.
    m = DynamicConfigurationManager(state_dir=state / "state")
    try:
        b = [r for r in m.analyze("t").for_metric("ctr") if r.variant == "b"]
        assert [r.events for r in b] == [2]
    finally:
        m.close()


def test_the_exit_status_of_nothing_to_do_from_a_real_process(state):
    batch = state / "batch.jsonl"
    _write(batch, [_metric("u1", "e1")])
    env = {**os.environ, "PYTHONPATH": SRC}
    argv = [sys.executable, "-m", "cfgcore", "experiment", "ingest", str(batch)]
    first = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    second = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    assert (first.returncode, second.returncode) == (0, 3), (first.stderr, second.stderr)
    assert second.stderr.startswith(f"cfgcore: {batch}: already ingested at ")
    help_text = subprocess.run([sys.executable, "-m", "cfgcore", "--help"], env=env,
                               capture_output=True, text=True, timeout=120).stdout  # fmt: skip
    assert "3 nothing to do" in help_text


@settings(max_examples=examples(12), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(st.lists(st.lists(st.integers(0, 11), min_size=1, max_size=8), min_size=1, max_size=5))
def test_batches_that_overlap_write_each_event_once(tmp_path_factory, capsys, batches):
    """Whatever batches of a set of events with ids are ingested, in whatever order and
    overlap, the metric log ends up holding each event once."""
    home = tmp_path_factory.mktemp("ingest")
    mp = pytest.MonkeyPatch()
    try:
        mp.setenv("CFGCORE_STATE_DIR", str(home / "state"))
        mp.delenv("CFGCORE_FLAG_STORE", raising=False)
        assert run_cli(capsys, "experiment", "create", "t", "--split", "control=50,b=50",
                       "--start")[0] == 0  # fmt: skip
        done: set[int] = set()
        for n, batch in enumerate(batches):
            path = home / f"b{n}.jsonl"
            _write(path, [_metric(f"u{i % 3}", f"e{i}", float(i)) for i in batch])
            code, _, err = run_cli(capsys, "experiment", "ingest", str(path))
            new = set(batch) - done
            assert code == (0 if new else 3), err
            done |= new
        log = home / "state" / "flags.metrics.jsonl"
        got = [(r["event_id"], r["user"], r["value"]) for r in _lines(log)]
        assert sorted(got) == sorted((f"e{i}", f"u{i % 3}", float(i)) for i in done)
    finally:
        mp.undo()


# -- the record of ingested inputs ----------------------------------------------------


def test_the_record_keeps_the_newest_entries(state, capsys, monkeypatch):
    monkeypatch.setattr(ingested_mod, "MAX_LEDGER_ENTRIES", 3)
    paths = []
    for n in range(5):
        path = state / f"b{n}.jsonl"
        _write(path, [_metric(f"u{n}", None)])
        paths.append(path)
        assert run_cli(capsys, "experiment", "ingest", str(path))[0] == 0
    ledger = state / "state" / "flags.ingested.json"
    entries = read_ledger(str(ledger))
    assert [e["file"] for e in entries.values()] == [str(p) for p in paths[2:]]
    # Written atomically (a temp file renamed): none left beside it.
    assert [n for n in os.listdir(ledger.parent) if "ingested" in n] == ["flags.ingested.json"]
    # The newest are still refused; the one dropped is no longer known.
    assert run_cli(capsys, "experiment", "ingest", str(paths[4]))[0] == 3
    assert run_cli(capsys, "experiment", "ingest", str(paths[0]))[0] == 0


_AT = st.datetimes(datetime(2020, 1, 1), datetime(2030, 1, 1)).map(
    lambda d: d.strftime("%Y-%m-%dT%H:%M:%SZ")
)


@settings(max_examples=examples(200), deadline=None)
@given(st.lists(st.tuples(st.text(max_size=4), _AT), max_size=30, unique_by=lambda t: t[0]),
       st.integers(0, 12), st.data())  # fmt: skip
def test_trimming_keeps_the_newest_in_their_order(items, keep, data):
    entries = {k: {"at": at} for k, at in items}
    newest = data.draw(st.sampled_from([None, *entries])) if entries else None
    out = trimmed(dict(entries), keep, newest)
    if len(entries) <= keep:
        assert out == entries
        return
    assert len(out) == keep
    assert list(out) == [k for k in entries if k in out]  # their order kept
    if newest is not None and keep:
        assert newest in out
    others = [entries[k]["at"] for k in out if k != newest]
    dropped = [entries[k]["at"] for k in entries if k not in out and k != newest]
    if others and dropped:
        assert min(others) >= max(dropped)


def test_stdin_with_ids_twice_is_nothing_to_do(state, capsys, monkeypatch):
    data = json.dumps(_metric("u1", "e1")) + "\n"
    for expected in (0, 3):
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data.encode())))
        assert run_cli(capsys, "experiment", "ingest", "-")[0] == expected
    assert len(_logged(state)) == 1
