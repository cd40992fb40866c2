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
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["after_fork_in_child", "at_exit", "registered", "restart_in_child"]

log = logging.getLogger("cfgcore.runtime.forks")

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
    next hook registered from the main thread arms it)."""
    global _sigterm_armed
    if _sigterm_armed or os.environ.get("CFGCORE_SIGTERM_FLUSH", "").strip() == "0":
        return
    if threading.current_thread() is not threading.main_thread():
        return
    try:
        if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
            return  # the application's (or SIG_IGN): its decision
        signal.signal(signal.SIGTERM, _on_sigterm)
    except (ValueError, OSError, AttributeError):  # no SIGTERM, or an embedded interpreter
        return
    _sigterm_armed = True


def _on_sigterm(signum: int, frame: Any) -> None:
    global _sigterm_seen
    if not _sigterm_seen:
        # First SIGTERM: write what the writers hold on a thread (this handler runs on
        # the main thread between two bytecodes, perhaps inside a writer's lock), and
        # keep serving meanwhile.
        _sigterm_seen = True
        threading.Thread(target=_flush_then_end, name="cfgcore-sigterm", daemon=True).start()
        return
    # Again (ours once the hooks ran, or the orchestrator insisting): the default action.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


def _flush_then_end() -> None:
    hooks = threading.Thread(target=_run_exits, name="cfgcore-exit-hooks", daemon=True)
    hooks.start()
    hooks.join(SIGTERM_FLUSH_SECONDS)
    if hooks.is_alive():
        log.error("cfgcore exit hooks still running %.0f s after SIGTERM: ending without them",
                  SIGTERM_FLUSH_SECONDS)  # fmt: skip
    os.kill(os.getpid(), signal.SIGTERM)  # the main thread's handler ends the process
    # A main thread inside a long C call runs no Python handler: end it from here.
    time.sleep(5.0)
    os._exit(128 + signal.SIGTERM)


_exits_done: dict[int, threading.Event] = {}  # per process: its exit hooks have ended
_exits_locks: dict[int, threading.Lock] = {}  # per process (a lock held at a fork stays so)


def _run_exits() -> None:
    """Run the exit hooks once in this process. A second caller (SIGTERM while
    ``multiprocessing``'s finalizers or ``atexit`` run them) waits until they have ended:
    it returned at once, and the SIGTERM path then ended the process in the middle of
    the first caller's writing (a ``with Pool() as pool:`` block, whose exit terminates
    workers that are already exiting, lost most of what they had recorded)."""
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
    # In a multiprocessing child, after it cleared the parent's finalizers.
    util = sys.modules.get("multiprocessing.util")
    if util is not None:
        util.Finalize(None, _run_exits, exitpriority=5)


def _run_in_child() -> None:
    for fn in list(_HOOKS) + list(_RESTARTS):
        try:
            fn()
        except Exception:  # one broken repair must not leave the others undone
            log.exception("cfgcore after-fork repair %r failed", fn)
    # multiprocessing may have been imported since the hooks were registered: a child
    # it forks (this one, perhaps) must run them at its exit.
    if _EXITS:
        _arm_multiprocessing()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_run_in_child)
atexit.register(_run_exits)
