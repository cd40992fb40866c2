"""Flag writes beside CPU-bound threads: ``set_feature_flag`` on a manager with the
file flag store, alone and with two threads spinning pure-Python loops in the same
process. Medians, p90 and max of ``--writes`` writes (50 by default), in ms.

A system call releases the GIL and takes it back after; beside a thread that never
blocks, each take-back may wait up to ``sys.getswitchinterval()`` (5 ms). So what a
write costs there is roughly its number of GIL hand-overs times that interval, not its
own work. Each run checks what it timed: the last rollout written is served and in the
file read back from disk, and no temporary file is left. Run with the tree to measure on
``PYTHONPATH``::

    PYTHONPATH=src python benchmarks/flag_write_gil.py [--writes 50] [--spinners 2]

``--flags N`` pads the bundled catalog to N flags (on, off, a 25 % rollout, a segment
rule, in turn); ``--format json`` writes it as JSON; ``--redis`` serves it from a Redis
store instead (a ``redis-server`` started for the run: tests/redis_server.py). The
"alone" line also gives the writing thread's CPU time per write (``time.thread_time``:
its Python work plus the kernel time of its own system calls, not the waits), and that
of a process's first write: a manager opened afresh on the file another one wrote (a
YAML file store takes the flags' texts back from the file its sidecar describes; the
file ``--flags`` pads has no sidecar, so the first manager's first write emits every
flag).

``--python-steps`` makes ``atomic_write`` take its Python steps where the compiled
ones (``cfgcore._atomic``) are built: what the C call buys, in one tree.

``--strace`` prints nothing timed: it makes ``--writes`` writes alone, for
``strace -f -c`` (or ``strace -f -e trace=%file,%desc``) to count what one write does.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from typing import Any


def _spin(stop: threading.Event) -> None:
    n = 0
    while not stop.is_set():
        for i in range(10_000):  # pure Python: holds the GIL until asked to drop it
            n += i


def _figures(spent: list[float]) -> str:
    ms = sorted(s * 1000 for s in spent)
    p90 = ms[min(len(ms) - 1, int(round(0.9 * (len(ms) - 1))))]
    return f"median {statistics.median(ms):7.2f}  p90 {p90:7.2f}  max {ms[-1]:7.2f} ms"


def _writes(manager, count: int, cpu: list[float] | None = None) -> list[float]:
    from cfgcore.dynamic_config import FeatureFlag

    spent = []
    for i in range(count):
        start, start_cpu = time.perf_counter(), time.thread_time()
        manager.set_feature_flag(FeatureFlag.EXPERIMENTAL_ML_MODELS, True, 10.0 + i % 2)
        spent.append(time.perf_counter() - start)
        if cpu is not None:
            cpu.append(time.thread_time() - start_cpu)
    _check(manager, 10.0 + (count - 1) % 2)
    return spent


def _check(manager, rollout: float) -> None:
    """What was timed did its work: the last rollout is served and in the file (read
    back from disk), and no temporary file was left beside it."""
    import yaml

    key = "experimental_ml_models"
    served = manager.get_feature_flags_status()[key]
    if manager.flags_file.startswith("redis://"):  # stored: what the store reads back
        stored = manager._live.store.read().snapshot.flags[key].rules
        on_disk, left = [rule.rollout for rule in stored], []
    else:
        with open(manager.flags_file, encoding="utf-8") as f:
            rules = yaml.safe_load(f)["flags"][key]["rules"]
        on_disk = [rule.get("rollout") for rule in rules]
        directory = os.path.dirname(manager.flags_file)
        left = [n for n in os.listdir(directory) if n.endswith(".tmp")]
    if served["rollout_percentage"] != rollout or rollout not in on_disk or left:
        raise SystemExit(
            f"the writes did not do their work: served {served}, rollouts in "
            f"{manager.flags_file}: {on_disk}, temporary files left: {left} "
            f"(expected rollout {rollout})"
        )


def _catalog(path: str, flags: int, fmt: str) -> None:
    """The bundled catalog padded to ``flags`` flags, written to ``path`` as ``fmt``."""
    import msgspec

    from cfgcore.engine import bundled_flags_path
    from cfgcore.snapshot import Condition, Flag, Rule, encode_snapshot, load_snapshot

    bundled = load_snapshot(bundled_flags_path())
    table = dict(bundled.flags)
    kinds = [
        Flag(default="on"),
        Flag(default="off"),
        Flag(default="off", rules=[Rule(serve="on", rollout=25)]),
        Flag(default="off", rules=[Rule(when=Condition(segment="premium"), serve="on")]),
    ]
    for i in range(flags - len(table)):
        table[f"flag_{i:04d}"] = kinds[i % len(kinds)]
    with open(path, "wb") as fh:
        fh.write(encode_snapshot(msgspec.structs.replace(bundled, flags=table), fmt))  # type: ignore[arg-type]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--writes", type=int, default=50)
    ap.add_argument("--spinners", type=int, default=2)
    ap.add_argument("--strace", action="store_true", help="writes alone, untimed")
    ap.add_argument("--python-steps", action="store_true", help="atomic_write in Python")
    ap.add_argument("--flags", type=int, default=0, help="pad the catalog to N flags")
    ap.add_argument("--format", choices=("yaml", "json"), default="yaml")
    ap.add_argument("--redis", action="store_true", help="a Redis store, not a file")
    args = ap.parse_args()
    if args.python_steps:
        from cfgcore.runtime import atomicio

        atomicio._native = None  # type: ignore[attr-defined]

    directory = tempfile.mkdtemp(prefix="cfgcore-gilwrite-")
    os.environ["CFGCORE_STATE_DIR"] = os.path.join(directory, "state")
    from cfgcore.engine import bundled_flags_path

    flags = os.path.join(directory, f"flags.{args.format}")
    if args.flags or args.format != "yaml":
        _catalog(flags, args.flags, args.format)
    else:
        shutil.copyfile(bundled_flags_path(), flags)
    server = None
    try:
        if args.redis:
            server = _redis(directory, flags)
        _measure(args, {"store": server.url} if server else {"flags_file": flags})
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(directory, ignore_errors=True)


def _redis(directory: str, flags: str) -> Any:
    """A redis-server started for the run (tests/redis_server.py), holding the document
    of the file ``flags``."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    from tests.redis_server import RedisServer

    from cfgcore.runtime.flagstore import open_store
    from cfgcore.snapshot import load_snapshot

    server = RedisServer(os.path.join(directory, "redis")).start()
    try:
        store = open_store(server.url)
        document = load_snapshot(flags)
        store.update(lambda _old: document)
        store.close()
    except BaseException:
        server.stop()
        raise
    return server


