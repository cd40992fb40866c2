"""Redis restarting EMPTY (no persistence) is a lost document, not a new store: against
a real redis-server, killed and restarted, a writer that has seen a version refuses to
write to it (the change would go to the bundled demo catalog and every follower would
take it), followers keep their flags and health says why, and ``cfgcore publish``
restores it so that every process moves on. A brand-new store is still seeded."""

from __future__ import annotations

import pytest

from cfgcore.cli import main
from cfgcore.errors import ConfigError
from cfgcore.experiments.dynamic import DynamicConfigurationManager
from cfgcore.runtime.redis_store import RedisFlagStore
from tests.redis_server import wait_for

KEEP = ["keep_a", "keep_b"]


def kept(manager) -> list[str]:
    return sorted(k for k in manager.snapshot.flags if k.startswith("keep"))


@pytest.fixture
def managers(redis_server, tmp_path):
    """``open_(name)``: a manager on the test's store, with its own cache file (as a
    process on its own machine would have); all closed afterwards."""
    opened: list[DynamicConfigurationManager] = []
    base = redis_server.url + "?namespace=wipe&poll=0.05"

    def open_(name: str) -> DynamicConfigurationManager:
        url = base + f"&cache={tmp_path / (name + '.msgpack')}"
        m = DynamicConfigurationManager(store=url, log_exposures=False)
        opened.append(m)
        return m

    yield open_
    for m in opened:
        m.close()


@pytest.fixture
def follower(redis_server, tmp_path):
    """Another process's follower (managers in one process share one store): its own
    connection and cache file; ``errors`` collects what it reports."""
    url = redis_server.url + f"?namespace=wipe&poll=0.05&cache={tmp_path / 'f.msgpack'}"
    store = RedisFlagStore(url)
    store.read()
    store.errors = []  # type: ignore[attr-defined]
    store.docs = []  # type: ignore[attr-defined]
    store.watch(store.docs.append, on_error=store.errors.append)  # type: ignore[attr-defined]
    yield store
    store.close()


def restart_empty(redis_server) -> None:
    redis_server.kill()
    redis_server.start()  # --save "" --appendonly no: it comes back with nothing
    # The document is gone. (Not dbsize() == 0: a follower reconnecting first may
    # already have raised the floor keys, as it should.)
    assert not redis_server.client().exists("{wipe}:flags")


def lost_reason(manager) -> str:
    reasons = manager.health().reasons
    return next((r for r in reasons if "lost its flag document" in r), "")


def test_a_writer_that_saw_a_version_refuses_a_store_that_came_back_empty(
    redis_server, managers, follower
):
    a = managers("a")
    for name in KEEP:
        a.set_feature_flag(name, True)
    wait_for(lambda: follower.version == 2)
    restart_empty(redis_server)

    with pytest.raises(ConfigError) as err:
        a.set_feature_flag("new_c", True)
    msg = str(err.value)
    assert "lost its flag document" in msg and "version 2 was seen" in msg
    assert "cfgcore publish --store" in msg and "--flags FILE" in msg
    # nothing was written: the store is still empty, apart from the fleet's floor
    r = redis_server.client()
    assert not r.exists("{wipe}:flags") and int(r.get("{wipe}:flags:floor")) == 2

    # both keep serving their flags and say why (health, last_error, on_error once)
    wait_for(lambda: lost_reason(a))
    assert kept(a) == KEEP and a.store.version == 2 and "new_c" not in a.snapshot.flags
    wait_for(lambda: follower.errors)
    assert len(follower.errors) == 1 and "lost its flag document" in str(follower.errors[0])
    assert follower.version == 2 and follower.stats["backwards"] == 1
    assert "lost its flag document" in follower.last_error

    # a writer that has seen nothing itself (its cache-less peer) is refused too: the
    # store remembers that it lost a document
    with RedisFlagStore(redis_server.url + "?namespace=wipe&cache=off") as fresh:
        with pytest.raises(ConfigError, match="version 2 was seen"):
            fresh.update(lambda s: s)
        # ... and a process starting now serves nothing chosen by nobody
        with pytest.raises(ConfigError, match="lost its flag document.*no cache file"):
            fresh.read()
    assert not r.exists("{wipe}:flags")


def test_a_process_starting_on_the_emptied_store_serves_its_cache_file(redis_server, managers):
    a = managers("a")
    for name in KEEP:
        a.set_feature_flag(name, True)
    wait_for(lambda: a.store._cached == 2)  # the follower cached what it serves
    restart_empty(redis_server)
    a.close()
    again = managers("a")  # a restarted process: same cache file, empty Redis
    assert kept(again) == KEEP and again.store.version == 2
    wait_for(lambda: lost_reason(again))
    with pytest.raises(ConfigError, match="lost its flag document"):
        again.set_feature_flag("new_c", True)


def test_a_brand_new_store_still_starts_from_the_seed(redis_server, managers):
    a = managers("a")
    bundled = set(a.snapshot.flags)
    assert bundled and a.store.version == 0
    a.set_feature_flag("new_c", True)
    assert a.store.version == 1 and set(a.snapshot.flags) == bundled | {"new_c"}
    assert not redis_server.client().exists("{wipe}:flags:floor")
    assert not lost_reason(a)


def test_republishing_restores_the_store_and_normal_writes(
    redis_server, managers, follower, bundled_config, tmp_path, capsys, monkeypatch
):
    a = managers("a")
    for name in KEEP:
        a.set_feature_flag(name, True)
    wait_for(lambda: follower.version == 2)
    restart_empty(redis_server)
    wait_for(lambda: follower.errors)  # it noticed: the fleet's floor is 2

    flags = tmp_path / "restore.yaml"
    flags.write_text("flags:\n" + "".join(f"  {n}:\n    default: on\n" for n in KEEP))
    monkeypatch.setenv("JWT_SIGNING_KEY", "sup3r-s3cret-signing-key-0123456789abcdef")
    url = redis_server.url + "?namespace=wipe&cache=off"
    code = main(["publish", "--store", url, "--config-dir", str(bundled_config),
                 "--flags", str(flags), "--actor", "oncall"])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "published 2 flags as version 3" in out  # above every version served

    # version 3 is newer than the 2 they hold: both take it, and health is clear again
    wait_for(lambda: a.store.version == 3 and not lost_reason(a))
    assert kept(a) == KEEP and len(a.snapshot.flags) == 2
    wait_for(lambda: follower.version == 3)
    assert sorted(follower.docs[-1].snapshot.flags) == KEEP
    a.set_feature_flag("new_c", True)
    wait_for(lambda: follower.version == 4)
    assert sorted(follower.docs[-1].snapshot.flags) == [*KEEP, "new_c"]
