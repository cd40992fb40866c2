"""Round 4, files: what someone who can write a shared state or config directory can
plant where cfgcore writes."""

from __future__ import annotations

import os
import stat

from cfgcore.runtime.atomicio import atomic_write


def _umask() -> int:
    # Read in a child: os.umask() twice here would change it process-wide for a moment.
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", "import os; print(os.umask(0))"],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(out.stdout)


def test_a_symlink_planted_at_the_target_does_not_lend_its_mode(tmp_path):
    theirs = tmp_path / "theirs"
    theirs.write_bytes(b"planted")
    os.chmod(theirs, 0o666)
    target = tmp_path / "state" / "flags.msgpack"
    target.parent.mkdir()
    target.symlink_to(theirs)
    atomic_write(target, b"ours")
    assert not target.is_symlink() and target.read_bytes() == b"ours"
    assert theirs.read_bytes() == b"planted"  # the link was replaced, not followed
    mode = stat.S_IMODE(target.stat().st_mode)
    assert not mode & stat.S_IWOTH  # was 0666: every user could rewrite our file
    assert mode == 0o644 & ~_umask()


def test_an_existing_regular_file_keeps_its_permission_bits_but_not_set_id_bits(tmp_path):
    target = tmp_path / "development.yaml"
    target.write_bytes(b"a: 1\n")
    os.chmod(target, 0o6640)
    atomic_write(target, b"a: 2\n")
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
