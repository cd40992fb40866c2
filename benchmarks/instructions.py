"""Per-request calls counted in CPU instructions (callgrind), beside their floors.

Wall-clock medians on a shared 2-core machine move by tens of percent from run to run
(other processes, frequency changes), which is as large as the differences issue 15's
targets are about. Instructions executed do not depend on the load: this script runs
each call and its floor under ``valgrind --tool=callgrind`` with a fixed hash seed and
reports instructions per call and the ratio to the floor. It complements
``bench_request.py`` (which measures time); it is not a substitute, since equal
instruction counts can still differ in cache misses.

Each case runs twice, with its loop executed 0 and ``N`` times, so imports and setup
cancel out: per call = (I(N) - I(0)) / N. Needs valgrind (``apt-get install valgrind``).

The groups whose work continues on a background writer (first exposures, metric
events) count the main thread only (``--separate-threads=yes``): issue 15's targets for
them are the request thread's cost. Those scripts end with ``os._exit(0)`` right after
the loop, so the exit-time flush of the backlog is not counted either.

Run::

    python benchmarks/instructions.py            # all cases, a Markdown table
    python benchmarks/instructions.py r-bind-5   # the cases of one group
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import textwrap

HERE = os.path.dirname(os.path.abspath(__file__))
N = 20_000

# Shared setup: the same engine and manager fixtures bench_request.py times.
SETUP = """
import sys, tempfile
sys.path.insert(0, {here!r})
from bench_core import cfgcore_snapshot
from bench_request import CTX, FIVE, RULE5, TEST, TREE, _ab_test
from peers import FLAG_ON, FLAG_RULE, FLAG_SPLIT
from cfgcore.config.tree import freeze
from cfgcore.engine import Engine
engine = Engine.from_snapshot(cfgcore_snapshot(1000))
"""

MANAGER = """
from cfgcore.dynamic_config import DynamicConfigurationManager, FeatureFlag
manager = DynamicConfigurationManager(state_dir=tempfile.mkdtemp())
assert manager.create_ab_test(_ab_test())
flag = FeatureFlag.ENHANCED_RECOMMENDATIONS
seed_ctx = {"user_id": "u1", "user_segment": "premium", "region": "EU"}
ab_ctx = {"user_id": "u0"}
manager.get_ab_test_variant(TEST, ab_ctx)
# Bound beforehand, as bench_request.py does: the loop times the calls, not the lookups.
check, variant, name = manager.engine.is_enabled, manager.engine.variant, flag.value
seed_check, seed_variant = manager.is_feature_enabled, manager.get_ab_test_variant
"""

CONFIG = """
import pathlib, yaml
from cfgcore.config.manager import ConfigurationManager
d = pathlib.Path(tempfile.mkdtemp())
(d / "base.yaml").write_text(yaml.safe_dump(TREE))
(d / "staging.yaml").write_text("{}\\n")
config = ConfigurationManager(d, environ={}, validate=False)
config.load_environment_config("staging")
frozen = freeze(TREE)
"""

BOUND = "bound = engine.context(CTX)\n"

# New users for first exposures: made in setup (a request's context exists before the
# call), the same N of them whatever the loop count, taken with next() on both sides.
NEW_USERS = (
    MANAGER
    + f"""
users = iter([{{"user_id": f"new-{{i}}"}} for i in range({N})])
"""
)

METRIC = (
    MANAGER
    + """
