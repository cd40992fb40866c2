"""Where the flag document lives: the flag-store interface and its local implementations.

A flag store holds one versioned flag document (a :class:`cfgcore.snapshot.Snapshot`
as bytes). Everything that changes flags (``set_feature_flag``, ``create_ab_test``,
imports, publishes) goes through :meth:`FlagStore.update`, a read-modify-write that is
applied to the *newest* stored document, never to a stale copy in memory, and that is
atomic across threads and processes. Readers (:class:`cfgcore.runtime.flags.LiveFlags`)
compile each new document off to the side and swap it in.

Stores here:

* :class:`FileFlagStore`: a YAML, JSON or MessagePack file. Writers serialise on an
  ``fcntl`` lock on ``<file>.lock`` and replace the file atomically (temp file, fsync,
  rename); a sidecar ``.<file>.version`` records the version, checksum and writer.
  A flag file that is a symbolic link stays one: the file it points to is replaced,
  and the lock and sidecar live beside that file. A MessagePack file is held to an item
  bound, read and written (``file:///PATH.msgpack?max_items=N``; 1,000,000 by default).
  A missing file reads as the *seed* document (the bundled catalog, except in
  production: :func:`bundled_seed`) and is created by the first change.
* :class:`MemoryFlagStore`: in-process only (``persist=False``, tests).
* The Redis store (``redis://``, ``rediss://``, ``redis+sentinel://``) lives in
  :mod:`cfgcore.runtime.redis_store` and is imported only when such a URL is used.

:func:`open_store` turns a path or URL into a store; ``$CFGCORE_FLAG_STORE`` sets the
default.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import math
import os
import socket
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable
from urllib.parse import parse_qsl, unquote, urlparse

import msgspec

from cfgcore.errors import ConfigError, SnapshotError
from cfgcore.runtime.atomicio import (
    FileLock,
    ForeignStateFile,
    atomic_write,
    read_regular,
    read_state_file,
    write_state_file,
)
from cfgcore.runtime.forks import after_fork_in_child
from cfgcore.snapshot import (
    MAX_MSGPACK_ITEMS,
    Format,
    Snapshot,
    YamlEntries,
    decode_snapshot,
    encode_snapshot,
    format_for,
    msgpack_items,
    msgpack_items_bound,
    problem_lines,
    too_many_items,
)

__all__ = [
    "FileFlagStore",
    "FlagDocument",
    "FlagStore",
    "MemoryFlagStore",
    "checksum",
    "default_state_dir",
    "open_store",
    "state_flags_file",
    "clean_writer",
    "writer_identity",
]

Change = Callable[[Snapshot], Snapshot]
Check = Callable[[Snapshot], Any]


def checksum(data: bytes) -> str:
    """SHA-256 of a stored document, hex."""
    return hashlib.sha256(data).hexdigest()


def default_state_dir() -> str:
    """``$CFGCORE_STATE_DIR``, else ``$XDG_STATE_HOME/cfgcore``, else ``~/.local/state/cfgcore``.

    A relative ``XDG_STATE_HOME`` is ignored, as the XDG base directory specification
    says. Without ``HOME`` and with a user id the password database does not know (a
    container's random uid), ``~`` names no directory: ConfigError asking for
    ``CFGCORE_STATE_DIR``, where the state (flags, logs, caches) used to be created
    under whatever the working directory was, in a directory literally named ``~``.
    """
    env = os.environ.get("CFGCORE_STATE_DIR")
    if env:
        return os.path.abspath(os.path.expanduser(env))
    xdg = os.environ.get("XDG_STATE_HOME")
    if xdg and os.path.isabs(xdg):
        return os.path.join(xdg, "cfgcore")
    home = os.path.expanduser("~")
    if not os.path.isabs(home):
        raise ConfigError(
            "no state directory: HOME is not set and this user id has no home directory "
            "in the password database; set CFGCORE_STATE_DIR to the directory cfgcore "
            "keeps its flags, logs and caches in"
        )
    return os.path.join(home, ".local", "state", "cfgcore")


# The flag files named by state_flags_file(): read as the state directory's files.
_STATE_FLAG_FILES: set[str] = set()


def state_flags_file(state_dir: str | os.PathLike[str]) -> str:
    """``<state_dir>/flags.json``: the flag file a persisting manager keeps in its state
    directory. A :class:`FileFlagStore` of that path reads it (and its version sidecar)
    as a file cfgcore wrote there itself: one another local user may have put there (a
    state directory other users may create files in) is refused, naming it
    (:func:`cfgcore.runtime.atomicio.foreign_state_file`); a flag file named
    explicitly is the deployment's, read whoever owns it."""
    path = os.path.join(os.path.abspath(os.fspath(state_dir)), "flags.json")
    _STATE_FLAG_FILES.add(path)
    return path


#: The largest version sidecar read: cfgcore writes a few hundred bytes (version,
#: checksum, a writer record).
_MAX_META_BYTES = 1 << 20

#: Seconds a flag change waits for the store's lock before it is refused (a writer's
#: turn takes milliseconds; only a stuck or hostile holder keeps it longer).
LOCK_TIMEOUT = 30.0


def writer_identity(actor: str | None = None) -> dict[str, Any]:
    """Who writes: host, pid, actor (default: the OS user) and the time."""
    if actor is None:
        # The real uid's name, as the audit log's default actor: never $USER, which
        # anyone sets (USER=alice made a write look like alice's).
        from cfgcore.runtime.audit import default_actor

        actor = default_actor().rpartition("@")[0]
    # A lone surrogate (an --actor argument or user name holding bytes that are not
    # UTF-8) is kept as its escape, as the audit log shows it: the Redis store's
    # MessagePack writer record could not encode it, and the write failed with a
    # UnicodeEncodeError instead of being made.
    actor = str(actor).encode("utf-8", "backslashreplace").decode("utf-8")
    return {"host": socket.gethostname(), "pid": os.getpid(), "actor": actor, "time": time.time()}


def clean_writer(raw: Any) -> dict[str, Any]:
    """A writer record read back from a store (Redis, a file's sidecar), keeping what
    cfgcore writes (:func:`writer_identity` and the write ``id``) with the types it
    writes: the record comes from outside the process, and it reaches audit records,
    listeners, ``cfgcore flags stale`` (which read its ``time``) and terminals. Text is
    cut at 256 characters; a ``time`` that is not a finite epoch second, or any other
    key, is left out."""
    if not isinstance(raw, Mapping):
        return {}
    out: dict[str, Any] = {}
    for key in ("host", "actor", "id"):
        value = raw.get(key)
        if isinstance(value, str):
            out[key] = value[:256]
    pid = raw.get("pid")
    if type(pid) is int and 0 <= pid < 2**63:
        out["pid"] = pid
    when = raw.get("time")
    if isinstance(when, (int, float)) and not isinstance(when, bool):
        if math.isfinite(when) and 0 <= when < 1e11:  # epoch seconds before year 5138
            out["time"] = float(when)
    return out


@dataclass(frozen=True)
class FlagDocument:
    """One version of the flag document, as read from or written to a store."""

    snapshot: Snapshot
    data: bytes = field(repr=False)
    version: int
    checksum: str
    writer: Mapping[str, Any] = field(default_factory=dict)
    origin: str = ""
    # Redis stores: the store's epoch (a random id that begins with the first write on a
    # store holding no document, or with a forced write) and whether a forced write
    # began it; None for other stores and for documents of releases before epochs.
    epoch: str | None = None
    forced: bool = False
    # Redis stores: the ``signature`` field stored beside the document (None: none) and
    # the ``writer`` field exactly as stored (the signature covers its SHA-256), kept so
    # that the cache file can be checked again against the keys a process trusts when
    # it is read; None for other stores.
    signature: bytes | None = field(default=None, repr=False, compare=False)
    writer_field: bytes | None = field(default=None, repr=False, compare=False)


@runtime_checkable
class FlagStore(Protocol):
    """A versioned flag document with atomic read-modify-write and change notification.

    Shaped for remote, compare-and-set backends: :meth:`update` may retry ``change`` on a
    conflict, so ``change`` must be a pure function of the snapshot it is given.
    """

    url: str
    kind: str

    def read(self) -> FlagDocument:
        """The newest document; :class:`ConfigError` if it cannot be read or decoded."""
        ...

    def update(
        self, change: Change, *, check: Check | None = None, actor: str | None = None
    ) -> tuple[FlagDocument, FlagDocument]:
        """Apply ``change`` to the newest document atomically; ``check(new)`` (validate and
        compile) runs before anything is written and refuses the change by raising.
        Returns ``(old, new)``."""
        ...

    def watch(
        self,
        callback: Callable[[FlagDocument], None],
        *,
        on_error: Callable[[Exception], None] | None = None,
    ) -> Callable[[], None]:
        """Call ``callback(doc)`` for newer documents written elsewhere; returns an
        unsubscribe function. ``on_error(exc)`` hears about a document the store itself
        refuses (corrupt); a ``callback`` that raises ConfigError refuses ``doc``."""
        ...

    def close(self) -> None:
        """Release connections and threads."""
        ...


# ----------------------------------------------------------------------------- memory


class MemoryFlagStore:
    """A flag document kept in this process only (nothing is written anywhere)."""

    kind = "memory"

    def __init__(self, snapshot: Snapshot, *, origin: str = "memory") -> None:
        self.url = f"memory://{id(self):x}"
        self.origin = origin
        self._lock = threading.Lock()
        data = encode_snapshot(snapshot, "msgpack")
        self._doc = FlagDocument(snapshot, data, 0, checksum(data), {}, origin)

    def read(self) -> FlagDocument:
        return self._doc

    def update(
        self, change: Change, *, check: Check | None = None, actor: str | None = None
    ) -> tuple[FlagDocument, FlagDocument]:
        with self._lock:
            old = self._doc
            new_snap = change(old.snapshot)
            if check is not None:
                check(new_snap)
            data = encode_snapshot(new_snap, "msgpack")
            new = FlagDocument(
                new_snap, data, old.version + 1, checksum(data), writer_identity(actor), self.origin
            )
            self._doc = new
            return old, new

    def watch(
        self,
        callback: Callable[[FlagDocument], None],
        *,
        on_error: Callable[[Exception], None] | None = None,
    ) -> Callable[[], None]:
        # Every writer of a memory store is in this process and shares its live set.
        return lambda: None

    def close(self) -> None:
        pass


# ------------------------------------------------------------------------------- file


class FileFlagStore:
    """The flag document in a file, safe for any number of writer processes.

    ``seed`` is the file served (read-only) while ``path`` does not exist: the bundled
    catalog for the state directory. Writes never touch the seed.

    ``max_items``: for a MessagePack file, the most items (maps, arrays, keys and
    values) its document may hold, counted before it is decoded (a read refuses a larger
    one) or written (a change making it larger is refused, the file left as it was): a
    whole number from 1,000 to 10,000,000, :data:`cfgcore.snapshot.MAX_MSGPACK_ITEMS`
    (1,000,000) by default; ``file:///PATH.msgpack?max_items=N`` gives it to
    :func:`open_store`. A YAML or JSON file has no such bound (refused with one).
    """

    kind = "file"

    #: The item bound of a MessagePack file's document, read and written (see above).
    max_items: int = MAX_MSGPACK_ITEMS

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        seed: str | None = None,
        format: Format | None = None,
        max_items: int | None = None,
    ) -> None:
        self.path = os.path.abspath(os.fspath(path))
        self.url = "file://" + self.path
        self.seed = seed
        self.format: Format = format or format_for(self.path)
        if max_items is not None:
            max_items = msgpack_items_bound(max_items, file=self.path)
            if self.format != "msgpack":
                raise ConfigError(
                    f"max_items={max_items}: a bound of MessagePack flag files (.msgpack), "
                    f"and this one is {self.format}, which is held to none",
                    file=self.path,
                )
        self.max_items = max_items or MAX_MSGPACK_ITEMS
        # The state directory's flags.json (state_flags_file): its owner is judged.
        self.state_file = self.path in _STATE_FLAG_FILES
        self._thread_lock = threading.RLock()  # file locks are per process, not per thread
        _FILE_STORES.add(self)
        self._watchers: list[Callable[[FlagDocument], None]] = []
        self._cleaned = False
        # (bytes, origin, format, snapshot) of the last document decoded or written here:
        # a read of the same bytes (every change reads the file under the lock first, a
        # watcher reads it again) reuses that snapshot instead of decoding it again. Keyed
        # by the whole content, so another writer's change is always decoded; replaced in
        # one assignment, so a thread reads an old or a new entry, never a mix.
        self._decoded: tuple[bytes, str, str, Snapshot] | None = None
        # The YAML text of each flag last written here, for the next write to reuse.
        self._yaml = YamlEntries()

    # A flag file that is a symbolic link is written through it (the file it points to
    # is replaced, the link stays): its lock, version sidecar and temp files live beside
    # that file, so every path that reaches it (the link, the file itself) shares them.
    @property
    def lock_path(self) -> str:
        directory, base = os.path.split(os.path.realpath(self.path))
        return os.path.join(directory, f".{base}.lock")

    @property
    def meta_path(self) -> str:
        directory, base = os.path.split(os.path.realpath(self.path))
        return os.path.join(directory, f".{base}.version")

    # -- reading ---------------------------------------------------------------------

    def read_bytes(self) -> tuple[bytes, str]:
        """The stored bytes and the file they came from (the seed while none exists)."""
        for path in (self.path, self.seed):
            if path is None:
                continue
            try:
                if path == self.path and self.state_file:
                    return read_state_file(path), path
                return read_regular(path), path
            except FileNotFoundError:
                continue
            except ForeignStateFile as exc:
                raise ConfigError(
                    f"flag file refused: {exc.why}, so another user may have put it "
                    f"there; not read ({exc.fix})",
                    file=path,
                ) from None
            except OSError as exc:
                raise ConfigError(
                    f"cannot read flag file: {exc.strerror or exc}", file=path
                ) from None
        if self.seed is None and bundled_seed() is None:
            raise ConfigError(
                "flag file does not exist (in production the bundled demo flags are never "
                "served in its place: create the file, or point CFGCORE_FLAG_STORE at yours)",
                file=self.path,
            )
        # A store opened without a seed outside production (the command line's
        # export --flags FILE, validate --flags ...): nothing to say about production.
        raise ConfigError(
            "flag file does not exist (create it, or point CFGCORE_FLAG_STORE at yours)",
            file=self.path,
        )

    def read(self) -> FlagDocument:
        data, origin = self.read_bytes()
        return self.document(data, origin)

    def document(self, data: bytes, origin: str | None = None) -> FlagDocument:
        """Decode ``data`` (bytes of this store's file) into a document with its version."""
        origin = origin or self.path
        fmt = self.format_of(origin)
        cached = self._decoded
        if cached is not None and cached[1] == origin and cached[2] == fmt and cached[0] == data:
            snapshot = cached[3]
        else:
            snapshot = decode_snapshot(data, fmt, file=origin, max_items=self.max_items)
            self._decoded = (data, origin, fmt, snapshot)
        digest = checksum(data)
        if origin != self.path:
            return FlagDocument(snapshot, data, 0, digest, {}, origin)
        meta = self._read_meta()
        version = meta.get("version", 0)
        if type(version) is not int or not 0 <= version < 2**53:
            version, meta = 0, {}  # a damaged sidecar: as if the file were edited by hand
        writer = clean_writer(meta.get("writer"))
        if meta.get("checksum") != digest:  # edited by hand (or by an older cfgcore)
            version, writer = version + 1, {}
        return FlagDocument(snapshot, data, version, digest, writer, origin)

    def format_of(self, origin: str) -> Format:
        """The format of the bytes read from ``origin``: this store's file, or its seed."""
        return self.format if origin == self.path else format_for(origin)

    def _read_meta(self) -> dict[str, Any]:
        """The sidecar's record; {} when it is missing or damaged (then the file reads
        as edited by hand). Only a regular file of at most 1 MiB is read (a FIFO there
        blocked every read, a runaway file filled the memory), and JSON nested past
        Python's recursion limit is damage, not an error of the read."""
        try:
            # (the state directory's: another user's is not this store's record)
            read = read_state_file if self.state_file else read_regular
            meta = json.loads(read(self.meta_path, _MAX_META_BYTES))
        except (OSError, ValueError, RecursionError):
            return {}
        return meta if isinstance(meta, dict) else {}

    # -- writing ---------------------------------------------------------------------

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the store's exclusive lock (threads of this process, and other processes)."""
        with self._thread_lock:
            # Not readable by other users (0640, an old 0644 one narrowed): anyone who can
            # open a lock file can flock it read-only and hold every flag change up. A
            # writer waits at most LOCK_TIMEOUT and is then refused, naming the holder.
            lock = FileLock(self.lock_path, mode=0o640, timeout=LOCK_TIMEOUT, restrict=True)
            try:
                os.makedirs(os.path.dirname(self.path), exist_ok=True)
                lock.acquire()
            except OSError as exc:
                raise ConfigError(
                    f"cannot lock flag file: {exc.strerror or exc}", file=self.lock_path
                ) from None
            try:
                if not self._cleaned:
                    self._remove_stale_temps()
                yield
            finally:
                lock.release()

    def _remove_stale_temps(self) -> None:
        # Every writer of this file holds the lock while its temp file exists, so under
        # the lock any temp file left next to it belongs to a writer that was killed.
        # (a flag file that is a symlink is written beside the file it points to)
        directory, base = os.path.split(os.path.realpath(self.path))
        for pattern in (f".{base}.*.tmp", f".{os.path.basename(self.meta_path)}.*.tmp"):
            for tmp in glob.glob(os.path.join(glob.escape(directory), pattern)):
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
        self._cleaned = True

    def update(
        self, change: Change, *, check: Check | None = None, actor: str | None = None
    ) -> tuple[FlagDocument, FlagDocument]:
        with self.locked():
            old = self.read()  # the newest document on disk, read under the lock
            new_snap = change(old.snapshot)
            if check is not None:
                check(new_snap)
            if self.format == "yaml" and self._yaml.empty:
                self._seed_yaml(old)
            data = encode_snapshot(new_snap, self.format, file=self.path, entries=self._yaml)
            if self.format == "msgpack":
                # (a file no reader with this bound reads: the next change could not
                # even read it back)
                items = msgpack_items(data)
                if items > self.max_items:
                    raise ConfigError(
                        "not written: the flag document would hold "
                        + too_many_items(
                            items,
                            self.max_items,
                            "the store URL (file:///PATH.msgpack?max_items=N)",
                        ),
                        file=self.path,
                    )
            writer = writer_identity(actor)
            new = FlagDocument(new_snap, data, old.version + 1, checksum(data), writer, self.path)
            try:
                # (through a symlink: the file it points to, and the link stays)
                atomic_write(self.path, data, follow_symlinks=True)
                meta: dict[str, Any] = {
                    "version": new.version,
                    "checksum": new.checksum,
                    "writer": writer,
                }
                if self.format == "yaml":
                    record = self._yaml.record()
                    if record is not None:  # each flag's text, for the next process
                        meta["yaml"] = record
                write = write_state_file if self.state_file else atomic_write
                write(self.meta_path, json.dumps(meta).encode())
            except OSError as exc:
                raise ConfigError(
                    f"cannot write flag file: {exc.strerror or exc}", file=self.path
                ) from None
            # The next change reads these bytes back first: they are the snapshot this
            # process now serves (LiveFlags installs new.snapshot), not decoded again.
            self._decoded = (data, self.path, self.format, new_snap)
            return old, new

    def _seed_yaml(self, old: FlagDocument) -> None:
        """Before this process's first write of a YAML file: each flag's YAML text taken
        from the file read (``old``), when the sidecar says this cfgcore wrote it and
        describes its texts (``YamlEntries.seed`` judges the rest). Not when the file was
        edited since (another checksum), nor from the seed."""
        if old.origin != self.path or not old.data:
            return
        meta = self._read_meta()
        if meta.get("checksum") == old.checksum and "yaml" in meta:
            data = msgspec.to_builtins(old.snapshot)
            data.setdefault("flags", {})  # as encode_snapshot gives it to the dump
            self._yaml.seed(data, old.data, meta["yaml"])

    def watch(
        self,
        callback: Callable[[FlagDocument], None],
        *,
        on_error: Callable[[Exception], None] | None = None,
    ) -> Callable[[], None]:
        # The file is watched by whoever owns the reload loop (the configuration
        # manager's hot reload, or DynamicConfigurationManager.start_file_watching),
        # which calls LiveFlags.refresh(); nothing runs in the background here.
        self._watchers.append(callback)
        return lambda: self._watchers.remove(callback) if callback in self._watchers else None

    def close(self) -> None:
        self._watchers.clear()


