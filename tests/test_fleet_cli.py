"""``cfgcore publish`` and ``cfgcore watch --store`` against a real redis-server."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import msgspec

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
            lambda s, n=name: msgspec.structs.replace(s, flags={**s.flags, n: Flag()}),
            actor="alice",
        )
        wait_for(lambda i=i: printed(f"v{i + 2} alice@"), timeout=20)
    t.join(30)
    writer.close()
    assert done == [0]
    assert len(out) == 2
    assert "v2 alice@" in out[0] and out[0].endswith("dark_mode")
    assert "v3 alice@" in out[1] and out[1].endswith("lossless_audio")
