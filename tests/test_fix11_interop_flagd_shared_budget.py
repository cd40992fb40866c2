"""The flagd importer's import-wide node budget (MAX_IMPORT_NODES) counts a shared
``$ref`` evaluator once, as the compiler writes it once (later uses are one OP_CALL
node): a document that references one large evaluator from many flags imports, and
answers as flagd's evaluator does; a document whose flags are genuinely too large is
still refused, and one flag's own budget (MAX_LOWERED_NODES, what one evaluation of it
may walk) still counts every use."""

from __future__ import annotations

import copy
import json
import logging
from typing import Any

import pytest

from cfgcore.compiler import compile_snapshot
from cfgcore.interop import InteropError, flagd

core_mod = pytest.importorskip("openfeature.contrib.tools.flagd.core")
from openfeature.evaluation_context import EvaluationContext  # noqa: E402


@pytest.fixture(autouse=True)
def _quiet():
    logging.getLogger("openfeature").setLevel(logging.CRITICAL)


def _flag(targeting: Any) -> dict[str, Any]:
    return {"state": "ENABLED", "variants": {"on": True, "off": False},
            "defaultVariant": "off", "targeting": targeting}  # fmt: skip


def _big(n: int) -> dict[str, Any]:
    """An evaluator lowering to about 4 * n condition nodes (== of text is loose)."""
    return {"or": [{"==": [{"var": "email"}, f"u{i}@example.com"]} for i in range(n)]}


def _shared_doc(n_flags: int, n: int) -> dict[str, Any]:
    flags = {}
    for j in range(n_flags):
        if j % 2:
            targeting = {"if": [{"$ref": "big"}, "on", "off"]}
        else:  # the evaluator used twice, negated once, beside a flag's own test
            own = {"==": [{"var": "country"}, f"c{j}"]}
            targeting = {"if": [{"and": [own, {"$ref": "big"}]}, "on",
                                {"!": {"$ref": "big"}}, "off", "on"]}  # fmt: skip
        flags[f"f{j}"] = _flag(targeting)
    return {"flags": flags, "$evaluators": {"big": _big(n)}}


def test_many_flags_sharing_one_large_evaluator_import(monkeypatch, make_py_and_c):
    monkeypatch.setattr(flagd, "MAX_IMPORT_NODES", 30_000)
    doc = _shared_doc(40, 1_000)  # ~4,000 nodes per use, ~240,000 counted per use
    snap = flagd.to_snapshot(copy.deepcopy(doc), source="flags.json")  # before: refused
    assert set(snap.flags) == set(doc["flags"]) and "refused" not in snap.metadata
    # the compiler writes the evaluator once: far fewer nodes than one copy per use
    from cfgcore._layout import NW

    tables = compile_snapshot(snap)
    nodes = len(tables.nodes) // NW
    assert nodes < 30_000, nodes
    core = core_mod.FlagdCore()
    core.set_flags(copy.deepcopy(doc))
    users = [("u1", {"email": "u7@example.com", "country": "c0"}),
             ("u2", {"email": "u7@example.com", "country": "c3"}),
             ("u3", {"email": "nobody@example.com", "country": "c4"}),
             ("u4", {})]  # fmt: skip
    # flagd's answer for each case, once for every engine (an evaluation reads a
    # context, never changes it)
    cases = []
    for key in doc["flags"]:
        for tk, attrs in users:
            p = core.resolve_boolean_value(key, False, EvaluationContext(tk, copy.deepcopy(attrs)))
            cases.append((key, tk, attrs, (p.value, p.variant)))
    for make in make_py_and_c:
        engine = make(tables)  # (the tables counted above: what make(snap) compiles)
        for key, tk, attrs, peer in cases:
            r = flagd.resolve(engine, key, flagd.context(tk, attrs), False)
            assert (r.value, r.variant) == peer, (key, tk, attrs)


def test_flags_too_large_in_all_are_still_refused(monkeypatch):
    # A quarter of the first test's sizes, budget and evaluator alike: the same ten
    # flags are taken and the same thirty refused as at 1,000 and 30,000 (where the two
    # imports took 5 s of the run)
    monkeypatch.setattr(flagd, "MAX_IMPORT_NODES", 7_500)
    # the same flags with the evaluator written out in each: nothing is shared
    doc = _shared_doc(40, 250)
    big = doc.pop("$evaluators")["big"]
    text = json.dumps(doc)  # (each flag its own copy of the evaluator)
    doc = json.loads(text.replace(json.dumps({"$ref": "big"}), json.dumps(big)))
    snap = flagd.to_snapshot(doc, on_error="skip")
    refused = snap.metadata.get("refused", {})
    assert refused and set(snap.flags).isdisjoint(refused)
    assert all("7,500 condition nodes in all" in why for why in refused.values())
    with pytest.raises(InteropError, match="7,500 condition nodes in all"):
        flagd.to_snapshot(doc, source="flags.json")


def test_distinct_large_evaluators_are_each_counted(monkeypatch):
    monkeypatch.setattr(flagd, "MAX_IMPORT_NODES", 30_000)
    evaluators = {f"e{j}": _big(1_000 + j) for j in range(12)}
    flags = {f"f{j}": _flag({"if": [{"$ref": f"e{j}"}, "on", "off"]}) for j in range(12)}
    snap = flagd.to_snapshot({"flags": flags, "$evaluators": evaluators}, on_error="skip")
    refused = snap.metadata.get("refused", {})
    assert refused and all("condition nodes in all" in why for why in refused.values())


def test_one_flag_still_counts_every_use_of_an_evaluator(monkeypatch):
    # what one evaluation of the flag may walk: each OP_CALL walks the evaluator again
    monkeypatch.setattr(flagd, "MAX_LOWERED_NODES", 20_000)
    chain: list[Any] = []
    for i in range(6):  # each branch gives null: the guards after it repeat its negation
        chain += [{"and": [{"==": [{"var": "country"}, f"c{i}"]}, {"$ref": "big"}]}, None]
    doc = {"flags": {"f": _flag({"if": [*chain, "off"]})}, "$evaluators": {"big": _big(300)}}
    with pytest.raises(InteropError, match="20,000 condition nodes"):
        flagd.to_snapshot(doc)
