"""Exposure logging: the first time a user is served a variant of a test.

An exposure goes into a bounded backlog; a background thread hands batches to sinks.
The hot path does a set lookup and, once per user and test, a lock-free append; when
the backlog is full the exposure is dropped and counted in ``dropped`` (never
silently). Sinks: :class:`JsonLinesSink` (rotating JSON-lines file, built in),
any object with ``write(batch)`` (and optionally ``flush()``/``close()``), or a plain
callable (:class:`ExposureSink`).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import math
import os
import stat
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Annotated, Any, Generic, NamedTuple, Protocol, TypeVar, runtime_checkable

import msgspec

from cfgcore._clock import stamp_clock
from cfgcore._layout import DEDUP_SHARDS
from cfgcore._msgspec_errors import msgspec_problem
from cfgcore._numbers import wait_seconds, whole_at_least
from cfgcore.details import ID_FORM_CHARS as _ID_FORM_CHARS
from cfgcore.details import MAX_EVENT_ID, MAX_METRIC_VALUE, bucketable_id, user_id_text
from cfgcore.errors import ConfigError
from cfgcore.experiments.ingested import IngestRecord, checked_entry, set_entry
from cfgcore.experiments.writer import MAX_PENDING_BYTES, BackgroundWriter
from cfgcore.observability import instruments
from cfgcore.runtime.atomicio import (
    FileLock,
    ForeignStateFile,
    _keep_owner,
    _narrow_mode,
    atomic_write,
    foreign_owned,
    read_regular,
    refuse_foreign,
    state_file_fix,
)
from cfgcore.runtime.audit import _open_regular
from cfgcore.runtime.forks import after_fork_in_child

log = logging.getLogger("cfgcore.experiments")


def _rotation_number(text: str) -> bool:
    """Whether ``text`` is a rotated file's number (1, 2, ... without a zero first)."""
    return text.isascii() and text.isdigit() and text[0] != "0" and len(text) <= 18


#: Seconds an exposure or metric writer waits for its log's lock before the batch is
#: counted as lost (a writer's turn takes milliseconds).
LOCK_TIMEOUT = 30.0

#: Permission bits of the exposure and metric logs (user ids and their events): not
#: readable by other users.
LOG_MODE = 0o640

# -------------------------------------------------------------------------- exposures


#: A record's ``run`` when it has no run tag: a log line written before run tags (or
#: by an older version), or a record logged by a writer that knew no run of its test
#: (an :class:`ExposureLogger` or ``MetricsStore`` used without a manager). Readers
#: attribute such a record to a run by its time (:func:`in_run`).
UNTAGGED: Any = msgspec.UNSET


class Exposure(NamedTuple):
    """One user's first exposure to a test: which variant, when (epoch seconds), and
    the run of the test it was logged for (``run``: the test's ``since`` as the flag
    document the process served held it, None for a test never created again; see
    :func:`cfgcore.experiments.abtest.record_runs`), or :data:`UNTAGGED`."""

    test: str
    variant: str
    user: str
    time: float
    run: Any = UNTAGGED

    def to_json(self) -> dict[str, Any]:
        """The JSON-lines record (``ts`` is epoch seconds; ``run``, the run tag, only
        when the exposure has one: readers that do not know it pass it over)."""
        if self.run is UNTAGGED:
            return {"test": self.test, "variant": self.variant, "user": self.user, "ts": self.time}
        # (the time last, as it always was)
        return {"test": self.test, "variant": self.variant, "user": self.user, "run": self.run,
                "ts": self.time}  # fmt: skip


@runtime_checkable
class BatchSink(Protocol):
    """A sink object: ``write(batch)`` receives each batch of exposures (or metric
    events); optional ``flush()`` and ``close()`` are called when present."""

    def write(self, batch: list[Exposure]) -> Any: ...


#: What the exposure logger accepts as a sink: a :class:`BatchSink` or ``callable(batch)``.
ExposureSink = BatchSink | Callable[[list[Exposure]], Any]


_LINES = msgspec.json.Encoder()


class MemorySink:
    """Keeps exposures in a list (tests, notebooks)."""

    def __init__(self) -> None:
        self.exposures: list[Exposure] = []
        self._lock = threading.Lock()

    def write(self, batch: list[Exposure]) -> None:
        """Append a batch."""
        with self._lock:
            self.exposures.extend(batch)


class JsonLinesSink:
    """Append exposures (or any JSON-able records) to a JSON-lines file, rotating it.

    When the file exceeds ``max_bytes`` it is renamed to ``<name>.1`` (older ones shift
    to ``.2`` ... ``.<backups>``, the oldest is deleted, and so is any numbered past
    ``backups``, left when it was lowered) and a new file is started, so disk use stays
    bounded. Each batch is one ``write`` on an ``O_APPEND`` descriptor:
    a reader never sees a partial record from another process. ``create_dir=False``:
    the file's directory is someone else's (a deployment's flags directory) and is
    not created for a log; a batch written while it does not exist fails (OSError)
    and is counted as lost, as on a full disk.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        max_bytes: int = 50 * 1024 * 1024,
        backups: int = 5,
        create_dir: bool = True,
    ) -> None:
        self.create_dir = create_dir
        self.path = os.fspath(path)
        # Numbers by their value (cfgcore._numbers): "5" failed at the first rotation.
        self.max_bytes = whole_at_least("max_bytes", max_bytes, 1, "bytes")
        self.backups = whole_at_least("backups", backups, 0, "files")
        self.skipped = 0  # records left out because JSON cannot hold them
        self._lock = threading.Lock()

    def _after_fork_in_child(self) -> None:
        self._lock = threading.Lock()

    def _encode_each(self, records: list[dict[str, Any]]) -> bytes:
        """The batch's records that can be encoded, one by one: a record holding a value
        JSON cannot carry (a lone surrogate, an unknown object) is left out and counted
        in ``skipped``, never the rest of its batch."""
        out = []
        for record in records:
            try:
                out.append(_LINES.encode_lines([record]))
            except (TypeError, ValueError, OverflowError):
                self.skipped += 1
                log.warning("%s: left out a record JSON cannot hold: %r", self.path, record)
        return b"".join(out)

    def encode(self, batch: Iterable[Exposure | Mapping[str, Any]]) -> bytes:
        """The JSON lines of a batch (records JSON cannot hold left out and counted in
        ``skipped``)."""
        # msgspec writes UTF-8 JSON lines (as json.dumps(ensure_ascii=False) would) about
        # ten times faster: this runs on the writer thread, which shares the GIL with
        # the request threads.
        records = [r.to_json() if isinstance(r, Exposure) else dict(r) for r in batch]
        try:
            return _LINES.encode_lines(records)
        except (TypeError, ValueError, OverflowError):  # UnicodeEncodeError is a ValueError
            return self._encode_each(records)

    def write(self, batch: Iterable[Exposure | Mapping[str, Any]]) -> None:
        """Append records; rotate first when the file is full. All of the batch or,
        on an error (a full disk), none of it: OSError is raised with the file as it
        was."""
        data = self.encode(batch)
        if not data:
            return
        with self.locked():
            fd = self.open_for_append(len(data))
            try:
                append_whole(fd, data)
            finally:
                os.close(fd)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold this sink's thread lock and its file lock. Pre-fork workers share the
        file: size check, rotation and append must be one step across processes, or two
        rotations at once overwrite backups, leave gaps the reader stops at, and fail
        on a file the other one moved."""
        with self._lock:
            directory = os.path.dirname(os.path.abspath(self.path))
            if self.create_dir:
                os.makedirs(directory, exist_ok=True)
            elif not os.path.isdir(directory):
                # A deploy replacing it ("rm -rf dir && mkdir dir") failed on the mkdir
                # once a batch had made it again.
                raise FileNotFoundError(
                    errno.ENOENT,
                    f"directory {directory} does not exist (removed?) and is not created for a log",
                    self.path,
                )
            lock_path = log_lock_path(self.path)
            # Not open to other users (0640; an old 0644 one narrowed): anyone who can
            # open it can flock it and hold the writers up. A writer waits at most
            # LOCK_TIMEOUT; then the batch fails and is counted as lost, named. Group
            # write an operator gave it stays, as the log's does (writers running as
            # several users of one group open it to write; its group could flock it
            # read-only anyway): narrowed to 0640, the other users' next batches failed.
            with FileLock(lock_path, mode=0o660, timeout=LOCK_TIMEOUT, restrict=True) as lock:
                _give_to_directory_owner(lock._fd, os.path.dirname(lock_path))
                yield

    @property
    def lock_path(self) -> str:
        """The lock file every writer of this log takes (:func:`log_lock_path`)."""
        return log_lock_path(self.path)

    def open_for_append(self, size: int) -> int:
        """Under :meth:`locked`: rotate first if ``size`` more bytes would overflow the
        file, then a descriptor open for appending (and reading) to the current file.

        The log holds user ids and what they did: it is created 0640 (an older one
        readable by other users is narrowed by its owner). A symlink planted in its
        place by another user is refused (records were appended to whatever file it
        named); one owned by this service's user or root, which the deployment made (a
        log kept on a volume), is followed. Anything but a regular file is refused (a
        FIFO swallowed the records, then blocked the writer holding the log's lock once
        its buffer was full): OSError, and the batch is counted as lost, named, as for a
        full disk. A file another local user may have put in its place, where others
        may create files (:func:`cfgcore.runtime.atomicio.foreign_opened`: theirs, a
        link of theirs), is neither rotated nor appended to:
        :class:`~cfgcore.runtime.atomicio.ForeignStateFile`, naming it and the fix."""
        try:
            st = os.stat(self.path)
            current, owner = st.st_size, (st.st_uid, st.st_gid)
        except OSError:
            current, owner = 0, None
        # (before a rotation: another user's file is not made this log's backup)
        why = foreign_owned(self.path, st.st_uid) if owner is not None else ""
        if why:
            raise ForeignStateFile(os.path.abspath(self.path), why, state_file_fix(why))
        rotated = bool(current and current + size > self.max_bytes)
        if rotated:
            self._rotate()
        fd = _open_log(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT)
        try:
            refuse_foreign(self.path, fd)  # (the file opened: one put there meanwhile too)
            # Only what other users may do is taken off: group write an operator gave
            # an older log (writers running as several users of one group) stays.
            _narrow_mode(fd, LOG_MODE | 0o070)
            # Created here (by `cfgcore experiment ingest` run as root, say), the log
            # gets the owner and group of the file it follows (the one just rotated)
            # where this process may give them, as rewrites keep theirs
            # (runtime.atomicio), or the service could no longer append; a first one,
            # made by root, those of its directory.
            if rotated and owner is not None:
                _keep_owner(fd, owner)
            elif owner is None and _is_root():
                _keep_owner(fd, _directory_owner(self.path))
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _rotate(self) -> None:
        # A log the deployment keeps elsewhere through its own symlink (a shared
        # volume) is rotated there: its file becomes <target>.1 beside it and the link
        # stays, so the next record goes to a new file on the volume again. (Renaming
        # the link made the link the backup and started a local file in its place.)
        root = _trusted_target(self.path)
        self._drop_beyond_backups(root)
        if self.backups <= 0:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(root)
            return
        for i in range(self.backups - 1, 0, -1):
            src = f"{root}.{i}"
            if os.path.exists(src):
                os.replace(src, f"{root}.{i + 1}")
        os.replace(root, f"{root}.1")

    def _drop_beyond_backups(self, root: str) -> None:
        """Remove the rotated files numbered past ``backups`` (``<log>.6`` on, with 5),
        highest number first, so the files readers find (``.1`` up to the first missing
        number) stay one run whatever is cut short. A lowered ``backups`` left them
        for ever, and the reports and guardrail checks kept reading them. A file that
        cannot be removed is said (WARNING) and the rotation goes on."""
        directory, name = os.path.split(root)
        prefix = name + "."
        try:
            names = os.listdir(directory or ".")
        except OSError as exc:
            log.warning("%s: cannot list the rotated files past %d: %s", root, self.backups, exc)
            return
        numbers = [n[len(prefix) :] for n in names if n.startswith(prefix)]
        extra = sorted((int(n) for n in numbers if _rotation_number(n)), reverse=True)
        for number in extra:
            if number <= self.backups:
                break
            try:
                os.unlink(f"{root}.{number}")
            except FileNotFoundError:
                pass
            except OSError as exc:
                log.warning("%s.%d: cannot remove a rotated file past backups=%d: %s",
                            root, number, self.backups, exc)  # fmt: skip

    def files(self) -> list[str]:
        """The current file and its rotated predecessors, oldest first (those of a
        symlinked log beside the file it leads to, see :meth:`_rotate`)."""
        root = _trusted_target(self.path)
        olds = [f"{root}.{i}" for i in range(self.backups, 0, -1)]
        return [p for p in [*olds, self.path] if os.path.exists(p)]


