"""A failover that loses the write that began the fleet's epoch (``cfgcore publish``
without ``wait=1``, acknowledged by no replica) leaves every process that took it
refusing the replica's older document of the previous epoch. What they report (the
follower's error, health, ``cfgcore watch --store``) says what happened and gives the
exact command that ends it: the publish of the document they serve, from their own
cache file. Real redis-server; the failover's outcome is put in place with DUMP and
RESTORE (the replica's copy of the key from before the publish), the way a promoted
replica that had not received the publish would serve it.
"""

from __future__ import annotations

import shlex
import threading

import msgspec

from cfgcore.cli import main
from cfgcore.runtime.redis_store import RedisFlagStore
from cfgcore.snapshot import Flag
from tests.redis_server import wait_for

NS = "lp"
KEY = "{lp}:flags"


def add(name: str):
    return lambda s: msgspec.structs.replace(s, flags={**s.flags, name: Flag(default="on")})


def lose_the_publish(r, saved: bytes) -> None:
    """The primary fails over to a replica that had the document from before the
    publish (and no floor key): no announcement, the followers notice at a poll."""
    r.restore(KEY, 0, saved, replace=True)
    r.delete("{lp}:flags:floor")


def test_a_lost_publish_is_named_with_the_command_that_repairs_it(
    redis_server, tmp_path, bundled_config, capsys, monkeypatch
):
    url = redis_server.url + f"?namespace={NS}"
    r = redis_server.client()
    cache = tmp_path / "f.msgpack"
    f = RedisFlagStore(url + f"&poll=0.05&cache={cache}")
    errors: list[Exception] = []
    try:
        with RedisFlagStore(url + "&cache=off") as writer:
            writer.update(add("old_a"))  # the store's first epoch (not forced)
            writer.update(add("old_b"))
            f.read()
            f.watch(lambda doc: None, on_error=errors.append)
            wait_for(lambda: f.connected)
            saved = r.dump(KEY)  # what the replica will hold
            # cfgcore publish (a forced write, a new epoch) without wait=1
            _, published = writer.update(add("published"), force=True)
        wait_for(lambda: f.version == 3 and f._cached == 3)
        lose_the_publish(r, saved)
        wait_for(lambda: errors)
        msg = str(errors[0])
        assert "went back to version 2" in msg and "failover" in msg
        assert f"began epoch {published.epoch[:12]}" in msg and "wait=1" in msg
        command = (
            f"cfgcore publish --store '{f.url}' -e ENV --flags-from-cache {shlex.quote(str(cache))}"
        )
        assert command in msg and "ENV: the environment the namespace's" in msg
        assert f.version == 3  # keeps serving what it took

        # The command as given (with this test's configuration directory) repairs it.
        monkeypatch.setenv("JWT_SIGNING_KEY", "sup3r-s3cret-signing-key-0123456789abcdef")
        argv = shlex.split(command.replace("-e ENV", "-e development"))[1:]
        argv += ["--config-dir", str(bundled_config)]
        assert main(argv) == 0, capsys.readouterr().err
        wait_for(lambda: f.version == 4)
        doc = f.read()
        assert {"old_a", "old_b", "published"} <= set(doc.snapshot.flags) and doc.forced
    finally:
        f.close()


def test_watch_store_prints_the_whole_report_with_the_command(redis_server, tmp_path, capsys):
    url = redis_server.url + f"?namespace={NS}"
    r = redis_server.client()
    cache = tmp_path / "w.msgpack"
    with RedisFlagStore(url + "&cache=off") as writer:
        writer.update(add("old_a"))
        saved = r.dump(KEY)
        writer.update(add("published"), force=True)
    done: list[int] = []
    watch_url = url + f"&poll=0.05&cache={cache}"
    t = threading.Thread(
        target=lambda: done.append(
            main(["watch", "--store", watch_url, "--count", "1", "--timeout", "20"])
        )
    )
    t.start()
    out: list[str] = []

    def printed(text: str) -> bool:
        captured = capsys.readouterr()
        out.extend(captured.out.splitlines() + captured.err.splitlines())
        return any(text in line for line in out)

    try:
        wait_for(lambda: printed("epoch") and cache.exists(), timeout=20)
        lose_the_publish(r, saved)
        wait_for(lambda: printed("REJECTED"), timeout=20)
    finally:
        t.join(30)
    line = next(x for x in out if "REJECTED" in x)
    # (this watcher never served the epoch before: either cause is named)
    assert "re-created" in line and "or a failover lost the write that began epoch" in line
    assert f"--flags-from-cache {shlex.quote(str(cache))}" in line, line
    assert done == [0]


def test_health_names_the_lost_publish_and_the_command(redis_server, tmp_path):
    from cfgcore.experiments.dynamic import DynamicConfigurationManager

    url = redis_server.url + f"?namespace={NS}"
    r = redis_server.client()
    cache = tmp_path / "m.msgpack"
    m = DynamicConfigurationManager(store=url + f"&poll=0.05&cache={cache}", log_exposures=False)
    try:
        with RedisFlagStore(url + "&cache=off") as writer:
            writer.update(add("old_a"))
            wait_for(lambda: m.store.version == 1)
            saved = r.dump(KEY)
            writer.update(add("published"), force=True)
        wait_for(lambda: m.store.version == 2 and m.store._cached == 2)
        lose_the_publish(r, saved)
        command = f"--flags-from-cache {shlex.quote(str(cache))}"
        wait_for(lambda: any(command in x for x in m.health().reasons))
        reason = next(x for x in m.health().reasons if command in x)
        assert "went back to version 1" in reason and "cfgcore publish --store" in reason
        assert "published" in m.snapshot.flags  # the flags it took keep serving
    finally:
        m.close()
