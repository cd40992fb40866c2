"""Both evaluators refuse the same subclasses.

The compiled evaluator's per-request classes are final ``cdef class``es (their fast
paths read exact types); the reference ones were open, so code that subclassed
``Context`` worked with ``CFGCORE_NO_EXTENSIONS=1`` and failed with the compiled core.
Every class both modules export is now either open on both or refused on both, with
the same error.
"""

from __future__ import annotations

import inspect

import pytest

import cfgcore._eval_py as ref
from tests.conftest import IMPLS

FINAL = ("Context", "Counters", "CompiledSnapshot", "SeedAPI", "RecordQueue")


def _classes(module):
    own = module.__name__
    return {n: c for n, c in vars(module).items() if inspect.isclass(c) and c.__module__ == own}


def _subclass_error(cls):
    try:
        type("Sub", (cls,), {})
    except TypeError as exc:
        return str(exc)
    return None


@pytest.mark.parametrize("name", FINAL)
def test_final_classes_refuse_subclasses(impl, name):
    cls = getattr(impl, name)
    refused = rf"type '{impl.__name__}\.{name}' is not an acceptable base type"
    with pytest.raises(TypeError, match=refused):

        class Sub(cls):  # type: ignore[misc, valid-type]
            pass


def test_engine_core_stays_open(impl):
    # cfgcore.engine.Engine builds on it.
    sub = type("Sub", (impl.EngineCore,), {})
    assert issubclass(sub, impl.EngineCore)


def test_both_evaluators_agree_on_which_classes_are_final():
    if "c" not in IMPLS:
        pytest.skip("the compiled extension cfgcore._eval is not built here")
    compiled = _classes(IMPLS["c"])
    shared = sorted(set(compiled) & set(_classes(ref)))
    assert set(FINAL) <= set(shared)
    for name in shared:
        c_err, py_err = _subclass_error(compiled[name]), _subclass_error(getattr(ref, name))
        assert (c_err is None) == (py_err is None), (name, c_err, py_err)
        if c_err is not None:
            assert py_err == c_err.replace("cfgcore._eval.", "cfgcore._eval_py.")


def test_a_context_made_without_init_still_answers(impl):
    # Refusing subclasses keeps the uninitialised-object path (object pools, copy):
    # a Context.__new__ without __init__ reads every attribute as missing.
    from cfgcore.engine import engine_class

    rule = {"when": {"attr": "a", "eq": 1}, "serve": "on"}
    engine = engine_class(impl).from_snapshot({"flags": {"f": {"default": "off", "rules": [rule]}}})
    ctx = impl.Context.__new__(impl.Context)
    assert engine.variant("f", ctx) == "off"
