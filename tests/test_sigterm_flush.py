"""SIGTERM (how Kubernetes, systemd and docker stop a process) with the default handler
killed a plain ``python service.py`` without running its exit hooks: every exposure the
background writer still held was lost. cfgcore now writes them first, then the process
ends by SIGTERM as before; an application's own handler is never replaced, and
``CFGCORE_SIGTERM_FLUSH=0`` leaves SIGTERM alone. Real processes, real signals, the
real exposure log.

Python runs the handler on the main thread only. A SIGTERM the kernel gave to another
thread (it may, when the main thread has a signal pending) while the main thread waited
in C (``Event().wait()``, ``join()``) was noted and never handled: the process never
ended (once in CI). A thread of cfgcore's own now watches for it in every process where
the handler is cfgcore's, forked children included: through a C handler in front of
CPython's, which leaves the wake-up fd to event loops (trio warned at each run when
cfgcore held it): cfgcore's own, or, without the compiled extension, faulthandler's
(that install read the wake-up fd, and an event loop that set its own left it deaf)."""

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
# The start of each service: a manager (see tests/ab_service.py) and what it calls.
WATCHED = (
    textwrap.dedent(
        """
    import os, signal, sys, threading, time
    def hold_wakeup_fd():  # as an event loop does (asyncio's add_signal_handler, trio)
        r, w = os.pipe()  # (nothing reads it here: the loop is not running)
        os.set_blocking(w, False)
        signal.set_wakeup_fd(w)

    if sys.argv[2] == "own":  # (before cfgcore is loaded)
        signal.signal(signal.SIGTERM, lambda *a: print("own handler", flush=True))
    elif sys.argv[2] == "fd-before":
        hold_wakeup_fd()
    """
    )
    + AB_MANAGER
    + textwrap.dedent(
        """
    def signal_elsewhere():
        # A SIGTERM the kernel gives to this thread, not the main one, as it may give a
        # process's signal to any thread: sent to this thread (so the C-level handler
        # runs here), once the main thread waits in C. The main thread is there once its
        # frame, in threading.py, has not moved for 0.1 s (it would have gone on).
        main, before = threading.main_thread().ident, None
        while True:
            frame = sys._current_frames()[main]
            now = (frame, frame.f_lasti)
            if frame.f_code.co_filename == threading.__file__ and now == before:
                break
            before = now
            time.sleep(0.1)
        signal.pthread_kill(threading.get_ident(), signal.SIGTERM)

    def watching():
        return any(t.name == "cfgcore-sigterm-watch" for t in threading.enumerate())

    from cfgcore.runtime import forks
    if sys.argv[2] == "fd-after":
        hold_wakeup_fd()
    elif sys.argv[2] == "restore":  # as uvicorn's capture_signals does around its serving
        old = signal.signal(signal.SIGTERM, lambda *a: None)
        signal.signal(signal.SIGTERM, old)
        if forks._chained:  # heard again within forks.REWATCH_SECONDS
            end = time.monotonic() + 10 * forks.REWATCH_SECONDS
            while forks._watched_fd() != forks._watch[2] and time.monotonic() < end:
                time.sleep(0.05)
    """
    )
)
SERVICE = WATCHED + textwrap.dedent(
    """
    for i in range(int(sys.argv[3])):
        assert m.get_ab_test_variant("t", {"user_id": f"u{i}"}) is not None
    print("handler", signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL,
          "watcher", watching(), "chained", forks._chained, flush=True)
    # A service serving until it is stopped, its main thread waiting as argv[4] says.
    wait, elsewhere = sys.argv[4], sys.argv[5] == "elsewhere"
    if wait == "sleep":
        while True:
            time.sleep(0.05)
    elif wait == "event":  # a lock's wait in C, no timeout
        if elsewhere:
            threading.Thread(target=signal_elsewhere, daemon=True).start()
        threading.Event().wait()
    elif wait == "join":  # the main thread joins a server thread that never ends
        def serve():
            if elsewhere:
                signal_elsewhere()
            threading.Event().wait()
        server = threading.Thread(target=serve, daemon=True)
        server.start()
        server.join()
    else:  # a blocking read, retried by Python after each handler (PEP 475)
        os.read(os.pipe()[0], 1)
    """
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


def _start(code: str, *args: str, **env: str) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        env={**os.environ, "PYTHONPATH": SRC, **env},
        stdout=subprocess.PIPE,
        text=True,
    )
    _STARTED.append(proc)
    return proc


