"""The fleet's local cache file, read as a bounded regular file, fourth audit. It was
read with a plain ``open().read()``: a FIFO at the cache path blocked the store's read
(a process starting while Redis was down hung forever), and a device or a runaway file
was read whole into memory. Now it is read like every other file cfgcore reads
(``atomicio.read_regular``): anything but a regular file of at most the document limit
plus its fields is refused with a clear error naming the cache file. Real store,
Redis unreachable (a port nobody listens on), real FIFO and sparse file."""

from __future__ import annotations

import os
import threading

import pytest

from cfgcore.errors import ConfigError
from cfgcore.runtime.redis_store import MAX_CACHE_BYTES, RedisFlagStore
from tests.redis_server import refused_port


def _read_in_thread(store):
    out: list[object] = []

    def run():
        try:
            out.append(store.read())
        except Exception as exc:
            out.append(exc)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(20)
    assert not t.is_alive(), "read() blocked on the cache file"
    return out[0]


def _unreachable(cache) -> RedisFlagStore:
    url = f"redis://127.0.0.1:{refused_port()}/0?cache={cache}&socket_connect_timeout=0.5"
    return RedisFlagStore(url)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_at_the_cache_path_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "cache.msgpack"
    os.mkfifo(fifo)
    store = _unreachable(fifo)
    try:
        result = _read_in_thread(store)
        assert isinstance(result, ConfigError), repr(result)
        assert str(fifo) in str(result) and "not a regular file" in str(result)
        assert store._cache_version() == 0
    finally:
        store.close()


def test_a_runaway_cache_file_is_refused_unread(tmp_path):
    big = tmp_path / "cache.msgpack"
    with open(big, "wb") as fh:
        fh.truncate(MAX_CACHE_BYTES + 1)  # sparse: no disk used
    store = _unreachable(big)
    try:
        result = _read_in_thread(store)
        assert isinstance(result, ConfigError), repr(result)
        assert str(big) in str(result) and "MiB limit" in str(result)
    finally:
        store.close()
