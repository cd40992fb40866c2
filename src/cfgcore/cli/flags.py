"""``cfgcore demo``: the embedded staging configuration, then the bundled music-streaming
flags evaluated and timed; ``cfgcore flags delete|stale``: the flag lifecycle.

Where the flags are (``--store``, ``--state-dir``) resolves as for the dynamic-config
manager: ``--store`` (a path or ``redis://`` URL), ``$CFGCORE_FLAG_STORE``, the
configuration directory's flags file, else ``<state dir>/flags.json``. The audit log
(``flags.audit.jsonl``) and the usage file (``flag-usage.json``) are in the state
directory (``--state-dir``, else ``$CFGCORE_STATE_DIR``, else
``$XDG_STATE_HOME/cfgcore``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from typing import Any

from cfgcore.cli import CommandError, UsageError, refuse_empty_paths

USERS = [
    {"user_id": "12345", "user_segment": "premium", "region": "EU"},
    {"user_id": "20001", "user_segment": "premium", "region": "US"},
    {"user_id": "30002", "user_segment": "family", "region": "EU"},
    {"user_id": "40003", "user_segment": "student", "region": "APAC"},
    {"user_id": "50004", "user_segment": "free", "region": "US"},
]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="evaluate the bundled example flags and time the hot path")
    p.add_argument(
        "--flags",
        metavar="FILE_OR_URL",
        help="flags to use instead of the bundled example: a flag file (YAML, JSON, "
        "MessagePack) or a store URL (file:///PATH, redis://...), as export --flags takes",
    )
    from cfgcore.cli.config import _positive_int  # (a count of at least 1)

    p.add_argument("--users", type=_positive_int, default=100_000, help="users for the split check")
    p.set_defaults(func=run_demo)
    _register_lifecycle(sub)


def _register_lifecycle(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "flags",
        help="flag lifecycle: delete a flag, find stale flags and experiments",
        description=__doc__.split("\n\n", 1)[1].replace("``", ""),
    )
    group = p.add_subparsers(dest="flags_command", metavar="SUBCOMMAND")

    def where(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--store", help="flag store: a path or redis:// URL")
        sp.add_argument("--state-dir", help="state directory (default: $CFGCORE_STATE_DIR)")

    d = group.add_parser(
        "delete",
        help="delete a flag (refused while flags or A/B tests depend on it)",
        description="Delete a flag from the store, audited and announced like any change. "
        "Refused, with the dependents listed and exit status 1, while another flag or an "
        "A/B test uses it.",
    )
    d.add_argument("name", help="the flag to delete")
    d.add_argument("--actor", help="who deletes it (default: your OS user@host; another "
                   "name needs the policy's actor.assume)")  # fmt: skip
    where(d)
    d.set_defaults(func=_delete)

    s = group.add_parser(
        "stale",
        help="flags not evaluated lately, fully rolled out or off, ended experiments",
        description="List flags not evaluated in the last N days, flags on or off for "
        "everyone and unchanged for N days, and A/B tests past their end date, each with "
        "its evidence and a suggested action. Exit status 0 unless an error.",
    )
    s.add_argument("--days", type=float, default=30.0, help="the window in days (default 30)")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.add_argument(
        "--audit",
        action="append",
        metavar="FILE",
        help="audit log to read the flag history from (repeat; default: the state "
        "directory's flags.audit.jsonl and the one beside a flags file)",
    )
    s.add_argument(
        "--usage", metavar="FILE", help="usage file (default: <state dir>/flag-usage.json)"
    )
    s.add_argument(
        "--as-of",
        metavar="ISO",
        help="judge as of this date-time (default: now); without an offset it is this "
        "machine's local time (the report shows the instant in UTC)",
    )
    where(s)
    s.set_defaults(func=_stale)
    p.set_defaults(func=lambda _args: (p.print_help(sys.stderr), 2)[1])


def _delete(args: argparse.Namespace) -> int:
    from cfgcore.engine import Engine
    from cfgcore.experiments.dynamic import DynamicConfigurationManager
    from cfgcore.experiments.features import FlagInUseError
    from cfgcore.runtime.policy import cli_actor

    refuse_empty_paths(args, "--store", "--state-dir")
    _refuse_missing_store(args.store)
    # An engine of its own gives a live set of its own, whose store (and, for Redis,
    # follower thread) is closed afterwards without touching anything else in-process.
    manager = DynamicConfigurationManager(
        store=args.store, state_dir=args.state_dir, log_exposures=False, record_usage=False,
        engine=Engine(),
    )  # fmt: skip
    try:
        actor = cli_actor(args.actor, manager.audit)  # --actor: judged, never just claimed
        deleted = manager.delete_feature_flag(args.name, actor=actor)
        doc = manager.store.read()
        version = doc.version
    except FlagInUseError as exc:
        raise CommandError(
            f"{manager.flags_file}: cannot delete flag {args.name}: still used by",
            *(f"  {d}" for d in exc.dependents),
        ) from None
    finally:
        manager.close()
        manager.store.close()
    if not deleted:
        from cfgcore.config.tree import did_you_mean

        hint = did_you_mean(args.name, list(doc.snapshot.flags))
        raise CommandError(f"{args.name}: no such flag in {manager.flags_file}{hint}")
    if not getattr(args, "quiet", 0):
        print(f"deleted flag {args.name} from {manager.flags_file} (version {version})",
              file=sys.stderr)  # fmt: skip
    return 0


def _refuse_missing_store(store: str | None) -> None:
    """A ``--store`` path naming no file is a mistake (a typo, the wrong directory):
    refused, naming it. The store would serve the bundled demo flags in its place, so
    ``flags delete`` wrote a new file of them there and said "deleted", and ``flags
    stale`` judged them, while the real store stayed as it was. Without ``--store``,
    a store not written yet serves the bundled flags, as the services do."""
    import os

    from cfgcore.errors import ConfigError

    if store is not None and "://" not in store and not os.path.lexists(store):
        raise ConfigError(
            "flag file does not exist (check --store: nothing was read or written)",
            file=os.path.abspath(store),
        )


def _as_of(raw: str | None) -> float:
    if raw is None:
        return time.time()
    from cfgcore.cli.experiment import parse_time

    # Local time without an offset, as every date the command line and the Python API
    # take (cfgcore.experiments.abtest); the report's header shows the instant in UTC.
    return parse_time(raw, "--as-of", datetime.now(timezone.utc)).timestamp()


def _stale(args: argparse.Namespace) -> int:
    from cfgcore.experiments.dynamic import store_location
    from cfgcore.experiments.history import FlagHistory
    from cfgcore.experiments.stale import MAX_DAYS, Evidence, document_time, find_stale
    from cfgcore.runtime.flagstore import bundled_seed, open_store
    from cfgcore.runtime.usage import read_usage, usage_path

    refuse_empty_paths(args, "--store", "--state-dir", "--audit", "--usage")
    if not 0 < args.days <= MAX_DAYS:
        raise UsageError(
            f"--days: must be a positive number of days up to {MAX_DAYS:,}, got {args.days:.15g}"
        )
    now = _as_of(args.as_of)
    # A file named on purpose that is not there (a typo, another host's path) is an
    # error, as `experiment report --metrics` makes it: read as "nothing recorded", an
    # audit log gave the report no history and a usage file no usage, exit status 0.
    for option, given in [*(("--audit", a) for a in args.audit or ()), ("--usage", args.usage)]:
        rotated = f"{given}.1" if option == "--audit" else None
        if given and not (os.path.lexists(given) or (rotated and os.path.lexists(rotated))):
            raise CommandError(f"{option} {given}: no such file")
    _refuse_missing_store(args.store)
    url, paths = store_location(state_dir=args.state_dir, store=args.store)
    store = open_store(url, seed=bundled_seed())
    try:
        doc = store.read()
    finally:
        store.close()
    audits = args.audit or _default_audits(paths["audit"], getattr(store, "path", None))
    usage_file = args.usage or usage_path(args.state_dir)
    evidence = Evidence(
        read_usage(usage_file, state=not args.usage),
        FlagHistory.from_logs(audits),
        document_time(doc),
        usage_file,
    )
    report = find_stale(doc.snapshot, evidence, days=args.days, now=now,
                        store=getattr(store, "path", store.url))  # fmt: skip
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        print(report.render())
    return 0


def _default_audits(state_audit: str, flags_path: str | None) -> list[str]:
    from cfgcore.experiments.dynamic import state_paths

    found = [state_audit]
    if flags_path is not None:
        beside = state_paths(flags_path)["audit"]
        if beside != state_audit:
            found.append(beside)
    return found


def _per_call_ns(fn, *args, n: int = 200_000) -> float:
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(n):
            fn(*args)
        best = min(best, time.perf_counter() - t0)
    return best / n * 1e9


_ENVIRONMENT_SELECTORS = ("CONFIG_ENVIRONMENT", "CFGCORE_ENVIRONMENT")


def _config_demo() -> None:
    """The configuration side: the embedded staging set, layered, validated, explained.

    The embedded set whatever the working directory holds, as the flags side runs on the
    bundled catalog: a project's ``./config`` (``cfgcore setup`` writes development only)
    or ``$CFGCORE_CONFIG_DIR`` has no staging file or none of the music-streaming keys
    shown, and the demo of the defaults failed there. Its environment is staging and its
    profiles none (``CONFIG_ENVIRONMENT`` and ``CONFIG_PROFILE`` name the project's; a
    manager given ``environ=`` reads no ``.env`` file either), and, as the other
    inspecting commands, it writes no audit entry and records no flag usage (a usage file
    started by the demo would have a later ``cfgcore flags stale`` judge every flag
    unused).
    """
    from cfgcore.config.manager import EMBEDDED, ConfigurationManager, default_config_dir
    from cfgcore.validation_engine import get_config_validator

    # The process's environment but the selectors of the project's environment: in a
    # production shell the state directory's flags would be refused (no demo catalog in
    # production) while the demo loads staging.
    environ = {k: v for k, v in os.environ.items() if k not in _ENVIRONMENT_SELECTORS}
    manager = ConfigurationManager(
        default_config_dir(),
        environment="staging",
        profile="none",
        geographic_profile="none",
        environ=environ,
        record_usage=False,
    )
    manager.disable_audit()
    try:
        t0 = time.perf_counter()
        config = manager.load_environment_config("staging")
        load_ms = (time.perf_counter() - t0) * 1e3
        audio = config["music_streaming"]["audio_quality"]
        print(
            f"staging configuration from {manager.config_dir} ({EMBEDDED}) "
            f"loaded, validated and active in {load_ms:.1f} ms"
        )
        codecs = ", ".join(audio["codecs"])
        print(f"  premium bitrate {audio['premium_bitrate']} kbps, codecs {codecs}")
        print(f"  kafka {', '.join(manager.get('data_sources.kafka_cluster.bootstrap_servers'))}")
        validator = get_config_validator()
        report = validator.validate_config(config, "staging_config")
        print("  " + validator.get_validation_summary(report))
        explained = str(manager.explain("music_streaming.audio_quality.bitrates.premium"))
        print("  " + explained.replace("\n", "\n  "))
        print()
    finally:
        manager.close()


DEMO_ROWS = 20  # flags shown in the demo's table (a --flags file may hold thousands)


def _demo_table(engine: Any, keys: Sequence[str]) -> None:
    """One row per flag, named in full, and one column per demo user: whether a boolean
    flag is on for them, else the variant they get. (Flags as columns cut their names to
    the column's width, and left all but the first few out.)"""
    from cfgcore.errors import printable_name

    names = [printable_name(k) for k in keys[:DEMO_ROWS]]
    width = max([len("flag"), *(len(n) for n in names)])
    ctxs = [engine.context(attrs) for attrs in USERS]

    def row(first: str, cells: Iterable[str]) -> str:
        return f"{first:<{width}}" + "".join(f" {cell[:12]:>12}" for cell in cells)

    print(row("flag", (f"{u['user_segment']}/{u['region']}" for u in USERS)))
    print(row("", (f"#{u['user_id']}" for u in USERS)))
    for key, name in zip(keys[:DEMO_ROWS], names, strict=True):
        cells = []
        for ctx in ctxs:
            d = engine.evaluate(key, ctx)
            cells.append(str(d.value) if isinstance(d.value, bool) else str(d.variant))
        print(row(name, cells))
    if len(keys) > DEMO_ROWS:
        print(f"... and {len(keys) - DEMO_ROWS:,} more flags")


def _demo_engine(flags: str) -> Any:
    """An engine serving the flags ``--flags`` names: a path or store URL, read as
    ``cfgcore export --flags`` reads it (never the bundled flags in place of a file that
    does not exist); a file's problems name their lines."""
    from cfgcore.engine import Engine
    from cfgcore.errors import printable_name
    from cfgcore.experiments.dynamic import store_location
    from cfgcore.runtime.flagstore import FileFlagStore, open_store
    from cfgcore.snapshot import problem_lines

    store = open_store(store_location(store=flags)[0])
    try:
        if isinstance(store, FileFlagStore):
            if not os.path.lexists(store.path):
                raise CommandError(
                    f"{printable_name(store.path)}: no such flag file (--flags takes a flag "
                    "file or a store URL: file:///PATH, redis://...)"
                )
            data, origin = store.read_bytes()
            with problem_lines(data, store.format_of(origin), origin):
                return Engine.from_snapshot(store.document(data, origin).snapshot, file=origin)
        document = store.read()
        return Engine.from_snapshot(document.snapshot, file=document.origin or store.url)
    finally:
        store.close()


def run_demo(args: argparse.Namespace) -> int:
    from cfgcore.engine import Engine

    if not args.flags:
        _config_demo()

    engine = _demo_engine(args.flags) if args.flags else Engine.bundled()
    keys = engine.snapshot().keys
    print(f"cfgcore demo: {len(keys)} flags, evaluator={engine.implementation}")
    print()
    _demo_table(engine, keys)
    print()
    if "recommendation_algorithm_v2" in keys:
        counts = Counter(
            engine.variant("recommendation_algorithm_v2", {"user_id": str(i)})
            for i in range(args.users)
        )
        shares = ", ".join(
            f"{name} {100 * c / args.users:.2f}%" for name, c in sorted(counts.items())
        )
        print(f"recommendation_algorithm_v2 over {args.users:,} users: {shares}")
        d = engine.evaluate("recommendation_algorithm_v2", USERS[0])
        print(f"user 12345 -> {d.variant} {dict(d.value)} ({d.reason})")
        print()
    ctx = engine.context(USERS[0])
    first = keys[0]
    # The pure-Python evaluator (an install without a compiler) is ~30x slower: fewer
    # calls keep the demo a few seconds long there too.
    n = 200_000 if engine.implementation == "c" else 10_000
    print(f"hot path, per call (best of 5 x {n:,}):")
    rows: list[tuple[str, tuple[Any, ...]]] = [
        (f"is_enabled({first!r}, bound context)", (engine.is_enabled, first, ctx)),
        (f"is_enabled({first!r}, plain dict)", (engine.is_enabled, first, USERS[0])),
    ]
    if "recommendation_algorithm_v2" in keys:
        rows.append(
            ("variant('recommendation_algorithm_v2')",
             (engine.variant, "recommendation_algorithm_v2", ctx))
        )  # fmt: skip
    width = max(len(label) for label, _ in rows)  # one column of figures, whatever the flag
    for label, (fn, *call) in rows:
        print(f"  {label:<{width}}  {_per_call_ns(fn, *call, n=n):7.0f} ns")
    return 0
