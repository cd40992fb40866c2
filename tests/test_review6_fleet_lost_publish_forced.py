"""A lost publish when the fleet's previous epoch was itself begun by a publish.

A fleet is usually seeded with ``cfgcore publish --flags`` (a forced write): every
document of that epoch carries the ``forced`` mark. A second publish, lost in a failover
(no ``wait=1``), leaves the store at an older version of that forced epoch. The forced
mark must not let the older document through: the processes that took the publish
report it as a lost publish with the command that repairs it, a new process does not
serve the older document beside them (the floor key's record), and no write builds on
it (that would drop the publish without a word) until the publish is made again. Real
redis-server; the failover's outcome is put in place with DUMP and RESTORE.
"""

from __future__ import annotations

import msgspec
import pytest

from cfgcore.errors import ConfigError
from cfgcore.runtime.redis_store import RedisFlagStore
from cfgcore.snapshot import Flag, Snapshot
from tests.redis_server import wait_for

NS = "lpf"
KEY, RECORD = "{lpf}:flags", "{lpf}:flags:floor:epoch"


def add(name: str):
    return lambda s: msgspec.structs.replace(s, flags={**s.flags, name: Flag(default="on")})


def only(*names: str):
    return lambda _: Snapshot(flags={n: Flag(default="on") for n in names})


@pytest.fixture
def url(redis_server):
    return redis_server.url + f"?namespace={NS}"


def test_a_lost_publish_over_a_published_epoch_is_refused_everywhere(redis_server, url, tmp_path):
    r = redis_server.client()
    cache = tmp_path / "f.msgpack"
    f = RedisFlagStore(url + f"&poll=0.05&cache={cache}")
    w = RedisFlagStore(url + "&cache=off")  # a writer of the first epoch
    errors: list[Exception] = []
    docs: list = []
    opened = [f, w]
    try:
        with RedisFlagStore(url + "&cache=off") as ops:
            _, first = ops.update(only("seeded"), force=True)  # the fleet's first publish
        w.update(add("old_b"))  # version 2, of that forced epoch
        assert w._epoch == first.epoch
        f.read()
        f.watch(docs.append, on_error=errors.append)
        wait_for(lambda: f.connected)
        saved = r.dump(KEY)  # what the replica will hold
        with RedisFlagStore(url + "&cache=off") as ops:
            _, published = ops.update(only("published"), force=True)  # without wait=1
        wait_for(lambda: f.version == 3 and f._cached == 3)
        r.restore(KEY, 0, saved, replace=True)  # the failover lost the publish
        wait_for(lambda: errors)
        msg = str(errors[0])
        assert "went back to version 2" in msg and "wait=1" in msg, msg
        assert "--flags-from-cache" in msg
        assert f.version == 3 and "published" in f.read_cache().snapshot.flags
        assert r.get(RECORD) == f"3 {published.epoch}".encode()

        # A new process does not serve the older document beside the fleet serving
        # the publish.
        fresh = RedisFlagStore(url + "&cache=off")
        opened.append(fresh)
        with pytest.raises(ConfigError, match="the fleet served"):
            fresh.read()
        # A writer of the older epoch does not build on it (it would drop the publish,
        # and the fleet would take its write without a word).
        with pytest.raises(ConfigError):
            w.update(add("old_c"))
        assert r.hget(KEY, "version") == b"2"
        assert f.version == 3 and not any("old_c" in d.snapshot.flags for d in docs)

        # The repair: the publish again, numbered above; every process takes it.
        with RedisFlagStore(url + "&cache=off") as ops:
            _, again = ops.update(only("published"), force=True)
        assert again.version == 4
        wait_for(lambda: f.version == 4)
        assert fresh.read().version == 4
        _, later = w.update(add("old_c"))
        wait_for(lambda: f.version == later.version)
        assert sorted(docs[-1].snapshot.flags) == ["old_c", "published"]
    finally:
        for s in opened:
            s.close()


def test_a_publish_above_the_record_is_taken_by_everyone(redis_server, url, tmp_path):
    """The ordinary repair is unchanged: a forced write numbered above the floor's
    record is taken by a new process and by the fleet, whichever epoch it served."""
    r = redis_server.client()
    a = RedisFlagStore(url + f"&poll=0.05&cache={tmp_path / 'a.msgpack'}")
    errors: list[Exception] = []
    try:
        with RedisFlagStore(url + "&cache=off") as ops:
            ops.update(only("seeded"), force=True)
        a.read()
        a.watch(lambda d: None, on_error=errors.append)
        a.update(add("more"))
        r.flushall()
        wait_for(lambda: errors)
        assert r.get(RECORD) == f"2 {a._epoch}".encode()
        with RedisFlagStore(url + "&cache=off") as ops:
            ops.update(only("restored"), force=True)
        wait_for(lambda: a.version == 3)
        with RedisFlagStore(url + "&cache=off") as fresh:
            assert fresh.read().version == 3
            fresh.update(add("x"))
        wait_for(lambda: a.version == 4)
    finally:
        a.close()


def test_a_publish_below_what_a_process_served_is_named_as_such(redis_server, url, tmp_path):
    """Redis restarted empty and was published to before any process reported the
    version it served: the publish is numbered 1, below it. A process that served more
    (its writer, a restart with its cache file) refuses it and says why: a publish
    numbered too low, not a store re-created from the seed; publishing again numbers it
    above what they reported, and they take that."""
    r = redis_server.client()
    cache = tmp_path / "a.msgpack"
    a = RedisFlagStore(url + f"&cache={cache}")
    b = None
    try:
        a.read()
        for name in ("a1", "a2", "a3"):
            a.update(add(name))
        a._write_cache(a.read())  # (what its follower does)
        r.flushall()
        with RedisFlagStore(url + "&cache=off") as ops:
            _, low = ops.update(only("reset"), force=True)
        assert low.version == 1
        for refusal in (lambda: a.update(add("a4")), None):
            if refusal is None:
                b = RedisFlagStore(url + f"&cache={cache}")  # restarted, same machine
                assert b.read().version == 3  # its cache file
                msg = str(b.last_error)
            else:
                with pytest.raises(ConfigError) as err:
                    refusal()
                msg = str(err.value)
            assert "begun by a forced write" in msg and "numbered at or below" in msg, msg
            assert "started over from the seed" not in msg
        assert r.hget(KEY, "version") == b"1"
        with RedisFlagStore(url + "&cache=off") as ops:
            _, again = ops.update(only("reset"), force=True)
        assert again.version == 4
        _, later = a.update(add("a4"))
        assert sorted(later.snapshot.flags) == ["a4", "reset"]
    finally:
        a.close()
        if b is not None:
            b.close()