def append_whole(fd: int, data: bytes) -> int:
    """Append ``data`` to the end of the file open on ``fd`` (``O_APPEND``, readable),
    whole or not at all; the offset it starts at.

    The caller holds the file's lock, so the end of the file is where this write
    lands. A file whose last line was cut short (a crash mid-write) first gets its
    newline: the cut line stays one unusable line instead of swallowing the first
    record of this batch. A short write (a full disk) is continued; a write that
    fails truncates the file back to where it was and raises.
    """
    start = os.fstat(fd).st_size
    if start and os.pread(fd, 1, start - 1) != b"\n":
        data = b"\n" + data
    try:
        _write_all(fd, data)
    except BaseException:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, start)
        raise
    return start


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        if n <= 0:  # pragma: no cover - a regular file never returns 0 for a non-empty write
            raise OSError(errno.EIO, "write returned no progress")
        view = view[n:]


# ------------------------------------------------------------- appends to several logs


def _open_to_read(path: str) -> int:
    """``path`` open for reading a log (a regular file only, never blocking on a FIFO),
    refused (:class:`~cfgcore.runtime.atomicio.ForeignStateFile`, an OSError) when the
    file opened may be another local user's, as the writers refuse to append to it
    (:func:`cfgcore.runtime.atomicio.foreign_opened`): records someone else put at the
    log's name or a rotated file's (``<log>.1``) would be counted as this service's
    exposures and events, by the reports and the guardrail checks that stop tests."""
    fd = _open_regular(path, os.O_RDONLY, follow=True)
    try:
        refuse_foreign(path, fd)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _open_log(path: str, flags: int) -> int:
    """``path`` open (a regular file only) without following a symlink, unless the
    symlink is owned by this process's user or root: the deployment's own (a log on a
    volume, as Kubernetes deployments often do), not one planted by another user. The
    link is resolved and its target opened without following, then checked unchanged.
    OSError otherwise."""
    try:
        return _open_regular(path, flags)
    except OSError as exc:
        if exc.errno not in (errno.ELOOP, errno.EMLINK):  # (EMLINK: BSD's O_NOFOLLOW)
            raise
    link = os.lstat(path)
    if not stat.S_ISLNK(link.st_mode):
        raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), path)
    if link.st_uid not in _owners():
        raise OSError(
            errno.ELOOP,
            f"a symlink owned by uid {link.st_uid} (not this service's user or root): not followed",
            path,
        )
    target = os.path.realpath(path)
    fd = _open_regular(target, flags)
    try:
        now = os.lstat(path)
        if (now.st_dev, now.st_ino) != (link.st_dev, link.st_ino) or os.path.realpath(
            path
        ) != target:
            raise OSError(errno.ELOOP, "the symlink changed while it was opened", path)
    except BaseException:
        os.close(fd)
        raise
    return fd


def append_together(
    parts: Sequence[tuple[JsonLinesSink, bytes]],
    journal: str,
    ingested: IngestRecord | None = None,
    *,
    refine: Callable[[], Sequence[tuple[JsonLinesSink, bytes]]] | None = None,
) -> bool:
    """Append each ``data`` to its sink's file: all of them or none of them.

    ``cfgcore experiment ingest`` writes exposures and metric events to two files; a
    failure between the two appends must not leave one written (the report would count
    exposures without their conversions, or the reverse, and running the ingest again
    would write the first part twice). Every sink's lock is held (in the order of their
    lock files) for the whole step, so no other writer appends in between. The plan
    (each file, the offset its data goes to, the data) is written to ``journal``
    atomically before the first append and removed after the last one has reached the
    disk; removing it is the commit.

    * An error in an append (a full disk) truncates every file back to its offset,
      removes the journal and raises: nothing was written.
    * A crash (or a failed truncation) leaves the journal: :func:`recover_appends`,
      run by the next ingest and report (and first thing here), takes back whatever
      part of the plan reached the files. Either way running the ingest again is right.

    ``ingested``: the input's fingerprint for the record of ingested inputs
    (:mod:`cfgcore.experiments.ingested`), checked under the locks (an input already
    recorded raises :class:`~cfgcore.experiments.ingested.AlreadyIngested` unless
    ``again``, before anything is written) and recorded after the appends reached the
    disk, before the commit; the journal holds the entry it had, which a recovery
    puts back. Nothing to append records nothing.

    ``refine()``: called under the locks (after the check of ``ingested``), returns the
    data to append in place of ``parts``, for sinks among them (an ingest leaving out
    the events with ids the logs hold: what another writer appended until the locks
    were taken included). Returns whether anything was appended.
    """
    parts = [(sink, data) for sink, data in parts if data]
    if not parts:
        return False
    recover_appends(journal)
    with contextlib.ExitStack() as stack:
        # In the order of their lock files (where links lead), the same in every process.
        for sink, _ in sorted(parts, key=lambda p: p[0].lock_path):
            stack.enter_context(sink.locked())
        ledger = None
        if ingested is not None:
            # Under the locks: of two ingests of one input at once, the second one
            # finds the first one's entry here.
            ledger = _LedgerStep(ingested.path, ingested.key, checked_entry(ingested))
        if refine is not None:
            locked = {id(sink) for sink, _ in parts}
            parts = [(sink, data) for sink, data in refine() if data]
            if any(id(sink) not in locked for sink, _ in parts):
                raise ValueError("refine() named a log whose lock is not held")
            if not parts:
                return False
        fds: list[tuple[int, int]] = []
        try:
            plan: list[_Append] = []
            for sink, data in parts:
                fd = sink.open_for_append(len(data))
                start = os.fstat(fd).st_size
                fds.append((fd, start))
                if start and os.pread(fd, 1, start - 1) != b"\n":
                    data = b"\n" + data  # what append_whole adds, in the journal too
                plan.append(_Append(sink.path, start, data.decode()))
            atomic_write(journal, msgspec.json.encode(_Journal(plan, ledger)), mode=LOG_MODE)
            _journal_owner(journal)
            try:
                for (fd, _), step in zip(fds, plan, strict=True):
                    _write_all(fd, step.data.encode())
                for fd, _ in fds:
                    os.fsync(fd)
                if ingested is not None:
                    set_entry(ingested.path, ingested.key, ingested.entry, mode=LOG_MODE)
                    _journal_owner(ingested.path)  # (as the journal: ingest run as root)
            except BaseException:
                for fd, start in fds:
                    os.ftruncate(fd, start)  # nobody else appended: we hold every lock
                if ledger is not None:
                    _restore_ledger(ledger)
                os.unlink(journal)
                raise
            os.unlink(journal)
        finally:
            for fd, _ in fds:
                os.close(fd)
    return True


