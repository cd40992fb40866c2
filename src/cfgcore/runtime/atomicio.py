"""Safe file IO: atomic writes (a reader sees the old content or the new content, never
a mix) and bounded reads (:func:`read_regular`).

The recipe is the classic one: write a temporary file in the same directory, fsync it,
rename it over the target (atomic on POSIX and, via ``os.replace``, on Windows), then
fsync the directory so the rename itself survives a crash. A hot-reload watcher on the
same directory therefore never reads a half-written file written by cfgcore.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no cross-process locks
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "MAX_READ_BYTES",
    "FileLock",
    "atomic_write",
    "atomic_write_text",
    "fsync_dir",
    "read_regular",
    "read_regular_fd",
]


class FileLock:
    """An ``flock`` on a lock file, held between :meth:`acquire` and :meth:`release`
    (or for a ``with`` block): other processes taking it wait, and so do other threads
    through their own ``FileLock`` (each opens the file, and an flock belongs to the open
    file). One ``FileLock`` object is not for sharing between threads.

    Released with ``LOCK_UN`` before the close: an flock belongs to the open file, not
    to the descriptor, and a process forked while it is held keeps a copy of the
    descriptor, so a close alone would leave the file locked for as long as that child
    lives (every other process, the parent included, would wait on it).

    ``create=False``: a lock file that is missing or cannot be opened means no lock
    (readers of a log nobody writes). Without ``fcntl`` (Windows): no lock.
    """

    def __init__(self, path: str, *, shared: bool = False, create: bool = True,
                 mode: int = 0o644) -> None:  # fmt: skip
        self.path, self.shared, self.create, self.mode = path, shared, create, mode
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock (waits); OSError when the lock file cannot be opened."""
        if fcntl is None:
            return
        # Never through a symlink when creating (a link planted in the state directory
        # would make us create a file wherever it points, /etc/nologin say), and never
        # blocking on a FIFO put in the lock file's place.
        nonblock = getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
        if self.create:
            flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | nonblock
            fd = os.open(self.path, flags, self.mode)
        else:
            try:
                fd = os.open(self.path, os.O_RDONLY | nonblock)
            except OSError:
                return
        try:
            fcntl.flock(fd, fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def __enter__(self) -> FileLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


# What a configuration or flag file may hold: far above any real one (10,000 flags are
# under 1 MB of YAML), far below what would exhaust a worker's memory.
MAX_READ_BYTES = 64 * 1024 * 1024


def read_regular(path: str | os.PathLike[str], max_bytes: int = MAX_READ_BYTES) -> bytes:
    """The bytes of the regular file ``path`` (symlinks followed), at most ``max_bytes``.

    Raises :class:`OSError` (``strerror`` says why) for anything else: a FIFO (whose
    open would block until a writer came) or a device such as ``/dev/zero`` (endless),
    a directory, or a file over the limit.
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    try:
        return read_regular_fd(fd, max_bytes)
    finally:
        os.close(fd)


def read_regular_fd(fd: int, max_bytes: int = MAX_READ_BYTES) -> bytes:
    """:func:`read_regular` of a file already open as ``fd`` (left open): for a caller
    that must check what it opened before reading (secret files, opened with
    ``O_NOFOLLOW | O_NONBLOCK`` so a FIFO does not block the open)."""
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        raise OSError(errno.EINVAL, "not a regular file (a FIFO, a device or a directory)")
    with os.fdopen(fd, "rb", closefd=False) as fh:
        data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise OSError(errno.EFBIG, f"file is over the {max_bytes // (1024 * 1024)} MiB limit")
    return data


def atomic_write(path: str | os.PathLike[str], data: bytes, *, mode: int | None = None) -> None:
    """Replace ``path`` with ``data`` atomically (temp file, fsync, rename, dir fsync).

    ``mode`` sets the permission bits of the new file; by default an existing file's
    mode is kept, and a new file gets ``0o644`` minus the umask.

    >>> atomic_write("/tmp/cfgcore-doc.txt", b"hello")
    """
    target = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(target))
    if mode is None:
        with contextlib.suppress(FileNotFoundError):
            mode = os.stat(target).st_mode & 0o7777
    # A new file without an explicit mode is created 0o644 and the kernel applies the
    # umask: reading the umask (os.umask twice) would briefly set it process-wide,
    # and another thread creating a file in that window would get it world-writable.
    fd, tmp = _create_temp(directory, os.path.basename(target), 0o644 if mode is None else 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            if mode is not None and hasattr(os, "fchmod"):
                # On the descriptor, not the name: someone who can write the directory
                # could swap the temp name for a symlink before a chmod by name, which
                # would change the mode of whatever it points to (/etc/shadow as root).
                os.fchmod(fh.fileno(), mode)
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if mode is not None and not hasattr(os, "fchmod"):  # pragma: no cover - Windows
            os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(directory)


def _create_temp(directory: str, base: str, perm: int) -> tuple[int, str]:
    # A dot-prefixed temp name keeps editors' and watchers' globs (``*.yaml``) off it.
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        name = os.path.join(directory, f".{base}.{secrets.token_hex(6)}.tmp")
        try:
            return os.open(name, flags, perm), name
        except FileExistsError:
            continue
    raise FileExistsError(f"cannot create a temporary file next to {base} in {directory}")


def atomic_write_text(path: str | os.PathLike[str], text: str, *, mode: int | None = None) -> None:
    """:func:`atomic_write` for text, encoded as UTF-8."""
    atomic_write(path, text.encode("utf-8"), mode=mode)


def fsync_dir(directory: str) -> None:
    """Make a rename or a new file in ``directory`` durable (fsync the directory)."""
    # Directories cannot be opened for fsync on Windows; the rename is still atomic there.
    if os.name == "nt":  # pragma: no cover
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
