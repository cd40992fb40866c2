"""A Context made without ``__init__`` (``Context.__new__(Context)``: an object pool,
copy machinery) is a context
with no attributes on both evaluators.

The compiled Context starts with its attributes None and no binding, so a check reads
every attribute as missing and answers; the reference Context's slots were unset, so the
same check raised AttributeError on the request path (hot-path calls never raise on bad
data) wherever the flag read an attribute.
"""

from __future__ import annotations

import pickle

import pytest

from cfgcore.engine import engine_class
from tests.conftest import IMPLS

DOC = {
    "flags": {
        "reads": {
            "default": "off",
            "rules": [
                {"when": {"attr": "a", "eq": 1}, "serve": "on"},
                {"rollout": 50, "serve": "on"},
            ],
        },
        "absent": {
            "variants": {"x": 1, "y": {"k": 2}},
            "default": "x",
            "rules": [{"when": {"attr": "a", "exists": False}, "serve": "y"}],
        },
        "static": {"default": "on"},
        "reads_nothing": {"default": "off", "rules": [{"serve": "on"}]},
        "gated": {"default": "on", "prerequisites": [{"flag": "absent", "variant": "x"}]},
    }
}
KEYS = [*DOC["flags"], "missing"]


def _answers(engine, ctx) -> list:
    out = []
    for key in KEYS:
        out.append(engine.is_enabled(key, ctx))
        out.append(engine.variant(key, ctx))
        out.append(engine.value(key, ctx))
        out.append(engine.value(key, ctx, "text"))
        out.append(engine.evaluate(key, ctx))
    out.append(engine.evaluate_all(ctx))
    return out


def _bare(module):
    return module.Context.__new__(module.Context)


@pytest.mark.parametrize("impl", sorted(IMPLS))
def test_an_uninitialised_context_answers_as_an_empty_one(impl):
    module = IMPLS[impl]
    engine = engine_class(module).from_snapshot(DOC)
    got = _answers(engine, _bare(module))
    want = _answers(engine_class(module).from_snapshot(DOC), engine.context({}))
    assert got == want
    # spelled out, so the test fails if both came to agree on something else
    assert engine.variant("reads", _bare(module)) == "off"
    assert engine.variant("absent", _bare(module)) == "y"
    assert engine.evaluate("gated", _bare(module)).reason == "PREREQUISITE_FAILED"


def test_both_evaluators_agree_on_it_and_count_alike():
    engines = {k: engine_class(IMPLS[k]).from_snapshot(DOC) for k in sorted(IMPLS)}
    answers = {k: _answers(e, _bare(IMPLS[k])) for k, e in engines.items()}
    assert len({repr(a) for a in answers.values()}) == 1, answers
    counts = {k: e.take_evaluation_counts() for k, e in engines.items()}
    first = next(iter(counts.values()))
    for got in counts.values():  # no INVALID_CONTEXT: it is a Context, with no attributes
        assert (got.evaluations, got.errors) == (first.evaluations, first.errors)
    assert "INVALID_CONTEXT" not in first.errors


@pytest.mark.parametrize("impl", sorted(IMPLS))
def test_it_reads_as_the_compiled_one_does(impl):
    """Its attributes are None until ``__init__``: repr, copy and pickle say so, and
    ``__init__`` later gives it attributes that checks then read."""
    module = IMPLS[impl]
    engine = engine_class(module).from_snapshot(DOC)
    ctx = _bare(module)
    assert ctx.attrs is None
    assert repr(ctx) == "Context(None)"
    assert ctx.__reduce__() == (module.Context, (None,))
    assert dict(pickle.loads(pickle.dumps(ctx))) == {}
    assert not engine.is_enabled("reads", ctx)
    ctx.__init__({"a": 1})
    assert engine.is_enabled("reads", ctx)


@pytest.mark.parametrize("impl", sorted(IMPLS))
def test_the_seed_api_serves_it(impl):
    """The seed API's A/B path reads a Context's attributes for the user id: with none,
    the exposure goes to ``expose`` as for a context without ``user_id``."""
    module = IMPLS[impl]
    doc = {
        "flags": {
            "t": {
                "variants": {"a": 1, "b": 2},
                "default": "a",
                "rules": [{"when": {"attr": "user_id", "exists": False}, "serve": "b"}],
            }
        }
    }
    engine = engine_class(module).from_snapshot(doc)
    exposed = []
    shards = tuple(set() for _ in range(64))
    api = module.SeedAPI(engine, {"t": shards}, lambda *a: exposed.append(a))
    ctx = _bare(module)
    assert api.get_ab_test_variant("t", ctx) == "b"
    assert api.is_feature_enabled("t", ctx) is False  # not boolean
    assert [(test, variant) for test, variant, _ in exposed] == [("t", "b")]
