"""Both evaluators at edges the other differential tests do not reach, found to agree
(kept so that they keep agreeing):

* the regex input bound counts characters, not UTF-8 bytes: 4,096 two-byte characters
  are searched, 4,097 are not;
* an int is a number while a double holds it: ``2**1024 - 2**971`` (the largest double)
  compares, ``2**1024 - 2**970`` (which rounds past it) is unusable to every operator
  but still buckets as its decimal text;
* the observed path (hooks, exposure callbacks, debug mode) with hooks that fail at
  each stage, ``before`` hooks returning what no context is, raising exposure callbacks
  and mappings that raise: every entry point answers alike on both and never raises.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfgcore.engine import engine_class
from cfgcore.observability import debug
from tests.conftest import IMPLS
from tests.fuzz import examples
from tests.texts import any_text

pytestmark = pytest.mark.skipif("c" not in IMPLS, reason="the compiled extension is not built")

LARGEST_DOUBLE = 2**1024 - 2**971  # float(LARGEST_DOUBLE) == sys.float_info.max
PAST_A_DOUBLE = 2**1024 - 2**970  # float() of it raises OverflowError


def _flags(**conds):
    return {
        "flags": {
            key: {"default": "off", "rules": [{"when": {"attr": "a", **cond}, "serve": "on"}]}
            for key, cond in conds.items()
        }
    }


@pytest.mark.parametrize(
    "value, found",
    [("é" * 4096, True), ("é" * 4097, False), ("a" * 4095 + "é", True), ("é" * 4096 + "a", False)],
)
def test_the_regex_input_bound_counts_characters(impl, value, found):
    engine = engine_class(impl).from_snapshot(_flags(m={"matches": "é"}))
    assert engine.is_enabled("m", {"a": value}) is found
    assert engine.is_enabled("m", engine.context({"a": value})) is found


@pytest.mark.parametrize(
    "value, number", [(LARGEST_DOUBLE, True), (PAST_A_DOUBLE, False), (-PAST_A_DOUBLE, False)]
)
def test_an_int_is_a_number_while_a_double_holds_it(impl, value, number):
    doc = _flags(gt={"gt": 1}, lt={"lt": 1}, ne={"ne": 1}, not_in={"not_in": [1]})
    doc["flags"]["roll"] = {"default": "off", "bucket_by": ["a"],
                            "rules": [{"rollout": 50, "serve": "on"}]}  # fmt: skip
    engine = engine_class(impl).from_snapshot(doc)
    for ctx in ({"a": value}, engine.context({"a": value})):
        assert engine.is_enabled("gt", ctx) is (number and value > 0)
        assert engine.is_enabled("lt", ctx) is (number and value < 0)
        assert engine.is_enabled("ne", ctx) is number
        assert engine.is_enabled("not_in", ctx) is number
        # bucketed by its decimal text either way: the same user as the text
        assert engine.evaluate("roll", ctx) == engine.evaluate("roll", {"a": str(value)})


class Boom(Exception):
    pass


class RaisingMapping(Mapping):
    """A mapping whose ``mode`` method raises (0: none)."""

    def __init__(self, attrs, mode):
        self.attrs, self.mode = attrs, mode

    def __getitem__(self, key):
        if self.mode == 1:
            raise Boom
        return self.attrs[key]

    def __iter__(self):
        if self.mode == 2:
            raise Boom
        return iter(self.attrs)

    def __len__(self):
        if self.mode == 3:
            raise Boom
        return len(self.attrs)

    def get(self, key, default=None):
        if self.mode == 4:
            raise Boom
        return self.attrs.get(key, default)


class UnprintableKey:
    def __hash__(self):
        return 7

    def __eq__(self, other):
        raise Boom

    def __repr__(self):
        raise Boom


class Hook:
    def __init__(self, extra, fails):
        self.extra, self.fails = extra, fails

    def before(self, hook_context, hints):
        if self.fails == "before":
            raise Boom
        return self.extra

    def after(self, hook_context, details, hints):
        if self.fails == "after":
            raise Boom

    def error(self, hook_context, exception, hints):
        if self.fails == "error":
            raise Boom

    def finally_after(self, hook_context, details, hints):
        if self.fails == "finally_after":
            raise Boom


SNAPSHOT = {
    "flags": {
        "seg": {"default": "off", "rules": [{"when": {"attr": "a", "eq": "x"}, "serve": "on"}]},
        "roll": {"default": "off", "bucket_by": ["a", "user_id"],
                 "rules": [{"rollout": 50, "serve": "on"}]},
        "split": {"variants": {"p": 1, "q": "two", "r": None}, "default": "p",
                  "rules": [{"when": {"attr": "b", "exists": True},
                             "split": {"p": 0.001, "q": 99.998, "r": 0.001}}]},
        "ci": {"default": "off", "rules": [{"when": {"attr": "b", "in": ["SS"],
                                                      "ignore_case": True}, "serve": "on"}]},
    }
}  # fmt: skip
values = st.one_of(
    st.sampled_from(["x", "X", "ß", "\ud800", "u1", "", "a\x00b", 1, 2**64, PAST_A_DOUBLE]),
    st.sampled_from([True, 1.5, float("nan"), None, ["x"], b"x", {"x": 1}]),
    any_text(max_size=3),
)
attrs = st.dictionaries(st.sampled_from(["a", "b", "user_id"]), values, max_size=3)
extras = st.one_of(
    st.none(),
    attrs,
    st.builds(RaisingMapping, attrs, st.integers(0, 4)),
    st.sampled_from([[("a", "x")], 1, "ab", object(), {UnprintableKey(): 1}, {1: 2}]),
)


@settings(max_examples=examples(40), deadline=None, suppress_health_check=list(HealthCheck))
@given(
    ctx=attrs,
    extra=extras,
    fails=st.sampled_from([None, "before", "after", "error", "finally_after"]),
    mode=st.integers(0, 4),
    debug_on=st.booleans(),
    bound=st.booleans(),
)
def test_the_observed_path_with_hostile_hooks_agrees_and_never_raises(
    ctx, extra, fails, mode, debug_on, bound
):
    def expose_fails(flag, variant, ctx):
        raise Boom

    quiet = logging.getLogger("cfgcore")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL + 1)  # the failures are logged: not this test's subject
    if debug_on:
        debug.enable_debug_mode()
    try:
        got = []
        for impl in (IMPLS["c"], IMPLS["py"]):
            engine = engine_class(impl).from_snapshot(SNAPSHOT)
            engine.add_hook(Hook(extra, fails))
            engine.on_exposure(expose_fails)
            context = RaisingMapping(ctx, mode) if mode else dict(ctx)
            if bound:
                context = engine.context(context)
            out = []
            for key in [*SNAPSHOT["flags"], "missing", UnprintableKey()]:
                out += [
                    engine.is_enabled(key, context),
                    engine.variant(key, context),
                    repr(engine.value(key, context, 7)),
                    repr(engine.evaluate(key, context, 7)),
                ]
            out += [repr(engine.evaluate_all(context)), engine.hook_errors, engine.exposure_errors]
            got.append(out)
        assert got[0] == got[1]
    finally:
        debug.disable_debug_mode()
        quiet.setLevel(level)
