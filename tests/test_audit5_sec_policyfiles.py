"""Round 5 (security): a policy or key file below a directory every user may write.

Only the file's own directory was checked: a directory writable by every user (without
the sticky bit) higher up let anyone rename the file's directory away and make their
own, with a policy granting them everything or a key of theirs put first; and a
symlink's own directory was not checked at all (the link resolved first). Every
directory on the way, as written and as resolved, is checked now.
"""

from __future__ import annotations

import os

import pytest

from cfgcore.errors import ConfigError
from cfgcore.runtime import policy
from cfgcore.runtime.secrets import Keyring, generate_key
from tests.readonly_mount import mount_read_only

pytestmark = [
    pytest.mark.skipif(os.name == "nt", reason="POSIX permission bits"),
    pytest.mark.usefixtures("no_access_policy"),
]

POLICY = "roles:\n  admin:\n    '*': ['*']\nactors:\n  alice: [admin]\n"


@pytest.fixture
def tree(tmp_path):
    """open/ (0777, no sticky) / etc/ (0755) / policy.yaml and keys (0644, 0600)."""
    opened = tmp_path / "open"
    etc = opened / "etc"
    etc.mkdir(parents=True)
    (etc / "policy.yaml").write_text(POLICY)
    (etc / "policy.yaml").chmod(0o644)
    (etc / "keys").write_text(generate_key("k1") + "\n")
    (etc / "keys").chmod(0o600)
    etc.chmod(0o755)
    opened.chmod(0o777)
    yield tmp_path
    opened.chmod(0o755)


def test_a_policy_below_a_directory_every_user_may_write_is_refused(tree):
    path = tree / "open" / "etc" / "policy.yaml"
    with pytest.raises(ConfigError, match=r"the directory .*open is writable by every user"):
        policy.set_policy(str(path))
    (tree / "open").chmod(0o1777)  # sticky: nobody may rename another's directory
    assert policy.set_policy(str(path)) is not None


def test_a_key_file_below_a_directory_every_user_may_write_is_refused(tree):
    path = tree / "open" / "etc" / "keys"
    with pytest.raises(ConfigError, match=r"the directory .*open is writable by every user"):
        Keyring.from_file(path)
    (tree / "open").chmod(0o755)
    assert Keyring.from_file(path).keys[0].kid == "k1"


def test_a_link_in_a_directory_every_user_may_write_is_refused(tree):
    safe = tree / "safe"
    safe.mkdir(mode=0o755)
    os.replace(tree / "open" / "etc" / "policy.yaml", safe / "policy.yaml")
    link = tree / "open" / "policy.yaml"
    link.symlink_to(safe / "policy.yaml")  # anyone may replace the link
    with pytest.raises(ConfigError, match=r"its directory .*open is writable by every user"):
        policy.set_policy(str(link))
    assert policy.set_policy(str(safe / "policy.yaml")) is not None


def test_with_the_environment_policy_every_change_is_refused(tree, monkeypatch):
    monkeypatch.setenv("CFGCORE_ACCESS_POLICY", str(tree / "open" / "etc" / "policy.yaml"))
    with pytest.raises(PermissionError, match="writable by every user"):
        policy.check("alice", "flag.set", "x")


def test_a_directory_on_a_read_only_mount_writes_nothing_whatever_its_mode(tree, monkeypatch):
    # A Kubernetes ConfigMap volume's root reads 0777 but is mounted read-only.
    mount_read_only(monkeypatch, tree / "open")
    assert policy.set_policy(str(tree / "open" / "etc" / "policy.yaml")) is not None
