"""Eighth audit, files: the ``.env`` file is an input of the configuration it filled.

A ``.env`` file (named by ``$CFGCORE_ENV_FILE``, or found beside the configuration
directory) fills ``${VAR}`` references. The first load's snapshot did not record it
among its inputs' fingerprints, so once it was deleted the hot-reload poll saw nothing
to do; the next explicit ``reload()`` (or any later change to another input) then served
``${H:-localhost}`` as ``localhost`` instead of ``db.internal``, without an error, while
a start with the same missing named file is refused. Now the file is fingerprinted and
watched like the configuration files, and one that was read but is gone (deleted, a
dangling link), emptied or unreadable is refused like a deleted ``base.yaml``: the last
good version keeps serving, the refusal is reported once and cleared when the file
reads back as it was. ``load_environment_config`` stays the deliberate way to accept
the removal of a ``.env`` found beside the directory (as a start does); a file
``$CFGCORE_ENV_FILE`` names must exist there too. Real files, the real watcher.
"""

from __future__ import annotations

import os
import time

import pytest

from cfgcore.config.manager import ConfigurationManager
from cfgcore.errors import ConfigError
from cfgcore.runtime.atomicio import atomic_write_text
from tests.waiting import wait_for

GOOD = "H=db.internal\n"


def _errors(events):
    return [e for e in events if e.is_error]


def _polled_since(m, moment):
    """True once the poll has found the inputs as they were at ``moment`` (twice over:
    the confirmation time moves past it, then past that)."""
    first = [0.0]

    def check():
        seen = m.reloader.confirmed_at
        if seen <= moment:
            return False
        if not first[0]:
            first[0] = seen
            return False
        return seen > first[0]

    return wait_for(check)


@pytest.fixture(params=["named", "beside"])
def service(request, tmp_path, monkeypatch):
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("H", raising=False)
    monkeypatch.delenv("CFGCORE_ENV_FILE", raising=False)
    config = tmp_path / "config"
    config.mkdir()
    (config / "base.yaml").write_text("app:\n  host: ${H:-localhost}\n")
    (config / "development.yaml").write_text("{}\n")
    if request.param == "named":
        env_file = tmp_path / "secrets" / "named.env"
        env_file.parent.mkdir()
        monkeypatch.setenv("CFGCORE_ENV_FILE", str(env_file))
    else:
        env_file = tmp_path / ".env"  # beside the configuration directory
    env_file.write_text(GOOD)
    os.chmod(env_file, 0o600)
    m = ConfigurationManager(
        str(config), environment="development", validate=False, record_usage=False
    )
    m.load_environment_config()
    assert m.get("app.host") == "db.internal"
    events: list = []
    m.register_change_listener(events.append)
    yield request.param, m, env_file, events
    m.close()


def test_the_first_snapshot_records_the_env_file_among_its_inputs(service):
    _, m, env_file, _ = service
    assert str(env_file) in {entry[0] for entry in m._current().fingerprint}
    assert m.debug_info()["env_file"] == str(env_file)


def _dangle(p):
    p.unlink()
    os.symlink(p.parent / "nowhere.env", p)


def _directory(p):
    p.unlink()
    p.mkdir()


BREAKS = {
    "deleted": (lambda p: p.unlink(), "disappeared"),
    "dangling link": (_dangle, "a link to"),
    "emptied": (lambda p: p.write_text(""), "empty"),
    "a directory": (_directory, "cannot read"),
}


def _restore(p):
    if p.is_symlink() or p.is_file():
        p.unlink()
    elif p.is_dir():
        p.rmdir()
    p.write_text(GOOD)


@pytest.mark.parametrize("brk", sorted(BREAKS))
def test_a_broken_env_file_is_refused_by_hot_reload_and_reported_once(service, brk):
    _, m, env_file, events = service
    m.enable_hot_reload(poll_interval=0.05)
    breaking, said = BREAKS[brk]
    breaking(env_file)
    assert wait_for(lambda: m.last_error is not None), f"{brk} .env went unnoticed"
    assert str(env_file) in str(m.last_error) and said in str(m.last_error)
    assert m.get("app.host") == "db.internal"  # the last good version keeps serving
    assert any(c.status != "ok" for c in m.health().readiness)
    assert _polled_since(m, time.time())
    assert len(_errors(events)) == 1, "the refusal is reported once, not on every poll"
    assert not [e for e in events if not e.is_error]

    assert m.reload() is False  # an explicit reload refuses it as well
    assert m.get("app.host") == "db.internal"

    _restore(env_file)
    assert wait_for(lambda: m.last_error is None)
    assert m.get("app.host") == "db.internal"
    assert not [e for e in events if not e.is_error]  # nothing changed meanwhile


