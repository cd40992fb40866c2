"""The way out of a flag document stored at version 2**53 - 1 (by another program that
can write an unsigned store), as docs/fleet.md gives it, taken with real processes on
hosts of their own (a state directory each: their cache files) and the real CLI: every
follower takes that version and caches it, a publish is refused naming the way out, and
following it (stop the processes, remove their cache files, ``cfgcore retire``, publish,
start them) gives the namespace back: the processes serve the publish, and later writes
follow it. Real redis-server."""

from __future__ import annotations

import glob
import hashlib
import os
import re
import subprocess
import sys

import msgspec

from cfgcore.runtime.redis_follow import MAX_VERSION
from tests.redis_server import wait_for
from tests.test_fleet_processes import SRC, Member, proc_env, run_proc

FLAGS = os.path.join(SRC, "cfgcore", "defaults", "flags.yaml")


def _cli(state_dir, cwd, *argv: str) -> subprocess.CompletedProcess[str]:
    """``cfgcore ARGV...`` in a process of its own, on the host of ``state_dir``."""
    return subprocess.run(
        [sys.executable, "-m", "cfgcore", *argv], env=proc_env(state_dir), cwd=cwd,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def _plant_at_the_end(redis_server, ns: str) -> None:
    """Another program stores a document of its own under the last version, announced."""
    r = redis_server.client()
    doc = msgspec.msgpack.decode(r.hget(f"{{{ns}}}:flags", "data"))
    doc["flags"]["w_planted"] = {"default": "on", "variants": {"on": True, "off": False}}
    data = msgspec.msgpack.encode(doc)
    r.hset(
        f"{{{ns}}}:flags",
        mapping={
            "version": MAX_VERSION,
            "data": data,
            "checksum": hashlib.sha256(data).hexdigest(),
        },
    )
    r.publish(f"{{{ns}}}:flags:changes", f"{MAX_VERSION} x")


def _cached_versions(state_dir) -> list[int]:
    """The versions in the host's flag document cache files."""
    found = []
    for path in glob.glob(os.path.join(state_dir, "fleet", "*flags*.msgpack")):
        with open(path, "rb") as f:
            found.append(msgspec.msgpack.decode(f.read())["version"])
    return found


def test_the_documented_way_out_of_a_version_at_the_end(redis_server, tmp_path):
    ns = "endproc"
    url = redis_server.url + f"?namespace={ns}&poll=0.2"
    hosts = {name: tmp_path / name for name in ("a", "b", "publisher")}
    for path in hosts.values():
        path.mkdir()
    publish = ("publish", "--store", url, "-e", "development", "--flags", FLAGS)
    done = _cli(hosts["publisher"], tmp_path, *publish)
    assert done.returncode == 0, done.stderr
    members = {h: Member("follow", url, env=proc_env(hosts[h])) for h in ("a", "b")}
    try:
        for m in members.values():
            assert m.line()["version"] == 1
        _plant_at_the_end(redis_server, ns)
        for h, m in members.items():
            status = m.ask(f"wait {MAX_VERSION} 30")
            assert status["version"] == MAX_VERSION and "w_planted" in status["flags"]
            wait_for(lambda h=h: _cached_versions(hosts[h]) == [MAX_VERSION])  # and cached
        refused = _cli(hosts["publisher"], tmp_path, *publish)
        assert refused.returncode != 0
        said = refused.stderr.strip().splitlines()[-1]
        assert f"{{{ns}}}:flags is at version {MAX_VERSION}" in said
        # the way out it names (as docs/fleet.md does)
        way = re.search(r"stop the processes of this namespace, remove their cache files "
                        r"\(STATE_DIR/(fleet/[^)]+)\), delete the namespace's keys "
                        r"\(cfgcore retire --store '([^']+)'\), then publish again and "
                        r"start them", said)  # fmt: skip
        assert way is not None, said
        pattern, retire_url = way.groups()
        # 1. stop the processes; 2. remove their cache files
        for m in members.values():
            m.stop()
        for h in ("a", "b"):
            removed = glob.glob(os.path.join(hosts[h], pattern))
            assert len(removed) == 1
            for path in removed:
                os.remove(path)
        # 3. retire the namespace; 4. publish again
        retired = _cli(hosts["publisher"], tmp_path, "retire", "--store", retire_url)
        assert retired.returncode == 0, retired.stderr
        done = _cli(hosts["publisher"], tmp_path, *publish)
        assert done.returncode == 0, done.stderr
        version = int(
            re.findall(r"published \d+ flags as version (\d+)", done.stdout + done.stderr)[0]
        )
        assert version < MAX_VERSION
        # 5. start them: they serve the publish, not the planted document
        members = {h: Member("follow", url, env=proc_env(hosts[h])) for h in ("a", "b")}
        for m in members.values():
            status = m.line()
            assert status["version"] == version and "w_planted" not in status["flags"]
        # and the namespace follows writes again
        wrote = run_proc(hosts["publisher"], "write", url, "1", "1")
        assert wrote.returncode == 0, wrote.stderr
        for h, m in members.items():
            status = m.ask(f"wait {version + 1} 30")
            assert status["version"] == version + 1 and "w1_0" in status["flags"]
            wait_for(lambda h=h: _cached_versions(hosts[h]) == [version + 1])
    finally:
        for m in members.values():
            m.stop()
