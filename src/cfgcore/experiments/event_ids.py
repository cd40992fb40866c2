"""Event ids of metric events: made, checked, and counted once.

Every metric event cfgcore writes carries an ``event_id`` in its log line, so two
events that agree in every other field (one user, one metric, one value, one second)
are told apart from one event written twice (a log line copied, an input ingested
again).

Where ids come from
-------------------
- The caller: ``track_metric(..., event_id=...)``, ``MetricsStore.record(...,
  event_id=...)``, an ``"event_id"`` in a line given to ``cfgcore experiment ingest``
  (the application's own id of the event: an order number, a message id), so a
  retried call or a re-sent line is the same event.
- Otherwise cfgcore: :class:`IdSource` gives ``<16 hex digits>-<counter>``, a random
  64-bit prefix per process (drawn again in a forked child) and a counter. The metric
  writer's thread assigns them as it writes the lines: a request pays nothing for them.
  Two processes share a prefix with probability about n**2 / 2**65 for n processes.

What counts as one event
------------------------
An event is known by its test, user, metric and id: ids a caller makes per user
(``purchase-1``, ``purchase-2``) or one id for an order's ``revenue`` and its
``purchase`` are distinct events, as they should be.

Counting each id once, in bounded memory
----------------------------------------
Readers of the logs (``cfgcore experiment report``, ``analyze``, the guardrail checks)
and a store given caller ids keep, per test, the 64-bit keys (``hash()`` of the
event's user, metric and id, salted per process, so no input can choose collisions) of
its last events with ids in :class:`IdWindow`: two generations of at most
``window`` keys each in flat arrays (12 to 24 bytes a key), so a test remembers its
last ``window`` to ``2 * window`` ids, at most about ``48 * window`` bytes (48 MB for
the default million). An event whose key is there is a duplicate: left out of every
sum, counted (:attr:`MetricsStore.duplicates`, the report's ``duplicate_events``). A
copy further back than that counts again. ``cfgcore experiment ingest`` checks its
input's ids against the whole logs (:class:`LoggedIds`), so it never writes an id the
logs hold; the window only meets copies made otherwise (a caller retrying much later,
log files concatenated by hand). Two distinct events whose keys collide within the
window (probability about window**2 / 2**64, 5e-8 for a million) count once.

Lines without an ``event_id`` (logs of older releases) are counted as before, each
line one event.
"""

from __future__ import annotations

import itertools
import os
from array import array
from collections.abc import Iterable, Mapping
from typing import Any

from cfgcore.details import MAX_EVENT_ID, user_id_text
from cfgcore.experiments.exposures import LogTail, MetricRecord, in_run
from cfgcore.runtime.forks import after_fork_in_child

__all__ = [
    "EVENT_ID_WINDOW",
    "MAX_EVENT_ID",
    "IdSource",
    "IdWindow",
    "LoggedIds",
    "event_id_text",
]

#: Ids a test remembers per generation (:class:`IdWindow`): its last 1,000,000 to
#: 2,000,000 events with ids are counted once.
EVENT_ID_WINDOW = 1_000_000


def event_id_text(value: Any) -> str | None:
    """``value`` as an event id, or None when it is none: a str (or an int, as its
    decimal text) of 1 to :data:`MAX_EVENT_ID` characters that JSON can hold (no lone
    surrogate). Read by its real type, as the engine reads a user id
    (:func:`~cfgcore.details.bucketable_id`): never raises, and an object whose
    ``__class__`` poses as a str or int (or raises) is no id."""
    kind = type(value)
    if kind is str and value.isascii():
        # The common id, read on request threads (OpenFeature's track reads it, then
        # track_metric): user_id_text's answer for it, without the call and the checks.
        text = value
    elif issubclass(kind, bool) or not issubclass(kind, str | int):
        return None
    else:
        text = user_id_text(value)
        if text is None:
            return None
    return text if 0 < len(text) <= MAX_EVENT_ID else None


class IdSource:
    """``next()``: ids unique per process (a random 64-bit prefix and a counter). Used by
    the metric writer's thread; a forked child draws a new prefix (see module doc)."""

    def __init__(self) -> None:
        self._renew()

    def _renew(self) -> None:
        self.prefix = os.urandom(8).hex() + "-"
        self._count = itertools.count(1)

    def next(self) -> str:
        """A new id."""
        return f"{self.prefix}{next(self._count):x}"


