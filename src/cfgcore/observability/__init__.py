"""Observability: what cfgcore counts, exports and reports about itself.

Evaluation counts from the compiled core, process metrics (loads, reloads, validation,
exposures), the Prometheus collector, health reports and probes, alert rules, and flag
usage for stale-flag detection. Nothing here runs on the evaluation hot path: the core
only increments C counters, and these modules read them when asked.
"""
