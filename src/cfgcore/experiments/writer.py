"""Off-thread batching for the request path's records (exposures, metric events).

The request thread only appends a tuple to a :class:`collections.deque` (atomic under
the GIL, no lock, no condition variable, no wake-up): a daemon thread polls the deque,
and hands records to ``deliver`` in small batches, sleeping for zero seconds between
batches. That sleep releases the GIL, so a request thread waiting for it gets it after
one small batch instead of after the interpreter's switch interval (5 ms): writing a
backlog never stalls a request by more than one batch's work.

Polling costs an idle process wake-ups, so the poll interval doubles while there is
nothing to write, from ``POLL_INTERVAL`` (20 ms) to ``IDLE_INTERVAL`` (250 ms: a
record appended to an idle writer waits at most that long), and drops back to 20 ms
once records come. :meth:`flush` and :meth:`close` wake the writer at once.

A bounded backlog, by count and by bytes: when ``max_pending`` records wait, or when
the records waiting take ``max_bytes`` (an estimate: see :data:`RECORD_BYTES`), new
ones are dropped and counted (``dropped``), never silently; the request thread never
waits and never raises for it. :meth:`flush` and :meth:`close` wait until every record
appended before them was delivered (or its delivery failed): a record accepted is
never dropped afterwards.

The byte bound costs a record one length check of the text a request gives it (the
fields ``sized`` names: the user id, a metric's name; test and variant names come from
the flag document): a record whose text is at most its share of the bytes
(``max_bytes / max_pending`` less :data:`RECORD_BYTES`: 575 characters by default) is
bounded by the count, as before. Only longer ones (an id of 100 KB) are added up (their
excess over their share, so each counts its size once: ``max_bytes // size`` records of
one size fit), by the request thread that appends one and by the writer that takes it.
The check and the sums are the evaluator's ``RecordQueue`` (C arithmetic in the
compiled one, inside the append: no Python frame).

Records whose delivery failed (a full disk, a file over its size limit) are counted in
``lost``, and so are records still waiting when the interpreter exits (the exit flush
waits 2 s per writer: a sink that is stuck, or a backlog too long to write in that
time, is counted and logged rather than lost silently with the daemon thread); both
counts are reported as ``cfgcore_dropped_events_total``. A writer that keeps failing
logs the first failure with its traceback, then one line per ``FAILURE_LOG_EVERY``
seconds with the records lost meanwhile, and one when it writes again: a full disk
never floods the log with a traceback per batch.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

from cfgcore._compat import impl as _impl
from cfgcore._layout import RECORD_BYTES as RECORD_BYTES  # (re-exported: see below)
from cfgcore._numbers import wait_seconds
from cfgcore.observability import instruments
from cfgcore.runtime.forks import after_fork_in_child, at_exit, restart_in_child

log = logging.getLogger("cfgcore.experiments")

#: How long the writer sleeps when there is nothing to write (seconds), right after a
#: batch; each empty poll doubles it, up to IDLE_INTERVAL.
POLL_INTERVAL = 0.02
IDLE_INTERVAL = 0.25

#: While writes keep failing (a full disk), seconds between two log lines summing up the
#: records lost meanwhile (the first failure is logged at once, with its traceback).
FAILURE_LOG_EVERY = 60.0

#: Default bound on the bytes the records waiting for one writer may take: 64 MiB, about
#: 100,000 records of 670 bytes. Typical exposures and metric events (ids and names of
#: tens of characters) meet the count bound (100,000) long before this one.
MAX_PENDING_BYTES = 64 * 1024 * 1024

# RECORD_BYTES (96), imported above from _layout, where the compiled queue reads it:
# what a record counts for besides the text it was given (its tuple, its numbers, the
# flag document's names, and the keys and punctuation of its JSON line); that text
# counts one byte per character (the JSON line of ASCII text; non-ASCII text takes up
# to 4 bytes a character there and in memory).


class BackgroundWriter:
    """Deliver appended records on a daemon thread, in batches of ``batch_size``.

    ``deliver(batch)`` runs on the writer thread (or on the caller's, inside
    :meth:`flush` when no writer runs); an exception from it is logged and counted in
    ``errors`` and the batch counts as done.
    """

    def __init__(
        self,
        deliver: Callable[[list[Any]], None],
        *,
        name: str,
        max_pending: int = 100_000,
        max_bytes: int = MAX_PENDING_BYTES,
        sized: tuple[int, ...] = (),
        batch_size: int = 64,
    ) -> None:
        if type(max_bytes) is not int or max_bytes < 1:
            raise ValueError(f"max_bytes must be a positive integer, not {max_bytes!r}")
        self._deliver = deliver
        self.name = name
        self.batch_size = batch_size
        self._pending: collections.deque[Any] = collections.deque()
        # The request path: append(record) is the evaluator's RecordQueue.append (no
        # Python frame in the compiled one), which starts the thread on first use. It
        # holds the byte bound too: the length check of the fields `sized` names (the
        # text a request gives a record) and the long records' sums (`long_added`, which
        # it adds to, and `long_taken`, which _write_some adds to).
        self._queue = _impl.RecordQueue(
            self._pending, max_pending, self._start, max_bytes=max_bytes, sized=sized
        )
        if hasattr(self._queue, "late"):
            # The reference queue checks `closed` and appends in two steps: an append
            # that finds it closed once queued asks whether its record is still written.
            self._queue.late = self._late
        # What each record whose text is short counts for (max_bytes / max_pending).
        self._share: int = self._queue.share
        self.append: Callable[[Any], bool] = self._queue.append
        self.done = 0  # delivered or failed
        self.errors = 0
        self.lost = 0  # records whose delivery failed (see failed())
        self._failing_since: float | None = None  # monotonic time of the last failure log
        self._lost_unlogged = 0  # records lost since that log line
        self._drops_seen = 0  # `dropped` as last logged
        self._byte_drops_seen = 0  # the byte bound's share of them
        self._drops_logged_at: float | None = None  # monotonic time of that log line
        self._thread: threading.Thread | None = None
        self._restart = False  # set in a forked child whose parent ran this writer
        self._closed_at_exit = False  # closed by the exit hooks (_flush_at_exit)
        self._start_lock = threading.Lock()
        self._deliver_lock = threading.Lock()  # one batch at a time, in order
        # Set under the delivery lock once closed with nothing waiting: nothing queued
        # from then on is written (see _late).
        self._sealed = False
        self._withdrawn = 0  # records queued after that and taken back (see _late)
        self._wake = threading.Event()  # flush() and close(): stop sleeping, poll now
        self.polls = 0  # the writer thread's empty polls (how often an idle writer wakes)
        _WRITERS.add(self)
        # Metrics harvest `dropped` when collected (the request path only adds to it).
        instruments.track_writer(self)

    # The queue's counters and state, read through the writer.
    @property
    def appended(self) -> int:
        """Records accepted so far."""
        return self._queue.appended - self._withdrawn  # type: ignore[no-any-return]

    @property
    def dropped(self) -> int:
        """Records refused: the backlog was full (by count or by bytes), or the writer
        closed."""
        queue = self._queue
        return queue.dropped + queue.byte_dropped  # type: ignore[no-any-return]

    @property
    def max_bytes(self) -> int:
        """Bytes the records waiting may take (an estimate) before new ones are dropped.
        (Setting it leaves each record's share as it was: ``max_bytes`` as given to the
        constructor over ``max_pending``.)"""
        return self._queue.max_bytes  # type: ignore[no-any-return]

    @max_bytes.setter
    def max_bytes(self, value: int) -> None:
        if type(value) is not int or value < 1:
            raise ValueError(f"max_bytes must be a positive integer, not {value!r}")
        self._queue.max_bytes = min(value, _impl.MAX_QUEUE_BYTES)

    @property
    def pending_bytes(self) -> int:
        """The estimate the byte bound judges: the records waiting, each counted as its
        share of ``max_bytes`` or, when its text is longer, as its size (its share and
        its excess over it).

        The long records' excesses are two sums, each added to by one side only (request
        threads add what they queue, under the queue's step, the writer what it takes),
        so the writer takes no lock. The writer's sum is never set past the requests',
        and it is set to it whenever the writer finds the backlog empty, so an error (a
        record queued as the writer looked leaves the estimate until it is taken) does
        not outlive the records waiting."""
        queue = self._queue
        excess = max(0, queue.long_added - queue.long_taken)
        return len(self._pending) * self._share + excess  # type: ignore[no-any-return]

    @property
    def max_pending(self) -> int:
        """Records that may wait before new ones are dropped."""
        return self._queue.max_pending  # type: ignore[no-any-return]

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called: appends are refused."""
        return bool(self._queue.closed)

    def start(self) -> None:
        """Start the writer thread now rather than on the first :meth:`append`.

        Starting a thread waits for it to run (0.1-2 ms here): a manager that serves
        the request path starts its writers when it is built, so no request pays for
        that. A writer started before a fork is started again in the child."""
        if self._thread is None:
            self._start()

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is None and not self.closed:
                t = threading.Thread(target=self._run, name=self.name, daemon=True)
                t.start()
                self._thread = t
                self._queue.started = True

    def _run(self) -> None:
        wait = POLL_INTERVAL
        wake = self._wake
        while True:
            # Cleared before looking, so a wake-up set after this point ends the wait
            # below at once; one set before it is answered by this very poll.
            wake.clear()
            queue = self._queue
            if queue.dropped + queue.byte_dropped != self._drops_seen:
                self._log_drops()
            if self._write_some():
                wait = POLL_INTERVAL
                time.sleep(0)  # let a waiting request thread have the GIL
                continue
            if self.closed:
                if self._seal():
                    return
                continue  # queued meanwhile: written before the end
            self.polls += 1
            wake.wait(wait)
            wait = min(wait * 2, IDLE_INTERVAL)

    def _seal(self) -> bool:
        """End the writing of a closed writer if nothing waits: True then, and every
        append from now on that finds its record queued is told it was taken back."""
        with self._deliver_lock:
            if self._pending:
                return False
            self._sealed = True
            return True

    def _late(self, record: Any) -> bool:
        """Whether ``record``, queued by an append that then found the writer closed
        (:meth:`close` ran between the reference queue's check and its append), will be
        written. Until the writing ends (:meth:`_seal`) it will; after that it is taken
        off the backlog and False (a record a delivery took meanwhile, at exit, stays
        written: True). Only such appends take this lock: the request path never does
        while the writer is open."""
        with self._deliver_lock:  # (no batch is taken off the backlog meanwhile)
            if not self._sealed:
                return True
            pending = self._pending
            # Appends after it go to the right: indices from the left stay put.
            for i in range(len(pending) - 1, -1, -1):
                if pending[i] is record:
                    del pending[i]
                    self._withdrawn += 1
                    return False
            return True

    def _write_some(self) -> int:
        """Deliver one batch; the number of records taken (0: nothing pending)."""
        pending = self._pending
        with self._deliver_lock:
            batch = []
            pop = pending.popleft
            try:
                for _ in range(self.batch_size):
                    batch.append(pop())
            except IndexError:
                pass
            queue = self._queue
            if not batch:
                # Nothing waits: no long record's bytes either (a record being appended
                # right now may be left out, until the writer takes it).
                queue.long_taken = queue.long_added
                return 0
            if queue.long_added != queue.long_taken:
                # Long records wait: take this batch's off their sum (sized as the
                # queue's append sized them).
                share, size_of, taken = self._share, queue.text_size, 0
                for record in batch:
                    size = size_of(record) + RECORD_BYTES
                    if size > share:
                        taken += size - share  # its excess, as the append added it
                queue.long_taken = min(queue.long_taken + taken, queue.long_added)
            lost = self.lost
            try:
                self._deliver(batch)
            except Exception as exc:
                self.errors += 1
                self.failed(len(batch), exc)
            else:
                if self.lost == lost and self._failing_since is not None:
                    log.warning("%s: writing again (%d records lost in all)", self.name, self.lost)
                    self._failing_since, self._lost_unlogged = None, 0
            self.done += len(batch)
            return len(batch)

    def _log_drops(self, *, final: bool = False) -> None:
        """Say that records were dropped (the backlog full, or appended after close):
        at once for the first, then at most once per ``FAILURE_LOG_EVERY`` seconds with
        the number since, and at :meth:`close` whatever is left unsaid. On the writer
        thread (or the closing one): the request path only counts them."""
        dropped = self.dropped
        n = dropped - self._drops_seen
        if n <= 0:
            return
        now = time.monotonic()
        last = self._drops_logged_at
        if not final and last is not None and now - last < FAILURE_LOG_EVERY:
            return
        self._drops_seen, self._drops_logged_at = dropped, now
        # Which bound: the byte bound named only when it refused some of them.
        byte_dropped = self._queue.byte_dropped
        by_bytes, self._byte_drops_seen = byte_dropped != self._byte_drops_seen, byte_dropped
        full = (
            f"{self.max_pending} records or {self.max_bytes} bytes" if by_bytes
            else str(self.max_pending)
        )  # fmt: skip
        if self.closed:
            # Refused once closed: at exit, records a service's threads go on making
            # while the exit hooks write (a full backlog is not what to look into).
            log.warning(
                "%s: %d records dropped (%d in all): recorded after the writer was closed "
                "(as the process exits, say) or while its backlog of %s was full",
                self.name, n, dropped, full,
            )  # fmt: skip
            return
        log.warning(
            "%s: %d records dropped (%d in all): the backlog of %s was full (records came "
            "faster than they could be written) or the writer was closed; a batch job "
            "should flush its logger every few thousand records",
            self.name, n, dropped, full,
        )  # fmt: skip

    def failed(self, n: int, exc: BaseException, where: Any = None) -> None:
        """``n`` records could not be written (called by the writer thread, from
        ``deliver`` or around it): counted in :attr:`lost`; logged at once the first
        time, then summed up once per ``FAILURE_LOG_EVERY`` seconds while it goes on.
        ``where``: the file (or sink) they could not be written to, named in the log
        (a full disk's OSError names none)."""
        self.lost += n
        now = time.monotonic()
        to = "" if where is None else f" to {where}"
        if self._failing_since is None:
            self._failing_since = now
            log.error(
                "%s: %d records could not be written%s; while writes keep failing, the "
                "records lost are logged every %g s",
                self.name, n, to, FAILURE_LOG_EVERY, exc_info=exc,
            )  # fmt: skip
            return
        self._lost_unlogged += n
        if now - self._failing_since >= FAILURE_LOG_EVERY:
            log.error(
                "%s: %d more records could not be written in %.0f s%s (%s)",
                self.name, self._lost_unlogged, now - self._failing_since, to, exc,
            )  # fmt: skip
            self._failing_since, self._lost_unlogged = now, 0

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every record appended so far is delivered; False on timeout
        (``timeout``: a finite number of seconds >= 0, else ValueError).

        Without a live writer thread (not started, or after a fork) the caller's
        thread delivers them.
        """
        return self.delivered(self.appended, wait_seconds("timeout", timeout))

    def delivered(self, target: int, timeout: float) -> bool:
        """:meth:`flush` up to the first ``target`` records appended (an earlier
        :attr:`appended`): wait until they are delivered (or failed); False on timeout
        (a timeout of 0: only whether they are, without a live writer thread once
        this thread delivered them)."""
        deadline = time.monotonic() + timeout
        self._wake.set()  # an idle writer may be sleeping for up to IDLE_INTERVAL
        # (A record taken back since is not waited for: appended goes down.)
        while self.done < min(target, self.appended):
            thread = self._thread
            if thread is None or not thread.is_alive():
                if not self._write_some():
                    break
                continue
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.001)
        return True

    def close(self, timeout: float = 5.0) -> bool:
        """Refuse new records, deliver the pending ones, stop the thread. False when
        some were still waiting after ``timeout``: the thread goes on writing them
        (those still waiting at exit are counted in :attr:`lost`). ``timeout``: a finite
        number of seconds >= 0, else ValueError (and nothing is closed)."""
        timeout = wait_seconds("timeout", timeout)
        self._queue.closed = True
        ok = self.flush(timeout)
        if not ok:
            log.warning(
                "%s: closed with %d records not yet written after %g s; still writing them",
                self.name, self.appended - self.done, timeout,
            )  # fmt: skip
        thread = self._thread
        if thread is not None:
            self._wake.set()  # it sees `closed` and an empty backlog on its next poll
            thread.join(max(0.0, min(timeout, 1.0)))
        if thread is None or not thread.is_alive():
            # No writer thread (never started, or in a forked child), or it has ended
            # the writing itself: this thread writes what was queued meanwhile.
            while not self._seal():
                self._write_some()
        self._log_drops(final=True)
        instruments.harvest_dropped(self)
        return ok

    def abandon(self, wait: float = 0.5) -> int:
        """Give up on the records not yet written (at interpreter exit, once the last
        flush timed out): count them in :attr:`lost` and log it; returns how many.
        The pending ones are taken off the backlog under the delivery lock, so each
        record is either written by the thread or counted here, never both. A batch
        whose delivery is stuck (the lock not free within ``wait`` seconds) is counted
        too: the daemon thread dies with the interpreter, mid-write."""
        self._queue.closed = True
        if self._deliver_lock.acquire(timeout=wait):
            try:
                n = len(self._pending)
                self._pending.clear()
                self.done += n
                self._sealed = True  # (the lock held: no _seal(), which takes it)
            finally:
                self._deliver_lock.release()
        else:
            n = self.appended - self.done
            self._pending.clear()
        self._queue.long_taken = self._queue.long_added  # nothing waits
        if n > 0:
            self.lost += n
            log.error("%s: %d records not written at exit (writing took too long or hung)",
                      self.name, n)  # fmt: skip
        return max(n, 0)

    def _after_fork_in_child(self) -> None:
        # The writer thread does not exist in a forked child and a lock held at fork
        # time would stay held: start afresh. Records still pending are the parent's.
        # A writer that ran in the parent runs in the child too, started once every
        # repair is done (restart_in_child): its sinks' locks are repaired by then.
        if self._closed_at_exit:  # by the parent's exit hooks (a fork as it ends): open
            self._closed_at_exit = self._queue.closed = False
        self._restart = self._thread is not None and not self.closed
        self._pending = collections.deque()
        # The same queue object (a SeedAPI may hold its append), on the new deque (and
        # no long record's bytes waiting).
        self._queue.reset(self._pending)
        self._start_lock = threading.Lock()
        self._deliver_lock = threading.Lock()
        self._sealed = self.closed  # closed in the parent: nothing writes here
        self._wake = threading.Event()
        self._thread = None
        # The counts are this process's, as the metrics' are: the parent's drops and
        # losses were reported by each worker as its own (cfgcore_dropped_events_total
        # summed over the workers counted them once per worker).
        self._queue.dropped = self._queue.byte_dropped = 0
        self.done = self.polls = self._withdrawn = self.errors = self.lost = 0
        self._failing_since, self._lost_unlogged = None, 0
        self._drops_seen, self._drops_logged_at = 0, None
        self._byte_drops_seen = 0


_WRITERS: weakref.WeakSet[BackgroundWriter] = weakref.WeakSet()


def _reset_writers_after_fork() -> None:
    for writer in list(_WRITERS):
        writer._after_fork_in_child()


def _restart_writers_after_fork() -> None:
    for writer in list(_WRITERS):
        if writer._restart:
            writer._restart = False
            writer.start()


def _flush_at_exit() -> None:
    # Daemon threads die with the interpreter: write what is pending first, and count
    # (and log) what could not be written in time.
    writers = []
    for writer in list(_WRITERS):
        if writer.flush(timeout=2.0):
            writers.append(writer)
        else:
            writer.abandon()  # (closed, and what it held counted: done with)
    # Other threads may record meanwhile (a service serves on after SIGTERM until the
    # hooks end): records accepted after a writer's flush began were lost with the
    # process, neither written nor counted. Once caught up, the writers refuse new
    # records (counted in `dropped`, and logged) and write those that came meanwhile.
    for writer in writers:
        writer._queue.closed = writer._closed_at_exit = True  # all first: see record_metric
    for writer in writers:
        if not writer.close(timeout=1.0):
            writer.abandon()


after_fork_in_child(_reset_writers_after_fork)
restart_in_child(_restart_writers_after_fork)
# At the interpreter's exit and at a multiprocessing child's (which skips atexit).
at_exit(_flush_at_exit)