def recover_appends(journal: str) -> bool:
    """Take back the appends of an :func:`append_together` that did not finish (a
    crash left its journal); True if there was one.

    Each planned append is looked for at its recorded offset, in the file or in a
    rotated predecessor (a writer may have rotated it since), and what of it is there
    is cut out; records other writers appended after it stay. A file holding none of
    it is left alone.
    """
    raw = _read_journal(journal)
    while True:
        if raw is None:
            return False
        try:
            parsed = _decode_journal(raw)
        except msgspec.MsgspecError as exc:
            raise ConfigError(
                f"unusable journal of an unfinished ingest: {exc}", file=journal
            ) from None
        sinks = [(JsonLinesSink(step.path), step) for step in parsed.appends]
        with contextlib.ExitStack() as stack:
            for sink, _ in sorted(sinks, key=lambda p: p[0].lock_path):
                stack.enter_context(sink.locked())
            # Read again under the locks: one read before them may be the journal of
            # an ingest still writing (it holds the locks until it has removed its
            # journal), which then committed; taking its plan back cut committed
            # events out of the logs. Under the locks a journal is a dead ingest's.
            again = _read_journal(journal)
            if again != raw:
                raw = again
                continue
            _take_back(journal, sinks, parsed.ledger)
        return True


def _read_journal(journal: str) -> bytes | None:
    """The journal's bytes (None: there is none). A journal names the files its
    take-back rewrites and the record of ingested inputs it writes, at any path: one
    that is not this user's, root's or its directory owner's (as an ingest run as root
    leaves it), or a symlink, is refused (ConfigError naming it): another user who may
    create files in the state directory (a shared, sticky one) made every later ingest
    and report cut lines out of any file its user may write, and write the record
    anywhere."""
    try:
        st = os.lstat(journal)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror or exc}", file=journal) from None
    why = _foreign_journal(journal, st)
    if why:
        raise ConfigError(
            f"journal of an unfinished ingest refused: {why}, and a journal names the "
            "files its take-back rewrites; not taken back (its owner's next ingest or "
            "report takes it back; else remove it)",
            file=journal,
        )
    try:
        return read_regular(journal)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror or exc}", file=journal) from None


def _foreign_journal(journal: str, st: os.stat_result) -> str:
    """Why the journal ``journal`` (``st``: its lstat) is not one an ingest of this
    service wrote (``""``: it may be)."""
    if stat.S_ISLNK(st.st_mode):
        return "it is a symlink (an ingest writes its journal as a file)"
    if not hasattr(os, "geteuid"):  # pragma: no cover - no POSIX owners
        return ""
    try:
        home = os.stat(os.path.dirname(os.path.abspath(journal))).st_uid
    except OSError:
        home = None
    if st.st_uid in _owners() or st.st_uid == home:
        return ""
    return f"it belongs to uid {st.st_uid}, not to this user, root or its directory's owner"


def _take_back(
    journal: str, sinks: list[tuple[JsonLinesSink, _Append]], ledger: _LedgerStep | None
) -> None:
    """Under every sink's lock: cut each planned append out, put the record of
    ingested inputs back as it was, remove the journal."""
    for sink, step in sinks:
        data = step.data.encode()
        for path in _candidates(sink.path):
            if _cut(path, step.offset, data):
                log.warning("%s: took back an unfinished ingest (%s)", path, journal)
                break
    if ledger is not None:
        _restore_ledger(ledger)
    os.unlink(journal)


def _restore_ledger(step: _LedgerStep) -> None:
    set_entry(step.path, step.key, step.before, mode=LOG_MODE)


def _cut(path: str, offset: int, data: bytes) -> bool:
    """Remove what of ``data`` the file holds at ``offset``: all of it, or a part cut
    short by a crash (at the end of the file, or followed by the newline the next
    writer put after it); True if something was removed."""
    try:
        with open(path, "rb") as fh:  # a log: bounded by its rotation size
            content = fh.read()
    except OSError:
        return False
    n = _planned_bytes(content[offset : offset + len(data) + 1], data)
    if n is None:
        return False  # not this plan's data (another file at that offset)
    end = offset + n
    # A log the deployment keeps elsewhere through its own symlink is rewritten there
    # (replacing the link sent every later record to the state directory), and keeps
    # the group write an operator gave it.
    target = _trusted_target(path)
    try:
        mode = os.stat(target).st_mode & 0o7777 & (LOG_MODE | 0o070)
    except OSError:
        mode = LOG_MODE
    atomic_write(target, content[:offset] + content[end:], mode=mode or LOG_MODE)
    return True


def _planned_bytes(found: bytes, data: bytes) -> int | None:
    """How many bytes of a planned append ``data`` a file holds, ``found`` being what
    the file holds from the plan's offset on (at least ``len(data) + 1`` bytes, or to
    its end): all of it, or a part cut short by a crash (at the end of the file,
    followed by the newline the next writer put after a cut line, counted too, or
    ending with a whole line, which the next writer's record follows). None if it
    holds none of it (another file, or the plan's data taken back already)."""
    n = 0
    for a, b in zip(found, data, strict=False):
        if a != b:
            break
        n += 1
    if n == 0:
        return None
    if n == len(data) or n == len(found):
        return n
    if found[n : n + 1] == b"\n":
        return n + 1
    # Another writer's record after the planned lines that reached the file: it begins
    # as the next planned line does (``{"test":...``), so the match ran on into it.
    return data.rfind(b"\n", 0, n) + 1 or None


def log_lock_path(path: str) -> str:
    """The lock file of the log at ``path``: ``<log>.lock`` beside the file the log is,
    so beside the file a symlink owned by this service's user or root leads to
    (:func:`_trusted_target`). Services or hosts that link one shared log from their own
    state directories then take one lock: a lock beside each link let their size
    checks, rotations and appends interleave (two rotations at once overwrite backups
    and leave gaps the readers stop at). Absolute."""
    return os.path.abspath(_trusted_target(path)) + ".lock"


def _trusted_target(path: str) -> str:
    """Where a symlink at ``path`` owned by this process's user or root leads (see
    :func:`_open_log`); ``path`` itself otherwise."""
    try:
        link = os.lstat(path)
    except OSError:
        return path
    if stat.S_ISLNK(link.st_mode) and link.st_uid in _owners():
        return os.path.realpath(path)
    return path


def _directory_owner(path: str) -> tuple[int, int]:
    """The owner and group of the directory ``path`` is in (its real one, for a log
    behind the deployment's own symlink)."""
    st = os.stat(os.path.dirname(os.path.abspath(_trusted_target(path))))
    return st.st_uid, st.st_gid


def _give_to_directory_owner(fd: int | None, directory: str) -> None:
    """A lock file or journal (open as ``fd``) this process's user owns in
    ``directory``, which another user owns (made by an ingest run as root), is given
    that user and group when this process is root: a lock file the service cannot
    open held every later write up, a journal it cannot read failed its reports.
    Never raises."""
    if fd is None or not _is_root():
        return  # (others cannot give a file away; a group change could widen access)
    try:
        st, home = os.fstat(fd), os.stat(directory)
        if st.st_uid == 0 != home.st_uid:
            _keep_owner(fd, (home.st_uid, home.st_gid))
    except OSError:
        return


def _journal_owner(journal: str) -> None:
    """:func:`_give_to_directory_owner` for a journal just written. Never raises."""
    try:
        fd = os.open(journal, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return
    try:
        _give_to_directory_owner(fd, os.path.dirname(os.path.abspath(journal)))
    finally:
        os.close(fd)


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _owners() -> set[int]:
    return {0, os.geteuid()} if hasattr(os, "geteuid") else {0}


class _Append(msgspec.Struct):
    path: str
    offset: int
    data: str


class _LedgerStep(msgspec.Struct):
    """The record of ingested inputs' entry for one input as it was before the ingest
    (None: none), put back by a recovery."""

    path: str
    key: str
    before: dict[str, Any] | None


class _Journal(msgspec.Struct):
    appends: list[_Append]
    ledger: _LedgerStep | None = None  # (journals of older versions have none)


def _decode_journal(raw: bytes) -> _Journal:
    """An ingest's journal, decoded (msgspec.DecodeError for one nested too deeply in
    its record's entry: a RecursionError got past every reader of the logs)."""
    try:
        return msgspec.json.decode(raw, type=_Journal)
    except RecursionError:
        raise msgspec.DecodeError("nested too deeply") from None


def _read_rotated(root: str, kind: type[_R], skipped: SkippedLines) -> Iterator[_R]:
    """:func:`read_log` of a rotated log: a :class:`LogTail` read in steps of 4 MiB,
    each step's records yielded; a last line without a newline counts as cut short."""
    tail = LogTail(root, kind)
    tail.skipped = skipped
    try:
        while True:
            batch: list[_R] = []
            tail.read(batch.extend, limit=4 << 20)
            if not tail.behind and tail._fh is not None:
                tail._drain(batch.extend, final=True)  # the end as it is now
            yield from batch
            if not tail.behind:
                return
    finally:
        tail.close()


def _candidates(path: str) -> list[str]:
    """The file and its rotated predecessors (data appended before a rotation moved);
    a log behind the deployment's own symlink has them beside the file the link leads
    to (:meth:`JsonLinesSink._rotate`)."""
    out = [path]
    root = _trusted_target(path)
    i = 1
    while os.path.exists(f"{root}.{i}"):
        out.append(f"{root}.{i}")
        i += 1
    return out


# ------------------------------------------------------------------------- reading logs


class SkippedLines:
    """Lines of exposure or metric logs a reader could not use (cut short by a crash,
    not JSON, a field missing or of the wrong type): counted, and the first ``keep``
    named ``file:line: why``. Readers never drop a line without counting it here."""

    def __init__(self, keep: int = 10) -> None:
        self.count = 0
        self.first: list[str] = []
        self.keep = keep

    def add(self, path: str, lineno: int, why: str) -> None:
        """Count one unusable line."""
        self.count += 1
        if len(self.first) < self.keep:
            self.first.append(f"{path}:{lineno}: {why}")

    @classmethod
    def merged(cls, *parts: SkippedLines, keep: int = 10) -> SkippedLines:
        """The lines of several readers (a report's two logs) as one count, the first
        named of each among the ``keep`` kept, so every file with unusable lines is
        named."""
        out = cls(keep)
        out.count = sum(p.count for p in parts)
        share = max(1, keep // max(1, sum(1 for p in parts if p)))
        for part in parts:
            out.first.extend(part.first[:share])
        del out.first[keep:]
        return out

    def __bool__(self) -> bool:
        return self.count > 0

    def __str__(self) -> str:
        more = f" (and {self.count - len(self.first)} more)" if self.count > len(self.first) else ""
        return f"{self.count} unusable line(s) skipped: " + "; ".join(self.first) + more


class ExposureRecord(msgspec.Struct):
    """One line of an exposure log, as :class:`JsonLinesSink` writes it. ``run``: the
    run of the test it was logged for (:attr:`Exposure.run`; a number, or null for a
    test never created again), :data:`UNTAGGED` for a line without one."""

    test: str
    variant: str
    user: str
    ts: float
    run: float | None | msgspec.UnsetType = msgspec.UNSET


class MetricRecord(msgspec.Struct):
    """One line of a metric log, as :class:`~cfgcore.experiments.metrics.MetricsStore`
    writes it (``value`` a finite number within ``MAX_METRIC_VALUE``, never a bool or
    a string). ``exposed_only``: the event counts only for a user whose exposure to
    the test is logged (a tracking event: ``DynamicConfigurationManager.track_metric``);
    absent from the line otherwise. ``run``: as for :class:`ExposureRecord`.
    ``event_id``: the event's id (:mod:`cfgcore.experiments.event_ids`): text of 1 to
    ``MAX_EVENT_ID`` characters, the ids writers and ``cfgcore experiment ingest``
    take, so a line holding another is unusable for every reader, as ingest refuses
    it; None in lines written before ids (counted as before, each line one event)."""

    test: str
    variant: str
    metric: str
    value: Annotated[float, msgspec.Meta(ge=-MAX_METRIC_VALUE, le=MAX_METRIC_VALUE)]
    user: str | None = None
    ts: float | None = None
    exposed_only: bool = False
    run: float | None | msgspec.UnsetType = msgspec.UNSET
    event_id: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_EVENT_ID)] | None = None


