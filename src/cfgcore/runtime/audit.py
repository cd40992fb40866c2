"""The audit log: a tamper-evident, bounded JSON-lines record of every change, with
secrets redacted (:func:`cfgcore.runtime.redaction.redact`).

Every entry carries ``seq`` (one more than the entry before it, across rotations),
``prev`` (the ``hash`` of the entry before it) and ``hash`` (SHA-256 of the entry's
canonical JSON without ``hash``). Editing, removing or reordering an entry breaks the
chain, and :func:`verify` (``cfgcore audit verify``) reports the first place it breaks.

The log is rotated by size (``max_bytes``, ``CFGCORE_AUDIT_MAX_BYTES``, default 10 MiB)
keeping ``backups`` old files (``CFGCORE_AUDIT_BACKUPS``, default 5): ``audit.jsonl.1``
is the newest old file. Settings from the environment that make it forget (no old
file kept, or files under 64 KiB) are logged as warnings whenever a log is opened with
them. The entries an :class:`AuditLog` also keeps in memory are bounded by count
(``keep``) and by size (``keep_bytes``, ``CFGCORE_AUDIT_KEEP_BYTES``, default 8 MiB of
JSON). A new file starts with a ``rotation`` entry whose ``seq`` and
``prev`` continue from the last entry of the file before it, so the chain runs across
files, and whose ``kept`` says how many old files that rotation left (``.1`` to
``.kept``): retention dropping the oldest file is expected, a missing file the last
rotation says it kept is not. Appends and rotation happen under one cross-process lock
(``flock`` on ``<path>.lock``). After each append the writer records the last ``seq`` and
``hash`` in ``<path>.head`` (written by rename), so entries removed from the end are
found too, unless the same hand rewrote that file.

The lock is the writers' alone (mode 0600): whoever can open a lock file can flock it,
even read-only, and hold every writer off. Readers (:func:`verify`,
:func:`open_log_files`) take no lock: they open every file and start again if a rotation
moved one meanwhile. A writer waits for the lock at most ``lock_timeout`` seconds
(``CFGCORE_AUDIT_LOCK_TIMEOUT``, default 5): past it the change goes on, its entries
wait in memory (in order, logged as an error naming the lock file and the pid holding
it) and the next append, :meth:`AuditLog.flush` or the process's exit writes them first;
more than ``MAX_PENDING`` entries or ``MAX_PENDING_BYTES`` of them waiting drops the
oldest (never the newest), and the entry that records how many
makes :func:`verify` fail. :attr:`AuditLog.last_error` says why the last write did not
reach the file (None once one does), and a lock file owned by another user (who can
hold it whatever its mode) is named, with its owner, when a log first takes it.

Without a key the chain detects edits by anyone who does not recompute every later
hash; it is not a signature (someone able to rewrite the whole file can rewrite the
chain too). With an audit key (``CFGCORE_AUDIT_KEY``, comma-separated, or
``CFGCORE_AUDIT_KEY_FILE``, one a line; keys as ``cfgcore secrets keygen`` prints them,
the first signs and all verify) every entry's ``hash`` is an HMAC-SHA256 and the entry
says so (``alg``, ``kid``): keep the key outside the state directory, and someone who
can write the log but not read the key can no longer rewrite it unnoticed. The ``.head``
record is signed too, with the log's file name: a log cut at an entry boundary with a
head rewritten to match, or another log's files put in its place, fail. A writer that
finds the log shorter than (or other than) what its head records first appends a
``tamper`` entry saying so, which :func:`verify` reports from then on: appending after
a cut must not hide it. A writer with the key takes the head's word only when it is
signed with a key of its ring: an unsigned head after a signed entry, or one signed
with a key it does not hold (what a cut rewritten without the key leaves), is
recorded the same way and logged as an error naming the file. :func:`verify` with the
key refuses unsigned entries and head records (no downgrade), a missing ``.head``
record and keys it does not hold.

What verify sees without ``--checkpoint``: a log emptied (truncated to zero bytes) or
cut to any shorter prefix while its ``.head`` record stays, with or without the key;
with the key, a ``.head`` record removed (a signed log always has one, so verify with
the key refuses a log without it, even an empty one). Whoever can write the state
directory can remove the log and its ``.head`` together, and a log that never had
entries looks the same: verify without the key passes it (saying it has no ``.head``
record). A writer that wrote to the log remembers how far it wrote: finding the chain
behind that (a chain's ``seq`` never goes back, rotations continue it) it appends a
``tamper`` entry first, instead of starting a new chain that verify would pass. A new
process cannot know, and that is what the checkpoint is for.

What no file in the state directory can show is a rollback: the log and its head
replaced together by an older copy of both (or cut back to a moment whose head record
was saved). ``cfgcore audit verify --checkpoint FILE`` (``CFGCORE_AUDIT_CHECKPOINT``),
run from somewhere whoever writes the state directory cannot write FILE (another user,
a cron job), records the last entry it verified and fails any later verify of a log
that no longer holds it; a rollback to a state newer than the last verify still needs
an outside record: ship the log off the machine where that matters.

The log's files are opened without following symlinks and only as regular files: a
link or FIFO planted in the state directory is refused (the append is logged and kept
in memory), never written through. Where other users may create files in the state
directory (sticky ``/tmp``, a group-writable directory), a log, ``.head`` record or
lock file another user made there (:func:`cfgcore.runtime.atomicio.foreign_opened`,
judged on the file opened) is not written into, taken at its word or waited on: the
entries wait in memory until it is removed (``last_error`` names it and the fix), a
foreign ``.head`` is replaced by the writer's own, and a checkpoint of another user's
fails :func:`verify`.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import getpass
import hashlib
import hmac
import json
import logging
import os
import re
import socket
import stat
import threading
import time
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, BinaryIO

import msgspec

from cfgcore._numbers import finite_at_least, wait_seconds, whole_at_least
from cfgcore.runtime import atomicio
from cfgcore.runtime.atomicio import (
    FileLock,
    ForeignStateFile,
    LockTimeout,
    foreign_opened,
    foreign_state_file,
    refuse_foreign,
    state_file_fix,
)
from cfgcore.runtime.events import ConfigChangeEvent
from cfgcore.runtime.forks import after_fork_in_child, at_exit
from cfgcore.runtime.redaction import redact, redact_text

__all__ = [
    "AuditKey",
    "AuditLog",
    "VerifyResult",
    "audit_keys",
    "default_actor",
    "entry_hash",
    "log_files",
    "open_log_files",
    "verify",
]

log = logging.getLogger("cfgcore.events")

GENESIS = "0" * 64
# msgspec: an order of magnitude faster than json here, and "sorted" gives the canonical
# form that is hashed. Objects JSON cannot hold are written as their str().
_ENCODER = msgspec.json.Encoder(enc_hook=str)
_ENCODER_SORTED = msgspec.json.Encoder(enc_hook=str, order="sorted")
_DECODER = msgspec.json.Decoder()
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_BACKUPS = 5
# What the entries kept in memory (AuditLog.entries) may weigh together, as JSON
# (CFGCORE_AUDIT_KEEP_BYTES): the count limit alone let 1,000 changes of a 5 MB
# subtree hold 5 GB, file or no file.
DEFAULT_KEEP_BYTES = 8 * 1024 * 1024
# How long a change waits for the writers' lock before its entries wait in memory for
# the next append (CFGCORE_AUDIT_LOCK_TIMEOUT): a writer's turn takes milliseconds.
DEFAULT_LOCK_TIMEOUT = 5.0
# Entries held in memory while the lock is held elsewhere; beyond it the oldest are
# dropped, and the next append records how many (a ``tamper`` entry verify reports).
MAX_PENDING = 10_000
# ... and what they may weigh together, as JSON: the count alone let 10,000 changes of a
# large subtree wait in memory whole.
MAX_PENDING_BYTES = 64 * 1024 * 1024
_TAIL = 1 << 16


def default_actor() -> str:
    """``user@host`` of this process (the actor when a change API is given none, and
    the identity the CLI's access-policy checks use).

    The user is the name of the process's real uid (its passwd entry; ``uid<N>`` without
    one, as in containers with arbitrary uids), never ``$USER``/``$LOGNAME``: anyone can
    set those (``USER=alice cfgcore flags delete x`` claimed alice's roles)."""
    if hasattr(os, "getuid"):
        uid = os.getuid()
        try:
            import pwd

            user = pwd.getpwuid(uid).pw_name
        except (ImportError, KeyError):  # no passwd entry
            user = f"uid{uid}"
    else:  # pragma: no cover - Windows: the logon name
        try:
            user = getpass.getuser()
        except Exception:
            user = "unknown"
    return f"{user}@{socket.gethostname()}"


def _canonical(entry: dict[str, Any]) -> bytes:
    body = {k: v for k, v in entry.items() if k != "hash"}
    return _ENCODER_SORTED.encode(body)


def entry_hash(entry: dict[str, Any], key: bytes | None = None) -> str:
    """SHA-256 (hex) of ``entry``'s canonical JSON, its own ``hash`` field excluded; with
    ``key`` (an :class:`AuditKey`'s ``mac_key``), its HMAC-SHA256 instead."""
    if key is not None:
        return hmac.new(key, _canonical(entry), hashlib.sha256).hexdigest()
    return hashlib.sha256(_canonical(entry)).hexdigest()


ALG = "hmac-sha256"
_MAC_LABEL = b"cfgcore audit chain v1"


@dataclass(frozen=True)
class AuditKey:
    """One audit key: its id and the HMAC key derived from it (never the key itself,
    so a key also used for ``ENC[...]`` values signs with another key than it encrypts)."""

    kid: str
    mac_key: bytes

    def __repr__(self) -> str:
        return f"AuditKey(kid={self.kid!r}, mac_key=***)"


def audit_keys(environ: Mapping[str, str] | None = None) -> tuple[AuditKey, ...]:
    """The audit keys: ``CFGCORE_AUDIT_KEY`` (comma-separated), else the file named by
    ``CFGCORE_AUDIT_KEY_FILE`` (one a line), else none. Keys have the form
    ``cfgcore secrets keygen`` prints; the first signs, all verify. A key that does not
    parse is a :class:`~cfgcore.errors.ConfigError` naming its position, never its text."""
    from cfgcore.runtime.secrets import Keyring

    env = os.environ if environ is None else environ
    inline = env.get("CFGCORE_AUDIT_KEY", "").strip()
    if inline:
        ring = Keyring([k for k in re.split(r"[,\s]+", inline) if k], origin="CFGCORE_AUDIT_KEY")
    elif env.get("CFGCORE_AUDIT_KEY_FILE", "").strip():
        ring = Keyring.from_file(env["CFGCORE_AUDIT_KEY_FILE"].strip())
    else:
        return ()
    return tuple(
        AuditKey(k.kid, hmac.new(k.raw, _MAC_LABEL, hashlib.sha256).digest()) for k in ring.keys
    )


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    try:
        return int(raw or default)
    except ValueError:
        return _env_ignored(name, raw, default)


def _env_seconds(name: str, default: float) -> float:
    raw = os.environ.get(name, "")
    try:
        value = float(raw or default)
    except ValueError:
        return _env_ignored(name, raw, default)
    return value if 0 <= value < float("inf") else _env_ignored(name, raw, default)


def _env_keep_bytes() -> int:
    name = "CFGCORE_AUDIT_KEEP_BYTES"
    value = _env_int(name, DEFAULT_KEEP_BYTES)
    # A negative budget means nothing: said and ignored, as a value that is no number.
    return value if value >= 0 else _env_ignored(name, os.environ[name], DEFAULT_KEEP_BYTES)


def _env_ignored(name: str, raw: str, default: Any) -> Any:
    """A setting that is not a usable number: said (it is a deployment mistake), and the
    default used, so a typo never stops the audit log."""
    log.warning("%s=%r is not a usable number: using the default, %s", name, raw, default)
    return default


# Below this, CFGCORE_AUDIT_MAX_BYTES keeps a few dozen entries a file: said.
SHORT_MAX_BYTES = 64 * 1024


def _warn_short_history(path: str, max_bytes: int, backups: int, env: tuple[bool, bool]) -> None:
    """Environment settings that make the audit log forget (anyone who can set a
    service's environment can set them) are said each time a log is opened with them,
    so a trail deleted by rotation is at least on record. ``env``: whether ``max_bytes``
    and ``backups`` came from the environment (a program's own arguments are not said).
    """
    if env[1] and backups <= 0:
        log.warning(
            "CFGCORE_AUDIT_BACKUPS=%d: audit log %s keeps no old file, so every rotation "
            "deletes its history",
            backups,
            path,
        )
    if env[0] and 0 < max_bytes < SHORT_MAX_BYTES:
        log.warning(
            "CFGCORE_AUDIT_MAX_BYTES=%d: audit log %s rotates every %d bytes (a few entries) "
            "and keeps %d old files: older entries are deleted",
            max_bytes,
            path,
            max_bytes,
            max(backups, 0),
        )


# --------------------------------------------------------------------------- audit log


class AuditLog:
    """Append-only, hash-chained record of configuration changes, as JSON lines.

    Each entry holds ``ts`` (ISO 8601 UTC), ``kind``, ``source``, ``path``, ``old``,
    ``new``, ``version``, ``actor`` and, for errors, ``error``, plus ``seq``, ``prev`` and
    ``hash`` (see the module docstring); values are passed through :func:`redact`.

    The most recent entries are also kept in memory (:meth:`entries`), bounded twice: at
    most ``keep`` entries (default 1000), weighing at most ``keep_bytes`` together
    (argument, else ``CFGCORE_AUDIT_KEEP_BYTES``, else 8 MiB; an environment value that
    is not a whole number of at least 0 is logged and the default used, a negative
    argument is a ValueError). An entry weighs the length of its JSON text without the
    chain fields (the encoding :meth:`append_all` makes anyway; its line in the file
    adds ``seq``, ``prev`` and ``hash``, about 160 bytes). The oldest go first; the
    newest entry is always kept, even alone over the budget (``keep_bytes=0`` keeps just
    that one). Only the memory copy is bounded: every entry is written to the file and
    chained as before.

    The file's directory is created for the first entry, unless ``create_dir=False``
    (a directory someone else owns, such as a deployment's flags directory, which a
    deploy may remove and create again): while it does not exist, entries wait in
    memory (:meth:`pending`, ``last_error`` says why, logged once) and are written by
    the first append or :meth:`flush` that finds it again.

    >>> log = AuditLog(keep=100, keep_bytes=4096)  # no file: memory only
    >>> for n in (1500, 1500, 2000, 5000):
    ...     _ = log.append({"kind": "update", "path": "a", "new": "x" * n})
    ...     print([len(e["new"]) for e in log.entries()])
    [1500]
    [1500, 1500]
    [1500, 2000]
    [5000]
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        keep: int = 1000,
        keep_bytes: int | None = None,
        max_bytes: int | None = None,
        backups: int | None = None,
        keys: Iterable[AuditKey] | None = None,
        lock_timeout: float | None = None,
        create_dir: bool = True,
    ) -> None:
        # Numbers by their value, checked before anything is opened (cfgcore._numbers):
        # True was one entry kept or a one-byte file, "5" a TypeError at the first
        # rotation, NaN a lock never waited for.
        keep = whole_at_least("keep", keep, 0, "entries")
        if keep_bytes is not None:
            keep_bytes = whole_at_least("keep_bytes", keep_bytes, 0, "bytes")
        if max_bytes is not None:
            max_bytes = whole_at_least("max_bytes", max_bytes, 0, "bytes")  # 0: never rotated
        if backups is not None:
            backups = whole_at_least("backups", backups, 0, "files")
        if lock_timeout is not None:
            lock_timeout = finite_at_least("lock_timeout", lock_timeout, 0, "seconds")
        # False: the log's directory belongs to someone else (a deployment's flags
        # directory); one that does not exist is not created just to write an entry.
        self.create_dir = create_dir
        # A bad CFGCORE_AUDIT_KEY is an error now, not unsigned entries found later.
        ring = tuple(keys) if keys is not None else audit_keys()
        self._sign: AuditKey | None = ring[0] if ring else None
        self._ring = ring  # the keys a .head record found may be signed with
        # Resolved now: a later chdir (daemons do one) must not move the log.
        self.path = os.path.abspath(path) if path is not None else None
        self.max_bytes = (
            max_bytes if max_bytes is not None
            else _env_int("CFGCORE_AUDIT_MAX_BYTES", DEFAULT_MAX_BYTES)
        )  # fmt: skip
        self.backups = (
            backups if backups is not None else _env_int("CFGCORE_AUDIT_BACKUPS", DEFAULT_BACKUPS)
        )
        if self.path is not None:
            env = (max_bytes is None, backups is None)
            _warn_short_history(self.path, self.max_bytes, self.backups, env)
        self.lock_timeout = (
            lock_timeout if lock_timeout is not None
            else _env_seconds("CFGCORE_AUDIT_LOCK_TIMEOUT", DEFAULT_LOCK_TIMEOUT)
        )  # fmt: skip
        self.keep_bytes = keep_bytes if keep_bytes is not None else _env_keep_bytes()
        # (size, entry), oldest first; _recent_bytes is the sum of the sizes.
        self._recent: collections.deque[tuple[int, dict[str, Any]]] = collections.deque(maxlen=keep)
        self._recent_bytes = 0
        # Entries not in the file yet (the writers' lock was held elsewhere), oldest
        # first, and how many were dropped past MAX_PENDING.
        self._pending: list[dict[str, Any]] = []
        self._pending_sizes: list[int] = []  # their JSON lengths (MAX_PENDING_BYTES)
        self._dropped = 0
        # Why the last write did not reach the file (None: it did): the lock held
        # elsewhere (naming the holder's pid and, when it is not ours, the lock file's
        # owner), or the file's error. For health checks, beside pending().
        self.last_error: str | None = None
        self._owner_said = False
        self._lock = threading.Lock()
        self._head = (GENESIS, 0)  # in-memory chain when there is no file
        # (inode, size, hash, seq, last line) of our last append: see _append_locked
        self._tail: tuple[Any, ...] = (None, -1, GENESIS, 0, b"")
        _AUDIT_LOGS.add(self)

    def record(self, event: ConfigChangeEvent) -> dict[str, Any]:
        """Append one event; returns the (redacted) entry. Never raises on I/O errors."""
        return self.append_all([_entry(event)])[0]

    def record_all(self, events: Iterable[ConfigChangeEvent]) -> None:
        """:meth:`record` each event (one lock and one write for the batch)."""
        entries = [_entry(event) for event in events]
        if entries:
            self.append_all(entries)

    def record_denied(self, actor: str, action: str, target: str, reason: str) -> dict[str, Any]:
        """Record a change refused by the access policy."""
        entry = {
            "ts": datetime.now(tz=timezone.utc).isoformat(),
            "kind": "denied",
            "source": action,
            "path": target,
            "actor": actor,
            "error": redact_text(reason),
        }
        return self.append_all([entry])[0]

    def append(self, entry: dict[str, Any]) -> dict[str, Any]:
        """Chain and append ``entry`` (already redacted); returns it with seq/prev/hash."""
        return self.append_all([entry])[0]

    def append_all(self, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Chain and append ``entries`` in order; returns them with seq/prev/hash."""
        # Hashed as they will read back (tuples as lists, keys as strings, objects as str).
        # The chain fields are the log's own: a caller's seq/prev/hash never survive
        # (kept, they forged the in-memory chain of a log without a file).
        out: list[dict[str, Any]] = []
        sizes: list[int] = []
        for e in entries:
            raw = _encode_text_safe(_unchained(e))
            out.append(_DECODER.decode(raw))
            sizes.append(len(raw))  # the memory copy's weight, from the one encoding
        with self._lock:
            if self.path is not None:
                self._write_out(out, sizes=sizes)
            for entry, size in zip(out, sizes, strict=True):
                if "hash" not in entry:  # no file, or it failed: chain in memory
                    self._chain(entry, *self._head)
                self._head = (entry["hash"], entry["seq"])
                self._remember(entry, size)
        return out

    def _remember(self, entry: dict[str, Any], size: int) -> None:
        """Keep ``entry`` in memory for :meth:`entries`: the oldest go while more than
        ``keep`` are kept or they weigh more than ``keep_bytes``, never the newest."""
        recent = self._recent
        if recent.maxlen == 0:
            return
        if len(recent) == recent.maxlen:
            self._recent_bytes -= recent.popleft()[0]
        recent.append((size, entry))
        self._recent_bytes += size
        while self._recent_bytes > self.keep_bytes and len(recent) > 1:
            self._recent_bytes -= recent.popleft()[0]

    def pending(self) -> int:
        """How many entries wait in memory for the writers' lock (see :meth:`flush`)."""
        with self._lock:
            return len(self._pending)

    def flush(self, timeout: float | None = None) -> bool:
        """Write the entries waiting for the writers' lock (``timeout``: how long to wait
        for it, default ``lock_timeout``; as it, a finite number of seconds >= 0, else
        ValueError); True when none is left waiting."""
        wait = self.lock_timeout if timeout is None else wait_seconds("timeout", timeout)
        with self._lock:
            if self.path is not None and (self._pending or self._dropped):
                self._write_out([], wait)
            return not self._pending

    def _write_out(
        self, out: list[dict[str, Any]], wait: float | None = None, sizes: Sequence[int] = ()
    ) -> None:
        """Write the waiting entries, then ``out``, under the writers' lock (held by
        ``self._lock``). The lock held elsewhere past the timeout (anyone who can open the
        lock file can flock it): everything stays waiting, in order, for the next append
        (or :meth:`flush`, or the process's exit), and the change goes on unblocked.
        ``sizes``: the JSON length of each of ``out``, its weight while it waits."""
        assert self.path is not None
        batch = self._pending + out
        if self._dropped:
            batch.insert(0, self._dropped_note())
        if wait is None:
            # Already found held for a whole timeout: the next changes do not each wait
            # that long again while it is (a short wait still lets a writer's turn end).
            wait = min(self.lock_timeout, 0.05) if self._pending else self.lock_timeout
        try:
            with self._file_lock(wait):
                self._append_locked(batch)
        except _NoDirectory as exc:
            waiting = self._keep_waiting(out, sizes)
            said = self.last_error is not None and self.last_error.startswith(str(exc))
            self.last_error = (
                f"{exc}; {len(waiting)} entr{'y' if len(waiting) == 1 else 'ies'} waiting in "
                "memory until it exists again"
                + (f", {self._dropped} dropped" if self._dropped else "")
            )
            if not said:  # once per absence, not once per entry
                log.warning("%s", self.last_error)
            return
        except ForeignStateFile as exc:
            # The log, or its lock file, another user may have put there: nothing is
            # written into (or waited on) a file of theirs. The entries wait, as for a
            # missing directory, until the file is removed; said once per refusal.
            waiting = self._keep_waiting(out, sizes)
            refusal = f"cannot append to audit log {self.path}: {exc.filename}: {exc.strerror}"
            said = self.last_error is not None and self.last_error.startswith(refusal)
            self.last_error = (
                f"{refusal}; {len(waiting)} entr{'y' if len(waiting) == 1 else 'ies'} waiting "
                "in memory until it is removed"
                + (f", {self._dropped} dropped" if self._dropped else "")
            )
            if not said:
                log.error("%s", self.last_error)
            return
        except LockTimeout as exc:
            waiting = self._keep_waiting(out, sizes)
            owner = _foreign_owner(exc.path)
            self.last_error = (
                f"cannot append to audit log {self.path}: {exc.path}: {exc.strerror}"
                + (f"; {owner}" if owner else "")
                + f"; {len(waiting)} entr{'y' if len(waiting) == 1 else 'ies'} waiting in "
                f"memory (at most {MAX_PENDING} or {MAX_PENDING_BYTES >> 20} MiB, older ones "
                "dropped)" + (f", {self._dropped} dropped" if self._dropped else "")
            )
            log.error(
                "%s (whoever can open that file can hold it: keep it mode 0600, owned by "
                "the writers' user)", self.last_error,
            )  # fmt: skip
            return
        except OSError as exc:
            # One line (an unwritable path is an operator's mistake, not a bug: no
            # traceback), every time: each failure loses these entries' file copy.
            owner = _foreign_owner(self.path + ".lock")  # one we may not even open
            # The file the error is about when it is another (a rotated file's name
            # taken by a directory: "Is a directory" named the log, a regular file).
            self.last_error = (
                f"cannot append to audit log {self.path} ({_os_reason(exc, self.path)}"
                + (f"; {owner}" if owner else "")
                + f"); {len(batch)} entr{'y' if len(batch) == 1 else 'ies'} kept in memory only"
            )
            log.error("%s", self.last_error)
        else:
            self.last_error = None
            if batch:  # the waiting entries now carry the file's chain
                self._head = (batch[-1]["hash"], batch[-1]["seq"])
        self._pending, self._pending_sizes, self._dropped = [], [], 0

    def _keep_waiting(self, out: list[dict[str, Any]], sizes: Sequence[int]) -> list[Any]:
        """Keep the waiting entries and ``out`` waiting (chained in memory by append_all
        until written); the oldest go past MAX_PENDING entries or MAX_PENDING_BYTES,
        never the newest. Returns what waits."""
        waiting = self._pending + out
        weights = self._pending_sizes + list(sizes)
        cut = max(0, len(waiting) - MAX_PENDING)
        total = sum(weights[cut:])
        while total > MAX_PENDING_BYTES and cut < len(waiting) - 1:
            total -= weights[cut]
            cut += 1
        if cut:
            self._dropped += cut
            waiting, weights = waiting[cut:], weights[cut:]
        self._pending, self._pending_sizes = waiting, weights
        return waiting

    def _dropped_note(self) -> dict[str, Any]:
        assert self.path is not None
        return {
            "ts": datetime.now(tz=timezone.utc).isoformat(),
            "kind": "tamper",
            "source": "audit",
            "path": os.path.basename(self.path),
            "error": f"{self._dropped} entries were never written: the writers' lock "
            f"{self.path}.lock was held by another process while more than {MAX_PENDING} "
            f"entries or {MAX_PENDING_BYTES >> 20} MiB of them waited",
        }

    def _chain(self, entry: dict[str, Any], prev: str, seq: int) -> None:
        entry["seq"] = seq + 1
        entry["prev"] = prev
        sign = self._sign
        if sign is not None:
            entry["alg"], entry["kid"] = ALG, sign.kid
        entry["hash"] = entry_hash(entry, sign.mac_key if sign is not None else None)

    def _append_locked(self, entries: list[dict[str, Any]]) -> None:
        assert self.path is not None
        # Another user's file in the log's place (where others may create files) is not
        # read for the chain, nor appended to: ForeignStateFile before anything is done.
        _refuse_foreign_log(self.path)
        try:
            st = os.stat(self.path)
            size, ino = st.st_size, st.st_ino
        except FileNotFoundError:
            size, ino = 0, None
        cached = self._tail
        buffer: list[bytes] = []
        pending = 0
        if cached[:2] == (ino, size) and _ends_with(self.path, size, cached[4]):
            # Nobody wrote since our last append: the link is known without reading the
            # file back. (The inode and size alone do not tell: once other processes
            # rotated the log, a new file can get our old file's freed inode and reach
            # its size; continuing the chain from our cached link then wrote entries
            # numbered below the ones before them. Our last line must still end it.)
            prev, seq = cached[2:4]
        else:
            last: list[dict[str, Any]] = []
            prev, seq = _last_link(self.path, last)
            if not _ends_a_line(self.path, size):
                # A writer died halfway through its line (every writer writes whole
                # lines under the lock): end that line, or ours would be glued onto it
                # and lost too. The cut line stays, for verify to report.
                buffer.append(b"\n")
                pending = 1
            # Entries cut from the end (or the log replaced) since the last writer: our
            # entries would continue the chain from the cut and the new head would hide
            # the removal. The finding goes into the chain first, for verify to report.
            signed_last = bool(last) and last[0].get("alg") is not None
            found = _head_disagrees(self.path, size, seq, prev, self._sign, self._ring, signed_last)
            if not found and seq < cached[3]:
                # The chain went back below what this process wrote to it, and the .head
                # record was removed with the entries (or rewritten to match, without a
                # key): a chain's seq never goes back (a rotation continues it), so this
                # is a cut, not a new log, and restarting the chain would hide it.
                found = (f"the log ends at seq {seq}, but this process wrote entries up to "
                         f"seq {cached[3]} to it: entries were removed"
                         f"{' (the log emptied)' if seq == 0 else ' from the end'}, with its "
                         f"{HEAD_SUFFIX} record")  # fmt: skip
            if self._sign is None:
                _warn_unsigned_after_signed(self.path)
            if found:
                note = {
                    "ts": datetime.now(tz=timezone.utc).isoformat(),
                    "kind": "tamper",
                    "source": "audit",
                    "path": os.path.basename(self.path),
                    "error": found,
                }
                self._chain(note, prev, seq)
                line = _line(note)
                buffer.append(line)
                pending += len(line)
                prev, seq = note["hash"], note["seq"]
                log.error("audit log %s: %s; recorded as entry seq %d", self.path, found, seq)
        for entry in entries:
            self._chain(entry, prev, seq)
            line = _line(entry)
            if (
                self.max_bytes > 0
                and size + pending > 0
                and (size + pending + len(line) > self.max_bytes)
            ):
                if buffer:
                    _write(self.path, b"".join(buffer))
                    buffer, size, pending = [], size + pending, 0
                prev, seq = self._rotate_locked(prev, seq)
                size = os.path.getsize(self.path)
                self._chain(entry, prev, seq)
                line = _line(entry)
            buffer.append(line)
            pending += len(line)
            prev, seq = entry["hash"], entry["seq"]
        # One write on an O_APPEND file: other processes' entries never land inside it.
        _write(self.path, b"".join(buffer))
        st = os.stat(self.path)
        self._tail = (st.st_ino, st.st_size, prev, seq, buffer[-1] if buffer else b"")
        try:
            _write_head(self.path, seq, prev, self._sign)
        except OSError as exc:  # the entries are written; only the tail check is weaker
            # (What failed, and why: the temporary file's name or the rename's target.)
            log.warning("cannot record the audit log head in %s: %s",
                        self.path + HEAD_SUFFIX, _os_reason(exc))  # fmt: skip

    def _rotate_locked(self, prev: str, seq: int) -> tuple[str, int]:
        assert self.path is not None
        keep = max(self.backups, 0)
        if keep == 0:
            os.unlink(self.path)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"{self.path}.{keep}")
            for i in range(keep - 1, 0, -1):
                with contextlib.suppress(FileNotFoundError):
                    os.replace(f"{self.path}.{i}", f"{self.path}.{i + 1}")
            os.replace(self.path, f"{self.path}.1")
        header: dict[str, Any] = {
            "ts": datetime.now(tz=timezone.utc).isoformat(),
            "kind": "rotation",
            "source": "audit",
            "path": os.path.basename(self.path) + ".1" if keep else "",
            # The old files this rotation left, .1 to .kept: verify expects every one.
            "kept": _kept_files(self.path, keep),
        }
        self._chain(header, prev, seq)
        _write(self.path, _line(header))
        return header["hash"], header["seq"]

    @contextlib.contextmanager
    def _file_lock(self, timeout: float | None = None) -> Iterator[None]:
        assert self.path is not None
        directory = os.path.dirname(self.path)
        if self.create_dir:
            # A state directory nothing else has created yet (a Redis store writes no
            # file there): the first entry creates it rather than being lost.
            os.makedirs(directory, exist_ok=True)
        elif not os.path.isdir(directory):
            # Someone else's (a deploy replacing it: "rm -rf dir && mkdir dir" failed on
            # the mkdir once an entry had made it again): the entries wait instead.
            raise _NoDirectory(directory, self.path)
        if not self._owner_said:
            # A lock file someone else created (before the service's first write, in a
            # state directory they can write): its owner can open it and hold every
            # writer off whatever its mode. Said once, before it is ever held.
            self._owner_said = True
            owner = _foreign_owner(self.path + ".lock")
            if owner:
                log.error(
                    "audit log %s: %s: whoever owns it can hold every writer off; remove it "
                    "while no writer runs (the next one creates it as its own)",
                    self.path, owner,
                )  # fmt: skip
        # Writers only (readers take none: verify, open_log_files), so 0600: whoever can
        # open it can flock it and hold every writer off; one left 0640 by an older
        # version is narrowed. Bounded: a change never hangs on someone else's lock.
        with FileLock(self.path + ".lock", mode=0o600, restrict=True, timeout=timeout):
            yield

    def entries(self) -> list[dict[str, Any]]:
        """The most recent entries kept in memory (at most ``keep``, weighing at most
        ``keep_bytes`` unless the newest alone does), oldest first."""
        with self._lock:
            return [entry for _, entry in self._recent]

    @staticmethod
    def read(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
        """Read every entry of an audit log file, a line at a time. A line that is no
        JSON (cut short by a crash, edited) or longer than any entry cfgcore writes is a
        ValueError naming the file and line (json's own message counted lines within
        the one line it was given: "line 1" wherever it was)."""
        name = os.fspath(path)
        fh = _File(name, _open_regular(name, os.O_RDONLY, follow=True))
        out: list[dict[str, Any]] = []
        with contextlib.closing(fh):
            # "\n" only: an entry may hold U+2028 or a form feed, which splitlines() splits on.
            for n, _end, raw, problem in fh.lines():
                if raw is None:
                    raise ValueError(f"{name}:{n}: {problem}")
                if not raw.strip():
                    continue
                try:
                    out.append(json.loads(raw))
                except (ValueError, RecursionError) as exc:  # (not UTF-8 is a ValueError)
                    why = problem or f"not JSON ({getattr(exc, 'msg', None) or exc})"
                    raise ValueError(f"{name}:{n}: {why}") from None
        return out


_CHAIN_FIELDS = ("seq", "prev", "hash", "alg", "kid")


def _encode_text_safe(entry: dict[str, Any]) -> bytes:
    """``entry`` as JSON. Text that is not valid Unicode (a file name of non-UTF-8 bytes,
    as the OS hands it to Python, quoted in an error) cannot be written as UTF-8: such
    strings are written with the bad code points escaped (``\\udcff``), so the change
    or the failure is still recorded, and the caller sees its own error, not this one."""
    try:
        return _ENCODER.encode(entry)
    except UnicodeEncodeError:
        return _ENCODER.encode(_escape_surrogates(entry))


def _escape_surrogates(value: Any, depth: int = 0) -> Any:
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if depth > 200:  # entries are shallow; past this, text stands for the rest
        return "<nested too deeply>"
    if isinstance(value, dict):
        return {
            _escape_surrogates(k, depth + 1): _escape_surrogates(v, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_escape_surrogates(v, depth + 1) for v in value]
    return value


def _unchained(entry: dict[str, Any]) -> dict[str, Any]:
    if any(k in entry for k in _CHAIN_FIELDS):
        return {k: v for k, v in entry.items() if k not in _CHAIN_FIELDS}
    return entry


def _entry(event: ConfigChangeEvent) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "ts": datetime.fromtimestamp(event.timestamp, tz=timezone.utc).isoformat(),
        "kind": event.kind,
        "source": event.source,
        "path": event.config_path,
        "old": redact(event.config_path, event.old_value),
        "new": redact(event.config_path, event.new_value),
        "version": event.version,
    }
    if event.actor is not None:
        entry["actor"] = event.actor
    if event.environment is not None:
        entry["environment"] = event.environment
    if event.error is not None:
        entry["error"] = redact_text(str(event.error))
    if event.store_version is not None:
        entry["store_version"] = event.store_version
    if event.writer:
        entry["writer"] = {k: v for k, v in event.writer.items() if k != "id"}
    if event.warnings:
        entry["warnings"] = [redact_text(str(w)) for w in event.warnings]
    return entry


def _foreign_owner(lock: str) -> str:
    """``"<lock> is owned by uid N (name)"`` when the lock file is not this process's
    user's (``""``: it is, or it cannot be told)."""
    if not hasattr(os, "geteuid"):
        return ""
    try:
        uid = os.lstat(lock).st_uid
    except OSError:
        return ""
    if uid == os.geteuid():
        return ""
    try:
        import pwd

        name = f" ({pwd.getpwuid(uid).pw_name})"
    except (ImportError, KeyError):
        name = ""
    return f"{lock} is owned by uid {uid}{name}, not by this process's user"


def _line(entry: dict[str, Any]) -> bytes:
    return _ENCODER.encode(entry) + b"\n"


# The log's files are cfgcore's own: a symlink planted in their place is not followed
# (appending through it, or truncating the head's temporary file, wrote into whatever
# it named), and a FIFO or device is refused instead of blocking the writers' lock.
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_NOCTTY = getattr(os, "O_NOCTTY", 0)  # a terminal named by a link never becomes ours
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_BINARY = getattr(os, "O_BINARY", 0)


def _open_regular(path: str, flags: int, *, follow: bool = False) -> int:
    """``os.open`` that never blocks on a FIFO, refuses a symlink (unless ``follow``)
    and anything but a regular file (OSError)."""
    flags |= _NONBLOCK | _NOCTTY | _CLOEXEC | _BINARY | (0 if follow else _NOFOLLOW)
    fd = os.open(path, flags, 0o640)
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise OSError(errno.EISDIR, os.strerror(errno.EISDIR))
        if not stat.S_ISREG(mode):
            raise OSError(errno.EINVAL, "not a regular file (a FIFO or a device)")
    except BaseException:
        os.close(fd)
        raise
    return fd


def _read_all(path: str, *, limit: int = -1) -> bytes:
    """The bytes of the regular file ``path`` (symlinks followed: reading is harmless),
    at most ``limit``; OSError for a FIFO, a device or a directory."""
    fd = _open_regular(path, os.O_RDONLY, follow=True)
    with os.fdopen(fd, "rb") as fh:
        return fh.read(limit)


def _ends_with(path: str, size: int, tail: bytes) -> bool:
    """Whether the file ``path``, ``size`` bytes long, ends with ``tail`` (non-empty)."""
    if not tail or len(tail) > size:
        return False
    try:
        fd = _open_regular(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        return os.pread(fd, len(tail), size - len(tail)) == tail
    except OSError:
        return False
    finally:
        os.close(fd)


def _write(path: str, line: bytes) -> None:
    # One write on an O_APPEND file: a reader never sees two entries interleaved.
    fd = _open_regular(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        refuse_foreign(path, fd)  # (the file opened: one put in its place meanwhile too)
        start = os.fstat(fd).st_size
        try:
            _write_all(fd, line)
        except OSError:
            # A full disk (or a file size limit) wrote part of the lines: cut the file
            # back to whole entries (we hold the writers' lock, nobody else appended),
            # so the chain in the file stays intact and the next append continues it.
            with contextlib.suppress(OSError):
                os.ftruncate(fd, start)
            raise
    finally:
        os.close(fd)


def _refuse_foreign_log(path: str) -> None:
    """:class:`ForeignStateFile` when the log at ``path`` (a symlink there included) is
    a file another local user may have put there (:func:`atomicio.foreign_opened`)."""
    try:
        fd = _open_regular(path, os.O_RDONLY)
    except OSError as exc:
        # A symlink is never written through (the append says so): one of another
        # user's is named as theirs. Missing: created; anything else, the append says.
        why = foreign_state_file(path) if exc.errno in (errno.ELOOP, errno.EMLINK) else ""
        if why:
            raise ForeignStateFile(path, why, state_file_fix(why)) from None
        return
    try:
        refuse_foreign(path, fd)
    finally:
        os.close(fd)


def _read_head(path: str, *, say: bool = True) -> bytes:
    """The bytes of the ``.head`` record of the log ``path`` (OSError as reading it
    does). One another local user may have put there (:func:`atomicio.foreign_opened`)
    is not this log's record: FileNotFoundError, as if there were none (logged, naming
    it); the next append replaces it by this writer's."""
    head = path + HEAD_SUFFIX
    fd = _open_regular(head, os.O_RDONLY, follow=True)
    try:
        why = foreign_opened(head, fd)
        if why and say:
            log.error("audit log %s: its %s record %s is not taken at its word: %s, so "
                      "another user may have put it there (%s)",
                      path, HEAD_SUFFIX, head, why, state_file_fix(why))  # fmt: skip
        if why:
            raise FileNotFoundError(errno.ENOENT, "another user's: not this log's record", head)
        with os.fdopen(os.dup(fd), "rb") as fh:
            return fh.read(4096)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    """Write every byte of ``data`` or raise OSError: a regular file takes a short
    write when the disk fills up, and only the next call says so (ENOSPC)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        view = view[written:]


def _os_reason(exc: OSError, known: str | None = None) -> str:
    """An OSError as one line: its reason and the file names it carries (but ``known``,
    the name the message gives already)."""
    names = [n for n in (exc.filename, exc.filename2) if n is not None and n != known]
    reason = exc.strerror or str(exc)
    return f"{reason} ({' -> '.join(map(str, names))})" if names else reason


def _ends_a_line(path: str, size: int) -> bool:
    """Whether the ``size`` bytes of ``path`` are empty or end with a newline."""
    if size <= 0:
        return True
    try:
        with os.fdopen(_open_regular(path, os.O_RDONLY), "rb") as fh:
            fh.seek(size - 1)
            return fh.read(1) in (b"\n", b"")
    except OSError:
        return True


HEAD_SUFFIX = ".head"


def _kept_files(path: str, keep: int) -> int:
    """The highest ``n <= keep`` with a ``<path>.<n>`` (0: none)."""
    return max((n for n in range(1, keep + 1) if os.path.exists(f"{path}.{n}")), default=0)


_HEAD_LABEL = b"cfgcore audit head v1\x00"


def _head_record(path: str, seq: int, hash_: str, sign: AuditKey | None) -> dict[str, Any]:
    """The ``.head`` record of the last link: ``seq``, ``hash``, when (``ts``) and of
    which log (``log``, the file's name); with an audit key, signed (``alg``, ``kid``,
    ``mac``): without the key nobody can write one for an entry of their choosing (a
    log cut at an entry boundary needs a head record saying it ends there)."""
    record: dict[str, Any] = {
        "seq": seq,
        "hash": hash_,
        "ts": datetime.now(tz=timezone.utc).isoformat(),
        "log": os.path.basename(path),
    }
    if sign is not None:
        record["alg"], record["kid"] = ALG, sign.kid
        record["mac"] = _record_mac(record, sign.mac_key)
    return record


def _record_mac(record: dict[str, Any], key: bytes) -> str:
    body = {k: v for k, v in record.items() if k != "mac"}
    return hmac.new(key, _HEAD_LABEL + _ENCODER_SORTED.encode(body), hashlib.sha256).hexdigest()


def _signature_problem(record: dict[str, Any], ring: tuple[AuditKey, ...], what: str) -> str:
    """Why the signed record ``record`` (a head or a checkpoint) does not check against
    ``ring`` (``""``: it does). With a ring, an unsigned record is refused (no downgrade)."""
    if not ring:
        return ""
    alg, kid, mac = record.get("alg"), record.get("kid"), record.get("mac")
    if alg is None and mac is None:
        return (f"{what} is not signed with the audit key (rewritten by someone without "
                "the key, or written by a writer without it)")  # fmt: skip
    if alg != ALG or not isinstance(kid, str) or not isinstance(mac, str):
        return f"{what} was edited (alg {alg!r:.40}, key id {kid!r:.40})"
    macs = [k.mac_key for k in ring if k.kid == kid]
    if not macs:
        from cfgcore.runtime.secrets import safe_key_id

        return (f"{what} is signed with audit key {safe_key_id(kid) or '?'!r}, which the "
                "audit key ring does not hold")  # fmt: skip
    try:
        good = any(hmac.compare_digest(_record_mac(record, k), mac) for k in macs)
    except (TypeError, OverflowError, RecursionError):
        good = False
    return "" if good else f"{what} was edited (its signature does not match)"


def _load_record(raw: bytes) -> Any:
    """A ``.head`` record or a checkpoint file, decoded; ValueError for one that is no
    JSON, nested too deeply included (``[[[[...``: 4 KiB of it raised RecursionError out of
    every change that wrote an audit entry, and out of ``cfgcore audit verify``)."""
    try:
        return json.loads(raw)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def _head_disagrees(
    path: str,
    size: int,
    seq: int,
    hash_: str,
    sign: AuditKey | None,
    ring: tuple[AuditKey, ...] = (),
    signed_last: bool = True,
) -> str:
    """Why the log ``path`` (``size`` bytes, last link ``seq``/``hash_``, ``signed_last``:
    that entry is signed) is not the one its ``.head`` record says was written (``""``:
    it is, or that cannot be told). A writer with the audit key (``sign``, ``ring`` all
    it verifies with) accepts only a head signed with a key of its ring: an unsigned one
    after a signed entry, or one signed with a key it does not hold, is what someone who
    cut the log's end and rewrote the head without the key leaves (continuing the chain
    from there, and signing the next head, would hide the cut)."""
    try:
        raw = _read_head(path)
    except FileNotFoundError:
        if sign is not None and seq > 0:
            return f"its {HEAD_SUFFIX} record (which every signed log has) was removed"
        return ""
    except OSError:
        return ""  # verify says why it cannot be read
    try:
        head = _load_record(raw)
        seq_h, hash_h = head["seq"], head["hash"]
        if type(seq_h) is not int or seq_h < 1 or not isinstance(hash_h, str):
            raise ValueError
    except (ValueError, TypeError, KeyError):
        return f"its {HEAD_SUFFIX} record is not a record of the last entry written (edited)"
    if sign is not None:
        unsigned = head.get("alg") is None and head.get("mac") is None
        if unsigned and signed_last:
            return (f"its {HEAD_SUFFIX} record is not signed, but the log's last entry (seq "
                    f"{seq}) is: rewritten by someone without the audit key, so entries "
                    "removed from the end cannot be ruled out")  # fmt: skip
        # Unsigned after unsigned entries: a log the key was just set for (verify
        # already refuses its unsigned entries).
        why = (
            ""
            if unsigned
            else _signature_problem(head, ring or (sign,), f"its {HEAD_SUFFIX} record")
        )
        if why:
            return f"{why}: entries removed from the end cannot be ruled out"
    if head.get("log", os.path.basename(path)) != os.path.basename(path):
        return f"its {HEAD_SUFFIX} record is another log's: the log was replaced"
    if seq == 0 and size > 0:
        return ""  # no whole entry in the tail (one larger than it): nothing to compare
    if seq_h > seq:
        return (f"the log ended at seq {seq}, but its {HEAD_SUFFIX} record says seq {seq_h} "
                "was written last: entries were removed from the end (or the log was "
                "replaced by an older copy)")  # fmt: skip
    if seq_h == seq and hash_h != hash_:
        return (f"its entry seq {seq} is not the one written (its {HEAD_SUFFIX} record "
                "holds another hash): replaced")  # fmt: skip
    return ""


def _warn_unsigned_after_signed(path: str) -> None:
    """A writer without an audit key appending to a log whose last writer signed it:
    the key was dropped from the environment (by anyone who can set it), and every
    entry from now on can be rewritten unnoticed by a verify without the key. Said,
    once: the head this append writes is unsigned."""
    try:
        head = _load_record(_read_head(path, say=False))
    except (OSError, ValueError):
        return
    if isinstance(head, dict) and head.get("kid") is not None:
        from cfgcore.runtime.secrets import safe_key_id

        log.error(
            "audit log %s is signed (key %s) but no audit key is set: entries written "
            "from now on are unsigned, and `cfgcore audit verify` with the key fails on "
            "them (set CFGCORE_AUDIT_KEY or CFGCORE_AUDIT_KEY_FILE)",
            path,
            safe_key_id(str(head["kid"])) or "?",
        )


def _write_head(path: str, seq: int, hash_: str, sign: AuditKey | None = None) -> None:
    """Record the last link written in ``<path>.head`` (under the file lock; by rename,
    so a reader sees the old or the new record, never half of one)."""
    # A fresh file (O_EXCL, never through a symlink): truncating whatever the name was
    # would overwrite the file a planted link points at. And a name of its own: with one
    # fixed name, a directory planted there (which unlink cannot remove) made every
    # head write fail, so the head stayed at that moment and entries appended after it
    # could be cut from the end unnoticed, by verify and by the next writer.
    tmp = f"{path}{HEAD_SUFFIX}.{os.getpid()}-{os.urandom(6).hex()}.tmp"
    record = _ENCODER.encode(_head_record(path, seq, hash_, sign)) + b"\n"
    native = getattr(atomicio, "_native", None)
    if native is not None and "\x00" not in path:
        # The same steps in one C call that releases the GIL once: made from Python,
        # the create and the rename were hand-overs a CPU-bound thread of the process
        # could stretch to a switch interval each, on every audited change.
        step, err = native.write_new(os.fsencode(tmp), os.fsencode(path + HEAD_SUFFIX),
                                     record, 0o640)  # fmt: skip
        if step == native.OK:
            return
        if step != native.CREATE:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        if step == native.RENAME:
            raise OSError(err, os.strerror(err), tmp, None, path + HEAD_SUFFIX)
        if step == native.CREATE:
            raise OSError(err, os.strerror(err), tmp)
        raise OSError(err, os.strerror(err))  # (the write, or the close)
    fd = _open_regular(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    try:
        try:
            _write_all(fd, record)
        except BaseException:
            with contextlib.suppress(OSError):
                os.close(fd)
            raise
        # A close can fail too (a network file system reports the write's error there):
        # the temp file is removed then as well, as the compiled steps do.
        os.close(fd)
        os.replace(tmp, path + HEAD_SUFFIX)
    except BaseException:
        # Half a record in place of the head would read as tampering: keep the old one.
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _last_link(path: str, found: list[dict[str, Any]] | None = None) -> tuple[str, int]:
    """``(hash, seq)`` of the last complete entry of ``path`` (GENESIS, 0 if none).

    Read back from the end in growing steps: an entry longer than the first step (a
    large configuration value) is found whole, as the next writer must continue the
    chain from it (read from the last 64 KiB alone, it was not found, and the next
    entry restarted the chain at seq 1, which verify reports as tampering). At most
    :data:`_MAX_LINE` bytes are read back and :data:`_MAX_TRIED` lines decoded; the
    entry itself is appended to ``found``, if given."""
    try:
        fh = os.fdopen(_open_regular(path, os.O_RDONLY), "rb")
    except FileNotFoundError:
        return GENESIS, 0
    with fh:
        size = fh.seek(0, os.SEEK_END)
        end, step, tried = size, _TAIL, 0  # bytes from `end` on are tried already
        while end > 0:
            start = max(0, size - step)
            if start >= end:
                step *= 4
                continue
            fh.seek(start)
            lines = fh.read(end - start).split(b"\n")
            if start > 0:
                # The first piece may start inside a line: it is tried in the next
                # step, read whole (an entry's JSON holds no raw newline).
                end = start + len(lines[0])
                lines = lines[1:]
            else:
                end = 0
            for raw in reversed(lines):
                if not raw.strip():
                    continue
                tried += 1
                try:
                    entry = _decode_entry(raw)
                except ValueError:
                    # A line written before the chain existed, cut short or edited:
                    # chain from scratch after it (verify reports it).
                    if tried >= _MAX_TRIED:
                        return GENESIS, 0
                    continue
                if found is not None:
                    found.append(entry)
                return entry["hash"], entry["seq"]
            if start == 0 or size - start > _MAX_LINE:
                break
            step = min(step * 4, _MAX_LINE + _TAIL)
    return GENESIS, 0


# How far back the last entry is looked for (far beyond the largest entry a
# configuration value makes), and how many lines that are no entry are skipped.
_MAX_LINE = 64 << 20
_MAX_TRIED = 4096


# The largest seq an entry may hold: msgspec writes integers up to 64 bits, and a chain
# gains one per entry, so a larger one was not written by AuditLog.
_MAX_SEQ = 2**63 - 1


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            # The hash covers the last value; a reader that keeps the first (or grep)
            # would see another entry than the one verified.
            raise _NotAnEntry(f"duplicate key {key!r:.60} (edited: readers disagree on its value)")
        out[key] = value
    return out


def _no_constant(name: str) -> Any:
    raise _NotAnEntry(f"{name} is not JSON (edited: the writer never writes it)")


class _NotAnEntry(ValueError):
    """A line that is not a chained audit entry, and why."""


def _decode_entry(raw: bytes) -> dict[str, Any]:
    """One line as a chained audit entry: unique keys, ``seq`` an int within 64 bits,
    ``hash`` and ``prev`` strings. ValueError (``_NotAnEntry``) says why it is not one."""
    try:
        entry = json.loads(raw, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except _NotAnEntry:
        raise
    except RecursionError:
        raise _NotAnEntry("not a chained audit entry (nested too deeply: edited)") from None
    except ValueError:  # not JSON, not UTF-8
        raise _NotAnEntry(_UNCHAINED) from None
    if not isinstance(entry, dict):
        raise _NotAnEntry(_UNCHAINED)
    seq = entry.get("seq")
    if type(seq) is not int or not 0 < seq <= _MAX_SEQ:
        raise _NotAnEntry(
            _UNCHAINED
            if seq is None
            else f"seq {seq!r:.40}: not a whole number from 1 to 2**63-1 (edited)"
        )
    if not isinstance(entry.get("hash"), str) or not isinstance(entry.get("prev"), str):
        raise _NotAnEntry(_UNCHAINED)
    return entry


_UNCHAINED = "not a chained audit entry (edited, cut short or written without a chain)"


# --------------------------------------------------------------------------- verify


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of :func:`verify`: ``ok``, entries checked, and the first break.

    ``tail``: the last entry was confirmed against ``<path>.head`` (the writer's record of
    the last entry it wrote). ``head``: the ``seq`` that record names (None: no record;
    below the last entry's when entries were appended after it, by a writer that could
    not record its head, or when entries were cut from the end and an older record put
    back). ``ignored``: old files beyond what the last rotation says it kept (left by a
    writer that kept more; not part of the chain, not checked)."""

    ok: bool
    entries: int
    files: tuple[str, ...]
    file: str | None = None
    line: int | None = None
    problem: str | None = None
    tail: bool = False
    ignored: tuple[str, ...] = ()
    head: int | None = None

    def __str__(self) -> str:
        if self.ok:
            text = f"ok: {self.entries} entries in {len(self.files)} file(s), chain intact"
            if not self.tail and self.head is None:
                text += f" (no {HEAD_SUFFIX} record: entries removed from the end go unnoticed)"
            elif not self.tail:
                text += (f" (its {HEAD_SUFFIX} record names an earlier entry, seq {self.head}: "
                         "entries removed from the end after it go unnoticed)")  # fmt: skip
            if self.ignored:
                text += f"; not checked, beyond the kept files: {', '.join(self.ignored)}"
            return text
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.problem}"


def _rotated(base: str) -> dict[int, str]:
    """``{n: path}`` of every ``<base>.<n>`` beside ``base`` (n from 1, no leading zero)."""
    directory, name = os.path.split(base)
    pattern = re.compile(re.escape(name) + r"\.([1-9][0-9]{0,8})")
    try:
        names = os.listdir(directory or ".")
    except OSError:
        return {}
    return {int(m[1]): os.path.join(directory, n) for n in names if (m := pattern.fullmatch(n))}


def log_files(path: str | os.PathLike[str]) -> list[str]:
    """``path`` and every rotated file beside it (``path.1``, ``path.2``...), oldest first.

    A missing number does not end the list (:func:`verify` reports the gap)."""
    base = os.path.abspath(path)
    rotated = _rotated(base)
    files = [rotated[n] for n in sorted(rotated, reverse=True)]
    return [*files, base] if os.path.exists(base) else files


# Readers take no lock: anyone who can open the writers' lock file can flock it and hold
# every change off (a reader's shared lock, taken read-only, was enough), so only the
# writers open it (mode 0600). A reader gets a consistent view on its own instead: it
# opens every file, then checks that no name moved meanwhile (a rotation renames each
# file to the next number), and starts again if one did.
_SNAPSHOT_TRIES = 40


def _same_file(name: str, fd: int) -> bool:
    try:
        st, mine = os.stat(name), os.fstat(fd)
    except OSError:
        return False
    return (st.st_dev, st.st_ino) == (mine.st_dev, mine.st_ino)


_Opened = dict[str, "int | OSError"]


def _open_consistent(base: str, last: bool) -> tuple[dict[int, str], _Opened] | None:
    """``({n: <base>.<n>}, {name: fd or why it cannot be opened})`` for ``base`` and its
    rotated files, oldest first, as they all were at one moment; None if a rotation moved
    them meanwhile (try again), unless ``last`` (then as found)."""
    rotated = _rotated(base)
    names = [rotated[n] for n in sorted(rotated, reverse=True)] + [base]
    opened: _Opened = {}
    try:
        for name in names:
            try:
                opened[name] = _open_regular(name, os.O_RDONLY, follow=True)
            except OSError as exc:
                opened[name] = exc
        moved = _rotated(base) != rotated or any(
            not _same_file(name, got) if isinstance(got, int)
            else isinstance(got, FileNotFoundError) and os.path.exists(name)
            for name, got in opened.items()
        )  # fmt: skip
        if moved and not last:
            raise _Moved
    except BaseException as exc:
        for got in opened.values():
            if isinstance(got, int):
                os.close(got)
        if isinstance(exc, _Moved):
            return None
        raise
    if isinstance(opened[base], FileNotFoundError):
        del opened[base]
    return rotated, opened


class _Moved(Exception):
    """A rotation moved the log's files while they were being opened."""


def open_log_files(path: str | os.PathLike[str]) -> list[tuple[str, BinaryIO]]:
    """Every file of the audit log at ``path`` (rotated files first, oldest first), open
    for reading, as they all were at one moment: a rotation while they are opened (which
    renames each to the next number) neither hides one nor shows one twice. Missing files
    are left out; OSError (``filename`` set) for one that cannot be opened. Takes no lock:
    a reader never holds up the writers. The caller closes the files."""
    base = os.path.abspath(path)
    for attempt in range(_SNAPSHOT_TRIES):
        found = _open_consistent(base, attempt == _SNAPSHOT_TRIES - 1)
        if found is not None:
            break
        time.sleep(min(0.001 * 2**attempt, 0.05))
    assert found is not None
    opened = found[1]
    out: list[tuple[str, BinaryIO]] = []
    problem: OSError | None = None
    for name, got in opened.items():
        if isinstance(got, int):
            out.append((name, os.fdopen(got, "rb")))
        elif not isinstance(got, FileNotFoundError) and problem is None:
            problem = got
            problem.filename = name
    if problem is not None:
        for _, fh in out:
            fh.close()
        raise problem
    return out


class _File:
    """One of the log's files as :func:`verify` found it: open, and its size then (the
    bytes read; a writer appending meanwhile adds nothing to what is checked). Read a
    line at a time, never whole: a planted multi-GB file must not exhaust memory."""

    def __init__(self, name: str, fd: int) -> None:
        self.name = name
        self.fh = os.fdopen(fd, "rb")
        self.size = os.fstat(self.fh.fileno()).st_size

    def ends_a_line(self) -> bool:
        if self.size == 0:
            return True
        self.fh.seek(self.size - 1)
        return self.fh.read(1) == b"\n"

    def first_line(self, limit: int) -> bytes:
        self.fh.seek(0)
        return self.fh.read(min(limit, self.size)).split(b"\n", 1)[0]

    def lines(self, start: int = 0, first: int = 1) -> Iterator[tuple[int, int, bytes | None, str]]:
        """``(line number, offset after it, line without its newline, problem)`` from byte
        ``start`` (line number ``first``) to the size found. A line longer than
        :data:`_MAX_LINE` (no entry cfgcore writes is) is a problem, never read whole
        (None in place of the line); so is a last line without its newline (cut short)."""
        fh, pos, n = self.fh, start, first
        fh.seek(start)
        while pos < self.size:
            raw = fh.readline(min(_MAX_LINE + 1, self.size - pos))
            if not raw:  # cut back while read
                yield n, pos, None, "last line is cut short (truncated entry)"
                return
            pos += len(raw)
            if raw.endswith(b"\n"):
                yield n, pos, raw[:-1], ""
            elif len(raw) > _MAX_LINE:
                yield n, pos, None, (f"line longer than {_MAX_LINE >> 20} MiB: not an entry "
                                     "cfgcore writes (planted or edited)")  # fmt: skip
                return
            else:  # the line, without its newline: the reader judges it
                yield n, pos, raw, "last line is cut short (truncated entry)"
            n += 1

    def close(self) -> None:
        self.fh.close()


@dataclass
class _Snapshot:
    """What :func:`verify` checks: the ``.head`` record (read first: the writer writes
    it after the entries, so it never records more than the files read after it hold),
    the rotated files' names and every file, open (or why it cannot be opened)."""

    head: bytes | OSError
    rotated: dict[int, str]
    data: dict[str, _File | OSError]
    state: tuple[Any, ...] = ()

    def close(self) -> None:
        for got in self.data.values():
            if isinstance(got, _File):
                got.close()


def _state(base: str) -> tuple[Any, ...]:
    """What a writer changes in the log's files (names, inodes, sizes, mtimes): equal at
    two moments, nothing was written in between (names move and sizes grow, never back)."""
    out: list[Any] = []
    for name in (base + HEAD_SUFFIX, base, *sorted(_rotated(base).values())):
        try:
            st = os.stat(name)
        except OSError:
            out.append((name, None))
            continue
        out.append((name, st.st_ino, st.st_size, st.st_mtime_ns))
    return tuple(out)


def _snapshot(base: str) -> _Snapshot:
    for attempt in range(_SNAPSHOT_TRIES):
        last = attempt == _SNAPSHOT_TRIES - 1
        state = _state(base)
        try:
            head: bytes | OSError = _read_all(base + HEAD_SUFFIX, limit=4096)
        except OSError as exc:
            head = exc
        found = _open_consistent(base, last)
        if found is not None:
            rotated, opened = found
            data: dict[str, _File | OSError] = {}
            for name, got in opened.items():
                if isinstance(got, int):
                    try:
                        data[name] = _File(name, got)
                    except OSError as exc:
                        os.close(got)
                        data[name] = exc
                else:
                    data[name] = got
            snap = _Snapshot(head, rotated, data, state)
            live = data.get(base)
            try:
                if last or not isinstance(live, _File) or live.ends_a_line():
                    return snap
                # A line without its newline may be a write still in progress (another
                # process's append is not atomic to a reader): cut short only if it stays.
                time.sleep(0.02)
                if _state(base) == state:
                    return snap
            except BaseException:
                snap.close()
                raise
            snap.close()
            continue
        time.sleep(min(0.001 * 2**attempt, 0.05))
    raise AssertionError("unreachable")  # pragma: no cover


def _first_entry_of(data: _File | OSError | None) -> dict[str, Any] | None:
    if not isinstance(data, _File):
        return None
    try:
        return _decode_entry(data.first_line(_TAIL))
    except (ValueError, OSError):
        return None


def _kept(header: dict[str, Any] | None) -> int | None:
    """How many old files the rotation that began the live file left (None: not said,
    e.g. a log written before rotation entries recorded it, or never rotated)."""
    if header is None or header.get("kind") != "rotation":
        return None
    kept = header.get("kept")
    return kept if type(kept) is int and kept >= 0 else None


def verify(
    path: str | os.PathLike[str],
    keys: Iterable[AuditKey] | None = None,
    *,
    checkpoint: str | os.PathLike[str] | None = None,
) -> VerifyResult:
    """Check the hash chain of ``path`` and its rotated files, oldest first.

    Reports the first entry that was edited (its hash does not match its content),
    removed (a gap in ``seq``, or ``prev`` not the hash of the entry before), reordered
    (``seq`` going back), or cut short (a last line that is not complete JSON). A line
    with a duplicate key is refused wherever the copy sits (the hash covers the value
    a last-wins parser reads; grep or a first-wins parser would read the other).

    Removed files and entries at either end are reported too:

    * the oldest entry must start the chain (``seq`` 1, ``prev`` the genesis hash) or be
      a ``rotation`` entry, whose ``seq`` and ``prev`` continue from a file retention
      dropped; anything else means entries were removed from the start;
    * every old file the last rotation says it kept (``kept``: ``path.1`` to
      ``path.<kept>``) must be there, and no number may be missing below one that is;
      old files beyond ``kept`` (left when ``backups`` was lowered) are not part of the
      chain and are listed in ``ignored``;
    * the last entry must be the one the writer recorded in ``path.head``. A hash chain
      alone cannot show that entries were removed from the end: without that file (a
      log written by an older cfgcore), or if whoever removed them rewrote it too, the
      loss goes unnoticed (``tail`` is False without it).

    Without an audit key the chain is not a signature: someone who rewrites the files
    and recomputes every hash is not detected. With ``keys`` (default: the audit keys of
    ``CFGCORE_AUDIT_KEY`` or ``CFGCORE_AUDIT_KEY_FILE``, :func:`audit_keys`) every entry
    must carry a valid HMAC of a key of the ring: an entry without one (written before
    the key was set, or rewritten by someone without it) fails, and so does a missing
    ``path.head``. A signed log checked without its key fails, naming the key id.
    Verification takes no lock (the writers' lock is theirs alone): it reads the files
    as they all were at one moment, and a failure a rotation in progress also shows (a
    file missing or empty) counts only if the files stay as read, so a concurrent
    rotation is never mistaken for a removal. With a key, ``path.head`` is signed too
    (with the log's file name): a head rewritten to match a log cut at an entry
    boundary, or another log's files put in place of this one, fail.

    What the files alone cannot show: the log and its head replaced together by an
    older copy of both (a rollback), or removed together (emptied: without the key
    that reads as a log never written; a writer that wrote to it records the cut the
    next time it appends). ``checkpoint`` (a file kept where whoever can write
    the log cannot: ``cfgcore audit verify --checkpoint``) closes that from one verify
    to the next: it records the last entry verified (signed with the audit key, if
    any), every later verify requires the log to still hold that entry (or, if
    retention dropped its file, to end at or after it) and moves it forward. A rollback
    to a state newer than the last verify still needs an outside record.
    """
    ring = tuple(keys) if keys is not None else audit_keys()
    base = os.path.abspath(path)
    cp = os.path.abspath(checkpoint) if checkpoint is not None else None
    if cp is not None and os.path.dirname(os.path.realpath(cp)) == os.path.dirname(
        os.path.realpath(base)
    ):
        return VerifyResult(False, 0, (), cp, None,
                            "a checkpoint beside the log is rolled back with it: keep it "
                            "where whoever can write the log cannot")  # fmt: skip
    # A few tries: rotations are rare (one per max_bytes), so a second look nearly always
    # finds it done; a real problem under a busy writer is reported after the last.
    for _ in range(5):
        snap = _snapshot(base)
        moving: list[bool] = []
        try:
            result = _verify(base, os.fspath(path), ring, cp, snap, moving)
        finally:
            snap.close()
        if result.ok or not any(moving):
            return result
        # A rotation shows states no finished log has (the live file gone before the new
        # one is made, a number missing while the others are renamed, a new file still
        # empty): a failure counts only if the files stayed as read, not if a writer was
        # at work meanwhile (then look again).
        time.sleep(_SETTLE)
        if _state(base) == snap.state:
            return result
    return result


# How long the files must stay as read for a failure to count (a rotation takes
# milliseconds; a finished log's problem stays).
_SETTLE = 0.1


def _mac_keys(entry: dict[str, Any], ring: tuple[AuditKey, ...]) -> list[bytes | None] | str:
    """The keys ``entry``'s hash may be made with (``[None]``: a plain hash), or why
    it cannot be checked against ``ring``."""
    seq, alg = entry["seq"], entry.get("alg")
    if alg is None:
        if ring:
            return (f"entry seq {seq} is not signed with the audit key (written before "
                    "CFGCORE_AUDIT_KEY was set, or rewritten by someone without it)")  # fmt: skip
        return [None]
    kid = entry.get("kid")
    if alg != ALG or not isinstance(kid, str):
        return f"entry seq {seq} was edited (alg {alg!r:.40}, key id {kid!r:.40})"
    from cfgcore.runtime.secrets import safe_key_id

    shown = repr(safe_key_id(kid) or "?")
    if not ring:
        return (f"entry seq {seq} is signed with audit key {shown}: set CFGCORE_AUDIT_KEY "
                "(or CFGCORE_AUDIT_KEY_FILE) to verify it")  # fmt: skip
    macs: list[bytes | None] = [k.mac_key for k in ring if k.kid == kid]
    if not macs:
        held = ", ".join(k.kid for k in ring)
        return (f"entry seq {seq} is signed with audit key {shown}, which the audit key "
                f"ring does not hold (it holds {held})")  # fmt: skip
    return macs


def _seq_of(record: bytes | OSError | str | None) -> int | None:
    """The ``seq`` of a head record (its bytes) or of the checkpoint file (its name),
    if it has one: the entries whose hashes :func:`_verify` keeps."""
    try:
        raw = _read_all(record, limit=4096) if isinstance(record, str) else record
        seq = json.loads(raw)["seq"] if isinstance(raw, bytes) else None
    except (OSError, ValueError, TypeError, KeyError, IndexError, RecursionError):
        return None
    return seq if type(seq) is int else None


def _seq_later(opened: list[Any], start: int, first: int, missing: range) -> bool:
    """Whether an entry with a ``seq`` in ``missing`` comes later in the log: in the
    first of ``opened`` from byte ``start`` (line ``first``), or in the files after it."""
    for k, fh in enumerate(opened):
        for _n, _end, raw, problem in fh.lines(*((start, first) if k == 0 else ())):
            if problem or raw is None:
                break
            try:
                if _decode_entry(raw)["seq"] in missing:
                    return True
            except ValueError:
                continue
    return False


def _verify(
    base: str,
    given: str,
    ring: tuple[AuditKey, ...],
    checkpoint: str | None,
    snap: _Snapshot,
    moving: list[bool] | None = None,
) -> VerifyResult:
    """:func:`verify` of ``snap``; ``moving`` gets a True when the failure is one a
    rotation in progress shows too (a file missing or empty)."""
    if moving is None:
        moving = []
    rotated = snap.rotated
    live = base in snap.data
    if not live and not rotated:
        moving.append(True)
        return VerifyResult(False, 0, (), given, None, "no such audit log")
    all_files = tuple(name for name in snap.data if name != base or live)
    if not live:
        newest = rotated[min(rotated)]
        problem = f"missing while {newest} exists: the live file was removed"
        moving.append(True)
        return VerifyResult(False, 0, all_files, base, None, problem)
    kept = _kept(_first_entry_of(snap.data.get(base)))
    wanted = range(1, (max(rotated, default=0) if kept is None else kept) + 1)
    for n in wanted:
        if n not in rotated:
            said = (f"the rotation at {base}:1 says {kept} old file(s) were kept"
                    if kept is not None else f"{rotated[max(rotated)]} exists")  # fmt: skip
            moving.append(True)
            return VerifyResult(False, 0, all_files, f"{base}.{n}", None,
                                f"missing, but {said}: removed")  # fmt: skip
    ignored = tuple(rotated[n] for n in sorted(rotated, reverse=True) if n not in wanted)
    files = [rotated[n] for n in reversed(wanted)] + [base]
    for name in files:
        data = snap.data.get(name)
        if not isinstance(data, _File):  # a directory, a FIFO, no permission
            why = "No such file or directory" if data is None else data.strerror or data
            moving.append(data is None or isinstance(data, FileNotFoundError))
            return VerifyResult(False, 0, tuple(files), name, None,
                                f"cannot read: {why}")  # fmt: skip
        if data.size == 0 and (name != base or len(files) > 1):
            # Every file a rotation makes starts with an entry; only a live file created
            # ahead of the first write (with its owner and mode) may be empty.
            moving.append(True)
            return VerifyResult(False, 0, tuple(files), name, None,
                                "empty: its entries were removed")  # fmt: skip
    opened = [snap.data[name] for name in files]
    # Read a line at a time: only the hashes the head record and the checkpoint name
    # are kept (a log's every entry in memory is what a planted huge file exploits).
    wanted_seqs = {_seq_of(snap.head), _seq_of(checkpoint)}
    prev: str | None = None
    seq: int | None = None
    hashes: dict[int, str] = {}
    i = 0
    for k, fh in enumerate(opened):
        assert isinstance(fh, _File)
        name = fh.name
        try:
            for n, end, raw, problem in fh.lines():

                def bad(msg: str, name: str = name, n: int = n, i: int = i) -> VerifyResult:
                    return VerifyResult(False, i, tuple(files), name, n, msg, ignored=ignored)

                if problem or raw is None:
                    return bad(problem)
                try:
                    entry = _decode_entry(raw)
                except ValueError as exc:
                    return bad(str(exc))
                e_seq = entry["seq"]
                macs = _mac_keys(entry, ring)
                if isinstance(macs, str):
                    return bad(macs)
                try:
                    edited = not any(
                        hmac.compare_digest(entry_hash(entry, key), entry["hash"]) for key in macs
                    )
                except (OverflowError, RecursionError):  # an integer past 64 bits, deep nesting
                    edited = True  # a value AuditLog cannot have written
                except TypeError:  # a hash that is not ASCII text
                    edited = True
                if edited:
                    return bad(
                        f"entry seq {e_seq} was edited (its hash does not match its content)"
                    )
                if (entry.get("kind"), entry.get("source")) == ("tamper", "audit"):
                    # Written by a writer that found the log cut back or replaced: the
                    # evidence stays in the chain, whatever was appended after it.
                    return bad(f"entry seq {e_seq}: a writer found this log tampered with "
                               f"before appending: {str(entry.get('error'))[:300]}")  # fmt: skip
                if seq is None:  # the oldest entry: starts the chain or continues a dropped file
                    if e_seq == 1 and entry["prev"] != GENESIS:
                        return bad("entry seq 1 does not start the chain (its prev is not the "
                                   "genesis hash)")  # fmt: skip
                    if e_seq > 1 and (entry.get("kind"), entry.get("source")) != (
                        "rotation",
                        "audit",
                    ):
                        return bad(f"entries seq 1..{e_seq - 1} are missing: removed from the "
                                   "start (the oldest entry neither starts the chain nor "
                                   "begins a rotated file)")  # fmt: skip
                else:
                    if e_seq <= seq:
                        return bad(
                            f"entry seq {e_seq} is out of order (after seq {seq}): reordered"
                        )
                    if e_seq != seq + 1:
                        # A gap or a reorder: the rest of the log says (the entry shows up
                        # later if it was moved).
                        if _seq_later(opened[k:], end, n + 1, range(seq + 1, e_seq)):
                            return bad(f"entry seq {e_seq} is out of order (before seq "
                                       f"{seq + 1}): reordered")  # fmt: skip
                        return bad(f"entries seq {seq + 1}..{e_seq - 1} are missing: removed")
                    if entry["prev"] != prev:
                        return bad(f"entry seq {e_seq} does not follow the entry before it")
                prev, seq = entry["hash"], e_seq
                if e_seq in wanted_seqs:
                    hashes[e_seq] = entry["hash"]
                i += 1
        except OSError as exc:
            return VerifyResult(False, i, tuple(files), name, None,
                                f"cannot read: {exc.strerror or exc}")  # fmt: skip
    if seq is not None and prev is not None:
        hashes[seq] = prev
    result = _check_tail(base, tuple(files), i, seq or 0, hashes, ignored, ring, snap.head)
    if result.ok and checkpoint is not None:
        result = _check_checkpoint(checkpoint, base, result, seq or 0, hashes, ring)
    return result


def _check_tail(
    base: str,
    files: tuple[str, ...],
    count: int,
    last: int,
    hashes: dict[int, str],
    ignored: tuple[str, ...],
    ring: tuple[AuditKey, ...] = (),
    head_read: bytes | OSError | None = None,
) -> VerifyResult:
    """Compare the chain's end with ``<base>.head``, the writer's last link
    (``head_read``: its bytes or why they could not be read, read before the log; None:
    read now)."""
    signed = bool(ring)
    head_file = base + HEAD_SUFFIX
    try:
        if isinstance(head_read, OSError):
            raise head_read
        raw = _read_all(head_file, limit=4096) if head_read is None else head_read
    except FileNotFoundError:
        if signed:  # every writer with the key writes one: only a hand removes it
            if count == 0:
                # An emptied log with its head removed reads as one never written: refused
                # (a log written by nobody yet fails too, until its first entry).
                return VerifyResult(False, count, files, head_file, None,
                                    "missing, and the log holds no entry: emptied with its "
                                    "head, or never written yet (with the key, a log "
                                    "verifies once it has its first entry)",
                                    ignored=ignored)  # fmt: skip
            return VerifyResult(False, count, files, head_file, None,
                                "missing, but a signed log always has one: removed (entries "
                                "removed from the end cannot be ruled out)",
                                ignored=ignored)  # fmt: skip
        return VerifyResult(True, count, files, ignored=ignored)
    except OSError as exc:
        return VerifyResult(False, count, files, head_file, None,
                            f"cannot read: {exc.strerror or exc}", ignored=ignored)  # fmt: skip
    try:
        head = _load_record(raw)
        seq, hash_ = head["seq"], head["hash"]
        if type(seq) is not int or seq < 1 or not isinstance(hash_, str):
            raise ValueError
    except (ValueError, TypeError, KeyError):
        return VerifyResult(False, count, files, head_file, None,
                            "not a record of the last entry written (edited or cut short)",
                            ignored=ignored)  # fmt: skip
    why = _signature_problem(head, ring, "the record of the last entry written")
    if not why and "log" in head and head["log"] != os.path.basename(base):
        # Signed with the log's name: another log's files (and head) put in its place.
        why = f"the record of another log ({str(head['log'])!r:.80}): this log was replaced"
    if why:
        return VerifyResult(False, count, files, head_file, None, why, ignored=ignored)
    last_file = files[-1]
    if seq > last:
        return VerifyResult(False, count, files, last_file, None,
                            f"entries seq {last + 1}..{seq} are missing: removed from the end "
                            f"({head_file} records seq {seq} as written last)",
                            ignored=ignored)  # fmt: skip
    if seq in hashes and hashes[seq] != hash_:
        return VerifyResult(False, count, files, last_file, None,
                            f"entry seq {seq} is not the one written ({head_file} records "
                            "another hash): replaced", ignored=ignored)  # fmt: skip
    # A head older than the last entry: entries appended by a writer that keeps no head.
    return VerifyResult(True, count, files, tail=seq == last, ignored=ignored, head=seq)


def _check_checkpoint(
    checkpoint: str,
    base: str,
    result: VerifyResult,
    last: int,
    hashes: dict[int, str],
    ring: tuple[AuditKey, ...],
) -> VerifyResult:
    """Compare a verified log with the checkpoint of the last verify, then move the
    checkpoint to its end."""
    from cfgcore.runtime.atomicio import write_state_file

    def bad(problem: str) -> VerifyResult:
        return VerifyResult(False, result.entries, result.files, checkpoint, None, problem,
                            ignored=result.ignored)  # fmt: skip

    try:
        fd = _open_regular(checkpoint, os.O_RDONLY, follow=True)
    except FileNotFoundError:
        raw = None
    except OSError as exc:
        return bad(f"cannot read: {exc.strerror or exc}")
    else:
        try:
            # Another user's checkpoint (where others may create files) may hold any
            # entry: an older one hid a rollback since. Refused, naming why and the fix.
            why = foreign_opened(checkpoint, fd)
            if why:
                return bad(f"refused: {why}, so another user may have put it there "
                           f"({state_file_fix(why)})")  # fmt: skip
            with os.fdopen(os.dup(fd), "rb") as fh:
                raw = fh.read(4096)
        except OSError as exc:
            return bad(f"cannot read: {exc.strerror or exc}")
        finally:
            os.close(fd)
    if raw is not None:
        try:
            cp = _load_record(raw)
            seq, hash_, name = cp["seq"], cp["hash"], cp["log"]
            if type(seq) is not int or seq < 0 or not isinstance(hash_, str):
                raise ValueError
        except (ValueError, TypeError, KeyError):
            return bad("not a checkpoint of an audit log (edited or cut short)")
        why = _signature_problem(cp, ring, "the checkpoint")
        if why:
            return bad(why)
        if name != os.path.basename(base):
            return bad(f"the checkpoint of another log ({str(name)!r:.80}), not of {base}")
        when = f"verified at {cp.get('ts', '?')}"
        if seq > last:
            return bad(f"rolled back: the log ends at seq {last}, but seq {seq} was {when} "
                       "(entries removed from the end, or an older copy of the log and its "
                       "head put back)")  # fmt: skip
        if seq in hashes and hashes[seq] != hash_:
            return bad(f"replaced: entry seq {seq} is not the one {when} (the log was "
                       "rewritten from there, or replaced by another copy)")  # fmt: skip
    if last == 0:
        return result  # nothing written yet: nothing to record
    record: dict[str, Any] = {
        "seq": last,
        "hash": hashes.get(last, ""),
        "ts": datetime.now(tz=timezone.utc).isoformat(),
        "log": os.path.basename(base),
    }
    if ring:
        record["alg"], record["kid"] = ALG, ring[0].kid
        record["mac"] = _record_mac(record, ring[0].mac_key)
    try:
        write_state_file(checkpoint, _ENCODER.encode(record) + b"\n", mode=0o600)
    except OSError as exc:
        return bad(f"cannot write: {exc.strerror or exc}")
    return result


class _NoDirectory(OSError):
    """The directory of an audit log that may not create it does not exist."""

    def __init__(self, directory: str, path: str) -> None:
        super().__init__(
            errno.ENOENT,
            f"cannot append to audit log {path}: its directory {directory} does not exist "
            "(removed?) and is not created for a log",
        )

    def __str__(self) -> str:
        return str(self.strerror)


_AUDIT_LOGS: weakref.WeakSet[AuditLog] = weakref.WeakSet()


def _reset_audit_logs_after_fork() -> None:
    # A thread that was appending when the parent forked does not exist in the child,
    # so the lock it held would stay held forever there.
    for audit in list(_AUDIT_LOGS):
        audit._lock = threading.Lock()
        # The parent writes its waiting entries; the child writing them too doubles them.
        audit._pending, audit._pending_sizes, audit._dropped = [], [], 0


after_fork_in_child(_reset_audit_logs_after_fork)


@at_exit  # also at a multiprocessing child's exit, which skips atexit
def _flush_at_exit() -> None:
    # Entries still waiting for the writers' lock: one more (bounded) try, and a last
    # error naming how many are lost if it is still held.
    for audit in list(_AUDIT_LOGS):
        if audit._pending or audit._dropped:
            with contextlib.suppress(Exception):
                if not audit.flush():
                    log.error("audit log %s: %d entries lost at exit (its lock stayed held)",
                              audit.path, len(audit._pending))  # fmt: skip
