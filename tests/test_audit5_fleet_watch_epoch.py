"""``cfgcore watch --store`` shows the store epoch: in its first line, and on the first
version of a new one (a publish, or a store re-created after Redis lost its data), so an
operator can tell a publish from an ordinary write and see which epoch processes serve.
Real redis-server."""

from __future__ import annotations

import threading

import msgspec

from cfgcore.cli import main
from cfgcore.runtime.redis_store import RedisFlagStore
from cfgcore.snapshot import Flag
from tests.redis_server import wait_for


def add(name):
    return lambda s: msgspec.structs.replace(s, flags={**s.flags, name: Flag(default="on")})


def test_watch_names_the_epoch_and_a_new_one(redis_server, capsys):
    url = redis_server.url + "?namespace=we&cache=off"
    writer = RedisFlagStore(url)
    _, first = writer.update(add("a"))
    done: list[int] = []
    t = threading.Thread(
        target=lambda: done.append(
            main(["watch", "--store", url, "--count", "2", "--timeout", "20"])
        )
    )
    t.start()
    out: list[str] = []
    err: list[str] = []

    def printed(text: str) -> bool:
        captured = capsys.readouterr()
        out.extend(captured.out.splitlines())
        err.append(captured.err)
        return any(text in line for line in [*out, *err])

    try:
        assert first.epoch
        wait_for(lambda: printed(f"epoch {first.epoch[:12]})"), timeout=20)
        writer.update(add("b"), actor="alice")  # the same epoch: nothing more said
        wait_for(lambda: printed("v2 alice@"), timeout=20)
        _, published = writer.update(add("c"), actor="oncall", force=True)
        wait_for(lambda: printed("v3 oncall@"), timeout=20)
    finally:
        t.join(30)
        writer.close()
    assert done == [0] and len(out) == 2
    assert "epoch" not in out[0] and out[0].endswith(": b")
    assert f"[new epoch {published.epoch[:12]} by a forced write]: c" in out[1]
