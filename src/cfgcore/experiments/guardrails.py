"""Guardrails: automatic rollback of an A/B test whose guardrail metric is significantly
worse in a variant, and the analysis behind it (:mod:`cfgcore.experiments.analysis`).

Checks run on a background thread, one at a time per test: they wait for the exposure
log to flush and run the statistics, which must never stall the request thread that
happened to record the Nth metric event.

What the false-rollback guarantee covers
----------------------------------------
Every process serving a test runs its own checks. If each analysed only the events it
recorded itself, N processes would run N tests on N slices of the data, and a
harmless test would be rolled back by one of them with probability up to about
N x ``guardrail_alpha``. So a manager whose logs are files (the default) checks the
*shared* logs: every process appends its metric events and exposures to the same
``flags.metrics.jsonl`` / ``flags.exposures.jsonl`` (whole batches under the log's
lock), and each check first reads what was appended since its previous check
(:class:`~cfgcore.experiments.exposures.LogTail`). All processes then look at
prefixes of one sequence of records, and the always-valid test
(:func:`~cfgcore.experiments.analysis.guardrail_violations`) bounds the probability
that *any* look, by any process, at any time, rolls a harmless test back by
``guardrail_alpha`` (under the normal approximation it rests on). The bound is per
log: processes with separate state directories (separate hosts without a shared
filesystem) each have their own, and K of them can roll back with up to K x alpha.
A manager without files (``persist=False``) checks its own events, one process.

Cost: each process decodes every event and exposure of the logs (all processes'),
and keeps the per-user state of the guarded tests a second time (about 55 bytes per
user and guardrail metric, see :mod:`cfgcore.experiments.metrics`). The manager's
``max_tracked_users`` bounds both copies: past it, a test's checks (and reports) judge
its first ``max_tracked_users`` users, and the events of later users are counted as
left out, never silently mixed in or dropped.

The first check in a process (and the first after a test becomes guarded) has the
whole logs to read: up to 6 files of 50 MB each, about 2 s of CPU per 100 MB, most of
it summarising events per user. The background check reads them in steps of
``CATCH_UP_STEP`` bytes per log, pausing between steps as long as the step took, so it
never takes more than about half of a core (and of the GIL) from the requests; it
judges nothing until it has caught up with both logs, and then runs the same
statistics on the same records as one read would have (the per-user state needs
every user's every event, so no part of the logs can be skipped). ``close()`` ends a
catch-up in progress.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import msgspec

from cfgcore.errors import ConfigError, Problem, child_key_path, printable_lines, printable_name
from cfgcore.experiments.abtest import ANY_RUN, check_record, run_of
from cfgcore.experiments.exposures import (
    Exposure,
    ExposureRecord,
    LogTail,
    MetricRecord,
    SkippedLines,
    UnusableJournal,
    cut_logs,
    cut_logs_before,
    in_run,
    recover_appends,
)
from cfgcore.experiments.metrics import MetricsStore
from cfgcore.experiments.stops import GUARDRAIL_ACTOR, _aside_path

if TYPE_CHECKING:
    from cfgcore.experiments.dynamic import DynamicConfigurationManager

__all__ = ["Guardrails"]

log = logging.getLogger("cfgcore.dynamic_config")


#: Bytes of each shared log a background check reads per step while catching up.
CATCH_UP_STEP = 4 << 20

#: Seconds before a process that could not take a dead ingest back tries again.
TAKE_BACK_RETRY = 600.0


class SharedLogs:
    """The guarded tests' events and exposures as every process appended them to the
    shared logs, read incrementally (see the module docstring).

    An ingest that died mid-way (``cfgcore experiment ingest``: its journal beside
    the logs, part of its events in them) is never read, not even in part: each read
    first takes it back, as a report or the next ingest would (under the logs' locks,
    where its journal can only be a dead ingest's). A process that cannot (the
    directory or the record of ingested inputs not writable by its user, its lock
    held past the timeout) reads the logs only up to that ingest's appends, until
    another process takes it back, and says so once with a WARNING naming the
    journal; one that cannot even read the journal reads nothing new meanwhile. The
    checks never raise for it. A file this view was reading that is rewritten
    without a part it read, or rotated out of the backups before it was read (the
    read is no prefix of the logs any more), makes it read the logs again from the
    start."""

    def __init__(
        self,
        metrics_path: str,
        exposures_path: str,
        max_users: int | None = None,
        cutoffs: Callable[[frozenset[str]], Mapping[str, float | None]] | None = None,
    ) -> None:
        self.metrics = LogTail(metrics_path, MetricRecord)
        self.exposures = LogTail(exposures_path, ExposureRecord)
        self.max_users = max_users
        self.store = MetricsStore(None, max_users=max_users)
        self.tests: frozenset[str] = frozenset()
        # {test: run}: the run of each test whose records count (abtest.record_runs:
        # a record tagged for another run is that run's; one without a tag stamped up
        # to the run's since is a deleted test's, the test created again under its
        # name). ``cutoffs(tests)`` gives them.
        self.since: dict[str, float | None] = {}
        self.cutoffs = cutoffs or (lambda tests: {})
        self.lock = threading.Lock()
        self.closed = False
        beside = _beside(metrics_path)
        #: The journal of an ingest into these logs (present while one runs, or after
        #: one died); None for logs not named as a manager's state files are.
        self.journal = beside["ingest_journal"] if beside is not None else None
        # (identity, what is read) of a journal this process could not take back: tried
        # again (each try reads the logs whole) once another file is there, or after
        # TAKE_BACK_RETRY seconds (a lock held past its timeout passes).
        self._stuck: tuple[tuple[int, int, int], str] | None = None
        self._retry_at = 0.0
        # Closed when this view goes (no file left to the garbage collector).
        self._close = weakref.finalize(self, _close_tails, self.metrics, self.exposures)

    def close(self) -> None:
        """Close the logs' files (after a read in progress: it holds the lock)."""
        with self.lock:
            self.closed = True
            self._close()

    def refresh(self, tests: frozenset[str]) -> MetricsStore:
        """The store with everything appended to the logs so far, for ``tests``. A test
        not kept until now (newly guarded), or one whose run changed (created again
        after a deletion), makes it read the logs again from the start."""
        store = self._read(tests, None)
        assert store is not None
        return store

    def catch_up(self, tests: frozenset[str], limit: int) -> bool:
        """One step of :meth:`refresh`: read at most about ``limit`` bytes of each log;
        True once both were read to their ends in this step (the store then holds what
        :meth:`refresh` would have)."""
        return self._read(tests, limit) is not None

    def _read(self, tests: frozenset[str], limit: int | None) -> MetricsStore | None:
        with self.lock:
            if self.closed:
                # After close() nothing is reopened: its files' finalizer has run, so a
                # file opened now would be left to the garbage collector. A catch-up's
                # step reads nothing; a check (a thread that began before close())
                # gets what was read.
                return None if limit is not None else self.store
            cuts = {**self.since, **self.cutoffs(tests)}
            if not tests <= self.tests or cuts != self.since:
                self._start_over()
                self.tests = self.tests | tests
                self.since = cuts
            # Both logs as they are now, at one instant (a step of a catch-up moves
            # the cut on: it ends once one step reaches both ends): exposures read to
            # one end and events to a later one counted the events of users whose
            # exposures were written in between, without those exposures.
            gaps = self.exposures.gaps + self.metrics.gaps
            if not self._cut():
                return self.store  # (the journal cannot be read: nothing new for now)
            if self.exposures.gaps + self.metrics.gaps != gaps:
                # What was read is no prefix of the logs any more: read them afresh.
                self._start_over()
                if not self._cut():
                    return self.store
            store, kept = self.store, self.tests

            def exposures(records: list[ExposureRecord]) -> None:
                store.write(
                    [Exposure(r.test, r.variant, r.user, r.ts, r.run) for r in records
                     if r.test in kept and in_run(r.test, r.run, r.ts, cuts)]
                )  # fmt: skip

            def events(records: list[MetricRecord]) -> None:
                store._apply(
                    [(r.test, r.variant, r.metric, r.value, r.user, r.ts or 0.0, r.exposed_only,
                      r.run, r.event_id)
                     for r in records
                     if r.test in kept and in_run(r.test, r.run, r.ts, cuts)]
                )  # fmt: skip

            # Exposures first: a user's exposure is read before the events it led to.
            self.exposures.read(exposures, limit=limit)
            if self.exposures.behind:
                return None
            self.metrics.read(events, limit=limit)
            if self.metrics.behind:
                return None
            # The lines left out, named as the report of the same files names them.
            store.skipped = SkippedLines.merged(self.exposures.skipped, self.metrics.skipped)
            return store

    def _start_over(self) -> None:
        self.metrics.close()
        self.exposures.close()
        # Read again from the start: its unusable lines are counted afresh.
        self.metrics.skipped, self.exposures.skipped = SkippedLines(), SkippedLines()
        self.store = MetricsStore(None, max_users=self.max_users)

    def _cut(self) -> bool:
        """Cut both logs before an unfinished ingest, taken back first if this process
        can (see the class docstring). False: its journal cannot be read, nothing is
        to be read now. Errors of the take-back are logged, never raised."""
        tails: list[LogTail[Any]] = [self.exposures, self.metrics]
        journal = self.journal
        if journal is None:
            cut_logs(tails)
            return True
        identity = _identity(journal)
        why = ""
        if identity is not None and (
            self._stuck is None or self._stuck[0] != identity or time.monotonic() >= self._retry_at
        ):
            try:
                recover_appends(journal)  # (under the logs' locks: a dead ingest's)
            except (ConfigError, OSError) as exc:
                why = f"this process cannot take it back ({exc})"
                self._retry_at = time.monotonic() + TAKE_BACK_RETRY
        try:
            found = cut_logs_before(tails, journal)
        except UnusableJournal as exc:
            self._say_stuck(journal, f"this process cannot use it ({exc})", "nothing new")
            return False
        if not found:
            self._stuck = None  # (taken back, by this process or another)
        elif why:
            self._say_stuck(journal, why, "the shared logs only up to its appends")
        return True

    def _say_stuck(self, journal: str, why: str, read: str) -> None:
        """A WARNING, once per journal file, that the checks read around a dead ingest
        (and the take-back is not tried again: each try reads the logs whole)."""
        identity = _identity(journal)
        if identity is None or (self._stuck is not None and self._stuck == (identity, read)):
            return
        self._stuck = (identity, read)
        log.warning(
            "%s: an ingest that did not finish left this journal and %s: guardrail "
            "checks and analyses read %s until `cfgcore experiment report` or the next "
            "`cfgcore experiment ingest`, run as a user who can, takes it back",
            journal, why, read,
        )  # fmt: skip


