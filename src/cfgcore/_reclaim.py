"""Free what a reload leaves behind a piece at a time, so no C call holds the GIL long.

Freeing a large container is one C call that holds the GIL until every item is gone.
A hot reload of a 43,000-flag document dropped two such structures on the watcher's
(or fleet follower's) thread: the compiler's working state (27-35 ms) and the older
snapshot's tables, millions of numbers in lists (57 ms). Request threads could not run
meanwhile. :func:`retire` hands such an object to the ``cfgcore-reclaim`` thread, and
:func:`dismantle` frees one on the calling thread (the compiler's state, which must be
gone before the collector is switched back on); both take it apart in steps of
:data:`CHUNK` items (well under a millisecond each) with Python code between them, so
a waiting thread gets the GIL within its switch interval, as from any Python loop.
:func:`let_others_run` is that hand-over point for C loops (the compiled snapshot's
table copies).

Only what nobody else holds is taken apart: a container is emptied only when the
reclaimer's reference is its last one (``sys.getrefcount``), so no other thread can
see it change. Something still held elsewhere (a request that pinned the old snapshot,
a listener that kept it) is waited for up to :data:`PATIENCE` seconds and then just
dropped, and whoever holds it last frees it as before. Free-threaded builds, where
reference counts are not exact, drop every object at once.

What it knows how to take apart: a compiled snapshot of either evaluator (its tables
once it is gone), :class:`cfgcore.compiler.Tables`, a :class:`cfgcore.snapshot.Snapshot`'s
``flags`` and ``segments``, plain lists, dicts and sets, and any object's ``__dict__``
(the compiler's state). Everything else is dropped whole.
"""

from __future__ import annotations

import collections
import sys
import threading
import time
from typing import Any

from cfgcore.runtime.forks import after_fork_in_child

#: Items freed per step: at ~20 ns an item, about 0.3 ms of freeing between two
#: chances for another thread to take the GIL.
CHUNK = 16384

#: How long something another reference still holds is waited for before it is
#: dropped as it is (seconds).
PATIENCE = 5.0

#: From how many flags :meth:`cfgcore.engine.Engine.swap` hands the older snapshot to the
#: reclaimer: freeing 2,000 simple flags whole takes about 1 ms on a 2-core VM (0.6 us a
#: flag), well within a thread switch interval (5 ms); a smaller engine starts no thread.
LARGE_FLAGS = 2000

_EXACT_COUNTS = getattr(sys, "_is_gil_enabled", lambda: True)()

_lock = threading.Lock()
_jobs: collections.deque[tuple[float, Any]] = collections.deque()
_worker: threading.Thread | None = None
#: Objects taken apart, and objects dropped whole because something else held them
#: (for tests and debugging).
stats = {"taken_apart": 0, "dropped_shared": 0}


def retire(obj: Any) -> None:
    """Free ``obj`` off this thread, a piece at a time, once nothing else holds it.

    The caller must drop its own references right after the call (a local it returns
    from, a ``del``): the reclaimer waits for the count to fall to its own reference."""
    global _worker
    if not _EXACT_COUNTS:
        return  # the caller's reference goes, and the object with it, as before
    with _lock:
        if _worker is None or not _worker.is_alive():
            worker = threading.Thread(target=_run, name="cfgcore-reclaim", daemon=True)
            try:
                worker.start()
            except RuntimeError:
                # At interpreter shutdown, or out of threads: freed as before, whole,
                # as the caller drops it.
                return
            _worker = worker
        _jobs.append((time.monotonic() + PATIENCE, obj))


def retire_if_large(compiled: Any) -> None:
    """:func:`retire` a compiled snapshot of at least :data:`LARGE_FLAGS` flags; leave a
    smaller one to its holders, freed whole as they drop it (no thread started)."""
    keys = getattr(getattr(compiled, "tables", None), "keys", None)
    if type(keys) is list and len(keys) >= LARGE_FLAGS:
        retire(compiled)


def let_others_run() -> None:
    """Nothing, as a Python function: the interpreter hands the GIL to a thread that
    asked for it where a Python function starts, so C code with a long loop (the
    compiled evaluator building a snapshot) calls this between chunks of its work."""


