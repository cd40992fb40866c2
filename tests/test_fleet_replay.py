"""An older, validly signed document put back in Redis under its own version (someone
with write access to Redis, no signing key). A running process never goes back; what
this file pins down is a process that starts:

- with a cache file (its state directory kept): the cache is the high-water mark, the
  older document is refused and the cache file's served (the floor rises to it);
- without one: ``min_version=N`` in the store URL (a deployment's pin) refuses anything
  older, and a start fails rather than serve it; no pin, no cache: the old document is
  served (the residual risk docs/fleet.md states);
- after a key rotation that retired the old key: refused whatever the state.

Against a real redis-server, with signing keys."""

from __future__ import annotations

import pytest

from cfgcore.errors import ConfigError
from cfgcore.runtime.redis_store import RedisFlagStore
from cfgcore.runtime.redis_url import parse_redis_url
from cfgcore.runtime.signing import FleetKeys, generate_signing_pair
from cfgcore.snapshot import Flag, Snapshot
from tests.waiting import wait_for

K1 = generate_signing_pair("k1")
K2 = generate_signing_pair("k2")
KEY = "{rp}:flags"


def add(name: str):
    def change(snap: Snapshot) -> Snapshot:
        return Snapshot(flags={**snap.flags, name: Flag(default="on")}, segments=snap.segments)

    return change


@pytest.fixture
def url(redis_server):
    return redis_server.url + "?namespace=rp"


@pytest.fixture
def opened():
    stores: list[RedisFlagStore] = []

    def open_(url: str, keys: FleetKeys | None = None) -> RedisFlagStore:
        store = RedisFlagStore(url, keys=keys if keys is not None else FleetKeys(None, [K1[1]]))
        stores.append(store)
        return store

    yield open_
    for s in stores:
        s.close()


@pytest.fixture
def replayed(redis_server, url, opened, tmp_path):
    """Versions 1 to 3 written (signed by k1) while a host cached them; then version 1's
    fields put back whole. Returns the host's cache file."""
    cache = tmp_path / "host.msgpack"
    writer = opened(url + f"&cache={cache}", FleetKeys(K1[0]))
    writer.update(add("old"))
    r = redis_server.client()
    old = r.hgetall(KEY)
    writer.update(add("mid"))
    writer.update(add("new"))
    assert writer.read_cache().version == 3
    r.delete(KEY)
    r.hset(KEY, mapping=old)  # the replay: signature, version 1, epoch, all as written
    return cache


def test_the_replay_passes_the_signature_check_on_its_own(url, opened, replayed):
    """The premise: version 1 is validly signed for version 1."""
    doc = opened(url + "&cache=off").read()
    assert doc.version == 1 and set(doc.snapshot.flags) == {"old"}


def test_a_process_with_a_cache_file_serves_it_not_the_replay(url, opened, replayed, caplog):
    store = opened(url + f"&cache={replayed}")
    doc = store.read()
    assert doc.version == 3 and set(doc.snapshot.flags) == {"old", "mid", "new"}
    assert "older than version 3 this host served" in store.last_error
    assert "older than version 3" in caplog.text
    # the floor rose to it: what is published next is numbered above
    writer = opened(url + "&cache=off", FleetKeys(K1[0]))
    _, new = writer.update(lambda s: Snapshot(flags={"repaired": Flag(default="on")}), force=True)
    assert new.version == 4


def test_a_pinned_process_without_a_cache_refuses_to_start_on_the_replay(url, opened, replayed):
    with pytest.raises(ConfigError, match="below min_version=2 of the store URL"):
        opened(url + "&cache=off&min_version=2").read()
    # at the pin or above: served
    assert opened(url + "&cache=off&min_version=1").read().version == 1


def test_a_pinned_process_serves_its_cache_when_it_is_at_the_pin(url, opened, replayed, tmp_path):
    store = opened(url + f"&cache={replayed}&min_version=3")
    assert store.read().version == 3
    behind = tmp_path / "behind.msgpack"
    replayed_bytes = replayed.read_bytes()
    behind.write_bytes(replayed_bytes)
    with pytest.raises(ConfigError, match="cannot serve meanwhile"):
        opened(url + f"&cache={behind}&min_version=4").read()


def test_without_cache_or_pin_the_replay_is_served(url, opened, replayed):
    """The residual risk, stated precisely in docs/fleet.md: nothing the process holds
    tells it the store once held a newer document."""
    assert opened(url + "&cache=off").read().version == 1


def test_a_retired_key_refuses_the_replay_without_any_state(url, opened, replayed):
    """Rotation: once k1 is retired (followers trust k2 only), every document k1 signed
    is refused, a replayed one included."""
    with pytest.raises(ConfigError, match="signed with key 'k1'"):
        opened(url + "&cache=off", FleetKeys(None, [K2[1]])).read()