# ------------------------------------------------------------------------------ opening


def _is_remote(url: str) -> bool:
    return url.split(":", 1)[0].lower() in {"redis", "rediss", "redis+sentinel", "unix"}


def open_store(
    url: str | os.PathLike[str] | None = None,
    *,
    default_path: str | None = None,
    seed: str | None = None,
) -> FlagStore:
    """A flag store for ``url``: a path or ``file://`` URL (:class:`FileFlagStore`),
    ``redis://``/``rediss://``/``redis+sentinel://`` (the Redis store). ``None`` means
    ``$CFGCORE_FLAG_STORE``, else ``default_path``. ``seed`` is the document a file store
    serves until its file exists. A ``file://`` URL takes one query parameter,
    ``max_items=N`` (a ``.msgpack`` file's item bound: :class:`FileFlagStore`); any other
    is refused, naming it (a path is a path: a ``?`` in it is part of the name)."""
    if url is None:
        url = os.environ.get("CFGCORE_FLAG_STORE") or default_path
    if url is None:
        raise ConfigError("no flag store given and CFGCORE_FLAG_STORE is not set")
    text = os.fspath(url)
    if _is_remote(text):
        try:
            import redis  # noqa: F401  # the extra: redis_store imports it only when used

            from cfgcore.runtime import redis_store  # type: ignore[attr-defined]
        except ImportError as exc:
            from cfgcore.runtime.redis_url import redact_url

            raise ConfigError(
                f"flag store {redact_url(text)!r} needs the Redis store "
                f"(pip install 'cfgcore[redis]'): {exc}"
            ) from None
        return redis_store.open_redis_store(text, seed=seed)  # type: ignore[no-any-return]
    max_items = None
    if text.startswith("file://"):
        parsed = urlparse(text)
        text = unquote(parsed.path)
        for key, value in parse_qsl(parsed.query, keep_blank_values=True):
            if key != "max_items":
                raise ConfigError(
                    f"unknown query parameter {key!r} (a file:// flag store takes max_items=)",
                    file=text,
                )
            max_items = msgpack_items_bound(value, file=text, text=True)
    elif "://" in text:
        raise ConfigError(f"unknown flag store URL scheme: {text.split('://')[0]!r}")
    return FileFlagStore(text, seed=seed, max_items=max_items)


