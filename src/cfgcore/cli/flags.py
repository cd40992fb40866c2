"""``cfgcore demo``: the embedded staging configuration, then the bundled music-streaming
flags evaluated and timed."""

from __future__ import annotations

import argparse
import time
from collections import Counter

USERS = [
    {"user_id": "12345", "user_segment": "premium", "region": "EU"},
    {"user_id": "20001", "user_segment": "premium", "region": "US"},
    {"user_id": "30002", "user_segment": "family", "region": "EU"},
    {"user_id": "40003", "user_segment": "student", "region": "APAC"},
    {"user_id": "50004", "user_segment": "free", "region": "US"},
]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="evaluate the bundled example flags and time the hot path")
    p.add_argument("--flags", help="a flag file to use instead of the bundled example")
    p.add_argument("--users", type=int, default=100_000, help="users for the split check")
    p.set_defaults(func=run_demo)


def _per_call_ns(fn, *args, n: int = 200_000) -> float:
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(n):
            fn(*args)
        best = min(best, time.perf_counter() - t0)
    return best / n * 1e9


def _config_demo() -> None:
    """The configuration side: the embedded staging set, layered, validated, explained."""
    from cfgcore import get_config_manager
    from cfgcore.validation_engine import get_config_validator

    manager = get_config_manager()
    t0 = time.perf_counter()
    config = manager.load_environment_config("staging")
    load_ms = (time.perf_counter() - t0) * 1e3
    audio = config["music_streaming"]["audio_quality"]
    print(
        f"staging configuration from {manager.config_dir} ({manager.config_dir_source}) "
        f"loaded, validated and active in {load_ms:.1f} ms"
    )
    print(f"  premium bitrate {audio['premium_bitrate']} kbps, codecs {', '.join(audio['codecs'])}")
    print(f"  kafka {', '.join(manager.get('data_sources.kafka_cluster.bootstrap_servers'))}")
    validator = get_config_validator()
    print(
        "  " + validator.get_validation_summary(validator.validate_config(config, "staging_config"))
    )
    print(
        "  "
        + str(manager.explain("music_streaming.audio_quality.bitrates.premium")).replace(
            "\n", "\n  "
        )
    )
    print()


def run_demo(args: argparse.Namespace) -> int:
    from cfgcore.engine import Engine

    if not args.flags:
        _config_demo()

    engine = Engine.from_file(args.flags) if args.flags else Engine.bundled()
    keys = engine.snapshot().keys
    print(f"cfgcore demo: {len(keys)} flags, evaluator={engine.implementation}")
    print()
    header = f"{'user':<34} " + " ".join(f"{k[:12]:>12}" for k in keys[:6])
    print(header)
    for attrs in USERS:
        ctx = engine.context(attrs)
        row = " ".join(f"{str(engine.is_enabled(k, ctx)):>12}" for k in keys[:6])
        who = f"{attrs['user_segment']}/{attrs['region']} #{attrs['user_id']}"
        print(f"{who:<34} {row}")
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
    print("hot path, per call (best of 5 x 200,000):")
    print(
        f"  is_enabled({first!r}, bound context)  "
        f"{_per_call_ns(engine.is_enabled, first, ctx):7.0f} ns"
    )
    print(
        f"  is_enabled({first!r}, plain dict)     "
        f"{_per_call_ns(engine.is_enabled, first, USERS[0]):7.0f} ns"
    )
    if "recommendation_algorithm_v2" in keys:
        ns = _per_call_ns(engine.variant, "recommendation_algorithm_v2", ctx)
        print(f"  variant('recommendation_algorithm_v2')       {ns:7.0f} ns")
    return 0