def in_run(test: str, run: Any, ts: float | None, runs: Mapping[str, float | None]) -> bool:
    """Whether a record of ``test`` tagged ``run`` (:data:`UNTAGGED`: none) and stamped
    ``ts`` belongs to the run of its test that ``runs`` names
    (:func:`cfgcore.experiments.abtest.record_runs`; a test not in it: any record).

    A tagged record belongs to the run it was logged for, whatever its stamp: a host
    whose clock runs ahead, still serving the earlier run of a test deleted and created
    again, stamps that run's records after the new run's ``since``, and they stay the
    earlier run's. A record without a tag (a log written before tags) falls back to the
    time rule: the run's records are those stamped after its ``since``."""
    if test not in runs:
        return True
    want = runs[test]
    if run is UNTAGGED:
        return want is None or (ts or 0.0) > want
    return run == want


_R = TypeVar("_R", ExposureRecord, MetricRecord)


def read_log(
    path: str | os.PathLike[str],
    kind: type[_R],
    skipped: SkippedLines | None = None,
    *,
    rotated: bool = True,
) -> Iterator[_R]:
    """The usable records of a JSON-lines log and (``rotated``) its rotated
    predecessors, oldest first, decoded as ``kind``. Every other line is counted in
    ``skipped`` with its file and line number; without ``skipped`` the count is logged
    as a warning once the log is read. A file that exists but cannot be read raises
    :class:`~cfgcore.errors.ConfigError` naming it."""
    own = skipped is None
    if skipped is None:
        skipped = SkippedLines()
    decoder = _DECODERS.get(kind) or _DECODERS.setdefault(kind, msgspec.json.Decoder(kind))
    root = os.fspath(path)
    if rotated:
        # Followed as LogTail does (by the open files, names resolved under the log's
        # lock): a writer rotating the log while it is read (a report of a live
        # service's logs) can neither make it skip a rotated file nor read one twice.
        yield from _read_rotated(root, kind, skipped)
        if own and skipped:
            log.warning("%s: %s", root, skipped)
        return
    for p in [root]:
        try:
            # A regular file only, never blocking: open() of a FIFO planted at the
            # log's name waited for a writer for ever.
            fh = os.fdopen(_open_to_read(p), "rb")
        except FileNotFoundError:
            continue  # rotated away meanwhile
        except OSError as exc:
            raise ConfigError(f"cannot read: {exc.strerror or exc}", file=p) from None
        with fh:
            try:
                for lineno, line in bounded_lines(fh):
                    if line is None:
                        skipped.add(p, lineno, _TOO_LONG)
                        continue
                    if not line.strip():
                        continue
                    if not line.endswith(b"\n"):
                        skipped.add(p, lineno, "cut short (no newline at the end of the file)")
                        continue
                    try:
                        yield decoder.decode(line)
                    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                        skipped.add(p, lineno, _unusable(exc))
                    except RecursionError:
                        skipped.add(p, lineno, "nested too deeply")
            except OSError as exc:  # a directory, a read error midway
                raise ConfigError(f"cannot read: {exc.strerror or exc}", file=p) from None
    if own and skipped:
        log.warning("%s: %s", root, skipped)


_DECODERS: dict[type, Any] = {}


def bounded_lines(fh: Any) -> Iterator[tuple[int, bytes | None]]:
    """The numbered lines of the binary file ``fh``; None for a line longer than
    :data:`MAX_LINE` (no record is), passed over to its newline a MiB at a time:
    iterating the file held a line of a GB (a binary given by mistake) whole in memory.
    The logs' readers and ``cfgcore experiment ingest`` read through it."""
    lineno = 0
    while line := fh.readline(MAX_LINE + 1):
        lineno += 1
        if len(line) <= MAX_LINE:
            yield lineno, line
            continue
        del line
        while (piece := fh.readline(1 << 20)) and not piece.endswith(b"\n"):
            pass
        yield lineno, None


def read_exposures(
    path: str | os.PathLike[str], skipped: SkippedLines | None = None
) -> list[Exposure]:
    """Every exposure in a JSON-lines file and its rotated predecessors; unusable lines
    are counted in ``skipped`` (see :func:`read_log`)."""
    return [
        Exposure(r.test, r.variant, r.user, r.ts, r.run)
        for r in read_log(path, ExposureRecord, skipped)
    ]


#: The longest line a log reader decodes: no record cfgcore writes comes near it.
MAX_LINE = 64 << 20
_TOO_LONG = f"line longer than {MAX_LINE >> 20} MiB (no record is)"


