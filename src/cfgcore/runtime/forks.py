"""One fork registry for every cfgcore object that needs repair in a forked child.

A pre-fork server (gunicorn, uwsgi) may fork while another thread holds a lock or runs
a watcher; in the child that thread does not exist, so its locks would stay held and
its watcher would never run. Every component registers one function here instead of
calling :func:`os.register_at_fork` itself, so the repairs run in a known order
(registration order, which is import order: events and audit before the managers that
use them) and one failing repair cannot stop the others.

Compare ``multiprocessing.util.register_after_fork``: one list, not one hook per class.

Exit hooks (:func:`at_exit`) are here too: a ``multiprocessing`` child process (a
``Process``, a ``Pool`` worker, forked, spawned or from a forkserver) ends with
``os._exit`` after running ``multiprocessing``'s own finalizers, so ``atexit`` never runs
in it and whatever its writers still held (exposures, metric events, flag usage) would
be lost. Each exit hook runs once per process, at the interpreter's exit or at such a
child's.

SIGTERM, the way Kubernetes, systemd and docker stop a process, kills a Python process
whose handler is still the default without running ``atexit`` either: a plain
``python service.py`` lost every exposure and metric event its writers held. While
SIGTERM has its default action, cfgcore handles it (:func:`_arm_sigterm`, set
``CFGCORE_SIGTERM_FLUSH=0`` to leave it alone): the exit hooks run on a thread (at most
:data:`SIGTERM_FLUSH_SECONDS`), then the process ends by SIGTERM as it would have. A
handler the application (or its server: gunicorn, uvicorn, celery) installs before or
after is never replaced or wrapped: it decides, and its exit runs the hooks as usual.

Python runs a signal handler on the main thread only, between two bytecodes. The kernel
runs CPython's C-level handler on whichever thread it gives the signal to: a
process-directed SIGTERM goes to the main thread while that thread does not block it and
has no signal pending (or is on a CPU), and otherwise to any other thread that does not
block it. A main thread waiting on a lock (an ``Event``, a ``join``) or in a blocking
read returns to Python for a signal given to it (PEP 475 retries the read after the
handler); given to another thread, the signal is only noted for the main thread, which
sleeps on in C, so the handler never ran and the process never ended, where the
default action would have ended it whichever thread took it (once in CI: a test's
service, its main thread in ``Event().wait()``, hung). A main thread that stays in one
C call that neither returns nor checks for signals runs no handler until that call
ends either: a ``Pool`` worker waits so, on a lock that ``terminate()`` leaves held by
the parent, and its parent's ``with Pool() as pool:`` waited for it forever. So in
every process where cfgcore's handler is installed, cfgcore also watches for SIGTERM
from a thread of its own (:func:`_watch_sigterm`, ``cfgcore-sigterm-watch``). A C
handler of cfgcore's sits in front of CPython's (:func:`cfgcore._eval.sigterm_watch`)
and writes each SIGTERM's number to cfgcore's own pipe, on the thread that caught it,
before CPython's handler runs as before; the watcher reads it and starts the same
flush, whose end wakes the main thread by a SIGTERM sent to that thread (or ends the
process from outside it). A forked child drops its parent's pipe and watches one of
its own.

The cost is one daemon thread blocked on a read and one pipe per process; on Python
3.12+ that thread also makes ``os.fork()`` in an otherwise single-threaded process
warn that the process is multi-threaded (a ``DeprecationWarning``, shown by default
only for a fork called from ``__main__``). The watch leaves the process's one
:func:`signal.set_wakeup_fd` alone: an event loop (asyncio's ``add_signal_handler``,
each ``trio.run()``, which warns when it finds the fd held, and fails under ``-W
error``) takes it as if cfgcore were not there, and the watch goes on hearing SIGTERM
meanwhile. Whoever sets SIGTERM's handler again (``signal.signal``, an event loop's
handler for SIGTERM itself) replaces cfgcore's C handler with CPython's: that handler
decides, and the watcher hears nothing more. One that sets cfgcore's handler back
(uvicorn's ``capture_signals`` as it ends; ``old = signal.signal(SIGTERM, mine)`` then
``signal.signal(SIGTERM, old)``) leaves it under CPython's C handler alone, and the
watch was deaf from then on: the watcher puts cfgcore's C handler back in front of
CPython's within :data:`REWATCH_SECONDS` (it wakes that often to look), and cfgcore
arming its handler on the main thread does at once (:func:`_rewatch`). A SIGTERM
another thread takes in between is Python's handler's alone, as without the watch.
Without the compiled extension (a
pure-Python install, ``CFGCORE_NO_EXTENSIONS``) the C handler in front of CPython's is
:func:`faulthandler.register`'s for SIGTERM (``chain=True``), which writes the threads'
stacks to cfgcore's pipe and then calls CPython's handler: the same watch, the wake-up
fd left alone the same way (it held the wake-up fd before: an event loop that set its
own later left the watcher deaf, and trio warned at each run). faulthandler keeps one
registration per signal: an application that registers SIGTERM with it after cfgcore
takes it over, and the watcher hears nothing more, as for a handler set again; a
handler set back to cfgcore's is told from it by reading SIGTERM's C handler with libc's
``sigaction`` (:mod:`ctypes`), and faulthandler's put back as cfgcore's is. Only
where neither handler can be set (not POSIX) does the watcher read the wake-up fd,
taken while no one holds it.

A SIGTERM that reaches a forked child before the interpreter has set itself up there
is lost: CPython discards the signals its handler caught until then (it cannot tell
them from the parent's). Under the default action the kernel ends such a child anyway;
with cfgcore's handler the child lived on, and a ``with Pool() as pool:`` that ended
while its workers were starting waited for one forever. So while cfgcore's handler is
installed, the thread that forks blocks SIGTERM around the fork (:func:`_before_fork`)
and the child unblocks it once its repairs are done: a SIGTERM sent meanwhile waits in
the kernel and is handled then. A child forked once the process has taken SIGTERM (while
its flush runs) sends itself SIGTERM as its repairs end: under the default action the
parent would not have lived to fork it, and no signal reaches it otherwise (a process
group's was sent before it existed), so a pool's workers started then waited for work
forever once the parent had ended.

SIGINT at exit: Python raises KeyboardInterrupt wherever the main thread is, and a
Ctrl-C as a script ended stopped the exit hooks half way through a flush, losing what
the writers held. While the exit hooks run on the main thread, and SIGINT's handler is
still Python's own, a first SIGINT is logged and the hooks go on (each is bounded); a
second ends the process at once by SIGINT (:data:`sigint_at_exit`). And in a forked
child, while cfgcore's repairs run (milliseconds of Python code), a SIGINT is held and
said rather than raised: CPython drops an at-fork hook's exception, and the repairs it
stopped half way left locks held at the fork held (:func:`_run_in_child`). In the parent
(forking on its main thread) a SIGINT is held through the fork's hooks and raised where
``os.fork()`` returns (:func:`_hold_sigint_for_fork`).
"""

