"""Seventh audit of the two evaluators: a bound Context is copied and pickled alike.

``copy.deepcopy`` or ``pickle`` of a Context that a check had bound raised TypeError on
the compiled evaluator ("self.small,self.vals cannot be converted to a Python object for
pickling": its binding holds C pointers) and worked on the reference, which carried the
whole compiled snapshot along inside the copy. Both now copy a Context as the attributes
it reads, unbound: the copy binds to whatever snapshot checks it next. (A request
context copied by a hook, or handed to a task queue or a worker process.)
"""

from __future__ import annotations

import copy
import pickle
from collections import OrderedDict

import pytest

from cfgcore.engine import engine_class
from tests.conftest import IMPLS

DOC = {
    "flags": {
        "f": {"default": "off", "rules": [{"when": {"attr": "x", "eq": 1}, "serve": "on"}]},
        "g": {
            "variants": {"a": 1, "b": 2},
            "default": "a",
            "rules": [{"split": {"a": 50, "b": 50}}],
        },
    }
}
COPIES = {
    "copy": copy.copy,
    "deepcopy": copy.deepcopy,
    "pickle": lambda ctx: pickle.loads(pickle.dumps(ctx)),
}


@pytest.mark.parametrize("how", sorted(COPIES))
@pytest.mark.parametrize("impl", sorted(IMPLS))
@pytest.mark.parametrize("attrs", [{"x": 1, "user_id": "u7"}, OrderedDict(x=1, user_id="u7")])
def test_a_bound_context_copies_as_its_attributes(impl, how, attrs):
    engine = engine_class(IMPLS[impl]).from_snapshot(DOC)
    ctx = engine.context(attrs)
    want = engine.evaluate_all(ctx)  # binds every slot
    copied = COPIES[how](ctx)
    assert type(copied) is type(ctx)
    assert dict(copied) == dict(attrs)
    assert engine.evaluate_all(copied) == want
    other = engine_class(IMPLS[impl]).from_snapshot(DOC)  # another snapshot: it rebinds
    assert other.evaluate_all(copied) == want
    if how != "copy":  # an independent copy: the binding is not carried along
        assert len(pickle.dumps(ctx)) < 200


@pytest.mark.parametrize("impl", sorted(IMPLS))
def test_a_pickled_context_is_unbound_and_small_on_both(impl):
    big = {"flags": {f"f{i}": {"default": "off", "rules": [{"when": {"attr": "x", "eq": i},
                                                             "serve": "on"}]}
                     for i in range(300)}}  # fmt: skip
    engine = engine_class(IMPLS[impl]).from_snapshot(big)
    ctx = engine.context({"x": 3})
    assert engine.is_enabled("f3", ctx)
    data = pickle.dumps(ctx)
    assert len(data) < 200  # the attributes, not the snapshot
    assert engine.is_enabled("f3", pickle.loads(data))
