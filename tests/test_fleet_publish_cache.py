"""A ``cfgcore publish`` leaves what it published in its host's cache files when it
returns, as a flag write does (tests/test_fleet_writer_cache.py).

A published configuration used to reach a cache file only through a follower of that
environment (``config_source=``), so a publisher, which exits as soon as the publish
returns, kept nothing: its next run, and any process starting on its host, did not
know the version it had published. The cache file is the high-water mark at start
(docs/fleet.md, "Replayed documents"): an older configuration put back in Redis
afterwards was numbered over by the next publish (which followers serving the newer
one then refused) and served by a process starting on the host. The configuration
(and, with ``--flags``, the flag document) is now cached after the checks a follower
makes before it builds from it (checksum, signature against the publisher's own keys,
decoding, the dates and times read back); ``cache=off`` writes nothing. Real
redis-server; the publisher is a real ``cfgcore publish`` process that exits at once.
"""

from __future__ import annotations

import glob
import logging
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

from cfgcore.config.manager import ConfigurationManager
from cfgcore.errors import ConfigError
from cfgcore.runtime.redis_store import PublishedConfig, RedisConfigStore
from cfgcore.runtime.signing import FleetKeys, generate_signing_pair
from tests.test_fleet_processes import proc_env

NS = "pcache"
ENV = "development"
CKEY = "{" + NS + "}:config:" + ENV
FKEY = "{" + NS + "}:flags"
FLAGS = '{"flags": {"published": {"default": "on"}}}'


@pytest.fixture
def url(redis_server):
    return redis_server.url + f"?namespace={NS}&poll=30"


@pytest.fixture
def config_dir(tmp_path):
    d = tmp_path / "config"
    d.mkdir()
    (d / "base.yaml").write_text("app:\n  name: svc-one\n")
    (d / "development.yaml").write_text("app:\n  debug: true\n")
    return d


def marked(config_dir: Path, marker: str) -> None:
    (config_dir / "base.yaml").write_text(f"app:\n  name: svc-{marker}\n")


def publish(state_dir, url: str, config_dir, *extra: str) -> subprocess.CompletedProcess[str]:
    """``cfgcore publish`` in a process of its own, with ``state_dir`` as its state
    directory (a machine of its own); it exits as the publish returns."""
    done = subprocess.run(
        [sys.executable, "-m", "cfgcore", "publish", "--store", url,
         "--config-dir", str(config_dir), "-e", ENV, *extra],
        env=proc_env(state_dir), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done


def cache_file(state_dir, document: str) -> Path:
    (path,) = glob.glob(str(Path(state_dir) / "fleet" / f"{NS}-{document}-*.msgpack"))
    return Path(path)


def blob(path) -> dict:
    return msgspec.msgpack.decode(Path(path).read_bytes())


def stored(redis_server, key: str) -> dict:
    return {k.decode(): v for k, v in redis_server.client().hgetall(key).items()}


def same(cached: dict, doc: dict) -> None:
    """The cache file holds exactly the stored document: version, checksum, epoch, data."""
    assert cached["version"] == int(doc["version"])
    assert cached["checksum"] == doc["checksum"].decode()
    assert cached["epoch"] == doc["epoch"].decode() and cached["forced"] is True
    assert cached["data"] == doc["data"]


@pytest.mark.parametrize("flags", [False, True], ids=["config", "with-flags"])
def test_a_publish_that_exits_at_once_leaves_what_it_published_in_its_cache_files(
    redis_server, url, config_dir, tmp_path, flags
):
    state = tmp_path / "publisher"
    extra: tuple[str, ...] = ()
    if flags:
        (tmp_path / "flags.json").write_text(FLAGS)
        extra = ("--flags", str(tmp_path / "flags.json"))
    for version in (1, 2):
        done = publish(state, url, config_dir, *extra)
        assert f"published {ENV} as version {version}" in done.stdout
        cached = blob(cache_file(state, f"config:{ENV}"))
        assert cached["document"] == f"config:{ENV}"
        same(cached, stored(redis_server, CKEY))
    if flags:
        same(blob(cache_file(state, "flags")), stored(redis_server, FKEY))


def test_cache_off_leaves_no_cache_file(redis_server, url, config_dir, tmp_path):
    (tmp_path / "flags.json").write_text(FLAGS)
    state = tmp_path / "publisher"
    publish(state, url + "&cache=off", config_dir)
    publish(state, url + "&cache=off", config_dir, "--flags", str(tmp_path / "flags.json"))
    assert stored(redis_server, CKEY)["version"] == b"2"
    assert glob.glob(str(state / "fleet" / "*.msgpack")) == []


def _replayed_over_two(redis_server, url, config_dir, tmp_path):
    """Publish versions 1 and 2 from one host (its state directory, returned), then put
    version 1 back in Redis exactly as it was written: a replay no follower noticed."""
    state = tmp_path / "publisher"
    publish(state, url, config_dir)
    old = stored(redis_server, CKEY)
    marked(config_dir, "two")
    publish(state, url, config_dir)
    r = redis_server.client()
    r.delete(CKEY)
    r.hset(CKEY, mapping=old)  # the older document, exactly as written
    return state


def test_the_next_publish_is_numbered_above_an_older_configuration_put_back(
    redis_server, url, config_dir, tmp_path
):
    """Version 1's fields put back whole after version 2 was published (writes lost in
    a failover, or a replay by someone who can write Redis), before any follower
    noticed (none raised the floor yet): the publisher's next run knows it published
    version 2 and numbers above it. It numbered 2 before, under which the followers
    serving the earlier version 2 refused it (older than, or another document under,
    what they serve)."""
    state = _replayed_over_two(redis_server, url, config_dir, tmp_path)
    marked(config_dir, "three")
    done = publish(state, url, config_dir)
    assert f"published {ENV} as version 3" in done.stdout


def test_a_process_starting_on_the_publishers_host_refuses_an_older_configuration(
    redis_server, url, config_dir, tmp_path, monkeypatch
):
    """The publisher's host (its state directory) starts a follower after version 1
    was put back over version 2: the cache file the publish left is the high-water
    mark, so the follower serves version 2 (the published name), not the replay,
    and raises the floor so the next write is numbered above it."""
    state = _replayed_over_two(redis_server, url, config_dir, tmp_path)
    r = redis_server.client()
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(state))
    follower = ConfigurationManager(config_source=url, environment=ENV, environ={})
    try:
        follower.load_environment_config()
        assert follower.get("app.name") == "svc-two"
        store = follower._published.store(ENV)
        # (an older publish began another epoch: refused as of another epoch, at or
        # below the version the cache file holds)
        # (the start's read or, once it polled, the follower: both name the two versions)
        assert "holds version 1" in store.last_error
        assert "the version 2 this process serves" in store.last_error
    finally:
        follower.close()
    assert int(r.get(CKEY + ":floor")) == 2
    # (without the cache file, the replay was served: the residual risk fleet.md states)
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "elsewhere"))
    r.delete(CKEY + ":floor", CKEY + ":floor:epoch")
    with RedisConfigStore(url, ENV) as fresh:
        assert fresh.read().version == 1


