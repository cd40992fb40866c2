"""``cfgcore publish --flags-from-cache CACHE_FILE``: after Redis lost its data, restore
the fleet's last flag document exactly (its flags, segments and experiment records) from
the cache file of a process that served it, against a real redis-server."""

from __future__ import annotations

import msgspec
import pytest

from cfgcore.cli import main
from cfgcore.errors import ConfigError
from cfgcore.runtime.redis_store import RedisFlagStore
from cfgcore.snapshot import Flag, Snapshot
from tests.redis_server import wait_for

NS = "restore"
EXPERIMENT = {"recommendation_algorithm_v2": {"traffic_split": {"control": 50, "v2": 50}}}


@pytest.fixture
def url(redis_server):
    return redis_server.url + f"?namespace={NS}"


@pytest.fixture
def served(url, tmp_path):
    """A process that served versions 1-2 (flags, a segment, an experiment record) and
    wrote them to its cache file; closed afterwards."""
    cache = tmp_path / "a.msgpack"
    a = RedisFlagStore(url + f"&cache={cache}")
    a.read()
    a.watch(lambda doc: None)  # a follower writes the cache file of what it serves
    a.update(lambda s: Snapshot(flags={"keep_a": Flag(default="on")}))
    a.update(
        lambda s: Snapshot(
            flags={**s.flags, "keep_b": Flag(default="off")},
            segments={"eu": {"attr": "region", "eq": "EU"}},
            experiments=EXPERIMENT,
        )
    )
    wait_for(lambda: a._cached == 2)
    yield a, cache
    a.close()


def _publish(url, bundled_config, monkeypatch, *extra: str) -> int:
    monkeypatch.setenv("JWT_SIGNING_KEY", "sup3r-s3cret-signing-key-0123456789abcdef")
    return main(["publish", "--store", url + "&cache=off", "--config-dir", str(bundled_config),
                 "--actor", "oncall", *extra])  # fmt: skip


def test_restores_the_served_document_after_flushall(
    redis_server, url, served, bundled_config, capsys, monkeypatch
):
    a, cache = served
    before = a.read().snapshot
    redis_server.client().flushall()
    b = RedisFlagStore(url + "&cache=off")  # a new process reseeds the empty store
    try:
        b.update(lambda s: Snapshot(flags={"b_new": Flag(default="on")}))
        with pytest.raises(ConfigError, match="re-created"):
            a.update(lambda s: s)
        code = _publish(url, bundled_config, monkeypatch, "--flags-from-cache", str(cache))
        out, err = capsys.readouterr()
        assert code == 0, err
        assert "restoring version 2" in out and str(cache) in out
        doc = b.read()
        # exactly the served document: flags, segments and experiment records
        assert msgspec.structs.asdict(doc.snapshot) == msgspec.structs.asdict(before)
        assert doc.forced and doc.version > 2
        # the old writer builds on it again
        _, new = a.update(lambda s: Snapshot(**{**msgspec.structs.asdict(s), "version": 1}))
        assert new.version == doc.version + 1 and new.snapshot.experiments == EXPERIMENT
    finally:
        b.close()


def test_a_tampered_cache_file_is_refused_and_nothing_is_written(
    redis_server, url, served, bundled_config, capsys, monkeypatch
):
    _, cache = served
    blob = msgspec.msgpack.decode(cache.read_bytes())
    blob["data"] = blob["data"].replace(b"keep_b", b"evil_b")
    # Put in place whole (a rename), as any file: the write caches version 2 as it
    # returns, and the follower may still be caching version 1 (it finds the file
    # newer and leaves it; one it found half-written, it would write over).
    tampered = cache.with_suffix(".tampered")
    tampered.write_bytes(msgspec.msgpack.encode(blob))
    tampered.replace(cache)
    redis_server.client().flushall()
    code = _publish(url, bundled_config, monkeypatch, "--flags-from-cache", str(cache))
    err = capsys.readouterr().err
    assert code == 1 and "checksum mismatch" in err and str(cache) in err
    assert redis_server.client().keys(f"{{{NS}}}:*") == []  # not even the configuration


@pytest.mark.parametrize("problem", ["missing", "not-msgpack", "both"])
def test_unusable_arguments_write_nothing(
    redis_server, url, tmp_path, bundled_config, capsys, monkeypatch, problem
):
    path = tmp_path / "cache.msgpack"
    extra = ["--flags-from-cache", str(path)]
    if problem == "not-msgpack":
        path.write_text("flags: {}\n")
    elif problem == "both":
        path.write_bytes(msgspec.msgpack.encode({}))
        extra.append("--flags")
    code = _publish(url, bundled_config, monkeypatch, *extra)
    err = capsys.readouterr().err
    assert code == 1
    expected = {"missing": "no such cache file", "not-msgpack": "unreadable cache file",
                "both": "give one flag document"}[problem]  # fmt: skip
    assert expected in err
    assert redis_server.client().keys(f"{{{NS}}}:*") == []
