"""flagd, fifth audit: ``var`` paths flagd's Python evaluator (json-logic) reads and
``flagd.context()`` does not give: an array's item (``a.0``), a string's character
(``a.1``), a length (``a.length``), the whole context (``""``). cfgcore read them as
missing and answered otherwise; they are now refused on import naming the flag and
the path. Object paths (``a.b``) and keys named like numbers at the top answer as flagd.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

import pytest

from cfgcore.interop import InteropError, flagd

core_mod = pytest.importorskip("openfeature.contrib.tools.flagd.core")
from openfeature.evaluation_context import EvaluationContext  # noqa: E402


@pytest.fixture(autouse=True)
def _quiet():
    logging.getLogger("openfeature").setLevel(logging.CRITICAL)


def _doc(cond: Any) -> dict[str, Any]:
    flag = {"state": "ENABLED", "variants": {"y": "Y", "n": "N"}, "defaultVariant": "n",
            "targeting": {"if": [cond, "y", "n"]}}  # fmt: skip
    return {"flags": {"f": flag}}


def _peer(doc: dict[str, Any], attrs: dict[str, Any]) -> Any:
    core = core_mod.FlagdCore()
    core.set_flags(copy.deepcopy(doc))
    return core.resolve_string_value("f", "FB", EvaluationContext("u", copy.deepcopy(attrs))).value


@pytest.mark.parametrize(
    "cond, attrs",
    [
        ({"===": [{"var": "a.0"}, "x"]}, {"a": ["x"]}),
        ({"==": [{"var": "a.length"}, 2]}, {"a": ["x", "y"]}),
        ({"==": [{"var": "a.length"}, 3]}, {"a": "abc"}),
        ({"===": [{"var": "a.1"}, "b"]}, {"a": "abc"}),
        ({"===": [{"var": "a.0.b"}, 1]}, {"a": [{"b": 1}]}),
        ({"===": [{"var": ""}, None]}, {"x": 1}),
        ({"fractional": [{"var": "a.0"}, ["y", 1], ["n", 1]]}, {"a": ["k"]}),
    ],
)
def test_a_path_into_an_array_or_string_is_refused_naming_the_flag(cond, attrs):
    # flagd answers these from the array or string; cfgcore answered "missing"
    doc = _doc(cond) if "fractional" not in cond else {"flags": {"f": {
        "state": "ENABLED", "variants": {"y": "Y", "n": "N"}, "defaultVariant": "n",
        "targeting": cond}}}  # fmt: skip
    if "fractional" not in cond:
        assert _peer(doc, attrs) == ("N" if cond == {"===": [{"var": ""}, None]} else "Y")
    with pytest.raises(InteropError) as err:
        flagd.to_snapshot(doc)
    assert "flags.f" in str(err.value) and "var" in str(err.value)


@pytest.mark.parametrize(
    "attrs",
    [{}, {"a": {"b": 1}}, {"a": {"b": "1"}}, {"0": {"b": 1}}, {"a": [1]}, {"a": "b"},
     {"a": {"-1": 1}}, {"a": {"+1": 1}}],
    ids=repr,
)  # fmt: skip
@pytest.mark.parametrize("path", ["a.b", "0.b", "a.-1", "a.+1", "a.01"])
def test_object_paths_still_answer_as_flagd(make_py_and_c, attrs, path):
    doc = _doc({"==": [{"var": path}, 1]})
    snap = flagd.to_snapshot(copy.deepcopy(doc))
    want = _peer(doc, attrs)
    for make in make_py_and_c:
        assert flagd.resolve(make(snap), "f", flagd.context("u", attrs), "FB").value == want
