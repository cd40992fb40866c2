"""Keeping a rewritten file's owner must never fail the write.

``atomic_write`` gives the new file the old one's owner and group before the rename. It
did so first, before setting the mode and writing the data: a writer that may give a
file away (``CAP_CHOWN``) but not change the mode of a file it no longer owns (no
``CAP_FOWNER``: a hardened container's root, ``capabilities: drop [ALL], add
[CHOWN]``) gave the temp file away and then failed its own ``fchmod``, so every rewrite
of a file owned by the service account raised ``PermissionError`` (and a disk quota is
charged to the owner at the moment of the give-away, so the data written after it
counted against the service's quota). The owner is now given last, once the mode and
the data are in place, and a refusal still only leaves the file the writer's own.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

pytestmark = [
    pytest.mark.skipif(not hasattr(os, "fchown"), reason="POSIX ownership"),
    pytest.mark.skipif(
        not hasattr(os, "geteuid") or os.geteuid() != 0,
        reason="giving a file to another user needs root",
    ),
    pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv (util-linux)"),
]

UID, GID = 54321, 54322  # a service account that is not the writer

SCRIPT = r"""
import os, sys
from cfgcore.runtime.atomicio import atomic_write
path = sys.argv[1]
atomic_write(path, b"a: 2\n")
atomic_write(path, b"a: 3\n", mode=0o600)
"""


def _without_fowner(*argv: str) -> subprocess.CompletedProcess[str]:
    # Root with CAP_CHOWN but without CAP_FOWNER (dropped from the bounding set, so the
    # child's root has it neither permitted nor effective).
    return subprocess.run(
        ["setpriv", "--bounding-set=-fowner", "--inh-caps=-fowner", *argv],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_root_without_cap_fowner_rewrites_a_service_file(tmp_path):
    probe = _without_fowner(sys.executable, "-c", "print(1)")
    if probe.returncode != 0:
        pytest.skip(f"cannot drop CAP_FOWNER here: {probe.stderr.strip()}")
    path = tmp_path / "settings.yaml"
    path.write_text("a: 1\n")
    os.chown(path, UID, GID)
    path.chmod(0o640)
    done = _without_fowner(sys.executable, "-c", SCRIPT, str(path))
    assert done.returncode == 0, done.stderr
    assert path.read_text() == "a: 3\n"
    st = path.stat()
    assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (UID, GID, 0o600)
    assert [p.name for p in tmp_path.iterdir()] == ["settings.yaml"]  # no temp file left


def test_a_refused_give_away_leaves_the_writers_file(tmp_path):
    """Root in a user namespace sees another user's file as the overflow id it cannot
    give a file to: the rewrite succeeds, the file is the writer's, mode kept."""
    if shutil.which("unshare") is None:
        pytest.skip("needs unshare (util-linux)")
    probe = subprocess.run(
        ["unshare", "--map-root-user", sys.executable, "-c", "print(1)"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if probe.returncode != 0:
        pytest.skip(f"no user namespaces here: {probe.stderr.strip()}")
    tmp_path.chmod(0o777)
    path = tmp_path / "settings.yaml"
    path.write_text("a: 1\n")
    os.chown(path, UID, GID)
    path.chmod(0o644)
    script = r"""
import os, sys
from cfgcore.runtime.atomicio import atomic_write
atomic_write(sys.argv[1], b"a: 2\n")
"""
    done = subprocess.run(
        ["unshare", "--map-root-user", sys.executable, "-c", script, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert path.read_text() == "a: 2\n"
    st = path.stat()
    assert st.st_uid == 0 and st.st_mode & 0o777 == 0o644  # ours (mapped back), mode kept
