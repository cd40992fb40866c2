"""The live flag set: one per flag store per process, shared by both managers.

:class:`LiveFlags` holds a :class:`~cfgcore.runtime.flagstore.FlagStore`, the
:class:`~cfgcore.engine.Engine` serving its document and the decoded source. The
configuration manager (``manager.flags``) and the dynamic-config manager
(``is_feature_enabled``, ``set_feature_flag``, A/B tests) obtain it through
:func:`shared_flags`, so a flag set through either API is seen by both at once, and a
file edit or a fleet update reloads both.

Every new document, whoever wrote it, takes the same path: derive the experiment-layer
flags, compile off to the side (incrementally, on top of the live tables), swap in one
assignment, then tell the subscribers (which emit change events and audit records).
A document that does not compile is refused and the live one keeps serving; so is one
that would move users a served A/B test has enrolled
(:func:`~cfgcore.experiments.abtest.moved_users`), serve a secret reference as
written (:func:`refuse_literal_secrets`), or hold an A/B test record of a shape the
experiment readers and a stop cannot use (:func:`derive`).

Subscribers run under the set's lock, so their state and audit records follow the
swaps in order; the change listeners they emit to run after the lock is released
(:func:`~cfgcore.runtime.events.deferred_delivery`), in the same order. A slow or stuck
listener never holds up the next swap, and documents from a store's follower thread
have their listeners run on the notifier thread, so the follower keeps following.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable
from functools import partial
from typing import Any, NoReturn, Protocol

import msgspec

from cfgcore._clock import read_clock
from cfgcore._numbers import whole_at_least
from cfgcore._reclaim import retire_if_large
from cfgcore.errors import (
    ConfigError,
    Problem,
    SnapshotError,
    StopRegisterError,
    format_key_path,
    printable_lines,
)
from cfgcore.observability import instruments
from cfgcore.observability.repeats import RepeatedRefusals
from cfgcore.runtime.events import deferred_delivery, run_after_delivery
from cfgcore.runtime.flagstore import FlagDocument, FlagStore, checksum, document_lines
from cfgcore.runtime.forks import after_fork_in_child
from cfgcore.runtime.secrets import decrypt_snapshot
from cfgcore.snapshot import Snapshot

__all__ = ["FlagSubscriber", "LiveFlags", "shared_flags"]

log = logging.getLogger("cfgcore.flags")
# Refusals kept for the managers that subscribe later (LiveFlags.take_start_refusals):
# a start reads a handful; the bound holds if a flag set is never subscribed to.
_MAX_UNTOLD = 100
# What a refusal of a file store's file that is not there stands on (deleted, moved
# away, a link leading nowhere), in place of its bytes' checksum: the same for every
# reader, whatever it read instead (nothing, or the seed), so one removal is refused,
# counted and told once (LiveFlags._refuse), and ends when the file is back.
_GONE = "flags file gone"
# Rules ahead of a running A/B test's split this process has logged ((store URL, key
# of the situation): LiveFlags._rules_ahead), oldest first: each is logged once per
# process. Kept to the newest _TOLD_KEPT, never fewer than the document just judged
# holds (a situation standing is never forgotten, and so never logged again).
_TOLD: dict[tuple[str, bytes], None] = {}
_TOLD_KEPT = 10_000
_TOLD_LOCK = threading.Lock()
# Key paths of the rules ahead of a split that health names (the rest are counted).
SHOWN_AHEAD = 3


class _Recorded(Exception):
    """The drops to record are recorded in the newest stored document already."""


class FlagSubscriber(Protocol):
    """Told about every flag document that goes live, and every one refused."""

    def flags_changed(
        self, old: Snapshot, new: Snapshot, source: str, doc: FlagDocument, initiator: Any
    ) -> None: ...

    def flags_rejected(self, error: ConfigError, source: str, origin: str) -> None: ...

    # Optional: ``flags_serving(new)``, called right after the engine's swap (and the
    # configuration published with it), before the set's document and source change
    # and before any ``flags_changed`` (a manager swaps its own views of ``new``
    # there); ``flags_recovered()``, called when a standing refusal ends without a swap
    # (the store is back to the document that serves); ``flags_closed()``, called once
    # the set is closed (nothing keeps its engine current any more).


def derive(snapshot: Snapshot, origin: str | None = None) -> Snapshot:
    """``snapshot`` with its experiment-layer and holdout flags derived from
    ``experiments`` (a hand edit may change a holdout without touching those flags).

    Raises SnapshotError naming ``origin`` and each key path when an A/B test record
    is of a shape the experiment readers cannot use, or names a control its flag does
    not serve (:func:`~cfgcore.experiments.abtest.records_problems`): every document
    is derived before it goes live (a start, a reload, a fleet update, an API change,
    ``cfgcore publish``), so such a record never serves and a live test can always be
    stopped.

    A test created again by hand under the name of a retired one, without a later
    ``since``, is given the run the retirement implies
    (:func:`~cfgcore.experiments.abtest.retired_runs`): every reader of the document
    (the request path's run tags, reports, the judge of moved users) sees that run."""
    if not snapshot.experiments and not snapshot.metadata.get("holdout_percentage"):
        if not any(k.startswith("__") for k in snapshot.flags):
            return snapshot
    from cfgcore.experiments.abtest import records_problems, retired_runs
    from cfgcore.experiments.layers import derive_flags

    problems = records_problems(snapshot, origin)
    if problems:
        raise SnapshotError(problems)
    snapshot = retired_runs(snapshot, origin)

    try:
        return msgspec.structs.replace(snapshot, flags=derive_flags(snapshot))
    # (malformed experiments metadata; OverflowError: an int past a float, as a layer's or
    # the holdout's percentage)
    except (TypeError, ValueError, AttributeError, OverflowError) as exc:
        raise SnapshotError(
            f"experiments: cannot derive layer/holdout flags: {exc}", file=origin
        ) from None


def refuse_literal_secrets(snapshot: Snapshot, origin: str | None = None) -> None:
    """Raise ConfigError naming every secret reference (``ENC[...]``, ``${file:...}``)
    that ``snapshot`` would serve as written. Only variant values are resolved (for
    compiling, :func:`~cfgcore.runtime.secrets.decrypt_snapshot`); a flag's
    ``metadata`` and the document's reach clients as they are (OpenFeature flag
    metadata), so a reference there is a mistake that shows the path or ciphertext."""
    from cfgcore.experiments.abtest import secret_references

    def problem(path: tuple[str, ...], where: str) -> Problem:
        return Problem(
            path=format_key_path(path),
            message="a secret reference (ENC[...] or ${file:...}) is not resolved in "
            f"{where}: it would be served as written to every client; only variant values "
            "are resolved (move it into a variant, or remove it)",
            file=origin,
            kind="flags",
        )

    problems = [
        problem(("flags", key, "metadata", *path), "a flag's metadata")
        for key, flag in snapshot.flags.items()
        if flag.metadata
        for path, _text in secret_references(flag.metadata)
    ]
    problems += [
        problem(("metadata", *path), "the document's metadata")
        for path, _text in secret_references(snapshot.metadata)
    ]
    if problems:
        raise ConfigError(problems)


class LiveFlags:
    """One store's document, compiled and served by one engine.

    A document that would move a served A/B test's users is judged against the live
    one, by the engine's clock (:meth:`now`); at start, against the document this host
    served before where the store keeps one (a Redis store's cache file), else only
    against its own ``experiments`` records (see :meth:`_first_load`)."""

    def __init__(
        self,
        store: FlagStore,
        *,
        engine: Any = None,
        clock: Callable[[], float] | None = None,
        audit: str | None = None,
    ) -> None:
        from cfgcore.engine import Engine
        from cfgcore.experiments.stops import hold_stops

        self.store = store
        self._audit = audit  # (where a store without a cache file keeps its stop register)
        self.engine = engine if engine is not None else Engine()
        # What a given engine was (a manager's placeholder: cfgcore.config.flags), given
        # back when the first load below refuses the store's document.
        was = {k: v for k, v in vars(self.engine).items() if k in ("_served_by", "_retired")}
        self.engine._served_by = store.url  # only install() swaps it (Engine.swap refuses)
        self.engine._retired = False
        if clock is not None:
            self.engine.set_clock(clock)  # before the first load judges served tests by it
        self._lock = threading.RLock()
        self._subscribers: list[Any] = []
        # Refusals made before any subscriber listened (at start: a stop register entry
        # refused while the start judged the document, a first document refused), kept
        # for each kind of manager to audit as it subscribes (take_start_refusals).
        self._untold: list[ConfigError] = []
        self._listened = False
        # Documents this set wrote itself before any subscriber listened (a retirement
        # found at start: _record_drops), (old, new, document) for the dynamic-config
        # manager to audit as it subscribes (take_start_writes).
        self._unaudited: list[tuple[Snapshot, Snapshot, FlagDocument]] = []
        # Followers of a published configuration of this store's URL, which take a
        # flag document published with a configuration together with it (pair_with).
        self._pairs: list[weakref.ref[Any]] = []
        self.document: FlagDocument | None = None
        self.source: Snapshot = Snapshot()
        self.last_error: ConfigError | None = None
        self._rejected: str | None = None  # what the last refusal refused (see refresh)
        # time.monotonic() when watcher refreshes started finding the file unsettled
        # (None: the last one settled): the start of refresh's bounded wait.
        self._unsettled_since: float | None = None
        self.installed_at = 0.0  # time.time() of the last swap (metrics: snapshot age)
        # While subscribers hear of a change made through update(): the stored document
        # it was applied to and that document as served, when this set served another
        # (so a change is audited as the difference it made to the stored document).
        self.written_over: tuple[FlagDocument, Snapshot] | None = None
        # While subscribers hear of a swap: the rules the new document places ahead of a
        # running A/B test's split (audited with the change:
        # :func:`~cfgcore.experiments.abtest.rules_ahead_of_split`).
        self.warnings: tuple[Problem, ...] = ()
        # The rules (and prerequisites) the live document holds ahead of a running A/B
        # test's split when it went live: how many, and the key paths of the first
        # (health). Each is logged at WARNING once per process (_rules_ahead).
        self.ahead: tuple[int, tuple[str, ...]] = (0, ())
        # (checksum of the document, its warnings): those of the live document, for a
        # configuration manager whose own activation swapped it in and audits it.
        self.warned: tuple[str | None, tuple[Problem, ...]] = (None, ())
        # Documents this set swapped in ("ok") or refused ("rejected"): kept here, not in
        # the process-wide registry, so a closed set's series go with it (a process
        # opening a store per tenant, or per test, would otherwise grow its scrape).
        self.documents = {"ok": 0, "rejected": 0}
        # Refusals logged at ERROR once per text and window: a file flapping between
        # versions is counted at every flip but not logged at every flip.
        self.refusals = RepeatedRefusals()
        # Managers holding this set (acquire/release): the last release stops watching
        # and closes the store (a Redis store's follower thread and connections).
        self._holders = 0
        self.closed = False
        # Read before the store: a Redis store's follower makes the cache file the
        # document this process serves once it follows.
        before = _served_before(store)
        # A guardrail stop undone while no process served the store is held before
        # anything is served, whichever manager opens it (``audit``: the dynamic-config
        # manager's log; the refusal waits in ``held`` for the managers to audit it).
        self._start_told: set[str] = set()
        try:
            first, self.held = hold_stops(store, audit)
            self._first_load(first if first is not None else store.read(), before, self.held)
        except BaseException:
            for name in ("_served_by", "_retired"):
                vars(self.engine).pop(name, None)
            vars(self.engine).update(was)
            raise
        self._unwatch = store.watch(self._on_stored, on_error=self._on_store_error)
        self._unpoll: Callable[[], None] | None = None
        if hasattr(store, "add_poll_check"):
            from cfgcore.experiments.stops import poll_own_entries

            # This host's stop register entries the fleet's register lost, written back
            # at each poll of the follower (not only at the next start).
            self._unpoll = store.add_poll_check(poll_own_entries(store, audit))
        _LIVE.add(self)
        global _GENERATION
        # next() on a count is atomic under the GIL; "+= 1" on a global is not: two sets
        # opened at once could count once, and a provider never look for the second.
        _GENERATION = next(_OPENED)
        instruments.track_flags(self)

    # -- subscribers -------------------------------------------------------------------

    def subscribe(self, subscriber: Any) -> None:
        """Add a :class:`FlagSubscriber` (held weakly: a closed manager just goes away)."""
        with self._lock:
            self._subscribers.append(weakref.ref(subscriber))
            self._listened = True

    def unsubscribe(self, subscriber: Any) -> None:
        with self._lock:
            self._subscribers = [r for r in self._subscribers if r() not in (None, subscriber)]

    def pair_with(self, follower: Any) -> None:
        """Let ``follower`` (a published configuration's, held weakly) hold back a flag
        document published together with a configuration it has not taken yet: it
        swaps both in at once (:mod:`cfgcore.config.published`)."""
        with self._lock:
            self._pairs = [r for r in self._pairs if r() not in (None, follower)]
            self._pairs.append(weakref.ref(follower))

    def unpair(self, follower: Any) -> None:
        with self._lock:
            self._pairs = [r for r in self._pairs if r() not in (None, follower)]

    def _stored_pairs(self, doc: FlagDocument) -> list[tuple[Any, int | None]]:
        """Each configuration follower with the version of the stored configuration
        ``doc`` was published with (None: not a pair); one Redis read each."""
        followers = [r() for r in self._pairs]
        return [(f, f.stored_pair(doc)) for f in followers if f is not None]

    def _held_back(
        self, doc: FlagDocument, pairs: list[tuple[Any, int | None]] | None = None
    ) -> bool:
        """Whether ``doc`` waits for the configuration published with it (see
        :meth:`pair_with`); under the lock."""
        pairs = self._stored_pairs(doc) if pairs is None else pairs
        return any(v is not None and f.hold(doc, v) for f, v in pairs)

    def _each(self) -> list[Any]:
        return [s for s in (r() for r in self._subscribers) if s is not None]

    # -- the one path every document takes ---------------------------------------------

    def prepare(self, doc: FlagDocument) -> Any:
        """Derive and compile ``doc`` off to the side; raise ConfigError, change nothing.
        A file store's problems name their lines in the file."""
        with document_lines(self.store, doc):
            return self._prepare(doc)

    def _prepare(self, doc: FlagDocument) -> Any:
        derived = derive(doc.snapshot, doc.origin)
        refuse_literal_secrets(derived, doc.origin)
        snapshot = decrypt_snapshot(derived, doc.origin)
        previous = self.engine.snapshot() if self.document is not None else None
        compiled = self.engine.compile(snapshot, file=doc.origin, previous=previous)
        fleet = self._fleet_read()  # (one read of the register for both checks below)
        if self.document is not None and self.source.experiments:
            # A document written by hand or by another tool takes the experiment API's
            # checks too: one that would move users an A/B test has enrolled to another
            # variant (their exposures stay, their metric events land in the new one)
            # is refused like an invalid one, unless it restarts the test as a new run.
            from cfgcore.experiments.abtest import moved_users

            served = self._served(self.source, fleet)
            problems = moved_users(served, derived, self.now(), doc.origin)
            if problems:
                raise ConfigError(problems)
        if self.document is not None and fleet is not None:
            # A fleet document is judged against the fleet's stop register too: a test
            # a guardrail stopped on another host, whose stop this process never served
            # (it missed the document that holds it), is not served again (one read).
            from cfgcore.experiments.stops import fleet_reactivations

            where = doc.origin or self.store.url
            problems = fleet_reactivations(self.store, derived, where, self._audit, fleet)
            if problems:
                raise ConfigError(problems)
        return compiled

    def _fleet_read(self) -> Any:
        """For a Redis store, its fleet's stop register read at most once for the
        document being judged (:class:`~cfgcore.experiments.stops.FleetRead`: on first
        use); None for any other store."""
        if getattr(self.store, "kind", None) != "redis":
            return None
        from cfgcore.experiments.stops import FleetRead

        return FleetRead(self.store)

    def _served(self, old: Snapshot, fleet: Any = None) -> Snapshot:
        """``old`` (a document this host served) as the documents it takes are judged
        against: a guardrail stop in it that a later end in the fleet's stop register
        ends is over (:func:`~cfgcore.experiments.stops.fleet_ended`; one read of the
        register, only when ``old`` holds such a stop), so the fleet's end wins over
        this host's older stop wherever it judges, its cache file at start included."""
        from cfgcore.experiments.stops import fleet_ended

        return fleet_ended(self.store, old, self._audit, fleet) if old.experiments else old

    def now(self) -> float:
        """Epoch seconds by the engine's clock: the one its schedules are served by,
        which the dynamic manager's ``clock=`` sets (tests, simulations), so that a
        document's A/B tests are judged served (and the ``since`` a refusal suggests)
        by the same time as the experiment API's own checks. The system clock when
        none is set, or when the clock raises."""
        clock = getattr(self.engine.snapshot(), "clock", None)
        if clock is not None:
            try:
                return read_clock(clock)
            except Exception:
                log.warning("the engine's clock raised; judging A/B tests by the system clock")
        return time.time()

    def _first_load(self, doc: FlagDocument, before: FlagDocument | None, held: Any = None) -> None:
        """Serve the store's document at start. One that would move a served A/B test's
        users (:func:`~cfgcore.experiments.abtest.moved_users`) is judged against the
        document this host served before, where the store keeps one (a Redis store's
        cache file): refused, reported in ``last_error`` and logged, and that document
        serves instead, as when the change arrives while running. A file store keeps no earlier
        document, so at start only the document itself can be judged: a served test
        whose flag splits its users otherwise than its ``experiments`` record (a split
        edited by hand, the record not) is logged as an ERROR and served (nothing else
        to serve; a change that edits both cannot be told from a test created that
        way). Startup is never blocked for want of an earlier document. A document
        that cannot be served at all (it does not compile, an A/B test record of the
        wrong shape) raises, unless the store keeps a document this host served
        before: that one serves, and the refusal is reported as above."""
        if (
            held is not None
            and held.instead is not None
            and self._refuse_first(doc, held.instead, held.refusal)
        ):
            return
        try:
            compiled = self.prepare(doc)
        except ConfigError as exc:
            # The document this host served before (a fleet follower's cache file:
            # only documents that went live are cached) serves instead, as it would
            # keep serving had the refused one arrived while this process ran.
            if (
                before is None
                or before.checksum == doc.checksum
                or not self._refuse_first(doc, before, exc, otherwise="refusing to start")
            ):
                raise
            return
        derived = derive(doc.snapshot, doc.origin)
        if derived.experiments:
            from cfgcore.experiments.abtest import moved_from_records, moved_users

            now = self.now()
            if before is not None:
                problems = []
                if before.checksum != doc.checksum:
                    try:
                        earlier = self._served(derive(before.snapshot, before.origin))
                    except ConfigError:
                        earlier = Snapshot()  # (it could not serve either: nothing to keep)
                    problems = moved_users(earlier, derived, now, doc.origin)
                if problems and self._refuse_first(doc, before, ConfigError(problems)):
                    return
            else:
                problems = moved_from_records(derived, now, doc.origin)
                if problems:
                    log.error(
                        "flag document serves users of a served A/B test other variants "
                        "than its experiments record enrolled them in (no earlier document "
                        "to compare with: serving it): %s", ConfigError(problems),
                    )  # fmt: skip
        self.install(doc, compiled, "load")
        if before is not None and before.checksum != doc.checksum:
            # Tests dropped while no process of this host served the store: the
            # document it served last tells (a Redis store's cache file).
            try:
                earlier = derive(before.snapshot, before.origin)
            except ConfigError:
                return
            self._record_drops(earlier)

    def _refuse_first(
        self,
        doc: FlagDocument,
        instead: FlagDocument,
        refusal: ConfigError,
        *,
        otherwise: str = "serving the refused one",
    ) -> bool:
        """At start: serve ``instead`` of ``doc`` (refused for ``refusal``); False, and
        an ERROR saying what happens ``otherwise``, when ``instead`` cannot be served
        either."""
        try:
            served = self.prepare(instead)
        except ConfigError as exc:
            log.error(
                "flag document refused (%s), and the document to serve instead (%s) "
                "cannot be served: %s; %s",
                refusal, instead.origin, exc, otherwise,
            )  # fmt: skip
            return False
        # The store counts the refused version as read: told, its follower keeps it
        # out of the cache file, so every later start is judged against the document
        # served, not the refused one.
        told = getattr(self.store, "served_instead", None)
        if told is not None:
            told(doc)
        self.install(instead, served, "load")
        self._rejected = doc.checksum
        self.reject(refusal, "load", doc.origin)
        return True

    def take_start_refusals(self, kind: str) -> list[ConfigError]:
        """What the start refused before any subscriber listened, once per ``kind`` of
        manager (each audits it in its own log, as a running process's refusals reach
        every subscriber): the refusal of a guardrail-stopped test served again
        (:func:`~cfgcore.experiments.stops.hold_stops`), and every refusal :meth:`reject`
        was told before the first subscriber (an entry of the fleet's stop register
        refused while the start read it, a first document refused for the cache file's).
        [] when there was none, or for a kind that took them already."""
        with self._lock:
            if kind in self._start_told:
                return []
            self._start_told.add(kind)
            refusals = list(self._untold)
            held = self.held.refusal if self.held is not None else None
            if held is not None and not any(e is held for e in refusals):
                refusals.insert(0, held)  # (one the start served instead is told already)
            return refusals

    def take_start_writes(self) -> list[tuple[Snapshot, Snapshot, FlagDocument]]:
        """``[(old, new, document)]`` of what this set wrote to its store before any
        subscriber listened (the retirement of A/B tests dropped while no process of
        this host served the store: :meth:`_record_drops`), once: the dynamic-config
        manager audits them as it subscribes, as it audits the writes made later."""
        with self._lock:
            taken, self._unaudited = self._unaudited, []
            return taken

    def install(
        self,
        doc: FlagDocument,
        compiled: Any,
        source: str,
        initiator: Any = None,
        with_swap: Callable[[], None] | None = None,
        *,
        followed: bool = False,
    ) -> bool:
        """Swap ``compiled`` (from :meth:`prepare` of ``doc``) in and notify; False if
        ``doc`` is the live document already. ``with_swap()`` runs right after the swap,
        before any subscriber hears of it: the configuration manager publishes its
        configuration there, so flags and configuration go live together.

        An older version than the live one is ignored. ``followed``: ``doc`` comes from
        the store's follower, which delivers only versions newer than this process had
        when it read them; an older one there means this process moved on meanwhile
        (its own write, or a reload's read, landed between the follower's read and this
        call), which is expected and logged at DEBUG. From anywhere else (a reload
        reading the store) it means the store went backwards: a WARNING."""
        with deferred_delivery(), self._lock:
            old_doc = self.document
            if old_doc is not None and old_doc.checksum == doc.checksum:
                return False
            # (Of a store's own lineage whatever its origin: a Redis store's read() serves
            # its cache file's document while Redis is unreachable, and that file may be
            # older than what serves: another process of this host cached an older
            # version last, or this process's own write was not cached yet.)
            if (
                old_doc is not None
                and doc.version < old_doc.version
                and (doc.origin == old_doc.origin or self.store.kind != "file")
            ):
                if self.store.kind != "file":  # a file edited by hand restarts its counter
                    if followed:
                        log.debug(
                            "follower's flag document version %d is behind the live %d "
                            "(this process wrote or read a newer one meanwhile); ignored",
                            doc.version, old_doc.version,
                        )  # fmt: skip
                    else:
                        log.warning("ignoring flag document version %d older than live %d",
                                    doc.version, old_doc.version)  # fmt: skip
                    return False
            old = self.source
            retired = self.engine._swap(compiled)
            if with_swap is not None:
                with_swap()
            new = compiled.tables.source if hasattr(compiled, "tables") else doc.snapshot
            subscribers = self._each() if old_doc is not None else []
            # (At the first load every rule ahead stands: logged, not audited.)
            warned = self._rules_ahead(old if old_doc is not None else None, new, doc)
            # The subscribers' views of the document (a dynamic-config manager's flags,
            # tests and dedup, swapped in one assignment each) move before anything
            # else says it is live: whoever sees this set's document or source change
            # finds every manager serving it too.
            for sub in subscribers:
                serving = getattr(sub, "flags_serving", None)
                if serving is not None:
                    try:
                        serving(new)
                    except Exception:
                        log.exception("flag subscriber %r failed", sub)
            self.source = new
            self.document = doc
            self.last_error = None
            self.installed_at = time.time()
            self.documents["ok"] += 1
            self.warnings = warned
            self.warned = (doc.checksum, warned)
            try:
                for sub in subscribers:
                    try:
                        sub.flags_changed(old, self.source, source, doc, initiator)
                    except Exception:
                        log.exception("flag subscriber %r failed", sub)
            finally:
                self.warnings = ()
            if old_doc is not None:
                self._record_drops(old)
            # The older compiled snapshot of a large document (millions of table items)
            # is freed off this thread, a piece at a time, once nothing holds it. Handed
            # over once the listeners have run (the outermost change section's end):
            # starting the reclaimer's thread lets other threads run, and a reader must
            # not see the new flags before the managers' views and listeners do. A small
            # one (under LARGE_FLAGS flags, freed whole well within a switch interval)
            # starts no thread: a thread started is a GIL hand-over or two each way, 5 ms
            # each beside a CPU-bound thread, on every flag change.
            run_after_delivery(partial(retire_if_large, retired))
        return True

    def _record_drops(self, old: Snapshot) -> None:
        """Record in the store the retirement of the A/B tests ``old`` (a document this
        process served) held and the live one dropped, written by anyone, anyhow (a
        hand edit, ``cfgcore import --force``, ``cfgcore publish --flags``, another
        tool): :func:`~cfgcore.experiments.abtest.retire_dropped`, as
        ``delete_ab_test`` records a deletion, so a test created again under the name
        does not count the dropped one's logged records. Judged on the newest stored
        document: the processes of a fleet that all see the drop write it once. Under
        the lock, before any change of this process can re-create the test. A store
        that cannot be written (a read-only mount) is logged, and the document serves."""
        if not old.experiments and not old.metadata:
            return
        from cfgcore.experiments.abtest import retire_dropped

        if retire_dropped(old, self.source) is self.source:
            return

        def change(snapshot: Snapshot) -> Snapshot:
            result = retire_dropped(old, snapshot)
            if result is snapshot:
                raise _Recorded  # by another process already: nothing is written
            return result

        try:
            # (A store this process may not write, a fleet whose documents it only
            # verifies, refuses the write: no flag document was refused, and the
            # refusal count, which alerts on, stays as it was.)
            before = self.source
            self.update(change, source="retire_ab_test", refusal_counted=False)
            if not self._listened and self.document is not None:
                # (at start: no manager heard it; the first to subscribe audits it)
                self._unaudited.append((before, self.source, self.document))
        except _Recorded:
            pass
        except (ConfigError, OSError) as exc:
            log.warning(
                "A/B tests dropped from the flag document could not be recorded as "
                "retired in %s (a test created again under the name would count their "
                "logged records; delete it with cfgcore experiment delete instead): %s",
                self.store.url, exc,
            )  # fmt: skip

    def reject(self, exc: ConfigError, source: str, origin: str, *, initiator: Any = None) -> None:
        """Record a refused document and tell the subscribers (which audit it), all but
        ``initiator``: the subscriber whose own read was refused reports that itself."""
        with deferred_delivery(), self._lock:
            if not (isinstance(exc, StopRegisterError) and self.document_refused):
                # An entry of the stop register passed over refuses no document: a
                # document refusal standing stays what last_error says (health's flags
                # check, cfgcore_flags_last_document_rejected, the next read of that
                # document not judged again) until the store holds another document;
                # the entry is said by the store's stop_register_problem, and told to
                # the subscribers below (audited) all the same.
                self.last_error = exc
            if isinstance(exc, StopRegisterError):  # the store logged it (not a document)
                # Nor counted as a refused document: the document it came with went live
                # (the store counts the entry in cfgcore_flag_store_stop_entries_rejected_total),
                # and cfgcore_flag_documents_total{result="rejected"} is what the
                # flag_document_rejection_rate alert watches.
                log.debug("guardrail stop register entry passed over: %s", exc)
            else:  # a flapping file: ERROR once per text and window (observability.repeats)
                self.documents["rejected"] += 1
                text = str(exc)
                at_error, unlogged = self.refusals.judge(text)
                log.log(
                    logging.ERROR if at_error else logging.DEBUG,
                    "flag document rejected, keeping the live flags: %s%s",
                    printable_lines(text), self.refusals.suffix(unlogged),
                )  # fmt: skip
            subscribers = [s for s in self._each() if s is not initiator]
            if not subscribers and not self._listened and len(self._untold) < _MAX_UNTOLD:
                self._untold.append(exc)  # (audited by the managers as they subscribe)
            for sub in subscribers:
                try:
                    sub.flags_rejected(exc, source, origin)
                except Exception:
                    log.exception("flag subscriber %r failed", sub)

    def refresh(self, source: str = "reload", *, settle_ms: int = 0, max_wait_ms: int = 0) -> bool:
        """Re-read the store; activate its document if it changed and compiles.
        False when unchanged or refused (subscribers hear about a refusal).

        ``settle_ms`` (file stores; watchers pass it): read only once the file has not
        changed for that long, and activate nothing that changed while it was read (a
        file written in place in chunks must never serve its first chunk). A file still
        changing returns False; the watcher's next event or poll retries. Once it has
        kept changing for ``max_wait_ms`` (0: no bound) it is read as it is, so a writer
        that never stops cannot keep the live flags forever (what does not decode or
        compile is refused as usual). Both are whole numbers of milliseconds >= 0
        (``20``, ``20.0``, ``numpy.int64(20)``), else ValueError before anything is read.
        """
        settle_ms = whole_at_least("settle_ms", settle_ms, 0, "milliseconds")
        max_wait_ms = whole_at_least("max_wait_ms", max_wait_ms, 0, "milliseconds")
        stamp = None
        if settle_ms and self.store.kind == "file":
            # Issue 10: waited for outside the lock, so updates are not held up meanwhile.
            from cfgcore.config.settle import WATCHER_STOP, file_fingerprint, wait_until_settled

            paths = [str(getattr(self.store, "path", ""))]
            since = self._unsettled_since or time.monotonic()
            stop = WATCHER_STOP.get()
            # A watcher being stopped (close()) ends the wait; the file served is
            # expected, so one renamed away and written again (an editor's save) is
            # waited for rather than read while missing.
            stamp = wait_until_settled(
                lambda: file_fingerprint(paths),
                settle_ms,
                expected=paths if self.document is not None else (),
                stop=stop,
                deadline=since + max_wait_ms / 1000 if max_wait_ms > 0 else None,
            )
            if stamp is None:
                if stop is not None and stop.is_set():
                    return False
                if max_wait_ms <= 0 or time.monotonic() - since < max_wait_ms / 1000:
                    self._unsettled_since = since
                    return False
                log.warning(
                    "flag file %s kept changing for more than %d ms; reading it as it is",
                    paths[0],
                    max_wait_ms,
                )
            self._unsettled_since = None
        with deferred_delivery(), self._lock:
            path = getattr(self.store, "path", None)
            origin = str(path or self.store.url)
            key: str | None = None
            try:
                if self.store.kind == "file":
                    data, origin = self.store.read_bytes()  # type: ignore[attr-defined]
                    key = checksum(data)
                    if stamp is not None and file_fingerprint(paths) != stamp:
                        return False  # changed while read: the next event or poll retries
                    if self._seen(key):
                        return False
                    if self.document is not None and self.document.origin == path != origin:
                        # The seed, in place of a file this set has served: it is gone.
                        key = _GONE
                        raise ConfigError(
                            "flag file was removed; keeping the flags it last held (the "
                            "bundled demo flags are served only before a file exists)",
                            file=path,
                        )
                    doc = self.store.document(data, origin)  # type: ignore[attr-defined]
                else:
                    doc = self.store.read()
                    key = doc.checksum
                    if self._seen(key):
                        return False
                compiled = self.prepare(doc)
                if self._pairs and self.store.kind != "file" and self._held_back(doc):
                    return False  # goes live with its configuration, as from the follower
            except ConfigError as exc:
                # Unreadable, undecodable, gone or not compiling: the live flags keep
                # serving, and the refusal is reported once (not on every poll) until
                # the store holds something else.
                self._refuse(exc, source, origin, key or self._unread_key(exc))
                return False
            return self.install(doc, compiled, source)

    def judge_read(
        self, data: bytes, origin: str, source: str, initiator: Any = None
    ) -> tuple[FlagDocument, Any] | None:
        """A file store's bytes as another reader of the file read them (a
        configuration manager's activation reads its flags file with its configuration
        files, and swaps both in at once): ``(document, compiled)`` to :meth:`install`
        with that activation, or None when they are the live document (a standing
        refusal is then over, as when :meth:`refresh` finds them).

        Bytes that do not decode or compile raise ConfigError and are refused as
        :meth:`refresh` refuses them: ``last_error``, counted, the subscribers but
        ``initiator`` told (a provider goes STALE), once per bytes, so a watcher of the
        same file that reads them too reports nothing more. For bytes refused already,
        the refusal that stands is raised (the one the subscribers were told)."""
        key = checksum(data)
        if self.back_to_live(key):
            return None
        try:
            doc = self.store.document(data, origin)  # type: ignore[attr-defined]
            return doc, self.prepare(doc)
        except ConfigError as exc:
            self._judge(exc, key, source, origin, initiator)

    def judge_refused(
        self,
        exc: ConfigError,
        origin: str,
        source: str,
        *,
        data: bytes | None = None,
        initiator: Any = None,
    ) -> NoReturn:
        """Another reader of the file store refused the file before decoding it, for
        ``exc``: a configuration manager's reload refuses a flags file that is gone or
        was emptied since it went live (a write or a deploy caught half-done:
        :func:`cfgcore.config.builder.flags_file_gone`), or that it cannot read. The set
        stands refused on it as :meth:`judge_read` refuses bytes that do not compile,
        and raises what it stands on. ``data``: the bytes read, or None when there were
        none (a file that is not there stands refused as one whichever reader found it
        gone, and :meth:`refresh` too; one that cannot be read, on its error)."""
        key = checksum(data) if data is not None else self._unread_key(exc)
        self._judge(exc, key, source, origin, initiator)

    def _judge(
        self, exc: ConfigError, key: str, source: str, origin: str, initiator: Any
    ) -> NoReturn:
        """Refuse the stored content ``key`` names for ``exc``, read by a reader other
        than the set (``initiator``), and raise the refusal the set stands on."""
        with deferred_delivery(), self._lock:
            # Judged under the lock the set's own reads take: content the file no longer
            # holds (another reader swapped a newer document in since it was read, a
            # writer finished) is this reader's refusal only; the next read judges the file.
            if not self._still_stored(key):
                raise exc
            refusal = self._refuse(exc, source, origin, key, initiator)
        if refusal is exc:
            raise exc
        raise refusal.with_traceback(None) from None

    def _file_gone(self) -> bool:
        """Whether a file store's file is not there (exists() follows links: one left
        dangling is no file either)."""
        path = getattr(self.store, "path", None)
        return self.store.kind == "file" and path is not None and not os.path.exists(path)

    def _unread_key(self, exc: Exception) -> str:
        """What a refusal of a store that could not be read stands on: :data:`_GONE`
        for a file that is not there, else the error (the same next time)."""
        return _GONE if self._file_gone() else f"{type(exc).__name__}: {exc}"

    def _still_stored(self, key: str) -> bool:
        """Whether the file store holds what ``key`` names: those bytes (one read), no
        file (:data:`_GONE`), or a file that fails to read the same way."""
        if key == _GONE:
            return self._file_gone()
        try:
            data, _origin = self.store.read_bytes()  # type: ignore[attr-defined]
        except ConfigError as exc:
            return self._unread_key(exc) == key
        return checksum(data) == key

    def _refuse(
        self, exc: ConfigError, source: str, origin: str, key: str, initiator: Any = None
    ) -> ConfigError:
        """Refuse the stored document ``key`` names (its checksum, or the error's text
        when it could not be read) for ``exc``, unless its refusal stands already (told
        then): what the set stands on is returned."""
        with deferred_delivery(), self._lock:
            standing = self.last_error if self.document_refused else None
            if standing is not None and key == self._rejected:
                return standing
            self._rejected = key
            self.reject(exc, source, origin, initiator=initiator)
            return exc

    @property
    def document_refused(self) -> bool:
        """Whether the newest document offered was refused and the previous one serves:
        :attr:`last_error` standing, unless it is a guardrail stop register entry the
        store passed over (:class:`~cfgcore.errors.StopRegisterError`), which refuses no
        document (``cfgcore_flags_last_document_rejected``)."""
        error = self.last_error
        return error is not None and not isinstance(error, StopRegisterError)

    def back_to_live(self, key: str) -> bool:
        """Whether ``key`` (a stored document's checksum) is the live document's. If so,
        a standing refusal is over (the store is back to what serves): it is cleared and
        the subscribers that take ``flags_recovered`` hear it."""
        with deferred_delivery(), self._lock:
            if self.document is None or key != self.document.checksum:
                return False
            if self.last_error is not None:
                log.info("flag store %s is back to the live document", self.store.url)
                self.last_error = None
                for sub in self._each():
                    recovered = getattr(sub, "flags_recovered", None)
                    if recovered is None:
                        continue
                    try:
                        recovered()
                    except Exception:
                        log.exception("flag subscriber %r failed", sub)
            return True

    def _seen(self, key: str) -> bool:
        """Whether the stored bytes (by checksum) need no new look: the live document
        (then a standing refusal is over: :meth:`back_to_live`) or the document
        refused last."""
        if self.back_to_live(key):
            return True
        return self.document_refused and key == self._rejected

    def _on_stored(self, doc: FlagDocument) -> None:
        """A newer document from the store's watcher (another process or machine)."""
        # Which configuration followers have it stored with a configuration (one Redis
        # read each, outside the lock; only with a published configuration of this URL).
        pairs = self._stored_pairs(doc) if self._pairs else []
        with deferred_delivery(background=True), self._lock:
            if self.document is not None and doc.checksum == self.document.checksum:
                # The live document (again): a standing refusal is over (subscribers
                # hear flags_recovered), as when refresh() finds it.
                self._seen(doc.checksum)
                return
            try:
                compiled = self.prepare(doc)
            except ConfigError as exc:
                self.reject(exc, self.store.kind, doc.origin)
                raise  # the store counts it, never delivers it again and does not cache it
            # Published with a configuration not taken yet: goes live with it.
            if pairs and self._held_back(doc, pairs):
                return
            self.install(doc, compiled, self.store.kind, followed=True)

    def _on_store_error(self, exc: Exception) -> None:
        """A document the store itself refused (checksum mismatch, undecodable)."""
        error = exc if isinstance(exc, ConfigError) else ConfigError(str(exc), file=self.store.url)
        with deferred_delivery(background=True):
            self.reject(error, self.store.kind, self.store.url)

    def update(
        self,
        change: Callable[[Snapshot], Snapshot],
        *,
        source: str,
        actor: str | None = None,
        initiator: Any = None,
        refusal_counted: bool = True,
    ) -> tuple[Snapshot, Snapshot]:
        """Apply ``change`` through the store (to its newest document), compile, swap and
        notify. Raises ConfigError and changes nothing when the result does not compile.
        Returns the old and new live snapshots. ``refusal_counted=False``: a failure is
        not counted as a refused flag document (a write this process makes of its own
        accord, which a store it may not write refuses: :meth:`_record_drops`)."""
        prepared: dict[str, Any] = {}
        origin = str(getattr(self.store, "path", None) or self.store.url)

        def changed(snapshot: Snapshot) -> Snapshot:
            prepared["stored"] = snapshot  # (the last call's is the one written over)
            fleet = self._fleet_read()  # (one read of the register for every check)
            base: Snapshot | None = None
            served: Snapshot | None = None  # (set when the stored document is refused)
            if snapshot.experiments or self.source.experiments:
                from cfgcore.experiments.abtest import moved_users, without_malformed_records

                # (its malformed A/B test records left out: the change may be the one
                # that removes them; the result is judged whole below)
                base = derive(without_malformed_records(snapshot), origin)
                if self.source.experiments and snapshot is not self.source:
                    # The stored document the change applies to may be one this process
                    # refused (a hand edit that moves a served test's users, a document
                    # from before a guardrail stop put back): the result is judged
                    # against what this process serves too, below.
                    mine = self._served(self.source, fleet)
                    if moved_users(mine, base, self.now(), origin):
                        served = mine
            from cfgcore.experiments.abtest import retire_dropped, retired_runs

            # The change sees the stored document's tests as every process serves them
            # (a test created again by hand under a retired name: the run it implies),
            # and writes that run.
            result = derive(change(retired_runs(snapshot, origin)), origin)
            # A test this change drops, or the stored document dropped (a hand edit not
            # read yet), is retired in the same write (see :meth:`_record_drops`); a
            # retirement carried into a document that holds a test of its name gives
            # that test its run.
            result = retired_runs(
                retire_dropped(self.source, retire_dropped(snapshot, result)), origin
            )
            if base is not None and base.experiments:
                # Every change made through cfgcore (a flag, a test, a stop, a delete) is
                # judged as a document written by hand is, on the newest stored one: the
                # one judge of a move of the users a served test has enrolled, whichever
                # process or API call makes it; nothing is written when it refuses.
                problems = moved_users(self._served(base, fleet), result, self.now(), origin)
                if problems:
                    raise ConfigError(problems)
            if fleet is not None:
                # Judged against the fleet's stop register as documents from the store
                # are (prepare): a test it holds stopped is written stopped (one read).
                from cfgcore.experiments.stops import hold_fleet_stops

                result = hold_fleet_stops(self.store, result, origin, self._audit, fleet)
            if served is not None:
                # A guardrail stop this process serves that the stored document lost
                # (one from before the stop, put back) is carried into a change that
                # keeps the test stopped (the stop or update that repairs the store),
                # as the fleet's register's stops are above: the stop's record is kept.
                from cfgcore.experiments.stops import carry_served_stops

                result = carry_served_stops(served, result, origin)
                # On a stored document this process refused, a change is written when its
                # result moves nobody, judged against what this process serves (the
                # fleet's stop register taken into account: a test it holds stopped is
                # written stopped, above) as well as against the stored document (what a
                # process that never served the earlier one serves): every process then
                # takes it, so the stop or the delete that repairs the store can be made
                # with cfgcore's own tools. One that would carry the refused part live is
                # refused, saying how to repair the store; nothing is written.
                problems = moved_users(served, result, self.now(), origin, stored=True)
                if problems:
                    raise ConfigError(problems)
            return result

        def check(snapshot: Snapshot) -> None:
            refuse_literal_secrets(snapshot, self.store.url)
            previous = self.engine.snapshot()
            prepared["compiled"] = self.engine.compile(
                decrypt_snapshot(snapshot, self.store.url), file=self.store.url, previous=previous
            )

        with deferred_delivery(), self._lock:
            old = self.source
            try:
                old_doc, new_doc = self.store.update(changed, check=check, actor=actor)
            except ConfigError:
                if refusal_counted:
                    self.documents["rejected"] += 1
                raise
            over = self._written_over(old_doc, prepared.get("stored"), origin)
            self.written_over = over
            try:
                self.install(new_doc, prepared["compiled"], source, initiator)
            finally:
                self.written_over = None
            return old, self.source

    def _written_over(
        self, doc: FlagDocument | None, stored: Snapshot | None, origin: str
    ) -> tuple[FlagDocument, Snapshot] | None:
        """The stored document a change through :meth:`update` was applied to, and its
        snapshot as this set would serve it, when it is not the document this set served
        (a newer one not read yet, or one it refused); None otherwise, or when it could
        not be served (its difference is then told as the change's)."""
        if doc is None or stored is None or self.document is None:
            return None
        if doc.checksum == self.document.checksum:
            return None
        try:
            return doc, decrypt_snapshot(derive(stored, origin), origin)
        except ConfigError:
            return None

    def live_warnings(self) -> tuple[Problem, ...]:
        """The warnings the live document went live with (:meth:`_rules_ahead`)."""
        checksum, warned = self.warned
        doc = self.document
        return warned if doc is not None and doc.checksum == checksum else ()

    def _rules_ahead(
        self, old: Snapshot | None, new: Snapshot, doc: FlagDocument
    ) -> tuple[Problem, ...]:
        """The rules ``new`` (going live in place of ``old``; None: the first document
        this set serves) places ahead of a running A/B test's split, for the audit entry
        of the change (:func:`~cfgcore.experiments.abtest.rules_ahead_of_split`: () for
        a first document, which is no change). Every such rule ``new`` holds (a
        targeting change, never refused) is logged at WARNING once per process: the
        first time a document holding it goes live, and again only when it takes other
        users (the rule, or what its condition reads, changed; a new run of its test),
        as worded for this change, or as standing (``old`` None: ``cfgcore validate``'s
        words) when this change did not make it (a process starting, a test holding it
        started since). Never raises: a swap is never held up by what it tells."""
        if not new.experiments:
            self.ahead = (0, ())
            return ()
        try:
            from cfgcore.experiments.abtest import judge_rules_ahead

            found = judge_rules_ahead(
                old, new, self.now(), doc.origin or self.store.url, standing=True
            )
            url = self.store.url
            with _TOLD_LOCK:
                first = []
                for ahead in found:
                    key = (url, ahead.key)
                    if key in _TOLD:
                        del _TOLD[key]  # (kept as the newest: it stands)
                    else:
                        first.append(ahead.problem)
                    _TOLD[key] = None
                extra = len(_TOLD) - max(_TOLD_KEPT, len(found))
                for key in list(itertools.islice(_TOLD, extra)) if extra > 0 else ():
                    del _TOLD[key]
        except Exception:
            log.exception("could not judge the rules ahead of the A/B tests' splits")
            self.ahead = (0, ())
            return ()
        self.ahead = (len(found), tuple(a.problem.path for a in found[:SHOWN_AHEAD]))
        for problem in first:
            log.warning("%s", problem)
        return tuple(a.problem for a in found if a.changed) if old is not None else ()

    def acquire(self) -> bool:
        """Count one more holder (a manager); False if the set is closed already.
        Holders :meth:`release` it when they close."""
        with self._lock:
            if self.closed:
                return False
            self._holders += 1
            return True

    def release(self, holder: Any = None) -> None:
        """``holder`` is done with this set: unsubscribe it; the last holder's release
        closes the set (see :meth:`close`). Releasing more often than acquired does
        nothing more."""
        with self._lock:
            if holder is not None:
                self.unsubscribe(holder)
            if self._holders == 0:
                return
            self._holders -= 1
        self._close(unless_held=True)

    def close(self) -> None:
        """Stop watching the store and close it, whoever still holds the set; the
        engine keeps serving the last document. A later :func:`shared_flags` for the
        same store opens a new set."""
        self._close(unless_held=False)

    def _close(self, *, unless_held: bool) -> None:
        with self._lock:
            # Decided under the lock acquire() takes: a holder either got in before
            # (and the set stays open for it) or sees it closed and opens a new one.
            if self.closed or (unless_held and self._holders):
                return
            self.closed = True
            self._holders = 0
        # Its series leave the scrape; what it counted stays in its store's counters.
        instruments.untrack(self)
        # Its engine serves on, but no longer keeps its flags' evaluation series (they go
        # once idle, as a deleted flag's): a closed set something still holds would.
        self.engine._retired = True
        with _SHARED_LOCK:
            if _SHARED.get(self.store.url) is self:
                del _SHARED[self.store.url]
        self._unwatch()
        if self._unpoll is not None:
            self._unpoll()
        self.store.close()
        # Told last, outside the lock, the store closed: a subscriber that reports what
        # serves (the OpenFeature provider) reads it as it now stands.
        with self._lock:
            subscribers = self._each()
        for sub in subscribers:
            closed = getattr(sub, "flags_closed", None)
            if closed is None:
                continue
            try:
                closed()
            except Exception:
                log.exception("flag subscriber %r failed", sub)


# One live set per store URL, so both managers of a process serve the same flags.
_SHARED: weakref.WeakValueDictionary[str, LiveFlags] = weakref.WeakValueDictionary()
_SHARED_LOCK = threading.Lock()
_LIVE: weakref.WeakSet[LiveFlags] = weakref.WeakSet()
_GENERATION = 0  # live flag sets opened in this process so far
_OPENED = itertools.count(1)


def generation() -> int:
    """How many live flag sets this process has opened: a holder of a closed set (an
    OpenFeature provider) looks for its engine's new one only when this has changed."""
    return _GENERATION


def shared_flags(
    store: FlagStore,
    *,
    engine: Any = None,
    clock: Callable[[], float] | None = None,
    audit: str | None = None,
    adopt: Any = None,
) -> LiveFlags:
    """The process's live flag set for ``store`` (by URL), created on first use.

    Each call counts a holder: call ``release(holder)`` when done (the managers'
    ``close()`` do). An explicit ``engine`` that differs from the shared set's gets a
    private set (tests run one engine per evaluator implementation). ``clock``: set
    on a new set's engine before its first load (see :meth:`LiveFlags.now`).
    ``audit``: the audit log a new set reads guardrail stops from at start.
    ``adopt``: the engine a new set serves with (a configuration manager's placeholder,
    handed out while its directory had no flags file); a set open already is joined
    as without it, so ``result.engine is adopt`` tells whether it was adopted. Found and
    created under one lock: two threads opening one store get one set.
    """
    with _SHARED_LOCK:
        live = _SHARED.get(store.url)
        if (
            live is not None
            and not live.closed
            and (engine is None or engine is live.engine)
            and store is not live.store
            and getattr(store, "max_items", None) != getattr(live.store, "max_items", None)
        ):
            # One set per URL serves every manager of the process: a second bound for
            # it would be silently the first's.
            store.close()
            raise ConfigError(
                f"max_items={getattr(store, 'max_items', None):,}: this process serves "
                f"this store with max_items={getattr(live.store, 'max_items', None):,} "
                "already; every manager of one store URL in a process takes the same bound",
                file=store.url,
            )
        if live is None or not (engine is None or engine is live.engine) or not live.acquire():
            serving = engine if adopt is None else adopt
            live = LiveFlags(store, engine=serving, clock=clock, audit=audit)
            live.acquire()
            if store.url not in _SHARED or engine is None:
                _SHARED[store.url] = live
            return live
        if store is not live.store:
            store.close()
    # A file nobody watches may have changed since the set was created.
    live.refresh("load")
    return live


def _served_before(store: FlagStore) -> FlagDocument | None:
    """The document this host served before this process, where ``store`` keeps one
    (a Redis store's cache file); None for stores that keep none (files, memory) or
    when it is missing or unreadable."""
    read_cache = getattr(store, "read_cache", None)
    if read_cache is None or getattr(store, "cache_path", None) is None:
        return None
    try:
        doc = read_cache()
    except ConfigError:
        return None
    return doc if isinstance(doc, FlagDocument) else None


def live_flags_for(engine: Any) -> LiveFlags | None:
    """The open live flag set serving ``engine`` (a manager's engine), or None."""
    for live in list(_LIVE):
        if live.engine is engine and not live.closed:
            return live
    return None


@after_fork_in_child
def _reset_after_fork() -> None:
    global _SHARED_LOCK, _TOLD_LOCK
    _SHARED_LOCK = threading.Lock()
    # (what the parent logged stays told: its workers share its log)
    _TOLD_LOCK = threading.Lock()
    for live in list(_LIVE):
        live._lock = threading.RLock()
        # What this process did starts at zero, as the registry's counters do (in place:
        # the metrics keep this dict, to count it once the set is closed).
        for result in live.documents:
            live.documents[result] = 0
