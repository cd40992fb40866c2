"""An evaluation with hooks returns for a context mapping whose iteration never ends.

Hooks get a copy of the context's attributes (``HookContext.attrs``). A mapping that is
not a dict was copied with ``dict(ctx)``, which follows its iteration to the end: one
whose ``__iter__`` never ended (an endless generator repeating a key) made every check
with a hook registered loop forever, on both evaluators. The copy now reads at most
``len(ctx)`` keys, which is the whole of any mapping that keeps its own contract.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping

from cfgcore.observability.hooks import Hook

FLAGS = {
    "flags": {"f": {"default": "off", "rules": [{"when": {"attr": "x", "eq": 1}, "serve": "on"}]}}
}


class Repeating(Mapping):
    """Holds x=1 and y=2; its iteration yields ``x`` ``times`` times, then ``y``."""

    def __init__(self, times):
        self.times = times
        self.iterated = 0

    def __getitem__(self, key):
        return {"x": 1, "y": 2}[key]

    def __iter__(self):
        for key in itertools.chain(itertools.repeat("x", self.times), ["y"]):
            self.iterated += 1
            yield key

    def __len__(self):
        return 2


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
