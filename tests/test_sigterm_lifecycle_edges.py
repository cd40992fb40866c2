"""Signals at the edges of a process's life, with cfgcore's writers recording: SIGINT
while a service serves and while its exit hooks write, SIGTERM during a hot reload,
while other exit functions run and while a process pool shuts down or starts.

What these found: a Ctrl-C as a script ended stopped cfgcore's exit hooks in the middle
of a flush (a KeyboardInterrupt between two bytecodes of the waiting main thread):
every record the writers still held was lost, neither written nor counted, with a
traceback from cfgcore (30 runs of 30 lost tens of thousands of exposures). And a
child forked after its parent took SIGTERM (a ``ProcessPoolExecutor`` starting its
workers as the signal came) received no SIGTERM of its own: the parent ended once its
flush was done, and the workers waited for work forever (3 runs of 118 with SIGTERM
sent to the process group at random moments; every time here).

Each test runs a real process (real signals, real files) under a subprocess timeout, so
a hang fails it."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap

import pytest

import cfgcore
from cfgcore.config.manager import default_config_dir
from cfgcore.experiments.exposures import MetricRecord, read_exposures, read_log
from cfgcore.runtime.audit import verify
from tests.ab_service import AB_MANAGER

SRC = os.path.dirname(os.path.dirname(os.path.abspath(cfgcore.__file__)))

pytestmark = pytest.mark.skipif(
    os.name != "posix" or not hasattr(os, "fork"), reason="POSIX signals and fork"
)


def _run(
    code: str, *args: object, timeout: float = 60, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a process group of its own; whatever of it is left at the end
    (a child that hangs, once its parent has ended) is killed.

    The process starts with Python's own SIGINT handling, as one started from a
    terminal: a process started with SIGINT ignored (a shell's background job, as a CI
    runner may start the suite) keeps it ignored, and then no SIGINT reaches Python."""
    code = "import signal; signal.signal(signal.SIGINT, signal.default_int_handler)\n" + code
    with subprocess.Popen(
        [sys.executable, "-c", code, *map(str, args)],
        env={**os.environ, "PYTHONPATH": SRC, "CFGCORE_SIGTERM_FLUSH": "1", **env},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    ) as proc:  # fmt: skip
        try:  # (the with closes the pipes on a timeout too)
            # Ends at EOF on its pipes: once no process of the group holds them.
            out, err = proc.communicate(timeout=timeout)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # (the group this test started)
            proc.wait()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _lines(path: os.PathLike[str] | str) -> list[dict[str, object]]:
    """Every line of a JSON-lines file, each whole (a torn line fails here)."""
    with open(path, "rb") as f:
        data = f.read()
    assert data.endswith(b"\n") or not data, data[-200:]
    return [json.loads(line) for line in data.splitlines()]


# A sink that writes slowly (a backlog is left for the exit hooks) and, the first time
# it writes while the interpreter exits, sends its process SIGINT: the main thread is in
# cfgcore's exit hooks then, waiting for this very flush.
_SLOW_SINK = """
import os, signal, sys, threading, time
from cfgcore.experiments.exposures import ExposureLogger, JsonLinesSink
from cfgcore.runtime import forks

class Sink(JsonLinesSink):
    signals = int(os.environ.get("SIGNALS", "1"))
    def write(self, batch):
        time.sleep(0.005)
        super().write(batch)
        if not threading.main_thread().is_alive() and Sink.signals:
            if Sink.signals == 1 or forks.sigint_at_exit.seen == 0:
                Sink.signals -= 1
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.05)  # (handled by then, on the main thread)
"""


def test_sigint_while_the_exit_hooks_write_loses_nothing(tmp_path):
    code = textwrap.dedent(_SLOW_SINK) + textwrap.dedent("""
        loggers = [ExposureLogger(sinks=[Sink(os.path.join(sys.argv[1], n + ".jsonl"))])
                   for n in ("a", "b")]
        for i in range(1500):
            for logger in loggers:
                logger.log("t", "a", f"u{i}")
        assert not any(logger.dropped for logger in loggers)
        """)  # fmt: skip
    proc = _run(code, tmp_path)
    # As Python ends a script whose exit functions took a KeyboardInterrupt; but no
    # traceback, and every record written (before: the flush stopped half way).
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    assert "SIGINT while cfgcore writes" in proc.stderr
    for name in ("a", "b"):
        users = [line["user"] for line in _lines(tmp_path / f"{name}.jsonl")]
        assert sorted(users) == sorted(f"u{i}" for i in range(1500)), name


