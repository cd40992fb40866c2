"""``cfgcore publish`` publishes the configuration files, not the publisher's
``CFGCORE__`` overrides.

A ``CFGCORE__SECTION__KEY`` variable is a per-process setting of the machine it is set
on. With one in force on the publishing machine, the key was published as the
reference ``${CFGCORE__SECTION__KEY}``, and every follower without that variable
refused the whole update. Now the published configuration is built from the files
alone (the publish names the overrides it left out on stderr, never their values),
each follower applies its own ``CFGCORE__`` variables on top of what it follows, and
``${VAR}`` references written in the files are still published as references. Real
redis-server (tests/redis_server.py); the publisher is the real command line.
"""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfgcore.config.manager import ConfigurationManager
from cfgcore.runtime.redis_store import RedisConfigStore
from tests.conftest import run_cli
from tests.fuzz import examples
from tests.redis_server import wait_for

ENV = "production"
SECRET = "pub-side-secret-0123456789abcdef"


@pytest.fixture
def config_dir(tmp_path, monkeypatch):
    """A configuration with a plain key (``server.port``) and a ``${VAR}`` reference,
    and a publisher's environment with no CFGCORE* variables but those a test sets."""
    import os

    for var in list(os.environ):
        if var.startswith(("CFGCORE", "CONFIG_")):
            monkeypatch.delenv(var)
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("DB_PASSWORD", SECRET)
    d = tmp_path / "config"
    d.mkdir()
    (d / "base.yaml").write_text(
        "server:\n  port: 8080\n  host: 0.0.0.0\ndatabase:\n  password: ${DB_PASSWORD}\n"
    )
    (d / f"{ENV}.yaml").write_text("server:\n  workers: 4\n")
    return d


@pytest.fixture
def url(redis_server):
    return redis_server.url + "?namespace=overrides&poll=0.2"


def publish(capsys, url, config_dir, *extra):
    return run_cli(
        capsys, "publish", "--store", url, "--config-dir", str(config_dir), "-e", ENV, *extra
    )


def stored(url):
    with RedisConfigStore(url, ENV) as store:
        doc = store.read()
    return doc, msgspec.to_builtins(doc.snapshot.config)


def follower(url, environ):
    """A follower with exactly ``environ`` as its environment (none of the publisher's)."""
    manager = ConfigurationManager(
        config_source=url, environment=ENV, environ=environ, record_usage=False
    )
    manager.load_environment_config()
    return manager


def test_an_override_on_the_publisher_is_not_published(url, config_dir, capsys, monkeypatch):
    monkeypatch.setenv("CFGCORE__SERVER__PORT", "9999")
    monkeypatch.setenv("CFGCORE__SERVER__DEBUG_ONLY", "true")  # a key no file has
    code, _, err = publish(capsys, url, config_dir)
    assert code == 0, err
    doc, tree = stored(url)
    assert tree["server"] == {"port": 8080, "host": "0.0.0.0", "workers": 4}
    assert b"CFGCORE__" not in doc.data and b"9999" not in doc.data


def test_a_follower_without_the_override_takes_the_update(url, config_dir, capsys, monkeypatch):
    code, _, err = publish(capsys, url, config_dir)
    assert code == 0, err
    manager = follower(url, {"DB_PASSWORD": "follower-secret"})
    try:
        events: list = []
        manager.register_change_listener(events.append)
        assert manager.get("server.port") == 8080
        # the next publish runs with an override in force on the publishing machine
        monkeypatch.setenv("CFGCORE__SERVER__PORT", "9999")
        base = config_dir / "base.yaml"
        base.write_text(base.read_text().replace("port: 8080", "port: 8081"))
        code, _, err = publish(capsys, url, config_dir)
        assert code == 0, err
        wait_for(lambda: manager.get("server.port") == 8081)
        assert manager.last_error is None
        wait_for(lambda: any(e.config_path == "server.port" for e in events))
        assert not [e for e in events if e.is_error]
        # its own secret, from its own environment
        assert manager.get("database.password") == "follower-secret"
    finally:
        manager.close()


def test_a_follower_applies_its_own_override(url, config_dir, capsys, monkeypatch):
    monkeypatch.setenv("CFGCORE__SERVER__PORT", "9999")
    code, _, err = publish(capsys, url, config_dir)
    assert code == 0, err
    own = {"DB_PASSWORD": "follower-secret", "CFGCORE__SERVER__PORT": "7000"}
    manager = follower(url, own)
    try:
        assert manager.get("server.port") == 7000
        assert manager.get("server.workers") == 4
        assert manager.explain("server.port").winner.layer == "environment variables"
        # and keeps applying it to every version it follows
        workers = config_dir / f"{ENV}.yaml"
        workers.write_text("server:\n  workers: 8\n")
        code, _, err = publish(capsys, url, config_dir)
        assert code == 0, err
        wait_for(lambda: manager.get("server.workers") == 8)
        assert manager.get("server.port") == 7000
    finally:
        manager.close()


