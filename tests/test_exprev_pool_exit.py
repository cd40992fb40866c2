"""Records of pool workers ended by ``with Pool() as pool:``. Leaving the block
terminates the workers (SIGTERM) while they are already exiting, their exit hooks
writing the exposures and metric events they hold. cfgcore's SIGTERM path ran the hooks
again, found them "already run" and ended the process at once, in the middle of that
writing: a pool of two workers that served 1,200 users left 128 metric events of
1,200. A second caller of the exit hooks now waits until the first has written."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src")


def _run(code: str) -> str:
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.pop("CFGCORE_SIGTERM_FLUSH", None)
    # A hang shows where it is: every thread's stack on stderr (in the failure) before
    # the timeout would kill the process without a word.
    watchdog = "import faulthandler; faulthandler.dump_traceback_later(100, exit=True)\n"
    out = subprocess.run(
        [sys.executable, "-c", watchdog + textwrap.dedent(code)], capture_output=True, text=True,
        env=env, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
@pytest.mark.parametrize("users", [500])
def test_a_pool_left_by_its_with_block_writes_what_its_workers_recorded(tmp_path, users):
    out = _run(f"""
        import multiprocessing, os
        from datetime import datetime, timedelta, timezone
        from cfgcore.dynamic_config import ABTestConfiguration, DynamicConfigurationManager

        now = datetime.now(timezone.utc)
        m = DynamicConfigurationManager(state_dir={str(tmp_path)!r}, record_usage=False)
        assert m.create_ab_test(ABTestConfiguration(
            "t", "", now - timedelta(days=1), now + timedelta(days=9),
            {{"control": 50.0, "b": 50.0}}, {{"control": {{}}, "b": {{}}}}, ["buy"]))

        def work(k):
            for i in range({users}):
                assert m.get_ab_test_variant("t", {{"user_id": f"w{{k}}-{{i}}"}})
                assert m.record_metric("t", "buy", 1.0, user_id=f"w{{k}}-{{i}}")
            return os.getpid()

        with multiprocessing.get_context("fork").Pool(2) as pool:  # exit: terminate()
            print(len(set(pool.map(work, range(4)))))
        m.close()
    """)
    assert out.split() and int(out.split()[0]) >= 1
    base = tmp_path / "flags"
    exposures = [
        json.loads(x) for x in (base.with_suffix(".exposures.jsonl")).read_text().splitlines()
    ]
    metrics = [json.loads(x) for x in (base.with_suffix(".metrics.jsonl")).read_text().splitlines()]
    expected = {f"w{k}-{i}" for k in range(4) for i in range(users)}
    assert {e["user"] for e in exposures} == expected
    assert len(exposures) == len(expected)
    assert sorted(e["user"] for e in metrics) == sorted(expected)


def test_a_second_caller_of_the_exit_hooks_waits_for_the_first():
    out = _run("""
        import threading, time
        from cfgcore.runtime import forks

        events = []
        forks._EXITS[:] = []

        def slow_hook():
            events.append("hook started")
            time.sleep(0.3)
            events.append("hook ended")

        forks.at_exit(slow_hook)
        first = threading.Thread(target=forks._run_exits)
        first.start()
        while "hook started" not in events:
            time.sleep(0.001)
        forks._run_exits()  # (the SIGTERM path's call, say)
        events.append("second returned")
        first.join()
        forks._run_exits()  # after the end: returns, runs nothing again
        print(",".join(events))
    """)
    assert out.strip() == "hook started,hook ended,second returned"


@pytest.mark.skipif(
    not hasattr(os, "fork") or not hasattr(signal, "pthread_sigmask"),
    reason="needs fork and signal masks",
)
def test_a_worker_whose_main_thread_never_runs_the_handler_still_ends_and_writes(tmp_path):
    """Python runs the SIGTERM handler on the main thread, between two bytecodes. A pool
    worker's main thread that ``terminate()`` leaves waiting in C on a lock the parent
    holds never gets there when the signal came just before that wait, or reached another
    thread: the worker lived on, and ``with Pool() as pool:`` waited for it forever (about
    one run in 30). Here the main thread blocks SIGTERM, so the signal always reaches
    another thread, and it waits in C before the parent sends it."""
    users = 200
    out = _run(f"""
        import multiprocessing, os, signal, sys, threading, time
        from datetime import datetime, timedelta, timezone
        from cfgcore.dynamic_config import ABTestConfiguration, DynamicConfigurationManager

        now = datetime.now(timezone.utc)
        m = DynamicConfigurationManager(state_dir={str(tmp_path)!r}, record_usage=False)
        assert m.create_ab_test(ABTestConfiguration(
            "t", "", now - timedelta(days=1), now + timedelta(days=9),
            {{"control": 50.0, "b": 50.0}}, {{"control": {{}}, "b": {{}}}}, ["buy"]))
        ctx = multiprocessing.get_context("fork")
        held = ctx.Lock()
        held.acquire()  # never released: what a terminated pool worker waits on
        waiting = ctx.Event()

        def work():
            for i in range({users}):
                assert m.get_ab_test_variant("t", {{"user_id": f"u{{i}}"}})
                assert m.record_metric("t", "buy", 1.0, user_id=f"u{{i}}")
            main = threading.get_ident()

            def tell_when_waiting():
                # The main thread is in the C wait once its frame is on that line: it
                # gave the interpreter up there, not before (no switch between).
                deadline = time.monotonic() + 60
                while sys._current_frames()[main].f_lineno != line:
                    assert time.monotonic() < deadline
                    time.sleep(0.001)
                waiting.set()

            signal.pthread_sigmask(signal.SIG_BLOCK, {{signal.SIGTERM}})
            line = sys._getframe().f_lineno + 2
            threading.Thread(target=tell_when_waiting, daemon=True).start()
            held.acquire()

        p = ctx.Process(target=work)
        p.start()
        assert waiting.wait(60)
        p.terminate()
        p.join(30)
        print(p.exitcode)
        if p.exitcode is None:
            p.kill()
            p.join()
        m.close()
    """)
    assert out.split()[0] != "None", "the worker did not end on SIGTERM"
    base = tmp_path / "flags"
    exposures = base.with_suffix(".exposures.jsonl").read_text().splitlines()
    metrics = base.with_suffix(".metrics.jsonl").read_text().splitlines()
    expected = {f"u{i}" for i in range(users)}
    assert {json.loads(x)["user"] for x in exposures} == expected
    assert sorted(json.loads(x)["user"] for x in metrics) == sorted(expected)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_process_forked_by_a_worker_does_not_write_its_signals_to_the_workers_pipe():
    """A worker watches for SIGTERM through a pipe of its own (cfgcore's C handler, or
    Python as the wake-up fd, writes each signal's number there). A process the worker
    forks inherits the pipe: its SIGTERM would start the worker's flush and end the
    worker. It drops the pipe and watches one of its own (its own thread); the worker
    keeps its pipe."""
    out = _run("""
        import multiprocessing, os, signal, threading
        from cfgcore.runtime import forks
        import cfgcore.dynamic_config  # (arms the exit hooks and the SIGTERM handler)

        def work():
            assert forks._watch is not None and forks._watch[0] == os.getpid()
            r, w = forks._watch[1:]
            workers = os.fstat(w).st_ino  # (a pipe's two ends are one inode)
            pid = os.fork()
            if pid == 0:
                mine = forks._watch
                own = mine is not None and mine[0] == os.getpid()
                held = forks._watched_fd()
                inherited = []  # fds open here on the worker's pipe
                for fd in range(1024):
                    try:
                        if os.fstat(fd).st_ino == workers:
                            inherited.append(fd)
                    except OSError:
                        pass
                watching = [t.name for t in threading.enumerate()].count("cfgcore-sigterm-watch")
                ok = own and held == mine[2] and not inherited and watching == 1
                os._exit(0 if ok else 1)
            _, status = os.waitpid(pid, 0)
            return os.waitstatus_to_exitcode(status), forks._watched_fd() == w

        with multiprocessing.get_context("fork").Pool(1) as pool:
            print(pool.apply(work))
    """)
    assert out.strip() == "(0, True)"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_wake_up_fd_someone_else_holds_stays_theirs():
    """An event loop's wake-up fd (asyncio's add_signal_handler, trio) is not taken over.
    The worker's watch goes through a C handler in front of CPython's: cfgcore's, or, in
    a pure-Python install, faulthandler's (the worker relied on the handler alone)."""
    out = _run("""
        import multiprocessing, os, signal
        from cfgcore.runtime import forks
        import cfgcore.dynamic_config  # (arms the exit hooks and the SIGTERM handler)

        r, w = os.pipe()
        os.set_blocking(w, False)
        signal.set_wakeup_fd(w)

        def work():
            watched = forks._watch is not None and forks._watch[0] == os.getpid()
            return watched == forks._chained, signal.set_wakeup_fd(-1) == w, forks._chained

        with multiprocessing.get_context("fork").Pool(1) as pool:
            print(pool.apply(work))
    """)
    assert out.strip() == "(True, True, True)"
