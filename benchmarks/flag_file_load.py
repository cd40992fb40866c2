"""Load and compile a 20,000-flag file: ``load_snapshot`` (JSON and YAML) and
``Engine.from_file`` (JSON, decode and compile), medians of five runs each.

Each flag has two variants, a default, one ``in`` rule and two metadata fields, as a
large generated flag set has. Run with the tree to measure on ``PYTHONPATH``::

    PYTHONPATH=src python benchmarks/flag_file_load.py
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time

import yaml

from cfgcore import Engine
from cfgcore.snapshot import load_snapshot


def _median(run, times: int = 5) -> float:
    spent = []
    for _ in range(times):
        start = time.perf_counter()
        run()
        spent.append(time.perf_counter() - start)
    return statistics.median(spent)


def main() -> None:
    flags = {
        f"flag_{i}": {
            "variants": {"on": True, "off": False},
            "default": "off",
            "metadata": {"owner": "team-a", "tags": ["x", "y"]},
            "rules": [{"when": {"attr": "country", "in": ["SE", "NO"]}, "serve": "on"}],
        }
        for i in range(20000)
    }
    with tempfile.TemporaryDirectory() as d:
        paths = {fmt: os.path.join(d, f"flags.{fmt}") for fmt in ("json", "yaml")}
        with open(paths["json"], "w", encoding="utf-8") as f:
            json.dump({"flags": flags}, f)
        with open(paths["yaml"], "w", encoding="utf-8") as f:
            yaml.safe_dump({"flags": flags}, f)
        for fmt, path in paths.items():
            print(f"load_snapshot {fmt}: {_median(lambda p=path: load_snapshot(p)):.3f} s")
        print(f"Engine.from_file json: {_median(lambda: Engine.from_file(paths['json'])):.3f} s")


if __name__ == "__main__":
    main()