def _identity(path: str) -> tuple[int, int, int] | None:
    """Which file is at ``path`` now (another ingest's journal is another file; one
    whose permissions changed is tried again); None: none."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_ctime_ns)


def _close_tails(*tails: LogTail[Any]) -> None:
    for tail in tails:
        tail.close()


def _shared_paths(manager: Any) -> tuple[str, str] | None:
    """The shared metric and exposure logs of a manager that writes them, else None."""
    path = getattr(manager.metrics, "path", None)
    if not isinstance(path, str):
        return None
    beside = _beside(path)
    return (path, beside["exposures"]) if beside is not None else None


def _beside(metrics_path: str) -> dict[str, str] | None:
    from cfgcore.experiments.dynamic import state_paths_beside

    return state_paths_beside(metrics_path)


class Guardrails:
    """Guardrail checks for one :class:`DynamicConfigurationManager`."""

    def __init__(self, manager: DynamicConfigurationManager) -> None:
        self.manager = manager
        self._lock = threading.Lock()
        self._running: set[str] = set()
        # Tests whose check was asked for while one ran: checked once more when it ends.
        self._again: set[str] = set()
        self.metric_events: dict[str, int] = {}
        self._shared: SharedLogs | None = None
        self._closed = threading.Event()  # ends a catch-up in progress
        # {test: (reason, run)}: rollbacks served from the live flags only (the store
        # could not take them); stored by the first document that serves that run of
        # the test again.
        self.unstored: dict[str, tuple[str, Any]] = {}
        self._skipped_said = 0  # unusable log lines the checks have logged

    def after_fork_in_child(self) -> None:
        # checks in flight ran on threads the child does not have
        self._lock = threading.Lock()
        self._running = set()
        self._again = set()
        self._closed = threading.Event()
        # The logs' open files share their offsets with the parent's: read afresh.
        # (Not close(): a parent's thread may have held the view's lock at the fork.)
        if self._shared is not None:
            self._shared._close()
            self._shared = None

    def close(self) -> None:
        """Close the shared logs' files (also done when this object is collected) and
        end a background catch-up in progress."""
        self._closed.set()
        with self._lock:
            shared, self._shared = self._shared, None
        if shared is not None:
            shared.close()

    def shared_store(self, also: frozenset[str] = frozenset()) -> Any:
        """What the checks analyse: the shared logs' events of the guarded tests and of
        ``also`` (this process's own flushed to them first), or this process's store
        when it writes no logs."""
        paths = _shared_paths(self.manager)
        if paths is None:
            return self.manager.metrics
        shared = self._shared_logs(paths)
        self.manager.metrics.flush()
        return shared.refresh(self._guarded() | also)

    def _cutoffs(self, tests: frozenset[str]) -> dict[str, float | None]:
        from cfgcore.experiments.abtest import record_runs

        return record_runs(self.manager._tests, tests)

    def _new_shared(self, paths: tuple[str, str]) -> SharedLogs:
        # The view asks for the cutoffs through a weak method: no reference back here.
        method = weakref.WeakMethod(self._cutoffs)

        def cutoffs(tests: frozenset[str]) -> dict[str, float | None]:
            live = method()
            return live(tests) if live is not None else {}

        return SharedLogs(*paths, self.manager.metrics.max_users, cutoffs=cutoffs)

    def _shared_logs(self, paths: tuple[str, str]) -> SharedLogs:
        with self._lock:
            if self._shared is None:
                self._shared = self._new_shared(paths)
            return self._shared

    def _guarded(self) -> frozenset[str]:
        return frozenset(
            name for name, meta in self.manager._tests.items() if meta.get("guardrail_metrics")
        )

    def catch_up(self) -> bool:
        """Read the shared logs up to their ends in steps of ``CATCH_UP_STEP`` bytes,
        pausing between steps as long as each took (see the module docstring). False
        if :meth:`close` ended it first."""
        paths = _shared_paths(self.manager)
        if paths is None:
            return not self._closed.is_set()
        while True:
            with self._lock:  # (close() sets the event before it takes this lock)
                if self._closed.is_set():
                    return False
                if self._shared is None:
                    self._shared = self._new_shared(paths)
                shared = self._shared
            self.manager.metrics.flush()
            started = time.monotonic()
            if shared.catch_up(self._guarded(), CATCH_UP_STEP):
                return not self._closed.is_set()
            self._closed.wait(max(0.01, time.monotonic() - started))

    def counted(self, test_name: str, meta: dict[str, Any]) -> None:
        """One more metric event of ``test_name``: every ``guardrail_check_every``-th
        starts a background check (for active tests with guardrail metrics)."""
        if meta.get("guardrail_metrics") and meta.get("status", "active") == "active":
            n = self.metric_events.get(test_name, 0) + 1
            self.metric_events[test_name] = n
            if n % self.manager.guardrail_check_every == 0:
                self.check_soon(test_name)

    def check_soon(self, test_name: str) -> None:
        """Run :meth:`check_guardrails` on a background thread, one at a time per test:
        it waits for the exposure log to flush and runs the statistics, which must not
        stall the request thread that happened to record the Nth event."""
        with self._lock:
            if test_name in self._running:
                # Checked once more when the running check ends: that one may have read
                # the logs before the events that asked for this one, and if they were
                # the test's last, no later event would ask again (a harmful variant
                # would keep serving on data no check ever judged).
                self._again.add(test_name)
                return
            self._running.add(test_name)

        def run() -> None:
            try:
                while True:
                    try:
                        # The logs' backlog in paced steps (a first check may have 300
                        # MB to read), then the check, with only what came since to read.
                        if self.catch_up():
                            self.manager.check_guardrails(test_name)
                    except Exception:  # a failed check must not kill anything
                        log.exception(
                            "guardrail check of A/B test %s failed", printable_name(test_name)
                        )
                    with self._lock:
                        if test_name not in self._again or self._closed.is_set():
                            return
                        self._again.discard(test_name)  # (asked meanwhile: once more)
            finally:
                with self._lock:
                    self._running.discard(test_name)
                    self._again.discard(test_name)

        threading.Thread(target=run, name=f"cfgcore-guardrail-{test_name}", daemon=True).start()

    def analyze(self, test_name: str, *, confidence: float = 0.95) -> Any:
        """Per-variant results of a test: see :func:`cfgcore.experiments.analyze`."""
        from cfgcore.experiments.analysis import analyze

        # (a name that is no str, a list say, is no test: not a TypeError)
        meta = self.manager._tests.get(test_name) if isinstance(test_name, str) else None
        if meta is None:
            raise ConfigError(
                [Problem(child_key_path("experiments", test_name), "unknown A/B test",
                         file=self.manager._where)]
            )  # fmt: skip
        check_record(test_name, meta, self.manager.flags_file)
        if self.manager.exposures is not None:
            self.manager.exposures.flush()
        # Every process's events, as the report and the guardrails see them (a test
        # analysed once is kept up to date from the logs from then on).
        store = self.shared_store(frozenset({test_name}))
        return analyze(test_name, meta, store, confidence=confidence)

    def check(self, test_name: str) -> list[str]:
        """Stop the test if a guardrail metric is significantly worse in a variant
        (once both have ``guardrail_min_samples`` observations). Returns the
        violations found.

        The tests are always-valid sequential ones, split over the (variant, metric)
        comparisons, on every process's events as the shared logs hold them, so
        however many checks run, in however many processes, a test with no harmful
        variant is rolled back with probability at most ``guardrail_alpha`` (see the
        module docstring and
        :func:`cfgcore.experiments.analysis.guardrail_violations`)."""
        from cfgcore.experiments.analysis import guardrail_violations

        meta = self.manager._tests.get(test_name) if isinstance(test_name, str) else None
        if meta is None:
            return []
        check_record(test_name, meta, self.manager.flags_file)
        if meta.get("status", "active") != "active":
            return []
        if self.manager.exposures is not None:
            self.manager.exposures.flush()
        store = self.shared_store()
        self._say_skipped(test_name, getattr(store, "skipped", None))
        found = guardrail_violations(
            test_name, meta, store, alpha=self.manager.guardrail_alpha,
            min_samples=self.manager.guardrail_min_samples,
        )  # fmt: skip
        if found:
            reason = "guardrail: " + "; ".join(found)
            # A test's, a variant's or a metric's name may hold anything its document
            # holds (a newline forged a log line): escaped, one line.
            log.warning(
                "A/B test %s rolled back to control: %s",
                printable_name(test_name), printable_name(reason),
            )  # fmt: skip
            # The test's own rule, set by whoever created it (with experiment.create):
            # not subject to the access policy (a policy that does not name this
            # process's user must not keep a harmful variant serving), audited as the
            # actor "guardrail". Only the run judged (one created again meanwhile, in
            # a document this process has not taken yet, has events of its own).
            self.roll_back(test_name, reason, run=run_of(meta))
        return found

    def _say_skipped(self, test_name: str, skipped: SkippedLines | None) -> None:
        """A WARNING naming the log lines a check left out, once per line: a damaged
        log must not shrink what the guardrail judges without a word."""
        count = skipped.count if skipped is not None else 0
        said, self._skipped_said = self._skipped_said, count
        if skipped is not None and count > said:
            log.warning(
                "guardrail check of A/B test %s left out %s",
                printable_name(test_name), printable_name(str(skipped).replace(" skipped", "", 1)),
            )  # fmt: skip

    def roll_back(self, test_name: str, reason: str, *, run: Any = ANY_RUN) -> None:
        """Stop ``test_name`` (a guardrail fired), whatever the stored flag file holds.

        A safety action must not be blocked by an unrelated bad file. The stop is an
        ordinary change of the stored document (written, audited and in the history as
        ``guardrail_rollback``, served by every process that reads the store). When the
        store cannot take it, the test is first stopped in this process's live flags,
        from the state they serve (audited the same way), and then stored if it can be:
        when the store holds a document the live flags refused (a hand edit that does
        not parse, does not compile or would move the test's users), that document is
        kept aside as ``<flag file>.refused-<UTC time>`` (logged with its path: the
        operator's edit is never lost), the document that serves is written back in its
        place and the stop applied to it, so no later reload or restart can serve the
        harmful variant again. If it still cannot be stored (its lock held past the
        timeout, a full disk, a removed file, a refused document in Redis), an ERROR
        says so, and the first document that goes live afterwards serving the test
        again (the store readable again, a reload) gets the stop stored at once
        (:meth:`flags_changed`). ``run``: the run judged (:func:`~cfgcore.experiments.
        abtest.run_of`); another run of the test, in the store or in the live flags, is
        not stopped (it has events of its own for its checks to judge)."""
        from cfgcore.experiments.abtest import OtherRun
        from cfgcore.runtime.policy import acting

        ab_tests = self.manager._ab_tests
        with acting(GUARDRAIL_ACTOR):
            try:
                if ab_tests.stop(test_name, reason, source="guardrail_rollback", run=run):
                    return
                # False: the stored document has no such test. It may have been
                # deleted meanwhile (nothing to do), or the store serves a document
                # without it (the flag file removed: the bundled seed in its place).
                error = ConfigError("the stored flag document has no such A/B test")
            except OtherRun:
                log.warning(
                    "A/B test %s was created again as a new run since the run its guardrail "
                    "judged: the rollback is not applied to the new run (its own events "
                    "are checked); this process serves it once it takes the new document",
                    printable_name(test_name),
                )  # fmt: skip
                return
            except ConfigError as exc:
                error = exc
            # Safety first: served from the live flags now, stored (maybe) after.
            if not _stop_live_only(self.manager, test_name, reason, run):
                return  # not served any more (deleted, stopped or created again meanwhile)
            self.unstored[test_name] = (reason, run)
            try:
                aside = _set_refused_aside(self.manager._live)
            except Exception as exc:  # (the lock held past its timeout, say)
                log.error("cannot look at the refused flag file: %s", exc)
                aside = None
            if aside is not None:  # set aside now, or by another process meanwhile
                try:
                    if ab_tests.stop(test_name, reason, source="guardrail_rollback", run=run):
                        self.unstored.pop(test_name, None)
                        return
                except OtherRun:
                    self.unstored.pop(test_name, None)  # the judged run is over
                    return
                except ConfigError as exc:
                    error = exc
        log.error(
            "guardrail rollback of A/B test %s could not be stored (%s): it is stopped "
            "in this process's live flags only, and stored by the first document that "
            "serves the test again; to stop it everywhere now: cfgcore experiment stop",
            printable_name(test_name), printable_lines(error),
        )  # fmt: skip

    def flags_changed(self, new: Any) -> None:
        """A document went live: a rollback not stored yet whose test it serves again
        (``active``) is stored now, once the change path's lock is released; one whose
        test it stops or removes is done with."""
        if not self.unstored:
            return
        again = []
        for name, (_, run) in list(self.unstored.items()):
            meta = new.experiments.get(name)
            if (
                isinstance(meta, dict)
                and meta.get("status", "active") == "active"
                and (run is ANY_RUN or run_of(meta) == run)
            ):
                again.append(name)
            else:
                self.unstored.pop(name, None)
        if again:
            from cfgcore.runtime.events import run_after_delivery

            run_after_delivery(lambda: self.restore(again))

    def flags_rejected(self, error: ConfigError) -> None:
        """A flag document was refused. One that serves a guardrail-stopped test again
        (a hand edit, a file put back from before the stop) is set aside as
        ``<flag file>.refused-<UTC time>`` and the serving document written back in its
        place, once the change path's lock is released: the stop then stays in force
        across reloads and restarts too, not only in the processes running now."""
        from cfgcore.experiments.abtest import GUARDRAIL_HELD

        if not any(GUARDRAIL_HELD in p.message for p in error.problems):
            return
        from cfgcore.runtime.events import run_after_delivery

        live = self.manager._live
        run_after_delivery(lambda: _keep_stops(live))

    def restore(self, tests: list[str]) -> None:
        """Roll ``tests`` back again (see :meth:`flags_changed`)."""
        for name in tests:
            held = self.unstored.pop(name, None)
            if held is None or name not in self.manager._tests:
                continue
            if self.manager._tests[name].get("status", "active") != "active":
                continue
            reason, run = held
            log.warning(
                "A/B test %s served again: storing its guardrail rollback", printable_name(name)
            )
            try:
                self.roll_back(name, reason, run=run)
            except Exception:  # retried by the next document that serves it
                self.unstored[name] = held
                log.exception("guardrail rollback of A/B test %s failed", printable_name(name))


#: What :func:`_set_refused_aside` returns when the file holds a document the live
#: flags would serve (another process set the refused one aside meanwhile): try again.
SERVEABLE = ""


def _keep_stops(live: Any) -> None:
    """:meth:`Guardrails.flags_rejected`'s work (never raises: a failure is logged, the
    live flags keep the stop and a later refusal tries again)."""
    try:
        _set_refused_aside(live, "it would serve again a test its guardrail stopped")
    except Exception as exc:  # (the lock held past its timeout, say)
        log.error("cannot set aside the flag file that undoes a guardrail stop: %s", exc)


def _set_refused_aside(live: Any, why: str = "") -> str | None:
    """Under a file store's lock: if the file holds a document the live flags refuse,
    copy it to ``<file>.refused-<UTC time>`` and write the live document back in its
    place (``why``: what the log line says it was refused for; none: to store a
    rollback). The copy's path; :data:`SERVEABLE` if the file holds a document they would
    serve; None otherwise (not a file store, no file, the live document itself)."""
    from cfgcore.runtime.atomicio import atomic_write
    from cfgcore.runtime.flagstore import checksum
    from cfgcore.snapshot import encode_snapshot

    store, doc = live.store, live.document
    if getattr(store, "kind", None) != "file" or doc is None:
        return None
    path = store.path
    with store.locked():
        try:
            data, origin = store.read_bytes()
        except ConfigError:
            return None
        if origin != path or checksum(data) == doc.checksum:
            return None  # the seed (no file), or the document that serves: not refused
        try:
            live.prepare(store.document(data, origin))
        except ConfigError as exc:
            refusal = exc
        else:
            return SERVEABLE
        # Beside the file itself (a flag file that is a symlink is written through it,
        # its lock and sidecar live there too).
        real = os.path.realpath(path)
        aside = _aside_path(real)
        try:
            mode = os.stat(real).st_mode & 0o777  # (it may hold what the operator guards)
            atomic_write(aside, data, mode=mode)
            good = (
                doc.data if doc.origin == path
                else encode_snapshot(doc.snapshot, store.format, file=path)
            )  # fmt: skip
            atomic_write(path, good, follow_symlinks=True)
        except (OSError, ConfigError) as exc:
            log.error("cannot set the refused flag file %s aside as %s: %s", path, aside, exc)
            return None
    if why:
        log.error(
            "the flag file %s holds a document the live flags refused (%s): %s; it was "
            "kept as %s and the live document written back, so that no reload or restart "
            "serves it; re-apply the edit from there without that part",
            path, refusal, why, aside,
        )  # fmt: skip
        return aside
    log.error(
        "guardrail rollback: the flag file %s holds a document the live flags refused "
        "(%s); it was kept as %s and the live document written back, so that the "
        "rollback can be stored; re-apply the edit from there once it is valid",
        path, refusal, aside,
    )  # fmt: skip
    return aside


def _stop_live_only(
    manager: DynamicConfigurationManager, test_name: str, reason: str, run: Any = ANY_RUN
) -> bool:
    """Stop the test in the live flags only, from the state they serve (the store
    cannot take the change): audited and in the history like any stop. False if the
    live flags do not serve it (deleted meanwhile, or stopped already), or serve
    another run of it than ``run``."""
    from cfgcore.experiments.abtest import _stopped, recorded_end
    from cfgcore.runtime.flagstore import FlagDocument, checksum, writer_identity
    from cfgcore.snapshot import encode_snapshot

    live = manager._live
    with live._lock:
        snap, doc = live.source, live.document
        meta = snap.experiments.get(test_name)
        if (
            doc is None
            or not isinstance(meta, dict)
            or meta.get("status", "active") != "active"
            or test_name not in snap.flags
            or (run is not ANY_RUN and run_of(meta) != run)
        ):
            return False
        meta, flag = _stopped(
            dict(snap.experiments[test_name]),
            snap.flags[test_name],
            reason,
            manager._now(),
            guardrail=True,
            after=recorded_end(snap.metadata, test_name),
        )
        new = msgspec.structs.replace(
            snap, flags={**snap.flags, test_name: flag},
            experiments={**snap.experiments, test_name: meta},
        )  # fmt: skip
        # In the store's format: a refused file set aside gets these bytes back.
        data = encode_snapshot(new, getattr(live.store, "format", None) or "json", file=doc.origin)
        stopped = FlagDocument(
            new, data, doc.version, checksum(data), writer_identity(GUARDRAIL_ACTOR), doc.origin
        )
        live.install(stopped, live.prepare(stopped), "guardrail_rollback", manager)
    return True
