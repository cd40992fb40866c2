"""A Context re-initialised while a check reads it: one answer from one context.

A Context re-initialised while a check was reading it (``ctx.__init__(other)`` from the
mapping's ``get()``, or from another thread) made the reference check read its remaining
attributes from the new mapping: one answer from a mix of two contexts, where the
compiled Context answered from the attributes the check started with. Both now answer
that check from those, and the next check from the new attributes.

The last test runs a context over a mapping whose ``get()`` re-initialises it, swaps the
engine, checks flags on the same context on this engine and on another one, or changes
its data, and compares the whole trace (every ``get()`` and every answer).
"""

from __future__ import annotations

import random

import pytest

from cfgcore.engine import engine_class
from tests.conftest import IMPLS
from tests.test_fix14_context_rebinding import Live

BOTH = {
    "flags": {
        "f": {
            "default": "off",
            "rules": [
                {"when": {"all": [{"attr": "a", "eq": 1}, {"attr": "b", "eq": 1}]}, "serve": "on"}
            ],
        }
    }
}


@pytest.mark.parametrize("impl", sorted(IMPLS))
@pytest.mark.parametrize("call", ["is_enabled", "evaluate_all"])
def test_reinitialised_while_read_answers_from_one_context(impl, call):
    engine = engine_class(IMPLS[impl]).from_snapshot(BOTH)
    live = Live({"a": 1, "b": 1})
    ctx = engine.context(live)
    live.on_get = lambda: ctx.__init__({"a": 0, "b": 0})  # while `a` is read
    first = engine.is_enabled("f", ctx) if call == "is_enabled" else engine.evaluate_all(ctx)["f"]
    assert first is True  # a=1 and b=1, as the check found the context
    assert engine.is_enabled("f", ctx) is False  # then the new attributes
    assert engine.evaluate_all(ctx) == {"f": False}


def _reentrant_run(impl, seed):
    """A context over a mapping whose get() re-initialises it, swaps the engine, checks
    flags on the same context on this engine and another, or changes its data: the
    whole trace (every get() and every answer) must be the same on both evaluators."""
    rnd = random.Random(seed)
    cls = engine_class(IMPLS[impl])
    docs = [
        {
            "flags": {
                **BOTH["flags"],
                "g": {
                    "default": "off",
                    "rules": [
                        {"when": {"attr": "b", "in": [1, 2]}, "serve": "on"},
                        {"rollout": 50, "serve": "on"},
                    ],
                },
                "h": {
                    "variants": {"x": 1, "y": 2},
                    "default": "x",
                    "rules": [{"split": {"x": 50, "y": 50}}],
                    "prerequisites": ["g"],
                },
                "k": {"default": "on"},
            }
        },
        {
            "flags": {
                "f": {"default": "off", "rules": [{"when": {"attr": "b", "eq": 1}, "serve": "on"}]},
                "g": {
                    "default": "off",
                    "rules": [
                        {
                            "when": {
                                "any": [{"attr": "a", "eq": 0}, {"attr": "c", "exists": True}]
                            },
                            "serve": "on",
                        }
                    ],
                },
                "h": {
                    "variants": {"x": 1, "y": 2},
                    "default": "y",
                    "rules": [{"rollout": 30, "serve": "x"}],
                },
            }
        },
    ]
    contexts = [
        {"a": 1, "b": 1, "user_id": "u1"},
        {"a": 0, "b": 2, "c": None, "user_id": 7},
        {"b": 1},
        {},
    ]
    e1, e2 = cls.from_snapshot(docs[0]), cls.from_snapshot(docs[1])
    plan = [rnd.randrange(8) for _ in range(40)]
    trace: list = []
    state = {"step": 0, "depth": 0, "flip": 0}

    class Hostile(Live):
        def get(self, key, default=None):
            i = state["step"]
            state["step"] += 1
            act = plan[i] if i < len(plan) else 0
            trace.append(("get", key, act))
            if act and state["depth"] < 3:
                state["depth"] += 1
                try:
                    if act == 1:
                        ctx.__init__(Hostile(dict(contexts[i % 4])))
                    elif act == 2:
                        state["flip"] ^= 1
                        e1.swap(cls.from_snapshot(docs[state["flip"]]).snapshot())
                    elif act in (3, 5):
                        trace.append((act, (e1 if act == 3 else e2).variant("fghk"[i % 4], ctx)))
                    elif act in (4, 6):
                        trace.append(
                            (act, sorted((e1 if act == 4 else e2).evaluate_all(ctx).items()))
                        )
                    else:
                        self.data = dict(contexts[(i + 1) % 4])
                finally:
                    state["depth"] -= 1
            return self.data.get(key, default)

    ctx = e1.context(Hostile(dict(contexts[seed % 4])))
    for j in range(8):
        engine = e1 if rnd.random() < 0.7 else e2
        if rnd.randrange(4) == 3:
            trace.append(("all", sorted(engine.evaluate_all(ctx).items())))
        else:
            trace.append(("variant", engine.variant("fghk"[(j + seed) % 4], ctx)))
    return trace


@pytest.mark.skipif(len(IMPLS) < 2, reason="the compiled extension is not built")
@pytest.mark.parametrize("seed", range(60))
def test_reentrant_contexts_trace_alike(seed):
    assert _reentrant_run("c", seed) == _reentrant_run("py", seed)
