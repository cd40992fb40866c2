"""Files that grant trust, made by another local user in a directory every user may
create files in (``/tmp``, sticky).

A ``.env`` file another user made there was already ignored; the access policy
(``CFGCORE_ACCESS_POLICY``), the secret and audit key files (``Keyring.from_file``) and
the fleet's signing and verification key files were taken: whoever got to the name first
(``/tmp/app/policy.yaml``, or ``/tmp/app`` itself) granted themselves every change, or
had their own key trusted. Now one judge refuses them all alike, and also a symlink
another user planted there and a directory of theirs on the way (the target then being
any file of theirs, in a directory only they can write). Real files and owners: the
``chown`` needs root.
"""

from __future__ import annotations

import os

import pytest

from cfgcore.errors import ConfigError
from cfgcore.runtime.policy import load_policy
from cfgcore.runtime.secrets import Keyring, generate_key
from cfgcore.runtime.signing import FleetKeys, generate_signing_pair

pytestmark = pytest.mark.skipif(
    os.name == "nt" or not hasattr(os, "geteuid") or os.geteuid() != 0,
    reason="POSIX owners; chown needs root",
)

OTHER = 12345  # another local user
POLICY = 'roles: {admin: {"*": ["*"]}}\nactors: {"*": [admin]}\n'


@pytest.fixture
def shared(tmp_path):
    """A directory every user may create files in, as /tmp is."""
    d = tmp_path / "shared"
    d.mkdir()
    d.chmod(0o1777)
    return d


def _theirs(path) -> None:
    os.chown(path, OTHER, OTHER, follow_symlinks=False)


def _signing_file(path) -> str:
    signing, _ = generate_signing_pair("k1")
    path.write_text(signing + "\n")
    path.chmod(0o600)
    return str(path)


def _verify_file(path) -> str:
    _, verify = generate_signing_pair("k1")
    path.write_text(verify + "\n")
    return str(path)


def _policy_file(path) -> str:
    path.write_text(POLICY)
    return str(path)


def _key_file(path) -> str:
    path.write_text(generate_key("k1") + "\n")
    path.chmod(0o600)
    return str(path)


LOADERS = {
    "access policy": (_policy_file, load_policy),
    "secret key file": (_key_file, Keyring.from_file),
    "fleet signing key file": (
        _signing_file,
        lambda p: FleetKeys.from_environ({"CFGCORE_FLEET_SIGNING_KEY_FILE": p}),
    ),
    "fleet verification key file": (
        _verify_file,
        lambda p: FleetKeys.from_environ({"CFGCORE_FLEET_VERIFY_KEY_FILE": p}),
    ),
}


@pytest.mark.parametrize("kind", sorted(LOADERS))
def test_another_users_file_in_a_shared_directory_is_refused(shared, kind):
    write, load = LOADERS[kind]
    path = write(shared / "trusted.yaml")
    _theirs(path)
    with pytest.raises(ConfigError) as err:
        load(path)
    text = str(err.value)
    assert path in text and f"belongs to uid {OTHER}" in text
    assert "lets every user create files" in text
    assert "owned by this user or root" in text  # the fix, not a chmod that does nothing
    os.chown(path, os.geteuid(), os.getegid())
    load(path)  # this user's own file there is taken, as before


@pytest.mark.parametrize("kind", sorted(LOADERS))
def test_another_users_symlink_or_directory_in_a_shared_directory_is_refused(
    tmp_path, shared, kind
):
    write, load = LOADERS[kind]
    # their file, in a directory only they may write: nothing shared on its own path
    private = tmp_path / "private"
    private.mkdir()
    target = write(private / "theirs.yaml")
    _theirs(target)
    _theirs(private)
    link = shared / "trusted.yaml"
    link.symlink_to(target)
    _theirs(link)
    with pytest.raises(ConfigError, match=f"this one belongs to uid {OTHER}"):
        load(str(link))
    # our own file, in a directory they made in the shared one (theirs to swap it in)
    sub = shared / "app"
    sub.mkdir()
    ours = write(sub / "trusted.yaml")
    _theirs(sub)
    with pytest.raises(ConfigError, match=f"app in it belongs to uid {OTHER}"):
        load(ours)
    os.chown(sub, os.geteuid(), os.getegid())
    load(ours)


def test_a_read_only_shared_directory_is_not_judged_by_its_owners(shared, monkeypatch):
    # A read-only mount writes nothing, whatever its mode (a ConfigMap volume reads 0777).
    import cfgcore.runtime.atomicio as atomicio

    path = shared / "policy.yaml"
    path.write_text(POLICY)
    _theirs(path)
    monkeypatch.setattr(atomicio, "_read_only", lambda directory: True)
    assert load_policy(path).allows("anyone", "flag.set", "x")


def test_a_env_file_reached_through_another_users_symlink_is_untrusted(tmp_path, shared):
    # (a .env file of theirs in the shared directory itself was ignored already; one
    # reached through their symlink there, to their file elsewhere, was read)
    from cfgcore.config.envfile import untrusted

    private = tmp_path / "private"
    private.mkdir()
    target = private / "env"
    target.write_text("APP_GREETING=theirs\n")
    _theirs(target)
    _theirs(private)
    link = shared / ".env"
    link.symlink_to(target)
    _theirs(link)
    assert f"this one belongs to uid {OTHER}" in untrusted(str(link))
    os.chown(link, os.geteuid(), os.getegid(), follow_symlinks=False)
    assert untrusted(str(link)) == ""  # our own link to a file outside: as before