from __future__ import annotations

import _thread
import atexit
import contextlib
import faulthandler
import functools
import importlib
import logging
import os
import select
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

__all__ = [
    "after_fork_in_child",
    "at_exit",
    "exiting",
    "registered",
    "restart_in_child",
    "sigint_at_exit",
]

log = logging.getLogger("cfgcore.runtime.forks")

# The signal module's C half, for the hooks around a fork: its answers are plain numbers
# and handlers, with no enum conversion (Python code, where a KeyboardInterrupt may be
# raised and is then lost: see _run_in_child).
_sig: Any = importlib.import_module("_signal") if "_signal" in sys.builtin_module_names else signal

_HOOKS: list[Callable[[], None]] = []
_RESTARTS: list[Callable[[], None]] = []


def after_fork_in_child(fn: Callable[[], None]) -> Callable[[], None]:
    """Run ``fn()`` in every child process forked after this call (usable as a decorator)."""
    if fn not in _HOOKS:
        _HOOKS.append(fn)
    return fn


def restart_in_child(fn: Callable[[], None]) -> Callable[[], None]:
    """Run ``fn()`` in every forked child after all the repairs: for starting threads
    again, which must not run before the locks they take are repaired."""
    if fn not in _RESTARTS:
        _RESTARTS.append(fn)
    return fn


def registered() -> list[Callable[[], None]]:
    """The registered repairs, then the restarts, in the order they run (tests and
    debugging)."""
    return list(_HOOKS) + list(_RESTARTS)


_EXITS: list[Callable[[], None]] = []
_exited_in: int | None = None  # the process whose exit hooks have run


def at_exit(fn: Callable[[], None]) -> Callable[[], None]:
    """Run ``fn()`` when this process exits: at the interpreter's exit (``atexit``) and
    at the exit of a ``multiprocessing`` child process, which skips ``atexit`` (see the
    module docstring); once per process either way (usable as a decorator)."""
    if fn not in _EXITS:
        _EXITS.append(fn)
        _arm_multiprocessing()
    _arm_sigterm()
    return fn


#: How long the exit hooks may take after SIGTERM before the process ends anyway (an
#: orchestrator's grace period is 30 s by default in Kubernetes and docker).
SIGTERM_FLUSH_SECONDS = 10.0
_sigterm_armed = False
_sigterm_seen = False