def dismantle(box: list[Any]) -> None:
    """Free the one object in ``box`` here and now, a piece at a time, when ``box``
    held its last reference (else just drop it). For state built while the collector
    was paused (:func:`cfgcore.snapshot.gc_paused`): what is still alive when it is
    switched back on is walked by its next collection, in one C call (70 ms for a
    43,000-flag compile's working state, 172,000 tuples), so that state is freed
    before, by the thread that built it."""
    work = [box.pop()]
    while work:
        obj = work.pop()
        # References: ``obj`` and getrefcount's argument, when nobody else holds it.
        if _EXACT_COUNTS and sys.getrefcount(obj) == 2:
            work.extend(_take_apart(obj))
        del obj


def drain(timeout: float = PATIENCE + 1.0) -> bool:
    """Wait until every retired object is freed or dropped; True if done in time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with _lock:
            worker = _worker
            if not _jobs and (worker is None or not worker.is_alive()):
                return True
        time.sleep(0.001)
    return False


def _run() -> None:
    global _worker
    waits = 0  # looks in a row at something still held: the sleep between them doubles
    while True:
        with _lock:
            if not _jobs:
                _worker = None
                return
            deadline, obj = _jobs.popleft()
        # References now: ``obj`` here, getrefcount's argument, and anyone else's.
        if sys.getrefcount(obj) > 2:
            if time.monotonic() < deadline:
                with _lock:
                    _jobs.append((deadline, obj))
                del obj
                time.sleep(min(0.001 * 2**waits, 0.05))  # (without the GIL)
                waits = min(waits + 1, 6)
                continue
            stats["dropped_shared"] += 1
        else:
            waits = 0
            stats["taken_apart"] += 1
            for part in _take_apart(obj):
                with _lock:
                    _jobs.append((deadline, part))
                del part
        del obj


def _take_apart(obj: Any) -> list[Any]:
    """Empty ``obj`` (held by the caller alone) a step at a time; return the parts
    that may be large containers themselves, each to be taken apart in turn."""
    parts: list[Any] = []
    kind = type(obj)
    if kind is list:
        while obj:
            del obj[-CHUNK:]
    elif kind is dict:
        while obj:
            obj.popitem()  # one item a step: the loop itself lets other threads run
    elif kind is set:
        while obj:
            obj.pop()
    elif _is_compiled(obj):
        # Its C arrays and tuples go with it (one free each, or a tuple of shared
        # items); its tables, the large part, are taken apart next once it is gone.
        parts.append(obj.tables)
    elif _is_tables(obj):
        for name in type(obj).__slots__:
            value = getattr(obj, name, None)
            setattr(obj, name, None)
            # The snapshot compiled is waited for (the code that swapped it out may
            # still hold it a moment); a list another compile's tables share is not.
            if _is_snapshot(value) or (_container(value) and sys.getrefcount(value) == 2):
                parts.append(value)
            del value
    elif _is_snapshot(obj):
        # A frozen Struct: its dicts are emptied in place when it alone holds them.
        for name in ("flags", "segments"):
            value = getattr(obj, name, None)
            # References: the Struct's field, ``value`` and getrefcount's argument.
            if type(value) is dict and sys.getrefcount(value) == 3:
                while value:
                    value.popitem()
            del value
    elif hasattr(obj, "__dict__") and type(vars(obj)) is dict:
        state = vars(obj)
        for name in list(state):
            value = state.pop(name)
            # (Not what it shares with others, such as the tables a compile returns.)
            if _container(value) and sys.getrefcount(value) == 2:
                parts.append(value)
            del value
    return parts


def _container(obj: Any) -> bool:
    return type(obj) in (list, dict, set)


def _is_compiled(obj: Any) -> bool:
    return type(obj).__name__ == "CompiledSnapshot" and hasattr(obj, "tables")


def _is_tables(obj: Any) -> bool:
    from cfgcore.compiler import Tables

    return type(obj) is Tables


def _is_snapshot(obj: Any) -> bool:
    from cfgcore.snapshot import Snapshot

    return type(obj) is Snapshot


@after_fork_in_child
def _after_fork_in_child() -> None:
    # The reclaimer thread does not exist in a forked child, and its lock may have been
    # held by it at the fork. What it had still to free is freed by the child's own
    # reclaimer, started by the child's next retire().
    global _lock, _worker
    _lock = threading.Lock()
    _worker = None