def test_writes_do_not_build_below_the_pin(url, opened, replayed):
    signer = FleetKeys(K1[0])
    pinned = opened(url + "&cache=off&min_version=3", signer)
    with pytest.raises(ConfigError, match="below min_version=3"):
        pinned.update(add("more"))
    # a forced write (cfgcore publish) is the repair: numbered above the pin
    _, new = pinned.update(lambda s: Snapshot(flags={"fixed": Flag(default="on")}), force=True)
    assert new.version == 4


def test_an_empty_store_below_the_pin_is_a_lost_one(redis_server, url, opened):
    redis_server.client().flushall()
    with pytest.raises(ConfigError, match="lost its flag document"):
        opened(url + "&cache=off&min_version=5").read()
    signer = FleetKeys(K1[0])
    with pytest.raises(ConfigError, match="lost its flag document"):
        opened(url + "&cache=off&min_version=5", signer).update(add("x"))


def test_unsigned_failover_a_restart_does_not_go_back_either(redis_server, url, opened, tmp_path):
    """No keys: writes lost in a failover (the store back at an older version of the
    same epoch) are not served by a process restarted with its cache file, as a running
    one does not serve them."""
    cache = tmp_path / "c.msgpack"
    keys = FleetKeys()
    w = opened(url + f"&cache={cache}", keys)
    w.update(add("a"))
    r = redis_server.client()
    old = r.hgetall(KEY)
    w.update(add("b"))
    r.delete(KEY)
    r.hset(KEY, mapping=old)
    restarted = opened(url + f"&cache={cache}", keys)
    assert restarted.read().version == 2
    # the next write is numbered above what this host served, on the stored document
    _, new = restarted.update(add("c"))
    assert new.version == 3


@pytest.mark.parametrize("bad", ["-1", "x", str(2**53), "1.5"])
def test_min_version_is_a_version(bad):
    with pytest.raises(ConfigError, match="min_version"):
        parse_redis_url(f"redis://h/0?min_version={bad}")


def test_min_version_is_this_process_own_setting():
    """Not carried into the repair commands messages print (it tunes this process), and
    a published configuration of the same URL numbers its own versions."""
    parsed = parse_redis_url("redis://h/0?namespace=n&min_version=7")
    assert parsed.options["min_version"] == 7
    assert "min_version" not in parsed.for_command()


def test_a_signing_writer_builds_nothing_on_an_older_document(url, opened, replayed):
    """A change on top of the replay would be signed and taken by every process: the
    fleet's flags back to version 1 plus the change. Refused; a forced write (cfgcore
    publish) is the repair."""
    writer = opened(url + f"&cache={replayed}", FleetKeys(K1[0]))
    with pytest.raises(ConfigError, match="older than version 3 this process served"):
        writer.update(add("more"))
    _, new = writer.update(add("more"), force=True)
    assert new.version == 4


def test_a_signing_writer_without_state_builds_nothing_below_the_fleet_floor(
    redis_server, url, opened, replayed
):
    """A signing writer that served nothing and has no cache file (a process just
    started, the CLI with cache=off) cannot tell the replay by itself; the fleet can:
    a running follower refused it and raised the floor key to the version it serves.
    A change on top of the replay would be signed and taken by every process (the
    refusing ones too: it is numbered above their floor), the fleet's flags back to
    version 1 plus the change. Refused, naming the floor; a forced write repairs."""
    follower = opened(url + f"&cache={replayed}&poll=0.05")
    follower.read()
    follower.watch(lambda doc: None)
    assert wait_for(lambda: redis_server.client().get("{rp}:flags:floor") == b"3")
    writer = opened(url + "&cache=off", FleetKeys(K1[0]))
    with pytest.raises(ConfigError, match="older than version 3 the fleet served"):
        writer.update(add("more"))
    assert redis_server.client().hget(KEY, "version") == b"1"  # nothing written
    _, new = writer.update(lambda s: Snapshot(flags={"fixed": Flag(default="on")}), force=True)
    assert new.version == 4
    assert wait_for(lambda: follower.version == 4)


def test_an_unsigned_writer_still_builds_on_a_failover_older_document(url, opened, tmp_path):
    """Without keys the failover semantics are unchanged: the writer builds on what the
    store holds, numbered above what it served."""
    w = opened(url + "&cache=off", FleetKeys())
    w.update(add("a"))
    w.update(add("b"))
    w._seen = 5  # (as after serving a version a failover lost)
    _, new = w.update(add("c"))
    assert new.version == 6