class LogTail(Generic[_R]):
    """Follow a JSON-lines log that :class:`JsonLinesSink` appends to and rotates: each
    :meth:`read` hands every record appended since the previous one (the first: from
    the oldest rotated file on), in the order written, to ``apply`` in batches.

    Several processes append to one log (each batch one whole write under the log's
    lock), so every reader sees the same sequence of records, and each read ends at a
    point of it: what the readers have read is always a prefix of one sequence.

    The followed file is kept open: a rotation (a rename) cannot make the reader skip
    or repeat a line. When the log's name has come to mean another file, the followed
    one is read to its end (a rotated file is never appended to again), then the
    files rotated after it, oldest first, then the new current file. Names are
    resolved under the log's lock taken shared (rotation takes it exclusively), so a
    rotation is never seen half done; reading takes no lock. A followed file that was
    rotated out of the backups before it could be found again is still read to its
    end (its descriptor keeps it), but files rotated out with it are lost: counted in
    ``gaps``. A followed file rewritten in its own place (an unfinished ingest taken
    back, :func:`recover_appends`) is read on in its new form from where the tail was,
    when the rewrite begins with every byte read from it (a reader that cut before
    the ingest's appends, :func:`cut_logs_before`); one that does not (a part read
    was cut out, or nothing of it was read) counts in ``gaps`` too: its reader can
    no longer count on having read a prefix of the log. So does the followed file
    cut back or written over in the same file (logrotate's ``copytruncate``), which is
    then read again from its start (:meth:`_written_over`). Unusable lines are counted
    in ``skipped``, named by file and line.

    A cut (:meth:`cut`, through :func:`cut_logs`) makes reads stop at the end the log
    had at one instant, which two logs can share: the files are opened then, so later
    rotations and appends change nothing of what is read up to it.
    """

    chunk = 1 << 20  # bytes read at a time

    def __init__(self, path: str | os.PathLike[str], kind: type[_R], *, batch: int = 4096) -> None:
        self.path = os.fspath(path)
        self.kind: type[_R] = kind
        self.batch = batch
        self.skipped = SkippedLines()
        self.gaps = 0
        self.records = 0  # records handed to apply, in all
        self._decoder = _DECODERS.get(kind) or _DECODERS.setdefault(
            kind, msgspec.json.Decoder(kind)
        )
        self._fh: Any = None  # the followed file
        self._name = self.path  # its name when opened (for messages)
        self._offset = 0  # the end of its last complete line read
        self._lineno = 0
        self._mark = b""  # the last bytes read before _offset (at most _MARK of them)
        self.behind = True  # the last read stopped at its limit before the end
        # A cut: the files after the followed one it opened (oldest first), and the
        # bytes of the last of them (of the followed file when there is none) to read.
        self._cut = False
        self._ahead: list[tuple[str, Any]] = []
        self._stop: int | None = None
        #: ``(file, bytes)``: the log's current file at the last :meth:`cut` and its
        #: size then (the files rotated before it are read whole); None before a cut
        #: or when the log had no file.
        self.cut_at: tuple[str, int] | None = None

    def close(self) -> None:
        """Close the followed file (the next read starts again from the oldest file)."""
        if self._fh is not None:
            self._fh.close()
        for _, fh in self._ahead:
            fh.close()
        self._fh, self._offset, self._lineno, self._mark = None, 0, 0, b""
        self._cut, self._ahead, self._stop, self.cut_at = False, [], None, None
        self.behind = True

    def cut(self) -> None:
        """Make reads stop at the log's end as it is now: the files rotated after the
        followed one (after the last cut's) are opened, and the size of the current one
        noted; :meth:`read` then reads up to there and no further, until the next cut.
        Call it holding the log's lock (:func:`cut_logs`), so that no append is half
        done and no rotation under way."""
        self._written_over()
        last = self._ahead[-1][1] if self._ahead else self._fh
        chain = self._chain(last, lock=False)
        if not (chain and chain[0][1] is None):  # (None: `last` is still the current file)
            self._ahead.extend(chain)
        self._cut = True
        name, fh = self._ahead[-1] if self._ahead else (self._name, self._fh)
        if fh is None:
            self._stop, self.cut_at = 0, None  # no file yet: nothing to read
            return
        self._stop = os.fstat(fh.fileno()).st_size
        self.cut_at = (name, self._stop)

    def stop_before(self, offset: int, data: bytes) -> bool:
        """After a :meth:`cut`, under the same locks: make reads stop before an
        unfinished ingest's append (``data`` planned at ``offset``, see
        :func:`append_together`) where a file of the cut holds it, for a reader that
        leaves it for another process to take back. The cut then ends at ``offset``
        of that file (before the file, if the append is its beginning) and the files
        rotated after it are left for a later cut. True if a file held it.

        What this tail read before is before it: an earlier cut that ended past
        ``offset`` of that file was made with the append already there and its
        journal found, so it stopped before it too."""
        followed = int(self._fh is not None)  # files[0] is the followed file
        files = [(self._name, self._fh)] * followed + self._ahead
        for k in range(len(files) - 1, -1, -1):
            name, fh = files[k]
            found = os.pread(fh.fileno(), len(data) + 1, offset)
            if not found or _planned_bytes(found, data) is None:
                continue
            if offset == 0 and k >= followed:
                # A file not read yet that begins with it is left out whole: nothing
                # of it is read before it is taken back (or rotated on).
                k -= 1
                if k < 0:
                    for _, later in files:
                        later.close()
                    self._ahead, self._stop, self.cut_at = [], 0, None
                    return True
                name, fh = files[k]
                offset = os.fstat(fh.fileno()).st_size
            for _, later in files[k + 1 :]:
                later.close()
            self._ahead = files[followed : k + 1]
            self._stop, self.cut_at = offset, (name, offset)
            return True
        return False

    def read(
        self,
        apply: Callable[[list[_R]], Any],
        *,
        limit: int | None = None,
        final: bool = False,
        lock_held: bool = False,
    ) -> int:
        """Hand the records appended since the last read to ``apply`` (in batches);
        returns how many. A file that exists but cannot be read raises
        :class:`~cfgcore.errors.ConfigError` naming it.

        ``limit``: stop after about that many bytes (whole lines; at least one
        :attr:`chunk` or one line), leaving :attr:`behind` True; the next read goes on from
        there. Reads in steps hand ``apply`` the same records in the same order as one
        read would. After a :meth:`cut`, reads stop at it (``final``: a last line
        without a newline there is counted as cut short, for a reader that reads
        no further). ``lock_held``: the caller holds the log's lock (an ingest, under
        :func:`append_together`'s locks): names are resolved without taking it again."""
        before = self.records
        budget = [limit]
        self.behind = True
        if self._cut:
            self._read_to_cut(apply, budget, final)
            return self.records - before
        if self._fh is not None:
            if not self._drain(apply, final=False, budget=budget):
                return self.records - before
            if self._is_current(self._fh):
                self.behind = False
                return self.records - before
        # Names first, then the rest of the followed file: it may have been rewritten
        # (an unfinished ingest taken back), and the rewrite is then followed instead.
        chain = self._chain(self._fh, lock=not lock_held)
        if chain and chain[0][1] is None:  # not rotated after all: keep following it
            if self._drain(apply, final=False, budget=budget):
                self.behind = False
            return self.records - before
        if self._fh is not None and not self._drain(apply, final=True, budget=budget):
            for _, fh in chain:  # found again by the next read's _chain
                fh.close()
            return self.records - before  # rotated: whatever came before the rename
        self.close()
        for k, (name, fh) in enumerate(chain[:-1]):
            self._fh, self._name, self._offset, self._lineno, self._mark = fh, name, 0, 0, b""
            if not self._drain(apply, final=True, budget=budget):
                for _, later in chain[k + 1 :]:  # found again by the next read's _chain
                    later.close()
                return self.records - before  # this rotated file is followed on
            fh.close()
        self._fh = None
        if chain:
            self._name, self._fh = chain[-1]
            self._offset = self._lineno = 0
            self._mark = b""
            if not self._drain(apply, final=False, budget=budget):
                return self.records - before
        self.behind = False
        return self.records - before

    def _read_to_cut(
        self, apply: Callable[[list[_R]], Any], budget: list[int | None], final: bool
    ) -> None:
        """:meth:`read` after a :meth:`cut`: the followed file, then the files the cut
        opened, the last one up to the size it had then."""
        while True:
            if self._fh is None:
                if not self._ahead:
                    self.behind = False
                    return
                (self._name, self._fh), self._offset, self._lineno = self._ahead.pop(0), 0, 0
                self._mark = b""
            last = not self._ahead
            # A file before the last was rotated before the cut: complete, read whole.
            stop = self._stop if last else None
            if not self._drain(apply, final=final or not last, budget=budget, stop=stop):
                return
            if last:
                self.behind = False
                return
            self._fh.close()
            self._fh = None

    def _is_current(self, fh: Any) -> bool:
        try:
            st = os.stat(self.path)
        except OSError:
            return False
        own = os.fstat(fh.fileno())
        return (st.st_dev, st.st_ino) == (own.st_dev, own.st_ino)

    def _chain(self, after: Any, *, lock: bool = True) -> list[tuple[str, Any]]:
        """The files to read after the file open as ``after``, oldest first, open: the
        rotated files newer than it (all of them when ``after`` is None), then the
        current file; ``[(path, None)]`` when ``after`` is still the current file.
        Under the log's lock, taken shared here unless the caller holds it (``lock``)."""
        followed = None
        if after is not None:
            own = os.fstat(after.fileno())
            followed = (own.st_dev, own.st_ino)
        held = FileLock(log_lock_path(self.path), shared=True, create=False)
        with held if lock else contextlib.nullcontext():
            names = _candidates(self.path)  # the current file, then .1, .2 ... (older)
            newer: list[str] = names[1:]
            found = followed is None
            if followed is not None:
                newer = []
                for k, name in enumerate(names):
                    try:
                        st = os.stat(name)
                    except OSError:
                        continue
                    if (st.st_dev, st.st_ino) == followed:
                        if k == 0:  # still the current file (a failed stat said otherwise)
                            return [(self.path, None)]
                        found = True
                        break
                    if k:
                        newer.append(name)
            rewrite = self._rewritten(names) if not found and after is self._fh else None
            if rewrite is not None:
                if rewrite == 0:
                    return [(self.path, None)]
                found, newer = True, names[1:rewrite]
            if not found:
                self.gaps += 1  # rotated out: files between it and the oldest kept are lost
            out = []
            for name in [*reversed(newer), self.path]:
                try:
                    # Regular files only, never blocking: a FIFO planted as a rotated log
                    # held this (the writers') lock, and the writers, for ever.
                    fd = _open_to_read(name)
                    out.append((name, os.fdopen(fd, "rb")))
                except FileNotFoundError:
                    continue
                except OSError as exc:
                    for _, fh in out:
                        fh.close()
                    raise ConfigError(f"cannot read: {exc.strerror or exc}", file=name) from None
            return out

    def _rewritten(self, names: list[str]) -> int | None:
        """Under the log's lock, the followed file being none of ``names``: the index
        of the one that is it rewritten (an unfinished ingest taken back,
        :func:`recover_appends`, writes the file again without its appends), found by
        holding every byte read from it so far; it is then the followed file, read
        on from the same offset. None if none does: rotated out of the backups, or
        rewritten without a part this tail read (the caller cannot count on what it
        was handed being the log's prefix any more: :attr:`gaps`)."""
        if not self._offset:
            return None  # (nothing read: any file would do, none is known to be it)
        old = self._fh.fileno()
        for k, name in enumerate(names):
            try:
                fd = _open_to_read(name)
            except OSError:
                continue
            if _same_start(old, fd, self._offset):
                self._fh.close()
                self._fh, self._name = os.fdopen(fd, "rb"), name
                return k
            os.close(fd)
        return None

    def _drain(
        self,
        apply: Callable[[list[_R]], Any],
        *,
        final: bool,
        budget: list[int | None] | None = None,
        stop: int | None = None,
    ) -> bool:
        """Read the followed file from the last complete line on; ``final``: it is
        complete, and a last line without a newline was cut short by a crash. With a
        ``budget`` (``[bytes left]``, None: no limit), stop once it is spent and some
        line was read; False if it stopped before the end of the file. ``stop``: the
        file ends there for this read (a cut), whatever was appended since."""
        fh, name = self._fh, self._name
        out: list[_R] = []
        at_end = True
        try:
            self._written_over()
            fh.seek(self._offset)
            position = self._offset
            rest = b""
            skipping = 0  # bytes of a line longer than MAX_LINE passed over so far
            while True:
                want = self.chunk if stop is None else min(self.chunk, stop - position)
                chunk = fh.read(want) if want > 0 else b""
                if not chunk:
                    break
                position += len(chunk)
                if skipping:
                    nl = chunk.find(b"\n")
                    if nl < 0:
                        skipping += len(chunk)
                        continue
                    self._lineno += 1
                    self.skipped.add(name, self._lineno, _TOO_LONG)
                    self._offset += skipping + nl + 1
                    self._mark = chunk[max(0, nl + 1 - _MARK) : nl + 1]
                    skipping, chunk = 0, chunk[nl + 1 :]
                data = rest + chunk
                end = data.rfind(b"\n") + 1
                rest = data[end:]
                for line in data[: end - 1].split(b"\n") if end else ():
                    self._lineno += 1
                    if line.strip():
                        self._decode(line, out)
                    if len(out) >= self.batch:
                        self.records += len(out)
                        apply(out)
                        out = []
                self._offset += end
                if end:
                    self._mark = (self._mark + data[max(0, end - _MARK) : end])[-_MARK:]
                if len(rest) > MAX_LINE:
                    # No record is this long (a planted or damaged log): passed over to
                    # its newline a chunk at a time, never held whole (a line of GBs
                    # took memory and quadratic time), and counted as unusable.
                    skipping, rest = len(rest), b""
                if budget is not None and budget[0] is not None:
                    budget[0] -= len(chunk)
                    if budget[0] <= 0 and end:
                        at_end = False  # (the rest of this chunk is read again next time)
                        break
        except OSError as exc:
            raise ConfigError(f"cannot read: {exc.strerror or exc}", file=name) from None
        if at_end and final and rest.strip():
            self.skipped.add(
                name, self._lineno + 1, "cut short (no newline at the end of the file)"
            )
        elif at_end and final and skipping:
            self.skipped.add(name, self._lineno + 1, _TOO_LONG)
        if out:
            self.records += len(out)
            apply(out)
        return at_end

    def _written_over(self) -> None:
        """Check that the followed file still holds what this tail read of it where it
        read it. If not (cut back below it, or emptied and written again in its place:
        logrotate's ``copytruncate`` copies a log to ``<log>.1`` and empties it where it
        is, and the writers then append from its start), what was read is no prefix of
        the log any more: counted in :attr:`gaps`, and the file is read again from its
        start (after a ``copytruncate``, exactly what was appended since). Read on from
        the old offset, the tail waited for the file to pass it, then read from the
        middle of a record and never handed what came before it."""
        fh = self._fh
        if fh is None or not self._offset:
            return
        fd, mark = fh.fileno(), self._mark
        if os.fstat(fd).st_size >= self._offset and (
            not mark or os.pread(fd, len(mark), self._offset - len(mark)) == mark
        ):
            return
        self.gaps += 1
        log.warning(
            "%s was cut back or written over in its place (as logrotate's copytruncate "
            "does) after %d bytes of it were read: read again from its start",
            self._name, self._offset,
        )  # fmt: skip
        self._offset = self._lineno = 0
        self._mark = b""

    def _decode(self, line: bytes, out: list[_R]) -> None:
        try:
            out.append(self._decoder.decode(line))
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            self.skipped.add(self._name, self._lineno, _unusable(exc))
        except RecursionError:
            self.skipped.add(self._name, self._lineno, "nested too deeply")


