"""A check that runs Python code which checks again (a mapping whose get() reads flags)
recurses as deep as Python allows without crashing the process, on both evaluators.

The compiled evaluator used to hold a few KB of C stack per level (the array a dict
context binds into sat in the frame every check passes through), so a recursion that
Python's limit allowed overflowed the C stack first: a segfault at
``sys.setrecursionlimit(2000)`` where the reference evaluator answered. Each case runs
in a child process, so a crash fails the test instead of killing the run.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import IMPLS

CHILD = r"""
import sys
from collections.abc import Mapping

from cfgcore.engine import engine_class
from tests.conftest import IMPLS

impl, how, limit = sys.argv[1], sys.argv[2], int(sys.argv[3])
engine = engine_class(IMPLS[impl]).from_snapshot({
    "flags": {
        "f": {"default": "off", "rules": [{"when": {"attr": "seg", "eq": "x"}, "serve": "on"}]},
        "g": {"variants": {"a": 1, "b": 2}, "default": "a",
              "rules": [{"when": {"attr": "seg", "starts_with": "X", "ignore_case": True},
                         "serve": "b"}]},
    }
})


class Derived(Mapping):
    # Attributes computed from other flags: reading "seg" evaluates a flag with this
    # same mapping, which reads "seg" again, until Python's recursion limit stops it.
    calls = 0

    def __getitem__(self, key):
        raise KeyError(key)

    def get(self, key, default=None):
        Derived.calls += 1
        return "x" if engine.is_enabled("f", self.wrap(self)) else "y"

    def __iter__(self):
        return iter(())

    def __len__(self):
        return 0


Derived.wrap = staticmethod(engine.context if how == "context" else (lambda m: m))
sys.setrecursionlimit(limit)
ctx = Derived.wrap(Derived())
out = [engine.is_enabled("f", ctx), engine.variant("g", ctx), engine.evaluate("g", ctx).reason,
       engine.evaluate_all(Derived())]
print(repr(out), Derived.calls > 100)
"""


ROOT = Path(__file__).resolve().parents[1]


def _run(impl: str, how: str, limit: int) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", CHILD, impl, how, str(limit)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=str(ROOT),
    )


@pytest.mark.skipif("c" not in IMPLS, reason="the compiled extension is not built")
@pytest.mark.parametrize("how", ["mapping", "context"])
def test_a_mapping_that_checks_flags_recurses_without_crashing(how):
    results = {}
    for impl in ("c", "py"):
        done = _run(impl, how, 4000)
        assert done.returncode == 0, (impl, done.returncode, done.stderr[-2000:])
        results[impl] = done.stdout
    # Deep down the recursion a RecursionError reads as a missing attribute: every
    # level then answers "y", so both evaluators give the same answers.
    assert results["c"] == results["py"]
    assert results["c"].strip().endswith("True")  # it did recurse
