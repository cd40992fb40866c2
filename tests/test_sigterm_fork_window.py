"""A SIGTERM that reaches a forked child before the interpreter has set itself up there
is discarded by CPython (it clears the signals its handler caught until then). Under
the default action the kernel ends such a child; with cfgcore's SIGTERM handler the
child lived on: ``Process.start()`` then ``terminate()`` left 26 children of 30 running,
and a ``with Pool() as pool:`` that ended while its workers were starting waited for
one forever. cfgcore now blocks SIGTERM in the forking thread around the fork and
unblocks it in the child once its repairs are done, so such a SIGTERM waits in the
kernel and is handled. Real processes and real signals, in a subprocess each (the
test process's own SIGTERM handling stays as it is)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

import cfgcore

SRC = os.path.dirname(os.path.dirname(os.path.abspath(cfgcore.__file__)))

pytestmark = pytest.mark.skipif(
    not hasattr(os, "fork") or not hasattr(signal, "pthread_sigmask"), reason="needs fork"
)

_ARMED = """
    import multiprocessing, os, signal, sys, time
    from cfgcore.runtime import forks
    forks.at_exit(lambda: None)  # what any cfgcore writer does: arms the SIGTERM handler
    assert signal.getsignal(signal.SIGTERM) is forks._on_sigterm
    fork = multiprocessing.get_context("fork")
"""


def _run(code: str, timeout: float = 90) -> str:
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_ARMED) + textwrap.dedent(code)],
        env={**os.environ, "PYTHONPATH": SRC, "CFGCORE_SIGTERM_FLUSH": "1"},
        capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_a_child_terminated_as_it_starts_ends_by_sigterm():
    out = _run("""
        codes = []
        for _ in range(40):
            p = fork.Process(target=time.sleep, args=(60,))
            p.start()
            p.terminate()  # most often before the child has run at all
            p.join(4)  # (the fallback that ends a child whose main thread slept: 5 s)
            codes.append(p.exitcode)
            if p.exitcode is None:
                p.kill()
                p.join()
        print(codes)
    """)
    assert eval(out) == [-signal.SIGTERM] * 40


def test_a_pool_ended_as_its_workers_start_does_not_wait_for_them_forever():
    # Leaving the block terminates the workers (SIGTERM) and joins them without a bound.
    out = _run("""
        for i in range(15):
            with fork.Pool(2) as pool:
                if i % 2:
                    assert pool.map(abs, [-1, -2]) == [1, 2]
        print("ended")
    """)
    assert out.split() == ["ended"]


# Prints whether SIGTERM is blocked after an os.fork(): in the child, then the parent.
_MASKS_AFTER_A_FORK = """
    def blocked():
        return signal.SIGTERM in signal.pthread_sigmask(signal.SIG_BLOCK, [])
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.write(w, b"1" if blocked() else b"0")
        os._exit(0)
    os.waitpid(pid, 0)
    print(os.read(r, 1).decode(), int(blocked()))
"""


def test_sigterm_is_not_left_blocked_after_a_fork():
    assert _run(_MASKS_AFTER_A_FORK).split() == ["0", "0"]  # the child's, the parent's


def test_an_application_that_blocks_sigterm_keeps_it_blocked_on_both_sides():
    blocks = "\nsignal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})\n"
    assert _run(blocks + textwrap.dedent(_MASKS_AFTER_A_FORK)).split() == ["1", "1"]


def test_the_flush_sends_the_ending_signal_until_the_main_thread_takes_it():
    # The main thread's handler ends the process. One signal that lands just before the
    # main thread enters a long wait (after its last check for signals) interrupts
    # nothing: it slept until the fallback, 5 s later, ended it with status 143 (1 child
    # in 250 started and terminated at once). The signal is sent again every 50 ms.
    out = _run("""
        import threading
        got = []
        signal.signal(signal.SIGTERM, lambda *a: got.append(1))  # counts, ends nothing
        def end(status):
            print(len(got), status, flush=True)
            real_exit(0)
        real_exit, os._exit = os._exit, end
        forks._END_SECONDS = 0.5
        threading.Thread(target=forks._flush_then_end).start()
        while True:
            time.sleep(0.01)
    """)
    taken, status = map(int, out.split())
    assert status == 128 + signal.SIGTERM  # the fallback, as no handler ended it
    assert taken >= 5  # sent again and again (every 50 ms over 0.5 s), not once


def test_a_handler_the_child_installs_later_decides_what_sigterm_does():
    # A multiprocessing child watches SIGTERM through the wake-up fd too. It started
    # cfgcore's flush, and with it the end of the process, even after the application
    # had put its own handler in place: the handler ran again and again and the child
    # ended 5 s later, whatever its handler decided.
    out = _run("""
        def child(conn):
            got = []
            signal.signal(signal.SIGTERM, lambda *a: got.append(1))  # the application's
            conn.send("ready")
            end = time.monotonic() + 1.5
            while time.monotonic() < end:
                time.sleep(0.01)
            conn.send(len(got))
        parent, child_end = multiprocessing.Pipe()
        p = fork.Process(target=child, args=(child_end,))
        p.start()
        assert parent.recv() == "ready"
        p.terminate()
        print(parent.recv(), p.join(5) or p.exitcode)
    """)
    assert out.split() == ["1", "0"]  # its handler ran once; it ended as it chose to