def _arm_sigterm() -> None:
    """Handle SIGTERM (see the module docstring) if its action is still the default.
    Only the main thread may set a handler: from another thread this does nothing (the
    next hook registered from the main thread arms it). Armed already: the watch's C
    handler is put back if the handler was set back to cfgcore's since (:func:`_rewatch`)."""
    global _sigterm_armed
    if os.environ.get("CFGCORE_SIGTERM_FLUSH", "").strip() == "0":
        return
    if threading.current_thread() is not threading.main_thread():
        return
    if _sigterm_armed:
        _rewatch()  # (its handler set again since: see _rewatch)
        return
    try:
        if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
            return  # the application's (or SIG_IGN): its decision
        signal.signal(signal.SIGTERM, _on_sigterm)
    except (ValueError, OSError, AttributeError):  # no SIGTERM, or an embedded interpreter
        return
    _sigterm_armed = True
    _watch_sigterm()  # in every process: see the module docstring


_flush_once = threading.Lock()  # taken by whoever starts the SIGTERM flush (once)
_flush_done = False  # the SIGTERM flush has ended: the next SIGTERM ends the process


def _on_sigterm(signum: int, frame: Any) -> None:
    global _sigterm_seen
    if not _sigterm_seen and not _flush_done:
        # First SIGTERM: write what the writers hold on a thread (this handler runs on
        # the main thread between two bytecodes, perhaps inside a writer's lock), and
        # keep serving meanwhile. The watcher (_watch_sigterm) may have started it
        # already for this very signal: it is started once.
        _sigterm_seen = True
        _start_flush()
        return
    # Again (ours once the hooks ran, or the orchestrator insisting): the default action.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


def _start_flush() -> None:
    # A test-and-set that never waits: the handler may run on the main thread while
    # the watcher thread is here.
    if _flush_once.acquire(blocking=False):
        threading.Thread(target=_flush_then_end, name="cfgcore-sigterm", daemon=True).start()


def _flush_then_end() -> None:
    global _flush_done
    hooks = threading.Thread(target=_run_exits, name="cfgcore-exit-hooks", daemon=True)
    hooks.start()
    hooks.join(SIGTERM_FLUSH_SECONDS)
    if hooks.is_alive():
        log.error("cfgcore exit hooks still running %.0f s after SIGTERM: ending without them",
                  SIGTERM_FLUSH_SECONDS)  # fmt: skip
    _flush_done = True  # (a handler still pending for the first SIGTERM ends it too)
    # The main thread's handler ends the process by SIGTERM. The signal goes to that
    # thread, so that the wait it is in (a sleep, a lock, a read) returns to run the
    # handler: sent to the process, it could reach another thread and leave the main
    # thread asleep. And it goes again every 50 ms: one that lands just before the main
    # thread enters a wait (after its last check for signals) interrupts nothing.
    end = time.monotonic() + _END_SECONDS
    while True:
        try:
            signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGTERM)
        except (AttributeError, OSError, ValueError, OverflowError):  # none, or it ended
            os.kill(os.getpid(), signal.SIGTERM)
        if time.monotonic() >= end:
            break
        time.sleep(0.05)
    # A main thread inside a long C call runs no Python handler: end it from here.
    os._exit(128 + signal.SIGTERM)


_END_SECONDS = 5.0  # how long the main thread's handler may take to end the process


# The pipe this process watches for SIGTERM: (pid, read end, write end), written by a
# C handler in front of CPython's (_chained: cfgcore's, or faulthandler's in a
# pure-Python install, _via says which) or, without one, as the wake-up fd.
_watch: tuple[int, int, int] | None = None
_chained = False
_via = ""  # "c": cfgcore._eval.sigterm_watch; "faulthandler"; "": the wake-up fd


def _watch_sigterm() -> None:
    """Start the flush on SIGTERM from a thread of cfgcore's own, not only from the
    handler, which needs the main thread, asleep in C when the signal went to another
    thread (see the module docstring). Armed with the handler, in every process, and
    again in a forked child (:func:`_repair_child`) and a ``multiprocessing`` child
    (:func:`_arm_child`), on the main thread while the handler is ours. Once per
    process. The signal's byte comes from cfgcore's C handler in front of CPython's
    (:func:`cfgcore._eval.sigterm_watch`); without the compiled extension, from
    :func:`faulthandler.register`'s C handler, chained to CPython's in the same way
    (:func:`_faulthandler_watch`); where neither is available (not POSIX), from the
    wake-up fd, taken only while no one (an event loop) holds it."""
    global _watch, _chained, _via
    if _watch is not None and _watch[0] == os.getpid():
        return
    if signal.getsignal(signal.SIGTERM) is not _on_sigterm:
        return  # the default, or the application's handler: its decision
    if threading.current_thread() is not threading.main_thread():
        return
    r, w = os.pipe()
    try:
        os.set_blocking(w, False)  # (a handler never waits on a full pipe)
        via = _chain_sigterm(w)
        chained = bool(via)
        if not chained:
            old = signal.set_wakeup_fd(w, warn_on_full_buffer=False)
    except (ValueError, OSError):  # an embedded interpreter, say
        os.close(r)
        os.close(w)
        return
    if not chained and old != -1:
        signal.set_wakeup_fd(old)  # someone else's: it stays theirs
        os.close(r)
        os.close(w)
        return
    _watch, _chained, _via = (os.getpid(), r, w), chained, via
    threading.Thread(target=_read_wakeups, args=(r, via == "faulthandler", chained),
                     name="cfgcore-sigterm-watch", daemon=True).start()  # fmt: skip


