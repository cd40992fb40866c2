"""Review of the seventh audit: the order of a flag's rules never depends on the hash seed.

13a3435 refused a set given for ``bucket_by``, ``hash.by`` or ``buckets``, whose order
decides an answer, but not a set of rules: ``Rule`` structs are frozen, so hashable, and
``rules={Rule(serve="a"), Rule(serve="b")}`` compiled in the set's iteration order, which
changes with ``PYTHONHASHSEED``: the first rule that matches serves, so the workers of one
service served one user different variants. Such a set is refused with its key path.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from cfgcore.engine import engine_class
from cfgcore.errors import SnapshotError
from cfgcore.snapshot import Flag, Rule, Snapshot
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


PROBE = r"""
from cfgcore.engine import Engine
from cfgcore.errors import SnapshotError
from cfgcore.snapshot import Flag, Rule, Snapshot
rules = {Rule(serve="a", gates=()), Rule(serve="b", gates=())}
try:
    e = Engine.from_snapshot(Snapshot(flags={"f": Flag(variants={"a": 1, "b": 2}, default="a",
                                                       rules=rules)}))
    print(e.variant("f", {"user_id": "u"}))
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
    assert outcomes == {"refused"}
