"""A writer's own write reaches its cache file when the write returns, not when the
announcement reaches its follower: a short-lived writer (a deploy script, the CLI) that
exits at once used to leave its cache file behind the store, so its next start did not
know the store's epoch and built on a store re-created in the meantime. Against a real
redis-server, with real processes where the story is about a process exiting. A document
the writer's own follower would not cache (a signature its own keys do not accept) is
not cached by the write either."""

from __future__ import annotations

import glob
import subprocess
from pathlib import Path

import msgspec
import pytest

from cfgcore.experiments.dynamic import DynamicConfigurationManager
from cfgcore.runtime.redis_store import RedisFlagStore
from cfgcore.runtime.signing import FleetKeys, generate_signing_pair
from cfgcore.snapshot import Flag, Snapshot
from tests.test_fleet_processes import Member, proc_env, run_proc

NS = "wcache"
KEY = "{" + NS + "}:flags"


def add(name: str):
    def change(snap: Snapshot) -> Snapshot:
        return Snapshot(flags={**snap.flags, name: Flag(default="on")}, segments=snap.segments)

    return change


def cache_blob(path) -> dict:
    return msgspec.msgpack.decode(Path(path).read_bytes())


def stored(redis_server) -> dict:
    raw = redis_server.client().hgetall(KEY)
    return {k.decode(): v for k, v in raw.items()}


@pytest.fixture
def url(redis_server):
    return redis_server.url + f"?namespace={NS}&poll=30"


def test_a_writer_that_exits_at_once_leaves_its_write_in_its_cache_file(
    redis_server, url, tmp_path
):
    """Real processes: a manager's writes (``os._exit`` right after them: no close, no
    time for the follower) and a bare store's forced write (no follower at all) each
    leave the store's version, checksum and epoch in their state directory's cache."""
    done = run_proc(tmp_path / "w", "write", url, "0", "3", "exit")
    assert done.returncode == 0, done.stderr
    doc = stored(redis_server)
    (path,) = glob.glob(str(tmp_path / "w" / "fleet" / f"{NS}-flags-*.msgpack"))
    blob = cache_blob(path)
    assert blob["version"] == int(doc["version"]) == 3
    assert blob["checksum"] == doc["checksum"].decode()
    assert blob["epoch"] == doc["epoch"].decode()
    assert blob["data"] == doc["data"]

    done = run_proc(tmp_path / "ops", "repair", url, "repaired")
    assert done.returncode == 0, done.stderr
    doc = stored(redis_server)
    (path,) = glob.glob(str(tmp_path / "ops" / "fleet" / f"{NS}-flags-*.msgpack"))
    blob = cache_blob(path)
    assert blob["version"] == int(doc["version"]) == 4
    assert blob["epoch"] == doc["epoch"].decode() and blob["forced"] is True


def test_a_writer_restarted_after_exiting_at_once_refuses_a_recreated_store(
    redis_server, url, tmp_path
):
    """The consequence that mattered: the writer exits the moment its write returns,
    Redis loses everything, a new machine seeds the store before anyone noticed, and
    the writer's next run refuses to build on it (it knows the old epoch from its cache
    file), while a follower keeps serving the writer's flags."""

    def env(name: str) -> dict[str, str]:
        return proc_env(tmp_path / name)

    def run(name: str, *args: str) -> subprocess.CompletedProcess[str]:
        return run_proc(tmp_path / name, *args)

    follower = Member("follow", url, env=env("f"))
    try:
        assert follower.line()["ready"]
        assert run("w", "write", url, "0", "2", "exit").returncode == 0
        assert follower.ask("wait 2 30")["flags"] == ["w0_0", "w0_1"]
        redis_server.client().flushall()
        assert run("new", "write", url, "9", "3").returncode == 0
        late = run("w", "write", url, "0", "3")
        assert late.returncode != 0
        assert "re-created since this process last saw it" in late.stderr
    finally:
        follower.stop()


def test_a_managers_write_is_cached_when_it_returns(redis_server, url, tmp_path):
    """In process: the cache file holds the write as ``set_feature_flag`` returns."""
    cache = tmp_path / "m.msgpack"
    manager = DynamicConfigurationManager(store=url + f"&cache={cache}", log_exposures=False)
    try:
        for n in range(3):
            manager.set_feature_flag(f"f{n}", True)
            blob = cache_blob(cache)
            assert blob["version"] == manager.store.version
            assert blob["checksum"] == stored(redis_server)["checksum"].decode()
    finally:
        manager.close()


def test_a_bare_store_write_is_cached_and_never_goes_back(redis_server, url, tmp_path):
    cache = tmp_path / "s.msgpack"
    shared = url + f"&cache={cache}"
    with RedisFlagStore(shared) as store, RedisFlagStore(shared) as other:
        store.update(add("a"))
        assert cache_blob(cache)["version"] == 1
        other.update(add("b"))  # another process of the host, sharing the file
        assert cache_blob(cache)["version"] == 2
        assert store.read_cache().snapshot.flags.keys() == {"a", "b"}


def test_a_write_its_own_follower_would_refuse_is_not_cached(redis_server, url, tmp_path, caplog):
    """A signing key whose id the process's verification keys give to another key: the
    process signs what its own follower refuses. Written (as before), never cached."""
    cache = tmp_path / "k.msgpack"
    mine, other = generate_signing_pair("k1"), generate_signing_pair("k1")
    keys = FleetKeys(mine[0], [other[1]])
    with RedisFlagStore(url + f"&cache={cache}", keys=keys) as store:
        _, new = store.update(add("a"), force=True)
        assert new.version == 1
        assert not cache.exists()
        assert "would be refused by its own follower" in caplog.text
    good = FleetKeys(mine[0])
    with RedisFlagStore(url + f"&cache={cache}", keys=good) as store:
        store.update(add("b"), force=True)
        assert cache_blob(cache)["version"] == 2
