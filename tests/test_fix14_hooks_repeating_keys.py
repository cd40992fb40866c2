"""An evaluation with hooks returns for a context mapping whose iteration never ends.

Hooks get a copy of the context's attributes (``HookContext.attrs``). A mapping that is
not a dict was copied with ``dict(ctx)``, which follows its iteration to the end: one
whose ``__iter__`` never ended (an endless generator repeating a key) made every check
with a hook registered loop forever, on both evaluators. The copy now reads at most
``len(ctx)`` keys, which is the whole of any mapping that keeps its own contract.
"""

from __future__ import annotations

from cfgcore.observability.hooks import Hook
from tests.test_fix14_debug_repeating_keys import FLAGS, Repeating


class Seen(Hook):
    def __init__(self):
        self.attrs = []

    def before(self, hook_context, hints):
        self.attrs.append(dict(hook_context.attrs))


def test_hooks_copy_at_most_len_keys(make):
    engine = make(FLAGS)
    hook = Seen()
    engine.add_hook(hook)
    endless = Repeating(1_000_000)
    assert engine.is_enabled("f", endless)
    assert endless.iterated <= 2
    assert hook.attrs == [{"x": 1}]


def test_hooks_copy_a_mapping_whole(make):
    engine = make(FLAGS)
    hook = Seen()
    engine.add_hook(hook)
    for ctx in (Repeating(1), Repeating(0), engine.context(Repeating(1))):
        assert engine.is_enabled("f", ctx) is (ctx.get("x") == 1)
    assert hook.attrs == [{"x": 1, "y": 2}, {"y": 2}, {"x": 1, "y": 2}]
