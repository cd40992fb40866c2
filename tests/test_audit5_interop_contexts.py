"""The importers' ``context()`` with hostile attribute values, fifth audit: a context is
built per request, so it must not raise. A cyclic object (Python data, never JSON) or
one nested thousands of levels deep raised RecursionError from flagd.context() and
growthbook.context(). Objects are now read to MAX_PATH_DEPTH levels (a deeper
condition path is refused on import, naming the flag) and a cycle stops where it
closes; paths within the bound still answer as the SDKs.
"""

from __future__ import annotations

import copy
import logging

import pytest

from cfgcore.interop import InteropError, flagd, growthbook, unleash

MAX_PATH_DEPTH = getattr(growthbook, "MAX_PATH_DEPTH", 64)  # (64 before it was named)


def _cyclic() -> dict:
    c: dict = {"a": 1}
    c["self"] = c
    return c


def _deep(n: int) -> dict:
    root: dict = {}
    cur = root
    for _ in range(n):
        cur["n"] = {"v": 1}
        cur = cur["n"]
    return root


def _deep_list(n: int) -> list:
    root: list = []
    cur = root
    for _ in range(n):
        nxt: list = []
        cur.append(nxt)
        cur = nxt
    return root


HOSTILE = [{"c": _cyclic()}, {"d": _deep(5000)}, {"l": _deep_list(5000)},
           {"m": [_cyclic(), _deep(3000)]}]  # fmt: skip


@pytest.mark.parametrize("attrs", HOSTILE, ids=["cyclic", "deep", "deep-list", "mixed"])
def test_context_never_raises_on_hostile_values(attrs):
    assert isinstance(flagd.context("u", attrs), dict)
    assert isinstance(growthbook.context(attrs), dict)
    assert isinstance(unleash.context({"userId": "u", "properties": attrs}), dict)


def test_flagd_paths_within_the_bound_answer_as_flagd(make_py_and_c):
    core_mod = pytest.importorskip("openfeature.contrib.tools.flagd.core")
    from openfeature.evaluation_context import EvaluationContext

    logging.getLogger("openfeature").setLevel(logging.CRITICAL)
    path = "d" + ".n" * 40 + ".v"
    targeting = {"if": [{"==": [{"var": path}, 1]}, "y", "n"]}
    doc = {"flags": {"f": {"state": "ENABLED", "variants": {"y": "Y", "n": "N"},
                           "defaultVariant": "n", "targeting": targeting}}}  # fmt: skip
    snap = flagd.to_snapshot(copy.deepcopy(doc))
    core = core_mod.FlagdCore()
    core.set_flags(copy.deepcopy(doc))
    for attrs in [{"d": _deep(5000)}, {"d": _deep(30)}, {"c": _cyclic()}]:
        want = core.resolve_string_value("f", "FB", EvaluationContext("u", attrs)).value
        for make in make_py_and_c:
            assert flagd.resolve(make(snap), "f", flagd.context("u", attrs), "FB").value == want


def test_growthbook_paths_within_the_bound_answer_as_the_sdk(make_py_and_c):
    gb_sdk = pytest.importorskip("growthbook")
    logging.getLogger("growthbook").setLevel(logging.CRITICAL)
    path = "d" + ".n" * 40 + ".v"
    feats = {"f": {"defaultValue": "n", "rules": [{"condition": {path: 1}, "force": "y"}]}}
    snap = growthbook.to_snapshot(feats)
    for attrs in [{"d": _deep(5000)}, {"d": _deep(30)}, {"c": _cyclic()}]:
        want = gb_sdk.GrowthBook(attributes=attrs, features=feats).eval_feature("f").value
        for make in make_py_and_c:
            engine = make(snap)
            got = engine.evaluate("f", engine.context(growthbook.context(attrs))).value
            assert got == want


def test_a_path_deeper_than_the_bound_is_refused_naming_the_flag():
    path = "d" + ".n" * (MAX_PATH_DEPTH - 1)
    doc = {"flags": {"f": {"state": "ENABLED", "variants": {"y": "Y"}, "defaultVariant": "y",
                           "targeting": {"if": [{"var": path}, "y"]}}}}  # fmt: skip
    with pytest.raises(InteropError, match=r"flags\.f\S*: var .*levels deep"):
        flagd.to_snapshot(doc)
    feats = {"f": {"defaultValue": 1, "rules": [{"condition": {path: 1}, "force": 2}]}}
    with pytest.raises(InteropError, match=r"features\.f.*levels deep"):
        growthbook.to_snapshot(feats)
