"""``cfgcore experiment``: A/B test reports from the dynamic-config state files.

``cfgcore experiment report NAME [--flags FILE | --state-dir DIR] [--plot out.png]``
reads the flags file (for the test's split, control and metric kinds), the metric
events ``<stem>.metrics.jsonl`` and the exposure log ``<stem>.exposures.jsonl`` next
to it, and prints per-variant conversion or mean with confidence intervals, the
comparison with the control and the sample-ratio-mismatch check. ``cfgcore experiment
list`` lists the tests. The files are found as the manager finds them: ``--flags``,
else ``--state-dir``, else ``$CFGCORE_STATE_DIR``, else the XDG state directory.
"""

from __future__ import annotations

import json
import os
from typing import Any

from cfgcore.errors import ConfigError


def register(subparsers: Any) -> None:
    """Add the ``experiment`` command group."""
    p = subparsers.add_parser("experiment", help="A/B test reports (dynamic configuration)")
    sub = p.add_subparsers(dest="experiment_command", metavar="SUBCOMMAND")

    def common(sp: Any) -> None:
        sp.add_argument("--flags", help="dynamic-config flags file (default: state dir/flags.json)")
        sp.add_argument("--state-dir", help="state directory (default: $CFGCORE_STATE_DIR or XDG)")

    r = sub.add_parser("report", help="per-variant results of one A/B test")
    r.add_argument("name", help="A/B test name")
    common(r)
    r.add_argument("--metrics", help="metric events file (default: next to the flags file)")
    r.add_argument("--exposures", help="exposure log (default: next to the flags file)")
    r.add_argument("--confidence", type=float, default=0.95, help="interval level (0.95)")
    r.add_argument("--plot", metavar="OUT", help="draw metrics with CIs per variant (PNG/SVG/PDF)")
    r.add_argument("--json", action="store_true", help="print JSON instead of the table")
    r.add_argument(
        "--mde",
        type=float,
        help="also print the users per variant needed to detect this change from the control "
        "(absolute: 0.02 = 2 points of conversion; with --relative, 0.05 = +5 %%)",
    )
    r.add_argument("--relative", action="store_true", help="--mde is relative to the control")
    r.set_defaults(func=_report)

    ls = sub.add_parser("list", help="A/B tests in the flags file")
    common(ls)
    ls.set_defaults(func=_list)
    p.set_defaults(func=lambda _args: (p.print_help(), 2)[1])


def _flags_file(args: Any) -> str:
    from cfgcore.dynamic_config import resolve_flags_file

    path = resolve_flags_file(args.flags, args.state_dir)
    if not os.path.exists(path):
        raise ConfigError("no dynamic-config flags file (create a test first)", file=path)
    return path


def _report(args: Any) -> int:
    from cfgcore.dynamic_config import load_state, state_paths
    from cfgcore.experiments.analysis import analyze
    from cfgcore.experiments.metrics import MetricsStore

    if not 0 < args.confidence < 1:
        raise ConfigError(f"--confidence must be within (0, 1), got {args.confidence}")
    path = _flags_file(args)
    snap = load_state(path)
    meta = snap.experiments.get(args.name)
    if not isinstance(meta, dict):
        known = ", ".join(sorted(k for k, v in snap.experiments.items() if isinstance(v, dict)))
        raise ConfigError(
            f"experiments.{args.name}: unknown A/B test (known: {known or 'none'})", file=path
        )
    files = state_paths(path)
    store = MetricsStore.load(
        args.metrics or files["metrics"], args.exposures or files["exposures"]
    )
    report = analyze(args.name, meta, store, confidence=args.confidence)
    sizes = {}
    if args.mde is not None:
        if args.mde == 0:
            raise ConfigError("--mde must be non-zero")
        metrics = dict.fromkeys(r.metric for r in report.results)
        sizes = {m: report.sample_size(m, args.mde, relative=args.relative) for m in metrics}
    if args.json:
        data = report.to_dict()
        if sizes:
            data["sample_size_per_variant"] = sizes
        print(json.dumps(data, indent=2, default=str))
    else:
        print(report.to_text())
        if sizes:
            kind = "a relative" if args.relative else "an absolute"
            print(
                f"\nusers per variant to detect {kind} change of {args.mde:g} "
                "(alpha 0.05, power 0.8):"
            )
            for m, n in sizes.items():
                have = min((r.n for r in report.for_metric(m)), default=0)
                need = (
                    "n/a (no control data)" if n is None else f"{n} (smallest variant has {have})"
                )
                print(f"  {m}: {need}")
    if args.plot:
        out = report.plot(args.plot)
        if not args.json:
            print(f"\nplot written to {out}")
    return 0


def _list(args: Any) -> int:
    from cfgcore.dynamic_config import load_state

    snap = load_state(_flags_file(args))
    for name, meta in snap.experiments.items():
        if isinstance(meta, dict):
            weights = meta.get("traffic_split")
            weights = weights if isinstance(weights, dict) else {}
            split = ", ".join(f"{k} {_pct(v)}" for k, v in weights.items())
            status = meta.get("status", "active")
            window = f"{meta.get('start_date')} .. {meta.get('end_date')}"
            print(f"{name}  [{status}]  {split}  {window}")
    return 0


def _pct(value: Any) -> str:
    # a hand-edited file may hold anything here: show it, never crash on it
    return f"{value:g}%" if isinstance(value, int | float) else f"{value!r}"