REFUSED = {
    "date": {"app": {"name": "svc"}, "when": msgspec.msgpack.Ext(9, b"x")},
    "invalid": {"app": {"name": "svc", "debug": "maybe"}},
    "variable": {"app": {"name": "${PCACHE_UNSET}"}},
}


@pytest.mark.parametrize("why", sorted(REFUSED))
def test_a_configuration_a_follower_would_refuse_is_written_not_cached(
    redis_server, url, tmp_path, monkeypatch, caplog, why
):
    """Written through the API (the store itself does not validate), as before, and
    refused by a follower of the host (a date value it cannot read back, a value that
    does not validate, a reference to a variable it lacks): never the cache file's,
    which a process of the host would serve when Redis is unreachable at its start."""
    state = tmp_path / "state"
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(state))
    monkeypatch.delenv("PCACHE_UNSET", raising=False)
    bad = PublishedConfig(environment=ENV, config=REFUSED[why])
    with (
        caplog.at_level(logging.WARNING, logger="cfgcore.fleet"),
        RedisConfigStore(url, ENV) as store,
    ):
        _, new = store.update(lambda _: bad, force=True)
    assert new.version == 1 and glob.glob(str(state / "fleet" / "*.msgpack")) == []
    assert "would be refused by its own follower" in caplog.text
    follower = ConfigurationManager(config_source=url, environment=ENV, environ={})
    try:
        with pytest.raises(ConfigError):  # the premise: the follower refuses it
            follower.load_environment_config()
    finally:
        follower.close()
    good = PublishedConfig(environment=ENV, config={"app": {"name": "svc"}})
    with RedisConfigStore(url, ENV) as store:
        store.update(lambda _: good, force=True)
    assert blob(cache_file(state, f"config:{ENV}"))["version"] == 2


def test_references_resolve_from_the_publishers_environment(
    redis_server, url, config_dir, tmp_path, monkeypatch
):
    """A reference is resolved as the publish resolved it (``environ=``; the CLI's
    includes a ``.env`` file beside its configuration directory) when the write is
    checked before it is cached."""
    (config_dir / "development.yaml").write_text("app:\n  name: ${PCACHE_NAME}\n")
    (tmp_path / ".env").write_text("PCACHE_NAME=from-dotenv\n")  # (beside config_dir)
    state = tmp_path / "publisher"
    publish(state, url, config_dir)
    assert blob(cache_file(state, f"config:{ENV}"))["version"] == 1
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "api"))
    doc = PublishedConfig(environment=ENV, config={"app": {"name": "${PCACHE_NAME}"}})
    with RedisConfigStore(url, ENV, environ={"PCACHE_NAME": "given"}) as store:
        store.update(lambda _: doc, force=True)
    assert blob(cache_file(tmp_path / "api", f"config:{ENV}"))["version"] == 2


def test_a_signature_its_own_keys_refuse_is_written_not_cached(redis_server, url, tmp_path):
    """A signing key whose id the publisher's verification keys give to another key:
    every follower that checks refuses what it signs. Written (as before), not cached."""
    cache = tmp_path / "c.msgpack"
    ccache = tmp_path / f"c.config:{ENV}.msgpack"  # (the configuration's, beside it)
    good = PublishedConfig(environment=ENV, config={"app": {"name": "svc"}})
    mine, other = generate_signing_pair("k1"), generate_signing_pair("k1")
    with RedisConfigStore(url + f"&cache={cache}", ENV, keys=FleetKeys(mine[0], [other[1]])) as s:
        _, new = s.update(lambda _: good, force=True)
        assert new.version == 1 and not ccache.exists()
    with RedisConfigStore(url + f"&cache={cache}", ENV, keys=FleetKeys(mine[0])) as s:
        s.update(lambda _: good, force=True)
        assert blob(ccache)["version"] == 2