def test_a_second_sigint_at_exit_ends_the_process_at_once(tmp_path):
    code = textwrap.dedent(_SLOW_SINK) + textwrap.dedent("""
        logger = ExposureLogger(sinks=[Sink(os.path.join(sys.argv[1], "a.jsonl"))])
        for i in range(3000):
            logger.log("t", "a", f"u{i}")
        """)  # fmt: skip
    proc = _run(code, tmp_path, SIGNALS="2")
    # The user insists: the default action of SIGINT, whatever is left unwritten.
    assert proc.returncode == -signal.SIGINT, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    _lines(tmp_path / "a.jsonl")  # whole lines only


def test_sigint_while_a_manager_is_closed_at_exit(tmp_path):
    # The manager's own finalizer closes its exposure log at exit (before or after the
    # exit hooks): a Ctrl-C there printed a traceback from cfgcore's writer.
    code = (
        textwrap.dedent(_SLOW_SINK)
        + "SINK = Sink(os.path.join(sys.argv[2], 'x.jsonl'))\n"
        + AB_MANAGER.replace("record_usage=False", "record_usage=False, exposure_sinks=[SINK]")
        + textwrap.dedent("""
        for i in range(600):
            m.get_ab_test_variant("t", {"user_id": f"u{i}"})
            m.record_metric("t", "m", 1.0, user_id=f"u{i}")
        assert not m.exposures.dropped and not m.metrics.dropped
        """)
    )  # fmt: skip
    state, extra = tmp_path / "state", tmp_path / "extra"
    extra.mkdir()
    proc = _run(code, state, extra)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    users = {f"u{i}" for i in range(600)}
    assert {e.user for e in read_exposures(state / "flags.exposures.jsonl")} == users
    assert {r.user for r in read_log(state / "flags.metrics.jsonl", MetricRecord)} == users
    assert {line["user"] for line in _lines(extra / "x.jsonl")} == users


@pytest.mark.parametrize("serving", ["main", "thread"])
def test_sigint_while_serving_is_pythons_keyboardinterrupt(tmp_path, serving):
    # A service serves A/B variants and records metrics, on its main thread or on a
    # thread of its own (the main one waiting); SIGINT comes at whatever bytecode the
    # main thread is at. Python ends such a script by SIGINT after the traceback of the
    # KeyboardInterrupt (a status of 1 came only from a SIGINT that reached the
    # interpreter while it started, before any script ran: "Fatal Python error").
    code = (
        "import os, signal, sys, threading\n"
        + AB_MANAGER
        + textwrap.dedent("""
        started = threading.Event()
        def interrupt():
            started.wait()
            os.kill(os.getpid(), signal.SIGINT)
        threading.Thread(target=interrupt, daemon=True).start()
        def serve():
            for i in range(10**9):
                dropped = m.exposures.dropped, m.metrics.dropped
                m.get_ab_test_variant("t", {"user_id": f"u{i}"})
                m.record_metric("t", "m", 1.0, user_id=f"u{i}")
                if (m.exposures.dropped, m.metrics.dropped) == dropped:
                    print(i, flush=True)
                if i == 300:
                    started.set()
        if sys.argv[2] == "main":
            serve()
        threading.Thread(target=serve, daemon=True).start()
        threading.Event().wait()
        """)
    )  # fmt: skip
    proc = _run(code, tmp_path, serving)
    assert proc.returncode == -signal.SIGINT, proc.stderr
    lines = proc.stderr.splitlines()
    assert proc.stderr.count("Traceback") == 1, proc.stderr
    assert "KeyboardInterrupt" in lines, proc.stderr
    # After the traceback, only what the exit hooks say of records a serving thread
    # went on making: refused once the writers were closed, or (a loaded machine) not
    # written in time, each counted. Not advice about a full backlog.
    after = lines[lines.index("KeyboardInterrupt") + 1 :]
    said = re.compile(
        r"cfgcore-\w+: (\d+ records dropped \(\d+ in all\): recorded after the writer was "
        r"closed|\d+ records not written at exit|closed with \d+ records not yet written)"
    )
    assert all(said.match(line) for line in after), proc.stderr
    counted = sum(int(n) for n in re.findall(r"(\d+) records not written at exit", proc.stderr))
    accepted = {f"u{line}" for line in proc.stdout.split()}
    assert len(accepted) > 300
    exposed = [e.user for e in read_exposures(tmp_path / "flags.exposures.jsonl")]
    events = [r.user for r in read_log(tmp_path / "flags.metrics.jsonl", MetricRecord)]
    assert len(accepted - set(exposed)) <= counted and len(accepted - set(events)) <= counted
    assert len(exposed) == len(set(exposed)) and len(events) == len(set(events))


