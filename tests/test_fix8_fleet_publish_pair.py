"""``cfgcore publish --flags`` writes the configuration and its flags as one pair.

The configuration (``{NS}:config:ENV``) and the flag document (``{NS}:flags``) were
two separate writes: two publishes at once could leave the store (and so every
follower) with one publish's configuration beside the other's flags. Now one script
writes both; a publish overtaken between reading the stored flags and writing judges its
flags again against the winner's and is then written whole. Real redis-server, real
publisher processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import msgspec

import cfgcore
from cfgcore.errors import ConfigError
from cfgcore.runtime.redis_store import PublishedConfig, RedisConfigStore, RedisFlagStore
from cfgcore.snapshot import Flag, Snapshot

SRC = os.path.dirname(os.path.dirname(os.path.abspath(cfgcore.__file__)))
ROUNDS = 12

# One process publishing ROUNDS times in a row (in-process CLI: a process start per
# publish would make the runs too slow to overlap much).
_PUBLISHER = """
import sys
from cfgcore.cli import main
url, config, flags, name = sys.argv[1:5]
for i in range({rounds}):
    code = main(["-q", "publish", "--store", url, "--config-dir", config, "-e",
                 "development", "--flags", flags, "--actor", name])
    if code != 0:
        sys.exit(code)
"""


def _flags_file(tmp_path, name: str) -> str:
    path = tmp_path / f"{name}.json"
    flags = {f"{name}_{i}": {"variants": {"on": True, "off": False}, "default": "on"}
             for i in range(20)}  # fmt: skip
    path.write_text(json.dumps({"flags": flags}))
    return str(path)


def _pair(client, ns: str) -> tuple[set[str], set[str]] | None:
    """The flag keys the stored configuration was published with and those of the
    stored flag document, read in one transaction (None before the first publish)."""
    pipe = client.pipeline(transaction=True)
    pipe.hget(f"{{{ns}}}:config:development", "data")
    pipe.hget(f"{{{ns}}}:flags", "data")
    config, flags = pipe.execute()
    if config is None or flags is None:
        return None
    published = msgspec.msgpack.decode(config, type=PublishedConfig)
    stored = msgspec.msgpack.decode(flags)
    assert published.flags is not None
    return set(published.flags.flags), set(stored["flags"])


def test_concurrent_publishes_never_pair_one_configuration_with_other_flags(
    redis_server, tmp_path, bundled_config
):
    ns = "pair"
    url = redis_server.url + f"?namespace={ns}&cache=off"
    env = dict(
        os.environ,
        PYTHONPATH=SRC,
        CFGCORE_STATE_DIR=str(tmp_path / "state"),
        JWT_SIGNING_KEY="sup3r-s3cret-signing-key-0123456789abcdef",
    )
    script = _PUBLISHER.format(rounds=ROUNDS)
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                script,
                url,
                str(bundled_config),
                _flags_file(tmp_path, name),
                name,
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for name in ("alpha", "beta")
    ]
    client = redis_server.client()
    mismatches: list[tuple[set[str], set[str]]] = []
    reads = 0
    stop = threading.Event()

    def watch() -> None:
        nonlocal reads
        while not stop.is_set():
            pair = _pair(client, ns)
            if pair is not None:
                reads += 1
                if pair[0] != pair[1]:
                    mismatches.append(pair)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        outputs = [p.communicate(timeout=240) for p in procs]
    finally:
        stop.set()
        watcher.join(10)
    for p, (_, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err
    final = _pair(client, ns)
    assert final is not None and reads > 0
    assert final[0] == final[1]
    assert not mismatches, f"{len(mismatches)} of {reads} reads saw a mixed pair"
    # Every publish went out (none lost, none refused): 2 x ROUNDS versions of each.
    with RedisConfigStore(url, "development") as cstore, RedisFlagStore(url) as fstore:
        assert cstore.read().version == 2 * ROUNDS
        assert fstore.read().version == 2 * ROUNDS


def _flag() -> Flag:
    return Flag(variants={"on": True, "off": False}, default="on")


def test_a_publish_overtaken_after_judging_judges_again_against_the_winner(redis_server):
    """Another write lands between the publisher's read of the stored flags and its
    write: the pair is not written over it unjudged; the change runs again on the
    newer document, and the pair then goes out whole."""
    url = redis_server.url + "?namespace=overtaken&cache=off"
    seen: list[set[str]] = []
    with RedisConfigStore(url, "development") as cstore, RedisFlagStore(url) as fstore:
        fstore.update(lambda s: Snapshot(flags={"first": _flag()}))

        def change(stored: Snapshot) -> Snapshot:
            seen.append(set(stored.flags))
            if len(seen) == 1:  # a concurrent writer gets in after this read
                with RedisFlagStore(url) as other:
                    other.update(lambda s: Snapshot(flags={**s.flags, "second": _flag()}))
            return Snapshot(flags={"published": _flag()})

        doc = PublishedConfig(environment="development", config={"a": 1},
                              flags=Snapshot(flags={"published": _flag()}))  # fmt: skip
        cnew, fnew = cstore.publish_with_flags(doc, fstore, change)
        assert seen == [{"first"}, {"first", "second"}]
        assert fstore.stats["conflicts"] == 1
    with RedisConfigStore(url, "development") as cstore, RedisFlagStore(url) as fstore:
        c, f = cstore.read(), fstore.read()
    assert (c.version, f.version) == (cnew.version, fnew.version) == (1, 3)
    assert set(f.snapshot.flags) == {"published"} and c.snapshot.config == {"a": 1}
    assert f.forced and c.forced and f.epoch != c.epoch


def test_a_refused_judgement_writes_neither(redis_server):
    url = redis_server.url + "?namespace=refused&cache=off"
    with RedisConfigStore(url, "development") as cstore, RedisFlagStore(url) as fstore:
        doc = PublishedConfig(environment="development", config={"a": 1})

        def refuse(stored: Snapshot) -> Snapshot:
            raise ConfigError("no")

        try:
            cstore.publish_with_flags(doc, fstore, refuse)
        except ConfigError as exc:
            assert "no" in str(exc)
        else:
            raise AssertionError("the refused publish was written")
    assert redis_server.client().keys("{refused}:*") == []


def test_the_pair_repairs_a_key_of_another_type(redis_server):
    """Forced writes both, as before: a flag key another program replaced with a string
    is replaced (the judgement sees an empty document)."""
    url = redis_server.url + "?namespace=other&cache=off"
    redis_server.client().set("{other}:flags", "junk")
    with RedisConfigStore(url, "development") as cstore, RedisFlagStore(url) as fstore:
        doc = PublishedConfig(environment="development", config={"a": 1})
        _, fnew = cstore.publish_with_flags(
            doc, fstore, lambda s: Snapshot(flags={**s.flags, "x": _flag()})
        )
    with RedisFlagStore(url) as fstore:
        assert set(fstore.read().snapshot.flags) == {"x"}
        assert fstore.read().version == fnew.version == 1
