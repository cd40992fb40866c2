"""Unleash ``caseInsensitive`` string constraints, against yggdrasil (UnleashClient 6's
engine): it compares the context value and the constraint's values in lower case (Rust's
``to_lowercase``, which is Python's ``str.lower()``: full lower-case mappings, final
sigma). cfgcore compared them with its own ``ignore_case``, which folds further, so
``STR_CONTAINS ["ss"]`` matched "ß" and "ẞ", ``STR_ENDS_WITH ["ς"]`` matched "Σ",
``STR_STARTS_WITH ["ſ"]`` matched "ss": true where Unleash says false.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.interop import unleash
from tests.fuzz import examples

engine_mod = pytest.importorskip("yggdrasil_engine.engine")

TEXTS = [
    "ß", "SS", "ss", "\u1e9e", "\u0130", "i\u0307", "i", "I", "\u0131", "\u03a3", "\u03c2",
    "\u03c3", "\u039f\u0394\u039f\u03a3", "\u03bf\u03b4\u03bf\u03c2", "\u01c5", "\u01c6",
    "\ufb00", "FF", "\u212a", "K", "k", "\u13a0", "\uab70", "\U00010400", "\U00010428", "É",
    "e\u0301", "\u1f88", "\u1f80", "\u017f", "s", "", "\u0345", "\u03b9", "A\u03a3",
    "A\u03a3B", "True", "TRUE", "1E5",
]  # fmt: skip
OPS = ["STR_CONTAINS", "STR_STARTS_WITH", "STR_ENDS_WITH"]


def _payload() -> dict[str, Any]:
    features = []
    for op in OPS:
        for value in TEXTS:
            if not value:
                continue
            for ci in (True, False):
                c = {"contextName": "x", "operator": op, "values": [value],
                     "caseInsensitive": ci}  # fmt: skip
                features.append(
                    {"name": f"f{len(features)}", "enabled": True,
                     "strategies": [{"name": "default", "constraints": [c]}]}
                )  # fmt: skip
    c = {"contextName": "currentTime", "operator": "STR_CONTAINS", "values": ["t"],
         "caseInsensitive": True}  # fmt: skip
    features.append(
        {"name": "clock", "enabled": True, "strategies": [{"name": "default", "constraints": [c]}]}
    )
    return {"version": 2, "features": features}


PAYLOAD = _payload()


@pytest.fixture(autouse=True)
def _quiet():
    logging.getLogger("yggdrasil_engine").setLevel(logging.CRITICAL)


@pytest.fixture(scope="module")
def ygg():
    engine = engine_mod.UnleashEngine()
    engine.take_state(json.dumps(PAYLOAD))
    return engine


@pytest.fixture(scope="module")
def engines(make_py_and_c):
    snap = unleash.to_snapshot(PAYLOAD)
    return [make(snap) for make in make_py_and_c]


def _check(ygg, engines, value: Any) -> None:
    mapped = unleash.context({"userId": "u", "properties": {"x": value}})
    # UnleashClient gives its engine each value as its str() (True: "True")
    ctx = {"userId": "u", "properties": {"x": str(value)}}
    for f in PAYLOAD["features"]:
        want = ygg.is_enabled(f["name"], ctx).is_enabled
        for engine in engines:
            assert engine.is_enabled(f["name"], mapped) is want, (value, f["strategies"])


@pytest.mark.parametrize("value", TEXTS + ["x\u1e9ex", "ab\u03a3", "\u03a3ab", True, 1e5])
def test_case_insensitive_string_operators_answer_as_yggdrasil(ygg, engines, value):
    _check(ygg, engines, value)


@settings(max_examples=examples(60))
@given(value=st.text(alphabet=st.sampled_from("".join(TEXTS) + "aA "), max_size=5))
def test_generated_texts_answer_as_yggdrasil(ygg, engines, value):
    _check(ygg, engines, value)


def test_the_clock_text_is_compared_in_lower_case(ygg, engines):
    ctx = {"userId": "u"}  # no currentTime: the clock, "2024-...T...Z"
    assert ygg.is_enabled("clock", ctx).is_enabled is True
    for engine in engines:
        assert engine.is_enabled("clock", unleash.context(ctx)) is True
