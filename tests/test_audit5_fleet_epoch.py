"""The store epoch closes the window after Redis loses everything: against a real
redis-server, FLUSHALL (or a restart without persistence), then a process that never saw
the old document (no cache file, no floor key) seeds a new one before anyone noticed.
A process that served the lost versions must not build on that document (the fleet's
flags would be gone): its write is refused with a message naming the repair, followers
keep serving their flags and say why, a restarted process serves its cache file, and
``cfgcore publish`` (a forced write) repairs it for everyone. Rolling upgrades both ways
(documents of the release before epochs, written with its own script) keep working."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.cli import main
from cfgcore.engine import Engine
from cfgcore.errors import ConfigError
from cfgcore.experiments.dynamic import DynamicConfigurationManager
from cfgcore.runtime.redis_follow import stored_epoch
from cfgcore.runtime.redis_store import RedisFlagStore
from cfgcore.snapshot import Flag, Snapshot, decode_snapshot, encode_snapshot
from tests.fuzz import examples
from tests.redis_server import wait_for

KEEP = ["keep_a", "keep_b"]
NS = "epoch"

# The write script of the release before epochs (cfgcore's own, as shipped): what an
# old process still running during a rolling upgrade sends.
OLD_CAS = """
local function usable(n)
  return n ~= nil and n >= 0 and n < 9007199254740992 and n == math.floor(n)
end
local function floor_of(key)
  if redis.call('TYPE', key).ok ~= 'string' then return 0 end
  local n = tonumber(redis.call('GET', key))
  if usable(n) then return n end
  return 0
end
local function raise_floor(key, v)
  local kind = redis.call('TYPE', key).ok
  if kind ~= 'string' and kind ~= 'none' then redis.call('DEL', key) end
  if v > floor_of(key) then redis.call('SET', key, v) end
end
local kind = redis.call('TYPE', KEYS[1]).ok
if kind ~= 'hash' and kind ~= 'none' then
  if ARGV[7] ~= '1' then return {-3, kind} end
  redis.call('DEL', KEYS[1])
end
local raw = redis.call('HGET', KEYS[1], 'version')
local floor = math.max(tonumber(ARGV[2]), floor_of(KEYS[2]))
local cur = 0
if raw then
  cur = tonumber(raw)
  if not usable(cur) then
    if ARGV[7] ~= '1' then return {-1, 0} end
    cur = 0
  end
elseif floor > 0 and ARGV[7] ~= '1' then
  raise_floor(KEYS[2], floor)
  return {-2, floor}
end
if ARGV[7] ~= '1' and cur ~= tonumber(ARGV[1]) then return {0, cur} end
local new = math.max(cur, floor) + 1
redis.call('HSET', KEYS[1], 'version', new, 'checksum', ARGV[3], 'writer', ARGV[4],
           'data', ARGV[5])