#: How many of the last bytes read a :class:`LogTail` checks are still where it read
#: them (a record's last bytes: its time stamp, unlike any other record's at that spot).
_MARK = 64


def _unusable(exc: msgspec.DecodeError | msgspec.ValidationError) -> str:
    """Why a log line is unusable: a field of the wrong type by its key path, as every
    other message names one (``value: expected float, got str``, not msgspec's
    ``Expected `float`, got `str` - at `$.value```); a line that is no JSON as msgspec
    says it."""
    if isinstance(exc, msgspec.ValidationError):
        return str(msgspec_problem(exc, None))
    return str(exc)


def _same_start(a: int, b: int, size: int) -> bool:
    """Whether the files open as ``a`` and ``b`` both begin with the same ``size`` bytes."""
    at = 0
    while at < size:
        step = min(1 << 20, size - at)
        chunk = os.pread(a, step, at)
        if len(chunk) != step or os.pread(b, step, at) != chunk:
            return False
        at += step
    return True


def cut_logs(tails: Sequence[LogTail[Any]], journal: str | os.PathLike[str] | None = None) -> None:
    """:meth:`LogTail.cut` every tail at one instant: under every log's lock, taken
    shared (in the order of the lock files, as writers take several), so no append is
    half done and no ingest (:func:`append_together`, which holds them all) is
    between its logs. What the tails read up to the cut is then what the logs held at
    that instant: a report's exposures and metric events are one cut, not the
    exposure log at one time and the metric log at a later one.

    ``journal``: the journal of ``cfgcore experiment ingest`` beside the logs. Found
    under the locks it is a dead ingest's (a live one holds them until its journal is
    gone): the locks are let go, its appends taken back (:func:`recover_appends`) and
    the cut made again, so no part of an unfinished ingest is read."""
    locks = sorted({log_lock_path(tail.path) for tail in tails})
    while True:
        with contextlib.ExitStack() as stack:
            for path in locks:
                stack.enter_context(FileLock(path, shared=True, create=False))
            if journal is None or not os.path.lexists(journal):
                for tail in tails:
                    tail.cut()
                return
        recover_appends(os.fspath(journal))


class UnusableJournal(ConfigError):
    """The journal of an unfinished ingest cannot be read (its permissions) or holds no
    journal: nothing tells which part of the logs is that ingest's."""


def cut_logs_before(tails: Sequence[LogTail[Any]], journal: str | os.PathLike[str]) -> bool:
    """:func:`cut_logs` for a reader that leaves an unfinished ingest for another
    process to take back (it cannot itself: see :class:`~cfgcore.experiments.guardrails.
    SharedLogs`): under the logs' locks, the journal found there is a dead ingest's,
    and each tail's cut ends before that ingest's append to its log
    (:meth:`LogTail.stop_before`), so no part of it is read; what other writers
    appended after it waits for the take-back. True if there was a journal.
    :class:`UnusableJournal` (nothing cut) if the journal cannot be read or is no
    journal."""
    locks = sorted({log_lock_path(tail.path) for tail in tails})
    with contextlib.ExitStack() as stack:
        for path in locks:
            stack.enter_context(FileLock(path, shared=True, create=False))
        plan = None
        try:
            raw = _read_journal(os.fspath(journal))
            if raw is not None:
                plan = _decode_journal(raw)
        except ConfigError as exc:
            raise UnusableJournal(exc.problems) from None
        except msgspec.MsgspecError as exc:
            raise UnusableJournal(
                f"unusable journal of an unfinished ingest: {exc}", file=os.fspath(journal)
            ) from None
        for tail in tails:
            tail.cut()
            lock = log_lock_path(tail.path)
            for step in plan.appends if plan is not None else ():
                if log_lock_path(step.path) == lock:
                    tail.stop_before(step.offset, step.data.encode())
    return plan is not None


def read_to_cut(tail: LogTail[_R], skipped: SkippedLines | None = None) -> Iterator[_R]:
    """The records of ``tail`` up to its :meth:`~LogTail.cut`, read in steps of 4 MiB
    (each step's records held at once, never the whole log); a last line without a
    newline counts as cut short. Unusable lines are counted in ``skipped``."""
    if skipped is not None:
        tail.skipped = skipped
    while True:
        batch: list[_R] = []
        tail.read(batch.extend, limit=4 << 20, final=True)
        yield from batch
        if not tail.behind:
            return


#: Bytes of user ids (``sys.getsizeof``) one test's exposure dedup keeps by default:
#: a million typical ids (a UUID's text takes 85) fit, so the user count bounds it
#: first; long ids (8 KB each would make the million 8 GB) clear it earlier.
DEDUP_BYTES = 128 << 20


#: A user id's text of at most this many characters is looked up in its int form too
#: (``details.ID_FORM_CHARS``: the longest int that is an id).
ID_FORM_CHARS = _ID_FORM_CHARS


def _is_int_text(text: str) -> bool:
    """Whether ``text`` is an int's canonical decimal text (``"42"``, ``"-7"``; not
    ``"042"``, ``"+42"``, ``"-0"``, non-ASCII digits) of at most ``ID_FORM_CHARS``
    characters: an id a ``SeedAPI`` may have logged as the int (the evaluators'
    ``_other_id_form``, str side)."""
    if type(text) is not str or not 0 < len(text) <= ID_FORM_CHARS:
        return False
    digits = text[1:] if text[0] == "-" else text
    return digits.isascii() and digits.isdigit() and (digits[0] != "0" or len(text) == 1)


def _int_form(text: str) -> int | None:
    """The int whose canonical decimal text ``text`` is (:func:`_is_int_text`), else
    None. The logger parses a text id only where a SeedAPI ever put an int in the
    shards: a service whose ids reach the SeedAPI only as text never parses one."""
    if type(text) is not str or not 0 < len(text) <= ID_FORM_CHARS:
        return None
    digits = text[1:] if text[0] == "-" else text
    if not (digits.isascii() and digits.isdigit()) or (digits[0] == "0" and len(text) > 1):
        return None
    try:
        return int(text)
    except ValueError:  # past sys.get_int_max_str_digits
        return None


