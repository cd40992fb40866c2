"""Guardrail checks never read a dead ingest's half.

``cfgcore experiment ingest`` appends to both shared logs under a journal; a crash
mid-way leaves the journal and part of the appends in the logs. Reports took it back
before reading (``MetricsStore.load(journal=)``), but the guardrails' reader of the
shared logs cut them without the journal: a service counted the dead half (and could
roll a test back on it), and once a report or the next ingest took it back (the log
rewritten without it) the reader took the rewritten file for one rotated out of the
backups and read every file again, counting everything twice. The reader now takes a
dead ingest back itself, or, where it cannot, reads only up to it; and a followed file
rewritten with what was read kept is read on from where the reader was.

Real files, a real ingest killed mid-append in a subprocess, real managers; the
service that cannot take the ingest back runs as another user (root only).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import msgspec
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from cfgcore.dynamic_config import DynamicConfigurationManager
from cfgcore.engine import engine_class
from cfgcore.experiments.exposures import (
    ExposureRecord,
    JsonLinesSink,
    LogTail,
    _Append,
    _Journal,
    cut_logs,
    recover_appends,
)
from cfgcore.experiments.guardrails import SharedLogs
from cfgcore.experiments.metrics import MetricsStore
from tests.fuzz import examples
from tests.test_experiments import NOW, Clock, seed_test

SRC = os.path.dirname(os.path.dirname(os.path.abspath(__import__("cfgcore").__file__)))
TEST = "recommendation_algorithm_v2"
METRIC = "playback_errors"

# The ingest as `cfgcore experiment ingest` runs it, killed once its journal is in
# place and the first log's append is written, half-way through the second's.
_CRASH_MID_APPEND = textwrap.dedent(
    """
    import os, sys
    journal = os.path.join(os.environ["CFGCORE_STATE_DIR"], "flags.ingest-journal.json")
    real, writes = os.write, []
    def write(fd, data):
        if os.path.exists(journal):
            writes.append(fd)
            if len(writes) == 2:
                real(fd, bytes(data[: len(data) // 2]))
                os._exit(9)
        return real(fd, data)
    os.write = write
    from cfgcore.cli import main
    sys.exit(main(sys.argv[1:]))
    """
)


def _ingest(state, path, *, crash: bool = False) -> subprocess.CompletedProcess[str]:
    code = _CRASH_MID_APPEND if crash else "import sys; from cfgcore.cli import main; "
    code += "" if crash else "sys.exit(main(sys.argv[1:]))"
    env = {**os.environ, "PYTHONPATH": SRC, "CFGCORE_STATE_DIR": str(state)}
    env.pop("CFGCORE_FLAG_STORE", None)
    return subprocess.run(
        [sys.executable, "-c", code, "experiment", "ingest", str(path)],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def _harmful_batch(path, users: int) -> None:
    """Exposures and playback errors of ``users`` users of variant_a: a check that
    counted them would roll the test back."""
    lines = []
    for i in range(users):
        lines.append({"test": TEST, "user": f"ingested-{i}", "variant": "variant_a"})
        lines.append({"test": TEST, "user": f"ingested-{i}", "variant": "variant_a",
                      "metric": METRIC, "value": 1.0})  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))


def _service(state, impl) -> DynamicConfigurationManager:
    m = DynamicConfigurationManager(
        state_dir=state, engine=engine_class(impl)(), clock=Clock(NOW),
        guardrail_check_every=10**9, guardrail_min_samples=20,  # checked by hand
    )  # fmt: skip
    return m


def _healthy(m: DynamicConfigurationManager, users: int) -> None:
    for i in range(users):
        user = f"user-{i}"
        m.get_ab_test_variant(TEST, {"user_id": user})
        assert m.record_metric(TEST, METRIC, 0.0, user_id=user)
    m.metrics.flush()
    m.exposures.flush()


def _exposed(m: DynamicConfigurationManager) -> int:
    return sum(m.analyze(TEST).exposures.values())


def _events(m: DynamicConfigurationManager) -> int:
    store = m.guardrails.shared_store(frozenset({TEST}))
    return sum(store.event_count(TEST, v, METRIC) for v in ("control", "variant_a", "variant_b"))


def test_a_check_takes_a_dead_ingest_back_and_counts_none_of_it(tmp_path, impl, caplog):
    """The crashed ingest's exposures are all in the log and half its playback errors:
    counted, they rolled the test back. The check takes the ingest back first (the
    journal gone, the logs as before it), counts only the service's own users, and the
    ingest run again is counted once, by the same service's next check."""
    state = tmp_path / "state"
    m = _service(state, impl)
    try:
        assert m.create_ab_test(seed_test(TEST, guardrail_metrics={METRIC: "lower_is_better"}))
        _healthy(m, 150)
        assert m.check_guardrails(TEST) == []  # (read once before the crash, too)
        logs = {k: (state / f"flags.{k}.jsonl").read_bytes() for k in ("exposures", "metrics")}
        batch = tmp_path / "batch.jsonl"
        _harmful_batch(batch, 200)
        crashed = _ingest(state, batch, crash=True)
        assert crashed.returncode == 9, crashed.stderr
        journal = state / "flags.ingest-journal.json"
        assert journal.exists()
        grown = [k for k in logs if (state / f"flags.{k}.jsonl").stat().st_size > len(logs[k])]
        assert len(grown) == 2  # one log's append whole, the other's half

        with caplog.at_level(logging.WARNING):
            assert m.check_guardrails(TEST) == []
        assert m.list_ab_tests()[TEST]["status"] == "active"
        assert not journal.exists()
        assert {k: (state / f"flags.{k}.jsonl").read_bytes() for k in logs} == logs
        assert "took back an unfinished ingest" in caplog.text
        assert _exposed(m) == 150

        done = _ingest(state, batch)
        assert done.returncode == 0, done.stderr
        assert _exposed(m) == 350  # once each: no file read twice
        found = m.check_guardrails(TEST)
        assert len(found) == 1 and f"{METRIC} worse in variant_a" in found[0]
    finally:
        m.close()


def test_a_reader_taken_back_under_by_another_process_reads_on_once(tmp_path, impl):
    """The service read the logs before the ingest crashed; a report (another process)
    takes the ingest back, rewriting the logs: the service's next check reads on from
    where it was, each record once (it read every file again, all counted twice)."""
    state = tmp_path / "state"
    m = _service(state, impl)
    try:
        assert m.create_ab_test(seed_test(TEST, guardrail_metrics={METRIC: "lower_is_better"}))
        _healthy(m, 120)
        assert _exposed(m) == 120 and _events(m) == 120
        batch = tmp_path / "batch.jsonl"
        _harmful_batch(batch, 100)
        assert _ingest(state, batch, crash=True).returncode == 9
        MetricsStore.load(
            state / "flags.metrics.jsonl", state / "flags.exposures.jsonl",
            journal=state / "flags.ingest-journal.json",
        )  # fmt: skip
        assert not (state / "flags.ingest-journal.json").exists()
        _healthy(m, 130)  # users 0..119 again (deduplicated) and 10 new ones
        assert _exposed(m) == 130
        assert _events(m) == 120 + 130
        shared = m.guardrails._shared
        assert shared is not None and shared.metrics.gaps == shared.exposures.gaps == 0
    finally:
        m.close()


def _line(user: str, variant: str = "b") -> bytes:
    return msgspec.json.encode({"test": "t", "variant": variant, "user": user, "ts": 1.0}) + b"\n"


@settings(max_examples=examples(60), deadline=None)
@given(
    before=st.integers(0, 12),
    dead=st.integers(1, 6),
    written=st.floats(0.0, 1.0),
    after=st.lists(st.integers(1, 4), max_size=6),
    reads=st.lists(st.booleans(), min_size=8, max_size=8),
    max_bytes=st.sampled_from([150, 400, 10_000]),
)
# The crash stopped at the end of a planned line, and the next writer's record began
# as the next planned line does: the take-back found "none of the plan" there.
@example(before=0, dead=2, written=0.5, after=[1], reads=[True] * 8, max_bytes=150)
# The plan's offset is the newline of another record in a rotated-after file.
@example(before=1, dead=1, written=0.0, after=[1, 4, 4, 1, 1], reads=[False] * 8, max_bytes=150)
def test_a_tail_never_reads_a_dead_append_and_reads_each_record_once(
    tmp_path_factory, before, dead, written, after, reads, max_bytes
):
    """A rotating log; an ingest dies with ``written`` of its append in it (the plan
    made as ``append_together`` makes it); other writers append (and rotate) after it;
    a reader cuts before it at any of these points, and reads on after the take-back:
    it reads every record the log holds once, in order, and none of the dead ones."""
    from cfgcore.experiments.exposures import cut_logs_before

    d = tmp_path_factory.mktemp("log")
    path, journal = d / "x.exposures.jsonl", str(d / "x.ingest-journal.json")
    sink = JsonLinesSink(path, max_bytes=max_bytes, backups=20)
    tail = LogTail(path, ExposureRecord)
    got: list[str] = []
    turn = iter(reads)

    def maybe_read() -> None:
        if next(turn, False):
            cut_logs_before([tail], journal)
            tail.read(lambda rs: got.extend(r.user for r in rs))

    try:
        for i in range(before):
            sink.write([{"test": "t", "variant": "b", "user": f"k{i}", "ts": 1.0}])
        maybe_read()
        data = b"".join(_line(f"dead{i}", "control") for i in range(dead))
        with sink.locked():  # what append_together does, killed part-way
            fd = sink.open_for_append(len(data))
            try:
                start = os.fstat(fd).st_size
                plan = _Journal([_Append(str(path), start, data.decode())])
                with open(journal, "wb") as fh:
                    fh.write(msgspec.json.encode(plan))
                os.write(fd, data[: int(len(data) * written)])
            finally:
                os.close(fd)
        maybe_read()
        n = before
        for k in after:
            sink.write([{"test": "t", "variant": "b", "user": f"k{n + j}", "ts": 1.0}
                        for j in range(k)])  # fmt: skip
            n += k
            maybe_read()
        assert recover_appends(journal)
        maybe_read()
        sink.write([{"test": "t", "variant": "b", "user": f"k{n}", "ts": 1.0}])
        cut_logs([tail], journal)
        tail.read(lambda rs: got.extend(r.user for r in rs))
    finally:
        tail.close()
    assert got == [f"k{i}" for i in range(n + 1)]
    assert tail.gaps == 0


def test_a_view_whose_file_was_rewritten_before_it_read_any_of_it_reads_afresh(tmp_path):
    """The view follows an empty current file (rotated, then a write failed: a full
    disk); an ingest dies with its first records at the file's start, and a report
    takes it back (the file rewritten). Nothing of the rewritten file was read, so
    nothing tells where in the log it is: the view reads the logs again from the
    start, each record once (it read every rotated file again on top of what it had)."""
    metrics, exposures = tmp_path / "flags.metrics.jsonl", tmp_path / "flags.exposures.jsonl"
    journal = tmp_path / "flags.ingest-journal.json"
    sink = JsonLinesSink(exposures, max_bytes=200)

    def record(i: int) -> dict:
        return {"test": "t", "variant": "b", "user": f"u{i}", "ts": 1.0}

    for i in range(6):
        sink.write([record(i)])
    with sink.locked():
        os.close(sink.open_for_append(1000))  # rotated; the write that followed failed
    assert exposures.stat().st_size == 0 and len(sink.files()) == 3
    logs = SharedLogs(str(metrics), str(exposures))
    try:
        assert logs.refresh(frozenset({"t"})).exposures("t") == {"b": 6}
        dead = _line("x1", "control") + _line("x2", "control")
        plan = [_Append(str(exposures), 0, dead.decode())]
        journal.write_bytes(msgspec.json.encode(_Journal(plan)))
        with open(exposures, "ab") as fh:
            fh.write(dead[:70])
        MetricsStore.load(metrics, exposures, journal=journal)  # another process's report
        assert not journal.exists() and exposures.stat().st_size == 0
        sink.write([record(6)])
        store = logs.refresh(frozenset({"t"}))
        assert store.exposures("t") == {"b": 7} and store.skipped.count == 0
    finally:
        logs.close()


def test_an_unusable_journal_holds_the_checks_without_raising_and_warns_once(tmp_path, caplog):
    """A journal nothing can be made of (damaged): which part of the logs is the dead
    ingest's is unknown, so the view reads nothing new (what it had is judged), raises
    nothing, and says so once, naming the file."""
    metrics, exposures = tmp_path / "flags.metrics.jsonl", tmp_path / "flags.exposures.jsonl"
    journal = tmp_path / "flags.ingest-journal.json"
    JsonLinesSink(exposures).write([{"test": "t", "variant": "b", "user": "u1", "ts": 1.0}])
    logs = SharedLogs(str(metrics), str(exposures))
    try:
        assert logs.refresh(frozenset({"t"})).exposures("t") == {"b": 1}
        journal.write_bytes(b'{"appends": [{"path"')  # cut short
        JsonLinesSink(exposures).write([{"test": "t", "variant": "b", "user": "u2", "ts": 1.0}])
        with caplog.at_level(logging.WARNING):
            for _ in range(3):
                assert logs.refresh(frozenset({"t"})).exposures("t") == {"b": 1}
                assert logs.catch_up(frozenset({"t"}), 1 << 20)
        said = [r for r in caplog.records if str(journal) in r.getMessage()]
        assert len(said) == 1 and "read nothing new" in said[0].getMessage()
        journal.unlink()  # (put right by hand)
        assert logs.refresh(frozenset({"t"})).exposures("t") == {"b": 2}
    finally:
        logs.close()


_AS_ANOTHER_USER = textwrap.dedent(
    """
    import json, logging, os, sys
    # Everything imported first: the interpreter's files may be root's only.
    import cfgcore.experiments.dynamic
    from cfgcore.experiments.guardrails import SharedLogs
    os.setgid(65534)
    os.setuid(65534)
    said = []
    class Keep(logging.Handler):
        def emit(self, record):
            said.append(record.getMessage())
    logging.getLogger("cfgcore").addHandler(Keep())
    logging.getLogger("cfgcore").setLevel(logging.WARNING)
    state = sys.argv[1]
    logs = SharedLogs(state + "/flags.metrics.jsonl", state + "/flags.exposures.jsonl")
    out = []
    for _ in range(3):
        store = logs.refresh(frozenset({"t"}))
        out.append([store.exposures("t"), store.event_count("t", "b", "buy"),
                    store.users("t", "control")])
    logs.close()
    print(json.dumps({"reads": out, "said": said}))
    """
)


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0, reason="running as another user needs root"
)
def test_a_service_that_cannot_take_it_back_reads_up_to_it_and_warns_once():
    """The state directory is root's (the logs group-writable for the service, as an
    operator may set them): the service cannot rewrite a log, so it cannot take the
    dead ingest back. Its checks read up to the ingest's appends (none of them, but
    what came before), raise nothing, and one WARNING names the journal."""
    with tempfile.TemporaryDirectory() as top:  # (pytest's are root's only)
        os.chmod(top, 0o755)
        _cannot_take_back(Path(top) / "state")


def _cannot_take_back(state: Path) -> None:
    state.mkdir()
    exposures, metrics = state / "flags.exposures.jsonl", state / "flags.metrics.jsonl"
    journal = state / "flags.ingest-journal.json"
    kept_e = _line("u1") + _line("u2")
    kept_m = msgspec.json.encode(
        {"test": "t", "variant": "b", "user": "u1", "metric": "buy", "value": 1.0, "ts": 1.0}
    ) + b"\n"  # fmt: skip
    exposures.write_bytes(kept_e)
    metrics.write_bytes(kept_m)
    dead_e = _line("x1", "control") + _line("x2", "control")
    dead_m = msgspec.json.encode(
        {"test": "t", "variant": "control", "user": "x1", "metric": "buy", "value": 1.0, "ts": 1.0}
    ) + b"\n"  # fmt: skip
    plan = [
        _Append(str(exposures), len(kept_e), dead_e.decode()),
        _Append(str(metrics), len(kept_m), dead_m.decode()),
    ]
    journal.write_bytes(msgspec.json.encode(_Journal(plan)))
    with open(exposures, "ab") as fh:  # what the crash left: the exposures, half
        fh.write(dead_e[:60])
    # Another writer since: a line after the dead half (its newline first, as
    # append_whole puts it), read once the ingest is taken back.
    JsonLinesSink(exposures).write([{"test": "t", "variant": "b", "user": "u3", "ts": 1.0}])
    with JsonLinesSink(metrics).locked():  # (its lock file, as a writer makes it)
        pass
    for p in state.iterdir():
        p.chmod(0o666)
    state.chmod(0o755)  # root's, not writable by the service
    before = {p.name: p.read_bytes() for p in state.iterdir()}
    env = {**os.environ, "PYTHONPATH": SRC}
    run = subprocess.run([sys.executable, "-c", _AS_ANOTHER_USER, str(state)], env=env,
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["reads"] == [[{"b": 2}, 1, 0]] * 3
    said = [s for s in result["said"] if str(journal) in s]
    assert len(said) == 1 and "only up to its appends" in said[0]
    assert {p.name: p.read_bytes() for p in state.iterdir()} == before  # nothing changed
    # Taken back by one who can (a report): read on from there, u3 included.
    store = MetricsStore.load(metrics, exposures, journal=journal)
    assert store.exposures("t") == {"b": 3} and store.users("t", "control") == 0
