# cython: language_level=3
"""The atomic write's system calls in one C call without the GIL (POSIX).

:func:`cfgcore.runtime.atomicio.atomic_write` makes about a dozen system calls: look
at the target (``lstat``), create the temp file, set its mode, write it, give it the
old owner, ``fsync`` it, close it, rename it over the target, then open, ``fsync`` and
close the directory. Each one made from Python releases the GIL and takes it back
after; beside a thread running Python code (a CPU-bound request), each take-back after
a call that blocks (an ``fsync``, a rename, a create) waits up to the interpreter's
switch interval (5 ms), so a flag change there took 20 to 30 such waits where it
needs none. :func:`replace` makes them all in one call that releases the GIL once;
:func:`write_new` does the same for the audit log's ``.head`` record (create, write,
rename: a record readers see whole, which is not fsynced).

The recipe and its safety rules are the Python path's, step for step (atomicio.py
says why each is there). On a failure it returns which step failed and the ``errno``,
and the caller raises the ``OSError`` the Python path would have raised and removes
the temp file, as the Python path does; a signal arriving meanwhile is handled once
the call returns (an interrupted system call is made again, as Python does).
"""

from libc.errno cimport EINTR, ENOENT, errno
from libc.stdio cimport rename
from posix.fcntl cimport O_CLOEXEC, O_CREAT, O_EXCL, O_NOCTTY, O_NONBLOCK, O_RDONLY, O_WRONLY
from posix.fcntl cimport open as c_open
from posix.stat cimport S_ISREG, S_IWOTH, fchmod, fstat, lstat, stat, struct_stat
from posix.types cimport gid_t, mode_t, uid_t
from posix.unistd cimport close, fchown, fsync, geteuid, write


cdef extern from "<fcntl.h>" nogil:
    enum: O_NOFOLLOW  # (POSIX 2008; not in Cython's posix/fcntl.pxd)

cdef extern from "<sys/statvfs.h>" nogil:
    cdef struct statvfs_t "statvfs":
        unsigned long f_flag
    int c_statvfs "statvfs"(const char* path, statvfs_t* buf)
    enum: ST_RDONLY

# What failed (the caller names the files as the Python path's OSError would).
cdef enum:
    S_OK = 0
    S_LSTAT = 1  # lstat(target): OSError(errno, strerror, target)
    S_CREATE = 2  # open(tmp, O_CREAT | O_EXCL): OSError(errno, strerror, tmp)
    S_FCHMOD = 3  # on the descriptor: OSError(errno, strerror)
    S_WRITE = 4
    S_FSTAT = 5
    S_FSYNC = 6
    S_CLOSE = 7
    S_RENAME = 8  # OSError(errno, strerror, tmp, None, target)
    S_DIR_OPEN = 9  # open(directory): OSError(errno, strerror, directory)
    S_DIR_FSYNC = 10
    S_DIR_CLOSE = 11

OK, LSTAT, CREATE, FCHMOD, WRITE, FSTAT = S_OK, S_LSTAT, S_CREATE, S_FCHMOD, S_WRITE, S_FSTAT
FSYNC, CLOSE, RENAME, DIR_OPEN = S_FSYNC, S_CLOSE, S_RENAME, S_DIR_OPEN
DIR_FSYNC, DIR_CLOSE = S_DIR_FSYNC, S_DIR_CLOSE

cdef int _write_all(int fd, const char* buf, Py_ssize_t size) noexcept nogil:
    cdef ssize_t n
    while size > 0:
        n = write(fd, buf, <size_t>size)
        if n < 0:
            if errno == EINTR:
                continue
            return -1
        buf += n
        size -= n
    return 0


cdef int _retried(int rc) noexcept nogil:
    # 0 when the call succeeded; -1 with errno set when it failed for another reason
    # than a signal (the caller makes an interrupted call again, as Python does).
    return 0 if rc == 0 else (1 if errno == EINTR else -1)


cdef int _fsync(int fd) noexcept nogil:
    cdef int rc
    while True:
        rc = _retried(fsync(fd))
        if rc <= 0:
            return rc


cdef int _close_rename(int fd, const char* tmp, const char* target, int* err) noexcept nogil:
    # Close the written temp file, then rename it over the target (a rename a signal
    # interrupted is made again): S_OK, or the step that failed with err set.
    cdef int rc
    if close(fd) != 0 and errno != EINTR:
        err[0] = errno
        return S_CLOSE
    while True:
        rc = _retried(rename(tmp, target))
        if rc <= 0:
            break
    if rc != 0:
        err[0] = errno
        return S_RENAME
    return S_OK


cdef bint _maybe_planted(const struct_stat* st, const char* directory) noexcept nogil:
    # atomicio._maybe_planted: another user's file (not root's, not this process's) in
    # a directory every user may create files in (/tmp) on a writable mount: anyone may
    # have put it there, and it lends the new file neither its owner nor write access
    # for others. A directory that cannot be stat'ed: not planted; a mount whose flags
    # cannot be read: writable, as the Python steps say.
    cdef struct_stat dst
    cdef statvfs_t vfs
    if st.st_uid == 0 or st.st_uid == geteuid():
        return False
    if stat(directory, &dst) != 0 or not (dst.st_mode & S_IWOTH):
        return False
    if c_statvfs(directory, &vfs) == 0 and (vfs.f_flag & ST_RDONLY):
        return False
    return True


