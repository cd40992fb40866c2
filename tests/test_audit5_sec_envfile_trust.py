"""Round 5 (security): a ``.env`` file anyone could have put beside the configuration.

The ``.env`` beside the configuration directory is found, not named: with the
configuration in ``/tmp/app/config`` (or any directory every user may write), any local
user's ``/tmp/app/.env`` filled in ``${VAR}`` references and ``CFGCORE__`` overrides.
Such a file (writable by every user, replaceable by every user, or made by another user
in a directory where everyone may create files) is now ignored with a warning when
found, and refused when named or when it turns into one. Real manager, real files.
"""

from __future__ import annotations

import os

import pytest

from cfgcore.config.manager import ConfigurationManager
from cfgcore.errors import ConfigError
from tests.conftest import scaffolded_config
from tests.readonly_mount import mount_read_only

pytestmark = pytest.mark.skipif(
    os.name == "nt" or not hasattr(os, "geteuid"), reason="POSIX owners and modes"
)


@pytest.fixture
def shared(tmp_path, monkeypatch):
    """A configuration in a directory every user may create files in (sticky, as /tmp)."""
    monkeypatch.delenv("APP_GREETING", raising=False)
    d = scaffolded_config(tmp_path, monkeypatch, "staging")
    staging = d / "staging.yaml"
    staging.write_text(staging.read_text() + "\ngreeting:\n  text: ${APP_GREETING:-plain}\n")
    tmp_path.chmod(0o1777)
    yield d
    tmp_path.chmod(0o700)


def _greeting(cfg) -> str:
    m = ConfigurationManager(cfg, record_usage=False)
    try:
        m.load_environment_config("staging")
        return str(m.get("greeting.text"))
    finally:
        m.close()


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="chown needs root")
def test_a_env_file_another_user_made_in_a_shared_directory_is_ignored(shared, caplog):
    env = shared.parent / ".env"
    env.write_text("APP_GREETING=theirs\n")
    os.chown(env, 12345, 12345)
    assert _greeting(shared) == "plain"
    assert any("lets every user create files" in r.getMessage() for r in caplog.records)
    os.chown(env, os.geteuid(), os.getegid())  # our own file there is read
    assert _greeting(shared) == "theirs"


def test_a_env_file_every_user_may_write_is_ignored_found_and_refused_named(
    shared, monkeypatch, caplog
):
    env = shared.parent / ".env"
    env.write_text("APP_GREETING=theirs\n")
    env.chmod(0o666)
    assert _greeting(shared) == "plain"
    # The warning's advice is what makes the file usable (its mode), not naming it in
    # CFGCORE_ENV_FILE, which refuses it as it is.
    (warning,) = [r.getMessage() for r in caplog.records if "ignoring" in r.getMessage()]
    assert "make it writable by its owner only" in warning
    assert "CFGCORE_ENV_FILE refuses it as it is" in warning
    monkeypatch.setenv("CFGCORE_ENV_FILE", str(env))
    with pytest.raises(ConfigError, match=r"\.env file is refused: it is writable by every"):
        _greeting(shared)
    env.chmod(0o644)
    assert _greeting(shared) == "theirs"


def test_a_env_file_in_a_directory_anyone_may_replace_files_in_is_ignored(shared):
    (shared.parent / ".env").write_text("APP_GREETING=theirs\n")
    shared.parent.chmod(0o777)  # no sticky bit: anyone may rename ours away
    assert _greeting(shared) == "plain"


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="chown needs root")
def test_a_env_file_on_a_read_only_mount_is_read_whoever_owns_it(shared, monkeypatch):
    env = shared.parent / ".env"
    env.write_text("APP_GREETING=image\n")
    os.chown(env, 12345, 12345)  # files baked into an image or a volume
    mount_read_only(monkeypatch, shared.parent)
    assert _greeting(shared) == "image"