def test_sigint_while_a_forked_child_repairs_itself(tmp_path):
    # A Ctrl-C to the process group as a child is forked reaches it during cfgcore's
    # repairs (milliseconds of Python code). Raised there, the KeyboardInterrupt was
    # dropped by CPython (an at-fork hook's exception) after stopping the repairs half
    # way: here the writer's, registered after the hook that stands for the Ctrl-C.
    code = textwrap.dedent("""
        import os, signal, sys, time
        from cfgcore.runtime import forks

        def ctrl_c():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.01)  # (handled meanwhile)

        forks.after_fork_in_child(ctrl_c)
        from cfgcore.experiments.exposures import ExposureLogger, JsonLinesSink
        logger = ExposureLogger(sinks=[JsonLinesSink(sys.argv[1])])
        for i in range(100):
            logger.log("t", "a", f"p{i}")
        pid = os.fork()
        if pid == 0:
            code = 4
            try:
                for i in range(100):
                    logger.log("t", "a", f"c{i}")
                code = 0 if logger.flush(10) else 3
            except KeyboardInterrupt:
                code = 2
            finally:
                os._exit(code)
        print(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), flush=True)
        """)  # fmt: skip
    log = tmp_path / "e.jsonl"
    proc = _run(code, log)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["0"], proc.stderr  # the child's code ran as usual
    assert "Traceback" not in proc.stderr, proc.stderr
    assert "set itself up after a fork" in proc.stderr  # (said, not raised)
    users = [line["user"] for line in _lines(log)]
    assert sorted(users) == sorted([f"p{i}" for i in range(100)] + [f"c{i}" for i in range(100)])


def test_sigint_as_a_process_forks_is_raised_where_fork_returns(tmp_path):
    # The Ctrl-C reaches the parent while the fork's hooks run (here: a hook registered
    # before cfgcore was loaded, which runs after cfgcore's before-fork hook; or the
    # logging module's). Raised inside a hook, CPython printed and dropped it: the
    # process went on as if no Ctrl-C had come.
    code = textwrap.dedent("""
        import os, signal, sys, time
        def ctrl_c():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.01)  # (handled meanwhile)
        os.register_at_fork(before=ctrl_c)
        from cfgcore.experiments.exposures import ExposureLogger, JsonLinesSink
        logger = ExposureLogger(sinks=[JsonLinesSink(sys.argv[1])])
        logger.log("t", "a", "parent")
        try:
            pid = os.fork()
            if pid == 0:
                logger.log("t", "a", "child")
                os._exit(0 if logger.flush(10) else 3)
            print("no KeyboardInterrupt", flush=True)
        except KeyboardInterrupt:
            print("KeyboardInterrupt", flush=True)
        print(os.waitstatus_to_exitcode(os.wait()[1]), flush=True)
        """)  # fmt: skip
    log = tmp_path / "e.jsonl"
    proc = _run(code, log)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["KeyboardInterrupt", "0"], proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    assert sorted(line["user"] for line in _lines(log)) == ["child", "parent"]


def test_sigterm_during_a_hot_reload(tmp_path):
    # A listener of the reload sends SIGTERM as the third change is told, while a
    # thread goes on saving the file (reloads keep coming).
    config = tmp_path / "config"
    shutil.copytree(default_config_dir(), config)
    code = textwrap.dedent("""
        import os, signal, sys, threading, time
        from cfgcore.config.manager import ConfigurationManager
        from cfgcore.runtime.atomicio import atomic_write_text
        d, audit = sys.argv[1], sys.argv[2]
        m = ConfigurationManager(d, environ={}, audit_log=audit)
        m.load_environment_config("staging")
        m.enable_hot_reload(poll_interval=0.05)
        staging = os.path.join(d, "staging.yaml")
        base = open(staging).read()
        told = []
        def listener(event):
            if event.config_path == "anomaly_detection.threshold":
                told.append(event.new_value)
                print(event.new_value, flush=True)
                if len(told) == 3:
                    os.kill(os.getpid(), signal.SIGTERM)
        m.register_change_listener(listener)
        def edit():
            for i in range(1, 10**6):
                text = base + f"\\nanomaly_detection:\\n  threshold: {i / 1000}\\n"
                atomic_write_text(staging, text)
                time.sleep(0.08)
        threading.Thread(target=edit, daemon=True).start()
        while True:
            m.get("anomaly_detection.threshold")
            time.sleep(0.001)
        """)  # fmt: skip
    audit = tmp_path / "audit.jsonl"
    proc = _run(code, config, audit)
    assert proc.returncode == -signal.SIGTERM, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    told = [float(v) for v in proc.stdout.split()]
    assert len(told) >= 3
    result = verify(audit)
    assert result.ok, result
    audited = {
        line["new"] for line in _lines(audit) if line.get("path") == "anomaly_detection.threshold"
    }
    assert set(told) <= audited  # audited before any listener is told