cdef int _steps(const char* target, const char* directory, const char* tmp,
                const char* data, Py_ssize_t size, int mode, int* err) noexcept nogil:
    cdef struct_stat st
    cdef int fd, dfd, rc
    cdef bint own = False
    cdef bint planted = False
    cdef uid_t uid = 0
    cdef gid_t gid = 0
    cdef int perm
    # The old file's owner, and its permission bits unless a mode is given; a symlink
    # (or anything but a regular file) at the target lends the new file nothing.
    if lstat(target, &st) == 0:
        if S_ISREG(st.st_mode):
            planted = _maybe_planted(&st, directory)
            own = not planted
            uid = st.st_uid
            gid = st.st_gid
            if mode < 0:
                mode = st.st_mode & (0o755 if planted else 0o777)
    elif errno != ENOENT:
        err[0] = errno
        return S_LSTAT
    # A new file without a mode: 0o644 minus the umask, applied by the kernel.
    perm = 0o644 if mode < 0 else 0o600
    while True:
        fd = c_open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, <mode_t>perm)
        if fd >= 0 or errno != EINTR:
            break
    if fd < 0:
        err[0] = errno
        return S_CREATE
    rc = S_OK
    # The mode on the descriptor, then the data, then the owner (last: a writer that
    # may give a file away but not chmod one it no longer owns), then fsync.
    if mode >= 0 and fchmod(fd, <mode_t>mode) != 0:
        rc = S_FCHMOD
    elif _write_all(fd, data, size) != 0:
        rc = S_WRITE
    elif own:
        if fstat(fd, &st) != 0:
            rc = S_FSTAT
        elif st.st_uid != uid or st.st_gid != gid:
            # As much of the old owner as this process may give (only root gives a
            # file away; an owner may still pick any of its groups); failures ignored.
            if fchown(fd, uid, gid) != 0:
                fchown(fd, <uid_t>-1, gid)
    if rc == S_OK and _fsync(fd) != 0:
        rc = S_FSYNC
    if rc != S_OK:
        err[0] = errno
        close(fd)
        return rc
    rc = _close_rename(fd, tmp, target, err)
    if rc != S_OK:
        return rc
    # The rename made durable: fsync the directory.
    while True:
        dfd = c_open(directory, O_RDONLY | O_CLOEXEC)
        if dfd >= 0 or errno != EINTR:
            break
    if dfd < 0:
        err[0] = errno
        return S_DIR_OPEN
    if _fsync(dfd) != 0:
        err[0] = errno
        close(dfd)
        return S_DIR_FSYNC
    if close(dfd) != 0 and errno != EINTR:
        err[0] = errno
        return S_DIR_CLOSE
    return S_OK


def replace(bytes target, bytes directory, bytes tmp, bytes data, int mode):
    """Write ``data`` to a new file ``tmp`` (``O_EXCL``) and rename it over ``target``,
    then fsync ``directory``: ``atomic_write``'s steps, made without the GIL. ``mode``:
    the permission bits, or -1 (the old regular file's, else 0o644 minus the umask).
    Returns ``(step, errno)``: ``(OK, 0)`` when done, else the step that failed (the
    temp file, when it was created, is left for the caller to remove)."""
    cdef const char* c_target = target
    cdef const char* c_directory = directory
    cdef const char* c_tmp = tmp
    cdef const char* c_data = data
    cdef Py_ssize_t size = len(data)
    cdef int err = 0
    cdef int step
    with nogil:
        step = _steps(c_target, c_directory, c_tmp, c_data, size, mode, &err)
    return step, err


cdef int _new_then_rename(const char* tmp, const char* target, const char* data, Py_ssize_t size,
                          int perm, int* err) noexcept nogil:
    cdef int fd
    while True:
        fd = c_open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC,
                    <mode_t>perm)
        if fd >= 0 or errno != EINTR:
            break
    if fd < 0:
        err[0] = errno
        return S_CREATE
    if _write_all(fd, data, size) != 0:
        err[0] = errno
        close(fd)
        return S_WRITE
    return _close_rename(fd, tmp, target, err)


def write_new(bytes tmp, bytes target, bytes data, int perm):
    """Create ``tmp`` (``O_EXCL``, never through a symlink, never blocking), write
    ``data``, close it and rename it over ``target``, without the GIL and without an
    fsync: a record replaced as a whole for readers, which a crash may take back (the
    audit log's ``.head``). ``perm``: the new file's mode before the umask. Returns
    ``(step, errno)`` as :func:`replace` does (the temp file is left to the caller)."""
    cdef const char* c_tmp = tmp
    cdef const char* c_target = target
    cdef const char* c_data = data
    cdef Py_ssize_t size = len(data)
    cdef int err = 0
    cdef int step
    with nogil:
        step = _new_then_rename(c_tmp, c_target, c_data, size, perm, &err)
    return step, err