#: How often the watcher checks that cfgcore's C handler is still in front of CPython's
#: (:func:`_rewatch`): a handler set back to cfgcore's is heard again within this time.
REWATCH_SECONDS = 1.0


def _rewatch() -> bool:
    """Put cfgcore's C handler back in front of CPython's once SIGTERM's Python handler
    was set back to cfgcore's (uvicorn's ``capture_signals`` at its end; any
    ``old = signal.signal(SIGTERM, mine)`` ... ``signal.signal(SIGTERM, old)``): setting
    it replaced the C handler with CPython's alone, and the watch heard nothing more.
    True while this process's watch is heard. Called by the watcher every
    :data:`REWATCH_SECONDS` and on the main thread as cfgcore arms its handler; safe
    from any thread (:func:`cfgcore._eval.sigterm_rewatch` holds the GIL from its look at
    the Python handler to its ``sigaction``); without the compiled extension, see
    :func:`_rewatch_faulthandler`."""
    watch = _watch
    if watch is None or watch[0] != os.getpid():
        return False
    if _via == "faulthandler":
        return _rewatch_faulthandler(watch[2])
    compiled = _compiled_watch() if _via == "c" else None
    if compiled is None:
        return False
    try:
        return bool(compiled.sigterm_rewatch(watch[2], _on_sigterm))
    except (OSError, ValueError):  # pragma: no cover - sigaction failing for SIGTERM
        return False


# A pure-Python install's two C handlers for SIGTERM, as _faulthandler_watch read them:
# CPython's (under its Python handlers) and faulthandler's (0, 0: unknown here).
_fh_actions: tuple[int, int] = (0, 0)


def _sigterm_action() -> int:
    """The address of SIGTERM's C handler now (0: unknown), read with libc's
    ``sigaction`` through :mod:`ctypes`: a pure-Python install has no other way to tell
    faulthandler's handler from CPython's. The handler is the first member of ``struct
    sigaction`` on the POSIX systems CPython runs on (glibc, musl, macOS, the BSDs);
    :func:`_faulthandler_watch` checks that the two it reads differ before using them."""
    global _libc_sigaction
    try:
        import ctypes

        if _libc_sigaction is None:
            fn = ctypes.CDLL(None).sigaction
            fn.argtypes = (ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)
            fn.restype = ctypes.c_int
            _libc_sigaction = fn
        if not _libc_sigaction:
            return 0
        buf = ctypes.create_string_buffer(512)  # (larger than any struct sigaction)
        if _libc_sigaction(signal.SIGTERM, None, buf) != 0:
            return 0
        return ctypes.c_void_p.from_buffer(buf).value or 0
    except (ImportError, OSError, AttributeError, ValueError):  # no ctypes, no sigaction
        _libc_sigaction = False
        return 0


_libc_sigaction: Any = None  # libc's sigaction through ctypes (False: none here)


def _rewatch_faulthandler(w: int) -> bool:
    """:func:`_rewatch` without the compiled extension: faulthandler's registration
    put back in front of CPython's handler, while SIGTERM's Python handler is cfgcore's
    and its C handler CPython's alone (any other is left alone). faulthandler keeps its
    registration when its handler is replaced, and registering again would not set it
    again: dropped first, which sets back the action it found (CPython's, SIGTERM's
    already). From the watcher thread the GIL may pass to the main thread between the
    look at the handlers and the registration: a handler the application sets in that
    instant (microseconds, once a second at most) finds faulthandler's in front of
    CPython's, which writes the threads' stacks to cfgcore's pipe (the watcher ignores
    them: the handler is not cfgcore's) and then runs the application's as before. An
    application's own faulthandler registration for SIGTERM is faulthandler's handler
    too, and left alone while it is installed."""
    cpython, ours = _fh_actions
    if not cpython or not _handler_is_ours():
        return False
    now = _sigterm_action()
    if now != cpython:
        return now == ours
    try:
        faulthandler.unregister(signal.SIGTERM)
        faulthandler.register(signal.SIGTERM, file=w, all_threads=True, chain=True)
    except (ValueError, OSError, RuntimeError):  # pragma: no cover
        return False
    return True