redis.call('PUBLISH', ARGV[6], new .. ' ' .. ARGV[3])
return {1, new}
"""


def old_release_write(redis_server, names: list[str], *, force: bool = False) -> int:
    """Write a document of flags ``names`` as the previous release did; its version."""
    import hashlib

    import msgspec

    r = redis_server.client()
    data = encode_snapshot(Snapshot(flags={n: Flag(default="on") for n in names}), "msgpack")
    cur = r.hget(f"{{{NS}}}:flags", "version")
    writer = msgspec.msgpack.encode({"host": "old", "pid": 1, "actor": "old-release"})
    status, version = r.eval(
        OLD_CAS, 2, f"{{{NS}}}:flags", f"{{{NS}}}:flags:floor",
        int(cur or 0), 0, hashlib.sha256(data).hexdigest(), writer, data,
        f"{{{NS}}}:flags:changes", "1" if force else "0",
    )  # fmt: skip
    assert status == 1
    return int(version)


def names(snapshot) -> list[str]:
    return sorted(k for k in snapshot.flags if k.startswith(("keep", "b_", "new", "old")))


@pytest.fixture
def url(redis_server):
    return redis_server.url + f"?namespace={NS}"


@pytest.fixture
def open_store(url, tmp_path):
    """``open_store(name, poll=...)``: another process's store, with its own cache file
    (``cache=off`` for name None); closed afterwards."""
    opened: list[RedisFlagStore] = []

    def open_(name: str | None, poll: float = 30.0) -> RedisFlagStore:
        cache = "off" if name is None else tmp_path / f"{name}.msgpack"
        store = RedisFlagStore(url + f"&poll={poll}&cache={cache}")
        opened.append(store)
        return store

    yield open_
    for s in opened:
        s.close()


def follow(store: RedisFlagStore) -> RedisFlagStore:
    store.read()
    store.errors = []  # type: ignore[attr-defined]
    store.docs = []  # type: ignore[attr-defined]
    store.watch(store.docs.append, on_error=store.errors.append)  # type: ignore[attr-defined]
    return store


def add(name: str):
    def change(snap: Snapshot) -> Snapshot:
        return Snapshot(flags={**snap.flags, name: Flag(default="on")}, segments=snap.segments)

    return change


def publish(url: str, flags: list[str], tmp_path, bundled_config, capsys, monkeypatch) -> str:
    """``cfgcore publish --store URL --flags FILE``: the documented repair."""
    path = tmp_path / "restore.yaml"
    path.write_text("flags:\n" + "".join(f"  {n}:\n    default: on\n" for n in flags))
    monkeypatch.setenv("JWT_SIGNING_KEY", "sup3r-s3cret-signing-key-0123456789abcdef")
    code = main(["publish", "--store", url + "&cache=off", "--config-dir", str(bundled_config),
                 "--flags", str(path), "--actor", "oncall"])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


def test_old_writer_refused_after_flushall_and_a_fresh_seed_then_publish_repairs(
    redis_server, url, open_store, tmp_path, bundled_config, capsys, monkeypatch
):
    a = follow(open_store("a"))  # served the lost versions
    for name in KEEP:
        a.update(add(name))
    f = follow(open_store("f"))  # a follower elsewhere
    wait_for(lambda: f._cached == 2 and a._cached == 2)

    redis_server.client().flushall()  # no process polls in this window (poll=30)
    b = open_store(None)  # a new process: no cache file, no floor key
    assert b.read().version == 0
    for n in ("b_new", "b_more", "b_third"):  # versions 1 to 3 of another epoch
        b.update(add(n))
    # Version 3 is announced, newer than the 2 the followers serve: they read it and
    # refuse it (once), raising the floor to 2.
    wait_for(lambda: f.errors and a.errors)
    assert "re-created" in str(f.errors[0])
    assert f.version == 2 and names(f.read_cache().snapshot) == KEEP
    assert f.stats["rejected"] == 1

    with pytest.raises(ConfigError) as err:
        a.update(add("new_late"))
    msg = str(err.value)
    assert "re-created since this process last saw it" in msg
    assert "cfgcore publish --store" in msg and "--flags FILE" in msg
    data = redis_server.client().hget(f"{{{NS}}}:flags", "data")
    assert names(decode_snapshot(data, "msgpack")) == ["b_more", "b_new", "b_third"]
    # The followers recorded the epoch they served beside the floor: the process that
    # re-created the store (and any new one) now refuses to build on it too.
    with pytest.raises(ConfigError, match="re-created after Redis lost its data"):
        b.update(add("b_fourth"))

    out = publish(url, KEEP, tmp_path, bundled_config, capsys, monkeypatch)
    assert "as version 4" in out
    for store in (a, f):
        wait_for(lambda s=store: s.version == 4)
    assert names(f.docs[-1].snapshot) == KEEP
    doc = b.read()  # b, which started the other epoch, reads the published one
    assert doc.version == 4 and doc.forced and names(doc.snapshot) == KEEP
    _, late = a.update(add("new_late"))  # the old writer writes again
    wait_for(lambda: f.version == late.version)
    assert names(f.docs[-1].snapshot) == [*KEEP, "new_late"]
    wait_for(lambda: f._cached == late.version)
    assert f.read_cache().epoch == late.epoch == doc.epoch  # the cache file records it


def test_a_manager_keeps_its_flags_and_health_says_why(redis_server, url, tmp_path):
    cache = tmp_path / "m.msgpack"
    # poll 30 s: no poll in the window; the follower looks when it hears of a version
    # newer than its own
    m = DynamicConfigurationManager(store=url + f"&cache={cache}", log_exposures=False)
    b = RedisFlagStore(url + "&cache=off")
    try:
        for name in KEEP:
            m.set_feature_flag(name, True)
        wait_for(lambda: m.store._cached == 2)
        r = redis_server.client()
        r.flushall()
        for n in ("b_new", "b_2", "b_3"):  # versions 1 to 3 of another epoch
            b.update(add(n))
        wait_for(lambda: any("re-created" in x for x in m.health().reasons))
        assert sorted(k for k in m.snapshot.flags if k.startswith("keep")) == KEEP
        assert "b_new" not in m.snapshot.flags
        with pytest.raises(ConfigError, match="re-created"):
            m.set_feature_flag("new_late", True)
        assert int(r.get(f"{{{NS}}}:flags:floor")) == 2
    finally:
        b.close()
        m.close()


def test_a_restarted_process_serves_its_cache_file_not_the_reseeded_store(redis_server, open_store):
    a = follow(open_store("a"))
    for name in KEEP:
        a.update(add(name))
    wait_for(lambda: a._cached == 2)
    a.close()
    redis_server.client().flushall()
    b = open_store(None)
    b.read()
    for n in ("b_new", "b_2", "b_3"):  # past the version the cache file holds
        b.update(add(n))

    again = open_store("a")  # the same machine's cache file, restarted
    doc = again.read()
    assert doc.version == 2 and names(doc.snapshot) == KEEP
    assert "re-created" in str(again.last_error)
    with pytest.raises(ConfigError, match="re-created"):
        again.update(add("new_late"))


def test_writer_without_follower_after_a_restart_without_persistence(redis_server, open_store):
    a = open_store("a")  # a writer only (a job): it never followed
    a.read()
    for name in KEEP:
        a.update(add(name))
    redis_server.kill()
    redis_server.start()  # --save "" --appendonly no: back with nothing
    b = open_store(None)
    b.read()
    b.update(add("b_new"))
    with pytest.raises(ConfigError, match="re-created"):
        a.update(add("new_late"))


def test_a_writer_builds_on_a_forced_publish_it_has_not_followed_yet(open_store):
    a = open_store("a")
    a.read()
    for name in KEEP:
        a.update(add(name))
    repair = open_store(None)
    _, published = repair.update(
        lambda _: Snapshot(flags={"new_published": Flag(default="on")}),
        check=Engine().compile,
        force=True,
    )
    assert published.forced and published.epoch != a._epoch
    _, new = a.update(add("new_after"))  # a publish is the fleet's document: built on
    assert names(new.snapshot) == ["new_after", "new_published"]
    assert new.epoch == published.epoch and new.forced


def test_an_unchanged_poll_compares_the_epoch_too(open_store):
    a = open_store("a")
    a.read()
    a.update(add("keep_a"))
    old_epoch = a._epoch
    a._client.flushall()
    b = open_store(None)
    b.read()
    b.update(add("b_new"))  # version 1 again, another epoch
    assert b._epoch != old_epoch
    same = a._read_raw(a._client, 1, old_epoch)
    assert same[6] is None and same[3] is not None  # the whole document, not "unchanged"
    assert a._read_raw(a._client, 1, b._epoch)[6] == b"unchanged"


def test_rolling_upgrade_old_document_is_upgraded_in_place(redis_server, open_store):
    # the store as the previous release left it: no epoch
    old_release_write(redis_server, ["keep_a"])
    f = follow(open_store("f"))  # a new process follows it
    assert f.version == 1 and f._epoch is None
    n = open_store("n")
    n.read()
    _, new = n.update(add("keep_b"))  # the first new write begins the epoch
    assert new.epoch and not new.forced
    wait_for(lambda: f.version == 2)
    assert f._epoch == new.epoch and not f.errors
    # an old process writes on top: its script keeps the epoch field, followers take it
    assert old_release_write(redis_server, ["keep_a", "keep_b", "old_c"]) == 3
    wait_for(lambda: f.version == 3)
    assert f._epoch == new.epoch and not f.errors
    n.update(add("new_d"))  # and new writers build on it
    wait_for(lambda: f.version == 4)
    assert names(f.docs[-1].snapshot) == ["keep_a", "keep_b", "new_d", "old_c"]


def test_rolling_upgrade_old_process_reseeding_is_refused_until_published(
    redis_server, url, open_store, tmp_path, bundled_config, capsys, monkeypatch
):
    a = follow(open_store("a"))  # poll 30 s: no poll in the window
    for name in KEEP:
        a.update(add(name))
    wait_for(lambda: a._cached == 2)
    redis_server.client().flushall()
    # an old process that never saw it starts over (its script has no floor to check)
    old_release_write(redis_server, ["old_seed"])
    old_release_write(redis_server, ["old_seed", "old_2"])
    old_release_write(redis_server, ["old_seed", "old_2", "old_3"])
    wait_for(lambda: a.errors)
    assert "written by an older release" in str(a.errors[0])
    assert a.version == 2 and names(a.read_cache().snapshot) == KEEP
    with pytest.raises(ConfigError, match="re-created"):
        a.update(add("new_late"))
    out = publish(url, KEEP, tmp_path, bundled_config, capsys, monkeypatch)
    assert "as version 4" in out
    wait_for(lambda: a.version == 4)
    a.update(add("new_late"))


@pytest.mark.parametrize("epoch", [b"x" * 65, b"not-hex-at-all-!!", b"ABCDEF0123456789"])
def test_a_hostile_epoch_field_is_refused_and_publish_repairs(redis_server, open_store, epoch):
    a = follow(open_store("a", poll=0.05))
    a.update(add("keep_a"))
    r = redis_server.client()
    r.hset(f"{{{NS}}}:flags", mapping={"epoch": epoch, "version": 5})
    wait_for(lambda: a.errors)
    assert "epoch" in str(a.errors[0]) and a.version == 1
    with pytest.raises(ConfigError):
        a.update(add("keep_b"))
    _, new = a.update(lambda _: Snapshot(flags={"keep_b": Flag(default="on")}), force=True)
    assert new.version == 6 and new.epoch != epoch.decode()
    fresh = open_store(None)
    doc = fresh.read()
    assert doc.epoch == new.epoch and doc.forced and names(doc.snapshot) == ["keep_b"]


def test_separate_processes_flushall_reseed_refusal_and_repair(redis_server, tmp_path):
    """The same story with real processes (tests/fleet_proc.py), each with a state
    directory (cache file) of its own, as on separate machines."""
    import subprocess

    from tests.test_fleet_processes import Member, proc_env, run_proc

    def env(name: str) -> dict[str, str]:
        return proc_env(tmp_path / name)

    def run(name: str, *args: str) -> subprocess.CompletedProcess[str]:
        return run_proc(tmp_path / name, *args)

    url = redis_server.url + "?namespace=procs"  # poll 30 s: nobody polls in the window
    follower = Member("follow", url, env=env("f"))
    try:
        assert follower.line()["ready"]
        # (this writer's cache file holds its epoch when its write returns: its restart
        # below is judged against it, however soon it exits)
        assert run("w", "write", url, "0", "2").returncode == 0
        assert follower.ask("wait 2 30")["flags"] == ["w0_0", "w0_1"]
        redis_server.client().flushall()
        # a new machine (no cache file) writes before anyone noticed: versions 1 to 3
        # of a new epoch; the follower hears of version 3, newer than its 2, and looks
        assert run("new", "write", url, "9", "3").returncode == 0
        status = follower.ask("waiterr 1 30")
        assert status["errors"] >= 1 and status["version"] == 2
        assert status["enabled"] == ["w0_0", "w0_1"]  # the hot path serves them still
        late = run("w", "write", url, "0", "3")  # the old writer, restarted
        assert late.returncode != 0
        assert "re-created since this process last saw it" in late.stderr
        assert run("ops", "repair", url, "repaired").returncode == 0
        status = follower.ask("wait 4 30")
        assert status["version"] == 4 and status["flags"] == ["repaired"]
        assert run("w", "write", url, "0", "1").returncode == 0  # writes build on it
        status = follower.ask(f"wait {status['version'] + 1} 30")
        assert status["flags"] == ["repaired", "w0_0"]
    finally:
        follower.stop()


@given(raw=st.one_of(st.none(), st.binary(max_size=80), st.text(max_size=80)))
@settings(max_examples=examples(300), deadline=None)
def test_stored_epoch_takes_only_ids_cfgcore_writes(raw):
    """Whatever the epoch field holds: an id of 16 to 64 lowercase hex digits, None for
    none, or a ConfigError naming the store (refused as corrupt), never anything else."""
    try:
        epoch = stored_epoch(raw, 7, "redis://x")
    except ConfigError as exc:
        assert str(exc).startswith("redis://x: version 7: the stored epoch")
        return
    if epoch is None:
        assert raw in (None, b"", "")
    else:
        assert 16 <= len(epoch) <= 64 and set(epoch) <= set("0123456789abcdef")
        assert epoch == (raw.decode() if isinstance(raw, bytes) else raw)


def test_written_epochs_are_ids():
    assert stored_epoch(b"0123456789abcdef", 1, "x") == "0123456789abcdef"
    assert stored_epoch("f" * 64, 1, "x") == "f" * 64
    for bad in (b"0123456789abcde", "F" * 16, "g" * 16, "0" * 65, b"\xff" * 16, 5):
        with pytest.raises(ConfigError):
            stored_epoch(bad, 1, "x")
