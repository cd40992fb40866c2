"""cfgcore's own metrics as plain data, for any exporter (no Prometheus needed).

>>> import cfgcore.metrics
>>> snap = cfgcore.metrics.snapshot()
>>> snap["metrics"]["cfgcore_config_loads_total"]["type"]
'counter'

:func:`snapshot` returns a dict that ``json.dumps`` accepts as is (no NaN, no
infinity), shaped::

    {
      "timestamp": 1700000000.0,              # time.time() when it was collected
      "metrics": {
        "cfgcore_config_loads_total": {
          "type": "counter",                  # "counter", "gauge" or "histogram"
          "help": "Configuration activations by ...",
          "labels": ["operation", "result", "reason"],
          "samples": [
            {"labels": {"operation": "load", "result": "ok", "reason": "none"},
             "value": 1.0}
          ]
        },
        "cfgcore_config_load_duration_seconds": {
          "type": "histogram", "help": "...", "labels": ["operation"],
          "samples": [
            {"labels": {"operation": "load"}, "count": 1.0, "sum": 0.012,
             "buckets": [[0.001, 0.0], ..., [10.0, 1.0], ["+Inf", 1.0]]}
          ]                                   # cumulative counts, upper bounds ascending
        }
      }
    }

Every metric cfgcore defines is present, with an empty ``samples`` list until it
moves. Counters are cumulative since the process started (rates are the reader's
business); the metric names and labels are those the Prometheus collector
(:mod:`cfgcore.observability.prometheus`) exposes, listed in the README.
"""

from __future__ import annotations

import math
import time
from typing import Any

from cfgcore.observability import instruments  # noqa: F401 - defines cfgcore's metrics
from cfgcore.observability.registry import Family, registry

__all__ = ["collect", "snapshot"]


def collect() -> list[Family]:
    """Every metric as :class:`~cfgcore.observability.registry.Family` objects (what
    exporters iterate), sorted by name."""
    return registry().collect()


def snapshot() -> dict[str, Any]:
    """Every metric, now, as a plain JSON-able dict (shape in the module docstring)."""
    out: dict[str, Any] = {}
    for family in collect():
        out[family.name] = {
            "type": family.kind,
            "help": family.help,
            "labels": list(family.labelnames),
            "samples": [_sample(family.kind, s) for s in family.samples],
        }
    return {"timestamp": time.time(), "metrics": out}


def _sample(kind: str, sample: Any) -> dict[str, Any]:
    if kind != "histogram":
        return {"labels": dict(sample.labels), "value": _finite(sample.value)}
    return {
        "labels": dict(sample.labels),
        "count": sample.count,
        "sum": _finite(sample.value),
        "buckets": [["+Inf" if math.isinf(le) else le, n] for le, n in sample.buckets],
    }


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None
