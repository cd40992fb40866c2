"""An actor name holding a lone surrogate (``--actor`` with bytes that are not UTF-8,
as the command line hands them over) is recorded as its escape, as the audit log shows
it: a write to the Redis store failed with a UnicodeEncodeError (its MessagePack writer
record could not encode it) instead of being made. Real redis-server, real CLI."""

from __future__ import annotations

from cfgcore.cli import main
from cfgcore.runtime.flagstore import FileFlagStore, writer_identity
from cfgcore.runtime.redis_store import RedisFlagStore
from cfgcore.snapshot import Flag, Snapshot


def _flags(s: Snapshot) -> Snapshot:
    return Snapshot(flags={**s.flags, "x": Flag(variants={"on": True, "off": False},
                                                default="on")})  # fmt: skip


def test_a_redis_write_by_such_an_actor_is_made(redis_server):
    url = redis_server.url + "?namespace=actor&cache=off"
    with RedisFlagStore(url) as store:
        _, new = store.update(_flags, actor="ops-\udcff")
    with RedisFlagStore(url) as store:
        doc = store.read()
    assert doc.version == new.version == 1
    assert doc.writer["actor"] == "ops-\\udcff"


def test_a_file_write_records_the_same_text(tmp_path):
    (tmp_path / "flags.json").write_text('{"flags": {}}')
    store = FileFlagStore(tmp_path / "flags.json")
    _, new = store.update(_flags, actor="ops-\udcff")
    assert new.writer["actor"] == store.read().writer["actor"] == "ops-\\udcff"


def test_an_ordinary_actor_is_unchanged():
    assert writer_identity("oncall@host-é")["actor"] == "oncall@host-é"


def test_publish_with_such_an_actor_exits_0(
    redis_server, tmp_path, bundled_config, capsys, monkeypatch
):
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("JWT_SIGNING_KEY", "sup3r-s3cret-signing-key-0123456789abcdef")
    flags = tmp_path / "flags.json"
    flags.write_text('{"flags": {"one": {"default": "on"}}}')
    url = redis_server.url + "?namespace=pubactor&cache=off"
    code = main(["publish", "--store", url, "--config-dir", str(bundled_config),
                 "--flags", str(flags), "--actor", "ci-\udcff"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    with RedisFlagStore(url) as store:
        assert store.read().writer["actor"] == "ci-\\udcff"


def test_an_environment_name_holding_a_lone_surrogate_is_a_clear_error(redis_server):
    import pytest

    from cfgcore.errors import ConfigError
    from cfgcore.runtime.redis_store import RedisConfigStore

    with pytest.raises(ConfigError, match="not valid text"):
        RedisConfigStore(redis_server.url + "?namespace=env&cache=off", "prod-\udcff")
