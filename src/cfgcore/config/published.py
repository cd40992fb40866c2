"""Following a configuration published to a Redis store (``cfgcore publish``).

``ConfigurationManager(config_source="redis://...")`` serves configurations that
``cfgcore publish`` built and validated elsewhere, for fleets without a shared config
volume. Each published environment is written (atomically) into a private directory in
the state directory as ``ENV.json``, and the manager builds from that directory exactly
as from any other: the ``${VAR}`` references the publisher kept are resolved from this
machine's environment, the ``CFGCORE__`` layer and runtime updates apply, and the result
is validated before it goes live. A new version in the store is written there and
reloaded (events with ``source="redis"``); one that fails validation is refused, its
file is put back, and the last good configuration keeps serving. The directory doubles
as the cache: a process started while Redis is down serves what it last followed.

When the manager's ``flag_store`` is the same URL, a configuration ``cfgcore publish
--flags`` wrote together with its flags goes live together with exactly those flags
(one swap under the manager's lock), whichever of the two followers hears of the pair
first: the flag follower holds a flag document back while the configuration stored
with it is one this process has not taken yet, and the configuration's delivery brings
it (or, when the flags arrived first, reads it). A flag document written alone (a
flags-only write) and a configuration published without flags still go live alone.
A configuration this process refuses keeps its flags out too: the pair goes live whole
or not at all, and the last good pair keeps serving. The start reads the two as one pair
too (:meth:`PublishedSource.sync`), and a file of the shared directory that another
process of the host wrote goes live only with the flags stored beside it
(:meth:`PublishedSource.pair_for_build`).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import logging
import os
import shlex
import threading
import weakref
from typing import TYPE_CHECKING, Any

import msgspec

from cfgcore.errors import ConfigError, format_key_path
from cfgcore.runtime.atomicio import (
    ForeignStateFile,
    foreign_state_file,
    read_state_file,
    state_file_fix,
    write_state_file,
)
from cfgcore.runtime.events import deferred_delivery
from cfgcore.runtime.flagstore import default_state_dir

if TYPE_CHECKING:
    from cfgcore.config.manager import ConfigurationManager

__all__ = ["PublishedSource", "check_followed", "decode_temporal", "encode_temporal", "rendered"]

log = logging.getLogger("cfgcore.config")

# PublishedSource.stored_pair() for a flag document newer flags replaced in the store.
SUPERSEDED = 2**63


# How many times a start reads the configuration and the flags again when the store
# changed between them (a burst of publishes), before it takes them unconfirmed.
PAIR_ATTEMPTS = 5

_UNPAIRED: set[str] = set()  # the stores whose unpaired reads were logged (once each)


def _same(a: Any, b: Any) -> bool:
    """Whether two reads of a document found the same one (version and contents)."""
    return bool(a.version == b.version and a.checksum == b.checksum)


def _unpaired(shown: str, why: str) -> None:
    """Log once per store, at WARNING, that its configuration and flags were read
    without confirming they were stored together (docs/fleet.md)."""
    if shown in _UNPAIRED:
        log.debug("%s: configuration and flags read apart: %s", shown, why)
        return
    _UNPAIRED.add(shown)
    log.warning(
        "%s: configuration and flags read apart, not as one pair: %s; a publish landing "
        "between the two reads may be served mixed until the followers bring the next "
        "change (logged once)", shown, why,
    )  # fmt: skip


def _digest(data: bytes) -> bytes:
    """A file's digest as the builder records it in a snapshot's ``sources``."""
    return hashlib.blake2b(data, digest_size=16).digest()


def _pair_failed(shown: str, exc: Exception) -> None:
    """A pair read that failed: the documents are taken apart, as before pairs. A
    server that refuses the transaction (a proxy or cluster node without MULTI/EXEC)
    will refuse every one: said once at WARNING; a lost connection is transient."""
    import redis

    if isinstance(exc, redis.ResponseError):
        _unpaired(shown, f"the server refused the transaction ({exc})")
    else:
        log.debug("%s: pair read failed (%s: %s); read apart", shown, type(exc).__name__, exc)


class _Last:
    """The stored configuration stored_pair() read last, and its environment."""

    __slots__ = ("doc", "env")

    def __init__(self, env: str, doc: Any) -> None:
        self.env, self.doc = env, doc


class PublishedSource:
    """The published environments one manager follows, materialised in :attr:`dir`."""

    def __init__(self, manager: ConfigurationManager, url: str) -> None:
        from cfgcore.runtime.redis_store import parse_redis_url

        parsed = parse_redis_url(url)  # ConfigError for a bad URL, before anything else
        self.url = url
        self.shown = parsed.redacted()
        tag = hashlib.sha256(self.shown.encode()).hexdigest()[:12]
        self.dir = os.path.join(default_state_dir(), "fleet", f"config-{parsed.namespace}-{tag}")
        self._manager = weakref.ref(manager)
        self._stores: dict[str, Any] = {}
        self._lock = threading.Lock()
        # Pairing with the manager's flags (same URL only): the live flag set, the
        # highest configuration version taken per environment, and (config checksum,
        # checksum of the flags it carries).
        self._live: Any = None
        self._taken: dict[str, int] = {}
        self._carried: tuple[str, str | None] = ("", None)
        self._last: Any = None  # the stored configuration stored_pair() read last
        # Per environment, the digest (as the builder's sources) of the ENV.json this
        # process took: the directory is shared by the processes of a host following
        # the URL, and another one's follower may have replaced the file since
        # (pair_for_build).
        self._mine: dict[str, bytes] = {}
        self._wrote = b""  # the digest of the file _write() wrote last
        # Per environment, the stored version this process refused (None: a refusal of
        # no version of its own) and why, while the store holds it: health reports it
        # until a version goes live (refusal()).
        self._refused: dict[str, tuple[int | None, ConfigError]] = {}

    def after_fork_in_child(self) -> None:
        """In a forked child (the manager's repair): :meth:`sync` holds the lock while it
        reads Redis; a parent's thread holding it at the fork left the child's
        ``close()`` and its next environment waiting forever. An environment that thread
        had not finished is followed by the child when it is loaded there. (The stores'
        followers restart themselves in the child.)"""
        self._lock = threading.Lock()

    def path(self, env: str) -> str:
        return os.path.join(self.dir, f"{env}.json")

    def sync(self, env: str) -> None:
        """Make sure ``env`` is followed and its newest published version is on disk.
        When the manager's flags are this URL's flag document, the configuration is the
        one the store held with the flags the flag set serves (:meth:`_first_pair`)."""
        from cfgcore.runtime.redis_store import RedisConfigStore

        with self._lock:
            if env in self._stores:
                return
        live = self._paired_live()  # (opened outside the lock: its follower may ask us)
        with self._lock:
            if env in self._stores:
                return
            store = RedisConfigStore(self.url, env)
            try:
                doc = self._first_pair(store, live)
            except ConfigError as exc:
                if not self._followed_before(env):
                    store.close()
                    raise
                log.warning("%s: %s; serving the last followed %s", self.shown, exc, env)
            else:
                if doc.version == 0:
                    store.close()
                    raise ConfigError(
                        f"nothing published for environment {env!r} "
                        f"(cfgcore publish --store URL -e {shlex.quote(env)})",
                        file=self.shown,
                    )
                try:
                    self._write(env, doc)
                except ConfigError as exc:  # a value it cannot read back (decode_temporal)
                    if not self._followed_before(env):
                        store.close()
                        raise
                    log.warning("%s: %s; serving the last followed %s", self.shown, exc, env)
                else:
                    self._taken[env] = doc.version
                    self._mine[env] = self._wrote
            store.watch(
                lambda d: self._on_document(env, d),
                on_error=lambda exc: self._on_error(exc, env, store.refused_version),
            )
            self._stores[env] = store
        self._pair_flags()

    def _followed_before(self, env: str) -> bool:
        """Whether ``ENV.json`` holds what this host's processes followed last, to serve
        while the store cannot be: it exists, and no other user may have put it there
        (:func:`cfgcore.runtime.atomicio.foreign_state_file`: a state directory others
        may create files in); another user's is logged and not served."""
        path = self.path(env)
        if not os.path.exists(path):
            return False
        why = foreign_state_file(path)
        if why:
            log.warning(
                "%s: %s: last followed configuration refused: %s, so another user may "
                "have put it there; not served (%s)",
                self.shown, path, why, state_file_fix(why),
            )  # fmt: skip
            return False
        return True

    def _first_pair(self, store: Any, live: Any) -> Any:
        """The configuration to start ``store``'s environment on, read with the flags of
        ``live`` (the manager's flag set, when it is this URL's flag document) as the
        store held the two at one moment.

        Each document is read as always (``read()``: floors, epochs, the cache file when
        Redis is down); then one transaction (:meth:`RedisConfigStore.read_pair`)
        confirms that the store held exactly these two at one moment. A publish landing
        between the two reads (the configuration read, then the flags) made a process
        start on one publish's configuration with another's flags. Now, when the stored
        flags moved on, the flag set takes them (as its follower would a moment later;
        this configuration is not live yet) and the configuration is read again, until
        the two match. Without a pair to confirm (Redis unreachable, a server refusing
        MULTI, flags the flag set refuses), the configuration is taken as read, as
        before pairs, and a transaction refused is logged once."""
        if live is None:
            return store.read()
        for _ in range(PAIR_ATTEMPTS):
            doc = store.read()
            held = live.document
            if store.serving_cache or held is None:
                return doc
            try:
                cdoc, fdoc = store.read_pair(live.store, (doc, held))
            except Exception as exc:
                _pair_failed(self.shown, exc)
                return doc
            if _same(fdoc, held):
                if _same(cdoc, doc):
                    return doc  # (both as the store held them in that transaction)
                continue  # a configuration published alone since: read it again
            live.refresh("load")  # the flags stored now (refused: reported, kept out)
            if live.document is held or _same(live.document, held):
                return doc  # the flag set keeps its flags: nothing else to pair with
        _unpaired(self.shown, f"the store changed during each of {PAIR_ATTEMPTS} pair reads")
        return doc

    def _paired_live(self) -> Any:
        """The manager's live flag set when it follows this URL's flag document in
        Redis (opened now, so that the start can read both together), else None."""
        from cfgcore.runtime.redis_store import parse_redis_url

        manager = self._manager()
        if manager is None:
            return None
        url = manager._flags.url()
        if not isinstance(url, str) or "://" not in url:
            return None
        try:
            if parse_redis_url(url) != parse_redis_url(self.url):
                return None
        except ConfigError:
            return None
        live = manager._flags.live()
        if live is None or getattr(live.store, "kind", None) != "redis":
            return None
        return live

    def _pair_flags(self) -> None:
        """Follow the manager's flags as pairs when they are this URL's flag document."""
        if self._live is not None:
            return
        live = self._paired_live()
        if live is not None:
            self._live = live
            live.pair_with(self)

    # -- pairs: called by the live flag set (cfgcore.runtime.flags.LiveFlags) ------------

    def _flags_carried(self, doc: Any) -> str | None:
        """The checksum of the flag document published with ``doc`` (a configuration
        document): the one its ``flags`` field holds, as the flag store encodes it."""
        flags = getattr(doc.snapshot, "flags", None)
        if flags is None or self._live is None:
            return None
        if self._carried[0] != doc.checksum:
            try:
                data = self._live.store._encode(flags)
            except Exception:  # (not a document the flag store writes: no pair)
                return None
            self._carried = (doc.checksum, hashlib.sha256(data).hexdigest())
        return self._carried[1]

    def stored_pair(self, flags_doc: Any) -> int | None:
        """For the flag follower, outside the flag set's lock (it reads Redis): the
        version of the stored configuration of the manager's environment when it was
        published with ``flags_doc``; :data:`SUPERSEDED` when the store holds newer
        flags already (their own delivery follows: ``flags_doc`` never goes live
        beside a configuration it was not published with); None: not a pair."""
        manager = self._manager()
        if manager is None or not manager._snap.version or self._live is None:
            return None
        store = self._stores.get(manager.environment)
        if store is None or store.closed:
            return None
        try:  # (only what changed since is sent: the flags, the configuration last read)
            last = self._last if store.environment == getattr(self._last, "env", None) else None
            cdoc, fdoc = store.read_pair(self._live.store, (last and last.doc, flags_doc))
        except Exception as exc:  # unreachable, refused: the flags go live alone, as before
            _pair_failed(self.shown, exc)
            return None
        self._last = _Last(store.environment, cdoc)
        if fdoc.checksum != flags_doc.checksum:
            return SUPERSEDED if fdoc.version > flags_doc.version else None
        if self._flags_carried(cdoc) != flags_doc.checksum:
            return None
        return int(cdoc.version)

    def hold(self, flags_doc: Any, version: int) -> bool:
        """Whether to hold ``flags_doc`` back (asked under the flag set's lock): the
        configuration published with it, stored as ``version``, is not taken yet, and
        its delivery swaps both in. False: the flags go live now."""
        manager = self._manager()
        return manager is not None and self._taken.get(manager.environment, 0) < version

    def _pair_for(self, doc: Any) -> tuple[bool, tuple[Any, Any] | None]:
        """Whether configuration ``doc`` is still the stored one (False: a newer one
        is, whose delivery follows), and the flag document stored with it (with its
        compiled tables) when it is newer than the live flags: the pair the store held,
        read in one transaction. ConfigError when those flags are refused."""
        live = self._live
        store = self._stores.get(doc.snapshot.environment)
        if store is None:
            return True, None
        try:  # (only what changed is sent: not this configuration, nor the live flags)
            cdoc, fdoc = store.read_pair(live.store, (doc, live.document))
        except Exception as exc:  # unreachable or unreadable: the configuration alone
            _pair_failed(self.shown, exc)
            return True, None
        if cdoc.checksum != doc.checksum:
            return cdoc.version < doc.version, None
        current = live.document
        if current is not None and (
            fdoc.checksum == current.checksum or fdoc.version <= current.version
        ):
            return True, None
        try:
            return True, (fdoc, live.prepare(fdoc))
        except ConfigError as exc:
            live.reject(exc, "redis", fdoc.origin)
            raise

    def store(self, env: str) -> Any:
        """The store followed for ``env``, or None before it is synced."""
        return self._stores.get(env)

    def refusal(self, env: str) -> tuple[int | None, ConfigError] | None:
        """The published version of ``env`` this process refused (None when the refusal
        names no version: a store re-created under another epoch) and why, while the
        store holds it: the last good configuration serves meanwhile. None once a
        version goes live (a newer one, or the store back to the one served)."""
        return self._refused.get(env)

    def _vet(self, env: str, digests: set[Any]) -> None:
        """ConfigError unless ``ENV.json`` as built (``digests``: of the files read) is
        a file no other user may have put in the directory
        (:func:`cfgcore.runtime.atomicio.read_state_file`: the bytes of the very file
        judged): where they may (a state directory its group may write), a file of
        theirs renamed over it was taken by the next reload, and served while Redis was
        unreachable. One changed again as it was read is left to the next reload."""
        path = self.path(env)
        try:
            data = read_state_file(path)
        except ForeignStateFile as exc:
            raise ConfigError(
                f"{path}: configuration refused: {exc.why}, so another user may have put "
                f"it there; not taken, the live configuration keeps serving ({exc.fix})",
                file=self.shown,
            ) from None
        except OSError:
            return  # (gone, or unreadable: the build read what it read, and says why)
        if _digest(data) not in digests:
            raise ConfigError(
                f"{path} changed as it was read: not taken; the next reload reads it again",
                file=self.shown,
            )

    def _render(self, doc: Any) -> bytes:
        """``doc``'s tree as ``ENV.json`` holds it. ConfigError for a date or time value
        it cannot read back."""
        return rendered(doc.snapshot, self.shown)

    def pair_for_build(self, snap: Any, source: str) -> Any:
        """For the manager, under its lock, once ``snap`` (built from the directory by a
        reload, a runtime update, a profile switch) has passed validation: the flag
        document to swap in with it, with its compiled tables, or None (it goes live
        alone, as it always did).

        The directory is shared by every process of the host that follows the URL, so
        another process's follower may have written a newer ``ENV.json`` there that
        this process's own followers have not brought yet, with its flags: a hot reload
        of the directory activated that configuration beside the flags this process
        serves. A file this process took itself goes live alone, as before; any other
        is confirmed against the store in one transaction: when it is the stored
        configuration, it goes live with the flags stored beside it (one swap);
        otherwise (an older one, or one written while another publish landed) it is
        refused, ConfigError, and the live pair keeps serving until this process's
        follower brings the stored pair. When the pair cannot be read (Redis
        unreachable, the transaction refused) the file goes live alone, as before."""
        live = self._live
        env: str = snap.environment
        store = self._stores.get(env)
        if source == "redis" or store is None or not snap.sources:
            return None
        digests = {entry[1] for entry in snap.sources[0]}
        mine = self._mine.get(env)
        if mine is not None and mine in digests:
            return None  # taken by this process
        self._vet(env, digests)
        if live is None or mine is None:
            return None  # (started on the file left on disk: it goes live alone)
        try:
            cdoc, fdoc = store.read_pair(live.store, (None, live.document))
            rendered = _digest(self._render(cdoc))
        except Exception as exc:
            _pair_failed(self.shown, exc)
            return None
        if rendered not in digests:
            raise ConfigError(
                f"{self.path(env)} was written by another process of this host and is not "
                f"the configuration stored now (version {cdoc.version}): not taken without "
                f"the flags published with it; the live pair keeps serving until this "
                f"process's follower brings the stored one",
                file=self.shown,
                kind="incomplete",
            )
        self._mine[env] = rendered
        self._taken[env] = max(self._taken.get(env, 0), cdoc.version)
        current = live.document
        if current is not None and (
            fdoc.checksum == current.checksum or fdoc.version <= current.version
        ):
            return None
        try:
            return fdoc, live.prepare(fdoc)
        except ConfigError as exc:
            live.reject(exc, "redis", fdoc.origin)
            raise

    def _write(self, env: str, doc: Any) -> bytes | None:
        """Write ``doc``'s tree to ``ENV.json``; return what was there before.
        ConfigError (nothing written) for a date or time value it cannot read back."""
        data = self._render(doc)
        self._wrote = _digest(data)
        before = None
        # (a FIFO or device there is no earlier file; nor is another user's, which a
        # refusal would put back as this user's)
        with contextlib.suppress(OSError):
            before = read_state_file(self.path(env))
        os.makedirs(self.dir, exist_ok=True)
        write_state_file(self.path(env), data)
        return before

    def _on_document(self, env: str, doc: Any) -> None:
        manager = self._manager()
        if manager is None:
            return
        try:
            self._take(manager, env, doc)
        except ConfigError as exc:  # (the follower counts it and never delivers it again)
            self._refused[env] = (doc.version, exc)
            raise

    def _take(self, manager: ConfigurationManager, env: str, doc: Any) -> None:
        """Write ``doc`` (stored for ``env``) to the directory and reload from it;
        ConfigError when it is refused (the last good file put back)."""
        # Under the manager's change lock (re-entrant): no other change can build from
        # the new file until it is either live or put back. Listeners run once that
        # lock is released (the reload's own delivery section nests in this one); they
        # ran under it: a slow listener held up update_config() in every thread, and
        # one waiting for a thread that changes the configuration never returned. They
        # run on the bus's dispatcher thread, not this follower's: a slow listener holds
        # up no later published version.
        live = self._live
        # The flag set's lock too (after the manager's, the order every activation takes
        # them in): the flag follower's hold() and this delivery never interleave.
        paired = live._lock if live is not None else contextlib.nullcontext()
        with deferred_delivery(background=True), manager._lock, paired:
            if doc.version < self._taken.get(env, 0):
                return  # older than the one taken (read with flags that came first)
            pair = None
            if live is not None and manager.environment == env and manager._snap.version:
                stored, pair = self._pair_for(doc)  # ConfigError: its flags are refused
                if not stored:
                    return  # a newer configuration is stored: its delivery follows
            try:
                before = self._write(env, doc)
            except ConfigError as exc:  # nothing written: a value it cannot read back
                self._on_error(exc)
                raise
            if manager.environment != env:
                self._mine[env] = self._wrote
                self._refused.pop(env, None)
                return  # on disk for when that environment is loaded
            # Swapped in with the configuration (cfgcore.config.reload): one swap.
            manager._paired_flags = pair
            try:
                accepted = manager.reload(source="redis")
            except ConfigError:
                accepted = False
            finally:
                manager._paired_flags = None
            if not accepted:
                # Refused (the manager audited it): put the last good file back, so a
                # later rebuild (update_config, a profile switch) starts from it. Its
                # flags stay out with it (the pair goes live whole or not at all).
                if before is not None:
                    write_state_file(self.path(env), before)
                raise manager.last_error or ConfigError("refused", file=self.shown)
            self._taken[env] = max(self._taken.get(env, 0), doc.version)
            self._mine[env] = self._wrote
            self._refused.pop(env, None)
            if pair is not None and live is not None:
                # The configuration was unchanged (nothing to swap with): flags alone.
                live.install(pair[0], pair[1], "redis", followed=True)

    def _on_error(self, exc: Exception, env: str | None = None, version: int | None = None) -> None:
        """A document of ``env`` the store refused (checksum, decoding, depth, a
        version older than the one served): audited, and reported by health while the
        store holds it (``version``: the one refused, when it has one)."""
        manager = self._manager()
        if manager is not None:
            error = exc if isinstance(exc, ConfigError) else ConfigError(str(exc), file=self.shown)
            if env is not None:
                self._refused[env] = (version, error)
            manager._error_event(error, "redis")

    def close(self) -> None:
        live, self._live = self._live, None
        if live is not None:
            live.unpair(self)
        with self._lock:
            for store in self._stores.values():
                store.close()
            self._stores.clear()


def rendered(published: Any, origin: str) -> bytes:
    """The tree of ``published`` (a :class:`~cfgcore.runtime.redis_store.PublishedConfig`)
    as a follower writes it to ``ENV.json`` before building from it; ConfigError naming
    ``origin`` and the key path for a date or time value it cannot read back (the
    follower refuses such a document)."""
    from cfgcore.config.files import typed_json

    # Dates and times back to their types, in a copy that keeps them (files.py).
    return typed_json(decode_temporal(published.config, origin))


def check_followed(
    published: Any,
    environment: str,
    origin: str,
    environ: Any = None,
    *,
    env_overrides: bool = True,
) -> None:
    """Raise ConfigError when a follower would refuse ``published`` (a
    :class:`~cfgcore.runtime.redis_store.PublishedConfig` of ``environment``) at its
    start: its tree written as ``ENV.json`` (:func:`rendered`) into a directory of its
    own, built from it as a follower's manager builds its directory (no profile; the
    ``CFGCORE__`` variables, ``${VAR}`` references and secrets resolved from
    ``environ``, default the process environment; ``env_overrides=False`` leaves the
    ``CFGCORE__`` variables out, as ``cfgcore publish`` does) and validated. A
    publisher's own write passes it before it is cached
    (:meth:`~cfgcore.runtime.redis_store.RedisConfigStore._followed`): the cache file is
    what a process of the host serves when Redis is unreachable at its start, so it
    never holds a configuration such a process would refuse. A follower with another
    environment (a variable this one lacks, its own ``CFGCORE__`` values, a profile) can
    still refuse what passes here; that is its own to report."""
    import tempfile

    from cfgcore.config import checks
    from cfgcore.config.builder import ConfigBuilder
    from cfgcore.config.state import EMPTY
    from cfgcore.errors import ConfigValidationError

    data = rendered(published, origin)
    try:
        with tempfile.TemporaryDirectory(prefix="cfgcore-as-followed-") as directory:
            with open(os.path.join(directory, f"{environment}.json"), "wb") as fh:
                fh.write(data)
            builder = ConfigBuilder(
                directory, env_prefix="CFGCORE", transforms=("env_var_substitution",),
                environ=environ,
            )  # fmt: skip
            builder.env_overrides = env_overrides
            snap, _ = builder.build(
                environment, None, None, None, EMPTY, with_flags=False, fingerprint=()
            )
            # (judged against itself: the publisher's own build logged its typos already;
            # while the file is there, which a problem's line is read from)
            problems = checks.blocking_problems(
                snap.config, environment, snap, snap.layers, snap.refs
            )
    except OSError as exc:  # (no temporary directory, a full disk: not known good)
        raise ConfigError(f"cannot build it as a follower does: {exc}", file=origin) from None
    if problems:
        raise ConfigValidationError(problems)


# Dates and times in a published document. A configuration travels to followers as
# msgpack, which has no date, datetime or time of its own (msgspec's timestamp
# extension keeps the instant but not the offset, and naive values become text), and
# the tree was once flattened to text: a follower's ``get("d")`` returned "2024-05-01"
# where the publisher's returned a date. Each such leaf now travels as a msgpack
# extension value (code below, payload its ISO 8601 text, offset kept as written), which
# no value of a YAML, JSON or TOML file can be mistaken for. A document published by an
# earlier release holds text there and is served as text, as before. A follower of an
# earlier release cannot read the extension values: upgrade followers first.
_EXT_KINDS: dict[int, Any] = {1: _dt.date, 2: _dt.datetime, 3: _dt.time}


def encode_temporal(tree: Any) -> Any:
    """``tree`` (plain data) with every date, datetime and time leaf replaced by its
    msgpack extension value, for :class:`PublishedConfig`'s ``config``."""
    if isinstance(tree, dict):
        return {k: encode_temporal(v) for k, v in tree.items()}
    if isinstance(tree, list | tuple):
        return [encode_temporal(v) for v in tree]
    if isinstance(tree, _dt.date | _dt.time):
        code = 2 if isinstance(tree, _dt.datetime) else 1 if isinstance(tree, _dt.date) else 3
        return msgspec.msgpack.Ext(code, tree.isoformat().encode())
    return tree


def decode_temporal(tree: Any, origin: str, path: tuple[Any, ...] = ()) -> Any:
    """``tree`` as the publisher served it: each extension value back to its date,
    datetime or time. ConfigError naming ``origin`` and the key path for one that is
    not (another code, or a payload that is no ISO 8601 text of its kind)."""
    if isinstance(tree, dict):
        return {k: decode_temporal(v, origin, (*path, k)) for k, v in tree.items()}
    if isinstance(tree, list):
        return [decode_temporal(v, origin, (*path, i)) for i, v in enumerate(tree)]
    if isinstance(tree, msgspec.msgpack.Ext):
        kind = _EXT_KINDS.get(tree.code)
        try:
            if kind is None:
                raise ValueError(f"unknown extension code {tree.code}")
            value = kind.fromisoformat(bytes(tree.data).decode())
            # date.fromisoformat would take a datetime's text in some versions: exact type
            if type(value) is not kind:
                raise ValueError(f"not a {kind.__name__}")
        except (ValueError, UnicodeDecodeError) as exc:
            from cfgcore.errors import Problem

            where = format_key_path(path)
            raise ConfigError(
                [Problem(where, f"published value is not a date or time ({exc})", file=origin)]
            ) from None
        return value
    return tree