def test_another_input_changing_meanwhile_does_not_drop_the_env_values(service):
    _, m, env_file, events = service
    m.enable_hot_reload(poll_interval=0.05)
    env_file.unlink()
    assert wait_for(lambda: m.last_error is not None)
    base = m.config_dir + "/base.yaml"
    atomic_write_text(base, "app:\n  host: ${H:-localhost}\n  port: 5432\n")
    assert wait_for(lambda: len(_errors(events)) >= 2)  # the new inputs, judged again
    assert m.get("app.port") is None and m.get("app.host") == "db.internal"
    env_file.write_text(GOOD)
    assert wait_for(lambda: m.get("app.port") == 5432 and m.last_error is None)
    assert m.get("app.host") == "db.internal"


def test_the_env_file_deleted_a_second_time_is_reported_too(service):
    _, m, env_file, events = service
    m.enable_hot_reload(poll_interval=0.05)
    env_file.unlink()
    assert wait_for(lambda: m.last_error is not None)
    env_file.write_text("H=db2.internal\n")
    assert wait_for(lambda: m.get("app.host") == "db2.internal" and m.last_error is None)
    env_file.unlink()
    assert wait_for(lambda: m.last_error is not None), "the second deletion went unreported"
    assert m.get("app.host") == "db2.internal"


def test_load_environment_config_accepts_a_deliberate_removal(service):
    kind, m, env_file, events = service
    env_file.unlink()
    assert m.reload() is False
    if kind == "beside":
        # As a start without the file: a .env beside the directory is optional.
        m.load_environment_config()
        assert m.get("app.host") == "localhost" and m.last_error is None
        assert m.debug_info()["env_file"] is None
        assert [(e.config_path, e.new_value) for e in events if not e.is_error] == [
            ("app.host", "localhost")
        ]
        return
    # A file CFGCORE_ENV_FILE names must exist, as at start: a lost mount or a typo
    # is no "no secrets". Emptying it is the deliberate way.
    with pytest.raises(ConfigError, match="CFGCORE_ENV_FILE names a file that does not exist"):
        m.load_environment_config()
    assert m.get("app.host") == "db.internal"
    with pytest.raises(ConfigError, match="CFGCORE_ENV_FILE"):
        ConfigurationManager(m.config_dir, environment="development")  # a start says so too
    env_file.write_text("")
    m.load_environment_config()
    assert m.get("app.host") == "localhost" and m.last_error is None


def test_a_fresh_start_without_a_env_beside_the_directory_is_fine(tmp_path, monkeypatch):
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("H", raising=False)
    monkeypatch.delenv("CFGCORE_ENV_FILE", raising=False)
    config = tmp_path / "config"
    config.mkdir()
    (config / "base.yaml").write_text("app:\n  host: ${H:-localhost}\n")
    (config / "development.yaml").write_text("{}\n")
    m = ConfigurationManager(config, environment="development", validate=False)
    try:
        assert m.load_environment_config()["app"]["host"] == "localhost"
        assert m.reload() is True and m.last_error is None
    finally:
        m.close()


@pytest.mark.parametrize("how", ["in place", "renamed over"])
def test_the_watcher_itself_sees_the_env_file_change(service, how):
    # The poll is an hour away: only the file watch can notice (the .env file lives
    # outside the watched configuration directory).
    _, m, env_file, events = service
    m.enable_hot_reload(poll_interval=3600)
    if how == "in place":
        env_file.write_text("H=db2.internal\n")
    else:
        atomic_write_text(env_file, "H=db2.internal\n")
    assert wait_for(lambda: m.get("app.host") == "db2.internal")
    env_file.unlink()
    assert wait_for(lambda: m.last_error is not None)
    assert m.get("app.host") == "db2.internal"
    assert [(e.config_path, e.new_value) for e in events if not e.is_error] == [
        ("app.host", "db2.internal")
    ]
