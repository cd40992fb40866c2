"""The fleet with real processes and a real redis-server (issue 9).

Followers and writers are separate Python processes (tests/fleet_proc.py) using
``DynamicConfigurationManager(store=URL)``, so nothing is shared but Redis and the file
system. Every wait is on a condition with a deadline.
"""

from __future__ import annotations

import hashlib
import json
import os
import select
import subprocess
import sys

import msgspec
import pytest

import cfgcore
from tests.redis_server import RedisServer

PROC = os.path.join(os.path.dirname(__file__), "fleet_proc.py")
SRC = os.path.dirname(os.path.dirname(os.path.abspath(cfgcore.__file__)))
DURABLE = ("--appendonly", "yes", "--appendfsync", "always")  # a restart keeps the data


def proc_env(state_dir: object) -> dict[str, str]:
    """The environment of a fleet_proc.py process with ``state_dir`` (its cache files)
    as its own state directory, as on a machine of its own."""
    return dict(os.environ, PYTHONPATH=SRC, CFGCORE_STATE_DIR=str(state_dir))


def run_proc(state_dir: object, *args: str) -> subprocess.CompletedProcess[str]:
    """Run one fleet_proc.py command (``write URL I N``, ``repair URL NAME``...) to its
    end in a process of its own."""
    return subprocess.run(
        [sys.executable, PROC, *args], env=proc_env(state_dir), capture_output=True,
        text=True, timeout=60,
    )  # fmt: skip


class Member:
    """One fleet_proc.py process; ``ask`` sends a command and reads its JSON answer."""

    def __init__(self, *args: str, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, PROC, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )

    def line(self, timeout: float = 30.0) -> dict:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        assert ready, f"no answer from {self.proc.args} within {timeout} s"
        text = self.proc.stdout.readline()
        assert text, f"{self.proc.args} exited with {self.proc.wait()}"
        return json.loads(text)

    def ask(self, command: str, timeout: float = 30.0) -> dict:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self.line(timeout)

    def stop(self) -> None:
        stdin, stdout = self.proc.stdin, self.proc.stdout
        try:
            if self.proc.poll() is None and stdin is not None:
                stdin.write("quit\n")
                stdin.flush()
        except OSError:
            pass
        for pipe in (stdin, stdout):
            if pipe is not None:
                try:
                    pipe.close()
                except OSError:
                    pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def fleet(tmp_path):
    """``fleet(kind, *args)`` starts a member; all are stopped after the test."""
    env = dict(os.environ, PYTHONPATH=SRC, CFGCORE_STATE_DIR=str(tmp_path / "state"))
    members: list[Member] = []

    def start(*args: str) -> Member:
        member = Member(*args, env=env)
        members.append(member)
        return member

    yield start
    for member in members:
        member.stop()


def _followers(fleet, url: str, n: int) -> list[Member]:
    members = [fleet("follow", url) for _ in range(n)]
    for m in members:
        assert m.line()["ready"]
    return members


def _write(fleet, url: str, index: int, count: int) -> None:
    writer = fleet("write", url, str(index), str(count))
    assert writer.line(60)["done"] == index
    assert writer.proc.wait(10) == 0


def test_followers_converge_on_the_last_of_concurrent_writes(redis_server, fleet):
    url = redis_server.url + "?namespace=converge"
    followers = _followers(fleet, url, 8)
    writers = [fleet("write", url, str(i), "50") for i in range(4)]
    conflicts = 0
    for i, w in enumerate(writers):
        done = w.line(60)
        assert done["done"] == i and done["stats"]["writes"] == 50
        conflicts += done["stats"]["conflicts"]
    assert all(w.proc.wait(10) == 0 for w in writers)
    stored = redis_server.client().hmget("{converge}:flags", ["version", "checksum"])
    assert int(stored[0]) == 200  # one version per write: none lost, none doubled
    expected = sorted(f"w{i}_{j}" for i in range(4) for j in range(50))
    for f in followers:
        status = f.ask("wait 200 30")
        assert status["version"] == 200
        assert status["checksum"] == stored[1].decode()
        assert status["flags"] == expected  # every write's effect is there ...
        assert status["enabled"] == expected  # ... and served by the hot path
        assert status["errors"] == 0 and status["stats"]["rejected"] == 0
        # listeners saw the remote change like a local one, with who made it
        change = status["last_change"]
        assert change["source"] == "redis" and change["store_version"] <= 200
        assert change["pid"] in {w.proc.pid for w in writers}


