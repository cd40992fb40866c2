"""Exposure and metric logs under failure: ``experiment ingest`` writes both logs or
neither (an error or a crash between the two appends), readers count and name every
line they cannot use, and the writer never leaves a half-written record behind."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cfgcore.experiments import exposures as exp
from cfgcore.experiments.exposures import (
    JsonLinesSink,
    SkippedLines,
    read_exposures,
    recover_appends,
)
from cfgcore.experiments.metrics import MetricsStore, read_metrics
from tests.conftest import run_cli as run

EXPOSURE = {"test": "checkout", "user": "u1", "variant": "green", "ts": 1764547200}
METRIC = {"test": "checkout", "user": "u1", "metric": "conversion", "value": 1}


def lines(path):
    return path.read_text().splitlines() if path.exists() else []


def events_file(tmp_path, n=3):
    path = tmp_path / "events.jsonl"
    rows = []
    for i in range(n):
        rows.append(json.dumps({**EXPOSURE, "user": f"u{i}"}))
        rows.append(json.dumps({**METRIC, "user": f"u{i}", "variant": "green"}))
    path.write_text("\n".join(rows) + "\n")
    return path


# ----------------------------------------------------------------------- ingest: both or none


def test_ingest_that_cannot_write_the_metric_log_writes_no_exposures(
    checkout_test, tmp_path, capsys
):
    # The metric log cannot be opened (a directory in its place). Before: the exposures
    # were appended, the metric events were lost on the writer thread and ingest said
    # it had ingested them (exit 0).
    (checkout_test / "flags.metrics.jsonl").mkdir()
    code, _, err = run(capsys, "experiment", "ingest", str(events_file(tmp_path)))
    assert code == 1
    assert "nothing was ingested" in err and "flags.metrics.jsonl" in err
    assert lines(checkout_test / "flags.exposures.jsonl") == []
    assert not (checkout_test / "flags.ingest-journal.json").exists()


def test_a_write_failing_between_the_two_appends_is_undone(
    checkout_test, tmp_path, capsys, monkeypatch
):
    exposures_log = checkout_test / "flags.exposures.jsonl"
    exposures_log.write_text(json.dumps({**EXPOSURE, "user": "earlier"}) + "\n")
    before = exposures_log.read_bytes()
    real = exp._write_all
    calls = []

    def second_fails(fd, data):
        calls.append(data)
        if len(calls) == 2:  # the exposures are written; the metric events are not
            real(fd, data[: len(data) // 2])  # half of it reached the disk
            raise OSError(errno.ENOSPC, "No space left on device")
        real(fd, data)

    monkeypatch.setattr(exp, "_write_all", second_fails)
    path = events_file(tmp_path)
    code, _, err = run(capsys, "experiment", "ingest", str(path))
    assert code == 1 and "No space left on device" in err and "nothing was ingested" in err
    assert len(calls) == 2
    assert exposures_log.read_bytes() == before  # the first append was taken back
    assert lines(checkout_test / "flags.metrics.jsonl") == []
    assert not (checkout_test / "flags.ingest-journal.json").exists()
    # Once the disk has room, running the same ingest again gives one copy of each.
    monkeypatch.setattr(exp, "_write_all", real)
    code, _, err = run(capsys, "experiment", "ingest", str(path))
    assert code == 0, err
    assert len(lines(exposures_log)) == 4 and len(lines(checkout_test / "flags.metrics.jsonl")) == 3


CRASH = """
import os, sys
from cfgcore.experiments import exposures as exp
real, calls = exp._write_all, []
def crash_on_second(fd, data):
    calls.append(1)
    if len(calls) == 2:
        real(fd, data[:10])  # a torn write, then the process dies
        os._exit(9)
    real(fd, data)
