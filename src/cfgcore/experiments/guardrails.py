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
user and guardrail metric, see :mod:`cfgcore.experiments.metrics`).
"""

from __future__ import annotations

import logging
import threading
import weakref
from typing import TYPE_CHECKING, Any

from cfgcore.errors import ConfigError
from cfgcore.experiments.exposures import Exposure, ExposureRecord, LogTail, MetricRecord
from cfgcore.experiments.metrics import MetricsStore

if TYPE_CHECKING:
    from cfgcore.experiments.dynamic import DynamicConfigurationManager

__all__ = ["Guardrails"]

log = logging.getLogger("cfgcore.dynamic_config")

GUARDRAIL_ACTOR = "guardrail"  # who the audit log says rolled a test back


class SharedLogs:
    """The guarded tests' events and exposures as every process appended them to the
    shared logs, read incrementally (see the module docstring)."""

    def __init__(self, metrics_path: str, exposures_path: str) -> None:
        self.metrics = LogTail(metrics_path, MetricRecord)
        self.exposures = LogTail(exposures_path, ExposureRecord)
        self.store = MetricsStore(None)
        self.tests: frozenset[str] = frozenset()
        self.lock = threading.Lock()
        # Closed when this view goes (no file left to the garbage collector).
        self._close = weakref.finalize(self, _close_tails, self.metrics, self.exposures)

    def close(self) -> None:
        """Close the logs' files."""
        self._close()

    def refresh(self, tests: frozenset[str]) -> MetricsStore:
        """The store with everything appended to the logs so far, for ``tests``. A test
        not kept until now (newly guarded) makes it read the logs again from the start."""
        with self.lock:
            if not tests <= self.tests:
                self.metrics.close()
                self.exposures.close()
                self.store = MetricsStore(None)
                self.tests = self.tests | tests
            store, kept = self.store, self.tests

            def exposures(records: list[ExposureRecord]) -> None:
                store.write(
                    [Exposure(r.test, r.variant, r.user, r.ts) for r in records if r.test in kept]
                )

            def events(records: list[MetricRecord]) -> None:
                store._apply(
                    [(r.test, r.variant, r.metric, r.value, r.user, r.ts or 0.0)
                     for r in records if r.test in kept]
                )  # fmt: skip

            self.exposures.read(exposures)
            self.metrics.read(events)
            return store


def _close_tails(*tails: LogTail[Any]) -> None:
    for tail in tails:
        tail.close()


def _shared_paths(manager: Any) -> tuple[str, str] | None:
    """The shared metric and exposure logs of a manager that writes them, else None."""
    path = getattr(manager.metrics, "path", None)
    suffix = ".metrics.jsonl"
    if not isinstance(path, str) or not path.endswith(suffix):
        return None
    return path, path[: -len(suffix)] + ".exposures.jsonl"


class Guardrails:
    """Guardrail checks for one :class:`DynamicConfigurationManager`."""

    def __init__(self, manager: DynamicConfigurationManager) -> None:
        self.manager = manager
        self._lock = threading.Lock()
        self._running: set[str] = set()
        self.metric_events: dict[str, int] = {}
        self._shared: SharedLogs | None = None

    def after_fork_in_child(self) -> None:
        # checks in flight ran on threads the child does not have
        self._lock = threading.Lock()
        self._running = set()
        # The logs' open files share their offsets with the parent's: read afresh.
        if self._shared is not None:
            self._shared.close()
            self._shared = None

    def close(self) -> None:
        """Close the shared logs' files (also done when this object is collected)."""
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
        with self._lock:
            if self._shared is None:
                self._shared = SharedLogs(*paths)
            shared = self._shared
        self.manager.metrics.flush()
        guarded = frozenset(
            name for name, meta in self.manager._tests.items() if meta.get("guardrail_metrics")
        )
        return shared.refresh(guarded | also)

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
                return
            self._running.add(test_name)

        def run() -> None:
            try:
                self.manager.check_guardrails(test_name)
            except Exception:  # a failed check must not kill anything; the next one retries
                log.exception("guardrail check of A/B test %s failed", test_name)
            finally:
                with self._lock:
                    self._running.discard(test_name)

        threading.Thread(target=run, name=f"cfgcore-guardrail-{test_name}", daemon=True).start()

    def analyze(self, test_name: str, *, confidence: float = 0.95) -> Any:
        """Per-variant results of a test: see :func:`cfgcore.experiments.analyze`."""
        from cfgcore.experiments.analysis import analyze

        meta = self.manager._tests.get(test_name)
        if meta is None:
            raise ConfigError(
                f"{self.manager.flags_file}: experiments.{test_name}: unknown A/B test"
            )
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

        meta = self.manager._tests.get(test_name)
        if meta is None or meta.get("status", "active") != "active":
            return []
        if self.manager.exposures is not None:
            self.manager.exposures.flush()
        found = guardrail_violations(
            test_name, meta, self.shared_store(), alpha=self.manager.guardrail_alpha,
            min_samples=self.manager.guardrail_min_samples,
        )  # fmt: skip
        if found:
            reason = "guardrail: " + "; ".join(found)
            log.warning("A/B test %s rolled back to control: %s", test_name, reason)
            # The test's own rule, set by whoever created it (with experiment.create):
            # not subject to the access policy (a policy that does not name this
            # process's user must not keep a harmful variant serving), audited as the
            # actor "guardrail".
            from cfgcore.runtime.policy import acting

            with acting(GUARDRAIL_ACTOR):
                self.manager._ab_tests.stop(test_name, reason, source="guardrail_rollback")
        return found
