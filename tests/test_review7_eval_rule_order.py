"""Review of the seventh audit: the order of a flag's rules never depends on the hash seed.

13a3435 refused a set given for ``bucket_by``, ``hash.by`` or ``buckets``, whose order
decides an answer, but not a set of rules: ``Rule`` structs are frozen, so hashable, and
``rules={Rule(serve="a"), Rule(serve="b")}`` compiled in the set's iteration order, which
changes with ``PYTHONHASHSEED``: the first rule that matches serves, so the workers of one
service served one user different variants. Such a set is refused with its key path.

The compiler's check of Python-built flags also looked only at ``Flag`` structs: a flag
given as a dict inside a ``Snapshot`` (``Snapshot(flags={"f": {"bucket_by": {...}}})``)
still compiled its sets in hash-seed order. It is checked as a Flag is.

A bucket pair given as a set (``buckets=[{"on", 50}, {"off", 50}]``) in a Python-built flag
listed name and width in hash-seed order: some workers loaded the flag and others refused
it. It is refused everywhere, naming the pair.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from cfgcore.engine import engine_class
from cfgcore.errors import SnapshotError
from cfgcore.snapshot import Flag, Hashing, Rule, Snapshot
from tests.conftest import IMPLS

REASON = "expected array (the order of a set changes from one process to the next), got set"
VARIANTS = {"a": 1, "b": 2}


def _rules() -> set[Rule]:
    return {Rule(serve="a", gates=()), Rule(serve="b", gates=())}


@pytest.mark.parametrize("impl", sorted(IMPLS))
def test_a_python_built_flag_with_a_set_of_rules_is_refused(impl):
    flag = Flag(variants=VARIANTS, default="a", rules=_rules())  # type: ignore[arg-type]
    with pytest.raises(SnapshotError) as info:
        engine_class(IMPLS[impl]).from_snapshot(Snapshot(flags={"f": flag}))
    assert str(info.value) == f"flags.f.rules: {REASON}"


@pytest.mark.parametrize("impl", sorted(IMPLS))
def test_a_dict_document_with_a_set_of_rules_is_refused(impl):
    doc = {"flags": {"f": {"variants": VARIANTS, "default": "a", "rules": _rules()}}}
    with pytest.raises(SnapshotError) as info:
        engine_class(IMPLS[impl]).from_snapshot(doc, file="flags.py")
    assert str(info.value) == f"flags.py: flags.f.rules: {REASON}"


@pytest.mark.parametrize("impl", sorted(IMPLS))
def test_rules_in_a_tuple_still_compile_in_their_order(impl):
    rules = (Rule(serve="b", gates=()), Rule(serve="a", gates=()))
    flag = Flag(variants=VARIANTS, default="a", rules=rules)  # type: ignore[arg-type]
    engine = engine_class(IMPLS[impl]).from_snapshot(Snapshot(flags={"f": flag}))
    assert engine.variant("f", {"user_id": "u"}) == "b"


ABCD = {"a", "b", "c", "d"}
DICT_FLAGS = {
    "flags.f.bucket_by": {
        "default": "off",
        "bucket_by": ABCD,
        "rules": [{"rollout": 50, "serve": "on"}],
    },
    "flags.f.rules[0].bucket_by": {
        "default": "off",
        "rules": [{"rollout": 50, "serve": "on", "bucket_by": frozenset(ABCD)}],
    },
    "flags.f.rules[0].hash.by": {
        "default": "off",
        "rules": [
            {"hash": {"scheme": "murmur3", "space": 100, "by": ABCD}, "buckets": [["on", 50]]}
        ],
    },
    "flags.f.rules": {"variants": VARIANTS, "default": "a", "rules": _rules()},
}


@pytest.mark.parametrize("impl", sorted(IMPLS))
@pytest.mark.parametrize("path", sorted(DICT_FLAGS))
def test_a_dict_flag_in_a_python_built_snapshot_with_such_a_set_is_refused(impl, path):
    snapshot = Snapshot(flags={"f": DICT_FLAGS[path]})  # type: ignore[dict-item]
    with pytest.raises(SnapshotError) as info:
        engine_class(IMPLS[impl]).from_snapshot(snapshot)
    assert str(info.value) == f"{path}: {REASON}"


PAIRS = [{"on", 50}, {"off", 50}]
HASH = {"scheme": "murmur3", "by": ["a"], "space": 100}
PAIR_FLAGS = {
    "struct": Flag(
        default="off",
        rules=[Rule(hash=Hashing(scheme="murmur3", by=["a"], space=100), buckets=PAIRS)],  # type: ignore[arg-type]
    ),
    "dict": {"default": "off", "rules": [{"hash": HASH, "buckets": PAIRS}]},
}


@pytest.mark.parametrize("impl", sorted(IMPLS))
@pytest.mark.parametrize("kind", sorted(PAIR_FLAGS))
def test_a_bucket_pair_given_as_a_set_is_refused_by_its_path(impl, kind):
    snapshot = Snapshot(flags={"f": PAIR_FLAGS[kind]})  # type: ignore[dict-item]
    with pytest.raises(SnapshotError) as info:
        engine_class(IMPLS[impl]).from_snapshot(snapshot)
    assert str(info.value) == f"flags.f.rules[0].buckets[0]: {REASON}"


@pytest.mark.parametrize("impl", sorted(IMPLS))
def test_a_dict_flag_with_lists_still_compiles(impl):
    flag = {"default": "off", "bucket_by": ["b", "a"], "rules": [{"rollout": 100, "serve": "on"}]}
    engine = engine_class(IMPLS[impl]).from_snapshot(Snapshot(flags={"f": flag}))  # type: ignore[dict-item]
    assert engine.variant("f", {"a": "x"}) == "on"


PROBE = r"""
from cfgcore.engine import Engine
from cfgcore.errors import SnapshotError
from cfgcore.snapshot import Flag, Hashing, Rule, Snapshot
rules = {Rule(serve="a", gates=()), Rule(serve="b", gates=())}
try:
    e = Engine.from_snapshot(Snapshot(flags={"f": Flag(variants={"a": 1, "b": 2}, default="a",
                                                       rules=rules)}))
    print(e.variant("f", {"user_id": "u"}))
except SnapshotError:
    print("refused")
ctx = {k: k + "1" for k in "abcd"}
try:
    e = Engine.from_snapshot(Snapshot(flags={"f": {
        "default": "off", "bucket_by": {"a", "b", "c", "d"},
        "rules": [{"rollout": 50, "serve": "on"}]}}))
    print([e.variant("f", {**ctx, k: f"u{i}"}) for k in "abcd" for i in range(6)])
except SnapshotError:
    print("refused")
try:
    e = Engine.from_snapshot(Snapshot(flags={"f": {"default": "off", "rules": [{
        "hash": {"scheme": "murmur3", "by": ["a"], "space": 100},
        "buckets": [{"on", 50}, {"off", 50}]}]}}))
    print(e.variant("f", {"a": "x"}))
except SnapshotError:
    print("refused")
"""


def test_every_hash_seed_gives_the_same_outcome():
    outcomes = set()
    for seed in ("1", "2", "3", "4", "5", "6"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run(
            [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True
        )
        outcomes.add(done.stdout.strip())
    assert outcomes == {"refused\nrefused\nrefused"}