#: The process's source of event ids.
IDS = IdSource()
after_fork_in_child(IDS._renew)


def event_key(user: Any, metric: str, event_id: str) -> int:
    """The key of an event in an :class:`IdWindow` (never 0, the empty slot)."""
    return hash((user, metric, event_id)) or 1


class _Keys:
    """A set of non-zero 64-bit keys: open addressing (linear probing) in an
    ``array('q')``, kept between 1/3 and 2/3 full: 12 to 24 bytes a key, no Python
    object per key."""

    __slots__ = ("keys", "mask", "used")

    def __init__(self, capacity: int = 64) -> None:
        self.keys = array("q", bytes(8 * capacity))
        self.mask = capacity - 1
        self.used = 0

    def _slot(self, key: int) -> int:
        """The slot holding ``key``, else the empty slot where it would go."""
        keys, mask = self.keys, self.mask
        i = key & mask
        while True:
            k = keys[i]
            if k == key or k == 0:
                return i
            i = (i + 1) & mask

    def __contains__(self, key: int) -> bool:
        return self.keys[self._slot(key)] == key

    def add(self, key: int) -> bool:
        """Add ``key``; False if it was there."""
        i = self._slot(key)
        if self.keys[i] == key:
            return False
        if 3 * (self.used + 1) > 2 * (self.mask + 1):
            self._grow()
            return self.add(key)
        self.keys[i] = key
        self.used += 1
        return True

    def _grow(self) -> None:
        capacity = 2 * (self.mask + 1)
        mask = capacity - 1
        keys = array("q", bytes(8 * capacity))
        for key in self.keys:
            if key:
                i = key & mask
                while keys[i]:
                    i = (i + 1) & mask
                keys[i] = key
        self.keys, self.mask = keys, mask


class IdWindow:
    """The keys of a test's last ``window`` to ``2 * window`` events with ids (see the
    module docstring): :meth:`seen` tells a duplicate."""

    __slots__ = ("window", "current", "previous")

    def __init__(self, window: int = EVENT_ID_WINDOW) -> None:
        self.window = window
        self.current = _Keys()
        self.previous: _Keys | None = None

    def seen(self, key: int) -> bool:
        """True if ``key`` is remembered (a duplicate); else remember it."""
        previous = self.previous
        if previous is not None and key in previous:
            return True
        if not self.current.add(key):
            return True
        if self.current.used >= self.window:
            self.previous, self.current = self.current, _Keys()
        return False

    @property
    def size(self) -> int:
        """Keys remembered."""
        return self.current.used + (self.previous.used if self.previous else 0)


class LoggedIds:
    """Which of an ingest's events with ids the metric log already holds.

    ``wanted``: ``{(test, user, metric, event_id): anything}``, the input's events.
    :meth:`read` reads the log (rotated files included, oldest first) from where the
    previous read stopped and keeps, for each wanted key, the first record of it that
    belongs to the run of its test the ingest writes for (``runs``, as
    :func:`~cfgcore.experiments.abtest.record_runs` gives it): a record of a deleted
    test's earlier run is another event. Memory: the input's keys and the records
    found, bounded by the input (which the ingest holds whole anyway). The ingest reads
    the whole log before taking the logs' locks, then, under them, what was appended
    meanwhile (:class:`~cfgcore.experiments.exposures.LogTail` follows rotations)."""

    def __init__(
        self,
        path: str,
        wanted: Iterable[tuple[str, str | None, str, str]],
        runs: Mapping[str, float | None],
    ) -> None:
        self.wanted = set(wanted)
        self.runs = dict(runs)
        self.found: dict[tuple[str, str | None, str, str], MetricRecord] = {}
        self._tail = LogTail(path, MetricRecord)

    def read(self, *, lock_held: bool = False) -> None:
        """Read what the log holds past the previous read (``lock_held``: the caller
        holds the log's lock)."""
        if self.wanted:
            self._tail.read(self._keep, lock_held=lock_held)

    def _keep(self, records: list[MetricRecord]) -> None:
        wanted, found, runs = self.wanted, self.found, self.runs
        for r in records:
            if r.event_id is None:
                continue
            key = (r.test, r.user, r.metric, r.event_id)
            if key in wanted and key not in found and in_run(r.test, r.run, r.ts, runs):
                found[key] = r

    def close(self) -> None:
        self._tail.close()
