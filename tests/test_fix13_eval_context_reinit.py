"""A Context re-initialised in place answers for its new attributes on both evaluators.

``ctx.__init__(other)`` on a compiled Context replaced its attributes but kept the
binding of the old ones, so checks that had already bound a slot went on answering for
the old attributes (the reference evaluator dropped its binding and answered right).
Reinitialising a context object is rare, but it is what an object pool or a subclass-like
wrapper does, and the two evaluators must agree on it.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cfgcore.engine import engine_class
from tests.conftest import IMPLS
from tests.texts import any_text

DOC = {
    "flags": {
        "eq": {"default": "off", "rules": [{"when": {"attr": "x", "eq": 1}, "serve": "on"}]},
        "in": {
            "default": "off",
            "rules": [{"when": {"attr": "country", "in": ["SE", "NO"]}, "serve": "on"}],
        },
        "roll": {
            "default": "off",
            "rules": [{"rollout": 50, "serve": "on"}],
            "bucket_by": "user_id",
        },
    }
}
ATTRS = st.fixed_dictionaries(
    {},
    optional={
        "x": st.sampled_from([0, 1, "1", None]),
        "country": st.sampled_from(["SE", "NO", "DE", "se"]),
        "user_id": any_text(max_size=6),
    },
)


@pytest.mark.parametrize("impl", sorted(IMPLS))
def test_reinit_drops_the_old_binding(impl):
    engine = engine_class(IMPLS[impl]).from_snapshot(DOC)
    ctx = engine.context({"x": 1, "country": "SE"})
    assert engine.is_enabled("eq", ctx) and engine.is_enabled("in", ctx)  # binds x, country
    ctx.__init__({"x": 2, "country": "DE"})
    assert dict(ctx) == {"x": 2, "country": "DE"}
    assert not engine.is_enabled("eq", ctx)
    assert not engine.is_enabled("in", ctx)


@pytest.mark.parametrize("impl", sorted(IMPLS))
@given(first=ATTRS, second=ATTRS)
def test_a_reinitialised_context_answers_as_a_fresh_one(impl, first, second):
    engine = engine_class(IMPLS[impl]).from_snapshot(DOC)
    ctx = engine.context(first)
    engine.evaluate_all(ctx)  # every slot bound to the first attributes
    ctx.__init__(engine.context(second))  # from another Context, too
    assert engine.evaluate_all(ctx) == engine.evaluate_all(dict(second))
    assert engine.evaluate_all(ctx) == engine.evaluate_all(engine.context(second))
