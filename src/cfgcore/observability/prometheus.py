"""cfgcore's metrics for Prometheus: a custom collector read at scrape time.

Needs the ``prometheus`` extra (``pip install 'cfgcore[prometheus]'``).

>>> from cfgcore.observability.prometheus import register
>>> collector = register()            # on prometheus_client's default registry
>>> # start_http_server(9100), or serve exposition() from your own endpoint

Each scrape reads :func:`cfgcore.metrics.collect`: nothing is copied into
prometheus_client's own metric objects between scrapes, and a scrape never evaluates
a flag. Names, types and labels are those of :func:`cfgcore.metrics.snapshot`
(``cfgcore_`` prefix, counters ending in ``_total``, durations in ``_seconds``), and
so are the label values: UTF-8, at most ``CFGCORE_METRICS_MAX_LABEL_BYTES`` bytes each
(longer ones shortened with a hash, see :func:`cfgcore.observability.registry.label_value`).
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import Iterator
from typing import Any

try:
    from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
    from prometheus_client.core import (
        CounterMetricFamily,
        GaugeMetricFamily,
        HistogramMetricFamily,
        Metric,
    )
    from prometheus_client.registry import Collector
    from prometheus_client.utils import floatToGoString
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "cfgcore.observability.prometheus needs prometheus-client: "
        f"pip install 'cfgcore[prometheus]' ({exc})",
        name=__name__,
    ) from None

from cfgcore.metrics import collect
from cfgcore.observability.registry import Family, exported_text
from cfgcore.runtime.forks import after_fork_in_child

__all__ = ["CONTENT_TYPE", "CfgcoreCollector", "exposition", "register"]

#: The text exposition format's content type (what :func:`exposition` returns).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class CfgcoreCollector(Collector):
    """Yields every cfgcore metric, computed when Prometheus scrapes."""

    def collect(self) -> Iterator[Metric]:
        for family in collect():
            yield _convert(family)

    def describe(self) -> Iterator[Metric]:
        # No up-front description: registering must not collect (it would read live
        # state before the application has loaded anything).
        return iter(())


def _convert(family: Family) -> Metric:
    names = list(family.labelnames)
    metric: Any
    if family.kind == "counter":
        metric = CounterMetricFamily(family.name, family.help, labels=names)
    elif family.kind == "histogram":
        metric = HistogramMetricFamily(family.name, family.help, labels=names)
    else:
        metric = GaugeMetricFamily(family.name, family.help, labels=names)
    for sample in family.samples:
        # Already exported text within the length bound: Registry.collect made them so.
        values = [sample.labels[n] for n in names]
        if family.kind == "histogram":
            buckets = [(floatToGoString(le), n) for le, n in sample.buckets]
            metric.add_metric(values, buckets, sample.value)
        else:
            metric.add_metric(values, sample.value)
    return metric  # type: ignore[no-any-return]


#: (The registry exports every label value as this gives it, bounded in length.)
_utf8 = exported_text


_registered: weakref.WeakKeyDictionary[CollectorRegistry, CfgcoreCollector] = (
    weakref.WeakKeyDictionary()
)
_lock = threading.Lock()
# The registration under way (under _lock): the registry and the collector given to it
# but not yet recorded in _registered.
_registering: tuple[CollectorRegistry, CfgcoreCollector] | None = None


@after_fork_in_child
def _after_fork_in_child() -> None:
    # A thread of the parent may have held it at the fork: a worker's first register()
    # (or /metrics scrape) would wait for it forever. That thread may have been
    # registering a collector (_registering, left set in the child): the registry may or
    # may not hold it, and register() settles which before using it (a second collector
    # registered beside it wrote every family twice in each scrape of the worker).
    global _lock
    _lock = threading.Lock()


def register(registry: CollectorRegistry | None = None) -> CfgcoreCollector:
    """Register the collector on ``registry`` (default: prometheus_client's global
    ``REGISTRY``, which ``start_http_server`` and most framework integrations serve).
    Idempotent: a second call returns the collector already registered there."""
    global _registering
    target = REGISTRY if registry is None else registry
    with _lock:
        found = _registered.get(target)
        if found is None:
            left = _registering
            if left is not None and left[0] is target:
                # A forked child's: its parent forked while registering this collector
                # here. Held or not, it is registered once.
                found = left[1]
                with contextlib.suppress(KeyError):
                    target.unregister(found)
            else:
                found = CfgcoreCollector()
            _registering = (target, found)
            try:
                target.register(found)
            finally:
                _registering = None
            _registered[target] = found
        return found


def exposition(registry: CollectorRegistry | None = None) -> bytes:
    """The text exposition of ``registry`` (default: the global one, with cfgcore's
    collector registered on it first), as a ``/metrics`` endpoint returns it."""
    target = REGISTRY if registry is None else registry
    register(target)
    return generate_latest(target)