def _compiled_watch() -> Any:
    """The compiled extension's SIGTERM handler functions, or None (a pure-Python
    install, or ``CFGCORE_NO_EXTENSIONS``: faulthandler's handler serves)."""
    try:
        from cfgcore import _compat
    except ImportError:  # (armed while cfgcore itself is still being imported)
        return None
    impl = getattr(_compat, "impl", None)
    return impl if hasattr(impl, "sigterm_watch") else None


def _chain_sigterm(w: int) -> str:
    """Have a C handler in front of CPython's write to ``w`` on each SIGTERM: "c"
    (cfgcore's), "faulthandler" (without the compiled extension), or "" where neither
    can (OSError when sigaction fails)."""
    compiled = _compiled_watch()
    if compiled is not None:
        return "c" if compiled.sigterm_watch(w) else ""
    return "faulthandler" if _faulthandler_watch(w) else ""


def _faulthandler_watch(w: int) -> bool:
    """A pure-Python install's C handler in front of CPython's: :func:`faulthandler.register`
    for SIGTERM with ``chain=True`` writes the stacks of the process's threads to ``w``
    (any bytes: a SIGTERM; the watcher reads them as such), on whichever thread the
    signal reached, then calls CPython's handler, as cfgcore's compiled handler does
    with one byte. It holds no wake-up fd. Called while SIGTERM's handler is cfgcore's
    (so its C handler is CPython's, which faulthandler chains to). False where
    faulthandler cannot register a signal (not POSIX: the wake-up fd serves).

    faulthandler keeps one registration per signal. One still there (this process's
    before a fork, or an application's, whose handler ``signal.signal`` replaced when
    cfgcore installed its own) is dropped first, and CPython's handler set again at
    once: dropping it puts back the action it found, which serves a SIGTERM for that
    moment (the default ends the process, CPython's runs cfgcore's handler)."""
    if not hasattr(faulthandler, "register"):
        return False
    global _fh_actions
    unregister: Any = faulthandler.unregister  # (True when one was registered: typeshed says None)
    if unregister(signal.SIGTERM):
        signal.signal(signal.SIGTERM, _on_sigterm)
    cpython = _sigterm_action()
    faulthandler.register(signal.SIGTERM, file=w, all_threads=True, chain=True)
    ours = _sigterm_action()
    # (Both read and told apart, or neither used: see _sigterm_action.)
    _fh_actions = (cpython, ours) if cpython and ours and cpython != ours else (0, 0)
    return True


def _watched_fd() -> int:
    """The fd SIGTERM's number is written to now for this process's watcher (-1: none):
    the C handler's, or, without it, the wake-up fd (read on the main thread only; it
    may be another library's). faulthandler's cannot be read back: its pipe while
    SIGTERM's Python handler is cfgcore's. For tests and debugging."""
    if _via == "faulthandler":
        if _fh_actions[1] and _sigterm_action() != _fh_actions[1]:
            return -1  # (replaced since: the watch hears nothing)
        return _watch[2] if _watch is not None and _handler_is_ours() else -1
    if _chained:
        compiled = _compiled_watch()
        if compiled is None or not compiled.sigterm_chained():
            return -1  # (replaced since: the watch hears nothing)
        return int(compiled.sigterm_watch_fd())
    held = signal.set_wakeup_fd(-1)
    signal.set_wakeup_fd(held)
    return held


def _read_wakeups(r: int, any_byte: bool = False, rewatch: bool = False) -> None:
    # cfgcore's C handler writes SIGTERM's number to this pipe (or Python the number of
    # each signal it catches, to the wake-up fd), on whichever thread the signal
    # reached, before any Python handler runs. faulthandler's (any_byte) writes text,
    # and only for SIGTERM. With either (rewatch), every REWATCH_SECONDS without a byte,
    # it is put back in front of CPython's if cfgcore's Python handler, set back, left
    # it out (_rewatch).
    poller = select.poll() if rewatch and hasattr(select, "poll") else None
    if poller is not None:
        poller.register(r, select.POLLIN)
    while True:
        try:
            if poller is not None and not poller.poll(REWATCH_SECONDS * 1000):
                _rewatch()
                continue
            data = os.read(r, 512)
        except OSError:  # closed (a forked child closes its parent's)
            return
        if not data:
            return
        # Only while the handler is cfgcore's: one the application installed since
        # decides what its SIGTERM does (the wake-up fd stays ours unless it takes it).
        heard = any_byte or signal.SIGTERM in data
        if heard and not _flush_done and _handler_is_ours():
            _start_flush()


def _handler_is_ours() -> bool:
    try:
        return signal.getsignal(signal.SIGTERM) is _on_sigterm
    except (ValueError, OSError):  # pragma: no cover - no SIGTERM here
        return False


