"""Unleash import: SEMVER constraints compare a version of any length, as yggdrasil does.

cfgcore's semantic versions are read up to 256 characters (a longer one never
compares); Unleash's engine (yggdrasil, which UnleashClient runs) compares any length:
``1.2.3-`` followed by 300 letters passed ``SEMVER_LT 1.2.3`` there and failed it here,
and ``1.2.3+`` with 300 characters of build metadata failed ``SEMVER_EQ 1.2.3``. The
importer now also tests a ``#semcmp:`` attribute that ``unleash.context()`` answers
for such a value.
"""

from __future__ import annotations

import copy
import json
import logging
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.interop import unleash
from tests.fuzz import examples

ygg = pytest.importorskip("yggdrasil_engine.engine")

OPS = ["SEMVER_EQ", "SEMVER_GT", "SEMVER_LT", "SEMVER_GTE", "SEMVER_LTE"]
CONSTANTS = ["1.2.3", "1.2.2", "1.2.3-a", "1.2.3-b", "1.2.3-1", "2.0.0", "0.0.1", "1.2.3-a.b"]
LONG_VERSIONS = [
    "1.2.3-" + "a" * 300,
    "1.2.3+" + "b" * 300,
    "1" * 19 + ".2.3-" + "x" * 300,
    "1.2.3-" + ".".join(["a"] * 200),
    "1.2.3-" + "9" * 400,
    "1.2.3-0" + "9" * 400,  # a numeric identifier with a leading zero: no version
    "1.2.3-" + "1" * 5000 + ".a",  # an identifier past Python's int digits
    "1.2.3-a." + "b" * 300 + "+" + "c" * 300,
    "99999999999999999999.2.3-" + "a" * 300,  # past yggdrasil's 64 bits: no version
    "v1.2.3-" + "a" * 300,
    "1.2.3-" + "a" * 300 + "\n",
    "1.2.3-a" + "é" * 300,
    "1.2.3-" + "a" * 250,  # under the bound: read as before
]


@pytest.fixture(autouse=True)
def _quiet():
    logging.getLogger("yggdrasil_engine").setLevel(logging.CRITICAL)


def _payload(op: str, constant: str, inverted: bool) -> dict[str, Any]:
    constraint = {"contextName": "version", "operator": op, "value": constant}
    strategy = {"name": "default", "constraints": [constraint | {"inverted": inverted}]}
    return {"version": 2, "features": [{"name": "f", "enabled": True, "strategies": [strategy]}]}


def _answers(makes: list[Any], payload: dict[str, Any], versions: list[str]) -> list[bool]:
    peer = ygg.UnleashEngine()
    peer.take_state(json.dumps(payload))
    snap = unleash.to_snapshot(copy.deepcopy(payload))
    engines = [make(snap) for make in makes]
    answers = []
    for v in versions:
        ctx = {"userId": "u", "properties": {"version": v}}
        want = peer.is_enabled("f", copy.deepcopy(ctx)).is_enabled
        for engine in engines:
            for built in (unleash.context(ctx), unleash.context(ctx, engine=engine)):
                assert engine.is_enabled("f", engine.context(built)) is want, (v[:40], len(v))
        answers.append(want)
    return answers


@pytest.mark.parametrize("inverted", [False, True])
@pytest.mark.parametrize("op", OPS)
def test_long_versions_compare_as_yggdrasil(make, op, inverted):
    for constant in CONSTANTS:
        _answers([make], _payload(op, constant, inverted), LONG_VERSIONS)


def test_the_cases_cfgcore_missed(make):
    assert _answers([make], _payload("SEMVER_LT", "1.2.3", False), LONG_VERSIONS[:1]) == [True]
    assert _answers([make], _payload("SEMVER_EQ", "1.2.3", False), LONG_VERSIONS[1:2]) == [True]


_IDENT = st.one_of(
    st.text(alphabet="abz-", min_size=1, max_size=3),
    st.integers(0, 12).map(str),
    st.sampled_from(["a" * 300, "1" * 300, "0", "01"]),
)


@settings(max_examples=examples(60), deadline=None)
@given(
    op=st.sampled_from(OPS),
    constant=st.sampled_from(CONSTANTS),
    inverted=st.booleans(),
    core=st.sampled_from(["1.2.3", "1.2.2", "2.0.0", "0.0.1", "1.2.30"]),
    pre=st.lists(_IDENT, max_size=4),
    build=st.sampled_from(["", "+b", "+" + "c" * 300]),
)
def test_random_versions_compare_as_yggdrasil(
    make_py_and_c, op, constant, inverted, core, pre, build
):
    version = core + ("-" + ".".join(pre) if pre else "") + build
    _answers(make_py_and_c, _payload(op, constant, inverted), [version])