@pytest.mark.parametrize("order", ["before", "after"])
def test_sigterm_while_other_exit_functions_run(tmp_path, order):
    # An application's exit function, run before cfgcore's exit hooks ("after": it was
    # registered after cfgcore was loaded) or after them, takes SIGTERM and would go on
    # for 30 s: the process writes what the writers hold and ends by SIGTERM.
    code = textwrap.dedent("""
        import atexit, os, signal, sys, time
        def slow():
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(3000):
                time.sleep(0.01)
            print("slow exit function ended", flush=True)
        if sys.argv[2] == "before":
            atexit.register(slow)
        from cfgcore.experiments.exposures import ExposureLogger, JsonLinesSink
        if sys.argv[2] == "after":
            atexit.register(slow)
        logger = ExposureLogger(sinks=[JsonLinesSink(os.path.join(sys.argv[1], "a.jsonl"))])
        for i in range(20000):
            logger.log("t", "a", f"u{i}")
        assert not logger.dropped
        """)  # fmt: skip
    proc = _run(code, tmp_path, order, timeout=25)
    assert proc.returncode == -signal.SIGTERM, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    users = [line["user"] for line in _lines(tmp_path / "a.jsonl")]
    assert sorted(users) == sorted(f"u{i}" for i in range(20000))


_POOL = """
import concurrent.futures as cf, multiprocessing as mp, os, signal, sys, time
from cfgcore.experiments.exposures import ExposureLogger, JsonLinesSink
logger = ExposureLogger(sinks=[JsonLinesSink(sys.argv[1])])
logger.log("t", "a", "parent")  # the writer runs before the workers are forked

def work(i):
    for j in range(200):
        logger.log("t", "a", f"w{i}-{j}")
    time.sleep(0.02)
    return i
"""


def test_process_pool_shutdown_with_cancel_futures_writes_the_finished_tasks(tmp_path):
    code = textwrap.dedent(_POOL) + textwrap.dedent("""
        pool = cf.ProcessPoolExecutor(2, mp_context=mp.get_context("fork"))
        futures = [pool.submit(work, i) for i in range(40)]
        futures[3].result()
        pool.shutdown(wait=True, cancel_futures=True)
        done = [f.result() for f in futures if f.done() and not f.cancelled()]
        print(*done, flush=True)
        """)  # fmt: skip
    log = tmp_path / "e.jsonl"
    proc = _run(code, log)
    assert proc.returncode == 0, proc.stderr
    done = [int(i) for i in proc.stdout.split()]
    assert len(done) >= 4
    users = [line["user"] for line in _lines(log)]
    assert len(users) == len(set(users))  # each written once
    assert set(users) == {"parent"} | {f"w{i}-{j}" for i in done for j in range(200)}


def test_a_pool_started_after_sigterm_does_not_outlive_its_process(tmp_path):
    # SIGTERM, then the process starts a fork pool while its flush runs (a slow exit
    # hook keeps it running for a second). Its workers received no SIGTERM (sent before
    # they existed) and waited for work forever once it had ended, holding its pipes.
    code = textwrap.dedent(_POOL) + textwrap.dedent("""
        from cfgcore.runtime import forks
        forks.at_exit(lambda: time.sleep(1))
        os.kill(os.getpid(), signal.SIGTERM)  # handled at the next bytecode
        pool = cf.ProcessPoolExecutor(2, mp_context=mp.get_context("fork"))
        for i in range(4):
            pool.submit(work, i)
        time.sleep(30)
        """)  # fmt: skip
    proc = _run(code, tmp_path / "e.jsonl")
    assert proc.returncode == -signal.SIGTERM, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    assert [line["user"] for line in _lines(tmp_path / "e.jsonl")][:1] == ["parent"]
