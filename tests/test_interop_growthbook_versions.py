"""GrowthBook's padded version strings: the fast paths ``padded_version`` takes for
ints and one-part strings (``context()`` derives one for every string and number an
application gives) answer as its general path, and the general path as the SDK."""

from __future__ import annotations

import math

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from cfgcore.interop.growthbook import _padded, padded_version

_TEXT = st.text(alphabet=st.sampled_from("0123456789v.-+~ab\n\u0663\u00b2"), max_size=8)


@given(st.one_of(st.integers(), st.integers(-(2**54), 2**54)))
@example(0)
@example(2**53 - 1)
@example(-(2**53) + 1)
@example(2**53)
@example(2**53 + 1)
@example(-(2**53) - 1)
@example(10**400)
def test_an_int_pads_as_the_general_path(n):
    assert padded_version(n) == _padded(n)


@given(st.one_of(_TEXT, st.text(max_size=8)))
@example("")
@example("12")
@example("v12")
@example("12\n")
@example("\u0663")  # a digit, not ASCII: str.isdigit() says so on both paths
@example("1+b")
def test_a_string_pads_as_the_general_path(text):
    assert padded_version(text) == _padded(text)


@pytest.mark.parametrize("value", [True, False, None, 1.0, -0.0, 2.5, math.nan, [1], {"a": 1}])
def test_other_values_take_the_general_path(value):
    assert padded_version(value) == _padded(value)


# (an int past 2**53 reaches the SDK as its JavaScript text: js_number_text's tests)
@given(st.one_of(st.integers(-(2**53) + 1, 2**53 - 1), _TEXT))
def test_the_sdk_pads_as_cfgcore(value):
    sdk = pytest.importorskip("growthbook.core")
    assert padded_version(value) == sdk.paddedVersionString(str(value))
