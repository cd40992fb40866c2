"""A split weight that is not a finite number >= 0 is one problem, said as such.

``split: {a: inf, b: 0, c: 0}`` was reported as "weight must be >= 0, got inf" (it
is) and "weights sum to 0, not 100" (the bad weight, read as 0, made that up)."""

from __future__ import annotations

import pytest

from cfgcore.engine import Engine
from cfgcore.errors import SnapshotError


def _problems(split):
    doc = {"flags": {"f": {"variants": {"a": 1, "b": 2, "c": 3}, "default": "a",
                           "rules": [{"split": split}]}}}  # fmt: skip
    with pytest.raises(SnapshotError) as err:
        Engine.from_snapshot(doc)
    return [(p.path, p.message) for p in err.value.problems]


@pytest.mark.parametrize("weight", [float("inf"), float("-inf"), float("nan"), -5])
def test_a_bad_weight_is_one_problem(weight):
    assert _problems({"a": weight, "b": 50, "c": 50}) == [
        ("flags.f.rules[0].split.a", f"weight must be a finite number >= 0, got {weight}")
    ]


def test_good_weights_that_miss_100_are_said():
    assert _problems({"a": 50, "b": 40, "c": 0}) == [
        ("flags.f.rules[0].split", "weights sum to 90, not 100")
    ]
