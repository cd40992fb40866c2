"""An int past Python's 4,300-digit text limit in a flagd evaluation context.

``flagd.context()`` read every number as a possible version (flagd's ``sem_ver`` reads a
number's text) and took ``str()`` of it, which raises ValueError past 4,300 digits: the
mapping of the context raised, where flagd's own evaluator (FlagdCore) answers ``==``,
``in``, ``>`` and ``sem_ver`` on such a value (no match, or a match for ``>``). Such an
int is no version; the rest of the context is read as before.
"""

from __future__ import annotations

import copy
import logging

import pytest

from cfgcore.interop import flagd

flagd_core = pytest.importorskip("openfeature.contrib.tools.flagd.core")
from openfeature.evaluation_context import EvaluationContext  # noqa: E402

HUGE = [10**5000, -(10**5000), 10**4299 * 7]
CONDITIONS = [
    {"sem_ver": [{"var": "x"}, ">", "1.2.3"]},
    {">": [{"var": "x"}, 1]},
    {"<": [{"var": "x"}, 1]},
    {"==": [{"var": "x"}, 1]},
    {"!=": [{"var": "x"}, 1]},
    {"in": ["1", {"var": "x"}]},
    {"==": [{"var": "y"}, "a"]},
]


@pytest.fixture(autouse=True)
def _quiet():
    logging.getLogger("openfeature").setLevel(logging.CRITICAL)


def _peer(doc, attrs):
    core = flagd_core.FlagdCore()
    core.set_flags(copy.deepcopy(doc))
    p = core.resolve_string_value("f", "FB", EvaluationContext("u", dict(attrs)))
    return p.value, p.variant


@pytest.mark.parametrize("cond", CONDITIONS)
@pytest.mark.parametrize("huge", HUGE, ids=["pos", "neg", "4300-digits"])
def test_a_huge_int_answers_as_flagd_core(make_py_and_c, cond, huge):
    flag = {"state": "ENABLED", "variants": {"yes": "yes", "no": "no"}, "defaultVariant": "no"}
    doc = {"flags": {"f": {**flag, "targeting": {"if": [cond, "yes", "no"]}}}}
    attrs = {"x": huge, "y": "a"}
    want = _peer(doc, attrs)
    ctx = flagd.context("u", attrs)  # raised ValueError
    snap = flagd.to_snapshot(doc)
    for make in make_py_and_c:
        r = flagd.resolve(make(snap), "f", ctx, "FB")
        assert (r.value, r.variant) == want