def _measure(args: argparse.Namespace, where: dict[str, str]) -> None:
    """The writes timed, on a manager opened as ``where`` says."""
    from cfgcore.dynamic_config import DynamicConfigurationManager

    manager = DynamicConfigurationManager(**where, log_exposures=False)  # type: ignore[arg-type]
    _writes(manager, 1)  # the first write creates the lock, sidecar and logs
    manager.close()
    manager = DynamicConfigurationManager(**where, log_exposures=False)  # type: ignore[arg-type]
    try:
        first_cpu: list[float] = []
        _writes(manager, 1, first_cpu)  # a new store's first write
        first = first_cpu[0] * 1000
        _writes(manager, 2)  # warm
        if args.strace:
            sys.stderr.write(f"--- {args.writes} writes from here ---\n")
            _writes(manager, args.writes)
            return
        from cfgcore.runtime import atomicio

        native = getattr(atomicio, "_native", None) is not None
        route = "C (GIL released)" if native else "Python"
        print(f"CPython {sys.version.split()[0]}, switch interval "
              f"{sys.getswitchinterval() * 1000:g} ms, atomic write: {route}")  # fmt: skip
        cpu: list[float] = []
        alone = _figures(_writes(manager, args.writes, cpu))
        kind = "redis" if args.redis else args.format
        print(f"{len(manager.snapshot.flags)} flags ({kind}), CPU per write alone: "
              f"median {statistics.median(cpu) * 1000:.2f} ms; a process's first write "
              f"{first:.2f} ms")  # fmt: skip
        print(f"alone:           {alone}")
        stop = threading.Event()
        threads = [threading.Thread(target=_spin, args=(stop,)) for _ in range(args.spinners)]
        for t in threads:
            t.start()
        try:
            time.sleep(0.2)
            spent = _writes(manager, args.writes)
        finally:
            stop.set()
            for t in threads:
                t.join()
        print(f"{args.spinners} CPU threads:   {_figures(spent)}")
    finally:
        manager.close()


if __name__ == "__main__":
    main()
