"""The default given to ``value``/``evaluate`` names the type the caller expects. A
number is a number by cfgcore's one rule for numbers (``cfgcore._numbers``): a NumPy
integer, a ``Fraction`` or a ``Decimal`` default asked for a numeric flag got its own
default back with TYPE_MISMATCH, while a NumPy float got the flag's value. Any mapping
asks for an object. A bool (NumPy's too) is still no number, and NumPy's bool asks for
a bool, as a context value of that type is one. Both evaluators, the plain path and the
observed one (a hook installed)."""

from __future__ import annotations

import types
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

SNAPSHOT = {
    "flags": {
        "limit": {"variants": {"low": 5, "high": 7.5}, "default": "low"},
        "layout": {"variants": {"grid": {"columns": 3}}, "default": "grid"},
        "ads": {"variants": {"on": True}, "default": "on"},
        "tier": {"variants": {"gold": "gold"}, "default": "gold"},
        "list": {"variants": {"two": [1, 2]}, "default": "two"},
    }
}

SERVED = [
    ("limit", np.int64(3), 5),
    ("limit", np.int32(-1), 5),
    ("limit", np.float32(0.5), 5),
    ("limit", Decimal("2.5"), 5),
    ("limit", Fraction(1, 3), 5),
    ("layout", types.MappingProxyType({}), {"columns": 3}),
    ("ads", False, True),
    ("ads", np.bool_(False), True),
    ("tier", "", "gold"),
    ("list", (), [1, 2]),
]
REFUSED = [
    ("limit", True),
    ("limit", np.bool_(True)),
    ("limit", "5"),
    ("limit", complex(1, 0)),
    ("ads", 1),
    ("layout", [("columns", 3)]),
    ("tier", b"gold"),
]


class _Hook:
    def after(self, hook_context, details, hints):
        return None


@pytest.fixture(params=["plain", "observed"])
def engine(request, make):
    e = make(SNAPSHOT)
    if request.param == "observed":
        e.add_hook(_Hook())
    return e


@pytest.mark.parametrize(("key", "default", "want"), SERVED)
def test_a_default_of_the_flags_kind_gets_the_flags_value(engine, key, default, want):
    assert engine.value(key, {}, default) == want
    details = engine.evaluate(key, {}, default)
    assert (details.value, details.error_code) == (want, None)


@pytest.mark.parametrize(("key", "default"), REFUSED)
def test_a_default_of_another_kind_comes_back_as_a_mismatch(engine, key, default):
    assert engine.value(key, {}, default) is default
    details = engine.evaluate(key, {}, default)
    assert details.value is default
    assert (details.reason, details.error_code) == ("ERROR", "TYPE_MISMATCH")


@given(
    st.one_of(
        st.integers().map(Decimal),
        st.fractions(),
        st.integers(-(2**63), 2**63 - 1).map(np.int64),
        st.floats(allow_nan=False).map(np.float64),
    )
)
def test_any_real_number_asks_for_a_number_on_both_evaluators(make_py_and_c, default):
    for build in make_py_and_c:
        e = build(SNAPSHOT)
        assert e.value("limit", {"user_id": "u"}, default) == 5
        assert e.value("tier", {"user_id": "u"}, default) is default


class _Int(int):
    pass


class _Str(str):
    pass


class _Dict(dict):
    pass


class _List(list):
    pass


_DEFAULTS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=3),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
    st.lists(st.integers(), max_size=2),
    st.lists(st.integers(), max_size=2).map(tuple),
    st.integers().map(_Int),
    st.text(max_size=3).map(_Str),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2).map(_Dict),
    st.lists(st.integers(), max_size=2).map(_List),
    st.integers().map(Decimal),
    st.fractions(),
    st.booleans().map(np.bool_),
    st.integers(-(2**31), 2**31 - 1).map(np.int32),
    st.binary(max_size=3),
    st.frozensets(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2).map(types.MappingProxyType),
)


@given(st.sampled_from(sorted(SNAPSHOT["flags"])), _DEFAULTS)
def test_the_compiled_kind_check_answers_as_the_reference(make_py_and_c, key, default):
    """The compiled evaluator answers the common exact types itself and asks the
    reference's function for any other: both must agree for every type."""
    from cfgcore._records import value_kind

    answers = []
    for build in make_py_and_c:
        e = build(SNAPSHOT)
        d = e.evaluate(key, {}, default)
        answers.append((e.value(key, {}, default) is default, d.value is default, d.error_code))
    assert all(a == answers[0] for a in answers)
    kind = value_kind(SNAPSHOT["flags"][key]["variants"][SNAPSHOT["flags"][key]["default"]])
    mismatch = default is not None and value_kind(default) != kind
    assert answers[0][2] == ("TYPE_MISMATCH" if mismatch else None)
