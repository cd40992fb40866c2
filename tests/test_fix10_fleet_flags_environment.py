"""A namespace has one flag document: ``publish --flags`` for another environment than
the one it was published for is refused.

The configuration is kept per environment (``{NS}:config:ENV``) but the flags are not
(``{NS}:flags``): publishing staging's flags replaced them for every production process
of the namespace, silently. The flag document now records the environment it was
published for, and the publish script refuses another one (nothing written) unless the
publisher moves the namespace's flags on purpose. A document published before the record
(an earlier release) is recorded by its next publish, whichever environment. Real
redis-server."""

from __future__ import annotations

import pytest

from cfgcore.cli import main
from cfgcore.runtime.redis_store import (
    FlagsEnvironmentError,
    PublishedConfig,
    RedisConfigStore,
    RedisFlagStore,
)
from cfgcore.snapshot import Flag, Snapshot

JWT = "sup3r-s3cret-signing-key-0123456789abcdef"


def _flags(gen: int) -> Snapshot:
    return Snapshot(flags={"gen": Flag(variants={"g": gen}, default="g")})


def _publish(url: str, env: str, gen: int, **kwargs):
    config = PublishedConfig(environment=env, config={"svc": {"gen": gen}}, flags=_flags(gen))
    with RedisConfigStore(url, env) as cstore, RedisFlagStore(url) as fstore:
        return cstore.publish_with_flags(config, fstore, lambda _s: _flags(gen), **kwargs)


def _stored(client, ns: str) -> dict:
    return {
        k: client.zrange(k, 0, -1, withscores=True)  # (the records of recent writes)
        if client.type(k) == b"zset"
        else client.hgetall(k)
        for k in sorted(client.keys(f"{{{ns}}}:*"))
    }


def test_flags_published_for_another_environment_are_refused(redis_server):
    ns = "flagenv"
    url = redis_server.url + f"?namespace={ns}&cache=off"
    client = redis_server.client()
    _publish(url, "production", 1)
    assert client.hget(f"{{{ns}}}:flags", "environment") == b"production"
    _publish(url, "production", 2)  # the same environment again: as before
    before = _stored(client, ns)
    with pytest.raises(FlagsEnvironmentError) as caught:
        _publish(url, "staging", 3)
    assert caught.value.recorded == "production"
    message = str(caught.value)
    assert "'production'" in message and "'staging'" in message and "namespace" in message
    assert _stored(client, ns) == before  # not even staging's configuration
    # A flags-only write (set_feature_flag, another process) keeps the record.
    with RedisFlagStore(url) as fstore:
        fstore.update(lambda _s: _flags(4))
    assert client.hget(f"{{{ns}}}:flags", "environment") == b"production"
    with pytest.raises(FlagsEnvironmentError):
        _publish(url, "staging", 5)
    # Moved on purpose: written, and recorded for the new environment.
    cnew, fnew = _publish(url, "staging", 6, replace_environment=True)
    assert fnew.snapshot.flags["gen"].variants["g"] == 6 and cnew.version == 1
    assert client.hget(f"{{{ns}}}:flags", "environment") == b"staging"
    with pytest.raises(FlagsEnvironmentError):
        _publish(url, "production", 7)


def test_a_document_without_the_record_is_recorded_by_its_next_publish(redis_server):
    # Upgrade: a flag document an earlier release published (or a flags-only write)
    # carries no environment; the first publish of this release records its own.
    ns = "flagenvold"
    url = redis_server.url + f"?namespace={ns}&cache=off"
    client = redis_server.client()
    _publish(url, "production", 1)
    client.hdel(f"{{{ns}}}:flags", "environment")  # as an earlier release left it
    _publish(url, "staging", 2)
    assert client.hget(f"{{{ns}}}:flags", "environment") == b"staging"
    with pytest.raises(FlagsEnvironmentError):
        _publish(url, "production", 3)


def test_cli_refuses_flags_for_another_environment(
    redis_server, bundled_config, tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("JWT_SIGNING_KEY", JWT)
    ns = "flagenvcli"
    url = redis_server.url + f"?namespace={ns}&cache=off"
    client = redis_server.client()
    base = ["-q", "publish", "--store", url, "--config-dir", str(bundled_config)]
    assert main([*base, "-e", "development", "--flags"]) == 0
    capsys.readouterr()
    before = _stored(client, ns)
    assert main([*base, "-e", "test", "--flags"]) == 1
    err = capsys.readouterr().err
    assert "'development'" in err and "--replace-flags-environment" in err, err
    assert _stored(client, ns) == before
    # the configuration alone is not the flags' business
    assert main([*base, "-e", "test"]) == 0
    assert main([*base, "-e", "test", "--flags", "--replace-flags-environment"]) == 0
    assert client.hget(f"{{{ns}}}:flags", "environment") == b"test"
    capsys.readouterr()
    assert main([*base, "-e", "test", "--replace-flags-environment"]) == 1
    assert "only with --flags" in capsys.readouterr().err


def test_cli_refusal_without_e_says_the_default_environment_was_used(
    redis_server, bundled_config, tmp_path, capsys, monkeypatch
):
    """The repair a process prints (`cfgcore publish --store URL --flags-from-cache
    CACHE_FILE`) has no -e: run as given on a namespace published for production, it
    publishes for `development`, the default, and is refused. The refusal says so and
    names the -e that publishes for the namespace's environment; with -e given (or
    $CONFIG_ENVIRONMENT), it is the refusal above, unchanged."""
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("JWT_SIGNING_KEY", JWT)
    monkeypatch.delenv("CONFIG_ENVIRONMENT", raising=False)
    monkeypatch.delenv("CFGCORE_ENVIRONMENT", raising=False)
    ns = "flagenvhint"
    url = redis_server.url + f"?namespace={ns}&cache=off"
    client = redis_server.client()
    base = ["-q", "publish", "--store", url, "--config-dir", str(bundled_config), "--flags"]
    assert main([*base, "-e", "staging"]) == 0
    capsys.readouterr()
    before = _stored(client, ns)
    assert main(base) == 1
    err = capsys.readouterr().err
    assert "No -e was given" in err and "run it again with -e staging" in err, err
    assert _stored(client, ns) == before
    assert main([*base, "-e", "test"]) == 1
    err = capsys.readouterr().err
    assert "'staging'" in err and "No -e was given" not in err, err
    monkeypatch.setenv("CONFIG_ENVIRONMENT", "test")
    assert main(base) == 1
    assert "No -e was given" not in capsys.readouterr().err
    monkeypatch.delenv("CONFIG_ENVIRONMENT")
    assert main([*base, "-e", "staging"]) == 0  # the hint's command is written
    assert _stored(client, ns) != before
