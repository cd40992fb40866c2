"""A Redis store's CA file (``ssl_ca_certs=``) that others may rewrite.

The CA certificates decide which server the store's TLS connections trust, and so
(without fleet signing) whose flags the fleet serves. A CA file every local user may
rewrite or replace, or another user's in a directory every user may create files in
(``/tmp``), was loaded as given: any local user could put their own CA there and answer
as the Redis server. It is refused when the store is opened, naming the option, as a
key or policy file that others may rewrite is; an ordinary one is taken.
"""

from __future__ import annotations

import os

import pytest

from cfgcore.errors import ConfigError
from cfgcore.runtime.redis_store import RedisFlagStore

pytestmark = pytest.mark.skipif(os.name == "nt", reason="POSIX modes")


def _url(ca) -> str:
    return f"rediss://127.0.0.1:1/0?namespace=ca&cache=off&ssl_ca_certs={ca}"


@pytest.fixture
def ca(tmp_path):
    path = tmp_path / "ca.pem"
    path.write_text("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n")
    path.chmod(0o644)
    return path


def test_a_ca_file_every_user_may_write_is_refused(ca):
    ca.chmod(0o666)
    with pytest.raises(ConfigError) as err:
        RedisFlagStore(_url(ca))
    text = str(err.value)
    assert f"ssl_ca_certs={ca} refused" in text and "writable by every user" in text
    assert "rediss://127.0.0.1:1/0" in text  # the store named
    ca.chmod(0o644)
    RedisFlagStore(_url(ca)).close()  # an ordinary CA file is taken


def test_a_ca_file_in_a_directory_anyone_may_replace_files_in_is_refused(tmp_path, ca):
    ca.parent.chmod(0o777)  # no sticky bit
    try:
        with pytest.raises(ConfigError, match="anyone may replace it"):
            RedisFlagStore(_url(ca))
    finally:
        ca.parent.chmod(0o755)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="chown needs root")
def test_another_users_ca_file_in_a_shared_directory_is_refused(tmp_path, ca):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    theirs = shared / "ca.pem"
    theirs.write_bytes(ca.read_bytes())
    os.chown(theirs, 12345, 12345)
    with pytest.raises(ConfigError, match="belongs to uid 12345"):
        RedisFlagStore(_url(theirs))
