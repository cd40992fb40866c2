"""atomic_write: whole content or old content, permissions as documented, no litter."""

from __future__ import annotations

import os
import stat

import pytest

from cfgcore.runtime.atomicio import atomic_write


def test_new_file_gets_0644_minus_umask_and_no_temp_files_remain(tmp_path):
    old = os.umask(0o027)
    try:
        atomic_write(tmp_path / "flags.json", b"{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "flags.json").st_mode) == 0o640
    assert os.listdir(tmp_path) == ["flags.json"]


def test_existing_mode_is_kept_and_explicit_mode_wins(tmp_path):
    target = tmp_path / "audit.jsonl"
    target.write_bytes(b"old")
    os.chmod(target, 0o600)
    atomic_write(target, b"new")
    assert target.read_bytes() == b"new" and stat.S_IMODE(os.stat(target).st_mode) == 0o600
    atomic_write(target, b"newer", mode=0o640)
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o640


def test_umask_is_never_changed_while_writing(tmp_path, monkeypatch):
    """The umask is process-wide: setting it to 0 even briefly (to read it) would give
    files another thread creates in that window world-writable permissions."""
    calls = []
    real = os.umask
    monkeypatch.setattr(os, "umask", lambda m: calls.append(m) or real(m))
    atomic_write(tmp_path / "new.json", b"x")
    atomic_write(tmp_path / "new.json", b"y")
    assert calls == []


def test_failed_write_leaves_the_old_content_and_no_temp(tmp_path):
    target = tmp_path / "flags.json"
    target.write_bytes(b"good")

    with pytest.raises(TypeError):
        atomic_write(target, object())  # type: ignore[arg-type]
    assert target.read_bytes() == b"good"
    assert os.listdir(tmp_path) == ["flags.json"]


# --- file locks across fork -------------------------------------------------------------------


def _fork_child(body):
    """Fork; the child runs ``body()`` and exits 0 (1 if it raised)."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        try:
            body()
        except BaseException:
            os._exit(1)
        os._exit(0)
    return pid


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX")
def test_a_child_forked_while_a_file_lock_is_held_does_not_keep_it(tmp_path):
    """An flock belongs to the open file, which a child forked meanwhile shares: the
    lock is released with LOCK_UN, so a long-lived child (a pre-fork worker) does not
    keep every other process waiting."""
    import threading
    import time

    from cfgcore.runtime.atomicio import FileLock

    path = str(tmp_path / "x.lock")
    lock = FileLock(path)
    lock.acquire()
    child = _fork_child(lambda: time.sleep(60))  # holds a copy of the descriptor
    try:
        lock.release()
        again = threading.Event()

        def take():
            with FileLock(path):
                again.set()

        threading.Thread(target=take, daemon=True).start()
        assert again.wait(15), "the lock stayed held by the forked child"
    finally:
        os.kill(child, 9)
        os.waitpid(child, 0)
