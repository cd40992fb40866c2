"""Dates in an Unleash context, read as yggdrasil (UnleashClient 6's engine) reads them.

yggdrasil reads a context value with Rust chrono's ``DateTime`` parser: relaxed RFC
3339, which also takes a signed year of any length (``+12024-...``), one-digit months,
days and hours, whitespace around the numbers and before the offset, ``UTC`` in any
case, an offset without ':' (``+0100``) or with U+2212 MINUS SIGN, a leap second
(``:60``) and a fraction of any length, kept to the nanosecond. cfgcore read only strict
RFC 3339 with a four-digit year and kept microseconds, so for each of these a
DATE_AFTER/DATE_BEFORE constraint answered otherwise (``...00:00:00.0000005Z`` is after
``...00:00:00.000Z`` to the SDK, equal to cfgcore; ``...T00:00:60Z`` no date at all).
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

BOUNDS = [
    "2024-01-01T00:00:00.000Z", "2024-01-01T00:00:59.999Z", "2024-01-01T00:01:00Z",
    "2023-12-31T23:00:00.001+01:00", "9999-12-31T23:59:59.999Z", "0001-01-01T00:00:00Z",
]  # fmt: skip
_FIELDS = ["x", "currentTime"]


def _payload() -> dict[str, Any]:
    features = []
    for bound in BOUNDS:
        for op in ("DATE_AFTER", "DATE_BEFORE"):
            for field in _FIELDS:
                c = {"contextName": field, "operator": op, "value": bound}
                features.append(
                    {"name": f"f{len(features)}", "enabled": True,
                     "strategies": [{"name": "default", "constraints": [c]}]}
                )  # fmt: skip
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


def _check(ygg, engines, text: str) -> None:
    for ctx in ({"properties": {"x": text}}, {"currentTime": text, "properties": {}}):
        mapped = unleash.context(ctx)
        for f in PAYLOAD["features"]:
            field = f["strategies"][0]["constraints"][0]["contextName"]
            if field == "currentTime" and "currentTime" not in ctx:
                continue  # the clock: not this test's
            if field == "x" and "x" not in ctx["properties"]:
                continue
            want = ygg.is_enabled(f["name"], ctx).is_enabled
            for engine in engines:
                got = engine.is_enabled(f["name"], mapped)
                assert got is want, (text, f["strategies"][0]["constraints"][0])


@pytest.mark.parametrize(
    "text",
    [
        "2024-01-01T00:00:00.000000001Z", "2024-01-01T00:00:00.0000005Z",
        "2024-01-01T00:00:59.9999999Z", "2024-01-01T00:00:00.0000000001Z",
        "2024-01-01T00:00:60Z", "2024-01-01T00:00:60.5Z", "2023-12-31T23:59:60+01:00",
        "+12024-01-01T00:00:00Z", "+2024-01-01T00:00:00Z", "-0001-01-01T00:00:00Z",
        "+0000002025-01-01T00:00:01Z", "+262142-12-31T23:59:59Z", "+262143-01-01T00:00:00Z",
        "-262143-01-01T00:00:00Z", "-262144-12-31T23:59:59Z", "+262142-12-31T23:59:59-01:00",
        "-262143-01-01T00:30:00+01:00", "0000-03-01T00:00:00Z",
        "2024-01-01T00:00:00+0100", "2024-01-01T00:30:00UTC", "2024-01-01T00:30:00utc",
        "2024-01-01T00:30:00\u221201:00", "2024-01-01T00:30:00 +01:00", "2024-1-1T0:0:1Z",
        " 2024 - 01 - 01T 00 : 00 : 01 Z ", "2024-01-01T00:00:01\u3000Z",
        "2024-01-01T00:00:01\x1cZ", "2024-01-01T00:30:00+01", "2024-01-01T00:30:00+01:00:00",
        "2024-01-01T00:30:00+24:00", "2024-01-01T00:30:00+23:59", "2024-01-01T00:30:00+01:60",
        "2024-01-01T00:00:61Z", "2023-12-31T24:00:00Z", "2023-02-29T00:00:00Z",
        "2000-02-29T00:00:00Z", "1900-02-29T00:00:00Z", "2024-01-01T00:00:00.Z",
        "12024-01-01T00:00:00Z", "2024-01-01_00:00:01Z", "2024-01-01TT00:00:01Z",
        "\uff12024-01-01T00:00:01Z", "+" + "0" * 5000 + "2025-01-01T00:00:01Z",
        "+" + "9" * 5000 + "-01-01T00:00:01Z",
    ],
)  # fmt: skip
def test_odd_dates_answer_as_yggdrasil(ygg, engines, text):
    _check(ygg, engines, text)


_WS = st.sampled_from(["", "", "", " ", "\t", "\u3000", "\xa0", "\x1c"])
_PIECE = {
    "year": st.sampled_from(["2024", "2023", "999", "0", "+2024", "-2024", "+12024", "0000"]),
    "month": st.sampled_from(["01", "1", "12", "13", "02", "00"]),
    "day": st.sampled_from(["01", "1", "31", "29", "30", "00"]),
    "sep": st.sampled_from(["T", "t", " ", "_"]),
    "hour": st.sampled_from(["00", "0", "23", "24", "9"]),
    "minute": st.sampled_from(["00", "59", "60", "1"]),
    "second": st.sampled_from(["00", "59", "60", "61", "5"]),
    "frac": st.sampled_from(["", ".", ".9", ".999", ".9995", ".0000000001", ".999999999999"]),
    "zone": st.sampled_from(["Z", "z", "UTC", "uTc", "+01:00", "-01:00", "+0100", "\u221201:00",
                             "+01", "+23:59", "+24:00", "-00:00", "+01: 00", "", "GMT"]),
}  # fmt: skip


@settings(max_examples=examples(150))
@given(parts=st.fixed_dictionaries(_PIECE), spaces=st.lists(_WS, min_size=6, max_size=6))
def test_generated_dates_answer_as_yggdrasil(ygg, engines, parts, spaces):
    text = (
        f"{spaces[0]}{parts['year']}{spaces[1]}-{parts['month']}-{spaces[2]}{parts['day']}"
        f"{parts['sep']}{parts['hour']}:{spaces[3]}{parts['minute']}:{parts['second']}"
        f"{parts['frac']}{spaces[4]}{parts['zone']}{spaces[5]}"
    )
    _check(ygg, engines, text)
