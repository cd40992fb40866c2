"""Records of pool workers ended by ``with Pool() as pool:``. Leaving the block
terminates the workers (SIGTERM) while they are already exiting, their exit hooks
writing the exposures and metric events they hold. cfgcore's SIGTERM path ran the hooks
again, found them "already run" and ended the process at once, in the middle of that
writing: a pool of two workers that served 1,200 users left 128 metric events of
1,200. A second caller of the exit hooks now waits until the first has written."""

from __future__ import annotations

import json
import os
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
