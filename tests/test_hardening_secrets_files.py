"""Hardening: ``${file:...}`` secret files (audit findings 4 and 5).

Finding 4: confinement was check-then-open: ``realpath``, the prefix check, then an
``open`` that followed symlinks again, so a directory swapped for a symlink in between
read a file outside the allowed directories. The swap is made here exactly in that
window (inside ``os.path.realpath``'s return), so the test needs no race.

Finding 5: a FIFO inside a secrets directory hung the configuration load forever.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
from pathlib import Path

import pytest

from cfgcore.config.manager import ConfigurationManager
from cfgcore.errors import ConfigError
from cfgcore.runtime.secrets import allowed_secret_dirs, read_secret_file

pytestmark = [
    pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX file types"),
]


@pytest.fixture
def tree(tmp_path):
    """allowed/sub/s ("inside") and outside/sub/s ("OUTSIDE"), paths resolved."""
    root = tmp_path.resolve()
    for where, text in (("allowed", "inside"), ("outside", "OUTSIDE")):
        (root / where / "sub").mkdir(parents=True)
        (root / where / "sub" / "s").write_text(text + "\n")
    return root


def _swap_after_check(monkeypatch, swap):
    """Run ``swap`` right after read_secret_file resolved (and so checked) its path:
    the moment an attacker who controls a directory inside the allowed one needs."""
    real = os.path.realpath
    done = []

    def realpath_then_swap(path, *args, **kwargs):
        out = real(path, *args, **kwargs)
        if not done:
            done.append(path)
            swap()
        return out

    monkeypatch.setattr(os.path, "realpath", realpath_then_swap)
    return done


def test_a_directory_swapped_for_a_symlink_after_the_check_is_refused(tree, monkeypatch):
    allowed = (str(tree / "allowed"),)
    assert read_secret_file(str(tree / "allowed" / "sub" / "s"), allowed) == "inside"

    def swap():
        os.rename(tree / "allowed" / "sub", tree / "allowed" / "sub.old")
        os.symlink(tree / "outside" / "sub", tree / "allowed" / "sub")

    done = _swap_after_check(monkeypatch, swap)
    with pytest.raises(ValueError, match="replaced by a symlink after the check") as err:
        read_secret_file(str(tree / "allowed" / "sub" / "s"), allowed)
    assert done and "OUTSIDE" not in str(err.value)


def test_the_file_swapped_for_a_symlink_after_the_check_is_refused(tree, monkeypatch):
    allowed = (str(tree / "allowed"),)

    def swap():
        os.rename(tree / "allowed" / "sub" / "s", tree / "allowed" / "sub" / "s.old")
        os.symlink(tree / "outside" / "sub" / "s", tree / "allowed" / "sub" / "s")

    done = _swap_after_check(monkeypatch, swap)
    with pytest.raises(ValueError, match="the file was replaced by a symlink after the check"):
        read_secret_file(str(tree / "allowed" / "sub" / "s"), allowed)
    assert done


def test_symlinks_that_resolve_inside_still_work(tree):
    """The Kubernetes layout: name -> ..data/name, ..data -> ..2026_12_01 (a directory)."""
    allowed = tree / "allowed"
    (allowed / "..2026_12_01").mkdir()
    (allowed / "..2026_12_01" / "db_password").write_text("pw-from-k8s\n")
    (allowed / "..data").symlink_to("..2026_12_01")
    (allowed / "db_password").symlink_to("..data/db_password")
    link_to_dir = tree / "via-link"
    link_to_dir.symlink_to(allowed)  # the allowed directory itself named through a link
    dirs = allowed_secret_dirs({"CFGCORE_SECRET_DIRS": str(link_to_dir)})
    assert read_secret_file(str(link_to_dir / "db_password"), dirs) == "pw-from-k8s"
    assert read_secret_file(str(allowed / "sub" / "s"), dirs) == "inside"


@pytest.mark.skipif(not hasattr(os, "O_PATH"), reason="without O_PATH directories are read-opened")
def test_a_search_only_directory_on_the_way_is_fine(tree):
    """Opening each directory on the way needs no read permission (a path lookup does
    not). Root reads any directory, so as root the read runs in a child process that
    has dropped to the unprivileged user ``nobody``."""
    import subprocess
    import sys
    import tempfile

    if os.geteuid() != 0:
        base = tree
    else:  # a tree the child can reach: pytest's own tmp directories are root-only
        base = Path(tempfile.mkdtemp(dir="/tmp"))
        base.chmod(0o755)
        (base / "allowed" / "sub").mkdir(parents=True)
        (base / "allowed").chmod(0o755)
        (base / "allowed" / "sub" / "s").write_text("inside\n")
        (base / "allowed" / "sub" / "s").chmod(0o644)
    sub = base / "allowed" / "sub"
    sub.chmod(0o111)
    try:
        if os.geteuid() != 0:
            assert read_secret_file(str(sub / "s"), (str(base / "allowed"),)) == "inside"
            return
        code = (
            "import os\n"
            "import cfgcore.runtime.atomicio\n"  # imported as root: the interpreter's
            "from cfgcore.runtime.secrets import read_secret_file\n"  # files are root's
            "os.setgid(65534); os.setuid(65534)\n"
            f"print(read_secret_file({str(sub / 's')!r}, ({str(base / 'allowed')!r},)))\n"
            f"try:\n    os.listdir({str(sub)!r})\n"
            "except PermissionError:\n    print('no listing')\n"
        )
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-2000:]
        assert done.stdout.split() == ["inside", "no", "listing"]  # search, not read, rights
    finally:
        sub.chmod(0o755)
        if base is not tree:
            shutil.rmtree(base)


class _FifoWriter:
    """Opens the FIFO for writing and closes it at once: a reader blocked in open()
    then reads end-of-file instead of waiting forever (so a regression fails instead of
    hanging). Released at the end whether or not a reader ever came."""

    def __init__(self, path):
        self.path = path
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        os.close(os.open(self.path, os.O_WRONLY))

    def release(self):
        fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)  # lets a blocked writer go
        try:
            self.thread.join()
        finally:
            os.close(fd)


def test_a_fifo_in_a_secrets_directory_is_refused_not_waited_on(tmp_path, monkeypatch):
    sec = tmp_path / "sec"
    sec.mkdir()
    fifo = sec / "db_password"
    os.mkfifo(fifo)
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "staging.yaml").write_text(
        f"environment: staging\ndb:\n  password: '${{file:{fifo}}}'\n"
    )
    monkeypatch.setenv("CFGCORE_SECRET_DIRS", str(sec))
    monkeypatch.setenv("CFGCORE_USAGE", "0")
    writer = _FifoWriter(fifo)
    try:
        m = ConfigurationManager(str(tmp_path / "c"))
        with pytest.raises(ConfigError) as err:
            m.load_environment_config("staging")
        m.close()
    finally:
        writer.release()
    where = rf"staging\.yaml(:\d+)?: db\.password: secret file '{re.escape(str(fifo))}': "
    assert re.search(where + "not a regular file", str(err.value))


def test_a_secret_file_over_the_limit_is_refused(tmp_path):
    sec = tmp_path.resolve()
    big = sec / "big"
    with open(big, "wb") as fh:
        fh.truncate((1 << 20) + 1)
    with pytest.raises(ValueError, match="1 MiB"):
        read_secret_file(str(big), (str(sec),))
    with pytest.raises(ValueError, match="not a regular file"):
        read_secret_file(str(sec), (str(sec),))  # the directory itself
