"""A fleet member in its own process, driven by the tests in test_fleet_processes.py.

    python tests/fleet_proc.py follow URL        # stdin: "status" | "wait VERSION SECONDS" |
    #                                              "waiterr ERRORS SECONDS" | "quit"
    python tests/fleet_proc.py write URL I N     # N updates, each adding flag wI_J
    python tests/fleet_proc.py repair URL NAME   # replace the document, even a corrupt one

A follower serves flags from an Engine fed by the store: read at start, then every
document the store delivers, compiled to the side and swapped (never an older version).
Every answer is one JSON line on stdout.
"""

from __future__ import annotations

import json
import sys
import threading
import time

import msgspec

from cfgcore.engine import Engine
from cfgcore.errors import ConfigError
from cfgcore.runtime.redis_store import RedisFlagStore
from cfgcore.snapshot import Flag, Snapshot


class Follower:
    def __init__(self, url: str) -> None:
        self.store = RedisFlagStore(url)
        self.lock = threading.Lock()
        self.engine = Engine()
        self.errors = 0
        try:
            doc = self.store.read()
        except ConfigError as exc:
            print(json.dumps({"start_error": str(exc)}), flush=True)
            doc = None
        self.version = 0
        self.checksum = ""
        self.origin = ""
        if doc is not None:
            self.apply(doc)
        self.store.watch(self.apply, on_error=self.on_error)

    def apply(self, doc) -> None:
        compiled = self.engine.compile(doc.snapshot, file=doc.origin)  # ConfigError: rejected
        with self.lock:
            if doc.version <= self.version and self.version:
                return
            self.engine.swap(compiled)
            self.version, self.checksum, self.origin = doc.version, doc.checksum, doc.origin

    def on_error(self, exc: Exception) -> None:
        self.errors += 1

    def status(self) -> dict:
        source = self.engine.source
        names = sorted(source.flags) if source is not None else []
        return {
            "version": self.version,
            "checksum": self.checksum,
            "origin": self.origin,
            "flags": names,
            # the hot path answers whether or not Redis is there
            "probe": self.engine.is_enabled("probe", {"user_id": "u1"}),
            "errors": self.errors,
            "stats": self.store.stats,
            "connected": self.store.connected,
        }


def follow(url: str) -> None:
    f = Follower(url)
    print(json.dumps({"ready": True, **f.status()}), flush=True)
    for line in sys.stdin:
        cmd = line.split()
        if not cmd or cmd[0] == "quit":
            break
        if cmd[0] in ("wait", "waiterr"):
            target, deadline = int(cmd[1]), time.monotonic() + float(cmd[2])
            attr = "version" if cmd[0] == "wait" else "errors"
            while getattr(f, attr) < target and time.monotonic() < deadline:
                time.sleep(0.005)
        print(json.dumps(f.status()), flush=True)
    f.store.close()


def write(url: str, index: int, count: int) -> None:
    store = RedisFlagStore(url)
    for j in range(count):
        name = f"w{index}_{j}"
        store.update(
            lambda s, name=name: msgspec.structs.replace(s, flags={**s.flags, name: Flag()}),
            check=Engine().compile,
            actor=f"writer-{index}",
        )
    print(json.dumps({"done": index, "stats": store.stats}), flush=True)
    store.close()


def repair(url: str, name: str) -> None:
    """Replace whatever is stored (even a corrupt document) with one flag ``name``."""
    store = RedisFlagStore(url)
    old, new = store.update(
        lambda _: Snapshot(flags={name: Flag()}), check=Engine().compile, force=True
    )
    print(json.dumps({"done": new.version}), flush=True)
    store.close()


if __name__ == "__main__":
    if sys.argv[1] == "follow":
        follow(sys.argv[2])
    elif sys.argv[1] == "repair":
        repair(sys.argv[2], sys.argv[3])
    else:
        write(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