def _serve(tmp_path, mode: str = "default", wait: str = "sleep", sigterm: str = "", **env: str):
    """The service, started; whether SIGTERM's handler is not the default, and whether
    cfgcore's watcher runs. ``sigterm="elsewhere"``: it sends itself SIGTERM on a thread
    other than the main one (see ``signal_elsewhere``). ``mode``: "own" installs a
    handler of its own first; "fd-before" and "fd-after" hold the wake-up fd, as an
    event loop does, before or after cfgcore arms its handler."""
    proc = _start(SERVICE, str(tmp_path), mode, str(USERS), wait, sigterm, **env)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("handler "), line
    words = line.split()
    _CHAINED.append(words[5] == "True")
    return proc, words[1] == "True", words[3] == "True"


_CHAINED: list[bool] = []  # the last service's: is the C handler in front of CPython's?

# The two C handlers the watcher hears SIGTERM from: cfgcore's (the compiled extension),
# or faulthandler's (a pure-Python install; it read the wake-up fd before).
WATCHES = {"c-handler": {}, "pure-python": {"CFGCORE_NO_EXTENSIONS": "1"}}


@pytest.fixture(params=list(WATCHES))
def watch(request) -> str:
    if request.param == "c-handler" and cfgcore.IMPLEMENTATION != "c":
        pytest.skip("the compiled extension is not built here: no C handler to test")
    return request.param


def _run(tmp_path, mode: str = "default", wait: str = "sleep", **env: str):
    proc, handled, _ = _serve(tmp_path, mode, wait, **env)
    proc.send_signal(signal.SIGTERM)
    return proc, handled


NEEDS_PTHREAD_KILL = pytest.mark.skipif(
    not hasattr(signal, "pthread_kill"), reason="needs pthread_kill"
)


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
    # main thread, so the flush starts; the process then ends by SIGTERM, a read retried
    # after the handler included (the flush's own SIGTERM reaches the main thread
    # again). A signal that reaches another thread: the next test.
    proc, handled = _run(tmp_path, wait=wait)
    assert handled
    assert proc.wait(60) == -signal.SIGTERM
    assert _exposed(tmp_path) == USERS


@NEEDS_PTHREAD_KILL
@pytest.mark.parametrize("wait", ["event", "join"])
def test_a_sigterm_another_thread_takes_still_flushes_and_ends(tmp_path, wait, watch):
    # The C-level handler runs on the thread the signal reached and only notes it for
    # the main thread, which sleeps on in Event().wait() or join(): the handler never
    # ran and the process lived on (the default action would have ended it). cfgcore's
    # watcher reads what the C handler in front of CPython's wrote to its pipe (cfgcore's
    # or faulthandler's) and starts the flush, whose end wakes the main thread.
    proc, handled, watched = _serve(tmp_path, wait=wait, sigterm="elsewhere", **WATCHES[watch])
    assert handled and watched
    assert _CHAINED[-1]
    assert proc.wait(60) == -signal.SIGTERM
    assert _exposed(tmp_path) == USERS


@NEEDS_PTHREAD_KILL
@pytest.mark.parametrize("mode", ["fd-before", "fd-after"])
def test_an_event_loops_wake_up_fd_leaves_the_c_handler_hearing(tmp_path, mode, watch):
    """An event loop holds the process's one wake-up fd (asyncio's add_signal_handler,
    trio), taken before cfgcore arms its handler or after. The watcher that read the
    wake-up fd either never started (it stays the loop's) or went deaf once the loop
    took it over: a SIGTERM another thread took while the main thread slept in C was
    never handled. The C handler writes to cfgcore's own pipe, whoever holds the fd: in
    a pure-Python install too, which still read the wake-up fd (both modes failed)."""
    proc, handled, watched = _serve(tmp_path, mode, wait="event", sigterm="elsewhere",
                                    **WATCHES[watch])  # fmt: skip
    assert handled and watched
    assert proc.wait(60) == -signal.SIGTERM
    assert _exposed(tmp_path) == USERS
    assert _CHAINED[-1]


