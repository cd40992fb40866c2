"""Records still waiting when the interpreter exits, fourth audit. The exit flush waits
2 s per writer; what a slow or stuck sink had not written by then died with the daemon
thread, neither written nor counted. Now each record is either written or counted in
``lost`` and logged ("N records not written at exit"), and ``close()`` that times out
says how many are still being written. Real interpreters exiting (subprocesses), real
writer threads."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
import threading

from cfgcore.experiments.writer import BackgroundWriter

SCRIPT = """
import logging, sys, threading, time
logging.basicConfig(stream=sys.stderr, level=logging.ERROR, format="%(message)s")
from cfgcore.experiments.writer import BackgroundWriter
out = open(sys.argv[1], "a")
stuck = sys.argv[2] == "stuck"
hang = threading.Event()

def deliver(batch):
    if stuck:
        hang.wait()  # a sink that never returns (a hung network file system)
    time.sleep(0.25)  # slow: 64 records per 0.25 s, far fewer than 2,000 in 2 s
    out.write("".join(f"{r}\\n" for r in batch))
    out.flush()

w = BackgroundWriter(deliver, name="exit-test", max_pending=10_000)
for i in range(2000):
    assert w.append(i)
"""


def _run(tmp_path, mode):
    written = tmp_path / "written.txt"
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(SCRIPT))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.run(
        [sys.executable, str(script), str(written), mode],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = written.read_text().splitlines() if written.exists() else []
    lost = [ln for ln in proc.stderr.splitlines() if "records not written at exit" in ln]
    return lines, lost


def test_every_record_is_written_or_counted_at_exit(tmp_path):
    lines, lost = _run(tmp_path, "slow")
    assert len(lines) == len(set(lines))  # none written twice
    assert len(lost) == 1
    n = int(lost[0].split(": ")[1].split()[0])
    assert 0 < len(lines) < 2000
    assert len(lines) + n == 2000  # each one written, or counted as lost: never both


def test_a_stuck_sink_is_counted_at_exit(tmp_path):
    lines, lost = _run(tmp_path, "stuck")
    assert lines == []
    assert len(lost) == 1 and "exit-test: 2000 records not written at exit" in lost[0]


def test_a_close_that_times_out_says_how_many_are_still_being_written(caplog):
    release = threading.Event()
    seen: list[int] = []

    def deliver(batch):
        release.wait(30)
        seen.extend(batch)

    w = BackgroundWriter(deliver, name="close-test")
    for i in range(100):
        w.append(i)
    with caplog.at_level(logging.WARNING, logger="cfgcore.experiments"):
        assert w.close(timeout=0.2) is False
    assert any(
        "close-test: closed with 100 records not yet written" in r.getMessage()
        for r in caplog.records
    )
    release.set()
    assert w.flush(10)
    assert sorted(seen) == list(range(100)) and w.lost == 0