metric_ctx = {"user_id": "u1"}
record = manager.record_metric
assert record(TEST, "ctr", 1.0, user_context=metric_ctx)
"""
)

# Groups whose request-path cost is the main thread's only (see the module docstring).
MAIN_THREAD = {"r-ab-first", "r-metric"}

# group -> [(participant, extra setup, statement)]; the first participant is the floor.
CASES: dict[str, list[tuple[str, str, str]]] = {
    "r-bind": [
        ("floor: plain-dict rule check", "", "engine.is_enabled(FLAG_RULE, CTX)"),
        ("engine.context(d)", "", "engine.context(CTX)"),
    ],
    "r-bind-5": [
        ("floor: five plain-dict checks", "", "for k in FIVE: engine.is_enabled(k, CTX)"),
        (
            "bind + five checks",
            "",
            "ctx = engine.context(CTX)\nfor k in FIVE: engine.is_enabled(k, ctx)",
        ),
        (
            "five checks, context bound beforehand",
            "bound = engine.context(CTX)\nfor k in FIVE: engine.is_enabled(k, bound)",
            "for k in FIVE: engine.is_enabled(k, bound)",
        ),
    ],
    "r-bind-plain": [  # issue 15: a fresh context's first check, of a flag reading nothing
        ("floor: engine.context(d)", "", "engine.context(CTX)"),
        ("bind + one plain check", "", "engine.is_enabled(FLAG_ON, engine.context(CTX))"),
        ("one plain check, bound", BOUND, "engine.is_enabled(FLAG_ON, bound)"),
    ],
    "r-bind-5-rule": [
        ("floor: five plain-dict rule checks", "", "for k in RULE5: engine.is_enabled(k, CTX)"),
        (
            "bind + five rule checks",
            "",
            "ctx = engine.context(CTX)\nfor k in RULE5: engine.is_enabled(k, ctx)",
        ),
        (
            "five rule checks, context bound beforehand",
            "bound = engine.context(CTX)\nfor k in RULE5: engine.is_enabled(k, bound)",
            "for k in RULE5: engine.is_enabled(k, bound)",
        ),
    ],
    "r-config-read": [
        ("floor: dict chain", "", 'TREE["a"]["b"]["c"]["d"]'),
        ("FrozenDict chain", CONFIG, 'frozen["a"]["b"]["c"]["d"]'),
        ("manager[...]", CONFIG, 'config["a"]["b"]["c"]["d"]'),
    ],
    "r-config-get": [
        ("floor: dict chain", "", 'TREE["a"]["b"]["c"]["d"]'),
        ("manager.get", CONFIG, 'config.get("a.b.c.d")'),
    ],
    "r-seed-flag": [
        ("floor: engine.is_enabled", MANAGER, "check(name, seed_ctx)"),
        ("is_feature_enabled(Enum)", MANAGER, "seed_check(flag, seed_ctx)"),
    ],
    "r-ab-exposed": [
        ("floor: engine.variant", MANAGER, "variant(TEST, ab_ctx)"),
        ("get_ab_test_variant", MANAGER, "seed_variant(TEST, ab_ctx)"),
    ],
    "r-ab-first": [
        ("floor: engine.variant, new user", NEW_USERS, "variant(TEST, next(users))"),
        ("get_ab_test_variant, first exposure", NEW_USERS, "seed_variant(TEST, next(users))"),
    ],
    "r-metric": [
        ("floor: engine.is_enabled", METRIC, "check(name, seed_ctx)"),
        ("record_metric", METRIC, 'record(TEST, "ctr", 1.0, user_context=metric_ctx)'),
    ],
    "r-split": [
        ("floor: plain flag, bound", BOUND, "engine.is_enabled(FLAG_ON, bound)"),
        ("50/30/20 split, bound", BOUND, "engine.variant(FLAG_SPLIT, bound)"),
    ],
}

# Inside a function, as a request handler runs: locals are fast, globals are cached.
LOOP = """
def _case():
    for _ in range(_n):
{body}


_case()
"""


def _script(setup: str, stmt: str, n: int, main_only: bool = False) -> str:
    body = textwrap.indent(textwrap.dedent(stmt), "        ")
    setup = textwrap.dedent(setup) + "\n"
    script = SETUP.format(here=HERE) + setup + f"_n = {n}\n" + LOOP.format(body=body)
    return script + ("import os\nos._exit(0)\n" if main_only else "")


def instructions(setup: str, stmt: str, n: int, main_only: bool = False) -> int:
    """Instructions callgrind counts running the case ``n`` times: the whole process,
    or with ``main_only`` its main thread."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "case.py")
        with open(path, "w", encoding="utf-8") as f:
            f.write(_script(setup, stmt, n, main_only))
        # This checkout's sources (and its built extensions), whatever is installed; the
        # interpreter as invoked (a venv's python, not the one it links to: its packages).
        src = os.path.join(os.path.dirname(HERE), "src")
        env = {**os.environ, "PYTHONHASHSEED": "0", "PYTHONPATH": src}
        out = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={tmp}/cg.out",
             f"--separate-threads={'yes' if main_only else 'no'}",
             sys.executable, path],
            capture_output=True, text=True, env=env,
        )  # fmt: skip
        if out.returncode != 0:
            raise RuntimeError(f"case failed under valgrind:\n{out.stderr[-3000:]}")
        if main_only:  # thread 1's file: cg.out-01
            with open(os.path.join(tmp, "cg.out-01"), encoding="utf-8") as f:
                found = re.search(r"^(?:summary|totals): (\d+)", f.read(), re.M)
            if not found:
                raise RuntimeError("no totals in the main thread's callgrind output")
            return int(found.group(1))
    found = re.search(r"Collected : (\d+)", out.stderr)
    if not found:
        raise RuntimeError(out.stderr[-2000:])
    return int(found.group(1))


def per_call(setup: str, stmt: str, main_only: bool = False) -> float:
    return (instructions(setup, stmt, N, main_only) - instructions(setup, stmt, 0, main_only)) / N


def main(groups: list[str]) -> None:
    print("| group | participant | instructions / call | x floor |")
    print("|---|---|---|---|")
    for group in groups or list(CASES):
        floor = None
        for name, setup, stmt in CASES[group]:
            ic = per_call(setup, stmt, group in MAIN_THREAD)
            floor = ic if floor is None else floor
            print(f"| {group} | {name} | {ic:,.0f} | {ic / floor:.2f} |", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