@NEEDS_PTHREAD_KILL
@pytest.mark.parametrize("wait", ["event", "join"])
def test_a_handler_set_again_to_cfgcores_is_watched_again(tmp_path, wait, watch):
    """An application that saves SIGTERM's handler, sets its own and later sets the saved
    one back (uvicorn's ``capture_signals``, ``old = signal.signal(...)`` then
    ``signal.signal(SIGTERM, old)``) replaced the C handler in front of CPython's with
    CPython's alone, twice: the Python handler was cfgcore's again, and the watch heard
    nothing more. A SIGTERM another thread took while the main thread slept in C then
    left the process running forever. The watcher puts cfgcore's C handler back in
    front of CPython's (within ``REWATCH_SECONDS``), or faulthandler's without the
    compiled extension."""
    proc, handled, watched = _serve(tmp_path, "restore", wait=wait, sigterm="elsewhere",
                                    **WATCHES[watch])  # fmt: skip
    assert handled and watched
    assert proc.wait(60) == -signal.SIGTERM
    assert _exposed(tmp_path) == USERS


UVICORN = WATCHED + textwrap.dedent(
    """
    import uvicorn

    async def app(scope, receive, send):  # (lifespan only: no request is made)
        while scope["type"] == "lifespan":
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))

    def stop():
        while not server.started:
            time.sleep(0.01)
        server.should_exit = True

    threading.Thread(target=stop, daemon=True).start()
    server.run()  # its handler while it serves, the saved one (cfgcore's) set back at its end
    for i in range(int(sys.argv[3])):
        assert m.get_ab_test_variant("t", {"user_id": f"u{i}"}) is not None
    end = time.monotonic() + 10 * forks.REWATCH_SECONDS
    while forks._watched_fd() != forks._watch[2] and time.monotonic() < end:
        time.sleep(0.05)
    print("handler", signal.getsignal(signal.SIGTERM) is forks._on_sigterm,
          "watcher", watching(), flush=True)
    threading.Thread(target=signal_elsewhere, daemon=True).start()
    threading.Event().wait()
    """
)


@NEEDS_PTHREAD_KILL
def test_after_uvicorn_has_served_the_watch_still_hears_sigterm(tmp_path, watch):
    """uvicorn's ``Server.run()`` saves SIGTERM's handler as it starts and sets it back
    as it ends: a service that goes on after it (or waits for its threads) then never
    ended on a SIGTERM another thread took while its main thread waited in C."""
    pytest.importorskip("uvicorn")
    proc = _start(UVICORN, str(tmp_path), "default", str(USERS), **WATCHES[watch])
    assert proc.stdout is not None
    assert proc.stdout.readline().split() == ["handler", "True", "watcher", "True"]
    assert proc.wait(60) == -signal.SIGTERM
    assert _exposed(tmp_path) == USERS


@pytest.mark.parametrize("sigterm", ["", pytest.param("elsewhere", marks=NEEDS_PTHREAD_KILL)])
def test_the_switch_leaves_sigterm_alone(tmp_path, sigterm):
    proc, handled, watched = _serve(tmp_path, wait="event", sigterm=sigterm,
                                    CFGCORE_SIGTERM_FLUSH="0")  # fmt: skip
    assert not handled and not watched
    if not sigterm:
        proc.send_signal(signal.SIGTERM)
    assert proc.wait(60) == -signal.SIGTERM  # the default action, on whichever thread


def test_an_applications_own_handler_is_kept(tmp_path):
    proc, handled, watched = _serve(tmp_path, "own")
    assert handled and not watched  # (the wake-up fd is left alone too)
    proc.send_signal(signal.SIGTERM)
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


FORKED = WATCHED + textwrap.dedent(
    """
    from cfgcore.runtime import forks
    users = int(sys.argv[3])

    def inodes(fds):
        return {os.fstat(fd).st_ino for fd in fds}

    def open_inodes():  # (a fd another thread closes meanwhile is skipped, not fatal)
        found = set()
        for fd in range(1024):
            try:
                found.add(os.fstat(fd).st_ino)
            except OSError:
                continue
        return found

    assert watching() and forks._watch is not None
    parents = inodes(forks._watch[1:])  # (a pipe's two ends are one inode)
    pid = os.fork()  # a child of the service's own, no multiprocessing
    if pid == 0:
        import faulthandler
        faulthandler.dump_traceback_later(90, exit=True)  # (a hang ends, its stacks said)
        for i in range(users):
            assert m.get_ab_test_variant("t", {"user_id": f"child{i}"}) is not None
        own = forks._watch is not None and forks._watch[0] == os.getpid()
        r, w = forks._watch[1:] if own else (-1, -1)
        print("child", own and watching(), forks._watched_fd() == w,
              not parents & open_inodes(), flush=True)
        threading.Thread(target=signal_elsewhere, daemon=True).start()
        threading.Event().wait()
    _, status = os.waitpid(pid, 0)
    # The child's SIGTERM started nothing here: no flush began in this process.
    print("ended", os.waitstatus_to_exitcode(status), forks._flush_once.locked(), flush=True)
    for i in range(users):
        assert m.get_ab_test_variant("t", {"user_id": f"parent{i}"}) is not None
    threading.Thread(target=signal_elsewhere, daemon=True).start()
    threading.Event().wait()
    """
)