def test_the_publish_names_the_overrides_it_left_out(url, config_dir, capsys, monkeypatch):
    monkeypatch.setenv("CFGCORE__SERVER__PORT", "9999")
    monkeypatch.setenv("CFGCORE__DATABASE__PASSWORD", "an-override-secret-value")
    code, out, err = publish(capsys, url, config_dir)
    assert code == 0, err
    assert "CFGCORE__DATABASE__PASSWORD" in err and "CFGCORE__SERVER__PORT" in err
    assert "not published" in err
    assert "9999" not in err + out and "an-override-secret-value" not in err + out
    assert f"published {ENV} as version 1" in out
    # -q: errors only
    code, _, err = publish(capsys, url, config_dir, "-q")
    assert code == 0 and "CFGCORE__" not in err
    # nothing to say without an override
    monkeypatch.delenv("CFGCORE__SERVER__PORT")
    monkeypatch.delenv("CFGCORE__DATABASE__PASSWORD")
    code, _, err = publish(capsys, url, config_dir)
    assert code == 0 and "CFGCORE__" not in err


def test_an_override_in_the_env_file_is_left_out_too(url, config_dir, capsys):
    # a .env file beside the configuration directory belongs to the machine it is on
    (config_dir.parent / ".env").write_text("CFGCORE__SERVER__PORT=9999\n")
    (config_dir.parent / ".env").chmod(0o600)
    code, _, err = publish(capsys, url, config_dir)
    assert code == 0, err
    assert "CFGCORE__SERVER__PORT" in err and "9999" not in err
    assert stored(url)[1]["server"]["port"] == 8080


def test_a_reference_in_a_file_is_still_published_as_the_reference(
    url, config_dir, capsys, monkeypatch
):
    monkeypatch.setenv("CFGCORE__SERVER__PORT", "9999")
    code, _, err = publish(capsys, url, config_dir)
    assert code == 0, err
    doc, tree = stored(url)
    assert tree["database"]["password"] == "${DB_PASSWORD}"
    assert SECRET.encode() not in doc.data
    assert "DB_PASSWORD" not in err  # a reference is no override: not in the note
    manager = follower(url, {"DB_PASSWORD": "follower-secret"})
    try:
        assert manager.get("database.password") == "follower-secret"
    finally:
        manager.close()


def test_an_override_the_files_would_refuse_does_not_stop_the_publish(
    url, config_dir, capsys, monkeypatch
):
    # left out, it is not the publish's to judge: the files are valid
    monkeypatch.setenv("CFGCORE__SERVER__PORT", "not-a-port")
    code, _, err = publish(capsys, url, config_dir)
    assert code == 0, err
    assert "CFGCORE__SERVER__PORT" in err and "not-a-port" not in err
    assert stored(url)[1]["server"]["port"] == 8080
    # nor its caching: the cache check builds what was published, as the publish did
    assert "not cached" not in err
    with RedisConfigStore(url, ENV) as store:
        assert store.read_cache().version == 1


def _note(err):
    return [line for line in err.splitlines() if "CFGCORE__" in line]


@settings(
    max_examples=examples(10),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    value=st.text(
        alphabet=st.characters(codec="utf-8", exclude_characters="\0"), min_size=1, max_size=40
    )
)
def test_no_override_value_reaches_the_store_or_the_note(
    url, config_dir, capsys, monkeypatch, value
):
    # the note is the same text whatever the values: it cannot show one
    monkeypatch.setenv("CFGCORE__SERVER__PORT", "baseline")
    monkeypatch.setenv("CFGCORE__SERVER__HOST", "baseline")
    code, _, err = publish(capsys, url, config_dir)
    assert code == 0, err
    baseline = _note(err)
    monkeypatch.setenv("CFGCORE__SERVER__PORT", value)
    monkeypatch.setenv("CFGCORE__SERVER__HOST", value)
    code, _, err = publish(capsys, url, config_dir)
    assert code == 0, err
    assert baseline and _note(err) == baseline
    doc, tree = stored(url)
    assert tree["server"] == {"port": 8080, "host": "0.0.0.0", "workers": 4}
    assert b"CFGCORE__" not in doc.data
