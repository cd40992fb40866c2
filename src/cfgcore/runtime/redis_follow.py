"""The follower half of the Redis flag store.

One thread per store subscribes to the change channel, re-reads the key on every
(re)connect and every ``poll`` seconds (pub/sub loses messages while disconnected),
never moves to an older version, and hands each newer document to the store's
watchers. Reconnects back off exponentially up to ``backoff_max``; after ``fork()`` the
child restarts its own follower.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import random
import threading
import time
from collections.abc import Mapping
from typing import Any

from cfgcore.errors import ConfigError
from cfgcore.runtime.flagstore import FlagDocument

__all__ = [
    "BACKOFF_MAX",
    "BACKOFF_MIN",
    "CACHE_RETRY_SECONDS",
    "JITTER",
    "MAX_COALESCED",
    "MAX_VERSION",
    "RedisFollower",
    "stored_epoch",
    "stored_version",
]

log = logging.getLogger("cfgcore.fleet")
# Backoff jitter (reconnects here, write retries in redis_store) from the system's
# entropy, not the random module's shared state: a process's own seeded random (a
# simulation, a test framework checking its generators) must not see its sequence move
# because Redis reconnected in a background thread.
JITTER = random.SystemRandom()

BACKOFF_MIN = 0.05  # seconds; doubled per failed reconnect up to backoff_max
BACKOFF_MAX = 5.0
# After a failed cache write, how long polls leave the cache file alone before they
# download the document to write it again (each new version is written at once).
CACHE_RETRY_SECONDS = 300.0
# Channel messages taken together for one read of the key (a burst of writes); more are
# left for the next read, so a channel flooded without end still has the key read.
MAX_COALESCED = 1000


# The write script counts versions in Lua numbers (doubles): exact below 2**53, where
# "+ 1" stops counting; it never writes a larger version (nor 2**53 itself, which its
# checks refuse: a store there could never be written again). A larger stored version
# was not written by cfgcore, so it is refused as corrupt.
MAX_VERSION = 2**53 - 1


def stored_version(raw: Any, origin: str, where: str = "") -> int:
    """A document version read back (the Redis field, the cache file) as an int
    in ``0..MAX_VERSION`` (2**53 - 1); ConfigError naming ``origin`` otherwise (and
    ``where``, the key and field it was read from, when given).

    The one rule for a stored version, which the write scripts read by too
    (``version_of`` in redis_store's Lua helpers): ASCII digits only (leading zeros
    allowed), nothing else: not ``1.0``, ``0x2``, `` 3``, ``+3`` or ``1e3``, which Lua's
    ``tonumber`` alone would take."""
    suffix = f" ({where})" if where else ""
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("ascii")
        except UnicodeDecodeError:
            raw = repr(raw)
    # (4,000 digits: within int()'s limit; the range check below refuses it anyway)
    if isinstance(raw, str) and raw.isascii() and raw.isdigit() and len(raw) <= 4000:
        raw = int(raw)
    if type(raw) is not int:
        raise ConfigError(
            f"stored version {str(raw)[:40]!r} is not a number (ASCII digits only){suffix}",
            file=origin,
        )
    if not 0 <= raw <= MAX_VERSION:
        shown = str(raw) if raw.bit_length() < 200 else f"of {raw.bit_length()} bits"
        raise ConfigError(
            f"stored version {shown} is out of range (0 to 2**53 - 1){suffix}", file=origin
        )
    return raw


def stored_epoch(raw: Any, version: int, origin: str) -> str | None:
    """A stored document's epoch: None for none (a release before epochs wrote it), else
    its id (16 to 64 lowercase hex digits); ConfigError for anything else (cfgcore did
    not write it: the document is refused like a corrupt one)."""
    if raw is None or raw in (b"", ""):
        return None
    if isinstance(raw, bytes):
        raw = raw.decode("latin-1")
    if isinstance(raw, str) and 16 <= len(raw) <= 64 and all(c in _HEX for c in raw):
        return raw
    raise ConfigError(
        f"version {version}: the stored epoch {str(raw)[:20]!r} is not an epoch id "
        "(not written by cfgcore)",
        file=origin,
    )


_HEX = frozenset("0123456789abcdef")
# The problems a store's last_error says (RedisFollower._raise_problem): the kind each
# replaces, and those that end when a read from Redis succeeds.
_REPLACES = {"write": "rejection", "rejection": "write"}
_OUTAGES = ("outage", "follow")


class RedisFollower:
    """Mixin of :class:`~cfgcore.runtime.redis_store.RedisFlagStore`: the follower thread
    (the store provides the connection, the decoding and the cache file)."""

    url: str
    key: str
    _document: str
    channel: str
    poll: float
    backoff_max: float
    connected: bool
    serving_cache: bool
    last_contact: float
    confirmed_at: float
    lost_since: float | None
    _problems: dict[str, str]
    _problems_lock: Any
    _stops_judging: Any
    _stops_found: Any
    _rejection_basis: tuple[Any, Any]
    stats: dict[str, int]
    _seen: int
    _served_sum: str
    _epoch: str | None
    _lock: Any
    _thread: threading.Thread | None
    _pubsub: Any
    _callbacks: list[Any]
    _closed: threading.Event
    _follow_client: Any
    _cached: Any
    _cache_failed: tuple[int, float] | None
    cache_path: str | None
    floor_key: str
    min_version: int
    _reported: Any
    _refused: Any
    _failing: Any
    _not_served: tuple[int, str] | None
    _unserved: tuple[int, str] | None
    _poll_checks: list[Any]

    def _from_raw(self, raw: list[Any]) -> FlagDocument:
        raise NotImplementedError

    def _read_raw(
        self,
        client: Any,
        unless: int | None = None,
        epoch: str | None = None,
        refused: tuple[bytes, ...] | None = None,
        served: str = "",
    ) -> list[Any]:
        raise NotImplementedError

    def _saw(self, doc: FlagDocument) -> None:
        raise NotImplementedError

    @property
    def last_error(self) -> str | None:
        """What is wrong with the store now, or None: of the problems still standing
        (:meth:`_raise_problem`), the one reported last."""
        return next(reversed(self._problems.values()), None)

    def _raise_problem(self, kind: str, message: str) -> str:
        """Report ``message`` (returned), a problem of ``kind``; ``last_error`` says it.
        Callers count the problem in ``stats`` only after this: a reader that sees the
        count (a monitor, a script waiting for it) finds ``last_error`` saying it.

        - "write": a write or publish of this process failed; until a later one succeeds
          or a document is read from Redis (``_clear_problem("write")``);
        - "rejection": a document, a write or a stop register entry refused, anything
          else reported once: until another problem replaces it (a write's failure and a
          rejection replace each other);
        - "outage" (a read) and "follow" (the follower) could not reach Redis: said over
          the others until a read from Redis succeeds (:meth:`_clear_problem`)."""
        with self._problems_lock:
            gone = (kind, _REPLACES.get(kind))
            problems = {k: v for k, v in self._problems.items() if k not in gone}
            problems[kind] = message
            if kind == "rejection":  # what it rests on, for when an outage said over it ends
                self._rejection_basis = (self._reported, self._failing)
            self._problems = problems  # (replaced whole: last_error reads it unlocked)
        return message

    def _clear_problem(self, *kinds: str, only: str | None = None) -> None:
        """The problems of ``kinds`` are over ("outage", "follow": a read from Redis,
        the follower's, succeeded). When an outage said last ends, the follower's lost
        connection is said again while it reconnects (it is not followed); else a
        rejection said before the outage is said again if what it reported still stands
        (the document refused, the listener's failure retried), or nothing is.
        ``only``: clear them only while the message standing is this one (checked under
        the same lock: a problem another thread reported meanwhile stands)."""
        with self._problems_lock:
            if only is not None and not any(self._problems.get(k) is only for k in kinds):
                return
            problems = dict(self._problems)
            for kind in kinds:
                said = next(reversed(problems), None) == kind
                if problems.pop(kind, None) is None or not said or kind not in _OUTAGES:
                    continue
                if "follow" in problems:
                    problems["follow"] = problems.pop("follow")
                elif next(reversed(problems), None) == "rejection":
                    reported, failing = self._rejection_basis
                    if not (
                        (reported is not None and reported == self._reported)
                        or (failing is not None and failing == self._failing)
                    ):
                        del problems["rejection"]
            self._problems = problems

    @staticmethod
    def _foreign(
        version: int, epoch: str | None, forced: bool, known: str | None, served: int = 0
    ) -> bool:
        raise NotImplementedError

    def _recreated_message(
        self,
        version: int,
        epoch: str | None,
        known: str,
        served: int,
        by_fleet: bool = False,
        forced: bool = False,
    ) -> str:
        raise NotImplementedError

    @staticmethod
    def _fleet_epoch(raw: list[Any]) -> str | None:
        raise NotImplementedError

    def _write_cache(self, doc: FlagDocument) -> None:
        raise NotImplementedError

    @staticmethod
    def _primary_moved(client: Any) -> bool:
        raise NotImplementedError

    def _mark_lost(self, client: Any, version: int, epoch: str | None = None) -> None:
        raise NotImplementedError

    def _lost_message(self, version: int) -> str:
        raise NotImplementedError

    def _below_pin_message(self, version: int, cached: int | None = None) -> str:
        raise NotImplementedError

    def _wrong_type(self, raw: list[Any]) -> str | None:
        raise NotImplementedError

    def _wrong_type_message(self, kind: str) -> str:
        raise NotImplementedError

    @staticmethod
    def _no_credentials(exc: BaseException) -> bool:
        raise NotImplementedError

    def _tls_problem(self, exc: BaseException) -> str | None:
        raise NotImplementedError

    @property
    def version(self) -> int:
        """The highest version this process has read, written or been delivered."""
        return self._seen

    @property
    def refused_version(self) -> int | None:
        """The version of the stored document refused last, while that refusal stands
        (the store holds no other since); None without one, or for a refusal of no
        version of its own (a store re-created under another epoch)."""
        reported = self._reported
        return reported[0] if reported is not None and reported[0] > 0 else None

    # -- the follower --------------------------------------------------------------

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None and self._thread.is_alive() or self._closed.is_set():
                return
            self._thread = threading.Thread(
                target=self._follow, name=f"cfgcore-fleet {self.url}", daemon=True
            )
            self._thread.start()

    def _follow(self) -> None:
        import redis

        from cfgcore.runtime.events import mark_service_thread

        mark_service_thread()  # listeners of a followed version run here

        delay = BACKOFF_MIN
        down_since: float | None = None
        # When the connection last came up (None: it is down). The backoff starts over
        # only after a connection that stayed up for backoff_max: one dropped at once
        # again and again (a subscriber whose output buffer a flood of the channel
        # fills, a proxy that accepts and closes) reconnected every 50 ms, a storm of
        # reconnects and reads from every process while it lasted, each one logged.
        up_since: float | None = None
        while not self._closed.is_set():
            try:
                pubsub = self._follow_client.pubsub()
                self._pubsub = pubsub
                # Subscribe first, then read: a write landing in between is seen by one
                # or the other, never by neither. The server's answer to SUBSCRIBE is
                # awaited: a refusal (a user without channel permissions) arrives as a
                # reply, not as an exception of subscribe(), and must not pass for a
                # connection for the moment until the next message is read (that read
                # would end the follower's problem, then raise it again at each retry).
                pubsub.subscribe(self.channel)
                self._await_subscribed(pubsub)
                self._poll_once()
                if down_since is not None:
                    log.warning(
                        "%s: reconnected after %.1f s; at version %d",
                        self.url, time.monotonic() - down_since, self._seen,
                    )  # fmt: skip
                down_since, self.connected = None, True
                up_since = time.monotonic()
                self.lost_since = None
                next_poll = time.monotonic() + self.poll
                while not self._closed.is_set():
                    msg = _published(pubsub.get_message(timeout=min(1.0, self.poll)))
                    if msg is not None:
                        # Coalesce a burst: one key read for what is already queued, up
                        # to MAX_COALESCED messages (whoever can publish on the channel
                        # could otherwise keep it from ever being empty, and so keep
                        # this follower from reading the key).
                        newest = _announced(msg)
                        for _ in range(MAX_COALESCED):
                            if (more := pubsub.get_message(timeout=0)) is None:
                                break
                            if (more := _published(more)) is not None:
                                newest = max(newest, _announced(more))
                        # Also for this process's own write (already seen): the cache
                        # file gets it now rather than at the next poll.
                        uncached = self.cache_path is not None and newest > self._cached
                        if newest > self._seen or newest < 0 or uncached or self._unserved:
                            self._catch_up()
                    # On time whatever arrives: a channel never quiet for a second (a
                    # steady stream of messages) must not put polls off.
                    if time.monotonic() >= next_poll:
                        if self._primary_moved(self._follow_client):
                            raise redis.ConnectionError("the primary moved (failover)")
                        self._poll_once()
                        next_poll = time.monotonic() + self.poll
            except (redis.RedisError, OSError, ValueError) as exc:
                # ValueError: a socket closed under select() by close()
                if self._closed.is_set():
                    break
                self.connected = False
                if up_since is not None and time.monotonic() - up_since >= self.backoff_max:
                    delay = BACKOFF_MIN  # (it stayed up: a new outage backs off anew)
                up_since = None
                # (Credentials refused at a reconnect: a password rotated on the
                # server; or none to send: a password file missing or unreadable.
                # Said as such, in health and to a provider, not "lost".)
                lost = (
                    "Redis refused this store's credentials"
                    if isinstance(exc, redis.AuthenticationError)
                    else "no credentials for Redis"
                    if self._no_credentials(exc)
                    else self._tls_problem(exc) or "connection lost"
                )
                if down_since is None or (
                    lost != "connection lost" and not str(self.last_error).startswith(lost)
                ):
                    if down_since is None:
                        down_since = time.monotonic()
                        self.lost_since = down_since  # the store is not followed from now
                    self._raise_problem("follow", f"{lost}: {exc}")
                    log.warning(
                        "%s: %s (%s); serving version %d, reconnecting",
                        self.url, lost, exc, self._seen,
                    )  # fmt: skip
                self.stats["reconnects"] += 1  # (once said: see _raise_problem)
                self._closed.wait(delay * JITTER.uniform(0.8, 1.2))
                delay = min(delay * 2, self.backoff_max)
            except Exception:  # a bug must not silently end following
                log.exception("%s: follower error; restarting it", self.url)
                self._closed.wait(delay)
                delay = min(delay * 2, self.backoff_max)
            finally:
                with contextlib.suppress(Exception):
                    self._pubsub.close()
        self.connected = False

    def _await_subscribed(self, pubsub: Any) -> None:
        """Wait for the server to confirm the subscription just sent; its refusal is
        raised (redis-py raises the error reply when it is read), as is silence for
        longer than the connection's socket timeout (a redis.TimeoutError)."""
        import redis

        kwargs = getattr(self._follow_client.connection_pool, "connection_kwargs", {})
        deadline = time.monotonic() + (kwargs.get("socket_timeout") or 5.0)
        while not self._closed.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                raise redis.TimeoutError("Redis did not confirm the subscription")
            msg = pubsub.get_message(timeout=min(1.0, left))
            if msg is not None and msg.get("type") == "subscribe":
                return

    def _poll_once(self) -> None:
        """What every poll (and every (re)connect) does: read the key (:meth:`_catch_up`),
        then run the checks registered with ``add_poll_check`` (the flag set's: this
        host's own entries of the guardrail stop register, written back where the
        register lost them). A check that fails is logged; following goes on."""
        self._catch_up()
        for check in list(self._poll_checks):
            try:
                check()
            except Exception:
                log.exception("%s: a poll check failed", self.url)

    def _catch_up(self) -> None:
        """Read the key; deliver the document if it is newer than ``_seen`` and good."""
        # What we served before reading: a write of this process landing between the read
        # and the comparison must not look like the store going backwards.
        with self._lock:
            current, known, served = self._seen, self._epoch, self._served_sum
            unserved = self._unserved
        # The document is not sent again when the store still holds the version served,
        # of the same epoch (unless the cache file still needs it): a poll costs a few
        # bytes. (Nor while a problem is standing: the document back as it was ends it.)
        # (A start document the flag set refused is kept out of the cache file on
        # purpose: served_instead. Waiting for it there would download it at every poll.)
        not_served = self._not_served
        # (A cache file that cannot be written, a read-only state directory, is retried
        # with the next version or after CACHE_RETRY_SECONDS, not at every poll.)
        unwritten = self._cache_failed
        cache_current = (
            self.cache_path is None
            or self._cached >= current
            or (not_served is not None and not_served[0] == current)
            or (
                unwritten is not None
                and unwritten[0] >= current
                and time.monotonic() - unwritten[1] < CACHE_RETRY_SECONDS
            )
        )
        quick = current and cache_current and self._reported is None and unserved is None
        # Nor is a document this process refuses sent again while it stays there: a
        # refusal is decided once per document, not downloaded again at every poll.
        refusal = self._refused
        if refusal is not None and (self._reported is None or refusal[0] != self._reported):
            refusal = None  # (of a report that no longer stands)
        raw = self._read_raw(
            self._follow_client,
            current if quick else None,
            known,
            refusal[1] if refusal is not None else None,
            served if quick else "",
        )
        self.serving_cache, self.last_contact = False, time.time()
        self.confirmed_at = time.monotonic()  # for ages: immune to wall-clock steps
        self._clear_problem("outage", "follow")
        if len(raw) > 6 and raw[6] == b"unchanged":
            return  # the version this process serves: confirmed current
        if len(raw) > 6 and raw[6] == b"refused" and refusal is not None:
            if refusal[2]:  # as when it was read: the floor rises to what serves
                self._mark_lost(self._follow_client, current, refusal[3])
            return  # the document refused before, still there: reported once
        kind = self._wrong_type(raw)
        if kind is not None:
            # Another program replaced the key (a string, a list...): Redis is fine,
            # the document is not. Refused (reported once), and the floor rises to
            # what serves, so that the repair is numbered above it.
            self._mark_lost(self._follow_client, current, known)
            if self._reported != (-1, f"type {kind}"):
                self._reject(
                    -1, f"type {kind}", ConfigError(self._wrong_type_message(kind), file=self.url)
                )
            return
        try:
            version = stored_version(raw[0], self.url) if raw[0] is not None else 0
        except ConfigError:
            version = -1  # unreadable or out of range: rejected below, with the reason
            # A repair (cfgcore publish, forced) must be numbered above what serves.
            self._mark_lost(self._follow_client, current, known)
        fleet = self._fleet_epoch(raw)  # the epoch the fleet served, as the floor records
        if (current and known is not None or fleet is not None) and version > 0 and raw[0]:
            try:
                epoch = stored_epoch(raw[7], version, self.url)
            except ConfigError:
                pass  # refused below as a corrupt document
            else:
                if current and self._foreign(version, epoch, raw[8] == 1, known, current):
                    self._recreated(version, current, epoch, known or "", forced=raw[8] == 1)
                    self._refusing(raw, floor=True, epoch=known)
                    return
                if self._foreign(version, epoch, False, fleet):
                    # (also for the process that wrote it, or one that took it before
                    # the fleet noticed: what they serve is not recorded beside the floor;
                    # the read script sends no record for a forced document above it)
                    self._recreated(
                        version, current, epoch, fleet or "", by_fleet=True, forced=raw[8] == 1
                    )
                    self._refusing(raw, floor=True, by_fleet=True)
                    return
        checksum = raw[1].decode(errors="replace") if isinstance(raw[1], bytes) else ""
        # Another document under the version served, of the same epoch: a failover lost
        # the write that took the number first (this process served it) and a writer
        # that had not seen it took the number again. Processes started since serve the
        # store's: so does this one (delivered below like a newer version), or the fleet
        # stays split until the next write.
        reused = 0 < version == current and bool(served) and checksum not in ("", served)
        # This process's own write, reported failed (its replicas did not acknowledge
        # it) yet stored: served here too, as everywhere else (see _stored_unserved).
        if unserved is not None and (version, checksum) == unserved and version == current:
            reused = True
        elif unserved is not None:
            with self._lock:  # (the store holds another one now: nothing to deliver)
                if self._unserved == unserved:
                    self._unserved = None
        if version == current and version > self._cached and self._callbacks and not reused:
            # The document this process started from (read() before watch()) is live:
            # make it the cache file's too, unless the flag set refused it and serves
            # the cache file's (served_instead).
            with contextlib.suppress(ConfigError):
                doc = self._from_raw(raw)
                if self._not_served != (doc.version, doc.checksum):
                    self._write_cache(doc)
        if 0 <= version <= current and not reused:
            if version < current:
                self._went_backwards(version, current, empty=raw[0] is None, epoch=known)
                self._refusing(raw, floor=True, epoch=known)
            elif self._reported is not None and version:
                self._back_to_current(raw)
            return
        if self._reported == (version, checksum):
            refused = self._refused
            if refused is None or refused[1] == _identity(raw):
                self._refusing(raw, floor=version < 0)
                return  # rejected before: reported once, not on every poll
            # (the same version and checksum, but other data, or another record beside
            # the floor: judged again)
        if 0 < version < self.min_version:
            # Below the URL's pin, newer than what serves: nothing serves yet (``cfgcore
            # watch --store`` started on such a store; a start is refused instead). Not
            # delivered (it took it as the store's flags), reported once while it stays.
            # (-1, a version unreadable or out of range, is refused below with its reason.)
            self._reject(
                version, checksum, ConfigError(self._below_pin_message(version), file=self.url)
            )
            self._refusing(raw)
            return
        # (A write failing while the listeners take this document, the retirement of a
        # test it drops, fails after this read: only an earlier failure is over.)
        earlier = self._problems.get("write")
        try:
            doc = self._from_raw(raw)
        except ConfigError as exc:
            self._reject(version, checksum, exc)
            self._refusing(raw, floor=version < 0)  # (unreadable: the floor rises)
            return
        with self._lock:
            callbacks = list(self._callbacks)
        failed: Exception | None = None
        for callback, _ in callbacks:
            try:
                callback(doc)
            except ConfigError as exc:
                # The listener refused it (it does not compile) and has reported it
                # itself (the live flag set audits it): count it, never deliver it again.
                self._reported = (version, checksum)
                self._refusing(raw)
                self._raise_problem("rejection", str(exc))
                self.stats["rejected"] += 1
                log.debug("version %d refused by a listener: %s", version, exc)
                return
            except Exception as exc:
                failed = exc
                if self._failing != (version, checksum):  # logged once, retried every poll
                    log.exception("%s: flag store listener failed on version %d", self.url, version)
        if failed is not None:
            # Not applied (a bug, MemoryError): the version is not marked seen, so the next
            # poll or announcement delivers it again (a listener that did apply it sees
            # the same checksum and does nothing), and health shows that this process
            # serves an older version than the store's instead of claiming the newer one.
            self._failing = (version, checksum)
            self._raise_problem("rejection", f"version {version} not applied, retrying: {failed!r}")
            self.stats["failed"] += 1
            return
        if self._failing is not None:
            self._failing = None
            self._clear_problem("rejection")
        if earlier is not None:
            self._clear_problem("write", only=earlier)
        self._write_cache(doc)  # first: once ``version`` says so, the cache has it too
        with self._lock:
            self._saw(doc)
            if self._unserved is not None and self._unserved[0] <= doc.version:
                self._unserved = None
        self.stats["accepted"] += 1
        if self._reported is not None:  # a refused document is over: a later one serves
            self._clear_problem("rejection")
        # older versions are ignored anyway; a new loss is news
        self._reported = self._refused = None

    def _refusing(
        self,
        raw: list[Any],
        *,
        floor: bool = False,
        epoch: str | None = None,
        by_fleet: bool = False,
    ) -> None:
        """The stored document in ``raw`` is refused (the report now standing says why):
        until the store holds another (another version, epoch, checksum or forced mark),
        polls are answered without it. ``floor``: each such poll raises the floor to the
        version served (recording ``epoch`` beside it), as reading it again would."""

        self._refused = (self._reported, _identity(raw, by_fleet), floor, epoch)

    def _back_to_current(self, raw: list[Any]) -> None:
        """The store holds the version served again after a reported problem (the key
        restored, a refused version rolled back by hand): the problem is over. The
        document goes to the listeners, which end a standing refusal when it is the
        one they serve (and apply it, like any other, when it is not)."""
        try:
            doc = self._from_raw(raw)
        except ConfigError:
            self._refusing(raw)  # not read again while it stays so
            return  # still broken: already reported
        log.warning("%s: the store holds version %d again", self.url, doc.version)
        self._reported = self._refused = None
        self._clear_problem("rejection", "write")  # (a document read: a write's failure ends)
        with self._lock:
            callbacks = [c for c, _ in self._callbacks]
        for callback in callbacks:
            try:
                callback(doc)
            except Exception as exc:  # refused or failed: reported by the listener
                self._reported = (doc.version, doc.checksum)
                if isinstance(exc, ConfigError):  # refused: not read again (a failure is retried)
                    self._refusing(raw)
                self._raise_problem("rejection", str(exc))
                return

    def _reject(self, version: int, checksum: str, exc: ConfigError) -> None:
        self._reported = (version, checksum)
        self._raise_problem("rejection", str(exc))
        self.stats["rejected"] += 1
        what = f"version {version}" if version >= 0 else "the stored document"
        kept = "flags keep" if self._document == "flags" else "configuration keeps"
        log.error("rejected %s, the last good %s serving: %s", what, kept, exc)
        with self._lock:
            handlers = [h for _, h in self._callbacks if h is not None]
        for handler in handlers:
            try:
                handler(exc)
            except Exception:
                log.exception("%s: flag store error handler failed", self.url)

    def _recreated(
        self,
        version: int,
        current: int,
        epoch: str | None,
        known: str,
        by_fleet: bool = False,
        forced: bool = False,
    ) -> None:
        """The store holds a document of another epoch that no forced write numbered
        above what was served began: it was re-created since this process last saw it
        (Redis lost its data, and a process that had not seen the old document wrote a
        new one), or went back to an older one (a failover lost a publish; ``forced``: a
        publish's epoch, numbered at or below what was served). Keep serving ``current``,
        raise the fleet's floor to it (every poll: a repair must be numbered above it),
        and report it once per epoch, whatever the version: writes there are refused
        until ``cfgcore publish`` (a forced write) gives the fleet a document to take."""
        self._mark_lost(self._follow_client, current, None if by_fleet else known)
        key = f"epoch {epoch}"
        if self._reported == (-2, key):
            return
        msg = self._recreated_message(version, epoch, known, current, by_fleet, forced)
        msg = f"{msg}; serving version {current} meanwhile"
        self._reject(-2, key, ConfigError(msg, file=self.url))

    def _went_backwards(
        self, version: int, current: int, *, empty: bool = False, epoch: str | None = None
    ) -> None:
        """The store holds an older version than this process serves (writes lost in a
        failover), or none at all (Redis restarted empty): keep serving ``current``,
        raise the fleet's floor to it (every poll: Redis may be wiped again) so that
        the next write is numbered above it, and report it once (on_error: the live
        flag set records it, so health says why). ``epoch``: the one served, recorded
        beside the floor."""
        self._mark_lost(self._follow_client, current, epoch)
        if self._reported == (version, "backwards"):
            return
        self._reported = (version, "backwards")
        if empty:
            msg = f"{self._lost_message(current)}; serving version {current} meanwhile"
        else:
            msg = (
                f"store at version {version}, older than the {current} served (writes "
                f"lost in a failover?); serving {current} until a newer version is written"
            )
        self._raise_problem("rejection", msg)
        self.stats["backwards"] += 1
        log.error("%s: %s", self.url, msg)
        with self._lock:
            handlers = [h for _, h in self._callbacks if h is not None]
        exc = ConfigError(msg, file=self.url)
        for handler in handlers:
            try:
                handler(exc)
            except Exception:
                log.exception("%s: flag store error handler failed", self.url)

    def _after_fork_in_child(self) -> None:
        # The follower thread did not survive the fork; the connection pools notice the
        # new pid themselves. Locks may have been held by a thread that no longer exists.
        # The follower starts again in _restart_in_child, once every repair is done: it
        # delivers documents to the flag set, the managers and their subscribers, whose
        # locks are repaired by hooks that may run after this one.
        self._lock = threading.Lock()
        self._thread = None
        inherited, self._pubsub = self._pubsub, None
        _close_inherited(inherited)
        self._problems_lock = threading.Lock()
        self._stops_judging = threading.Lock()  # (a read of the stop register)
        self._stops_found = None
        # The parent's follower's lost connection is said until a read from Redis
        # succeeds, as a read's outage is: this process's follower says its own.
        problems: dict[str, str] = {}
        for kind, message in self._problems.items():
            kind = "outage" if kind == "follow" else kind
            problems.pop(kind, None)
            problems[kind] = message
        self._problems = problems

    def _restart_in_child(self) -> None:
        if self._callbacks and not self._closed.is_set():
            self._start()


def _close_inherited(pubsub: Any) -> None:
    """In a forked child, close this process's copy of the parent's subscription socket.

    The parent's follower thread is gone from the child, but CPython keeps the objects
    its frame held, the subscription among them: the socket stayed open in every worker
    for the worker's life (should the parent end first, Redis kept a subscribed client
    nobody reads, buffering every announcement for it). Closed, not shut down: the
    connection is the parent's, which goes on following on it. redis-py's own
    ``disconnect()`` is not used here: it may take locks a parent's thread held."""
    sock = getattr(getattr(pubsub, "connection", None), "_sock", None)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.close()  # (this process's descriptor only)


def _identity(raw: list[Any], by_fleet: bool = False) -> tuple[bytes, ...]:
    """A stored document as the read script compares it while a reader refuses it (a
    reply of that script): version, epoch, checksum, forced mark, the floor's record
    when the refusal depends on it (``by_fleet``; else '*': the refusal itself raises the
    floor, which may change the record), the size of the data (and the name of a field
    over its limit: one put right by hand is read again) and, when the data does not
    match the checksum (or the checksum is missing), the SHA-1 of the data, so that data
    put back by hand is read."""

    def field(x: Any) -> bytes:
        return x if isinstance(x, bytes) else b"" if x is None else str(x).encode()

    data, checksum = raw[3], raw[1]
    digest = b""
    if isinstance(data, bytes) and (
        not isinstance(checksum, bytes) or hashlib.sha256(data).hexdigest().encode() != checksum
    ):
        digest = hashlib.sha1(data).hexdigest().encode()  # noqa: S324 - Redis's sha1hex
    size = raw[4] if type(raw[4]) is int else 0
    shape = str(size).encode()
    over = raw[12] if len(raw) > 12 else None
    if isinstance(over, bytes) and over:
        shape += b" " + over.split(b" ", 1)[0]  # (as the read script compares it)
    return (
        field(raw[0]), field(raw[7]), field(raw[1]), b"1" if raw[8] == 1 else b"0",
        field(raw[9]) if by_fleet else b"*", shape, digest,
    )  # fmt: skip


def _published(msg: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """``msg`` if it is a published message (not a (un)subscribe confirmation), else None."""
    return msg if msg is not None and msg.get("type") == "message" else None


def _announced(msg: Mapping[str, Any]) -> int:
    """The version a change message announces ("VERSION CHECKSUM"); -1 if unreadable."""
    try:
        return int(bytes(msg["data"]).split(b" ", 1)[0])
    except (KeyError, TypeError, ValueError):
        return -1
