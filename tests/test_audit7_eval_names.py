"""Seventh audit of the compiler: names given as str subclasses (an application's StrEnum
of attribute or flag names) in flags built in Python.

A flag whose condition, ``bucket_by`` or rule hashing named an attribute with a StrEnum
member made ``Engine.from_snapshot`` raise a bare ``TypeError`` ("attribute name
<Attr.REGION: 'region'> is not a string") instead of compiling or raising SnapshotError;
a prerequisite written ``{"flag": Flags.BETA}`` was refused ("expected a flag key or a
prerequisite") while ``[Flags.BETA]`` was accepted; constants, segment references and
variant names given the same way already compiled. A flag key given as a str subclass
(``FeatureFlag.ENHANCED_ANOMALY_DETECTION``, whose docstring says members are strings
too, and which every check accepts) was refused: "a flag key must be a string, got
<FeatureFlag...>". Each such name now names what its text names, on both evaluators.
"""

from __future__ import annotations

import enum

import pytest

from cfgcore.engine import engine_class
from cfgcore.errors import SnapshotError
from tests.conftest import IMPLS


# ``(str, enum.Enum)``, the StrEnum of every supported Python (enum.StrEnum is 3.11+), and
# the harder case: its str() is ``Attr.REGION``, not the text it holds.
class Attr(str, enum.Enum):
    REGION = "region"
    USER = "user_id"


class Flags(str, enum.Enum):
    BETA = "beta"


HASH = {"scheme": "murmur3", "space": 10}
DOCS = {
    "condition": {"when": {"attr": Attr.REGION, "eq": "EU"}, "serve": "on"},
    "condition in any": {
        "when": {"any": [{"attr": Attr.REGION, "in": ["EU", "UK"]}, {"attr": "x", "exists": True}]},
        "serve": "on",
    },
    "rule bucket_by": {"rollout": 100, "serve": "on", "bucket_by": Attr.USER},
    "rule bucket_by list": {"rollout": 100, "serve": "on", "bucket_by": [Attr.USER]},
    "hash by": {"hash": {**HASH, "by": [Attr.USER]}, "buckets": [["on", 10]]},
    "gate by": {"serve": "on", "gates": [{"hash": {**HASH, "by": [Attr.USER]}, "hi": 10}]},
}


def _plain(value):
    """The same document with every str subclass written as its text."""
    if isinstance(value, dict):
        return {_plain(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return str.__str__(value) if isinstance(value, str) else value


CONTEXTS = [{}, {"region": "EU", "user_id": "u1"}, {"region": "US", "user_id": 7}, {"x": 1}]


@pytest.mark.parametrize("impl", sorted(IMPLS))
@pytest.mark.parametrize("rule", sorted(DOCS))
def test_a_strenum_attribute_name_names_its_text(impl, rule):
    doc = {"flags": {"f": {"default": "off", "rules": [DOCS[rule]]}}}
    flag_level = {"flags": {"f": {"default": "off", "bucket_by": [Attr.USER],
                                  "rules": [{"rollout": 100, "serve": "on"}]}}}  # fmt: skip
    for document in (doc, flag_level):
        engine = engine_class(IMPLS[impl]).from_snapshot(document)  # used to raise TypeError
        plain = engine_class(IMPLS[impl]).from_snapshot(_plain(document))
        for ctx in CONTEXTS:
            assert engine.evaluate("f", ctx) == plain.evaluate("f", ctx), (rule, ctx)
    assert (
        engine_class(IMPLS[impl])
        .from_snapshot(doc)
        .is_enabled("f", {"region": "EU", "user_id": "u1"})
    )


@pytest.mark.parametrize("impl", sorted(IMPLS))
@pytest.mark.parametrize("how", ["key", "object", "object with variant"])
def test_a_strenum_prerequisite_names_its_flag(impl, how):
    pre = {
        "key": Flags.BETA,
        "object": {"flag": Flags.BETA},
        "object with variant": {"flag": Flags.BETA, "variant": "on"},
    }[how]
    doc = {
        "flags": {
            "beta": {"default": "off", "rules": [{"when": {"attr": "r", "eq": 1}, "serve": "on"}]},
            "f": {"default": "on", "prerequisites": [pre]},
        }
    }
    engine = engine_class(IMPLS[impl]).from_snapshot(doc)
    assert engine.is_enabled("f", {"r": 1}) is True
    assert engine.evaluate("f", {"r": 2}).reason == "PREREQUISITE_FAILED"


@pytest.mark.parametrize("impl", sorted(IMPLS))
def test_an_unknown_strenum_prerequisite_is_named_by_its_text(impl):
    class Other(str, enum.Enum):
        GONE = "gone"

    doc = {"flags": {"f": {"default": "on", "prerequisites": [{"flag": Other.GONE}]}}}
    with pytest.raises(SnapshotError) as info:
        engine_class(IMPLS[impl]).from_snapshot(doc)
    assert str(info.value) == "flags.f.prerequisites[0].flag: unknown flag 'gone'"


@pytest.mark.parametrize("impl", sorted(IMPLS))
def test_a_name_that_is_no_string_is_still_a_snapshot_error(impl):
    doc = {
        "flags": {"f": {"default": "off", "rules": [{"when": {"attr": 5, "eq": 1}, "serve": "on"}]}}
    }
    with pytest.raises(SnapshotError):
        engine_class(IMPLS[impl]).from_snapshot(doc)


@pytest.mark.parametrize("impl", sorted(IMPLS))
def test_a_str_enum_flag_key_is_the_flag_its_text_names(impl):
    from cfgcore.experiments.features import FeatureFlag

    member = FeatureFlag.ENHANCED_ANOMALY_DETECTION
    doc = {
        "flags": {
            member: {"default": "off", "rules": [{"when": {"attr": "r", "eq": 1}, "serve": "on"}]},
            "child": {"default": "on", "prerequisites": [member.value]},
        }
    }
    engine = engine_class(IMPLS[impl]).from_snapshot(doc)
    assert engine.is_enabled(member, {"r": 1}) is True
    assert engine.is_enabled(member.value, {"r": 2}) is False
    assert engine.evaluate("child", {"r": 2}).reason == "PREREQUISITE_FAILED"
    everything = engine.evaluate_all({"r": 1})
    assert everything == {member.value: True, "child": True}
    assert all(type(key) is str for key in everything)
    assert type(engine.evaluate(member, {}).flag_key) is str
    # an incremental compile from or to such a document answers as a full one
    plain = {"flags": {member.value: doc["flags"][member], "child": doc["flags"]["child"]}}
    for before, after in ((doc, plain), (plain, doc)):
        first = engine_class(IMPLS[impl]).from_snapshot(before)
        first.swap(first.compile(after, previous=first.snapshot()))
        assert first.evaluate_all({"r": 1}) == everything


@pytest.mark.parametrize("impl", sorted(IMPLS))
def test_a_str_subclass_key_and_a_str_of_one_text_are_refused(impl):
    class Other(str):
        def __hash__(self):
            return 7

        def __eq__(self, other):
            return other is self

    doc = {"flags": {Other("a"): {"default": "on"}, "a": {"default": "off"}}}
    with pytest.raises(SnapshotError) as info:
        engine_class(IMPLS[impl]).from_snapshot(doc)
    assert str(info.value) == "flags.a: the same flag key written twice"