def _unwatch_inherited() -> None:
    """In a forked child: the parent's pipe is the parent's (a SIGTERM here would start
    the flush there). Told to write nothing first, then closed: a signal's byte must
    never land in a file that reuses the fd. The child then watches a pipe of its own
    (:func:`_repair_child`)."""
    global _watch, _chained, _via
    if _watch is None or _watch[0] == os.getpid():
        return
    _, r, w = _watch
    _watch = None
    if _chained:
        via, _chained, _via = _via, False, ""
        compiled = _compiled_watch()
        if via == "c" and compiled is not None:
            compiled.sigterm_unwatch()  # (before the pipe is closed: see the docstring)
        elif via == "faulthandler" and not _unregister_faulthandler():
            return  # (w stays open: see _unregister_faulthandler)
        for fd in (r, w):
            with contextlib.suppress(OSError):
                os.close(fd)
        return
    try:
        held = signal.set_wakeup_fd(-1)
    except (ValueError, OSError):
        return  # (w stays open: a signal's byte must not land in a file reusing it)
    if held != w:
        signal.set_wakeup_fd(held)  # replaced meanwhile: it stays theirs
    for fd in (r, w):
        with contextlib.suppress(OSError):
            os.close(fd)


def _unregister_faulthandler() -> bool:
    """Drop the parent's faulthandler registration for SIGTERM in a forked child (SIGTERM
    blocked), so nothing writes to the parent's pipe: True once done. Not while SIGTERM's
    Python handler is the default or ignored: ``signal.signal`` set that action over
    faulthandler's, and dropping the registration would put CPython's handler back
    (which then drops each SIGTERM, "ignored due to race condition"); the registration
    writes nothing then, and the pipe's write end stays open, never reused."""
    try:
        handler = signal.getsignal(signal.SIGTERM)
    except (ValueError, OSError):  # pragma: no cover - no SIGTERM here
        return False
    if handler in (signal.SIG_DFL, signal.SIG_IGN, None):
        return False
    faulthandler.unregister(signal.SIGTERM)
    signal.signal(signal.SIGTERM, handler)  # (CPython's C handler for it, whatever was put back)
    return True


class _SigintAtExit:
    """SIGINT on the main thread while cfgcore writes what its writers hold at exit.

    Python raises KeyboardInterrupt between two bytecodes of whatever the main thread
    runs: a Ctrl-C as a script ended stopped the exit hooks in the middle of a flush,
    and every record still held by a writer was lost, neither written nor counted
    (tens of thousands for a batch job), with a traceback from cfgcore. While the hooks
    run (each is bounded: a writer's flush waits at most 2 s), a first SIGINT is noted
    and logged, and the hooks go on; a second one ends the process at once by SIGINT,
    as the user insists. Only while SIGINT's handler is Python's own (KeyboardInterrupt):
    an application's handler decides, and is never replaced."""

    def __init__(self) -> None:
        self.depth = 0  # nested uses on the main thread (the hooks, a finalizer)
        self.seen = 0  # SIGINTs received meanwhile
        self.previous: Any = None

    def _handler(self, signum: int, frame: Any) -> None:
        self.seen += 1
        if self.seen == 1:
            log.warning("SIGINT while cfgcore writes what its writers hold at exit "
                        "(a few seconds at most); again to end at once")  # fmt: skip
            return
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)

    def _take(self) -> bool:
        """Whether this (outermost) use holds SIGINT now: on the main thread (signal
        handlers run there only), while its handler is Python's own (an application's,
        SIG_IGN or SIG_DFL: its decision)."""
        if threading.current_thread() is not threading.main_thread():
            return False
        try:
            if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
                return False
            signal.signal(signal.SIGINT, self._handler)
        except (ValueError, OSError, AttributeError):  # an embedded interpreter
            return False
        self.previous, self.seen = signal.default_int_handler, 0
        return True

    @contextlib.contextmanager
    def __call__(self) -> Iterator[None]:
        nested = self.depth > 0 and threading.current_thread() is threading.main_thread()
        held = nested or self._take()
        if held:
            self.depth += 1
        try:
            yield
        finally:
            if held:
                self.depth -= 1
                if self.depth == 0 and self.previous is not None:
                    with contextlib.suppress(ValueError, OSError):
                        if signal.getsignal(signal.SIGINT) == self._handler:
                            signal.signal(signal.SIGINT, self.previous)
                    self.previous = None


#: ``with sigint_at_exit():`` around cfgcore's work at the interpreter's exit (see
#: :class:`_SigintAtExit`).
sigint_at_exit = _SigintAtExit()


def exiting() -> bool:
    """True while the interpreter runs its exit functions (``atexit``, finalizers): the
    main thread has ended by then."""
    return not threading.main_thread().is_alive()