# Every file store of the process, for the after-fork repair below.
_FILE_STORES: weakref.WeakSet[FileFlagStore] = weakref.WeakSet()


@after_fork_in_child
def _reset_file_stores_after_fork() -> None:
    # A thread of the parent may have held a store's thread lock at the fork: in the
    # child no thread will ever release it, and the child's next write would wait on
    # it forever. (The file lock that thread held is released by the parent.)
    for store in list(_FILE_STORES):
        store._thread_lock = threading.RLock()


def bundled_seed(environ: Mapping[str, str] | None = None) -> str | None:
    """The document a file store serves while its file does not exist: the bundled
    music-streaming catalog, except in production (``CONFIG_ENVIRONMENT`` or
    ``CFGCORE_ENVIRONMENT``), where a missing flag file is an error. A production
    service silently serving the demo catalog because of a typo in a path, or a
    deleted file, is the worst outcome (the configuration manager refuses the embedded
    demo configuration there for the same reason)."""
    from cfgcore.config.envfile import aliased
    from cfgcore.engine import bundled_flags_path

    env = aliased(os.environ if environ is None else environ, "ENVIRONMENT")
    if (env or "").strip().lower() == "production":
        return None
    return bundled_flags_path()


def document_lines(store: Any, doc: FlagDocument) -> contextlib.AbstractContextManager[None]:
    """:func:`~cfgcore.snapshot.problem_lines` for ``doc`` as ``store`` read it: the
    problems raised in the block (compiling it, judging it) name their lines in a file
    store's YAML or JSON text. Another store's document has no lines to give."""
    if getattr(store, "kind", None) != "file" or not doc.origin:
        return contextlib.nullcontext()
    return problem_lines(doc.data, store.format_of(doc.origin), doc.origin)


def decode_error(exc: Exception, origin: str) -> ConfigError:
    """A store's decoding failure as a :class:`ConfigError` naming ``origin``."""
    if isinstance(exc, ConfigError):
        return exc
    return SnapshotError(f"cannot decode flag document: {exc}", file=origin)
