"""Guardrails: automatic rollback of an A/B test whose guardrail metric is significantly
worse in a variant, and the analysis behind it (:mod:`cfgcore.experiments.analysis`).

Checks run on a background thread, one at a time per test: they wait for the exposure
log to flush and run the statistics, which must never stall the request thread that
happened to record the Nth metric event.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from cfgcore.errors import ConfigError

if TYPE_CHECKING:
    from cfgcore.experiments.dynamic import DynamicConfigurationManager

__all__ = ["Guardrails"]

log = logging.getLogger("cfgcore.dynamic_config")

GUARDRAIL_ACTOR = "guardrail"  # who the audit log says rolled a test back


class Guardrails:
    """Guardrail checks for one :class:`DynamicConfigurationManager`."""

    def __init__(self, manager: DynamicConfigurationManager) -> None:
        self.manager = manager
        self._lock = threading.Lock()
        self._running: set[str] = set()
        self.metric_events: dict[str, int] = {}

    def after_fork_in_child(self) -> None:
        # checks in flight ran on threads the child does not have
        self._lock = threading.Lock()
        self._running = set()

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
        return analyze(test_name, meta, self.manager.metrics, confidence=confidence)

    def check(self, test_name: str) -> list[str]:
        """Stop the test if a guardrail metric is significantly worse in a variant
        (once both have ``guardrail_min_samples`` observations). Returns the
        violations found.

        The tests are always-valid sequential ones, split over the (variant, metric)
        comparisons, so however many checks run, a test with no harmful variant is
        rolled back with probability at most ``guardrail_alpha``
        (:func:`cfgcore.experiments.analysis.guardrail_violations`)."""
        from cfgcore.experiments.analysis import guardrail_violations

        meta = self.manager._tests.get(test_name)
        if meta is None or meta.get("status", "active") != "active":
            return []
        if self.manager.exposures is not None:
            self.manager.exposures.flush()
        found = guardrail_violations(
            test_name, meta, self.manager.metrics, alpha=self.manager.guardrail_alpha,
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
