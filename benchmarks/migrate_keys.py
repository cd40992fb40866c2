"""``cfgcore migrate`` on a large legacy file: wall time per run and per key, median of
``--runs`` runs (5 by default), each into a new directory, in-process (the command's
``main``; the interpreter's start and imports are not counted), with the process's
CPU time (``time.process_time``), which moves less with the machine's load.

The legacy file is a Java ``.properties`` file of ``--keys`` keys (20,000 by default)
written in a temporary directory: nested dotted keys, most of them unknown to the
schema (kept with ``--keep-unmapped``), one in ten a schema section's key
(``music_streaming.premium_bitrate17``) and one in ten the bundled ``server``
section's. ``--sections`` writes the keys in pairs where the later key's path holds
the earlier one's (``log4j.logger.com.acme.mod17.sub`` then
``log4j.logger.com.acme.mod17``): a value and a section on one path, as logging
configurations write them. ``--ini-continued N`` times reading an INI file whose one
value is continued over N lines instead. Each run checks what it wrote: the
configuration and its report are there, and the report names the configuration's
SHA-256. Run with the tree to measure on ``PYTHONPATH``::

    PYTHONPATH=src python benchmarks/migrate_keys.py [--keys 20000] [--sections]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import os
import statistics
import tempfile
import time


def _legacy(path: str, keys: int, sections: bool) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(keys // 2 if sections else keys):
            if sections:
                fh.write(f"log4j.logger.com.acme.mod{i}.sub = INFO\n")
                fh.write(f"log4j.logger.com.acme.mod{i} = DEBUG\n")
            elif i % 10 == 0:
                fh.write(f"music_streaming.premium_bitrate{i} = {i}\n")
            elif i % 10 == 1:
                fh.write(f"server.port{i} = {i}\n")
            else:
                fh.write(f"svc{i % 97}.group{i % 13}.item{i}.value = v{i}\n")


def _migrate(source: str, out: str) -> tuple[float, float]:
    from cfgcore.cli import main

    start, start_cpu = time.perf_counter(), time.process_time()
    with contextlib.redirect_stdout(io.StringIO()):
        code = main(["migrate", source, "--out", out, "--keep-unmapped", "-q"])
    spent = time.perf_counter() - start, time.process_time() - start_cpu
    assert code in (0, 1), code  # (1: the unknown keys do not validate)
    with open(os.path.join(out, "base.yaml"), "rb") as fh:
        written = fh.read()
    with open(os.path.join(out, "migration-report.json"), encoding="utf-8") as fh:
        report = json.load(fh)
    assert report["config_sha256"] == hashlib.sha256(written).hexdigest()
    return spent


def _ini(path: str, lines: int) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("[app]\nnames = first\n")
        fh.writelines(f"  continued_value_line_{i}\n" for i in range(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keys", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--sections", action="store_true")
    parser.add_argument("--ini-continued", type=int, metavar="N")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.ini_continued:
            from cfgcore.config.legacy_formats import read_legacy

            source = os.path.join(tmp, "legacy.ini")
            _ini(source, args.ini_continued)
            spent = []
            for _ in range(args.runs):
                start = time.perf_counter()
                (entry,) = read_legacy(source)
                spent.append(time.perf_counter() - start)
                assert entry.value.count("\n") == args.ini_continued
            print(f"INI value continued over {args.ini_continued:,} lines: read in "
                  f"{statistics.median(spent) * 1000:.1f} ms (median of {args.runs})")  # fmt: skip
            return
        source = os.path.join(tmp, "legacy.properties")
        _legacy(source, args.keys, args.sections)
        _migrate(source, os.path.join(tmp, "warm"))  # (the schema's tables, imports)
        runs = [_migrate(source, os.path.join(tmp, f"out{i}")) for i in range(args.runs)]
    wall = statistics.median(w for w, _ in runs)
    cpu = statistics.median(c for _, c in runs)
    shape = "value-and-section pairs" if args.sections else "nested dotted keys"
    print(f"{args.keys:,} keys ({shape}), median of {args.runs} runs: wall {wall:.2f} s "
          f"({wall * 1000 / args.keys:.3f} ms per key), CPU {cpu:.2f} s "
          f"({cpu * 1000 / args.keys:.3f} ms per key)")  # fmt: skip


if __name__ == "__main__":
    main()