def test_followers_keep_serving_while_redis_is_down_then_converge(redis_binary, tmp_path, fleet):
    server = RedisServer(str(tmp_path / "redis"), args=DURABLE).start()
    try:
        url = server.url + "?namespace=outage"
        followers = _followers(fleet, url, 4)
        _write(fleet, url, 0, 5)
        assert all(f.ask("wait 5 30")["version"] == 5 for f in followers)
        server.kill()
        for f in followers:  # nothing to reach, yet every flag still answers
            status = f.ask("wait 999 0.3")
            assert status["version"] == 5 and len(status["enabled"]) == 5
        server.start()
        _write(fleet, url, 1, 5)
        for f in followers:
            status = f.ask("wait 10 30")
            assert status["version"] == 10 and len(status["enabled"]) == 10
            assert status["stats"]["reconnects"] >= 1
    finally:
        server.stop()


def test_a_corrupted_document_is_rejected_everywhere(redis_server, fleet):
    url = redis_server.url + "?namespace=corrupt"
    followers = _followers(fleet, url, 4)
    _write(fleet, url, 0, 3)
    assert all(f.ask("wait 3 30")["version"] == 3 for f in followers)
    r = redis_server.client()
    good = r.hget("{corrupt}:flags", "checksum").decode()
    # 1. bytes changed by hand: the checksum no longer matches
    r.hset("{corrupt}:flags", mapping={"version": 4, "data": b"\x81\xa5flags\xc1"})
    r.publish("{corrupt}:flags:changes", "4 x")
    assert all(f.ask("waiterr 1 30")["errors"] == 1 for f in followers)
    # 2. a well-formed document with a matching checksum that does not compile
    #    (the default names a variant that does not exist)
    bad = msgspec.msgpack.encode({"flags": {"x": {"default": "nope"}}})
    r.hset(
        "{corrupt}:flags",
        mapping={"version": 5, "data": bad, "checksum": hashlib.sha256(bad).hexdigest()},
    )
    r.publish("{corrupt}:flags:changes", "5 y")
    for f in followers:
        status = f.ask("waiterr 2 30")
        assert status["version"] == 3 and status["checksum"] == good
        assert len(status["flags"]) == 3  # the last good document keeps serving
        assert status["errors"] == 2 and status["stats"]["rejected"] == 2
    # a normal write refuses to build on the bad document (it would not compile) ...
    writer = fleet("write", url, "1", "1")
    assert writer.proc.wait(30) != 0
    # ... a forced replace repairs the store, and everyone moves on
    repair = fleet("repair", url, "repaired")
    assert repair.line()["done"] == 6  # above every version anyone has held
    for f in followers:
        status = f.ask("wait 6 30")
        assert status["version"] == 6 and status["flags"] == ["repaired"]


def test_a_follower_started_while_redis_is_down_serves_its_cache_file(
    redis_binary, tmp_path, fleet
):
    server = RedisServer(str(tmp_path / "redis"), args=DURABLE).start()
    try:
        url = server.url + f"?namespace=cached&cache={tmp_path / 'flags-cache.msgpack'}"
        first = _followers(fleet, url, 1)[0]
        _write(fleet, url, 0, 4)
        assert first.ask("wait 4 30")["version"] == 4
        first.stop()
        server.kill()
        late = fleet("follow", url)
        status = late.line()
        assert status["ready"] and status["version"] == 4
        assert "flags-cache.msgpack" in status["origin"]
        assert status["enabled"] == [f"w0_{j}" for j in range(4)]
        server.start()
        _write(fleet, url, 1, 1)
        status = late.ask("wait 5 30")
        assert status["version"] == 5 and "w1_0" in status["flags"]
    finally:
        server.stop()


def test_four_processes_setting_flags_on_one_file_store_lose_nothing(tmp_path, fleet):
    path = str(tmp_path / "shared" / "flags.json")
    writers = [fleet("write", path, str(i), "50") for i in range(4)]
    for i, w in enumerate(writers):
        assert w.line(120)["done"] == i
    assert all(w.proc.wait(10) == 0 for w in writers)
    from cfgcore.runtime.flagstore import FileFlagStore

    doc = FileFlagStore(path).read()
    names = sorted(k for k in doc.snapshot.flags if k.startswith("w"))
    assert names == sorted(f"w{i}_{j}" for i in range(4) for j in range(50))
    assert doc.version == 200
