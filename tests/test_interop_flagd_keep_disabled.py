"""flagd import with ``on_error="keep"``: a DISABLED flag cfgcore cannot lower answers
DISABLED, as flagd does.

flagd's Python evaluator (FlagdCore) answers a DISABLED flag before it reads the
targeting: the caller's default, reason DISABLED, the flag's metadata, whatever the
targeting holds (arithmetic, a string where an object belongs, a fractional v1). A kept
flag resolved PARSE_ERROR whatever its state; a DISABLED one now resolves DISABLED (and
is still listed in ``metadata["refused"]``, and refused under ``on_error="raise"``).
"""

from __future__ import annotations

import copy
import logging
from typing import Any

import pytest

from cfgcore.interop import InteropError, flagd

core_mod = pytest.importorskip("openfeature.contrib.tools.flagd.core")
from openfeature.evaluation_context import EvaluationContext  # noqa: E402
from openfeature.exception import OpenFeatureError  # noqa: E402

DEFAULTS: dict[str, Any] = {"bool": False, "str": "FB", "int": 7, "float": 7.5, "obj": {"d": 1}}
METHODS = {
    "bool": "resolve_boolean_value",
    "str": "resolve_string_value",
    "int": "resolve_integer_value",
    "float": "resolve_float_value",
    "obj": "resolve_object_value",
}
UNLOWERABLE: list[Any] = [
    {"+": [{"var": "n"}, 1]},
    "on",
    {"fractional": [["on", 1.0], ["off", 1]]},
    {"if": [{"==": [{"var": "a"}, 1]}, "on", "nope"], "x": 1},
]


@pytest.fixture(autouse=True)
def _quiet():
    logging.getLogger("openfeature").setLevel(logging.CRITICAL)


def _peer(doc: dict[str, Any], kind: str, tk: str | None, attrs: dict[str, Any]) -> tuple:
    core = core_mod.FlagdCore()
    core.set_flags(copy.deepcopy(doc))  # (set_flags rewrites the document it is given)
    try:
        p = getattr(core, METHODS[kind])("f", DEFAULTS[kind], EvaluationContext(tk, attrs))
    except OpenFeatureError as exc:
        return (DEFAULTS[kind], None, "ERROR", str(exc.error_code).split(".")[-1], None)
    code = p.error_code and str(p.error_code).split(".")[-1]
    return (p.value, p.variant, str(p.reason).split(".")[-1], code, dict(p.flag_metadata))


def _doc(state: str, targeting: Any) -> dict[str, Any]:
    flag = {
        "state": state,
        "variants": {"on": True, "off": False},
        "defaultVariant": "off",
        "targeting": targeting,
        "metadata": {"team": "x"},
    }
    return {"flags": {"f": flag, "g": {**flag, "state": "ENABLED"}}, "metadata": {"set": 1}}


@pytest.mark.parametrize("targeting", UNLOWERABLE, ids=range(len(UNLOWERABLE)))
@pytest.mark.parametrize("kind", list(DEFAULTS))
def test_a_kept_disabled_flag_answers_disabled(make, targeting, kind):
    doc = _doc("DISABLED", targeting)
    with pytest.raises(InteropError, match="flags.f"):
        flagd.to_snapshot(copy.deepcopy(doc))  # still refused where asked to raise
    snap = flagd.to_snapshot(copy.deepcopy(doc), on_error="keep")
    assert set(snap.metadata["refused"]) == {"f", "g"}
    engine = make(snap)
    for tk, attrs in [(None, {}), ("u1", {"a": 1, "n": 2})]:
        want = _peer(doc, kind, tk, attrs)
        assert want[2] == "DISABLED"
        r = flagd.resolve(engine, "f", flagd.context(tk, attrs), DEFAULTS[kind])
        assert (r.value, r.variant, r.reason, r.error_code, dict(r.metadata)) == want


@pytest.mark.parametrize("targeting", UNLOWERABLE[:2], ids=range(2))
def test_a_kept_enabled_flag_still_answers_parse_error(make, targeting):
    snap = flagd.to_snapshot(_doc("DISABLED", targeting), on_error="keep")
    r = flagd.resolve(make(snap), "g", flagd.context("u1", {}), False)
    assert (r.value, r.variant, r.reason, r.error_code) == (False, None, "ERROR", "PARSE_ERROR")


def test_a_kept_disabled_flag_is_not_exported():
    # its variants and targeting were not imported: exporting it would write a flag
    # without them (flagd refuses empty variants), so export names it instead
    doc = _doc("DISABLED", UNLOWERABLE[0])
    del doc["flags"]["g"]
    snap = flagd.to_snapshot(doc, on_error="keep")
    with pytest.raises(InteropError, match="flags.f: .*it was refused on import"):
        flagd.from_snapshot(snap)
