"""A cycle through a bound Context and a snapshot's clock is collected, on both evaluators.

A compiled Context holds the snapshot its own slots are bound to, and the Binding of
the last other snapshot it was checked on, by C pointers the cyclic garbage collector
did not see. A snapshot holds its clock. So an object that both holds a bound context
and serves as the engine's clock (``engine.set_clock(service.now)`` on a service that
keeps a context) made a cycle the collector could not break: the object, its context,
the snapshot and the whole compiled flag set stayed in memory for the life of the
process after the last reference to them was dropped. The pure-Python Context holds
the same references as ordinary attributes and was collected. The compiled Context now
shows both to the collector.
"""

from __future__ import annotations

import gc
import threading
import weakref

import pytest

from cfgcore.engine import engine_class
from tests.conftest import IMPLS
from tests.mappings import DictMapping

DOC = {
    "flags": {
        "f": {"default": "off", "rules": [{"when": {"attr": "x", "eq": 1}, "serve": "on"}]},
        "g": {"default": "off", "rules": [{"when": {"attr": "y", "exists": True}, "serve": "on"}]},
    }
}


class Service:
    """Holds a bound context and is the engine's clock."""

    def __init__(self, engine):
        self.engine = engine
        self.ctx = engine.context({"x": 1})

    def now(self):
        return 1.7e9


def _collected(*refs) -> bool:
    gc.collect()
    return all(ref() is None for ref in refs)


@pytest.mark.parametrize("impl", sorted(IMPLS))
def test_a_context_bound_to_its_clocks_snapshot_is_collected(impl):
    engine = engine_class(IMPLS[impl]).from_snapshot(DOC)
    service = Service(engine)
    engine.set_clock(service.now)
    assert engine.is_enabled("f", service.ctx)  # the context's own slots: this snapshot
    refs = weakref.ref(service), weakref.ref(engine), weakref.ref(engine.snapshot())
    del service, engine
    assert _collected(*refs)


@pytest.mark.parametrize("impl", sorted(IMPLS))
def test_a_context_rebound_after_a_swap_is_collected(impl):
    engine = engine_class(IMPLS[impl]).from_snapshot(DOC)
    service = Service(engine)
    engine.set_clock(service.now)
    assert engine.is_enabled("f", service.ctx)
    old = weakref.ref(engine.snapshot())
    engine.swap(DOC)
    assert engine.is_enabled("f", service.ctx)  # bound to the new snapshot (a Binding)
    new = weakref.ref(engine.snapshot())
    refs = weakref.ref(service), weakref.ref(engine), old, new
    del service, engine
    assert _collected(*refs)


@pytest.mark.parametrize("impl", sorted(IMPLS))
def test_a_pinned_snapshot_and_its_context_are_collected(impl):
    """The cycle without an engine: a pinned snapshot whose clock holds the context."""
    engine = engine_class(IMPLS[impl]).from_snapshot(DOC)
    snap = engine.snapshot()
    engine.swap(DOC)  # the engine moves on; `snap` is pinned here only

    class Holder:
        def now(self):
            return 1.7e9

    holder = Holder()
    holder.ctx = engine.context({"x": 1})
    snap.clock = holder.now
    assert snap.is_enabled("f", holder.ctx)
    assert engine.is_enabled("f", holder.ctx)  # and then the live one: snap via a Binding
    assert snap.is_enabled("g", holder.ctx) is False
    refs = weakref.ref(holder), weakref.ref(snap)
    del holder, snap
    assert _collected(*refs)
    assert engine.is_enabled("f", {"x": 1})


@pytest.mark.parametrize("impl", sorted(IMPLS))
def test_collecting_while_contexts_are_checked(impl):
    """The collector running inside a check (a mapping's get() collects) and on other
    threads while their contexts are being bound and checked: answers stay right."""
    engine = engine_class(IMPLS[impl]).from_snapshot(DOC)
    errors: list = []

    class Collecting(DictMapping):
        def get(self, key, default=None):
            gc.collect(0)
            return self.data.get(key, default)

    def work():
        try:
            for i in range(100):
                service = Service(engine)
                ctx = engine.context(Collecting({"x": 1, "y": i}))
                if i % 10 == 0:
                    engine.set_clock(service.now)
                    engine.swap(DOC)
                assert engine.is_enabled("f", ctx) and engine.is_enabled("g", ctx)
                assert engine.evaluate_all(service.ctx) == {"f": True, "g": False}
                del service
        except Exception as exc:  # pragma: no cover - a finding
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
