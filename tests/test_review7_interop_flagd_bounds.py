"""flagd import bounds, reviewed: the bound on what ``$ref`` evaluators expand to
(6582b43) counted every node of a flag's targeting, its own literals included, so a
flag with a large inline allowlist and no ``$ref`` at all was refused with a message
about "$ref evaluators" (a 1,000,000-user list, which imported and compiled before).
Only what evaluators write is counted now; the expansion stays bounded.
"""

from __future__ import annotations

import pytest

from cfgcore.interop import InteropError, flagd


def _flag(targeting):
    return {
        "state": "ENABLED",
        "variants": {"on": True, "off": False},
        "defaultVariant": "off",
        "targeting": targeting,
    }


@pytest.fixture
def small_bound(monkeypatch):
    # the bound scaled down so a test stays quick: 1,000 nodes instead of 1,000,000
    monkeypatch.setattr(flagd, "MAX_LOWERED_NODES", 1_000)
    return 1_000


def test_a_large_inline_allowlist_without_refs_imports(make, small_bound):
    ids = [f"user-{i}" for i in range(3 * small_bound)]
    doc = {"flags": {"allow": _flag({"if": [{"in": [{"var": "targetingKey"}, ids]}, "on", "off"]})}}
    engine = make(flagd.to_snapshot(doc))
    assert engine.is_enabled("allow", flagd.context(ids[-1])) is True
    assert engine.is_enabled("allow", flagd.context("someone")) is False


def test_an_allowlist_beside_a_ref_imports(make, small_bound):
    ids = [f"user-{i}" for i in range(3 * small_bound)]
    doc = {
        "$evaluators": {"nl": {"==": [{"var": "country"}, "NL"]}},
        "flags": {
            "f": _flag(
                {
                    "if": [
                        {"and": [{"$ref": "nl"}, {"in": [{"var": "targetingKey"}, ids]}]},
                        "on",
                        "off",
                    ]
                }
            )
        },
    }
    engine = make(flagd.to_snapshot(doc))
    yes = flagd.context(ids[7], {"country": "NL"})
    assert engine.is_enabled("f", yes) is True
    assert engine.is_enabled("f", flagd.context(ids[7], {"country": "DE"})) is False


def test_what_evaluators_write_stays_bounded(small_bound):
    big = {"in": [{"var": "targetingKey"}, [f"u{i}" for i in range(small_bound)]]}
    refs = [{"$ref": "big"}, {"$ref": "big"}]
    doc = {"$evaluators": {"big": big}, "flags": {"f": _flag({"if": [{"or": refs}, "on", "off"]})}}
    with pytest.raises(InteropError) as err:
        flagd.to_snapshot(doc, source="flags.json")
    assert "flags.f" in str(err.value) and "$ref evaluators expand" in str(err.value)
