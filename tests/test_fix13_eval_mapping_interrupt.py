"""An interrupt raised while the evaluators ask whether a context is a mapping propagates.

The compiled ``_is_mapping`` was ``noexcept``: a KeyboardInterrupt raised inside
``isinstance(ctx, Mapping)`` (Ctrl-C arriving there, or a ``__class__`` that raises it)
was printed as "Exception ignored" and the check answered on, while the reference
evaluator raised it. Both now raise it; an ordinary exception there still means "not a
mapping" (the context is read as empty), as before.
"""

from __future__ import annotations

import pytest

from cfgcore.engine import engine_class
from tests.conftest import IMPLS

DOC = {
    "flags": {"f": {"default": "off", "rules": [{"when": {"attr": "x", "eq": 1}, "serve": "on"}]}}
}


class _FakeClass:
    """A context whose ``__class__`` raises ``exc`` (isinstance reads it)."""

    def __init__(self, exc):
        self.exc = exc

    @property
    def __class__(self):  # type: ignore[override]
        raise self.exc


CALLS = {
    "is_enabled": lambda engine, ctx: engine.is_enabled("f", ctx),
    "variant": lambda engine, ctx: engine.variant("f", ctx),
    "evaluate_all": lambda engine, ctx: engine.evaluate_all(ctx),
    "context": lambda engine, ctx: engine.context(ctx),
}


@pytest.mark.parametrize("call", sorted(CALLS))
@pytest.mark.parametrize("impl", sorted(IMPLS))
@pytest.mark.parametrize("exc", [KeyboardInterrupt, SystemExit])
def test_an_interrupt_in_the_mapping_check_propagates(impl, call, exc, recwarn):
    engine = engine_class(IMPLS[impl]).from_snapshot(DOC)
    with pytest.raises(exc):
        CALLS[call](engine, _FakeClass(exc()))
    assert engine.is_enabled("f", {"x": 1}) is True  # nothing kept for a later call


@pytest.mark.parametrize("call", ["is_enabled", "variant"])
@pytest.mark.parametrize("impl", sorted(IMPLS))
def test_an_error_in_the_mapping_check_reads_as_no_attributes(impl, call):
    engine = engine_class(IMPLS[impl]).from_snapshot(DOC)
    got = CALLS[call](engine, _FakeClass(ValueError("fake class")))
    assert got == CALLS[call](engine, {})
