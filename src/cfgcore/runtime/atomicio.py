"""Safe file IO: atomic writes (a reader sees the old content or the new content, never
a mix) and bounded reads (:func:`read_regular`).

The recipe is the classic one: write a temporary file in the same directory, fsync it,
rename it over the target (atomic on POSIX and, via ``os.replace``, on Windows), then
fsync the directory so the rename itself survives a crash. A hot-reload watcher on the
same directory therefore never reads a half-written file written by cfgcore. A symbolic
link at the target is replaced, unless the caller asks to write the file it points to
(``follow_symlinks``).
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
import time
from types import ModuleType
from typing import Any

from cfgcore._env import NO_EXTENSIONS, extension_missing

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no cross-process locks
    fcntl = None  # type: ignore[assignment]

# The atomic write's system calls in one C call that releases the GIL once (POSIX
# builds with the compiled extensions; see cfgcore/_atomic.pyx): each call made from
# Python lets a CPU-bound thread of the process take the GIL, and taking it back may
# wait a switch interval (5 ms) each time. The Python steps below are the reference.
_native: ModuleType | None = None
if not NO_EXTENSIONS and os.name != "nt":
    try:
        from cfgcore import _atomic as _native  # type: ignore[no-redef]
    except ImportError as exc:  # the Python steps, said once (cfgcore._env)
        _native = None
        extension_missing("cfgcore._atomic", exc)
#: True when :func:`atomic_write` makes its system calls in one C call.
NATIVE = _native is not None

__all__ = [
    "MAX_READ_BYTES",
    "NATIVE",
    "FileLock",
    "LockTimeout",
    "atomic_write",
    "atomic_write_text",
    "ForeignStateFile",
    "foreign_opened",
    "foreign_owned",
    "foreign_state_file",
    "fsync_dir",
    "read_regular",
    "read_regular_fd",
    "read_state_file",
    "refuse_foreign",
    "replaceable_by_all",
    "trust_fix",
    "write_state_file",
]


class LockTimeout(OSError):
    """:class:`FileLock` with a ``timeout`` found the lock held by another open file (a
    process, or a thread with its own ``FileLock``) for all of it. ``path``: the lock
    file; ``holder``: the pid that took the lock, when the system says (``/proc/locks``)."""

    def __init__(self, path: str, timeout: float, holder: int | None) -> None:
        by = f"pid {holder}" if holder else "another process"
        super().__init__(errno.EWOULDBLOCK,
                         f"lock held by {by} for over {timeout:g} s", path)  # fmt: skip
        self.path, self.timeout, self.holder = path, timeout, holder


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

    A lock file another local user may have put there (:func:`foreign_opened`: theirs,
    in a directory others may create files in) is judged as opened: taking it raises
    :class:`ForeignStateFile` at once (its owner could hold it for ever), and with
    ``create=False`` it is no lock.

    ``timeout`` (seconds): wait at most that long, then raise :class:`LockTimeout`
    (``None``: wait for as long as it takes). Anyone who can open a lock file can flock
    it, even read-only, and hold it forever: a writer that must not hang takes it with a
    timeout. ``restrict``: an existing lock file (ours) with more permission bits than
    ``mode`` is narrowed to ``mode``, so users it no longer admits cannot open it again.
    """

    def __init__(self, path: str, *, shared: bool = False, create: bool = True,
                 mode: int = 0o644, timeout: float | None = None,
                 restrict: bool = False) -> None:  # fmt: skip
        self.path, self.shared, self.create, self.mode = path, shared, create, mode
        self.timeout, self.restrict = timeout, restrict
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock (waits, up to ``timeout``); OSError when the lock file cannot be
        opened, :class:`LockTimeout` when it stayed held for all of ``timeout``."""
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
            # Judged as opened (fstat): another user's lock file where others may create
            # files (planted before this service's first write) is theirs to flock and
            # hold for ever. A writer is refused at once, naming it; a reader takes no
            # lock rather than wait on it (the writers refuse that file too).
            why = foreign_opened(self.path, fd)
            if why:
                if not self.create:
                    os.close(fd)
                    return
                raise ForeignStateFile(os.path.abspath(self.path), why, state_file_fix(why))
            if self.restrict:
                _narrow_mode(fd, self.mode)
            op = fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX
            if self.timeout is None:
                fcntl.flock(fd, op)
            else:
                self._flock_within(fd, op, self.timeout)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def _flock_within(self, fd: int, op: int, timeout: float) -> None:
        # flock has no timeout of its own: poll LOCK_NB (a signal-based alarm would be
        # process-wide and main-thread only). Short sleeps first, a writer's turn is short.
        deadline = time.monotonic() + timeout
        delay = 0.001
        while True:
            try:
                fcntl.flock(fd, op | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                pass
            left = deadline - time.monotonic()
            if left <= 0:
                raise LockTimeout(self.path, timeout, _lock_holder(fd))
            time.sleep(min(delay, left))
            delay = min(delay * 2, 0.05)

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


def _narrow_mode(fd: int, mode: int) -> None:
    """Take the bits ``mode`` does not have off the open file ``fd`` if it is ours (a
    lock file created by an older version with a wider mode)."""
    st = os.fstat(fd)
    if hasattr(os, "geteuid") and st.st_uid != os.geteuid():
        return
    if st.st_mode & 0o7777 & ~mode:
        with contextlib.suppress(OSError):
            os.fchmod(fd, st.st_mode & 0o7777 & mode)


def _lock_holder(fd: int) -> int | None:
    """The pid holding an flock on the file open as ``fd``, from ``/proc/locks`` (Linux;
    None elsewhere, or when it cannot be told)."""
    try:
        st = os.fstat(fd)
        with open("/proc/locks", encoding="ascii", errors="replace") as fh:
            lines = fh.read(1 << 20).splitlines()
    except OSError:
        return None
    dev = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    for line in lines:
        # "1: FLOCK  ADVISORY  WRITE 1234 fd:01:56789 0 EOF" (waiters have a "->").
        parts = line.split()
        if len(parts) >= 6 and parts[1] == "FLOCK" and parts[5] == dev:
            with contextlib.suppress(ValueError):
                pid = int(parts[4])
                if pid > 0 and pid != os.getpid():
                    return pid
    return None


# What a configuration or flag file may hold: far above any real one (10,000 flags are
# under 1 MB of YAML), far below what would exhaust a worker's memory.
MAX_READ_BYTES = 64 * 1024 * 1024


def read_regular(path: str | os.PathLike[str], max_bytes: int = MAX_READ_BYTES) -> bytes:
    """The bytes of the regular file ``path`` (symlinks followed), at most ``max_bytes``.

    Raises :class:`OSError` (``strerror`` says why) for anything else: a FIFO (whose
    open would block until a writer came) or a device such as ``/dev/zero`` (endless),
    a directory, or a file over the limit.
    """
    # Checked before the open as well as after it: opening a device does things of its
    # own (a watchdog starts, a tape rewinds, a terminal becomes the controlling one of
    # a daemon without one), and a link planted in a watched directory may name one.
    if not stat.S_ISREG(os.stat(path).st_mode):
        raise OSError(errno.EINVAL, _NOT_REGULAR)
    fd = os.open(path, os.O_RDONLY | _NONBLOCK | _NOCTTY | getattr(os, "O_BINARY", 0))
    try:
        return read_regular_fd(fd, max_bytes)
    finally:
        os.close(fd)


_NOT_REGULAR = "not a regular file (a FIFO, a device or a directory)"
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_NOCTTY = getattr(os, "O_NOCTTY", 0)
_READ_CHUNK = 1 << 16  # what a read past the size fstat gave asks for


def read_regular_fd(fd: int, max_bytes: int = MAX_READ_BYTES) -> bytes:
    """:func:`read_regular` of a file already open as ``fd`` (left open): for a caller
    that must check what it opened before reading (secret files, opened with
    ``O_NOFOLLOW | O_NONBLOCK`` so a FIFO does not block the open)."""
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        raise OSError(errno.EINVAL, _NOT_REGULAR)
    # Read as much as the file holds, then once more to find its end (or that it grew
    # meanwhile), up to one byte past the limit: a buffer of the limit's size (64 MiB,
    # committed memory where the kernel does not overcommit) is never allocated for a
    # small file, and a read costs three system calls.
    limit = max_bytes + 1
    parts: list[bytes] = []
    got = 0
    while got < limit:
        chunk = os.read(fd, min(max(st.st_size + 1 - got, _READ_CHUNK), limit - got))
        if not chunk:
            break
        parts.append(chunk)
        got += len(chunk)
    data = parts[0] if len(parts) == 1 else b"".join(parts)
    if len(data) > max_bytes:
        raise OSError(errno.EFBIG, f"file is over the {max_bytes // (1024 * 1024)} MiB limit")
    return data


def rewritable_by_all(path: str, st: os.stat_result | None = None) -> str:
    """Why every local user may rewrite ``path`` or put another file in its place
    (``""``: none may): the file itself writable by every user, else
    :func:`replaceable_by_all`. The check every file that grants trust goes through
    (keys, access policies, ``.env`` files). ``st``: the file's stat, when the caller
    has it; a file that cannot be stat'ed is judged by its directories only (reading it
    says why it is missing)."""
    if os.name == "nt":  # pragma: no cover - no POSIX permission bits
        return ""
    if st is None:
        try:
            st = os.stat(path)
        except OSError:
            st = None
    if st is not None and st.st_mode & stat.S_IWOTH:
        return f"it is writable by every user (mode {stat.S_IMODE(st.st_mode):04o})"
    return replaceable_by_all(path)


def replaceable_by_all(path: str, *, judged_by_owner: bool = False) -> str:
    """Why every local user may put another file in place of ``path`` (``""``: none may).

    A directory every user may write without the sticky bit lets anyone rename what it
    holds: ``path``'s own directory, and any directory above it (a subdirectory renamed
    away and made again). One every user may create files in (``/tmp``, sticky) lets
    anyone be first to make a name there: what it holds on the way to ``path`` (the
    file, a symlink to it, a directory above it) must then be this user's or root's, as
    whoever made it may replace or rewrite it (a policy or key file another user left
    in ``/tmp``, or in a directory they made there, was theirs to fill). Checked on the
    way to ``path`` as written and as resolved (a symlink's own directory counts too).

    ``judged_by_owner``: a directory every user may write without the sticky bit is
    judged as a sticky one, by the owner of what it holds: for a file whose reader
    reads the very file it judged (:func:`read_state_file`), so that another user's
    file renamed in is refused while this user's own reads."""
    if os.name == "nt":  # pragma: no cover - no POSIX permission bits
        return ""
    seen: set[tuple[str, str]] = set()
    for start in (os.path.abspath(path), os.path.realpath(path)):
        entry, directory = start, os.path.dirname(start)
        while (directory, entry) not in seen:
            seen.add((directory, entry))
            try:
                st = os.stat(directory)
            except OSError:
                st = None
            if st is not None and st.st_mode & stat.S_IWOTH and not _read_only(directory):
                own = directory == os.path.dirname(start)
                where = "its directory" if own else "the directory"
                if not st.st_mode & stat.S_ISVTX and not judged_by_owner:
                    return (
                        f"{where} {directory} is writable by every user (mode "
                        f"{stat.S_IMODE(st.st_mode):04o}), so anyone may replace "
                        + ("it" if own else "what it holds, and it")
                    )
                owner = _owner(entry)
                if owner is not None and owner not in (0, os.geteuid()):
                    what = "this one" if own else f"{os.path.basename(entry)} in it"
                    return (
                        f"{where} {directory} {_CREATE_BY_ALL}, and {what} belongs to uid {owner}"
                    )
            entry, directory = directory, os.path.dirname(directory)
    return ""


def trust_fix(why: str) -> str:
    """What makes a file :func:`rewritable_by_all` refused for ``why`` trusted again."""
    if _CREATE_BY_ALL in why:
        return "keep it in a directory other users cannot write, owned by this user or root"
    return "chmod o-w"


# How replaceable_by_all names a directory every user may create files in.
_CREATE_BY_ALL = "lets every user create files"


class ForeignStateFile(PermissionError):
    """A file cfgcore writes in its state directory (flags, a fleet cache file, the usage
    file, a log it appends to, a lock file) that another local user may have put there:
    :func:`read_state_file` refuses to read it, :func:`refuse_foreign` (the logs) and
    :class:`FileLock` to append to it or lock it. ``why`` says why, ``fix`` what makes
    the file read again, ``filename`` names it; the message says all three."""

    def __init__(self, path: str, why: str, fix: str) -> None:
        super().__init__(
            errno.EPERM, f"refused: {why}, so another user may have put it there ({fix})", path
        )
        self.why, self.fix = why, fix


def foreign_state_file(path: str | os.PathLike[str]) -> str:
    """Why the file at ``path``, one cfgcore writes itself in its state directory, may be
    another local user's rather than this service's (``""``: it may not). The rule the
    ingest journal is judged by, where it matters, and the one of key files:

    - on the way to ``path`` as written, a directory that lets other users create files
      (writable by its group or by every user, and not a read-only mount): what it holds
      there (the file, the symlink at ``path``, a directory above it) must be this
      user's, root's or that directory's owner's. A symlink of theirs is not followed;
      one of these owners' is, to wherever it leads (a deployment's own link);
    - on the way as resolved, a directory every user may write (:func:`replaceable_by_all`,
      the rule of key, policy and ``.env`` files): what it holds must be this user's or
      root's. One without the sticky bit (a Kubernetes ``emptyDir`` volume, mode 0777)
      lets every user rename what it holds, but not make a file this user's: judged by
      owner as a sticky one, since :func:`read_state_file` reads the very file it judged.

    A state directory only its owner may write, under directories other users cannot
    write (the default, under the user's home), holds nothing refused. A file that cannot
    be stat'ed is not judged: reading it says why."""
    return _judge_state_file(path)[0]


def _judge_state_file(path: str | os.PathLike[str]) -> tuple[str, os.stat_result | None]:
    """:func:`foreign_state_file`, and the ``lstat`` of ``path`` it judged (None: none)."""
    if os.name == "nt" or not hasattr(os, "geteuid"):  # pragma: no cover - no POSIX owners
        return "", None
    path = os.path.abspath(os.fspath(path))
    entry, directory = path, os.path.dirname(path)
    judged: os.stat_result | None = None
    while entry != directory:  # (up to the root, whose dirname is itself)
        try:
            st, home = os.lstat(entry), os.stat(directory)
        except OSError:
            return "", judged  # (reading it says why)
        if entry == path:
            judged = st
        if (
            home.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
            and st.st_uid not in (0, os.geteuid(), home.st_uid)
            and not _read_only(directory)
        ):
            if entry != path:
                what = f"the directory {os.path.basename(entry)} on its way"
            else:
                what = "a symlink" if stat.S_ISLNK(st.st_mode) else "it"
            who = "its group" if not home.st_mode & stat.S_IWOTH else "every user"
            return (
                f"{what} belongs to uid {st.st_uid}, not to this user, root or the owner "
                f"of {directory}, which {who} may create files in "
                f"(mode {stat.S_IMODE(home.st_mode):04o})"
            ), judged
        entry, directory = directory, os.path.dirname(directory)
    return replaceable_by_all(path, judged_by_owner=True), judged


def foreign_opened(path: str | os.PathLike[str], fd: int) -> str:
    """Why the file open as ``fd``, opened at ``path`` to be appended to, written or
    locked (one cfgcore makes in its state directory: a log, a lock file), may be
    another local user's (``""``: it may not). Judged on the file opened (``fstat``,
    not the name: one put in its place between a check and the open is the one judged):
    see :func:`foreign_owned`."""
    if os.name == "nt" or not hasattr(os, "geteuid"):  # pragma: no cover - no POSIX owners
        return ""
    return foreign_owned(path, os.fstat(fd).st_uid)


def foreign_owned(path: str | os.PathLike[str], uid: int) -> str:
    """Why the file at ``path``, owned by ``uid`` (its ``fstat`` once open), may be
    another local user's (``""``: it may not).

    This user's or root's is this service's (nobody else may make a file theirs), unless
    the name is a symlink of another user's; another's must be its directory owner's
    (the one a symlink of this user's led to), that directory letting other users create
    files, and pass :func:`foreign_state_file` (the directories on its way, the symlink
    at its name). A file of this user's or root's costs an ``lstat``: the logs and lock
    files are opened on every append, every change."""
    if os.name == "nt" or not hasattr(os, "geteuid"):  # pragma: no cover - no POSIX owners
        return ""
    own = (0, os.geteuid())
    if uid in own:
        try:
            link = os.lstat(path)
        except OSError:
            return ""
        if not stat.S_ISLNK(link.st_mode) or link.st_uid in own:
            return ""
        return foreign_state_file(path)
    directory = os.path.dirname(os.path.realpath(path))
    try:
        home = os.stat(directory)
    except OSError:
        home = None
    if (
        home is not None
        and home.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
        and uid != home.st_uid
        and not _read_only(directory)
    ):
        who = "its group" if not home.st_mode & stat.S_IWOTH else "every user"
        return (
            f"it belongs to uid {uid}, not to this user, root or the owner of "
            f"{directory}, which {who} may create files in "
            f"(mode {stat.S_IMODE(home.st_mode):04o})"
        )
    return foreign_state_file(path)


def refuse_foreign(path: str | os.PathLike[str], fd: int) -> None:
    """Raise :class:`ForeignStateFile` (naming ``path``, why and the fix) when
    :func:`foreign_opened` judges the file open as ``fd`` another user's."""
    why = foreign_opened(path, fd)
    if why:
        raise ForeignStateFile(os.path.abspath(os.fspath(path)), why, state_file_fix(why))


def state_file_fix(why: str) -> str:
    """What makes a file :func:`foreign_state_file` refused for ``why`` read again."""
    if _CREATE_BY_ALL in why or "may create files in" in why:
        return (
            "remove it if this service's user did not write it; keep the state directory "
            "(CFGCORE_STATE_DIR) in a directory other users cannot write, owned by this "
            "user or root"
        )
    return "remove it if this service's user did not write it; chmod o-w the directory"


def read_state_file(path: str | os.PathLike[str], max_bytes: int = MAX_READ_BYTES) -> bytes:
    """:func:`read_regular` of a file cfgcore writes in its state directory, refusing
    (:class:`ForeignStateFile`) one :func:`foreign_state_file` judges another user's.
    The file read is the one judged: the file opened must be the one judged at
    ``path`` (a directory others may write lets them rename files in and out between
    the two, even twice), else it is judged again, as is this service's own file
    replaced meanwhile by one of its writers. A symlink at ``path`` (judged by its own
    owner) leads to a file judged by its own way, the one read."""
    path = os.fspath(path)
    for _ in range(5):
        before = os.stat(path)  # (FileNotFoundError: there is none)
        why, judged = _judge_state_file(path)
        if why:
            raise ForeignStateFile(os.path.abspath(path), why, state_file_fix(why))
        if not stat.S_ISREG(before.st_mode):
            raise OSError(errno.EINVAL, _NOT_REGULAR)
        if judged is not None and stat.S_ISLNK(judged.st_mode):
            # A link of an owner allowed: the file it leads to is judged too (by its
            # own way), and is the file read.
            why, judged = _judge_state_file(os.path.realpath(path))
            if why:
                raise ForeignStateFile(os.path.abspath(path), why, state_file_fix(why))
        if judged is not None and not stat.S_ISLNK(judged.st_mode):
            before = judged  # (the very file judged, not one stat'ed before it)
        fd = os.open(path, os.O_RDONLY | _NONBLOCK | _NOCTTY | getattr(os, "O_BINARY", 0))
        try:
            st = os.fstat(fd)
            if (st.st_dev, st.st_ino) == (before.st_dev, before.st_ino):
                return read_regular_fd(fd, max_bytes)
        finally:
            os.close(fd)
    raise OSError(errno.EAGAIN, "replaced again and again while it was read", path)


def write_state_file(path: str | os.PathLike[str], data: bytes, **kwargs: Any) -> None:
    """:func:`atomic_write` of a file cfgcore writes in its state directory: one
    :func:`foreign_state_file` judges another user's is removed first, so the new file
    is this process's (in a directory its group may write, :func:`atomic_write` keeps
    the owner of the file it replaces, and the next read refused it again)."""
    if foreign_state_file(path):
        with contextlib.suppress(OSError):  # (the write says why it cannot be made)
            os.unlink(path)
    atomic_write(path, data, **kwargs)


def _owner(path: str) -> int | None:
    """The uid owning ``path`` itself (a symlink's own, not its target's); None when it
    cannot be stat'ed (reading it says why)."""
    try:
        return os.lstat(path).st_uid
    except OSError:
        return None


def _read_only(directory: str) -> bool:
    # A read-only mount writes nothing, whatever its mode says (a Kubernetes ConfigMap
    # volume's root directory reads 0777).
    try:
        return bool(os.statvfs(directory).f_flag & getattr(os, "ST_RDONLY", 0))
    except (OSError, AttributeError):
        return False


def atomic_write(
    path: str | os.PathLike[str],
    data: bytes,
    *,
    mode: int | None = None,
    follow_symlinks: bool = False,
) -> None:
    """Replace ``path`` with ``data`` atomically (temp file, fsync, rename, dir fsync).

    A symbolic link at ``path`` is replaced by the new file (by default), or, with
    ``follow_symlinks=True``, kept: the file it points to (all links resolved) is
    replaced instead, by a temp file in that file's directory renamed over it, with
    that file's mode and owner kept. The flag file takes that (a flags file kept as a
    link into a checkout or a shared directory stays one after the first change);
    cfgcore's own files in its state directory (cache files, the usage file, audit
    records and checkpoints) do not, so a link planted there never sends a write
    somewhere else (a process writing, as root say, where another user's link points).

    ``mode`` sets the permission bits of the new file; by default an existing regular
    file's permission bits are kept (not its set-user-ID, set-group-ID or sticky bits),
    and a new file, or one replacing a symlink or anything else, gets ``0o644`` minus
    the umask. An existing regular file's owner and group are kept as far as the
    writer may give them (root rewriting a service's ``root:app`` 0640 file must not
    leave it ``root:root``, which the service cannot read), except another user's in a
    directory every user may create files in (``/tmp``), which anyone may have put
    there: the new file is the writer's, its mode without write access for others.

    Where the compiled extensions are built (POSIX: :data:`NATIVE`), the steps from the
    target's ``lstat`` to the directory's ``fsync`` are made in one C call that releases
    the GIL once (``cfgcore._atomic``): made from Python, each was a GIL hand-over that a
    CPU-bound thread of the process could stretch to a switch interval (5 ms). Same
    steps, same files, same errors; ``data`` other than ``bytes`` takes the Python steps.

    >>> atomic_write("/tmp/cfgcore-doc.txt", b"hello")
    """
    target = os.fspath(path)
    if follow_symlinks and os.path.islink(target):
        target = os.path.realpath(target)
    directory = os.path.dirname(os.path.abspath(target))
    if (
        _native is not None
        and type(data) is bytes
        and (mode is None or (type(mode) is int and 0 <= mode <= 0o7777))
        and type(target) is str
        and "\x00" not in target  # (C would end the name there: os says ValueError)
    ):
        _native_write(target, directory, data, -1 if mode is None else mode)
        return
    owner: tuple[int, int] | None = None
    # lstat, not stat: the link itself is what the rename replaces, and a symlink
    # planted at the target (by anyone who can write the directory) must not lend the
    # new file the mode or owner of what it points to (a 0666 file of theirs made ours
    # writable by every user).
    with contextlib.suppress(FileNotFoundError):
        st = os.lstat(target)
        if stat.S_ISREG(st.st_mode):
            planted = _maybe_planted(st, directory)
            owner = None if planted else (st.st_uid, st.st_gid)
            if mode is None:
                # (one anyone may have put there lends no write access to others)
                mode = st.st_mode & (0o755 if planted else 0o777)
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
            if owner is not None:
                # Last, once the file is written and its mode set: a writer that may
                # give a file away but not chmod one it no longer owns (CAP_CHOWN
                # without CAP_FOWNER) failed its own fchmod after it, and a quota is
                # charged to the new owner at the give-away, not for data written after.
                _keep_owner(fh.fileno(), owner)
            os.fsync(fh.fileno())
        if mode is not None and not hasattr(os, "fchmod"):  # pragma: no cover - Windows
            os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(directory)


def _maybe_planted(st: os.stat_result, directory: str) -> bool:
    """Whether the file ``st`` (its lstat) in ``directory`` may be one another user put
    there for a writer to take over: another user's (not root's or this one's) in a
    directory every user may create files in (``/tmp``). Root replaces it there
    (the sticky bit stops others only), and keeping its owner and mode gave the new
    file to whoever made the name first, writable by them (or by everyone)."""
    if not hasattr(os, "geteuid") or st.st_uid in (0, os.geteuid()):
        return False
    try:
        return bool(os.stat(directory).st_mode & stat.S_IWOTH) and not _read_only(directory)
    except OSError:
        return False


def _native_write(target: str, directory: str, data: bytes, mode: int) -> None:
    """:func:`atomic_write`'s steps (the target's lstat to the directory's fsync) in one
    C call (:mod:`cfgcore._atomic`), raising the OSError the Python steps raise for the
    step that failed, and removing the temp file on any failure, as they do."""
    assert _native is not None
    base = os.path.basename(target)
    names = (os.fsencode(target), os.fsencode(directory))
    for _ in range(100):
        tmp = os.path.join(directory, f".{base}.{secrets.token_hex(6)}.tmp")
        made = True  # (the temp file may exist: removed on any failure, an interrupt too)
        try:
            step, err = _native.replace(*names, os.fsencode(tmp), data, mode)
            if step in (_native.LSTAT, _native.CREATE):
                made = False  # (failed before creating it: a name to leave alone)
                if step == _native.CREATE and err == errno.EEXIST:
                    continue  # another name
            if step != _native.OK:
                raise _native_error(step, err, target, directory, tmp)
            return
        except BaseException:
            if made:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
            raise
    raise FileExistsError(f"cannot create a temporary file next to {base} in {directory}")


def _native_error(step: int, err: int, target: str, directory: str, tmp: str) -> OSError:
    """The OSError the Python steps raise where :mod:`cfgcore._atomic` failed at ``step``."""
    assert _native is not None
    text = os.strerror(err)
    if step == _native.LSTAT:
        return OSError(err, text, target)
    if step == _native.CREATE:
        return OSError(err, text, tmp)
    if step == _native.RENAME:
        return OSError(err, text, tmp, None, target)
    if step == _native.DIR_OPEN:
        return OSError(err, text, directory)
    return OSError(err, text)  # on a descriptor: no name, as os.fsync(fd) says it


def _keep_owner(fd: int, owner: tuple[int, int]) -> None:
    """Give the new file (open as ``fd``) the old one's owner and group, or as much of
    them as this process may (only root gives a file away; an owner may still pick any
    of its groups). On the descriptor, for the reason the mode is set there."""
    if not hasattr(os, "fchown"):  # pragma: no cover - Windows
        return
    st = os.fstat(fd)
    if (st.st_uid, st.st_gid) == owner:
        return
    for uid, gid in (owner, (-1, owner[1])):
        try:
            os.fchown(fd, uid, gid)
            return
        except OSError:
            continue


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


def atomic_write_text(
    path: str | os.PathLike[str],
    text: str,
    *,
    mode: int | None = None,
    follow_symlinks: bool = False,
) -> None:
    """:func:`atomic_write` for text, encoded as UTF-8."""
    atomic_write(path, text.encode("utf-8"), mode=mode, follow_symlinks=follow_symlinks)


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
