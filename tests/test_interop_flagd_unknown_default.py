"""flagd import: a ``defaultVariant`` naming no variant of its flag is imported and
answered as flagd's Python evaluator (FlagdCore) answers it.

flagd's schema types ``defaultVariant`` as a string or null (it cannot say which
strings); FlagdCore loads such a flag, serves the variants its targeting picks, and
errs (GENERAL, "Resolved variant ... not in variants config") only where the default
is reached; a DISABLED one answers DISABLED. cfgcore refused the whole flag on import
("defaultVariant 'zz' is not a variant").
"""

from __future__ import annotations

import copy
import json
import logging
from typing import Any

import pytest

from cfgcore.interop import flagd

core_mod = pytest.importorskip("openfeature.contrib.tools.flagd.core")
from openfeature.evaluation_context import EvaluationContext  # noqa: E402
from openfeature.exception import OpenFeatureError  # noqa: E402

DEFAULTS: dict[str, Any] = {"bool": False, "str": "FB", "int": 7}
METHODS = {
    "bool": "resolve_boolean_value",
    "str": "resolve_string_value",
    "int": "resolve_integer_value",
}
VARIANTS = {"bool": {"on": True, "off": False}, "str": {"on": "ON", "off": "OFF"},
            "int": {"on": 1, "off": 2}}  # fmt: skip
A_IS_1 = {"==": [{"var": "a"}, 1]}
TARGETING: list[Any] = [
    None,
    {},
    {"if": [A_IS_1, "on", None]},
    {"if": [A_IS_1, "on"]},
    {"if": [A_IS_1, "on", "off"]},
    {"if": [A_IS_1, "on", "zz"]},  # names the unknown default itself
    {"if": [A_IS_1, "on", "nope"]},
    {"fractional": [{"var": "a"}, ["on", 1], ["off", 1]]},
    {"fractional": [["on", 0], ["off", 0]]},  # no weight: the default
]
CONTEXTS: list[tuple[str | None, dict[str, Any]]] = [
    ("u1", {"a": 1}), ("u2", {"a": 2}), (None, {}), ("u3", {"a": "x"}), ("u4", {"a": 3}),
]  # fmt: skip


@pytest.fixture(autouse=True)
def _quiet():
    logging.getLogger("openfeature").setLevel(logging.CRITICAL)


def _doc(kind: str, state: str, targeting: Any) -> dict[str, Any]:
    flag: dict[str, Any] = {"state": state, "variants": VARIANTS[kind], "defaultVariant": "zz"}
    if targeting is not None:
        flag["targeting"] = targeting
    return {"flags": {"f": flag}}


def _peer(doc: dict[str, Any], kind: str, tk: str | None, attrs: dict[str, Any]) -> tuple:
    core = core_mod.FlagdCore()
    core.set_flags(copy.deepcopy(doc))  # (set_flags rewrites the document it is given)
    try:
        p = getattr(core, METHODS[kind])("f", DEFAULTS[kind], EvaluationContext(tk, attrs))
    except OpenFeatureError as exc:
        return (DEFAULTS[kind], None, "ERROR", str(exc.error_code).split(".")[-1])
    code = p.error_code and str(p.error_code).split(".")[-1]
    return (p.value, p.variant, str(p.reason).split(".")[-1], code)


def _ours(engine: Any, kind: str, tk: str | None, attrs: dict[str, Any]) -> tuple:
    r = flagd.resolve(engine, "f", flagd.context(tk, attrs), DEFAULTS[kind])
    return (r.value, r.variant, r.reason, r.error_code)


@pytest.mark.parametrize("targeting", TARGETING, ids=range(len(TARGETING)))
@pytest.mark.parametrize("state", ["ENABLED", "DISABLED"])
@pytest.mark.parametrize("kind", list(DEFAULTS))
def test_an_unknown_default_is_answered_as_flagd_answers_it(make, kind, state, targeting):
    doc = _doc(kind, state, targeting)
    engine = make(flagd.to_snapshot(copy.deepcopy(doc)))
    for tk, attrs in CONTEXTS:
        assert _ours(engine, kind, tk, attrs) == _peer(doc, kind, tk, attrs), (tk, attrs)


def test_the_default_errs_where_targeting_serves(make):
    doc = _doc("str", "ENABLED", {"if": [A_IS_1, "on", None]})
    engine = make(flagd.to_snapshot(copy.deepcopy(doc)))
    assert _ours(engine, "str", "u1", {"a": 1}) == ("ON", "on", "TARGETING_MATCH", None)
    assert _ours(engine, "str", "u2", {"a": 2}) == ("FB", None, "ERROR", "GENERAL")


@pytest.mark.parametrize("state", ["ENABLED", "DISABLED"])
@pytest.mark.parametrize("targeting", TARGETING[:6], ids=range(6))
def test_an_exported_unknown_default_is_still_answered_so(make, state, targeting):
    # (as a strict equality on the targeting key: a loose one is not exported)
    text = json.dumps(targeting).replace(
        '{"==": [{"var": "a"}, 1]}', '{"===": [{"var": "targetingKey"}, "u1"]}'
    )
    targeting = json.loads(text)
    doc = _doc("str", state, targeting)
    out = flagd.from_snapshot(flagd.to_snapshot(copy.deepcopy(doc)))
    assert out["flags"]["f"]["defaultVariant"] not in out["flags"]["f"]["variants"]
    engine = make(flagd.to_snapshot(copy.deepcopy(out)))
    for tk, attrs in CONTEXTS:
        want = _peer(doc, "str", tk, attrs)
        assert _peer(out, "str", tk, attrs) == want, (tk, attrs)
        assert _ours(engine, "str", tk, attrs) == want, (tk, attrs)
