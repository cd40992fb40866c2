"""encode_snapshot's NaN/infinity refusal for JSON, with its fast pre-check.

Walking every value of a 1,000-flag document in Python to find a NaN cost most of a
JSON flag file's write; a MessagePack encode and a byte scan now say "certainly none"
first, and the exact walk runs only when the scan sees a float64 with all exponent
bits set (or text that looks like one). The scan must never miss one.
"""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.snapshot import _may_hold_non_finite, _non_finite
from tests.fuzz import examples

_leaf = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.text(max_size=12),
    st.booleans(),
    st.none(),
    st.sampled_from(["\xcb\x7f\xf0", "\u00cb\u00ff\u00ff"]),  # text near the byte pattern
)
_data = st.recursive(
    _leaf,
    lambda kids: st.one_of(
        st.lists(kids, max_size=4), st.dictionaries(st.text(max_size=6), kids, max_size=4)
    ),
    max_leaves=30,
)


@settings(max_examples=examples(400), deadline=None)
@given(_data)
def test_the_scan_never_misses_a_nan_or_infinity(data):
    if _non_finite(data) is not None:
        assert _may_hold_non_finite(data)


def test_the_scan_clears_finite_documents_and_flags_each_non_finite_value():
    finite = {
        "flags": {
            f"f{i}": {"variants": {"a": i / 7, "b": [1e308, -0.0, 5e-324]}} for i in range(50)
        }
    }
    assert not _may_hold_non_finite(finite)
    for bad in (math.nan, math.inf, -math.inf, float("-nan")):
        assert _may_hold_non_finite({"flags": {"x": {"variants": {"a": [1, {"v": bad}]}}}})
