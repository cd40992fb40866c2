"""Review of the seventh audit: a variant named by a str subclass is found by its text
wherever a name refers to it.

92c5554 stored variant names as exact str but kept looking up ``default``,
``off_variant``, ``on_variants``, a rule's ``serve``, ``split`` and ``buckets`` and a
prerequisite's ``variant``/``variants`` by the name as given. A str subclass with its own
``__hash__``/``__eq__`` (a case-insensitive name type), used alike for the variants and
for the names referring to them, compiled before that commit and was then refused as
"unknown variant 'A' (variants: A, B)". Every name is now looked up by its exact
text, as is a rule's own ``bucket_by`` attribute name (b93160f's slot lookup).
"""

from __future__ import annotations

import pytest

from cfgcore.engine import engine_class
from cfgcore.errors import SnapshotError
from tests.conftest import IMPLS


class Name(str):
    """A case-insensitive name, as some applications keep identifiers."""

    def __eq__(self, other):
        return isinstance(other, str) and self.lower() == other.lower()

    def __ne__(self, other):
        return not self == other

    def __hash__(self):
        return hash(self.lower())


A, B = Name("A"), Name("B")
HASH = {"scheme": "murmur3", "by": ["user_id"], "space": 100}


def _doc():
    return {
        "flags": {
            "f": {
                "variants": {A: 1, B: 2},
                "default": A,
                "off_variant": B,
                "on_variants": [B],
                "rules": [
                    {"when": {"attr": "x", "eq": 1}, "serve": B},
                    {"when": {"attr": "x", "eq": 2}, "hash": HASH, "buckets": [[B, 100]]},
                    {"when": {"attr": "x", "eq": 3}, "split": {A: 0, B: 100}},
                ],
            },
            "off": {"variants": {A: 1, B: 2}, "default": A, "off_variant": B, "enabled": False},
            "one": {"default": "on", "prerequisites": [{"flag": "f", "variant": B}]},
            "any": {"default": "on", "prerequisites": [{"flag": "f", "variants": [A]}]},
        }
    }


@pytest.mark.parametrize("impl", sorted(IMPLS))
def test_names_referring_to_str_subclass_variants_are_found(impl):
    engine = engine_class(IMPLS[impl]).from_snapshot(_doc(), file="flags.py")
    for x in (1, 2, 3):
        assert engine.variant("f", {"x": x, "user_id": "u"}) == "B"
        assert engine.is_enabled("f", {"x": x, "user_id": "u"}) is True
    assert engine.variant("f", {}) == "A"
    assert engine.is_enabled("f", {}) is False
    assert engine.variant("off", {}) == "B"
    assert type(engine.variant("off", {})) is str
    # prerequisites: f serves B for x=1, A otherwise
    assert engine.variant("one", {"x": 1}) == "on"
    assert engine.variant("one", {}) != "on"
    assert engine.variant("any", {}) == "on"
    assert engine.variant("any", {"x": 1}) != "on"


@pytest.mark.parametrize("impl", sorted(IMPLS))
def test_a_name_no_variant_spells_is_still_refused(impl):
    doc = _doc()
    doc["flags"]["f"]["default"] = Name("C")
    with pytest.raises(SnapshotError) as info:
        engine_class(IMPLS[impl]).from_snapshot(doc, file="flags.py")
    assert "flags.f.default: unknown variant 'C' (variants: A, B)" in str(info.value)


@pytest.mark.parametrize("impl", sorted(IMPLS))
def test_a_rule_bucket_by_named_by_such_a_subclass_buckets_as_its_text(impl):
    # b93160f made slot() take a str subclass by its text, but a rule's own bucket_by
    # then looked its slot up again by the name as given: a KeyError, reported as
    # "not a flag document's value" for a name that compiles everywhere else.
    def doc(name):
        rule = {"rollout": 50, "serve": "on", "bucket_by": [name]}
        return {"flags": {"f": {"default": "off", "rules": [rule]}}}

    engines = [engine_class(IMPLS[impl]).from_snapshot(doc(n)) for n in (Name("Uid"), "Uid")]
    users = [{"Uid": f"u{i}"} for i in range(40)]
    answers = [[e.variant("f", ctx) for ctx in users] for e in engines]
    assert answers[0] == answers[1]
    assert set(answers[0]) == {"on", "off"}
