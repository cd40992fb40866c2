"""``atomic_write`` replacing a file another user may have planted.

A rewrite keeps the old file's owner, group and mode (root rewriting a service's
``root:app`` 0640 file must leave it readable by the service). In a directory every user
may create files in (``/tmp``, sticky), another user could make the name first, 0666:
root's rewrite (root may replace another user's file there) then gave the new file to
them, writable by them and by everyone: a cache file, checkpoint or flags file of a
root-run service became theirs to rewrite for good. There, another user's file lends
neither its owner nor write access for others; elsewhere (``/etc/app``, which only root
writes) a service account's file keeps its owner as before. Needs root (chown).
"""

from __future__ import annotations

import os

import pytest

from cfgcore.runtime.atomicio import atomic_write

pytestmark = pytest.mark.skipif(
    os.name == "nt" or not hasattr(os, "geteuid") or os.geteuid() != 0,
    reason="giving a file to another user needs root",
)

OTHER = 12345


@pytest.fixture(autouse=True, params=["c", "python"])
def steps(request, monkeypatch):
    """Both ways atomic_write makes its steps: cfgcore._atomic's one C call (where
    built) and the Python steps; each applies the rule."""
    from cfgcore.runtime import atomicio

    if request.param == "python":
        monkeypatch.setattr(atomicio, "_native", None)
    elif atomicio._native is None:
        pytest.skip("cfgcore._atomic is not built here (a pure-Python install)")
    return request.param


def _planted(directory, mode):
    path = directory / "state.json"
    path.write_text("{}")
    os.chown(path, OTHER, OTHER)
    path.chmod(mode)
    return path


@pytest.mark.parametrize("dir_mode", [0o1777, 0o777])
def test_another_users_file_in_a_shared_directory_is_not_handed_back(tmp_path, dir_mode):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(dir_mode)
    path = _planted(shared, 0o666)
    atomic_write(path, b'{"ours": 1}')
    st = path.stat()
    assert (st.st_uid, st.st_gid) == (os.geteuid(), os.getegid())
    assert st.st_mode & 0o777 == 0o644  # no write access for others
    assert path.read_bytes() == b'{"ours": 1}'
    atomic_write(path, b"{}", mode=0o600)  # an explicit mode as given
    assert path.stat().st_mode & 0o777 == 0o600


def test_a_service_accounts_file_elsewhere_keeps_its_owner(tmp_path):
    private = tmp_path / "etc-app"
    private.mkdir()
    private.chmod(0o755)
    path = _planted(private, 0o660)
    atomic_write(path, b"{}")
    st = path.stat()
    assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (OTHER, OTHER, 0o660)