_exits_done: dict[int, threading.Event] = {}  # per process: its exit hooks have ended
_exits_locks: dict[int, threading.Lock] = {}  # per process (a lock held at a fork stays so)


def _run_exits() -> None:
    """Run the exit hooks once in this process. A second caller (SIGTERM while
    ``multiprocessing``'s finalizers or ``atexit`` run them) waits until they have ended:
    it returned at once, and the SIGTERM path then ended the process in the middle of
    the first caller's writing (a ``with Pool() as pool:`` block, whose exit terminates
    workers that are already exiting, lost most of what they had recorded)."""
    with sigint_at_exit():
        _run_exits_once()


def _run_exits_once() -> None:
    global _exited_in
    pid = os.getpid()
    with _exits_locks.setdefault(pid, threading.Lock()):  # (setdefault is atomic)
        first = _exited_in != pid
        if first:
            _exited_in = pid
            done = _exits_done[pid] = threading.Event()
    if not first:
        running = _exits_done.get(pid)
        if running is not None:
            running.wait()  # the first caller's bound applies (SIGTERM: the join's timeout)
        return  # multiprocessing's finalizers ran them already (or atexit did)
    try:
        for fn in list(_EXITS):
            try:
                fn()
            except Exception:  # one broken hook must not leave the others undone
                log.exception("cfgcore exit hook %r failed", fn)
    finally:
        done.set()


class _Sentinel:
    """What ``multiprocessing.util.register_after_fork`` holds (weakly) for us."""


_SENTINEL = _Sentinel()
_armed: set[int] = set()  # ids of multiprocessing.util modules armed in this process


def _arm_multiprocessing() -> None:
    """Have ``multiprocessing`` run the exit hooks in its child processes: a finalizer
    in this process (run by ``multiprocessing``'s exit function, before ``os._exit`` in
    a child) and an after-fork hook, which ``multiprocessing`` runs in each child after
    it has cleared the finalizers it inherited. Only once ``multiprocessing`` is
    loaded: a process that never imports it never has such children."""
    util = sys.modules.get("multiprocessing.util")
    if util is None or id(util) in _armed:
        return
    try:
        util.Finalize(None, _run_exits, exitpriority=5)
        util.register_after_fork(_SENTINEL, _arm_child)
    except Exception:  # pragma: no cover - a multiprocessing without these functions
        log.debug("cannot run cfgcore's exit hooks at multiprocessing children's exit")
        return
    _armed.add(id(util))


def _arm_child(_sentinel: object) -> None:
    # In a multiprocessing child, after it cleared the parent's finalizers (the
    # watcher: a forked one has its own already; one from a forkserver starts its own
    # now).
    util = sys.modules.get("multiprocessing.util")
    if util is not None:
        util.Finalize(None, _run_exits, exitpriority=5)
    _watch_sigterm()


_fork_mask = threading.local()  # .blocked: this thread blocked SIGTERM for its fork


def _before_fork() -> None:
    """Block SIGTERM in the forking thread while cfgcore's handler is installed (see
    the module docstring); the child and the parent unblock it after the fork. Left
    alone where the application blocked SIGTERM itself. And hold SIGINT (see
    :func:`_hold_sigint_for_fork`): before hooks run last registered first, so before
    the logging module's."""
    _hold_sigint_for_fork()
    _fork_mask.blocked = False
    if _sig.getsignal(signal.SIGTERM) is not _on_sigterm:
        return
    try:
        before = _sig.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    except (AttributeError, OSError, ValueError):  # no pthread_sigmask here
        return
    _fork_mask.blocked = signal.SIGTERM not in before


def _unblock_after_fork() -> None:
    if getattr(_fork_mask, "blocked", False):
        _fork_mask.blocked = False
        with contextlib.suppress(AttributeError, OSError, ValueError):
            _sig.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})


_sigints_held = 0  # SIGINTs that came while SIGINT was held (around a fork)
_reraise: list[int] = []  # [SIGINT] when the parent is to raise one after its fork


def _hold_sigint(signum: int, frame: Any) -> None:
    global _sigints_held
    _sigints_held += 1


def _hold_sigint_for_fork() -> None:
    """In the thread about to fork, the main one, while SIGINT's handler is Python's
    own: hold SIGINT until the fork's hooks have run, then raise it in the parent where
    ``os.fork()`` returns (:data:`_reraise_sigint`). A KeyboardInterrupt raised inside
    an at-fork hook (cfgcore's, the logging module's), or between the fork and them, is
    dropped by CPython, which prints it: a Ctrl-C as a process forked was lost (2 runs of
    40 forking in a loop). The child holds it on through its repairs (:func:`_run_in_child`)."""
    global _sigints_held
    _reraise.clear()
    _fork_mask.sigint = False
    if threading.current_thread() is not threading.main_thread():
        return
    try:
        if _sig.getsignal(signal.SIGINT) is not signal.default_int_handler:
            return
        _sigints_held = 0
        _sig.signal(signal.SIGINT, _hold_sigint)
    except (ValueError, OSError, AttributeError):
        return
    _fork_mask.sigint = True


