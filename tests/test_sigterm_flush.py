"""SIGTERM (how Kubernetes, systemd and docker stop a process) with the default handler
killed a plain ``python service.py`` without running its exit hooks: every exposure the
background writer still held was lost. cfgcore now writes them first, then the process
ends by SIGTERM as before; an application's own handler is never replaced, and
``CFGCORE_SIGTERM_FLUSH=0`` leaves SIGTERM alone. Real processes, real signals, the
real exposure log."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

import cfgcore
from cfgcore.experiments.exposures import read_exposures
from tests.ab_service import AB_MANAGER

SRC = os.path.dirname(os.path.dirname(os.path.abspath(cfgcore.__file__)))
USERS = 5000
SERVICE = (
    textwrap.dedent(
        """
    import os, signal, sys, threading, time
    if sys.argv[2] == "own":  # (before cfgcore is loaded)
        signal.signal(signal.SIGTERM, lambda *a: print("own handler", flush=True))
    """
    )
    + AB_MANAGER
    + textwrap.dedent(
        """
    for i in range(int(sys.argv[3])):
        assert m.get_ab_test_variant("t", {"user_id": f"u{i}"}) is not None
    print("handler", signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL, flush=True)
    # A service serving until it is stopped, its main thread waiting as argv[4] says.
    wait = sys.argv[4]
    if wait == "sleep":
        while True:
            time.sleep(0.05)
    elif wait == "event":  # a lock's wait in C, no timeout
        threading.Event().wait()
    elif wait == "join":  # the main thread joins a server thread that never ends
        server = threading.Thread(target=threading.Event().wait, daemon=True)
        server.start()
        server.join()
    else:  # a blocking read, retried by Python after each handler (PEP 475)
        os.read(os.pipe()[0], 1)
    """
    )
)


@pytest.fixture(autouse=True)
def _close_pipes():
    yield
    while _STARTED:
        proc = _STARTED.pop()
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


_STARTED: list[subprocess.Popen] = []


def _run(tmp_path, mode: str = "default", wait: str = "sleep", **env: str):
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVICE, str(tmp_path), mode, str(USERS), wait],
        env={**os.environ, "PYTHONPATH": SRC, **env},
        stdout=subprocess.PIPE,
        text=True,
    )
    _STARTED.append(proc)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("handler "), line
    proc.send_signal(signal.SIGTERM)
    return proc, line.split()[1] == "True"


def _exposed(tmp_path) -> int:
    path = tmp_path / "flags.exposures.jsonl"
    return len(read_exposures(str(path))) if path.exists() else 0


def test_sigterm_writes_the_pending_exposures_then_ends_by_sigterm(tmp_path):
    proc, handled = _run(tmp_path)
    assert handled
    assert proc.wait(60) == -signal.SIGTERM  # ended by the signal, as with the default
    assert _exposed(tmp_path) == USERS


@pytest.mark.parametrize("wait", ["event", "join", "read"])
def test_a_main_thread_waiting_in_c_still_flushes_and_ends(tmp_path, wait):
    # The main thread runs the handler only between two bytecodes. Waits on a lock (an
    # Event, a join) and blocking reads return to Python for a signal that reaches the
    # main thread (Linux gives a process's signal to its main thread first), so the
    # flush starts; the process then ends by SIGTERM, a read retried after the handler
    # included (the flush's own SIGTERM reaches the main thread again).
    proc, handled = _run(tmp_path, wait=wait)
    assert handled
    assert proc.wait(60) == -signal.SIGTERM
    assert _exposed(tmp_path) == USERS


def test_the_switch_leaves_sigterm_alone(tmp_path):
    proc, handled = _run(tmp_path, CFGCORE_SIGTERM_FLUSH="0")
    assert not handled
    assert proc.wait(60) == -signal.SIGTERM


def test_an_applications_own_handler_is_kept(tmp_path):
    proc, handled = _run(tmp_path, "own")
    assert handled
    assert proc.stdout is not None
    assert proc.stdout.readline() == "own handler\n"  # its handler ran; cfgcore's did not
    assert proc.poll() is None  # and the process lives on, as that handler decided


def test_the_handler_is_not_installed_from_another_thread():
    code = textwrap.dedent(
        """
        import signal, threading
        def imp():
            import cfgcore.dynamic_config  # registers exit hooks off the main thread
        t = threading.Thread(target=imp); t.start(); t.join()
        print(signal.getsignal(signal.SIGTERM) is signal.SIG_DFL)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": SRC},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.stdout.strip() == "True", out.stderr
