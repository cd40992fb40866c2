"""``cfgcore experiment ingest`` ingests each input once.

Exposures and metric events carry no event id: the same file ingested twice (a batch job
re-run after a later step failed) counted every event twice, and the logs could not tell
the copies apart afterwards. Each ingest that writes events now records its input's
fingerprint (SHA-256 and size of the bytes read) in ``flags.ingested.json``, in the same
step as the events (the journal of ``append_together`` covers both), and the same
content is refused, naming the file and when it was ingested, unless ``--again``.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import textwrap
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.experiments.exposures import (
    JsonLinesSink,
    append_together,
    bounded_lines,
    recover_appends,
)
from cfgcore.experiments.ingested import Fingerprint, HashingReader, read_ledger
from tests.conftest import run_cli, started_experiment_state
from tests.fuzz import examples

SRC = os.path.dirname(os.path.dirname(os.path.abspath(__import__("cfgcore").__file__)))


@pytest.fixture
def state(tmp_path, monkeypatch, capsys):
    return started_experiment_state(tmp_path, monkeypatch, capsys)


def _events(n: int, tag: str = "u") -> str:
    lines = []
    for i in range(n):
        lines.append({"test": "t", "user": f"{tag}{i}", "variant": "b"})
        lines.append({"test": "t", "user": f"{tag}{i}", "metric": "ctr", "value": i})
    return "".join(json.dumps(r) + "\n" for r in lines)


def _counts(state) -> tuple[int, int]:
    """Lines in the exposure and metric logs."""
    out = []
    for kind in ("exposures", "metrics"):
        path = state / "state" / f"flags.{kind}.jsonl"
        out.append(len(path.read_bytes().splitlines()) if path.exists() else 0)
    return out[0], out[1]


def _ledger(state) -> dict:
    return read_ledger(str(state / "state" / "flags.ingested.json"))


def test_the_same_file_twice_is_refused_naming_it_and_when(state, capsys):
    path = state / "batch.jsonl"
    path.write_text(_events(5))
    assert run_cli(capsys, "experiment", "ingest", str(path))[0] == 0
    assert _counts(state) == (5, 5)
    [(key, entry)] = _ledger(state).items()
    content = path.read_bytes()
    assert key == f"sha256:{hashlib.sha256(content).hexdigest()}:{len(content)}"
    assert entry["file"] == str(path) and entry["exposures"] == 5 and entry["metrics"] == 5

    code, out, err = run_cli(capsys, "experiment", "ingest", str(path))
    assert code == 3  # nothing to do (EXIT_NOTHING_TO_DO), not an error
    assert f"{path}: already ingested at {entry['at']}" in err
    assert "--again" in err
    assert _counts(state) == (5, 5)  # nothing written


def test_again_ingests_it_anyway_and_counts_the_times(state, capsys):
    path = state / "batch.jsonl"
    path.write_text(_events(3))
    assert run_cli(capsys, "experiment", "ingest", str(path))[0] == 0
    assert run_cli(capsys, "experiment", "ingest", "--again", str(path))[0] == 0
    assert _counts(state) == (6, 6)
    [entry] = _ledger(state).values()
    assert entry["times"] == 2
    code, _, err = run_cli(capsys, "experiment", "ingest", str(path))
    assert code == 3 and "2 times in all" in err


def test_the_same_content_by_another_name_or_stdin_is_refused(state, capsys, monkeypatch):
    first, copy = state / "a.jsonl", state / "b.jsonl"
    first.write_text(_events(4))
    copy.write_bytes(first.read_bytes())
    assert run_cli(capsys, "experiment", "ingest", str(first))[0] == 0
    code, _, err = run_cli(capsys, "experiment", "ingest", str(copy))
    assert code == 3 and f"{copy}: already ingested" in err and f"as {first}" in err
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(first.read_bytes())))
    code, _, err = run_cli(capsys, "experiment", "ingest", "-")
    assert code == 3 and "<stdin>: already ingested" in err
    assert _counts(state) == (4, 4)


def test_stdin_first_then_the_file_is_refused(state, capsys, monkeypatch):
    path = state / "a.jsonl"
    path.write_text(_events(2))
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(path.read_bytes())))
    assert run_cli(capsys, "experiment", "ingest", "-")[0] == 0
    assert [e["file"] for e in _ledger(state).values()] == ["<stdin>"]
    code, _, err = run_cli(capsys, "experiment", "ingest", str(path))
    assert code == 3 and "already ingested" in err and "(as <stdin>" in err
    assert _counts(state) == (2, 2)


def test_different_content_is_not_refused(state, capsys):
    a, b = state / "a.jsonl", state / "b.jsonl"
    a.write_text(_events(2, "x"))
    b.write_text(_events(2, "y"))
    assert run_cli(capsys, "experiment", "ingest", str(a))[0] == 0
    assert run_cli(capsys, "experiment", "ingest", str(b))[0] == 0
    assert _counts(state) == (4, 4) and len(_ledger(state)) == 2


def test_an_input_that_wrote_nothing_is_not_recorded(state, capsys):
    path = state / "bad.jsonl"
    path.write_text('{"test": "nope", "user": "u1"}\nnot json\n')
    for _ in range(2):  # the same unusable lines reported again, not "already ingested"
        code, _, err = run_cli(capsys, "experiment", "ingest", str(path))
        assert code == 1 and "bad.jsonl:2" in err and "already ingested" not in err
    assert _ledger(state) == {}


def test_a_partly_unusable_input_is_recorded_its_corrected_lines_are_new(state, capsys):
    path = state / "batch.jsonl"
    path.write_text(_events(2) + "not json\n")
    assert run_cli(capsys, "experiment", "ingest", str(path))[0] == 1  # line 5 skipped
    # Refused by its content: nothing to do (3).
    assert run_cli(capsys, "experiment", "ingest", str(path))[0] == 3
    assert _counts(state) == (2, 2)
    fixed = state / "fixed.jsonl"
    fixed.write_text(_events(1, "late"))
    assert run_cli(capsys, "experiment", "ingest", str(fixed))[0] == 0
    assert _counts(state) == (3, 3)


def test_a_write_that_fails_records_nothing_and_running_again_is_right(state, capsys):
    path = state / "batch.jsonl"
    path.write_text(_events(3))
    metrics = state / "state" / "flags.metrics.jsonl"
    metrics.mkdir()  # the metric log cannot be opened: neither log is written
    code, _, err = run_cli(capsys, "experiment", "ingest", str(path))
    assert code == 1 and "nothing was ingested" in err
    assert _ledger(state) == {}
    exposures = state / "state" / "flags.exposures.jsonl"
    assert not exposures.exists() or exposures.read_bytes() == b""
    metrics.rmdir()
    assert run_cli(capsys, "experiment", "ingest", str(path))[0] == 0
    assert _counts(state) == (3, 3)


_CRASH_BEFORE_COMMIT = textwrap.dedent(
    """
    import os, sys
    real = os.unlink
    def unlink(path, *a, **k):
        if str(path).endswith(".ingest-journal.json"):  # the commit: die just before it
            os._exit(9)
        return real(path, *a, **k)
    os.unlink = unlink
    from cfgcore.cli import main
    sys.exit(main(sys.argv[1:]))
    """
)


def _cli(*argv: str, crash: bool = False) -> subprocess.CompletedProcess[str]:
    code = _CRASH_BEFORE_COMMIT if crash else "import sys; from cfgcore.cli import main; "
    code += "" if crash else "sys.exit(main(sys.argv[1:]))"
    env = {**os.environ, "PYTHONPATH": SRC}
    return subprocess.run([sys.executable, "-c", code, *argv], env=env, capture_output=True,
                          text=True, timeout=120)  # fmt: skip


@pytest.mark.parametrize("again", [False, True])
def test_a_crash_before_the_commit_takes_back_the_events_and_the_record(state, again):
    path = state / "batch.jsonl"
    path.write_text(_events(4))
    if again:
        assert _cli("experiment", "ingest", str(path)).returncode == 0
    before_counts, before_ledger = _counts(state), _ledger(state)
    flags = ["--again"] if again else []
    crashed = _cli("experiment", "ingest", *flags, str(path), crash=True)
    assert crashed.returncode == 9
    journal = state / "state" / "flags.ingest-journal.json"
    assert journal.exists()
    # Killed after the events and the record were written, before the commit: both are
    # taken back by the next ingest, which then ingests the file once (not refused as
    # ingested, nor counted twice).
    assert _counts(state) == (before_counts[0] + 4, before_counts[1] + 4)
    done = _cli("experiment", "ingest", *flags, str(path))
    assert done.returncode == 0, done.stderr
    assert "an earlier ingest did not finish" in done.stderr
    assert not journal.exists()
    assert _counts(state) == (before_counts[0] + 4, before_counts[1] + 4)
    [entry] = _ledger(state).values()
    assert entry.get("times", 1) == (2 if again else 1)
    if again:
        assert before_ledger  # (the first ingest's entry, put back then replaced)


def test_two_ingests_of_one_file_at_once_write_it_once(state):
    path = state / "batch.jsonl"
    path.write_text(_events(200))
    env = {**os.environ, "PYTHONPATH": SRC}
    argv = [sys.executable, "-m", "cfgcore", "experiment", "ingest", str(path)]
    procs = [subprocess.Popen(argv, env=env, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(p.communicate(timeout=120)[1], p.returncode)[::-1] for p in procs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 3], results
    assert "already ingested" in next(err for code, err in results if code == 3)
    assert _counts(state) == (200, 200)


def test_a_recovery_waiting_on_a_live_ingest_leaves_its_events(tmp_path, monkeypatch):
    """A report (or ingest) reading the journal of an ingest still writing, then
    waiting for the logs' locks, took back that ingest's events after it had
    committed: the journal is read again under the locks."""
    import cfgcore.experiments.exposures as exposures

    exposure_log = JsonLinesSink(tmp_path / "x.exposures.jsonl")
    metric_log = JsonLinesSink(tmp_path / "x.metrics.jsonl")
    journal = str(tmp_path / "x.ingest-journal.json")
    writing, go_on, waiting = threading.Event(), threading.Event(), threading.Event()
    real_fsync, writer = os.fsync, threading.current_thread()

    def fsync(fd):  # the writer stops once its journal is in place, before the commit
        ingesting = threading.current_thread() is not writer
        if ingesting and os.path.exists(journal) and not writing.is_set():
            writing.set()
            assert go_on.wait(30)
        return real_fsync(fd)

    class SignallingLock(exposures.FileLock):
        def acquire(self):
            if threading.current_thread().name == "recover":
                waiting.set()
            super().acquire()

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(exposures, "FileLock", SignallingLock)
    parts = [(exposure_log, b'{"a": 1}\n'), (metric_log, b'{"b": 2}\n')]
    ingest = threading.Thread(target=append_together, args=(parts, journal))
    ingest.start()
    assert writing.wait(30)
    assert os.path.exists(journal)
    found: list[bool] = []
    recover = threading.Thread(target=lambda: found.append(recover_appends(journal)),
                               name="recover")  # fmt: skip
    recover.start()
    assert waiting.wait(30)  # it has read the journal and waits for the locks
    go_on.set()
    ingest.join(30)
    recover.join(30)
    assert found == [False]
    assert (tmp_path / "x.exposures.jsonl").read_bytes() == b'{"a": 1}\n'
    assert (tmp_path / "x.metrics.jsonl").read_bytes() == b'{"b": 2}\n'


@settings(max_examples=examples(50), deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=20), st.booleans())
def test_the_fingerprint_is_of_every_byte_read(pieces, newline_at_end):
    data = b"\n".join(pieces) + (b"\n" if newline_at_end else b"")
    fingerprint = Fingerprint()
    list(bounded_lines(HashingReader(io.BytesIO(data), fingerprint)))
    assert fingerprint.key == f"sha256:{hashlib.sha256(data).hexdigest()}:{len(data)}"
    assert fingerprint.key == Fingerprint.of_file(io.BytesIO(data)).key


# -- what the refusal says ingesting the same content again would do --------------------


def _with_ids(n: int, tag: str = "u") -> str:
    lines = []
    for i in range(n):
        lines.append({"test": "t", "user": f"{tag}{i}", "variant": "b"})
        metric = {"test": "t", "user": f"{tag}{i}", "metric": "ctr", "value": i}
        lines.append({**metric, "event_id": f"{tag}-e{i}"})
    return "".join(json.dumps(r) + "\n" for r in lines)


def _refusal(state, capsys, text: str) -> str:
    path = state / "batch.jsonl"
    path.write_text(text)
    assert run_cli(capsys, "experiment", "ingest", str(path))[0] == 0
    code, _, err = run_cli(capsys, "experiment", "ingest", str(path))
    assert code == 3
    return err


def test_a_refused_file_whose_metric_events_all_have_ids_says_nothing_would_double(state, capsys):
    # Every metric event has an event_id: ingested again, each is left out by it, so
    # the refusal said something that could not happen ("would count its events
    # without an event_id twice").
    err = _refusal(state, capsys, _with_ids(3))
    assert "all its 3 metric event(s) have an event_id" in err
    assert "would count nothing twice" in err
    assert "without an event_id twice" not in err
    [entry] = _ledger(state).values()
    assert (entry["metrics_with_event_id"], entry["metrics_without_event_id"]) == (3, 0)
    # What it says is so: ingested anyway, no metric event is written again (the
    # exposures are, which a report counts once a user).
    code, _, err = run_cli(capsys, "experiment", "ingest", "--again", str(state / "batch.jsonl"))
    assert code == 0 and "0 metric event(s) into" in err
    assert "3 metric event(s) already ingested" in err
    assert _counts(state) == (6, 3)


def test_a_refused_file_without_ids_says_how_many_would_count_twice(state, capsys):
    err = _refusal(state, capsys, _events(4))
    assert "would count its 4 metric event(s) without an event_id twice" in err
    assert "left out by their id" not in err


def test_a_refused_mixed_file_says_which_would_count_twice(state, capsys):
    err = _refusal(state, capsys, _events(2, "x") + _with_ids(3, "y"))
    assert (
        "would count its 2 metric event(s) without an event_id twice "
        "(its 3 with one would be left out by their id)"
    ) in err
    # So it does: ingested anyway, only the two without ids are written again.
    code, _, err = run_cli(capsys, "experiment", "ingest", "--again", str(state / "batch.jsonl"))
    assert code == 0 and "2 metric event(s) into" in err
    assert _counts(state) == (10, 7)


def test_a_refused_file_of_exposures_only_says_nothing_would_double(state, capsys):
    lines = [{"test": "t", "user": f"u{i}", "variant": "b"} for i in range(3)]
    err = _refusal(state, capsys, "".join(json.dumps(r) + "\n" for r in lines))
    assert "it holds no metric events, only exposures" in err
    assert "would count nothing twice" in err


def test_an_entry_of_an_earlier_release_is_refused_in_general_words(state, capsys):
    path = state / "batch.jsonl"
    path.write_text(_with_ids(2))
    assert run_cli(capsys, "experiment", "ingest", str(path))[0] == 0
    ledger = state / "state" / "flags.ingested.json"
    data = json.loads(ledger.read_text())
    for entry in data["inputs"].values():  # as an earlier release wrote it
        del entry["metrics_with_event_id"], entry["metrics_without_event_id"]
    ledger.write_text(json.dumps(data))
    code, _, err = run_cli(capsys, "experiment", "ingest", str(path))
    assert code == 3
    assert "would count twice any of its metric events without an event_id" in err
    assert "those with one are left out by their id" in err


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=4,
)
_counts_or_junk = st.integers(0, 10**6) | _json


@settings(max_examples=examples(200), deadline=None)
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "at": _json,
            "file": _json,
            "exposures": _counts_or_junk,
            "metrics": _counts_or_junk,
            "times": _counts_or_junk,
            "metrics_with_event_id": _counts_or_junk,
            "metrics_without_event_id": _counts_or_junk,
        },
    )
)
def test_the_refusal_of_any_ledger_entry_says_what_it_knows(entry):
    # A ledger edited by hand (or written by an earlier release) holds anything: the
    # message never raises, and claims a count only where the entry gives one.
    from cfgcore.experiments.ingested import already_message

    message = already_message("in.jsonl", entry)
    assert message.startswith("in.jsonl: already ingested at ") and "--again" in message
    with_ids = entry.get("metrics_with_event_id")
    without = entry.get("metrics_without_event_id")
    exact = all(type(n) is int and n >= 0 for n in (with_ids, without))
    if not exact:
        assert "any of its metric events without an event_id" in message
    elif without:
        assert f"its {without} metric event(s) without an event_id twice" in message
        assert (f"its {with_ids} with one" in message) == (with_ids > 0)
    else:
        assert "would count nothing twice" in message
        assert "without an event_id twice" not in message
