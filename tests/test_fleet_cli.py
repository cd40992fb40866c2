"""``cfgcore publish`` and ``cfgcore watch --store`` against a real redis-server."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import msgspec
import pytest

import cfgcore
from cfgcore.cli import main
from cfgcore.runtime.redis_store import RedisConfigStore, RedisFlagStore
from cfgcore.snapshot import Flag
from tests.redis_server import wait_for

SRC = os.path.dirname(os.path.dirname(os.path.abspath(cfgcore.__file__)))


def _config_dir(tmp_path):
    target = tmp_path / "config"
    out = subprocess.run(
        [sys.executable, "-m", "cfgcore.setup", "--all-environments", "-o", str(target)],
        env=dict(os.environ, PYTHONPATH=SRC),
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    return target


def test_publish_validates_then_writes_config_and_flags(
    redis_server, tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("JWT_SIGNING_KEY", "sup3r-s3cret-signing-key-0123456789abcdef")
    config = _config_dir(tmp_path)
    url = redis_server.url + "?namespace=pub&cache=off"
    code = main(["publish", "--store", url, "--config-dir", str(config), "-e", "staging",
                 "--flags", "--actor", "ci"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    with RedisConfigStore(url, "staging") as store:
        doc = store.read()
    assert doc.version == 1 and doc.writer["actor"] == "ci"
    assert doc.snapshot.environment == "staging" and doc.snapshot.config
    assert doc.snapshot.flags is not None and doc.snapshot.flags.flags
    with RedisFlagStore(url) as flags:
        assert set(flags.read().snapshot.flags) == set(doc.snapshot.flags.flags)
    # secrets stay on the machine that has them: the reference is published instead
    assert b"sup3r-s3cret" not in doc.data
    assert b"${JWT_SIGNING_KEY" in doc.data


def test_publish_refuses_an_invalid_configuration_and_writes_nothing(
    redis_server, tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    config = _config_dir(tmp_path)
    staging = config / "staging.yaml"
    staging.write_text(staging.read_text() + "\nmusic_streaming:\n  audio_quality: 12\n")
    url = redis_server.url + "?namespace=bad&cache=off"
    code = main(["publish", "--store", url, "--config-dir", str(config), "-e", "staging"])
    assert code == 1
    assert "staging.yaml" in capsys.readouterr().err
    assert redis_server.client().keys("{bad}:*") == []


def test_watch_store_prints_each_version_and_its_writer(redis_server, capsys):
    url = redis_server.url + "?namespace=w&cache=off"
    writer = RedisFlagStore(url)
    writer.update(lambda s: s)
    done: list[int] = []
    t = threading.Thread(
        target=lambda: done.append(
            main(["watch", "--store", url, "--count", "2", "--timeout", "20"])
        )
    )
    t.start()
    out: list[str] = []

    def printed(text: str) -> bool:
        captured = capsys.readouterr()
        out.extend(captured.out.splitlines())
        return text in captured.err or any(text in line for line in out)

    wait_for(lambda: printed("version 1"), timeout=20)
    # one write at a time: a follower that finds several new versions at once serves
    # (and prints) only the newest
    for i, name in enumerate(("dark_mode", "lossless_audio")):
        writer.update(
            lambda s, n=name: msgspec.structs.replace(s, flags={**s.flags, n: Flag(default="on")}),
            actor="alice",
        )
        wait_for(lambda i=i: printed(f"v{i + 2} alice@"), timeout=20)
    t.join(30)
    writer.close()
    assert done == [0]
    assert len(out) == 2
    assert "v2 alice@" in out[0] and out[0].endswith("dark_mode")
    assert "v3 alice@" in out[1] and out[1].endswith("lossless_audio")


def test_a_manager_follows_published_configuration(redis_server, tmp_path, monkeypatch):
    from cfgcore.config.manager import ConfigurationManager
    from cfgcore.runtime.redis_store import PublishedConfig

    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("JWT_SIGNING_KEY", "local-secret-0123456789abcdef0123456789")
    config = _config_dir(tmp_path)
    url = redis_server.url + "?namespace=follow&poll=0.2"
    publish = ["publish", "--store", url, "--config-dir", str(config), "-e", "staging"]
    assert main(publish) == 0
    manager = ConfigurationManager(config_source=url, environment="staging")
    try:
        manager.load_environment_config()
        key = "music_streaming.streaming.prefetch_tracks"
        assert manager.get(key) == 2
        # the reference was published; the secret comes from this machine's environment
        assert "local-secret" in str(manager.get("security.jwt.signing_key", ""))
        events: list = []
        manager.register_change_listener(events.append)
        base = config / "base.yaml"
        base.write_text(base.read_text().replace("prefetch_tracks: 2", "prefetch_tracks: 3"))
        assert main(publish) == 0
        wait_for(lambda: manager.get(key) == 3)
        # listeners of a followed version run on the bus's dispatcher thread
        assert wait_for(lambda: any(e.config_path == key for e in events))
        change = next(e for e in events if e.config_path == key)
        assert (change.old_value, change.new_value, change.source) == (2, 3, "redis")
        # a published tree that does not validate is refused; the last good one serves
        with RedisConfigStore(url, "staging") as store:
            tree = msgspec.to_builtins(store.read().snapshot.config)
            tree["music_streaming"]["audio_quality"]["bitrates"]["premium"] = "high"
            store.update(lambda _: PublishedConfig(environment="staging", config=tree))
        wait_for(lambda: any(e.is_error for e in events))
        assert manager.get("music_streaming.audio_quality.bitrates.premium") == 320
        manager.update_config(key, 4)  # a rebuild starts from the last good tree
        assert manager.get("music_streaming.audio_quality.bitrates.premium") == 320
    finally:
        manager.close()
    # Redis down at start: the last followed configuration serves
    redis_server.kill()
    offline = ConfigurationManager(config_source=url, environment="staging")
    try:
        offline.load_environment_config()
        assert offline.get(key) == 3
    finally:
        offline.close()


@pytest.mark.parametrize(
    "writer, shown",
    [
        ({"actor": "root@vm", "host": "vm", "pid": 7}, "root@vm pid 7"),  # resolve_actor's form
        ({"actor": "deploy-bot", "host": "vm", "pid": 7}, "deploy-bot@vm pid 7"),
        ({"actor": "ana@laptop", "host": "ci-3", "pid": 9}, "ana@laptop@ci-3 pid 9"),
        ({}, "unknown writer"),
    ],
)
def test_watch_names_the_writer_once(writer, shown):
    from cfgcore.cli.fleet import _who

    assert _who(writer) == shown
