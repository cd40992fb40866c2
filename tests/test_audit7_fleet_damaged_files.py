"""Damaged local files of the flag stores, seventh audit.

* The fleet's cache file nested deeper than the MessagePack decoder goes raised
  RecursionError out of ``read()`` (even with Redis up: an empty store asks the cache
  file which version it lost), ``update()``, ``read_cache()`` and the live flag set's
  start: one damaged file in the state directory kept the process from starting
  although Redis served its document. Now it is an unreadable cache file like any other
  (a ConfigError naming it from ``read_cache``, ignored where only its version is
  asked).
* A flags file's version sidecar (``.FILE.version``) was read with a plain
  ``open().read()`` and ``json.loads``: JSON nested past Python's recursion limit raised
  RecursionError from every read of the flag file (start, reload, every change), and a
  FIFO there blocked them forever. Now it is read as a bounded regular file and such a
  sidecar counts as damaged: the file reads as edited by hand.

Real Redis (tests/redis_server.py), real files and FIFOs.
"""

from __future__ import annotations

import os
import threading

import pytest

from cfgcore.errors import ConfigError
from cfgcore.runtime.flags import LiveFlags
from cfgcore.runtime.flagstore import FileFlagStore
from cfgcore.runtime.redis_store import RedisFlagStore
from cfgcore.snapshot import Snapshot, load_snapshot
from tests.redis_server import refused_port

DEEP_MSGPACK = b"\x91" * 100_000 + b"\xc0"  # a list in a list in a list ... of nil


def _flag_snapshot(tmp_path) -> Snapshot:
    path = tmp_path / "src.yaml"
    path.write_text('flags:\n  beta:\n    default: "on"\n')
    return load_snapshot(str(path))


def test_a_deeply_nested_cache_file_does_not_stop_a_store_redis_serves(redis_server, tmp_path):
    cache = tmp_path / "cache.msgpack"
    url = f"{redis_server.url}?namespace=deep&cache={cache}"
    snap = _flag_snapshot(tmp_path)
    with RedisFlagStore(url + "&poll=5") as writer:
        cache.write_bytes(DEEP_MSGPACK)  # (the writer's cache=: the same file)
        writer.update(lambda _: snap, force=True)
    cache.write_bytes(DEEP_MSGPACK)
    store = RedisFlagStore(url)
    try:
        doc = store.read()
        assert doc.version == 1 and set(doc.snapshot.flags) == {"beta"}
        with pytest.raises(ConfigError, match="nested too deeply") as err:
            store.read_cache()
        assert str(cache) in str(err.value)
        _, new = store.update(lambda s: s)
        assert new.version == 2
    finally:
        store.close()
    # The live flag set's start (it reads the cache file first, to judge A/B tests)
    cache.write_bytes(DEEP_MSGPACK)
    live = LiveFlags(RedisFlagStore(url))
    try:
        assert live.document is not None and live.document.version == 2
        assert live.engine.is_enabled("beta", {})
    finally:
        live.close()


def test_an_empty_store_with_a_deeply_nested_cache_file_serves_the_seed(redis_server, tmp_path):
    cache = tmp_path / "cache.msgpack"
    cache.write_bytes(DEEP_MSGPACK)
    store = RedisFlagStore(f"{redis_server.url}?namespace=deep2&cache={cache}")
    try:
        assert store.read().version == 0  # a new store: nothing known to be lost
        _, new = store.update(lambda _: Snapshot())
        assert new.version == 1
    finally:
        store.close()


def test_redis_down_and_a_deeply_nested_cache_file_is_a_config_error(tmp_path):
    cache = tmp_path / "cache.msgpack"
    cache.write_bytes(DEEP_MSGPACK)
    url = f"redis://127.0.0.1:{refused_port()}/0?cache={cache}&socket_connect_timeout=0.5"
    store = RedisFlagStore(url)
    try:
        with pytest.raises(ConfigError, match="no usable cache file") as err:
            store.read()
        assert "nested too deeply" in str(err.value) and str(cache) in str(err.value)
    finally:
        store.close()


def _flag_file(tmp_path):
    path = tmp_path / "flags.yaml"
    path.write_text('flags:\n  beta:\n    default: "on"\n')
    return path


def test_a_deeply_nested_version_sidecar_reads_as_a_hand_edit(tmp_path):
    path = _flag_file(tmp_path)
    store = FileFlagStore(path)
    store.update(lambda s: s)
    sidecar = tmp_path / ".flags.yaml.version"
    assert sidecar.exists()
    sidecar.write_text("[" * 100_000 + "]" * 100_000)
    doc = store.read()
    assert set(doc.snapshot.flags) == {"beta"} and doc.version == 1
    _, new = store.update(lambda s: s)  # and writing repairs it
    assert new.version == 2 and store.read().version == 2
    live = LiveFlags(FileFlagStore(path))
    try:
        sidecar.write_text("{" * 100_000)
        path.write_text(path.read_text() + "\n")
        assert live.refresh() is True
        assert live.last_error is None
    finally:
        live.close()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_as_version_sidecar_does_not_block_reads(tmp_path):
    path = _flag_file(tmp_path)
    os.mkfifo(tmp_path / ".flags.yaml.version")
    store = FileFlagStore(path)
    out: list[object] = []

    def run():
        try:
            out.append(store.read())
        except BaseException as exc:  # reported below
            out.append(exc)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(20)
    if t.is_alive():  # unblock the thread: open the FIFO for writing once
        fd = os.open(tmp_path / ".flags.yaml.version", os.O_WRONLY | os.O_NONBLOCK)
        os.close(fd)
        t.join(5)
        pytest.fail("read() blocked on a FIFO at the version sidecar")
    assert not isinstance(out[0], BaseException), repr(out[0])
    assert set(out[0].snapshot.flags) == {"beta"}
