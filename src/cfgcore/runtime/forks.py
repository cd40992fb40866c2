"""One fork registry for every cfgcore object that needs repair in a forked child.

A pre-fork server (gunicorn, uwsgi) may fork while another thread holds a lock or runs
a watcher; in the child that thread does not exist, so its locks would stay held and
its watcher would never run. Every component registers one function here instead of
calling :func:`os.register_at_fork` itself, so the repairs run in a known order
(registration order, which is import order: events and audit before the managers that
use them) and one failing repair cannot stop the others.

Compare ``multiprocessing.util.register_after_fork``: one list, not one hook per class.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

__all__ = ["after_fork_in_child", "registered", "restart_in_child"]

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


def _run_in_child() -> None:
    for fn in list(_HOOKS) + list(_RESTARTS):
        try:
            fn()
        except Exception:  # one broken repair must not leave the others undone
            log.exception("cfgcore after-fork repair %r failed", fn)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_run_in_child)