@pytest.mark.skipif(
    not hasattr(os, "fork") or not hasattr(signal, "pthread_kill"), reason="needs fork"
)
def test_a_forked_child_watches_a_pipe_of_its_own(tmp_path, watch):
    """A child forked by the service has no watcher thread of its parent's, and the
    parent's pipe would start the parent's flush: it drops that pipe and watches one of
    its own (the one its C handler or the wake-up fd writes to), so a SIGTERM that
    reaches another thread of the child writes and ends the child, and the parent lives
    on, its own watcher still working."""
    proc = _start(FORKED, str(tmp_path), "default", str(USERS), **WATCHES[watch])
    out, _ = proc.communicate(timeout=120)  # (a hang fails here)
    # The child: its own watcher, its own pipe written to, none of the parent's
    # pipe left open; it ended by SIGTERM, and the parent started no flush.
    assert out.splitlines() == ["child True True True", f"ended {-signal.SIGTERM} False"]
    assert proc.returncode == -signal.SIGTERM
    users = [e.user for e in read_exposures(str(tmp_path / "flags.exposures.jsonl"))]
    assert sorted(users) == sorted([f"child{i}" for i in range(USERS)]
                                   + [f"parent{i}" for i in range(USERS)])  # fmt: skip


def test_a_wake_up_fd_already_held_stays_its_holders(watch):
    """An event loop's wake-up fd (asyncio's add_signal_handler, trio) set before cfgcore
    arms its handler is not taken over: the fd stays the loop's. The watch runs all the
    same, in a pure-Python install too (it did not watch then)."""
    code = textwrap.dedent(
        """
        import os, signal, threading
        r, w = os.pipe()
        os.set_blocking(w, False)
        signal.set_wakeup_fd(w)
        import cfgcore.dynamic_config  # (arms the exit hooks and the SIGTERM handler)
        from cfgcore.runtime import forks
        names = [t.name for t in threading.enumerate()]
        print(signal.getsignal(signal.SIGTERM) is forks._on_sigterm, forks._watch is None,
              "cfgcore-sigterm-watch" in names, signal.set_wakeup_fd(-1) == w)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": SRC, **WATCHES[watch]},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.stdout.split() == ["True", "False", "True", "True"], out.stderr


def test_the_watch_leaves_the_wake_up_fd_unset(watch):
    """Armed with nothing holding the wake-up fd, the watch leaves it so: an application
    setting its own (``signal.set_wakeup_fd`` answers the fd it replaces: trio warns
    when that is not -1) finds none, and keeps it; the watch goes on writing to its own
    pipe. A pure-Python install held it: the application's replaced cfgcore's (the
    watch went deaf) and an asyncio loop's close set it to -1 (deaf for good)."""
    code = textwrap.dedent(
        """
        import asyncio, os, signal
        import cfgcore.dynamic_config  # (arms the exit hooks and the SIGTERM handler)
        from cfgcore.runtime import forks
        held = signal.set_wakeup_fd(-1)
        r, w = os.pipe()
        os.set_blocking(w, False)
        replaced = signal.set_wakeup_fd(w)
        loop = asyncio.new_event_loop()  # takes it for its own signal handler, then
        loop.add_signal_handler(signal.SIGUSR1, lambda: None)  # gives it back (-1)
        loop.close()
        print(held, replaced, forks._watch is not None, forks._chained,
              forks._watched_fd() == forks._watch[2], signal.set_wakeup_fd(-1))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": SRC, **WATCHES[watch]},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.stdout.split() == ["-1", "-1", "True", "True", "True", "-1"], out.stderr


def _trio_run(env: dict[str, str]) -> subprocess.CompletedProcess:
    code = textwrap.dedent(
        """
        import signal, sys
        import cfgcore.dynamic_config  # (arms the exit hooks and the SIGTERM handler)
        from cfgcore.runtime import forks
        import trio

        async def main():
            await trio.sleep(0)
            return "ran"

        for _ in range(2):  # (trio takes the wake-up fd at each run, and gives it back)
            print(trio.run(main), forks._watched_fd() == forks._watch[2], flush=True)
        """
    )
    return subprocess.run(
        [sys.executable, "-W", "error", "-c", code],
        env={**os.environ, "PYTHONPATH": SRC, **env}, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip


def test_trio_runs_under_warnings_as_errors_with_the_watch_armed(watch):
    """trio takes the wake-up fd at each ``trio.run()`` and warns when it finds one held
    (a RuntimeWarning; under ``-W error`` the run fails with TrioInternalError). The
    watch, armed before, holds no wake-up fd: each run starts clean, and the watch still
    writes to its own pipe afterwards. A pure-Python install's watch held it: trio
    warned, and failed under ``-W error``."""
    pytest.importorskip("trio")
    out = _trio_run(WATCHES[watch])
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["ran", "True", "ran", "True"]


@pytest.mark.skipif(cfgcore.IMPLEMENTATION != "c", reason="no compiled extension built here")
def test_the_c_handler_writes_the_pipe_then_runs_pythons_and_gives_way():
    """``cfgcore._eval.sigterm_watch`` on its own, in a process of its own: nothing to
    chain to under the default action; once chained, each SIGTERM (on the main thread or
    another) writes its byte to the pipe and still runs the Python handler, which
    ``signal.getsignal`` still names; ``signal.signal`` replaces the C handler, and the
    pipe hears nothing more."""
    code = textwrap.dedent(
        """
        import os, signal, threading
        from cfgcore import _eval

        r, w = os.pipe()
        os.set_blocking(w, False)
        os.set_blocking(r, False)
        def drained():
            try:
                return list(os.read(r, 64))
            except BlockingIOError:
                return []

        print("default", _eval.sigterm_watch(w), _eval.sigterm_chained())
        seen = []
        def handler(signum, frame):
            seen.append(signum)
        signal.signal(signal.SIGTERM, handler)
        print("chained", _eval.sigterm_watch(w), _eval.sigterm_chained(),
              _eval.sigterm_watch_fd() == w, signal.getsignal(signal.SIGTERM) is handler)
        signal.raise_signal(signal.SIGTERM)
        def elsewhere():
            signal.pthread_kill(threading.get_ident(), signal.SIGTERM)
        t = threading.Thread(target=elsewhere)
        t.start()
        t.join()
        for _ in range(1000):  # (the main thread runs the handler at its next bytecode)
            if len(seen) == 2:
                break
        print("caught", seen == [signal.SIGTERM] * 2, drained() == [signal.SIGTERM] * 2)
        _eval.sigterm_unwatch()
        signal.raise_signal(signal.SIGTERM)
        print("unwatched", len(seen), drained(), _eval.sigterm_watch_fd())
        _eval.sigterm_watch(w)
        signal.signal(signal.SIGTERM, handler)  # set again: CPython's handler alone
        signal.raise_signal(signal.SIGTERM)
        print("replaced", _eval.sigterm_chained(), len(seen), drained())
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": SRC},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.stdout.splitlines() == [
        "default False False",
        "chained True True True True",
        "caught True True",
        "unwatched 3 [] -1",
        "replaced False 4 []",
    ], out.stderr


@pytest.mark.skipif(cfgcore.IMPLEMENTATION != "c", reason="no compiled extension built here")
def test_the_c_handler_is_put_back_only_in_front_of_cpythons():
    """``cfgcore._eval.sigterm_rewatch``: once the Python handler is set back, it puts
    the C handler back in front of CPython's (from another thread too), and the pipe
    hears SIGTERM again; it leaves alone a handler never chained, another Python
    handler, and an action other than CPython's (faulthandler's, set in front since)."""
    code = textwrap.dedent(
        """
        import faulthandler, os, signal, threading
        from cfgcore import _eval

        r, w = os.pipe()
        os.set_blocking(w, False)
        os.set_blocking(r, False)
        def drained():
            try:
                return list(os.read(r, 64))
            except BlockingIOError:
                return []

        seen = []
        def handler(signum, frame):
            seen.append(signum)
        def other(signum, frame):
            pass
        signal.signal(signal.SIGTERM, handler)
        print("never", _eval.sigterm_rewatch(w, handler), _eval.sigterm_chained())
        _eval.sigterm_watch(w)
        signal.signal(signal.SIGTERM, signal.signal(signal.SIGTERM, other))  # set back
        print("set back", _eval.sigterm_chained(), _eval.sigterm_rewatch(w, other),
              _eval.sigterm_chained(), _eval.sigterm_rewatch(w, handler),
              _eval.sigterm_chained())
        signal.raise_signal(signal.SIGTERM)
        print("heard", seen, drained() == [signal.SIGTERM])
        signal.signal(signal.SIGTERM, handler)
        done = []
        t = threading.Thread(target=lambda: done.append(_eval.sigterm_rewatch(w, handler)))
        t.start()
        t.join()
        print("thread", done, _eval.sigterm_chained())
        signal.signal(signal.SIGTERM, handler)
        faulthandler.register(signal.SIGTERM, file=open(os.devnull, "w"), chain=True)
        print("other", _eval.sigterm_rewatch(w, handler), _eval.sigterm_chained())
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
        env={**os.environ, "PYTHONPATH": SRC, "CFGCORE_SIGTERM_FLUSH": "0"},
    )  # fmt: skip
    assert out.stdout.splitlines() == [
        "never False False",
        "set back False False False True True",
        "heard [15] True",
        "thread [True] True",
        "other False False",
    ], out.stderr


def test_arming_again_on_the_main_thread_puts_the_c_handler_back(watch):
    """Between two of the watcher's checks, cfgcore arming its handler on the main
    thread (an exit hook registered) puts its C handler back at once. An application's
    own handler set since is left alone, by that and by the watcher: it decides."""
    code = textwrap.dedent(
        """
        import signal, time
        import cfgcore.experiments.writer  # (its exit hook arms the handler)
        from cfgcore.runtime import forks
        w = forks._watch[2]
        signal.signal(signal.SIGTERM, signal.signal(signal.SIGTERM, lambda *a: None))
        print(forks._watched_fd() == w)
        forks.at_exit(lambda: None)
        print(forks._watched_fd() == w)
        seen = []
        signal.signal(signal.SIGTERM, lambda *a: seen.append(a[0]))
        time.sleep(2.5 * forks.REWATCH_SECONDS)  # (the watcher looks twice meanwhile)
        forks.at_exit(lambda: None)
        signal.raise_signal(signal.SIGTERM)
        print(forks._watched_fd(), seen, forks._flush_once.locked())
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
        env={**os.environ, "PYTHONPATH": SRC, **WATCHES[watch]},
    )  # fmt: skip
    assert out.stdout.splitlines() == ["False", "True", "-1 [15] False"], out.stderr


PURE_FORKS = textwrap.dedent(
    """
    import faulthandler, os, signal, sys, threading, time
    if sys.argv[1] == "registered":  # an application's, before cfgcore is imported
        faulthandler.register(signal.SIGTERM, chain=True)
    import cfgcore.dynamic_config  # (arms the exit hooks and the SIGTERM handler)
    from cfgcore.runtime import forks
    assert forks._via == "faulthandler", forks._via
    if sys.argv[1] == "default":  # the application sets SIGTERM back to the default
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    elif sys.argv[1] == "own":
        signal.signal(signal.SIGTERM, lambda *a: os._exit(7))
    pid = os.fork()
    if pid == 0:
        signal.alarm(20)  # (a SIGTERM dropped: the child lives on, and fails the test)
        def elsewhere():
            signal.pthread_kill(threading.get_ident(), signal.SIGTERM)
        threading.Thread(target=elsewhere).start()
        while True:
            time.sleep(0.01)
    _, status = os.waitpid(pid, 0)
    print(os.waitstatus_to_exitcode(status), flush=True)
    """
)


@pytest.mark.skipif(
    not hasattr(os, "fork") or not hasattr(signal, "pthread_kill"), reason="needs fork"
)
@pytest.mark.parametrize(
    "mode, ends",
    [
        ("cfgcore", -signal.SIGTERM),
        ("default", -signal.SIGTERM),
        ("own", 7),
        ("registered", -signal.SIGTERM),
    ],  # fmt: skip
)
def test_a_pure_python_watch_never_drops_a_childs_sigterm(mode, ends):
    """faulthandler's registration is dropped in a forked child (it wrote to the
    parent's pipe) only where that cannot leave CPython's handler in front of a Python
    handler that is the default: CPython drops each SIGTERM then ("ignored due to race
    condition"). Whatever SIGTERM's handler is (cfgcore's, set back to the default, the
    application's), the child's SIGTERM does what that handler says; and an application's
    own faulthandler registration, found when cfgcore arms, leaves cfgcore's handler
    whole."""
    out = subprocess.run(
        [sys.executable, "-c", PURE_FORKS, mode],
        env={**os.environ, "PYTHONPATH": SRC, **WATCHES["pure-python"]},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.stdout.split() == [str(ends)], out.stderr
