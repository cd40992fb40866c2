"""GrowthBook hashing of a number attribute, fifth audit (follow-up), against the
``growthbook`` SDK.

GrowthBook hashes a number as JavaScript's ``String()`` writes it: the shortest digits
that read back as the double, zero-padded for an integer past 2**53. cfgcore wrote
such an integer's exact digits (``String(2**60)`` is ``1152921504606847000``; cfgcore
hashed ``1152921504606846976``), so a user whose id is such a number (a float id from
JSON, an int past 2**53) landed in another bucket than the SDK's. (The version
operators pad both numbers they compare alike, so they agreed; checked here too.)
"""

from __future__ import annotations

import copy
import logging

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from cfgcore.interop import growthbook
from tests.fuzz import examples

gb_mod = pytest.importorskip("growthbook")
logging.getLogger("growthbook").setLevel(logging.CRITICAL)

FEATURES = {
    "exp": {"defaultValue": "none", "rules": [
        {"key": "e", "variations": ["v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7"],
         "hashVersion": 2}]},
    "exp1": {"defaultValue": "none", "rules": [
        {"key": "e", "variations": ["v0", "v1", "v2", "v3"], "hashVersion": 1, "seed": "s"}]},
    "roll": {"defaultValue": "off", "rules": [{"force": "on", "coverage": 0.5}]},
}  # fmt: skip

_NUMBERS = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(2**53, 2**80).map(float),
    st.integers(-(2**80), 2**80),
    st.floats(1e15, 1e22),
    st.floats(1e-9, 1e-5),
)


@pytest.fixture(scope="module")
def engines(make_py_and_c):
    """FEATURES imported once, on each evaluator (every example reads the same flags)."""
    snap = growthbook.to_snapshot(copy.deepcopy(FEATURES))
    return [make(snap) for make in make_py_and_c]


@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(uid=_NUMBERS)
@example(uid=5.428897603073169e16)  # String() "54288976030731690", exactly ...688
@example(uid=2**60)
@example(uid=float(2**60))
@example(uid=1e21)
@example(uid=1.5e-7)
def test_a_number_id_buckets_as_the_sdk(uid, engines):
    sdk = gb_mod.GrowthBook(attributes={"id": uid}, features=copy.deepcopy(FEATURES))
    want = {key: sdk.eval_feature(key).value for key in FEATURES}
    ctx = growthbook.context({"id": uid})
    for engine in engines:
        assert {key: engine.evaluate(key, ctx).value for key in FEATURES} == want


@pytest.mark.parametrize("value, constant", [
    (float(2**60), 2**60 + 100), (float(2**60), float(2**60)), (2**60 + 1, 2**60 + 64),
    (5.428897603073169e16, 54288976030731690), (1e21, 10**21), (1e21, "1e+21"),
])  # fmt: skip
def test_a_number_version_pads_as_the_sdk(value, constant, make_py_and_c):
    feats = {"f": {"defaultValue": False, "rules": [
        {"condition": {"v": {"$veq": constant}}, "force": True}]}}  # fmt: skip
    want = gb_mod.GrowthBook(attributes={"v": value}, features=copy.deepcopy(feats))
    want_value = want.eval_feature("f").value
    snap = growthbook.to_snapshot(copy.deepcopy(feats))
    for make in make_py_and_c:
        assert make(snap).evaluate("f", growthbook.context({"v": value})).value == want_value


def test_js_number_text_examples():
    assert growthbook.js_number_text(float(2**60)) == "1152921504606847000"
    assert growthbook.js_number_text(5.428897603073169e16) == "54288976030731690"
    assert growthbook.js_number_text(1e21) == "1e+21"
    assert growthbook.js_number_text(1.5e-7) == "1.5e-7"
    assert growthbook.js_number_text(0.000001) == "0.000001"
    assert growthbook.js_number_text(-0.0) == "0"
    assert growthbook.js_number_text(123.456) == "123.456"
    assert growthbook.js_number_text(1e16) == "10000000000000000"