def _after_fork_in_parent() -> None:
    _unblock_after_fork()
    if getattr(_fork_mask, "sigint", False):
        _fork_mask.sigint = False
        with contextlib.suppress(ValueError, OSError):
            if _sig.getsignal(signal.SIGINT) is _hold_sigint:
                _sig.signal(signal.SIGINT, signal.default_int_handler)
        if _sigints_held:
            _reraise.append(signal.SIGINT)  # (raised by the next hook, _reraise_sigint)


#: The SIGINT held around a fork (if any), raised in the parent as Python would have:
#: called from C, with no Python frame of its own, so the KeyboardInterrupt comes where
#: ``os.fork()`` returns, not inside a hook (which would drop it). Then it is cleared.
_reraise_sigint = functools.partial(min, _reraise, key=_thread.interrupt_main, default=None)


def _run_in_child() -> None:
    """The repairs, in a forked child. A SIGINT there (a Ctrl-C to the process group
    while a pool starts its workers) raised KeyboardInterrupt in the middle of them, and
    CPython drops an exception from an at-fork hook (printing it): the remaining repairs
    were never done (a lock held at the fork stayed held, writers were not restarted).
    While they run, a SIGINT is held (when its handler is Python's own) and said, not
    raised: raised where ``os.fork()`` returns, it would escape a child before its own
    ``try`` (``multiprocessing``'s included) into the parent's code."""
    global _sigints_held
    _sigints_held = 0  # (the parent's count, inherited)
    _fork_mask.sigint = False
    held = False
    with contextlib.suppress(ValueError, OSError, AttributeError):
        handler = _sig.getsignal(signal.SIGINT)
        if handler is _hold_sigint:  # held by the parent for its fork
            held = True
        elif handler is signal.default_int_handler:
            _sig.signal(signal.SIGINT, _hold_sigint)
            held = True
    try:
        _repair_child()
    finally:
        if held:
            with contextlib.suppress(ValueError, OSError):
                if _sig.getsignal(signal.SIGINT) is _hold_sigint:
                    _sig.signal(signal.SIGINT, signal.default_int_handler)
            if _sigints_held:
                log.warning("SIGINT while process %d set itself up after a fork: not "
                            "raised (it would escape the child's code)", os.getpid())  # fmt: skip


def _repair_child() -> None:
    global _flush_once, _flush_done, _sigterm_seen
    # Forked after this process took SIGTERM (its flush under way, the process about to
    # end): under the default action the parent would have ended at the signal and never
    # forked this child, and nothing sends the child a SIGTERM of its own (a process
    # group's was sent before it existed). A ProcessPoolExecutor or Pool worker forked
    # so waited for work forever once the parent had ended. The child ends as well.
    ending = _sigterm_seen or _flush_done or _flush_once.locked()
    try:
        # A new process: no SIGTERM seen here yet (a lock taken at the fork stays taken).
        _flush_once, _flush_done, _sigterm_seen = threading.Lock(), False, False
        _unwatch_inherited()
        for fn in list(_HOOKS) + list(_RESTARTS):
            try:
                fn()
            except Exception:  # one broken repair must not leave the others undone
                log.exception("cfgcore after-fork repair %r failed", fn)
        # multiprocessing may have been imported since the hooks were registered: a
        # child it forks (this one, perhaps) must run them at its exit.
        if _EXITS:
            _arm_multiprocessing()
    finally:
        # Repaired: a SIGTERM that came since the fork is handled now, by this process.
        _unblock_after_fork()
        # This process's own watcher (the parent's thread is not here, and its pipe was
        # dropped above), on the forking thread, the main thread here. Started once
        # SIGTERM is unblocked: a thread inherits its starter's mask, and one that
        # blocked SIGTERM would leave it to the other threads (those restarted above
        # block it), or to none once the main thread blocks it.
        try:
            _watch_sigterm()
        except Exception:
            log.exception("cfgcore could not watch for SIGTERM in process %d", os.getpid())
        if ending and _handler_is_ours():
            with contextlib.suppress(OSError):
                os.kill(os.getpid(), signal.SIGTERM)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=_before_fork, after_in_parent=_after_fork_in_parent, after_in_child=_run_in_child
    )
    os.register_at_fork(after_in_parent=_reraise_sigint)
    os.register_at_fork(after_in_parent=_reraise.clear)
atexit.register(_run_exits)
