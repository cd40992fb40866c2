"""The host's shared cache file never goes back a version, even when processes write it
at the same moment.

Each process checked the file's version and then replaced the file (temp file, fsync,
rename): two processes checking at once both found it older than their document, and
the slower rename put the older version back over the newer one (a process started
while Redis is unreachable then served it). The check and the replace now happen under
an flock on a lock file beside the cache. Real processes, real files, the stores of a
real redis-server's URL; each writer's write is its follower's own call."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import msgspec

import cfgcore
from cfgcore.runtime.atomicio import FileLock
from cfgcore.runtime.redis_store import RedisFlagStore

SRC = os.path.dirname(os.path.dirname(os.path.abspath(cfgcore.__file__)))
WRITERS = 4
VERSIONS = 120

# Writer I of K caches versions I+1, I+1+K, ... in order: processes that lag one another
# by a version, as the followers of a host do when a burst of changes comes in.
_WRITER = """
import hashlib, sys
from cfgcore.runtime.flagstore import FlagDocument
from cfgcore.runtime.redis_store import RedisFlagStore
from cfgcore.snapshot import Snapshot, encode_snapshot
url, index, writers, last = sys.argv[1], *map(int, sys.argv[2:5])
store = RedisFlagStore(url)
data = encode_snapshot(Snapshot(), "msgpack")
for version in range(index + 1, last + 1, writers):
    store._write_cache(FlagDocument(Snapshot(), data, version,
                       hashlib.sha256(data).hexdigest(), {}, url, "ab" * 16, False))
    assert store._cache_failed is None, store._cache_failed
store.close()
"""


def _version(path: str) -> int | None:
    try:
        with open(path, "rb") as fh:
            return msgspec.msgpack.decode(fh.read())["version"]
    except FileNotFoundError:
        return None


def test_concurrent_writers_never_put_an_older_version_back(redis_server, tmp_path):
    cache = str(tmp_path / "host.msgpack")
    url = f"{redis_server.url}?namespace=host&cache={cache}"
    regressions: list[tuple[int, int]] = []
    stop = threading.Event()

    def watch() -> None:
        highest = 0
        while not stop.is_set():
            version = _version(cache)  # (each read is one whole file: atomic renames)
            if version is None:
                continue
            if version < highest:
                regressions.append((highest, version))
            highest = max(highest, version)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, url, str(i), str(WRITERS), str(VERSIONS)],
            env=dict(os.environ, PYTHONPATH=SRC),
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for i in range(WRITERS)
    ]
    try:
        errors = [p.communicate(timeout=240)[1] for p in procs]
    finally:
        stop.set()
        watcher.join(10)
    assert all(p.returncode == 0 for p in procs), errors
    assert _version(cache) == VERSIONS
    assert not regressions, f"the cache file went back {len(regressions)} times"


def test_a_lock_held_too_long_skips_the_write_and_retries_it_later(redis_server, tmp_path):
    """Anyone who can open the lock file can hold it: the follower waits a bounded time,
    then counts the write as failed (retried with the next version or later), instead of
    hanging the follower thread."""
    from cfgcore.runtime import redis_store

    cache = tmp_path / "held.msgpack"
    url = f"{redis_server.url}?namespace=held&cache={cache}"
    store = RedisFlagStore(url)
    old = redis_store.CACHE_LOCK_SECONDS
    redis_store.CACHE_LOCK_SECONDS = 0.2
    try:
        with FileLock(str(tmp_path / ".held.msgpack.lock")):
            store._write_cache(_doc(1))
        assert store._cache_failed is not None and store._cache_failed[0] == 1
        assert not cache.exists()
        store._write_cache(_doc(2))
        assert store._cache_failed is None and _version(str(cache)) == 2
    finally:
        redis_store.CACHE_LOCK_SECONDS = old
        store.close()


def _doc(version: int):
    import hashlib

    from cfgcore.runtime.flagstore import FlagDocument
    from cfgcore.snapshot import Snapshot, encode_snapshot

    data = encode_snapshot(Snapshot(), "msgpack")
    return FlagDocument(Snapshot(), data, version, hashlib.sha256(data).hexdigest(), {}, "u",
                        "ab" * 16, False)  # fmt: skip
