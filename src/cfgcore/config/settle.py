"""Settling: read a set of files only once their writer has finished with them.

A watcher hears about the first write of a change; a writer may not be done yet (a
file written in chunks, or several files one after another). Hot reload (the
configuration manager's watchers and poll, and the dynamic-config manager's flag-file
watcher) therefore waits until the inputs have stopped changing before reading them,
and checks after reading that they did not change meanwhile. Kept free of heavy
imports: the configuration manager imports it at start-up.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from typing import Any

__all__ = [
    "DEFAULT_MAX_SETTLE_WAIT_MS",
    "DEFAULT_SETTLE_MS",
    "WATCHER_STOP",
    "file_fingerprint",
    "is_settled",
    "wait_until_settled",
]

# A watched input goes live only once no input has changed for this long. A writer that
# writes a file in chunks, or several files one after another (base.yaml, then
# development.yaml), is then read after its last write, not between two of them, as
# long as its writes are less than this apart. Programs write consecutive files 1-30 ms
# apart; 60 ms leaves twice that for a busy machine delaying the writer and for the
# coarse clock file timestamps use (a few ms), at the cost of that much reload latency:
# write -> visible is this window plus the read and compile (median ~66 ms; hot reload's
# target is a median of at most 100 ms, which a 100 ms window alone already missed).
DEFAULT_SETTLE_MS = 60
_SETTLE_WINDOWS = 20  # give up (retry on the next event or poll) after this many windows
# The longest one sleep of the settle wait (ns): a settle window past what a sleep or an
# Event.wait takes (threading.TIMEOUT_MAX, ~292 years) is waited for in sleeps this
# long, as the window it is, instead of an OverflowError on the watcher thread.
_LONGEST_SLEEP_NS = 10**9 * 86_400
# The longest a watched input may keep the previous version live by never settling (a
# file rewritten continuously, a writer stuck in a loop): past it, hot reload reads the
# inputs as they are (they must still parse and validate) and then keeps watching.
# Bounded staleness is worth a read that may catch a multi-file writer between two files
# (validation, and the next settled read, are the safety net); seconds, because a
# writer that merely pauses less than the settle window between files is done long
# before this.
DEFAULT_MAX_SETTLE_WAIT_MS = 5000

# The stop event of the watcher (thread, or asyncio task and the worker threads it runs
# callbacks in) running the current code: a settle wait there ends as soon as the
# watcher is stopped. close() otherwise waited out a writer that kept writing (up to 20
# settle windows), or gave up joining the watcher, which then reloaded after close().
WATCHER_STOP: ContextVar[threading.Event | None] = ContextVar("cfgcore_watcher_stop", default=None)


def file_fingerprint(paths: Iterable[str]) -> tuple[tuple[str, int, int, int, int], ...]:
    """``(path, inode, size, mtime_ns, ctime_ns)`` of each existing file among ``paths``.

    ``os.stat`` follows symlinks, so a ConfigMap's ``..data`` swap changes the inode.
    The change time moves with a ``chmod``/``chown`` too: a file refused because it
    could not be read (written with the wrong owner or mode) is read again once its
    permissions are fixed, though its contents and modification time did not change.
    """
    out = []
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            continue
        out.append((path, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns))
    return tuple(out)


def wait_until_settled(
    take: Callable[[], tuple[Any, ...]],
    settle_ms: int,
    *,
    windows: int = _SETTLE_WINDOWS,
    expected: Iterable[str] = (),
    known: Iterable[tuple[Any, ...]] = (),
    stop: threading.Event | None = None,
    deadline: float | None = None,
) -> tuple[Any, ...] | None:
    """Wait until the files ``take()`` fingerprints (see :func:`file_fingerprint`) are
    stable; return that fingerprint, or None if they kept changing for ``windows``
    settle periods, or ``stop`` was set (the caller keeps what it has and retries later).

    Stable means: no file was modified in the last ``settle_ms``, or the fingerprint
    stayed identical over a whole ``settle_ms`` (which also covers a file whose
    timestamp is in the future, as clock skew on a network filesystem can make it).
    ``expected`` are the paths the last version read: one of them missing is a change
    without a timestamp (a file deleted or renamed away, as an editor does just before
    it writes the new one, or its directory renamed away and back), so the files must
    then stay identical over a whole ``settle_ms``: a file that comes back within it is
    read as it is then, one that stays missing is read (and refused) once it has.
    ``known`` are fingerprints taken earlier (the last version's): a file caught in the
    middle of a truncation against them (:func:`mid_truncation`) must stay identical
    over a whole ``settle_ms`` too, its timestamps being the old ones.
    ``deadline`` (a ``time.monotonic()`` value) ends the wait early, with None.
    Runs on watcher threads only: an explicit reload never waits.
    """
    current = take()
    if settle_ms <= 0:
        return current
    wanted = frozenset(expected)
    earlier = tuple(known)
    settle_ns = settle_ms * 1_000_000
    for _ in range(windows):
        if stop is not None and stop.is_set():
            return None
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            return None
        delay = settle_ns
        if not wanted - {entry[0] for entry in current} and not mid_truncation(current, earlier):
            newest = max((entry[3] for entry in current), default=0)
            age = time.time_ns() - newest
            if age >= settle_ns:
                return current
            delay = min(settle_ns - age, settle_ns)
        cut = False
        if left is not None and left * 1e9 < delay:
            delay, cut = int(left * 1e9), True
        if not _slept(delay, stop):
            return None
        if cut:  # not a whole window: an unchanged fingerprint proves nothing
            return None
        again = take()
        if again == current:
            return current
        current = again
    return None


def mid_truncation(fingerprint: tuple[Any, ...], known: Iterable[tuple[Any, ...]]) -> bool:
    """True if a file in ``fingerprint`` has the inode and change time one of the
    ``known`` fingerprints gave it, but another size: a change caught half done. Every
    change of a file's size moves its change time too, but a truncation (``O_TRUNC``,
    ``truncate``) sets the size first and the times after, and ``stat`` takes no lock:
    one in between sees the new size with the old times, so an emptied file looks
    modified long ago (settled), and the fingerprint moves again once the times land.
    Where two ``known`` fingerprints disagree on a file, the later one counts."""
    seen = {(e[0], e[1], e[4]): e[2] for fp in known for e in _entries(fp)}
    return any(seen.get((e[0], e[1], e[4]), e[2]) != e[2] for e in _entries(fingerprint))


def _entries(fingerprint: Any) -> list[tuple[Any, ...]]:
    """The :func:`file_fingerprint` entries of ``fingerprint`` (a reloader may be given
    a fingerprint of its own, of another shape: it has none)."""
    if not isinstance(fingerprint, tuple):
        return []
    return [e for e in fingerprint if isinstance(e, tuple) and len(e) == 5]


def is_settled(fingerprint: tuple[Any, ...], settle_ms: int) -> bool:
    """True if no file in ``fingerprint`` was modified in the last ``settle_ms``: a
    later write then gets a later timestamp, so the fingerprint is a safe key for
    "this exact input" (two writes within one tick of the coarse file clock, with the
    same size, would otherwise look alike)."""
    newest = max((entry[3] for entry in fingerprint), default=0)
    return time.time_ns() - newest >= settle_ms * 1_000_000


def _slept(delay_ns: int, stop: threading.Event | None) -> bool:
    """Sleep ``delay_ns`` (in sleeps of at most a day); False if ``stop`` was set."""
    end = time.monotonic_ns() + delay_ns
    while (left := end - time.monotonic_ns()) > 0:
        step = min(left, _LONGEST_SLEEP_NS) / 1e9
        if stop is not None:
            if stop.wait(step):
                return False
        else:
            time.sleep(step)
    return stop is None or not stop.is_set()
