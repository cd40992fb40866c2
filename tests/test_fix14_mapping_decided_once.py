"""Whether a context is a mapping is decided once per call, on both evaluators.

``isinstance(ctx, Mapping)`` reads ``ctx.__class__``, which an object can compute (a
property). The reference evaluator asked twice per check (to count an invalid context,
then again before reading it) and the compiled one twice per ``evaluate_all`` (when
counting): an object answering differently on the second read was evaluated with its
attributes by one evaluator and with none by the other. Each call now decides once and
acts on that answer: one read of ``__class__`` per check and per ``evaluate_all`` (and
one more when the observed path finds the unit a split served), on both evaluators.
"""

from __future__ import annotations

import pytest

from cfgcore.engine import engine_class
from tests.conftest import IMPLS

DOC = {
    "flags": {
        "f": {"default": "off", "rules": [{"when": {"attr": "x", "eq": 1}, "serve": "on"}]},
        "static": {"default": "on"},
    }
}


class Shifty:
    """A mapping to ``isinstance()`` on the reads of ``__class__`` listed in ``mapping``;
    ``get()`` always answers x=1."""

    def __init__(self, *mapping: int) -> None:
        self.mapping = mapping
        self.reads = 0

    @property  # type: ignore[misc]
    def __class__(self):
        self.reads += 1
        return dict if self.reads in self.mapping else Shifty

    def get(self, key, default=None):
        return 1 if key == "x" else default


@pytest.mark.parametrize("impl", sorted(IMPLS))
@pytest.mark.parametrize("counting", [True, False])
@pytest.mark.parametrize("first", [True, False])
def test_a_check_reads_the_class_once(impl, counting, first):
    engine = engine_class(IMPLS[impl]).from_snapshot(DOC)
    engine.set_counting(counting)
    ctx = Shifty(1) if first else Shifty(2)  # a mapping on the first read only, or later only
    assert engine.is_enabled("f", ctx) is first
    assert ctx.reads == 1


@pytest.mark.parametrize("impl", sorted(IMPLS))
@pytest.mark.parametrize("counting", [True, False])
@pytest.mark.parametrize("first", [True, False])
def test_evaluate_all_reads_the_class_once(impl, counting, first):
    engine = engine_class(IMPLS[impl]).from_snapshot(DOC)
    engine.set_counting(counting)
    ctx = Shifty(1) if first else Shifty(2)
    assert engine.evaluate_all(ctx) == {"f": first, "static": True}
    assert ctx.reads == 1


@pytest.mark.parametrize("impl", sorted(IMPLS))
def test_an_invalid_context_is_counted_as_it_was_read(impl):
    engine = engine_class(IMPLS[impl]).from_snapshot(DOC)
    engine.take_evaluation_counts()
    engine.is_enabled("f", Shifty(2))  # not a mapping when asked: evaluated without attributes
    engine.evaluate_all(Shifty(2))
    engine.is_enabled("f", Shifty(1))  # a mapping when asked: read
    engine.evaluate_all(Shifty(1))
    assert engine.take_evaluation_counts().errors == {"INVALID_CONTEXT": 2}
