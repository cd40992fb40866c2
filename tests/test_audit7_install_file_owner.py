"""Rewriting a file keeps its owner and group, as it keeps its mode.

``atomic_write`` replaces a file with a new one (temp file, rename), which belonged to
whoever ran the write. An operator running ``cfgcore secrets rotate`` as root on a
service's configuration (``root:app``, mode 0640, the usual layout under /etc) turned
every rotated file into ``root:root`` 0640: the service could no longer read its own
configuration, and its next start failed. The old file's owner and group are now given
to the new one (as far as the writer may: a user who may not give a file away keeps
what it can).
"""

from __future__ import annotations

import os

import pytest

from cfgcore.cli import main
from cfgcore.runtime.atomicio import atomic_write
from cfgcore.runtime.secrets import Keyring, decrypt_value, encrypt_value, generate_key

pytestmark = [
    pytest.mark.skipif(not hasattr(os, "fchown"), reason="POSIX ownership"),
    pytest.mark.skipif(
        not hasattr(os, "geteuid") or os.geteuid() != 0,
        reason="giving a file to another user and group needs root",
    ),
]

UID, GID = 54321, 54322  # a service account that is not the writer


def test_atomic_write_keeps_owner_group_and_mode(tmp_path):
    path = tmp_path / "settings.yaml"
    path.write_text("a: 1\n")
    os.chown(path, UID, GID)
    path.chmod(0o640)
    atomic_write(path, b"a: 2\n")
    st = path.stat()
    assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (UID, GID, 0o640)
    assert path.read_text() == "a: 2\n"
    atomic_write(path, b"a: 3\n", mode=0o600)  # an explicit mode still keeps the owner
    st = path.stat()
    assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (UID, GID, 0o600)


def test_a_new_file_and_a_replaced_symlink_belong_to_the_writer(tmp_path):
    new = tmp_path / "new.yaml"
    atomic_write(new, b"x: 1\n")
    assert (new.stat().st_uid, new.stat().st_gid) == (os.geteuid(), os.getegid())
    other = tmp_path / "theirs.yaml"
    other.write_text("y: 1\n")
    os.chown(other, UID, GID)
    link = tmp_path / "link.yaml"
    link.symlink_to(other)
    atomic_write(link, b"z: 1\n")  # the link is replaced: what it pointed to lends nothing
    st = os.lstat(link)
    assert (st.st_uid, st.st_gid) == (os.geteuid(), os.getegid())


def test_secrets_rotate_as_root_leaves_the_service_able_to_read(tmp_path, monkeypatch, capsys):
    old, new = generate_key("k1"), generate_key("k2")
    config = tmp_path / "config"
    config.mkdir()
    base = config / "base.yaml"
    base.write_text(f"db:\n  password: '{encrypt_value('db-Pw-1', Keyring([old]))}'\n")
    os.chown(base, 0, GID)  # root:app 0640: root writes, the service's group reads
    base.chmod(0o640)
    monkeypatch.setenv("CFGCORE_SECRET_KEYS", f"{new},{old}")
    monkeypatch.delenv("CFGCORE_SECRET_KEY_FILE", raising=False)
    assert main(["secrets", "rotate", str(config)]) == 0
    st = base.stat()
    assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (0, GID, 0o640)
    text = base.read_text()
    envelope = text.split("'")[1]
    assert decrypt_value(envelope, Keyring([new])) == "db-Pw-1"
