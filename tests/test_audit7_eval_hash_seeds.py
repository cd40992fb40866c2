"""Seventh audit: answers do not depend on the process's hash seed.

A flag built in Python with ``bucket_by``, a rule's ``bucket_by``, ``hash.by`` or
``buckets`` given as a set compiled, its order (which attribute is hashed first, which
variant takes which range) being the set's iteration order: different under each
``PYTHONHASHSEED``, so the workers of one service put one user in different variants.
Such a set is now refused with its key path; sets stay accepted where order decides
nothing (``in``, ``on_variants``, ``prerequisites``), and there every process answers
alike.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from cfgcore.engine import engine_class
from cfgcore.errors import SnapshotError
from cfgcore.snapshot import Flag, Gate, Hashing, Rule, Snapshot, decode_snapshot
from tests.conftest import IMPLS

ABCD = {"a", "b", "c", "d"}
MURMUR = {"scheme": "murmur3", "space": 100}
REASON = "expected array (the order of a set changes from one process to the next), got set"
DICTS = {
    "flags.f.bucket_by": {"bucket_by": ABCD, "rules": [{"rollout": 50, "serve": "on"}]},
    "flags.f.rules[1].bucket_by": {
        "rules": [{"when": {"attr": "x", "exists": True}, "serve": "on"},
                  {"rollout": 50, "serve": "on", "bucket_by": frozenset(ABCD)}]
    },
    "flags.f.rules[0].hash.by": {
        "rules": [{"hash": {**MURMUR, "by": ABCD}, "buckets": [["on", 50]]}]
    },
    "flags.f.rules[0].gates[0].hash.by": {
        "rules": [{"serve": "on", "gates": [{"hash": {**MURMUR, "by": ABCD}, "hi": 50}]}]
    },
    "flags.f.rules[0].buckets": {
        "rules": [{"hash": {**MURMUR, "by": ["a"]}, "buckets": {("on", 50), ("off", 50)}}]
    },
}  # fmt: skip
STRUCTS = {
    "flags.f.bucket_by": Flag(default="off", bucket_by=ABCD, rules=[Rule(rollout=50, serve="on")]),
    "flags.f.rules[0].bucket_by": Flag(
        default="off", rules=[Rule(rollout=50, serve="on", bucket_by=frozenset(ABCD))]
    ),
    "flags.f.rules[0].hash.by": Flag(
        default="off",
        rules=[Rule(hash=Hashing(scheme="murmur3", by=ABCD), buckets=[("on", 50)])],
    ),
    "flags.f.rules[0].gates[0].hash.by": Flag(
        default="off",
        rules=[Rule(serve="on", gates=[Gate(hash=Hashing(scheme="murmur3", by=ABCD), hi=50)])],
    ),
}


@pytest.mark.parametrize("impl", sorted(IMPLS))
@pytest.mark.parametrize("path", sorted(DICTS))
def test_an_ordered_field_given_as_a_set_is_refused_by_its_path(impl, path):
    doc = {"flags": {"f": {"default": "off", **DICTS[path]}}}
    with pytest.raises(SnapshotError) as info:
        engine_class(IMPLS[impl]).from_snapshot(doc, file="flags.py")
    assert str(info.value) == f"flags.py: {path}: {REASON}"


@pytest.mark.parametrize("impl", sorted(IMPLS))
@pytest.mark.parametrize("path", sorted(STRUCTS))
def test_a_python_built_flag_with_such_a_set_is_refused_too(impl, path):
    with pytest.raises(SnapshotError) as info:
        engine_class(IMPLS[impl]).from_snapshot(Snapshot(flags={"f": STRUCTS[path]}))
    assert str(info.value) == f"{path}: {REASON}"


def test_a_yaml_set_tag_is_refused_there_too():
    text = b"flags:\n  f:\n    default: 'off'\n    bucket_by: !!set {a, b}\n"
    with pytest.raises(SnapshotError) as info:
        decode_snapshot(text, "yaml", file="flags.yaml")
    assert str(info.value) == f"flags.yaml:4: flags.f.bucket_by: {REASON}"


PROBE = r"""
import json, sys
from cfgcore.engine import engine_class
import cfgcore._eval_py as py
try:
    import cfgcore._eval as c
except ImportError:
    c = None
doc = {"flags": {
    "unordered": {"default": "off",
                  "rules": [{"when": {"attr": "a", "in": {"a1", "a2", "a3", 4}}, "serve": "on"}]},
    "g": {"default": "on"}, "h": {"default": "on"},
    "pre": {"default": "off", "prerequisites": {"g", "h"},
            "rules": [{"rollout": 50, "serve": "on"}]},
    "v": {"variants": {"x": 1, "y": 2, "z": 3}, "default": "x", "on_variants": {"y", "z"},
          "bucket_by": ["b", "a"], "rules": [{"split": {"x": 20, "y": 30, "z": 50}}]},
}}
out = []
for impl in [m for m in (c, py) if m is not None]:
    e = engine_class(impl).from_snapshot(doc)
    for i in range(200):
        ctx = {"a": f"a{i % 5}", "b": f"b{i}", "user_id": f"u{i}"}
        out.append([e.evaluate_all(ctx), e.is_enabled("v", ctx), e.variant("pre", ctx)])
print(json.dumps(out))
"""


def test_sets_where_order_decides_nothing_answer_alike_under_every_hash_seed():
    answers = set()
    for seed in ("1", "2", "3"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run(
            [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True
        )
        answers.add(done.stdout)
    assert len(answers) == 1
    assert json.loads(answers.pop())  # something was evaluated