def shard_limit(dedup_limit: int) -> int:
    """Users one dedup shard holds before it is cleared: ``dedup_limit`` spread over
    the ``DEDUP_SHARDS`` shards, rounded up, at least 1."""
    return max(1, -(-dedup_limit // DEDUP_SHARDS))


class ExposureLogger:
    """Deduplicating, non-blocking exposure logger.

    :meth:`log` is called on the evaluation path. It records each (test, user) once:
    a user is its id as text (:func:`cfgcore.details.user_id_text`, the text the
    engine buckets by), so ``42`` and ``"42"`` are one user, logged once and filed as
    ``"42"``. Per test, the users already logged are kept in ``DEDUP_SHARDS`` sets
    picked by the id's hash, so that growing them rehashes one small set at a time
    instead of stalling a request on one large set's rehash. A shard that reaches its share of
    ``dedup_limit`` is cleared, so memory stays bounded and a user may then be logged
    again (consumers dedup by user anyway). The ids' memory is bounded too: a shard
    whose ids take more than its share of ``dedup_bytes`` (``sys.getsizeof`` of each)
    is cleared the same way, so long ids (an 8 KB id, say) cannot make the user bound
    gigabytes. The bytes are counted on the writer thread, off the request path, as
    each first exposure reaches it: a shard may exceed its share by the ids of the
    exposures still waiting to be written. It appends the exposure to a backlog of at
    most ``queue_size`` exposures and ``queue_bytes`` bytes (an estimate: the user ids'
    characters, and 96 bytes each for the rest); a daemon thread writes batches to
    every sink (:class:`~cfgcore.experiments.writer.BackgroundWriter`: the request
    thread never takes a lock or waits for the writer). A full backlog drops the
    exposure and increments :attr:`dropped`; an exposure accepted is written by
    :meth:`flush` and :meth:`close`.

    >>> sink = MemorySink()
    >>> logger = ExposureLogger([sink])
    >>> logger.log("t", "control", "u1"); logger.log("t", "control", "u1")
    >>> logger.flush(); len(sink.exposures)
    True
    1
    >>> logger.close()
    """

    def __init__(
        self,
        sinks: Iterable[ExposureSink] = (),
        *,
        queue_size: int = 100_000,
        queue_bytes: int = MAX_PENDING_BYTES,
        batch_size: int = 64,
        dedup_limit: int = 1_000_000,
        dedup_bytes: int = DEDUP_BYTES,
        clock: Callable[[], float] = time.time,
    ) -> None:
        # Numbers by their value, checked before anything starts (cfgcore._numbers).
        queue_size = whole_at_least("queue_size", queue_size, 1, "exposures")
        queue_bytes = whole_at_least("queue_bytes", queue_bytes, 1, "bytes")
        batch_size = whole_at_least("batch_size", batch_size, 1, "exposures")
        dedup_limit = whole_at_least("dedup_limit", dedup_limit, 1, "users")
        dedup_bytes = whole_at_least("dedup_bytes", dedup_bytes, 1, "bytes")
        self.sinks: list[ExposureSink] = list(sinks)
        self.written = 0
        self.sink_errors = 0
        self._seen: dict[str, tuple[set[Any], ...]] = {}
        self._shard_limit = shard_limit(dedup_limit)
        self._shard_bytes = max(1, -(-dedup_bytes // DEDUP_SHARDS))
        # An id of at most its share of the bytes (dedup_bytes / dedup_limit: 134 by
        # default, an 85-character ASCII id) is bounded by the count; the writer counts
        # only the longer ones (_account), so typical ids cost it one length check.
        # (An id of at most 85 characters that are not all ASCII takes up to 4x that.)
        self._long_id = self._shard_bytes // self._shard_limit
        # {test: [bytes of long ids, entries]} per shard, kept by the writer thread.
        self._sizes: dict[str, list[list[int]]] = {}
        # A datetime with a time zone: its seconds. A clock that raises (or answers no
        # instant) stamps by the system clock: log() and expose() never raise.
        self._clock = stamp_clock(clock)
        #: ``{test: lowest stamp}``: a run created again after a deletion (its record's
        #: ``since``) gets no stamp at or before its ``since`` (see :meth:`_deliver`).
        self.floors: dict[str, float] = {}
        #: ``{test: run}``: the run each test's records are tagged with (``run`` in the
        #: log line), set by the manager once per flag document it serves
        #: (:func:`cfgcore.experiments.abtest.record_runs`); a test not in it is logged
        #: without a tag. Read when an exposure is logged, so a record carries the run
        #: of the document its request was served from, however late it is written.
        self.runs: dict[str, float | None] = {}
        # True once a SeedAPI that logs an int id only if its text is not logged (and
        # the reverse) is attached: its int records are filed as their text, which
        # does not join the shards (one entry per user).
        self._joined = False
        # The id forms the shards ever held, shared with that SeedAPI: [0] an int's
        # decimal text, [1] an int. A first exposure looks its id's other form up only
        # once the shards held that form (a second set probe costs a cache miss).
        self._forms = bytearray(2)
        # The backlog: queue_size exposures, or queue_bytes of them (the user id is the
        # text a request gives a record: Exposure's field 2).
        self._writer = BackgroundWriter(
            self._deliver, name="cfgcore-exposures", max_pending=queue_size,
            max_bytes=queue_bytes, sized=(2,), batch_size=batch_size,
        )  # fmt: skip
        # The hot path appends raw tuples; the writer thread builds the Exposure records.
        self._append = self._writer.append
        _LOGGERS.add(self)

    @property
    def logged(self) -> int:
        """Exposures accepted for writing."""
        return self._writer.appended

    @property
    def dropped(self) -> int:
        """Exposures not written: backlog full, or logged after :meth:`close`."""
        return self._writer.dropped

    def _after_fork_in_child(self) -> None:
        # The writer resets itself (cfgcore.experiments.writer); the sinks' locks here.
        for sink in self.sinks:
            reset = getattr(sink, "_after_fork_in_child", None)
            if callable(reset):
                reset()

    def add_sink(self, sink: ExposureSink) -> None:
        """Send future exposures to ``sink`` too."""
        self.sinks = [*self.sinks, sink]

    def seen_shards(self, test: str) -> tuple[set[Any], ...]:
        """The users already logged for ``test``: the live dedup shards, a tuple of
        ``DEDUP_SHARDS`` sets (read them, do not mutate them); a user is in
        ``shards[hash(user) & (DEDUP_SHARDS - 1)]`` by its id's text. Callers on the
        hot path test membership there before calling :meth:`log`.

        An evaluator's ``SeedAPI`` (:meth:`attach`) adds exact ``int`` ids as they
        are, so that their steady state stays one set lookup with no ``str()``: a
        user is then in the shards as its int or as its text, never both (a first
        exposure looks its id's other form up first), so ``42`` then ``"42"`` (or the
        reverse) is logged once and takes one entry. Its record reaches the writer
        thread with the int and is filed as the text (:meth:`_deliver`)."""
        shards = self._seen.get(test)
        if shards is None:
            shards = self._seen.setdefault(test, tuple(set() for _ in range(DEDUP_SHARDS)))
        return shards

    def log(self, test: str, variant: str, user: Any) -> None:
        """Record that ``user`` was served ``variant`` of ``test`` (first time only).

        ``user`` is filed as its text (``42`` and ``"42"`` are one user). Never blocks
        and never raises on the caller's data.
        """
        try:
            shards = self.seen_shards(test)
            if type(user) is int:
                # A SeedAPI logs an exact int as it is: looked up as the int, not as
                # its text parsed back (see _int_form)
                if self._forms[1] and user in shards[hash(user) & (DEDUP_SHARDS - 1)]:
                    return
                user = user_id_text(user)
                if user is None:  # past ID_FORM_CHARS: no id
                    return
                shard = shards[hash(user) & (DEDUP_SHARDS - 1)]
                if user in shard:
                    return
                if len(user) <= ID_FORM_CHARS:
                    self._forms[0] = 1
            else:
                if type(user) is not str:
                    user = user_id_text(user)
                    if user is None:  # no text (its __str__ raised, a lone surrogate)
                        return
                shard = shards[hash(user) & (DEDUP_SHARDS - 1)]
                if user in shard:
                    return
                forms = self._forms
                if forms[1]:  # a SeedAPI put ints in the shards: this one may be there
                    n = _int_form(user)
                    if n is not None:
                        if n in shards[hash(n) & (DEDUP_SHARDS - 1)]:
                            return
                        forms[0] = 1
                elif not forms[0] and _is_int_text(user):
                    forms[0] = 1  # no int to look up (no parse): the text form is marked
        except Exception:  # an unhashable id, or a str subclass whose __hash__ raises
            return
        if len(shard) >= self._shard_limit:
            shard.clear()  # the same set object: holders of seen_shards() stay in sync
        shard.add(user)
        record = (test, variant, user, self._clock(), self.runs.get(test, UNTAGGED))
        if self._append(record) is False:
            # Dropped (backlog full, or closed): not logged, so not deduplicated either:
            # the user's next evaluation tries again.
            shard.discard(user)

    def attach(self, api: Any) -> None:
        """Let an evaluator's ``SeedAPI`` record first exposures itself (dedup shards,
        record, this logger's writer), with exactly :meth:`log`'s rules."""
        clock = None if self._clock is time.time else self._clock
        self._joined = getattr(api, "joins_id_forms", False) is True
        if self._joined:
            api.log_to(self._append, clock, self._shard_limit, self._forms)
        else:
            api.log_to(self._append, clock, self._shard_limit)
        self._writer.start()  # now, not on a request's first exposure

    def expose(
        self,
        test: str,
        variant: str,
        user_context: Any,
        *,
        seen: Any = None,
        runs: dict[str, Any] | None = None,
    ) -> None:
        """:meth:`log` for the user a context names: ``user_id``, else ``targeting_key``
        (what the engine buckets by; a str, or an int that is not a bool), as text. The
        first exposure of a request runs this one frame. Never raises.

        ``seen`` and ``runs`` are those of the flag document the request was served
        from (an evaluator's ``SeedAPI`` passes its views' dedup shards of ``test`` and
        their ``runs``: see :attr:`takes_views`): the user is deduplicated in ``seen``
        (a tuple of ``DEDUP_SHARDS`` sets; None, or a value of another length or type:
        :meth:`seen_shards`; a shard in it that is no set: not logged)
        and the record tagged with ``runs[test]`` (None: :attr:`runs`), so a request
        still served by an earlier run while a change goes live is logged for that
        run, never for the new one."""
        try:
            user = user_context.get("user_id")
            if not _usable_id(user):
                user = user_context.get("targeting_key")
                if not _usable_id(user):
                    return
            if type(seen) is tuple and len(seen) == DEDUP_SHARDS:
                shards = seen
            else:
                shards = self.seen_shards(test)
            if type(user) is int:
                # An exact int (an OpenFeature attribute, say) is looked up as the int
                # a SeedAPI logs, not as its text parsed back (see _int_form)
                if self._forms[1] and user in shards[hash(user) & (DEDUP_SHARDS - 1)]:
                    return
                user = user_id_text(user)
                if user is None:
                    return
                shard = shards[hash(user) & (DEDUP_SHARDS - 1)]
                if user in shard:
                    return
                if len(user) <= ID_FORM_CHARS:
                    self._forms[0] = 1
            else:
                if type(user) is not str:
                    user = user_id_text(user)
                    if user is None:
                        return
                shard = shards[hash(user) & (DEDUP_SHARDS - 1)]
                if user in shard:
                    return
                forms = self._forms
                if forms[1]:  # a SeedAPI put ints in the shards: this one may be there
                    n = _int_form(user)
                    if n is not None:
                        if n in shards[hash(n) & (DEDUP_SHARDS - 1)]:
                            return
                        forms[0] = 1
                elif not forms[0] and _is_int_text(user):
                    forms[0] = 1  # no int to look up (no parse): the text form is marked
            if isinstance(runs, dict):  # a subclass read as a dict, as the SeedAPI reads it
                run = dict.get(runs, test, UNTAGGED)
            else:
                run = self.runs.get(test, UNTAGGED)
        except Exception:  # a mapping that raises, an id whose __hash__ raises
            return
        if not issubclass(type(shard), set):  # (type(): no __class__ of the caller's read)
            return  # shards made by hand, with something else in them: not logged
        if len(shard) >= self._shard_limit:
            shard.clear()
        shard.add(user)
        record = (test, variant, user, self._clock(), run)
        if self._append(record) is False:
            shard.discard(user)  # dropped: the next evaluation tries again (see log)

    #: An evaluator's ``SeedAPI`` calls an ``expose`` with this attribute True as
    #: ``expose(test, variant, ctx, seen=..., runs=...)``, with the dedup shards and
    #: run tags of the document it served the request from; any other callable as
    #: ``expose(test, variant, ctx)``.
    expose.takes_views = True  # type: ignore[attr-defined]

    def forget(self, test: str) -> None:
        """Start ``test``'s dedup afresh (when the test is deleted or created again):
        :meth:`seen_shards` gives new, empty shards from now on. The old ones are left
        to whoever still holds them, unchanged: a request the earlier document still
        serves (a manager's views change after the engine's swap) marks its user in
        the earlier run's shards, not in the new run's, where that user would never be
        logged."""
        self._seen.pop(test, None)

    def _account(self, test: str, user: Any, size: int) -> None:
        """On the writer thread: ``user``, a first exposure just delivered (it joined
        its dedup shard on the request path) whose id takes ``size`` bytes, more than
        its share (``_long_id``), counts toward its shard's bytes. The shard holds at
        most those long ids plus ``_long_id`` bytes for each other entry: past its
        share of ``dedup_bytes`` it is cleared. A shard cleared meanwhile by its count
        bound (or :meth:`forget`) holds fewer entries than when last seen: its count
        restarts. (Approximate by design, never on the request path: what it may miss
        is ids added and cleared between two batches.)"""
        shards = self._seen.get(test)
        if shards is None:
            return
        try:
            i = hash(user) & (DEDUP_SHARDS - 1)
        except Exception:  # pragma: no cover - delivered ids are exact str or int
            return
        sizes = self._sizes.get(test)
        if sizes is None:
            sizes = self._sizes[test] = [[0, 0] for _ in range(DEDUP_SHARDS)]
        shard, kept = shards[i], sizes[i]
        entries = len(shard)
        if entries < kept[1]:
            kept[0] = 0  # cleared since the last look
        kept[0] += size
        kept[1] = entries
        if kept[0] + entries * self._long_id > self._shard_bytes:
            shard.clear()  # the same set object: the request path's holders stay in sync
            kept[0] = kept[1] = 0

    def _deliver(self, raw: list[tuple[Any, ...]]) -> None:
        # Each record is (test, variant, user, ts), and its run tag fifth when the
        # request path knew the test's run (the SeedAPI appends four items otherwise).
        batch = []
        make = tuple.__new__  # Exposure(...) without the namedtuple's Python __new__
        per_variant: dict[tuple[str, str], int] = {}
        # The dedup's byte bound: a str id's length first (its size is at least 49
        # bytes more), its exact size only when that may pass its share.
        long_chars, long_id, size_of = self._long_id - 49, self._long_id, sys.getsizeof
        # A run's records come after its since, whatever the host's clock says (stepped
        # back since the run began, or behind the host that deleted the earlier run):
        # readers leave out the records of its name stamped up to then (record_cutoffs).
        # Only that run's: a record tagged for another run (an earlier one, queued before
        # this process took the new one) keeps its stamp.
        floors = self.floors
        for record in raw:
            test, variant, user, ts = record[:4]
            run = record[4] if len(record) > 4 else UNTAGGED
            if floors and ts < floors.get(test, ts) and _floored_run(run, floors[test]):
                ts = floors[test]
            if type(user) is not str or len(user) > long_chars:
                size = size_of(user)
                if size > long_id:
                    self._account(test, user, size)
            if type(user) is not str:
                # An int id the SeedAPI logged as it is (see seen_shards): the user is
                # its text. A SeedAPI that joins the id's forms logged it only if its
                # text was not logged, and the int is its one entry; another one's
                # record also adds the text, dropped if that text was logged meanwhile.
                if self._joined:
                    text = user_id_text(user)
                    if text is None:  # an int past sys.get_int_max_str_digits
                        self.sink_errors += 1
                        continue
                else:
                    text = self._first_as_text(test, user)
                    if text is None:
                        continue
                user = text
            try:
                batch.append(make(Exposure, (test, variant, user, ts, run)))
            except Exception:  # pragma: no cover - a tuple of str and float
                self.sink_errors += 1
                continue
            per_variant[test, variant] = per_variant.get((test, variant), 0) + 1
        # On the writer thread, once per batch: the request path never pays for metrics.
        instruments.exposures_written(per_variant)
        failure: Exception | None = None
        failed: list[Any] = []
        for sink in self.sinks:
            write: Any = getattr(sink, "write", None) or sink
            try:
                write(batch)
            except Exception as exc:
                self.sink_errors += 1
                failure = exc
                failed.append(getattr(sink, "path", None) or sink)
        if failure is not None:
            # Lost to a sink (a full disk): counted in the writer's ``lost`` and logged
            # by it, once and then summed up, not a traceback per batch; named by its
            # file (a full disk's OSError names none).
            self._writer.failed(len(batch), failure, ", ".join(map(str, failed)))
        self.written += len(batch)

    def _first_as_text(self, test: str, user: Any) -> str | None:
        """On the writer thread: ``user``'s text, joined to the dedup shards; None when
        that text was logged already (a duplicate) or there is none. (A request logging
        the same user as a str between this test and the add below, a thread switch
        apart, still logs it twice, as a cleared shard does: every report counts
        distinct users, not records.)"""
        text = user_id_text(user)
        if text is None:
            self.sink_errors += 1  # an id without text (its __str__ raised)
            return None
        try:
            shard = self.seen_shards(test)[hash(text) & (DEDUP_SHARDS - 1)]
            if text in shard:
                return None
        except Exception:  # pragma: no cover - an exact str hashes and compares
            return None
        if len(shard) >= self._shard_limit:
            shard.clear()
        shard.add(text)
        size = sys.getsizeof(text)
        if size > self._long_id:
            self._account(test, text, size)
        return text

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every logged exposure reached the sinks; False on timeout
        (``timeout``: a finite number of seconds >= 0, else ValueError)."""
        if not self._writer.flush(timeout):
            return False
        for sink in self.sinks:
            f = getattr(sink, "flush", None)
            if callable(f):
                with contextlib.suppress(Exception):
                    f()
        return True

    def close(self, timeout: float = 5.0) -> None:
        """Write what is pending, stop the writer thread and close sinks that have
        ``close()``; exposures logged afterwards are counted as dropped. ``timeout``: a
        finite number of seconds >= 0, else ValueError (also once closed)."""
        timeout = wait_seconds("timeout", timeout)
        if self._writer.closed:
            return
        self._writer.close(timeout)
        for sink in self.sinks:
            c = getattr(sink, "close", None)
            if callable(c):
                with contextlib.suppress(Exception):
                    c()

    def stats(self) -> dict[str, int]:
        """Counters: ``logged`` (queued), ``written``, ``dropped``, ``sink_errors``."""
        return {
            "logged": self.logged,
            "written": self.written,
            "dropped": self.dropped,
            "sink_errors": self.sink_errors,
        }


_usable_id = bucketable_id  # what the engine buckets by: a str that is text, an int not a bool


def _floored_run(run: Any, floor: float) -> bool:
    """Whether a record tagged ``run`` is of the run whose stamps start at ``floor``
    (just after its ``since``: ``ExposureLogger.floors``): untagged, or tagged that
    ``since``."""
    if run is UNTAGGED:
        return True
    return isinstance(run, float) and math.nextafter(run, math.inf) == floor


def exposure_user(user_context: Any) -> str | None:
    """The user :meth:`ExposureLogger.expose` files an exposure of ``user_context``
    under: its ``user_id``, else (no id the engine buckets by there: None, a float, a
    bool, bytes) its ``targeting_key``, as text; None when neither is usable. An event
    that counts only once its user is exposed must be filed under this same user, or
    it never joins the exposure. Never raises."""
    try:
        user = user_context.get("user_id")
        if not _usable_id(user):
            user = user_context.get("targeting_key")
            if not _usable_id(user):
                return None
    except Exception:  # no mapping, a hostile one
        return None
    return user if type(user) is str else user_id_text(user)


_LOGGERS: weakref.WeakSet[ExposureLogger] = weakref.WeakSet()


def _reset_loggers_after_fork() -> None:
    for logger in list(_LOGGERS):
        logger._after_fork_in_child()


after_fork_in_child(_reset_loggers_after_fork)
