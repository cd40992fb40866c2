"""A store URL whose user-info part has no ':' (``redis://SECRET@host``) is the password
to ``redis-cli -u``, which reads it so (redis-py sends it as a user name, and Redis
refuses it). cfgcore showed it in clear: in the refusal, ``last_error``, ``health()``,
the log, the cache file and ``cfgcore watch``. It is shown as ``***`` now, as a password
is; a user name beside ``password_file=`` (a user name for sure) is still shown. Real
redis-server."""

from __future__ import annotations

import logging

import msgspec
import pytest

from cfgcore.cli import main
from cfgcore.dynamic_config import DynamicConfigurationManager
from cfgcore.errors import ConfigError
from cfgcore.runtime.redis_store import RedisFlagStore
from cfgcore.runtime.redis_url import parse_redis_url
from tests.redis_server import RedisServer

SECRET = "hunter2-lone-secret"


@pytest.fixture
def guarded(redis_binary, tmp_path):
    server = RedisServer(str(tmp_path / "redis"), args=("--requirepass", SECRET)).start()
    yield server
    server.stop()


def test_a_refused_lone_user_info_is_never_shown(guarded, tmp_path, caplog, capsys, monkeypatch):
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    url = f"redis://{SECRET}@127.0.0.1:{guarded.port}/0?namespace=lone"
    with caplog.at_level(logging.DEBUG), pytest.raises(ConfigError) as err:
        RedisFlagStore(url).read()
    assert "credentials" in str(err.value) and "redis://***@127.0.0.1" in str(err.value)
    assert main(["watch", "--store", url, "--timeout", "0.5"]) != 0
    out = capsys.readouterr()
    assert "credentials" in out.err
    everything = [str(err.value), out.out, out.err, caplog.text]
    assert not [text for text in everything if SECRET in text]


def test_a_nopass_user_follows_and_is_shown_masked(guarded, tmp_path, caplog):
    import redis

    with redis.Redis(port=guarded.port, password=SECRET, protocol=2) as admin:
        admin.execute_command("ACL", "SETUSER", SECRET, "on", "nopass", "~*", "&*", "+@all")
    cache = tmp_path / "flags.msgpack"
    url = f"redis://{SECRET}@127.0.0.1:{guarded.port}/0?namespace=lone&cache={cache}"
    with caplog.at_level(logging.DEBUG):
        manager = DynamicConfigurationManager(store=url, log_exposures=False)
        try:
            manager.set_feature_flag("lone_flag", True)
            shown = [str(manager.health()), manager.store.url, str(manager.store.stats)]
        finally:
            manager.close()
    assert manager.store.url.startswith("redis://***@127.0.0.1")
    blob = msgspec.msgpack.decode(cache.read_bytes())
    assert blob["url"].startswith("redis://***@")
    assert not [text for text in [*shown, caplog.text, blob["url"]] if SECRET in text]


def test_a_user_name_beside_a_password_file_is_still_shown(tmp_path):
    url = f"redis://app@127.0.0.1/0?password_file={tmp_path}/pw"
    assert parse_redis_url(url).redacted().startswith("redis://app@127.0.0.1")
    assert parse_redis_url(f"redis://app:{SECRET}@h/0").redacted().startswith("redis://app:***@")
