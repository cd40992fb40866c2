"""Where the README's executable statement (tests/spec_interpreter.py) disagreed with
both evaluators, found by differential fuzzing; the evaluators were right each time
and the interpreter now says what they do:

* a default's kind follows the one rule for numbers (CHANGES): a NumPy scalar, a
  ``Fraction`` or a ``Decimal`` default asks for a number, ``numpy.bool_`` for a bool
  (the interpreter answered ``TYPE_MISMATCH``);
* a tuple variant value (a document built in Python) is served as a read-only array,
  a ``FrozenList``, as a list is (the interpreter served the tuple);
* an attribute whose mapping's ``get()`` raises is missing, so ``exists: true`` does
  not hold (the interpreter read it as present but unusable).
"""

from __future__ import annotations

import decimal
import fractions

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.snapshot import snapshot_from_dict
from tests.fuzz import examples
from tests.spec_interpreter import Interpreter, comparable

DEFAULTS = [
    np.int64(3), np.float32(0.5), np.uint64(2**64 - 1), np.bool_(True), np.bool_(False),
    decimal.Decimal("1.5"), decimal.Decimal("NaN"), fractions.Fraction(1, 3), 2, 0.5,
    True, "x", None, {}, [], (),
]  # fmt: skip
VALUES = [1, 1.5, True, "x", None, {"k": [1]}, [1, 2], ("a", ("b",)), ()]


class RaisingGet(dict):
    def get(self, key, default=None):
        raise RuntimeError("read through get")


@settings(max_examples=examples(60))
@given(
    value=st.integers(0, len(VALUES) - 1),
    default=st.integers(0, len(DEFAULTS) - 1),
    enabled=st.booleans(),
    ctx=st.dictionaries(st.sampled_from(["a", "user_id"]), st.sampled_from([1, "u", None])),
    raising=st.booleans(),
)
def test_defaults_tuples_and_unreadable_attributes_agree_with_the_spec(
    make_py_and_c, value, default, enabled, ctx, raising
):
    doc = {
        "flags": {
            "f": {
                "variants": {"v": VALUES[value], "w": "other"},
                "rules": [{"when": {"attr": "a", "exists": True}, "serve": "w"}],
                "default": "v",
                "enabled": enabled,
            }
        }
    }
    context = RaisingGet(ctx) if raising else ctx
    spec = Interpreter(snapshot_from_dict(doc))
    want = comparable(spec.evaluate("f", context, DEFAULTS[default]))
    for build in make_py_and_c:
        engine = build(doc)
        got = engine.evaluate("f", context, DEFAULTS[default])
        assert comparable(got) == want
        assert comparable(engine.evaluate("f", engine.context(context), DEFAULTS[default])) == want
        assert engine.evaluate_all(context) == spec.evaluate_all(context)
