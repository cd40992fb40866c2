"""A value that cannot be bound because memory runs out is an unusable value on both
evaluators, never a crash.

A str/int/float subclass binds by its exact value, a copy (``exact_value``). When making
that copy raised (a MemoryError for a huge str subclass; a RecursionError), the
compiled evaluator's handler released the slot it was binding into before anything had
been written to it: uninitialised stack memory, read as object pointers, and a segfault.
The child process runs under an address-space limit that lets the evaluator work but
not copy the 128 MB string, so the MemoryError is real.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import IMPLS

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import resource
import sys

from cfgcore.engine import engine_class
from tests.conftest import IMPLS

engine = engine_class(IMPLS[sys.argv[1]]).from_snapshot({"flags": {
    "f": {"default": "off", "rules": [{"when": {"attr": "seg", "eq": "x"}, "serve": "on"}]},
    "g": {"default": "off", "rules": [{"when": {"attr": "seg", "matches": "^x"}, "serve": "on"}]},
}})


class Text(str):
    pass


big = Text("x" * (128 << 20))  # binding copies it: another 128 MB


def mapped_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[0]) * resource.getpagesize()


resource.setrlimit(resource.RLIMIT_AS, (mapped_bytes() + (48 << 20), resource.RLIM_INFINITY))
answers = set()
for i in range(40):
    engine.is_enabled("g", {"seg": "xé" * (i % 7)})  # a check that leaves pointers behind
    answers.add(repr((
        engine.is_enabled("f", {"seg": big}),
        engine.evaluate("f", {"seg": big}).reason,
        engine.is_enabled("f", engine.context({"seg": big})),
        engine.evaluate_all({"seg": big}),
        engine.is_enabled("f", {"seg": "x"}),  # and the engine still works
    )))
print(sorted(answers))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")
@pytest.mark.skipif("c" not in IMPLS, reason="the compiled extension is not built")
def test_a_subclass_value_whose_copy_runs_out_of_memory_is_unusable_on_both():
    outputs = {}
    for impl in ("c", "py"):
        done = subprocess.run(
            [sys.executable, "-c", CHILD, impl],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=str(ROOT),
        )
        assert done.returncode == 0, (impl, done.returncode, done.stderr[-2000:])
        outputs[impl] = done.stdout
    assert outputs["c"] == outputs["py"]
    # unusable: "eq" does not match, the rule falls through to the default
    assert outputs["c"].strip() == (
        "[\"(False, 'DEFAULT', False, {'f': False, 'g': False}, True)\"]"
    )