exp._write_all = crash_on_second
from cfgcore.cli import main
sys.exit(main(["-q", "experiment", "ingest", sys.argv[1]]))
"""


def test_a_crash_between_the_two_appends_is_taken_back_by_the_next_run(
    checkout_test, tmp_path, capsys
):
    path = events_file(tmp_path)
    env = {**os.environ, "CFGCORE_STATE_DIR": str(checkout_test)}
    proc = subprocess.run([sys.executable, "-c", CRASH, str(path)], env=env, timeout=120)
    assert proc.returncode == 9
    journal = checkout_test / "flags.ingest-journal.json"
    assert journal.exists()
    # one log written, not the other
    assert len(lines(checkout_test / "flags.exposures.jsonl")) == 3
    # A live service appends to the metric log after the crash, behind the torn bytes.
    JsonLinesSink(checkout_test / "flags.metrics.jsonl").write(
        [{**METRIC, "user": "live", "variant": "control", "ts": 1.0}]
    )
    # The report first takes back the unfinished ingest: no exposure without its metric.
    code, out, err = run(capsys, "experiment", "report", "checkout", "--json")
    assert code == 0, err
    assert "did not finish" in err and not journal.exists()
    report = json.loads(out)
    assert report["exposures"] == {"control": 0, "green": 0}
    assert report["unusable_lines"]["count"] == 0  # the torn bytes were cut out too
    assert [json.loads(x)["user"] for x in lines(checkout_test / "flags.metrics.jsonl")] == ["live"]
    # Running the ingest again is right: one copy of everything.
    code, _, err = run(capsys, "experiment", "ingest", str(path))
    assert code == 0, err
    assert len(lines(checkout_test / "flags.exposures.jsonl")) == 3
    users = sorted(json.loads(x)["user"] for x in lines(checkout_test / "flags.metrics.jsonl"))
    assert users == ["live", "u0", "u1", "u2"]


def test_recovery_finds_an_append_a_rotation_moved(tmp_path):
    # A crashed ingest's exposures reached the file (its journal says where); a live
    # writer rotated the file since.
    log = JsonLinesSink(tmp_path / "x.exposures.jsonl", max_bytes=200)
    log.write([{**EXPOSURE, "user": "before"}])
    ours = log.encode([{**EXPOSURE, "user": f"ingested{i}"} for i in range(2)])
    offset = os.path.getsize(log.path)
    with open(log.path, "ab") as fh:
        fh.write(ours)
    journal = str(tmp_path / "journal.json")
    with open(journal, "w") as fh:
        json.dump({"appends": [{"path": log.path, "offset": offset, "data": ours.decode()}]}, fh)
    log.write([{**EXPOSURE, "user": f"after{i}"} for i in range(3)])  # rotates
    assert os.path.exists(log.path + ".1")
    assert recover_appends(journal) is True
    assert not os.path.exists(journal)
    assert [e.user for e in read_exposures(log.path)] == ["before", "after0", "after1", "after2"]
    assert recover_appends(journal) is False


def test_recovery_leaves_a_file_without_the_planned_data_alone(tmp_path):
    log = JsonLinesSink(tmp_path / "x.jsonl")
    log.write([{**EXPOSURE, "user": "someone else"}])
    before = Path(log.path).read_bytes()
    journal = tmp_path / "journal.json"
    data = log.encode([{**EXPOSURE, "user": "never written"}]).decode()
    journal.write_text(json.dumps({"appends": [{"path": log.path, "offset": 0, "data": data}]}))
    assert recover_appends(str(journal)) is True
    assert Path(log.path).read_bytes() == before


def test_an_unreadable_journal_is_an_error_naming_it(checkout_test, tmp_path, capsys):
    (checkout_test / "flags.ingest-journal.json").write_text("{not json")
    code, _, err = run(capsys, "experiment", "ingest", str(events_file(tmp_path)))
    assert code == 1
    assert "flags.ingest-journal.json" in err and "unusable journal" in err
    assert lines(checkout_test / "flags.exposures.jsonl") == []


def test_a_lone_surrogate_user_is_one_unusable_line(checkout_test, tmp_path, capsys):
    path = tmp_path / "ev.jsonl"
    path.write_text(json.dumps({**EXPOSURE, "user": "\ud800"}) + "\n" + json.dumps(EXPOSURE) + "\n")
    code, _, err = run(capsys, "experiment", "ingest", str(path))
    assert code == 1
    assert f"{path}:1: user: not text" in err
    assert [json.loads(x)["user"] for x in lines(checkout_test / "flags.exposures.jsonl")] == ["u1"]


# ----------------------------------------------------------------------- reading damaged logs

GOOD = {"test": "checkout", "variant": "green", "user": "u1", "metric": "conversion", "ts": 1.0}


def damaged_metric_log(path):
    rows = [
        json.dumps({**GOOD, "value": 2.0}).encode(),
        json.dumps({**GOOD, "value": "5"}).encode(),  # a string where a number belongs
        json.dumps({**GOOD, "value": True}).encode(),  # a bool is not a measurement
        b'{"test": "checkout", "variant": "green", "metric": "conversion", "value": NaN}',
        b"\xff\xfe garbage",
        b'{"x": ' + b"[" * 50_000 + b"]" * 50_000 + b"}",
        json.dumps({**GOOD, "variant": None, "value": 1}).encode(),
        json.dumps({**GOOD, "value": 4.0}).encode(),
        b'{"test": "checkout", "variant": "gr',  # cut short by a crash
    ]
    path.write_bytes(b"\n".join(rows))


def test_a_damaged_metric_log_is_read_with_every_bad_line_counted_and_named(tmp_path):
    path = tmp_path / "m.jsonl"
    damaged_metric_log(path)
    store = MetricsStore.load(path)
    s = store.summary("checkout", "green", "conversion")
    # before: "5" and True were counted (mean 3.0 of 4); both good events are one user's
    assert (s.n, s.mean) == (1, 3.0)
    assert store.event_count("checkout", "green", "conversion") == 2
    assert store.skipped.count == 7
    named = {int(x.split(":")[1]) for x in store.skipped.first}
    assert named == {2, 3, 4, 5, 6, 7, 9}
    assert all(x.startswith(f"{path}:") for x in store.skipped.first)
    assert any("cut short" in x for x in store.skipped.first)
    skipped = SkippedLines()
    assert [r["value"] for r in read_metrics(path, skipped)] == [2.0, 4.0]
    assert skipped.count == 7


def test_report_on_a_damaged_log_names_the_lines_it_left_out(checkout_test, capsys):
    damaged_metric_log(checkout_test / "flags.metrics.jsonl")
    (checkout_test / "flags.exposures.jsonl").write_bytes(
        json.dumps(EXPOSURE).encode() + b"\n" + b'{"test": "checkout", "user": 7}\n'
    )
    code, out, err = run(capsys, "experiment", "report", "checkout")
    # before: a bad byte ended the report with a codec error, a deep line with an
    # internal error
    assert code == 0, err
    assert "8 unusable log line(s) left out" in out
    assert f"{checkout_test / 'flags.exposures.jsonl'}:2:" in err
    assert f"{checkout_test / 'flags.metrics.jsonl'}:5:" in err
    code, out, _ = run(capsys, "experiment", "report", "checkout", "--json")
    assert json.loads(out)["unusable_lines"]["count"] == 8


# ----------------------------------------------------------------------------- the writer


def test_a_line_cut_by_a_crash_does_not_swallow_the_next_record(tmp_path):
    path = tmp_path / "e.jsonl"
    path.write_bytes(json.dumps(EXPOSURE).encode() + b'\n{"test": "checkout", "us')
    JsonLinesSink(path).write([{**EXPOSURE, "user": "next"}])
    skipped = SkippedLines()
    # before: the new record was glued to the cut line and lost with it
    assert [e.user for e in read_exposures(path, skipped)] == ["u1", "next"]
    assert skipped.count == 1 and skipped.first[0].startswith(f"{path}:2: ")


def test_short_writes_are_continued(tmp_path, monkeypatch):
    real = os.write

    def dribble(fd, data):
        return real(fd, bytes(data[:7]))  # the kernel may accept less than asked

    monkeypatch.setattr(exp.os, "write", dribble)
    path = tmp_path / "e.jsonl"
    JsonLinesSink(path).write([{**EXPOSURE, "user": f"u{i}"} for i in range(20)])
    monkeypatch.undo()
    assert [e.user for e in read_exposures(path)] == [f"u{i}" for i in range(20)]


def test_a_failed_write_leaves_the_file_as_it_was(tmp_path, monkeypatch):
    path = tmp_path / "e.jsonl"
    sink = JsonLinesSink(path)
    sink.write([EXPOSURE])
    before = path.read_bytes()
    real = os.write
    calls = []

    def fail_midway(fd, data):
        calls.append(1)
        if len(calls) > 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd, bytes(data[:30]))

    monkeypatch.setattr(exp.os, "write", fail_midway)
    with pytest.raises(OSError):
        sink.write([{**EXPOSURE, "user": f"u{i}"} for i in range(5)])
    monkeypatch.undo()
    assert path.read_bytes() == before  # before: 30 bytes of a record stayed behind
