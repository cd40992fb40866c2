"""A check of a flag that reads no attribute keeps the Context's binding, on both evaluators.

A Context over a mapping that is not a dict reads each attribute through ``get()`` on
the first check that needs it, and again only when it is checked on another snapshot
(an engine swap, a second engine). A check of a flag that reads no attribute (no rule,
or rules and prerequisites that read nothing) dropped the reference Context's binding
and bound it to that snapshot, so the next check on the first snapshot read the mapping
again and answered for what it held by then; the compiled Context makes no binding for
such a check and keeps its own. The reference now does the same.
"""

from __future__ import annotations

import pytest

from cfgcore.engine import engine_class
from tests.conftest import IMPLS
from tests.mappings import DictMapping

TARGETED = {
    "flags": {"f": {"default": "off", "rules": [{"when": {"attr": "x", "eq": 1}, "serve": "on"}]}}
}
READS_NOTHING = {
    "flags": {
        "static": {"default": "on"},
        "serve_all": {"default": "off", "rules": [{"serve": "on"}]},
        "pre": {"default": "off", "rules": [{"serve": "on"}], "prerequisites": ["static"]},
    }
}


class Live(DictMapping):
    """A mapping read as it is (not copied): what a check reads depends on when."""

    def __init__(self, data, on_get=None):
        self.data = data
        self.on_get = on_get
        self.reads = 0

    def get(self, key, default=None):
        self.reads += 1
        hook, self.on_get = self.on_get, None
        if hook is not None:
            hook()
        return self.data.get(key, default)


@pytest.mark.parametrize("impl", sorted(IMPLS))
@pytest.mark.parametrize("flag", sorted(READS_NOTHING["flags"]))
@pytest.mark.parametrize("how", ["is_enabled", "variant", "value", "evaluate"])
def test_a_check_that_reads_nothing_keeps_the_binding(impl, flag, how):
    cls = engine_class(IMPLS[impl])
    targeted, other = cls.from_snapshot(TARGETED), cls.from_snapshot(READS_NOTHING)
    live = Live({"x": 1})
    ctx = targeted.context(live)
    assert targeted.is_enabled("f", ctx)
    getattr(other, how)(flag, ctx)  # binds nothing: the binding to `targeted` stays
    live.data["x"] = 2
    assert targeted.is_enabled("f", ctx)  # read once, at the first check
    assert live.reads == 1


@pytest.mark.parametrize("impl", sorted(IMPLS))
def test_a_check_that_reads_nothing_after_a_swap(impl):
    engine = engine_class(IMPLS[impl]).from_snapshot(TARGETED)
    live = Live({"x": 1})
    ctx = engine.context(live)
    assert engine.is_enabled("f", ctx)
    old = engine.snapshot()
    engine.swap(engine_class(IMPLS[impl]).from_snapshot(READS_NOTHING).snapshot())
    assert engine.is_enabled("static", ctx)
    live.data["x"] = 2
    assert old.is_enabled("f", ctx)  # the pinned snapshot's binding is still the context's
    assert live.reads == 1
