"""atomic_write: whole content or old content, permissions as documented, no litter."""

from __future__ import annotations

import errno
import os
import stat
import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.runtime.atomicio import (
    _READ_CHUNK,
    MAX_READ_BYTES,
    atomic_write,
    read_regular,
    read_regular_fd,
)
from tests.fuzz import examples


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


# Bounded reads of regular files (configuration, flag and key files)


@given(
    size=st.integers(0, 3 * _READ_CHUNK + 7),
    max_bytes=st.integers(0, 3 * _READ_CHUNK + 7),
    offset=st.integers(0, 300),
)
@settings(max_examples=examples(60), deadline=None)
def test_read_regular_returns_the_file_or_refuses_it_past_the_limit(
    tmp_path_factory, size, max_bytes, offset
):
    path = tmp_path_factory.mktemp("read") / "f"
    data = os.urandom(size)
    path.write_bytes(data)
    fd = os.open(path, os.O_RDONLY)
    try:
        os.lseek(fd, min(offset, size), os.SEEK_SET)  # read from where the fd stands
        rest = data[min(offset, size) :]
        if len(rest) > max_bytes:
            with pytest.raises(OSError) as info:
                read_regular_fd(fd, max_bytes)
            assert info.value.errno == errno.EFBIG
        else:
            assert read_regular_fd(fd, max_bytes) == rest
    finally:
        os.close(fd)
    if size <= max_bytes:
        assert read_regular(path, max_bytes) == data


def test_read_regular_reads_a_file_that_grows_while_it_is_read(tmp_path):
    # The size fstat gives is a first guess: what is written after it is read too.
    path = tmp_path / "f"
    path.write_bytes(b"a" * 10)
    fd = os.open(path, os.O_RDONLY)
    real_fstat = os.fstat

    def fstat_then_grow(f):
        st = real_fstat(f)
        with open(path, "ab") as fh:
            fh.write(b"b" * (2 * _READ_CHUNK))
        return st

    try:
        os.fstat = fstat_then_grow
        data = read_regular_fd(fd)
    finally:
        os.fstat = real_fstat
        os.close(fd)
    assert data == b"a" * 10 + b"b" * (2 * _READ_CHUNK)


def test_a_small_file_is_read_without_a_buffer_of_the_limits_size(tmp_path):
    # The limit is 64 MiB: a buffer that large for every small file read is 64 MiB of
    # committed memory where the kernel does not overcommit.
    path = tmp_path / "small.yaml"
    path.write_bytes(b"a: 1\n")
    tracemalloc.start()
    try:
        assert read_regular(path) == b"a: 1\n"
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < MAX_READ_BYTES // 64
