"""A fleet member in its own process, driven by tests/test_fleet_processes.py.

    python tests/fleet_proc.py follow URL       # stdin: "status" | "wait VERSION SECONDS" |
                                                #   "waiterr ERRORS SECONDS" | "quit"
    python tests/fleet_proc.py write URL I N [exit]  # N x set_feature_flag("wI_J", True)
                                                    # (exit: os._exit at once, no close())
    python tests/fleet_proc.py repair URL NAME  # replace the document, even a corrupt one
                                                # (a bare store's forced write, no follower)

Members use the public API: ``DynamicConfigurationManager(store=URL)`` (URL: a Redis
URL or a flags file). A follower answers each command with one JSON line: the store
version it serves, the flags its hot path reports on, the error events its listener saw.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time

from cfgcore.dynamic_config import DynamicConfigurationManager
from cfgcore.engine import Engine
from cfgcore.runtime.redis_store import RedisFlagStore
from cfgcore.snapshot import Flag, Snapshot

USER = {"user_id": "u1"}


class Follower:
    def __init__(self, url: str) -> None:
        self.manager = DynamicConfigurationManager(store=url, log_exposures=False)
        self.lock = threading.Lock()
        self.errors = 0
        self.last_change: dict = {}
        self.manager.register_change_listener(self.on_event)

    def on_event(self, event) -> None:
        with self.lock:
            if event.is_error:
                self.errors += 1
            elif event.config_path.startswith("flags."):
                writer = event.writer or {}
                self.last_change = {
                    "source": event.source,
                    "store_version": event.store_version,
                    "actor": writer.get("actor"),
                    "pid": writer.get("pid"),
                }

    @property
    def version(self) -> int:
        doc = self.manager._live.document
        return doc.version if doc is not None else -1

    def status(self) -> dict:
        doc = self.manager._live.document
        store = self.manager.store
        names = [k for k in self.manager.snapshot.flags if k[:1] == "w" or k == "repaired"]
        return {
            "version": self.version,
            "checksum": doc.checksum if doc else "",
            "origin": doc.origin if doc else "",
            "flags": sorted(names),
            # the hot path answers whether or not Redis is reachable
            "enabled": sorted(n for n in names if self.manager.is_feature_enabled(n, USER)),
            "errors": self.errors,
            "last_change": self.last_change,
            "stats": getattr(store, "stats", {}),
            "connected": getattr(store, "connected", None),
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
    f.manager.close()


def write(url: str, index: int, count: int, hard_exit: bool = False) -> None:
    manager = DynamicConfigurationManager(store=url, log_exposures=False)
    for j in range(count):
        manager.set_feature_flag(f"w{index}_{j}", True)
    print(json.dumps({"done": index, "stats": getattr(manager.store, "stats", {})}), flush=True)
    if hard_exit:
        # A short-lived writer (a deploy script) gone the moment its write returned: no
        # close(), no exit hooks, its follower given no time to hear of the write. What
        # its next start knows is what the write itself left in its cache file.
        os._exit(0)
    manager.close()


def repair(url: str, name: str) -> None:
    """Replace whatever is stored (even a corrupt document) with one flag ``name``."""
    store = RedisFlagStore(url)
    _, new = store.update(
        lambda _: Snapshot(flags={name: Flag(default="on")}), check=Engine().compile, force=True
    )
    print(json.dumps({"done": new.version}), flush=True)
    store.close()


if __name__ == "__main__":
    if sys.argv[1] == "follow":
        follow(sys.argv[2])
    elif sys.argv[1] == "repair":
        repair(sys.argv[2], sys.argv[3])
    else:
        write(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5:] == ["exit"])
