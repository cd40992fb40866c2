"""flagd ``sem_ver`` on versions past 256 characters, third audit, against flagd's
in-process evaluator (``FlagdCore``).

cfgcore reads versions of at most 256 characters; flagd (the ``semver`` package) reads
any length, so ``sem_ver`` on a longer context value was null in cfgcore and a
comparison in flagd. ``flagd.context()`` now puts a stand-in of at most 256 characters
in ``#semver`` that orders as the version does against every constant of at most
``SEMVER_KEEP`` characters; a longer constant is not compared with a stand-in (null,
the difference left, README).
"""

from __future__ import annotations

import copy
import logging
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfgcore.interop import flagd

core_mod = pytest.importorskip("openfeature.contrib.tools.flagd.core")
from openfeature.evaluation_context import EvaluationContext  # noqa: E402

OPS = ["=", "!=", "<", "<=", ">", ">=", "^", "~"]


@pytest.fixture(autouse=True)
def _quiet():
    logging.getLogger("openfeature").setLevel(logging.CRITICAL)


def _doc(op: str, constant: str) -> dict[str, Any]:
    cond = {"sem_ver": [{"var": "a"}, op, constant]}
    flag = {"state": "ENABLED", "variants": {"yes": "yes", "no": "no", "null": "null"},
            "defaultVariant": "null", "targeting": {"if": [cond, "yes", "no"]}}  # fmt: skip
    return {"flags": {"f": flag}}


def _peer(doc: dict[str, Any], value: Any) -> Any:
    core = core_mod.FlagdCore()
    core.set_flags(copy.deepcopy(doc))
    return core.resolve_string_value("f", "FB", EvaluationContext("u", {"a": value})).value


def _mine(engine: Any, value: Any) -> Any:
    return flagd.resolve(engine, "f", flagd.context("u", {"a": value}), "FB").value


_NUMBER = st.one_of(
    st.sampled_from(["0", "1", "2", "10"]),
    st.integers(1, 9).flatmap(lambda d: st.integers(1, 400).map(lambda n: str(d) * n)),
)
_ALNUM = st.text("0129az-", min_size=1, max_size=300).filter(lambda t: not t.isdigit())
_IDENT = st.one_of(_NUMBER, _ALNUM)


@st.composite
def _long_version_and_constant(draw):
    parts = [draw(_NUMBER) for _ in range(3)]
    pre = draw(st.lists(_IDENT, max_size=8))
    # a constant that shares a prefix of the version's parts, then may differ
    keep = draw(st.integers(0, 3 + len(pre)))
    c_parts = (parts + pre)[:keep] + draw(st.lists(_IDENT, max_size=3))
    c_parts = [p[: draw(st.integers(1, 40))] for p in c_parts]
    c_parts = [p if not p.isdigit() else (p.lstrip("0") or "0") for p in c_parts]
    c_nums = [p if p.isdigit() else "1" for p in (c_parts + ["0", "0", "0"])[:3]]
    constant = ".".join(c_nums) + ("-" + ".".join(c_parts[3:]) if len(c_parts) > 3 else "")
    version = ".".join(parts) + ("-" + ".".join(pre) if pre else "")
    if len(version) <= 256:
        version += ("." if pre else "-") + "b" * draw(st.integers(257, 400))
    if draw(st.booleans()):
        version += "+build." + "x" * draw(st.integers(0, 300))
    if draw(st.booleans()):
        version = "v" + version
    return version, constant[: flagd.SEMVER_KEEP - 4].rstrip(".-")


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pair=_long_version_and_constant(), op=st.sampled_from(OPS))
def test_long_versions_compare_as_flagd_compares_them(make_py_and_c, pair, op):
    version, constant = pair
    doc = _doc(op, constant)
    want = _peer(doc, version)
    for make in make_py_and_c:
        engine = make(flagd.to_snapshot(doc))
        assert _mine(engine, version) == want, (op, constant, version[:80])


@pytest.mark.parametrize(
    "value",
    [
        "1.0.0-" + "a" * 300,
        "1.0.0-" + "9" * 300,
        "1" * 300 + ".0.0",
        "1.0.0-" + ".".join(["a"] * 200),
        "1.0.0+" + "b" * 300,
        "1.0.0-" + "1" * 5000,
        "1" * 5000,  # past Python's int digits: the semver package raises, flagd is null
        10**400,  # a number: its text is the version
        "1.0.0-" + "0" + "1" * 300,  # a numeric identifier with a leading zero: no version
        "1.0.0-01",  # the same, short: flagd's sem_ver is null, cfgcore's was a version
        "\u0661.0.0",  # an Arabic-Indic digit: no version to the semver package either
    ],
    ids=lambda v: f"{str(v)[:10]}..{len(str(v))}",
)
@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize(
    "constant", ["1.0.0", "1.0.0-a", "2.0.0", "1.0.0-" + "a" * 100], ids=["c1", "c2", "c3", "c4"]
)
def test_hostile_long_versions_agree_with_flagd(make, value, op, constant):
    doc = _doc(op, constant)
    engine = make(flagd.to_snapshot(doc))
    assert _mine(engine, value) == _peer(doc, value)


def test_a_constant_past_the_stand_ins_reach_is_null_for_a_long_version(make):
    # the difference left: such a constant is not compared with a stand-in (sem_ver is
    # null, which "if" reads as false)
    constant = "1.0.0-" + "a" * 200
    doc = _doc(">", constant)
    engine = make(flagd.to_snapshot(doc))
    assert _mine(engine, "1.0.0-" + "a" * 300) == "no"
    assert _peer(doc, "1.0.0-" + "a" * 300) == "yes"
    assert _mine(engine, "1.0.0-" + "a" * 250) == _peer(doc, "1.0.0-" + "a" * 250) == "yes"
