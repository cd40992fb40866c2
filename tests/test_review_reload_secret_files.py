"""A rotated ``${file:...}`` secret goes live on reload, with the real watcher too.

Docker and Kubernetes mount secrets as files, and Kubernetes rotates a mounted secret
in place (a new timestamped directory, then the ``..data`` link switched to it). The
configuration read such a file once: its path was neither fingerprinted nor among the
build's sources, so the watcher and the poll never looked at it again, and even an
explicit ``reload()`` found every input unchanged, skipped the build and returned True
while the old password kept serving. The files a build's ``${file:...}`` references read
are now inputs like the configuration files: fingerprinted (so the poll and the settle
wait see them), watched (their directories), and compared by content before a reload is
skipped.
"""

from __future__ import annotations

import itertools
import os
import shutil

import pytest

from cfgcore.config.manager import ConfigurationManager
from cfgcore.runtime.atomicio import atomic_write_text
from tests.waiting import wait_for

WATCHER_ONLY = 3600.0  # poll_interval: the periodic poll never runs during a test
_stamps = itertools.count(1)


def _secret_volume_update(root, files: dict[str, str]) -> None:
    """What kubelet's atomic writer does to a Secret volume: a new timestamped
    directory, ``..data_tmp`` renamed over ``..data``, links for new names, then the
    old directory goes."""
    old = os.readlink(root / "..data") if os.path.lexists(root / "..data") else None
    stamp = root / f"..2026_12_04_10_00_00.{next(_stamps):09d}"
    stamp.mkdir()
    for name, text in files.items():
        (stamp / name).write_text(text)
    os.symlink(stamp.name, root / "..data_tmp")
    os.replace(root / "..data_tmp", root / "..data")
    for name in files:
        if not os.path.lexists(root / name):
            os.symlink(os.path.join("..data", name), root / name)
    if old is not None:
        shutil.rmtree(root / old)


def _manager(tmp_path, secret) -> ConfigurationManager:
    config = tmp_path / "config"
    config.mkdir()
    (config / "staging.yaml").write_text(f"db:\n  password: '${{file:{secret}}}'\n")
    m = ConfigurationManager(
        config, environ={"CFGCORE_SECRET_DIRS": str(tmp_path / "secrets")}, validate=False
    )
    m.load_environment_config("staging")
    return m


@pytest.fixture
def secrets_dir(tmp_path):
    d = tmp_path / "secrets"
    d.mkdir()
    return d


def test_an_explicit_reload_serves_a_rotated_secret_file(tmp_path, secrets_dir):
    secret = secrets_dir / "db_password"
    secret.write_text("first-password\n")
    m = _manager(tmp_path, secret)
    try:
        assert m.get("db.password") == "first-password"
        atomic_write_text(secret, "second-password\n")
        assert m.reload()
        assert m.get("db.password") == "second-password"
        assert m.reload()  # unchanged since: nothing new, the same value serves
        assert m.get("db.password") == "second-password"
    finally:
        m.close()


def test_the_poll_sees_a_rotated_secret_file(tmp_path, secrets_dir):
    secret = secrets_dir / "db_password"
    secret.write_text("first-password\n")
    m = _manager(tmp_path, secret)
    try:
        atomic_write_text(secret, "second-password\n")
        m.reloader.poll()
        assert m.get("db.password") == "second-password"
    finally:
        m.close()


def test_the_watcher_follows_secret_volume_swaps(tmp_path, secrets_dir):
    _secret_volume_update(secrets_dir, {"db_password": "password-0\n"})
    m = _manager(tmp_path, secrets_dir / "db_password")
    try:
        m.enable_hot_reload(poll_interval=WATCHER_ONLY)
        assert wait_for(lambda: m.reloader.confirmed_at)
        for generation in range(1, 4):  # the 2nd and 3rd swaps too
            _secret_volume_update(secrets_dir, {"db_password": f"password-{generation}\n"})
            assert wait_for(lambda g=generation: m.get("db.password") == f"password-{g}")
        assert m.last_error is None
    finally:
        m.close()


def test_a_secret_file_gone_keeps_the_live_value_and_names_the_file(tmp_path, secrets_dir):
    secret = secrets_dir / "db_password"
    secret.write_text("first-password\n")
    m = _manager(tmp_path, secret)
    try:
        secret.unlink()
        assert not m.reload()  # refused: the error names the file and the key path
        assert str(secret) in str(m.last_error) and "db.password" in str(m.last_error)
        assert m.get("db.password") == "first-password"
        secret.write_text("second-password\n")
        assert m.reload()
        assert m.get("db.password") == "second-password"
    finally:
        m.close()
