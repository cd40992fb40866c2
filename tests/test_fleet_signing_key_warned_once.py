"""A fleet signing key file other users can read is warned about once per process, not
once per store opened: every store reads the keys, and `cfgcore publish` printed the
same WARNING three times. A file whose mode changes again is warned about again."""

from __future__ import annotations

import logging
import os

from cfgcore.cli import main
from cfgcore.runtime.signing import FleetKeys, generate_signing_pair

FLAGS = os.path.join(os.path.dirname(__file__), "..", "src", "cfgcore", "defaults", "flags.yaml")


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "readable by other users" in r.getMessage()]


def test_readable_signing_key_is_warned_about_once(tmp_path, caplog):
    signing = tmp_path / "sign.key"
    signing.write_text(generate_signing_pair("k1")[0] + "\n")
    signing.chmod(0o644)
    env = {"CFGCORE_FLEET_SIGNING_KEY_FILE": str(signing)}
    with caplog.at_level(logging.WARNING, logger="cfgcore.fleet"):
        for _ in range(3):
            assert FleetKeys.from_environ(env).signs
        assert len(_warnings(caplog)) == 1
        signing.chmod(0o640)  # still readable by others: a new state, said again
        FleetKeys.from_environ(env)
        assert len(_warnings(caplog)) == 2


def test_publish_says_it_once(redis_server, tmp_path, monkeypatch, capsys):
    signing = tmp_path / "publish.key"
    signing.write_text(generate_signing_pair("k1")[0] + "\n")
    signing.chmod(0o644)
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("CFGCORE_FLEET_SIGNING_KEY_FILE", str(signing))
    url = redis_server.url + "?namespace=warn1"
    assert main(["publish", "--store", url, "-e", "development", "--flags", FLAGS]) == 0
    err = capsys.readouterr().err
    assert err.count("readable by other users") == 1, err
