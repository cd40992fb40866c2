"""Turn a pytest-benchmark JSON file into the Markdown tables of RESULTS.md.

    python benchmarks/report.py core.json

Per-call figures are the batch statistics divided by ``extra_info["calls"]``;
ratios are against cfgcore's compiled evaluator in the same group.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict


def _fmt(seconds: float) -> str:
    if seconds < 1e-6:
        return f"{seconds * 1e9:.0f} ns"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.2f} us"
    return f"{seconds * 1e3:.2f} ms"


def _who(bench: dict) -> str:
    name = bench["name"]
    param = bench.get("param") or ""
    if "[" in name:
        param = name[name.index("[") + 1 : -1]
    if param.startswith("cfgcore-") and ("_dict" in name or "rollout_dict" in name):
        return f"{param} (dict)"
    return param or name


def main(path: str) -> None:
    data = json.load(open(path))
    groups: dict[str, list[tuple[str, float, float, float, dict]]] = defaultdict(list)
    for b in data["benchmarks"]:
        calls = b["extra_info"].get("calls", 1) or 1
        st = b["stats"]
        groups[b["group"]].append(
            (_who(b), st["median"] / calls, st["min"] / calls, st["max"] / calls, b["extra_info"])
        )
    machine = data.get("machine_info", {})
    print(
        f"Machine: {machine.get('cpu', {}).get('brand_raw', '?')}, "
        f"{machine.get('cpu', {}).get('count', '?')} cores, "
        f"Python {machine.get('python_version', '?')}; {data.get('datetime', '')}"
    )
    print()
    print("| group | participant | median / call | min | max | x cfgcore-c |")
    print("|---|---|---|---|---|---|")
    for group in sorted(groups):
        rows = sorted(groups[group], key=lambda r: r[1])
        ref = next((r[1] for r in rows if r[0] == "cfgcore-c"), None)
        for who, med, lo, hi, extra in rows:
            ratio = f"{med / ref:.1f}" if ref else "-"
            note = f" ({extra['compiled_bytes'] / 1e6:.1f} MB)" if "compiled_bytes" in extra else ""
            print(f"| {group} | {who}{note} | {_fmt(med)} | {_fmt(lo)} | {_fmt(hi)} | {ratio} |")


if __name__ == "__main__":
    main(sys.argv[1])
