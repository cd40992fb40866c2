"""A profile switch rebuilds from the files on disk, so it passes the reload guard.

``set_profile()`` re-reads every input (base, environment file, ``.env``, profiles) to
layer the new profile over them. It built without the guard hot reload applies
(:func:`cfgcore.config.builder.reject_truncated`): a ``base.yaml`` or ``.env`` deleted,
left dangling or emptied since the live version read it was taken as "no such layer",
and the switch activated a configuration missing it, silently. Now the switch is
refused like a reload of the same inputs (same error, ``last_error``, an error event),
and the last good version, with its profile, keeps serving. ``load_environment_config``
stays the deliberate way to accept a removal. Real files in ``tmp_path``.
"""

from __future__ import annotations

import os

import pytest

from cfgcore.config.manager import ConfigurationManager
from cfgcore.errors import ConfigError

GOOD_ENV = "H=db.internal\n"
BASE = "app:\n  host: ${H:-localhost}\n  v: 1\n"


@pytest.fixture(params=["named", "beside"])
def service(request, tmp_path, monkeypatch):
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("H", raising=False)
    monkeypatch.delenv("CFGCORE_ENV_FILE", raising=False)
    config = tmp_path / "config"
    config.mkdir()
    (config / "base.yaml").write_text(BASE)
    (config / "development.yaml").write_text("app:\n  env: dev\n")
    (config / "profiles").mkdir()
    (config / "profiles" / "canary.yaml").write_text(
        "name: canary\nkind: deployment\noverrides:\n  app:\n    canary: true\n"
    )
    if request.param == "named":
        env_file = tmp_path / "secrets" / "named.env"
        env_file.parent.mkdir()
        monkeypatch.setenv("CFGCORE_ENV_FILE", str(env_file))
    else:
        env_file = tmp_path / ".env"  # beside the configuration directory
    env_file.write_text(GOOD_ENV)
    os.chmod(env_file, 0o600)
    m = ConfigurationManager(
        str(config), environment="development", validate=False, record_usage=False
    )
    m.load_environment_config()
    assert m.get("app.host") == "db.internal"
    events: list = []
    m.register_change_listener(events.append)
    yield m, config, env_file, events
    m.close()


def _dangle(p):
    p.unlink()
    os.symlink(p.parent / "nowhere", p)


BREAKS = {
    # (which input, how it breaks, what the refusal says)
    "base deleted": ("base", lambda p: p.unlink(), "file disappeared"),
    "base emptied": ("base", lambda p: p.write_text(""), "file is empty"),
    ".env deleted": ("env", lambda p: p.unlink(), ".env file disappeared"),
    ".env dangling": ("env", _dangle, "a link to"),
    ".env emptied": ("env", lambda p: p.write_text(""), ".env file is empty"),
}


def _profile_switches(m):
    # A built-in profile, a custom one from profiles/, a geographic one, and removing
    # them again: every one rebuilds from the files.
    return [
        lambda: m.set_profile("canary"),
        lambda: m.set_profile("high_volume", "EU"),
        lambda: m.set_profile(None, "US"),
    ]


@pytest.mark.parametrize("brk", sorted(BREAKS))
def test_a_profile_switch_refuses_an_input_gone_since_the_live_version(service, brk):
    m, config, env_file, events = service
    which, breaking, said = BREAKS[brk]
    target = config / "base.yaml" if which == "base" else env_file
    live = m.snapshot
    breaking(target)
    for switch in _profile_switches(m):
        with pytest.raises(ConfigError, match=said) as caught:
            switch()
        assert str(target) in str(caught.value)
        assert m.last_error is caught.value
        # The last good version keeps serving, its profile with it.
        assert m.snapshot is live
        assert m.get("app.host") == "db.internal" and m.get("app.v") == 1
        assert m.snapshot.profile is None and m.snapshot.geographic_profile is None
    errors = [e for e in events if e.is_error]
    assert len(errors) == 3 and all(e.source == "profile" for e in errors)
    assert not [e for e in events if not e.is_error]


@pytest.mark.parametrize("brk", sorted(BREAKS))
def test_the_switch_goes_through_once_the_input_is_back(service, brk):
    m, config, env_file, _ = service
    which, breaking, _ = BREAKS[brk]
    target = config / "base.yaml" if which == "base" else env_file
    breaking(target)
    with pytest.raises(ConfigError):
        m.set_profile("canary")
    if target.is_symlink() or target.exists():
        target.unlink()
    target.write_text(BASE if which == "base" else GOOD_ENV)
    m.set_profile("canary")
    assert m.get("app.canary") is True and m.snapshot.profile == "canary"
    assert m.get("app.host") == "db.internal" and m.get("app.v") == 1


def test_a_switch_after_a_switch_is_judged_against_the_version_it_replaces(service):
    # The guard compares with the live version: after a good switch, breaking an input
    # refuses the next switch, and switching back (to no profile) too.
    m, config, _, _ = service
    m.set_profile("canary")
    (config / "base.yaml").unlink()
    with pytest.raises(ConfigError, match="file disappeared"):
        m.set_profile(None)
    assert m.snapshot.profile == "canary" and m.get("app.v") == 1


def test_load_environment_config_still_accepts_a_deliberate_removal(service):
    # The documented way to really remove an input, and to then switch profiles.
    m, config, _, _ = service
    (config / "base.yaml").unlink()
    m.load_environment_config()
    assert m.get("app.v") is None and m.get("app.env") == "dev"
    m.set_profile("canary")
    assert m.get("app.canary") is True
