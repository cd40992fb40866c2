"""A flags file that is a symbolic link stays one after a change.

``atomic_write`` renamed its temp file over the path, which replaced the link with a
regular file on the first flag change: the file the link pointed to (a checkout, a
directory shared by a deployment) no longer received changes, and every later edit of
it was silently ignored. The flag file is now written through the link (the file it
points to is replaced, in its own directory, with its mode kept). cfgcore's own state
files still replace a link at their path (one planted there must not redirect a
write). Real files, real managers, a real second process."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest

import cfgcore
from cfgcore.dynamic_config import DynamicConfigurationManager
from cfgcore.runtime.atomicio import atomic_write
from cfgcore.runtime.flagstore import FileFlagStore
from cfgcore.snapshot import load_snapshot

SRC = os.path.dirname(os.path.dirname(os.path.abspath(cfgcore.__file__)))
FLAGS = "flags:\n  beta:\n    variants: {on: true, off: false}\n    default: 'off'\n"


@pytest.fixture
def linked(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    target = shared / "flags.yaml"
    target.write_text(FLAGS)
    os.chmod(target, 0o640)
    config = tmp_path / "service"
    config.mkdir()
    link = config / "flags.yaml"
    link.symlink_to(target)
    return link, target


def test_a_flag_change_through_a_link_keeps_the_link(linked, tmp_path):
    link, target = linked
    m = DynamicConfigurationManager(store=str(link), state_dir=tmp_path / "state",
                                    log_exposures=False)  # fmt: skip
    try:
        m.set_feature_flag("beta", True)
        m.set_feature_flag("gamma", True)
    finally:
        m.close()
    assert os.path.islink(link) and os.readlink(link) == str(target)
    assert "gamma" in load_snapshot(str(target)).flags
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o640  # the file's mode is kept
    # the lock and the version sidecar live beside the file, not beside the link
    assert (target.parent / ".flags.yaml.version").exists()
    assert not any(p.name.endswith(".tmp") for p in (*target.parent.iterdir(),
                                                     *link.parent.iterdir()))  # fmt: skip


def test_a_process_writing_the_file_itself_and_one_writing_through_the_link_share_it(
    linked, tmp_path
):
    """The link and the file name one store: both writers take the same lock and count
    the same versions, so neither write is lost."""
    link, target = linked
    script = (
        "import sys\n"
        "from cfgcore.runtime.flagstore import FileFlagStore\n"
        "from cfgcore.snapshot import Flag, Snapshot\n"
        "store = FileFlagStore(sys.argv[1])\n"
        "for i in range(25):\n"
        "    store.update(lambda s: Snapshot(flags={**s.flags, f'{sys.argv[2]}{i}':\n"
        "        Flag(variants={'on': True, 'off': False}, default='on')}))\n"
    )
    env = dict(os.environ, PYTHONPATH=SRC)
    before = FileFlagStore(str(target)).read().version
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(path), name],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for path, name in ((link, "via_link_"), (target, "direct_"))
    ]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert all(p.returncode == 0 for p in procs), errors
    assert os.path.islink(link)
    doc = FileFlagStore(str(link)).read()
    assert len([k for k in doc.snapshot.flags if k != "beta"]) == 50
    assert doc.version == FileFlagStore(str(target)).read().version == before + 50


def test_state_files_still_replace_a_link_at_their_path(tmp_path):
    """cfgcore's own files (cache files, usage, audit records) keep the old rule: a link
    planted at their path is replaced, never written through."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_bytes(b"theirs")
    planted = tmp_path / "state.msgpack"
    planted.symlink_to(elsewhere)
    atomic_write(planted, b"ours")
    assert not os.path.islink(planted) and planted.read_bytes() == b"ours"
    assert elsewhere.read_bytes() == b"theirs"
