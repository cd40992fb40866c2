"""Guardrail stops held across restarts: the start's judgement of a flag document
against the stops in force (:func:`hold_stops`, run by every reader of a store:
:class:`~cfgcore.runtime.flags.LiveFlags`), and the stop register that keeps those stops
whatever becomes of the audit log (:func:`record_stops`).

A guardrail's stop stays in force until the test is resumed explicitly (``cfgcore
experiment start``) or deleted. A running process refuses a document that would serve
the test's variants again (:func:`~cfgcore.experiments.abtest.guardrail_reactivations`);
a process that starts has no earlier document to judge against, so it reads the stops
in force from three places: the register ``.<flag file>.guardrail-stops.json`` beside
the flag file (for another store, beside its cache file or the audit log), written
atomically under its own lock whenever a stop goes live, changes or ends and never
rotated; the audit log (stops recorded before the register existed); and the served
document's own records. A stop found in the last two and missing from the register is
copied into it.

Those are the host's records. For a Redis (fleet) store the stops are kept fleet-wide
too, in the hash ``{NS}:flags:guardrail-stops`` beside the document
(:meth:`~cfgcore.runtime.redis_store.RedisFlagStore.write_stop_register`: one atomic
script, an entry replacing the stored one only when later, or as late and an end):
every host that serves a stop going live, changing or ending writes it there, every
start merges it with the host's register (a stop either holds, held; an end in either
not before the stop, over: :func:`guardrail_stop`'s ordering), and a running process
judges each fleet document against it too, so a new host with an empty disk holds a
stop it never saw. An end the fleet's register could not be told (Redis unreachable)
is kept in the host's register (``ended``) until told, and then as told (``told``): a
host writes its own entries (the stops it holds, the ends it recorded) back where the
fleet's register lost them (passed over as unreadable, deleted) or holds older ones, at
its start, whenever it judges a fleet document, and at each poll of its follower
(:func:`poll_own_entries`). Redis unreachable, the host's
records hold alone and nothing blocks a start.

Kept apart from :mod:`cfgcore.experiments.guardrails` (the statistics, the shared logs)
so that a process that only serves flags imports none of that.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgspec

from cfgcore.errors import ConfigError, printable_lines, printable_name
from cfgcore.experiments.abtest import (
    GUARDRAIL_ENDS,
    GUARDRAIL_STOPPED_AT,
    RESUMED_AT,
    guardrail_stop,
    recorded_end,
    stored_control,
)

__all__ = [
    "FleetRead",
    "StartHold",
    "carry_served_stops",
    "fleet_ended",
    "fleet_reactivations",
    "hold_fleet_stops",
    "hold_stops",
    "poll_own_entries",
    "read_ended",
    "read_stops",
    "record_stops",
    "stops_path",
]

log = logging.getLogger("cfgcore.dynamic_config")


def _names(tests: Any) -> str:
    """A/B test names for a log line, sorted, each escaped: a name holds whatever its
    document or the fleet's register holds (a newline forged a second line)."""
    return ", ".join(printable_name(n) for n in sorted(tests))


GUARDRAIL_ACTOR = "guardrail"  # who the audit log says rolled a test back


def audited_records(audit_path: str, *, judged: bool = False) -> dict[str, Any]:
    """``{test: record}``: each A/B test's record as the audit log at ``audit_path``
    (rotated files included) last recorded it going live, in the order the entries
    were appended (None: deleted). Only lines naming an ``experiments.`` path are
    decoded, and lines that are no entry (cut short by a crash, say) are passed over:
    this is a start's look back, not :func:`cfgcore.runtime.audit.verify`.
    ConfigError naming the file when the log cannot be read. ``judged``: the log is in
    the state directory, and a file of it another user may have put there
    (:func:`cfgcore.runtime.atomicio.foreign_opened`) is passed over, logged."""
    from cfgcore.experiments.history import open_logs, raw_lines
    from cfgcore.runtime.atomicio import foreign_opened, state_file_fix

    records: dict[str, Any] = {}
    opened = open_logs(audit_path)
    try:
        for name, fh in opened:
            why = foreign_opened(name, fh.fileno()) if judged else ""
            if why:
                log.error(
                    "%s: audit log file refused: %s, so another user may have put it "
                    "there; its A/B test records are not read (%s)",
                    name, why, state_file_fix(why),
                )  # fmt: skip
                continue
            for raw in raw_lines(name, fh):
                if b'"experiments.' not in raw:
                    continue
                try:
                    entry = json.loads(raw)
                except (ValueError, RecursionError):
                    continue
                if not isinstance(entry, dict) or entry.get("kind") != "change":
                    continue
                where = entry.get("path")
                if isinstance(where, str) and where.startswith("experiments."):
                    if len(where) > len("experiments."):
                        records[where[len("experiments.") :]] = entry.get("new")
    finally:
        for _, fh in opened:
            fh.close()
    return records


@dataclass(frozen=True)
class StartHold:
    """A start's hold of a guardrail stop (:func:`hold_stops`): the refusal, and where
    the refused document went (``aside``: its copy) or what serves in its place
    (``instead``: the document with the tests stopped, served by the live flags only
    when the store could not take it; ``refused``: the store's document, not served)."""

    refusal: ConfigError
    aside: str | None = None
    instead: Any = None
    refused: Any = None


def stops_path(store: Any, audit_path: str | None = None) -> str | None:
    """The stop register of ``store``: ``.<flag file>.guardrail-stops.json`` beside a
    flag file (beside the file a symlink points to, as its lock); for another store,
    beside its cache file, else beside ``audit_path`` (the dynamic-config manager's
    audit log); None when there is neither."""
    path = getattr(store, "path", None) if getattr(store, "kind", None) == "file" else None
    # Beside the state directory's flags.json, a cache file or the audit log: a file
    # cfgcore writes in its state directory, judged as those are (_read_register).
    judged = path is None or bool(getattr(store, "state_file", False))
    if path is None:
        path = getattr(store, "cache_path", None) or audit_path
        if path is None:
            return None
    directory, base = os.path.split(os.path.realpath(os.fspath(path)))
    register = os.path.join(directory, f".{base}.guardrail-stops.json")
    if judged:
        _JUDGED_REGISTERS.add(register)
    return register


# The registers stops_path() placed beside a file cfgcore writes in its state directory
# (the state directory's flags.json, a fleet store's cache file, the audit log): read
# only when another local user cannot have put them there
# (:func:`cfgcore.runtime.atomicio.foreign_state_file`), as those files are. One beside
# a flag file named explicitly is the deployment's directory's, read whoever owns it.
_JUDGED_REGISTERS: set[str] = set()


def _read_register(path: str) -> bytes:
    """The register's bytes (OSError: none, unreadable, or another user's:
    :class:`~cfgcore.runtime.atomicio.ForeignStateFile` names it and the fix)."""
    from cfgcore.runtime.atomicio import read_regular, read_state_file

    read = read_state_file if path in _JUDGED_REGISTERS else read_regular
    return read(path, 16 << 20)


def _write_register(path: str, data: bytes) -> None:
    """Write the register (another user's, refused when read, is replaced by this
    user's: :func:`~cfgcore.runtime.atomicio.write_state_file`)."""
    from cfgcore.runtime.atomicio import atomic_write, write_state_file

    write = write_state_file if path in _JUDGED_REGISTERS else atomic_write
    write(path, data, mode=0o640)


def read_stops(path: str | None) -> dict[str, Any]:
    """``{test: record}``: the guardrail stops the register at ``path`` holds ({} when
    it is missing; a damaged one is logged as an ERROR and read as empty, the audit
    log then being the only holder)."""
    if path is None:
        return {}
    try:
        data = json.loads(_read_register(path))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, RecursionError) as exc:
        log.error("cannot read the guardrail stop register %s: %s", path, exc)
        return {}
    tests = data.get("tests") if isinstance(data, dict) else None
    if not isinstance(tests, dict):
        log.error("the guardrail stop register %s holds no tests: read as empty", path)
        return {}
    return {n: r for n, r in tests.items() if guardrail_stop(r) is not None}


def read_ended(path: str | None) -> dict[str, float]:
    """``{test: time}``: the ends of guardrail stops (a resume, a deletion) the register
    at ``path`` recorded for the fleet's register (``ended``: a Redis store's stops end
    fleet-wide only when written there; until then this host's record of the end holds
    against the fleet's older stop). {} when there are none or it cannot be read."""
    return _times(path, "ended")


def read_told(path: str | None) -> dict[str, float]:
    """``{test: time}``: the ends this host recorded and the fleet's register was told
    (``told``; moved there from ``ended`` by :func:`forget_ended`), kept so that the host
    can write an end back where the fleet's register lost it (whoever can write Redis
    replaced it with a value no reader takes, or deleted it): an end is what keeps a host
    that was down when the test was deleted or resumed, its register still holding the
    stop, from stopping the test again at its start. A stop recorded since drops it. {}
    when there are none or it cannot be read."""
    return _times(path, "told")


def _times(path: str | None, field: str) -> dict[str, float]:
    if path is None:
        return {}
    try:
        data = json.loads(_read_register(path))
    except (OSError, ValueError, RecursionError):
        return {}  # (read_stops reports it)
    times = data.get(field) if isinstance(data, dict) else None
    if not isinstance(times, dict):
        return {}
    return {
        n: float(t)
        for n, t in times.items()
        if isinstance(t, (int, float)) and not isinstance(t, bool)
    }


def _register_data(
    tests: Mapping[str, Any], ended: Mapping[str, float], told: Mapping[str, float]
) -> bytes:
    data: dict[str, Any] = {"tests": tests}
    if ended:
        data["ended"] = ended
    if told:
        data["told"] = told
    return json.dumps(data, sort_keys=True, default=str).encode()


def forget_ended(path: str | None, told: Mapping[str, float]) -> None:
    """The ends in ``told`` (``{test: time}``), written to the fleet's register, no
    longer kept as untold in the register at ``path`` (one recorded later since stays),
    but as told (:func:`read_told`). Never raises (logged)."""
    if path is None or not told:
        return
    from cfgcore.runtime.atomicio import FileLock
    from cfgcore.runtime.flagstore import LOCK_TIMEOUT

    try:
        with FileLock(path + ".lock", mode=0o640, timeout=LOCK_TIMEOUT, restrict=True):
            ends = read_ended(path)
            gone = [n for n, at in told.items() if n in ends and ends[n] <= at]
            if not gone:
                return
            sent = read_told(path)
            for name in gone:
                at = ends.pop(name)
                sent[name] = max(at, sent.get(name, at))
            _write_register(path, _register_data(read_stops(path), ends, sent))
    except Exception as exc:
        log.error("cannot write the guardrail stop register %s: %s", path, exc)


def write_stops(
    path: str, changes: Mapping[str, Any], ended: Mapping[str, float] | None = None
) -> None:
    """Apply ``changes`` (``{test: record}``; None: the stop is over) to the register at
    ``path``, under its lock, atomically; ``ended``: the time of each end (kept, the
    latest per test, for a Redis store's fleet register: :func:`read_ended`). Raises
    OSError/ConfigError."""
    from cfgcore.runtime.atomicio import FileLock
    from cfgcore.runtime.flagstore import LOCK_TIMEOUT

    with FileLock(path + ".lock", mode=0o640, timeout=LOCK_TIMEOUT, restrict=True):
        tests, ends, sent = read_stops(path), read_ended(path), read_told(path)
        for name, record in changes.items():
            if record is None:
                tests.pop(name, None)
            else:
                tests[name] = record
                at = guardrail_stop(record)
                if at is not None and sent.get(name, at) <= at:
                    sent.pop(name, None)  # (a stop since: the end is no longer this host's)
        for name, at in (ended or {}).items():
            ends[name] = max(at, ends.get(name, at))
        _write_register(path, _register_data(tests, ends, sent))


def record_stops(store: Any, audit_path: str | None, old: Any, new: Any) -> None:
    """A flag document of ``store`` went live (``old`` -> ``new``): the guardrail stops
    it starts, changes or ends (an explicit resume, a deletion) written to the store's
    register (:func:`stops_path`), so that they hold at a start whatever became of the
    audit log. Nothing is written (nor looked up) when no stop changed. Never raises
    (logged)."""
    if old.experiments is new.experiments:
        return
    changes: dict[str, Any] = {}
    for name in old.experiments.keys() | new.experiments.keys():
        was, now = old.experiments.get(name), new.experiments.get(name)
        if was == now:
            continue
        if guardrail_stop(now) is not None:
            changes[name] = now
        elif guardrail_stop(was) is not None:
            changes[name] = None
    fleet = hasattr(store, "write_stop_register")
    ended = {
        name: _ended_at(old.experiments.get(name), new.experiments.get(name),
                        recorded_end(new.metadata, name))
        for name, record in changes.items()
        if record is None and fleet
    }  # fmt: skip
    path = stops_path(store, audit_path) if changes else None
    if path is not None:
        try:
            write_stops(path, changes, ended)
        except Exception as exc:  # the audit log still holds it
            log.error("cannot write the guardrail stop register %s: %s", path, exc)
    if fleet and path is None:
        path = stops_path(store, audit_path)
    if fleet and path is not None:
        # A test changed whose stop this host ended while the fleet's register could
        # not be told (created again under the name, say): told now (an end no later
        # than the one stored there changes nothing).
        untold = read_ended(path)
        for name in old.experiments.keys() | new.experiments.keys():
            if name in untold and name not in changes:
                if old.experiments.get(name) != new.experiments.get(name):
                    changes[name] = None
                    ended[name] = untold[name]
    if changes and fleet:
        entries = {
            n: (ended[n], None) if r is None else (guardrail_stop(r), r) for n, r in changes.items()
        }
        if _write_fleet(store, entries):
            forget_ended(path, ended)


def _ended_at(was: Any, now: Any, recorded: float | None = None) -> float:
    """When the guardrail stop of record ``was`` ended, ``now`` being the test's record
    since (None: deleted): its explicit resume's time, else the end the document
    records (``recorded``: :func:`~cfgcore.experiments.abtest.recorded_end`, a
    deletion's), else now on this host's clock, and never before the stop (an end ends
    the stop it follows, whatever the clock)."""
    at = guardrail_stop(was) or 0.0
    resumed = now.get(RESUMED_AT) if isinstance(now, Mapping) else None
    if isinstance(resumed, (int, float)) and not isinstance(resumed, bool) and resumed >= at:
        return float(resumed)
    if recorded is not None and recorded >= at:
        return recorded
    return max(time.time(), at)


def _write_fleet(store: Any, entries: Mapping[str, tuple[Any, Any]]) -> bool:
    """``entries`` written to the fleet's stop register of ``store`` (a Redis store:
    :meth:`~cfgcore.runtime.redis_store.RedisFlagStore.write_stop_register`). Never
    raises (False: Redis unreachable, the host's register and audit log still hold
    them, and this host's next start writes them again)."""
    if not entries:
        return True
    try:
        store.write_stop_register(entries)
    except Exception as exc:
        log.warning(
            "%s: cannot write the fleet's guardrail stop register (%s): the stops and "
            "their ends are kept on this host, and written to the fleet's at its next "
            "start", store.url, exc,
        )  # fmt: skip
        return False
    return True


def _read_fleet(store: Any) -> dict[str, tuple[float, Any]] | None:
    """The fleet's stop register of ``store`` (``{test: (time, record or None)}``), or
    None: not a Redis store, or Redis unreachable (logged; the host's records still
    hold, and nothing blocks a start)."""
    if not hasattr(store, "read_stop_register"):
        return None
    try:
        if getattr(store, "serving_cache", False):
            # Just found unreachable (serving the cache file): not tried again, a start
            # waits for no second connection timeout.
            raise ConnectionError(store.last_error or "Redis unreachable")
        entries: dict[str, tuple[float, Any]] = store.read_stop_register()
    except Exception as exc:
        log.warning(
            "%s: cannot read the fleet's guardrail stop register (%s): the flags are "
            "checked against this host's stops on record only", store.url, exc,
        )  # fmt: skip
        return None
    return entries


class FleetRead:
    """The fleet's stop register of one store, read at most once, on first use: one
    document judged asks it twice while the live document holds a guardrail stop
    (:func:`fleet_ended` for the fleet's end of that stop, then
    :func:`fleet_reactivations` or :func:`hold_fleet_stops` for the stops it holds),
    and one read serves both."""

    __slots__ = ("_entries", "_read", "store")

    def __init__(self, store: Any) -> None:
        self.store = store
        self._read = False
        self._entries: dict[str, tuple[float, Any]] | None = None

    def entries(self) -> dict[str, tuple[float, Any]] | None:
        """:func:`_read_fleet`'s answer, read the first time only."""
        if not self._read:
            self._entries = _read_fleet(self.store)
            self._read = True
        return self._entries


def fleet_reactivations(
    store: Any,
    derived: Any,
    where: str,
    audit_path: str | None = None,
    fleet: FleetRead | None = None,
) -> list[Any]:
    """What in ``derived`` (a document of ``store`` judged while running) would serve
    again a test the fleet's stop register holds stopped: a running process that never
    served the stop (it missed the document that holds it) refuses it too; a stop this
    host recorded the end of (:func:`read_ended`, :func:`read_told`, beside
    ``audit_path`` when the store has no cache file) is over. This host's own entries
    the register lacks or holds older are written back to it on the way (never raises:
    logged). [] for a store without such a register, or when Redis cannot be read.
    ``fleet``: the register as already read for this document (:class:`FleetRead`)."""
    held = _fleet_held(store, audit_path, fleet)
    return _reactivated(held, derived, where)[0] if held else []


def _fleet_held(store: Any, audit_path: str | None, fleet: FleetRead | None) -> dict[str, Any]:
    """``{test: record}``: the stops the fleet's register of ``store`` holds in force
    for this host (none it recorded the end of), this host's own entries the register
    lacks or holds older written back on the way; {} for a store without such a
    register, or when Redis cannot be read."""
    entries = (fleet or FleetRead(store)).entries()
    if entries is None:
        return {}
    if audit_path is None:  # (the default dynamic-config manager's, as at start)
        from cfgcore.runtime.flagstore import default_state_dir

        audit_path = os.path.join(default_state_dir(), "flags.audit.jsonl")
    register = stops_path(store, audit_path)
    ends = _known_ends(register)
    # This host's own entries the register lost (passed over, deleted) or holds older,
    # written back now, not only at this host's next start.
    _write_fleet(store, _own_entries_missing(entries, read_stops(register), ends))
    held = {}
    for name, (_at, record) in entries.items():
        at = guardrail_stop(record)
        if at is not None and ends.get(name, -1.0) < at:
            held[name] = record
    return held


def hold_fleet_stops(
    store: Any,
    derived: Any,
    where: str,
    audit_path: str | None = None,
    fleet: FleetRead | None = None,
) -> Any:
    """A document this host is about to write to ``store`` itself (``derived``: a
    change through :meth:`~cfgcore.runtime.flags.LiveFlags.update`) judged against the
    fleet's stop register as the documents it takes from the store are
    (:func:`fleet_reactivations`): each test the register holds stopped, with no end
    since, that it would serve again is written stopped (its flag serving the control),
    the stop as the register records it and the rest of the test as the write made it
    (:func:`_stopped_write`), and logged as an ERROR. Not refused: the stop the register
    holds may be one this document never recorded (a document from before it put back),
    and only a document that records the stop can be resumed explicitly; refusing would
    leave no write that ends it. ``derived`` itself when no such test (nor a register,
    nor Redis to read it); ConfigError naming the test when it cannot be written
    stopped consistently (its flag without a record, and the register's record names
    no variant of that flag as the control). ``fleet``: the register as already read
    (:class:`FleetRead`)."""
    held = _fleet_held(store, audit_path, fleet)
    if not held:
        return derived
    problems, again = _reactivated(held, derived, where)
    if not again:
        return derived
    from cfgcore.runtime.flags import derive

    stopped = derive(_stopped_write(derived, again, where), where)
    log.error(
        "this write to %s would serve again the variants of A/B tests the fleet's "
        "guardrail stop register holds stopped (%s): %s; written with those tests "
        "stopped; resume a test explicitly with cfgcore experiment start NAME (audited)",
        where, _names(again), printable_lines(ConfigError(problems)),
    )  # fmt: skip
    return stopped


def carry_served_stops(served: Any, derived: Any, where: str) -> Any:
    """A change made through cfgcore on a stored document this process refused
    (``derived``, about to be written), with each guardrail stop ``served`` (what this
    process serves) holds in force carried into the test's record where the change
    keeps the test stopped without it: the stored document (one from before the stop,
    put back) never recorded it, so the stop or update that repairs the store would
    otherwise write it as a stop by hand, and the stop register, the history and a
    later resume would read the guardrail's stop as ended. The stop as ``served``
    records it (status, reason, times), the rest of the test as the change made it
    (:func:`_stopped_write`), as :func:`hold_fleet_stops` writes the stops of the
    fleet's register. A test the change deletes, serves again (refused by the caller's
    judge), or stops by a guardrail of its own since, is left as the change made it.
    ``derived`` itself when there is nothing to carry."""
    from cfgcore.experiments.abtest import guardrail_reactivations

    carried: dict[str, Any] = {}
    for name, record in served.experiments.items():
        at = guardrail_stop(record)
        if at is None:
            continue
        ended = recorded_end(derived.metadata, name)
        if ended is not None and ended >= at:
            continue  # ended through the API on the document written (a delete)
        mine = derived.experiments.get(name)
        if not isinstance(mine, Mapping) or mine.get("status", "active") != "stopped":
            continue  # deleted, or served again
        own = guardrail_stop(mine)
        if own is not None and own >= at:
            continue  # the stop, or a later guardrail's, is recorded
        alone = msgspec.structs.replace(derived, experiments={name: record})
        if guardrail_reactivations(alone, derived, where):
            continue  # its flag serves its variants again: the caller's judge refuses it
        carried[name] = record
    if not carried:
        return derived
    from cfgcore.runtime.flags import derive

    return derive(_stopped_write(derived, carried, where), where)


def fleet_ended(
    store: Any, old: Any, audit_path: str | None = None, fleet: FleetRead | None = None
) -> Any:
    """``old`` (a document this host served: the live one, or the one its cache file
    holds at start) with each guardrail stop that a later end ends marked over (its
    record resumed at that end): an end in the fleet's stop register (the test deleted
    or resumed on another host while this one was down, or missed the document), or
    one this host recorded (:func:`read_ended`, :func:`read_told`). A host judges the
    documents it takes against what it served before; without this, a host whose cache
    file (or live document) still held the stop refused the re-created test's document
    although the fleet had ended the stop. ``old`` itself when it holds no guardrail
    stop (nothing is read), for a store without such a register, or when Redis cannot
    be read (the host's own ends still count). ``fleet``: the register as already read
    for the document judged (:class:`FleetRead`; it reads it on first use)."""
    stopped = {n: at for n, r in old.experiments.items() if (at := guardrail_stop(r)) is not None}
    if not stopped or not hasattr(store, "read_stop_register"):
        return old
    if audit_path is None:  # (the default dynamic-config manager's, as at start)
        from cfgcore.runtime.flagstore import default_state_dir

        audit_path = os.path.join(default_state_dir(), "flags.audit.jsonl")
    ends = _known_ends(stops_path(store, audit_path))
    for name, (at, record) in ((fleet or FleetRead(store)).entries() or {}).items():
        if record is None and name in stopped:
            ends[name] = max(at, ends.get(name, at))
    over = {n: ends[n] for n, at in stopped.items() if n in ends and ends[n] >= at}
    if not over:
        return old
    experiments = dict(old.experiments)
    for name, at in over.items():
        experiments[name] = {**experiments[name], RESUMED_AT: at}
    return msgspec.structs.replace(old, experiments=experiments)


def poll_own_entries(store: Any, audit_path: str | None = None) -> Any:
    """The check a flag set of ``store`` (a Redis store) runs after each poll of its
    follower (:meth:`~cfgcore.runtime.redis_store.RedisFlagStore.add_poll_check`): this
    host's own entries of the fleet's stop register (the stops it holds, the ends it
    recorded: its register beside its cache file, else beside ``audit_path``) that the
    register lost (deleted, given a value no reader takes, an older entry, Redis's data
    lost) are written back within one poll, not only at this host's next start or the
    next document it judges: a host that was down, its register still holding the
    stop, would otherwise stop the re-created test again at its start. The register
    file is read again only when it changed; an unchanged register costs one small
    script (:meth:`~cfgcore.runtime.redis_store.RedisFlagStore.stop_register_lost`).
    Never raises (logged once per distinct failure)."""
    if audit_path is None:  # (the default dynamic-config manager's, as at start)
        from cfgcore.runtime.flagstore import default_state_dir

        audit_path = os.path.join(default_state_dir(), "flags.audit.jsonl")
    register = stops_path(store, audit_path)
    seen: list[Any] = [None, {}, None]  # register file's identity, its entries, last failure

    def own_entries() -> dict[str, tuple[float, Any]]:
        try:
            st = os.stat(register) if register is not None else None
        except OSError:
            st = None
        key = None if st is None else (st.st_ino, st.st_size, st.st_mtime_ns)
        if key is None:
            seen[0], seen[1] = None, {}
        elif key != seen[0]:
            seen[0] = key
            seen[1] = _own_entries_missing({}, read_stops(register), _known_ends(register))
        own: dict[str, tuple[float, Any]] = seen[1]
        return own

    def check() -> None:
        keys = getattr(store, "keys", None)
        if keys is not None and keys.verifies and not keys.signs:
            return  # (it writes no entry: see write_stop_register)
        own = own_entries()
        if not own:
            return
        try:
            lost = store.stop_register_lost({n: (at, r is None) for n, (at, r) in own.items()})
        except Exception as exc:
            if seen[2] != str(exc):
                seen[2] = str(exc)
                log.warning(
                    "%s: cannot check the fleet's guardrail stop register for this host's "
                    "entries (%s); they are written back at its next start", store.url, exc,
                )  # fmt: skip
            return
        seen[2] = None
        if lost and _write_fleet(store, {n: own[n] for n in lost}):
            log.warning(
                "%s: the fleet's guardrail stop register had lost this host's entries of "
                "%s (deleted, replaced by a value no reader takes, or an older entry): "
                "written back", store.url, _names(lost),
            )  # fmt: skip

    return check


def _known_ends(register: str | None) -> dict[str, float]:
    """Every end of a stop this host recorded (:func:`read_ended`, :func:`read_told`),
    the latest per test."""
    ends = read_told(register)
    for name, at in read_ended(register).items():
        ends[name] = max(at, ends.get(name, at))
    return ends


def _own_entries_missing(
    fleet: Mapping[str, tuple[float, Any]], stops: Mapping[str, Any], ends: Mapping[str, float]
) -> dict[str, tuple[float, Any]]:
    """This host's own entries of the fleet's register (``{test: (time, record or
    None)}``) that ``fleet`` (the register as read: an entry passed over is not in it)
    lacks or holds older: each stop in ``stops`` (held by this host), and each end in
    ``ends`` that no later stop of its own follows (an end as late as the stop ends it).
    The register's script keeps the later entry of each test whoever sends it."""
    out: dict[str, tuple[float, Any]] = {}
    for name, at in ends.items():
        mine = guardrail_stop(stops.get(name))
        if mine is not None and mine > at:
            continue
        known = fleet.get(name)
        if known is None or known[0] < at or (known[0] == at and known[1] is not None):
            out[name] = (at, None)
    for name, record in stops.items():
        stop = guardrail_stop(record)
        if stop is None or name in out or (name in ends and ends[name] >= stop):
            continue
        known = fleet.get(name)
        if known is None or known[0] < stop:
            out[name] = (stop, record)
    return out


def _ended_in(derived: Any, held: Mapping[str, Any]) -> dict[str, float]:
    """``{test: end}``: the stops of ``held`` whose end document ``derived`` records, no
    earlier than the stop (:func:`~cfgcore.experiments.abtest.recorded_end`)."""
    out = {}
    for name, record in held.items():
        end, stop = recorded_end(derived.metadata, name), guardrail_stop(record)
        if end is not None and stop is not None and end >= stop:
            out[name] = end
    return out


def _held_records(
    store: Any, derived: Any, audit_path: str | None, register: str | None
) -> dict[str, Any]:
    """``{test: record}`` of every guardrail stop in force, from the register, the
    audit log (when there is one, for stops from before the register) and the
    document itself; the register is brought up to date with the others (a stop
    recorded before it existed then outlives the log's rotation)."""
    held = read_stops(register)
    found: dict[str, Any] = {}
    if audit_path is not None and os.path.lexists(audit_path):
        try:
            audited = audited_records(audit_path, judged=register in _JUDGED_REGISTERS)
        except ConfigError as exc:
            log.error(
                "%s; the flags of %s are checked for A/B tests their guardrails stopped "
                "by the stop register only", exc, store.url,
            )  # fmt: skip
            audited = {}
        found.update((n, r) for n, r in audited.items() if guardrail_stop(r) is not None)
    found.update(
        (n, r) for n, r in derived.experiments.items() if guardrail_stop(r) is not None
    )  # fmt: skip
    missing: dict[str, Any] = {}
    for name, record in found.items():
        if name not in held or guardrail_stop(record) > guardrail_stop(held[name]):  # type: ignore[operator]
            held[name] = missing[name] = record
    # A stop the document records the end of (GUARDRAIL_ENDS: resumed or deleted
    # through the API on a document that recorded it) is over, whatever the fleet's
    # register holds now: that end is this host's too, as if it had served the
    # document that made it, and is sent to the fleet's register below (which may
    # have lost its entry while no host that recorded it ran).
    # The window left: an end the document does not record (the test removed by a
    # document published or edited by hand, or the field dropped by a tool rewriting
    # the metadata) lives only in the registers of the hosts that recorded it. If the
    # fleet's entry is lost and this host starts before one of them runs a poll
    # (poll_own_entries), nothing here tells that end from no end: the stop this host
    # holds is kept, written to the fleet's register, and the test served again is
    # stopped for the whole fleet. Holding it is the safe way to be wrong; an explicit
    # resume ends it.
    ended_here = _ended_in(derived, held)
    for name in ended_here:
        del held[name]
        missing[name] = None
    if ended_here and register is not None and hasattr(store, "write_stop_register"):
        try:
            write_stops(register, dict.fromkeys(ended_here), ended_here)
        except Exception as exc:
            log.error("cannot write the guardrail stop register %s: %s", register, exc)
    fleet = _read_fleet(store)
    if fleet is not None:
        # The fleet's register (Redis), merged: a stop this host never saw is held, an
        # end the fleet recorded (a resume, a deletion: not before the stop) ends the
        # stop here too; what this host holds and the fleet lacks is written to it.
        ends = read_ended(register)  # (not told yet)
        known_ends = _known_ends(register)  # (and told: see read_told)
        for name, at in ended_here.items():  # (kept even where the register file is not)
            ends[name] = max(at, ends.get(name, at))
            known_ends[name] = max(at, known_ends.get(name, at))
        for name, (when, record) in fleet.items():
            mine = guardrail_stop(held.get(name))
            if record is not None:
                theirs = guardrail_stop(record)
                if theirs is not None and known_ends.get(name, -1.0) >= theirs:
                    # Ended on this host after that stop (the fleet's register not told,
                    # or told and then given an older stop: a host whose register
                    # still held it wrote it back where the end was lost): the end is
                    # sent below.
                    continue
                if theirs is not None and (mine is None or theirs > mine):
                    held[name] = missing[name] = record
            elif mine is not None and when >= mine:
                del held[name]
                missing[name] = None
        # What this host holds or ended and the fleet's register lacks (never told, or
        # lost: passed over as unreadable, deleted) or holds older, written to it.
        ahead = _own_entries_missing(fleet, held, known_ends)
        told = {
            n: at for n, at in ends.items()
            if (n in fleet and fleet[n][0] >= at) or (n in ahead and ahead[n][1] is None)
        }  # fmt: skip
        if _write_fleet(store, ahead):
            forget_ended(register, told)
    if missing and register is not None:
        try:
            write_stops(register, missing)
        except Exception as exc:
            log.error("cannot write the guardrail stop register %s: %s", register, exc)
    return held


def _reactivated(
    held: dict[str, Any], derived: Any, where: str
) -> tuple[list[Any], dict[str, Any]]:
    from cfgcore.experiments.abtest import guardrail_reactivations

    problems, again = [], {}
    for name, record in held.items():
        old = msgspec.structs.replace(derived, experiments={name: record})
        found = guardrail_reactivations(old, derived, where)
        if found:
            problems += found
            again[name] = record
    return problems, again


def hold_stops(store: Any, audit_path: str | None = None) -> tuple[Any, StartHold | None]:
    """At start, before any document of ``store`` is served (every reader passes here,
    :class:`~cfgcore.runtime.flags.LiveFlags`, whichever manager opened it): a
    document that serves again the variants of an A/B test a guardrail stopped, with no
    explicit resume since (a file put back from before the stop while every process was
    down, its record made active or its flag splitting users again; a fleet document
    published so; a stop the store could not take, served from the live flags only),
    is refused as a running process refuses it. The stops in force are read from the
    stop register (:func:`stops_path`, written whenever a stop goes live, never
    rotated), the audit log at ``audit_path`` (default: the one beside a flag file,
    when there is one) and the document's own records.

    A flag file is kept as ``<flag file>.refused-<UTC time>`` and written back with
    those tests stopped (their recorded records, their flags serving the control to
    everyone), so no process serves the harmful variant again; the document is then
    read as usual (``(None, hold)``). Another store's document (Redis) is not written
    back: ``instead`` is a copy with the tests stopped, for this process to serve, as a
    running process keeps serving the stop while the store holds the refused document;
    ``(document read, hold or None)``. Only a document that serves A/B tests, or that was
    not written through the store (a hand edit), is looked at. Never raises, but for
    the read of a store that is not a file (which the caller would make anyway):
    a failure is logged and the document served as it is."""
    from cfgcore.runtime.flags import derive

    if getattr(store, "kind", None) == "file":
        if audit_path is None:  # (the dynamic-config manager's, beside the file)
            audit_path = os.path.splitext(os.path.abspath(store.path))[0] + ".audit.jsonl"
        doc, look = _unlocked(store, store.path)
        return (None, _hold_in_file(store, audit_path, doc)) if look else (doc, None)
    doc = store.read()
    if store.kind == "memory":
        return doc, None
    if audit_path is None:  # (the default dynamic-config manager's)
        from cfgcore.runtime.flagstore import default_state_dir

        audit_path = os.path.join(default_state_dir(), "flags.audit.jsonl")
    try:
        derived = derive(doc.snapshot, doc.origin)
    except ConfigError:
        return doc, None  # a document that cannot serve: its load refuses it, saying why
    try:
        if doc.writer and not derived.experiments and not derived.metadata.get(GUARDRAIL_ENDS):
            return doc, None  # (ends it records: this host's held stops they end are over)
        where = doc.origin or store.url
        held = _held_records(store, derived, audit_path, stops_path(store, audit_path))
        problems, again = _reactivated(held, derived, where)
        if not problems:
            return doc, None
        snap = _stopped_snapshot(doc.snapshot, again, where)
    except Exception:  # a start is never blocked by this look back
        log.exception(
            "cannot check the flags of %s for A/B tests their guardrails stopped", store.url
        )
        return doc, None
    refusal = ConfigError(problems)
    names, shown = _names(again), printable_lines(refusal)
    aside = _keep_refused(stops_path(store, audit_path), doc)
    try:
        # Written back with those tests stopped (compare-and-set: only over the document
        # judged), so every host serves the stop and changes apply to it again.
        def stop_again(current: Any) -> Any:
            if current != doc.snapshot:
                raise ConfigError("the store's document changed meanwhile", file=where)
            return snap

        _old, stored = store.update(stop_again, actor=GUARDRAIL_ACTOR)
    except Exception as exc:  # (Redis unreachable: the cache file's document, say)
        import dataclasses

        from cfgcore.runtime.flagstore import checksum, writer_identity
        from cfgcore.snapshot import encode_snapshot

        log.error(
            "the flag document %s (version %d) would serve again the variants of A/B "
            "tests their guardrails stopped (%s): %s; it was kept as %s; it could not be "
            "written back with those tests stopped (%s): this process serves them "
            "stopped; resume a test explicitly with cfgcore experiment start NAME "
            "(audited), or publish a document that keeps it stopped",
            where, doc.version, names, shown, aside, printable_lines(exc),
        )  # fmt: skip
        data = encode_snapshot(snap, "msgpack", file=where)
        instead = dataclasses.replace(
            doc, snapshot=snap, data=data, checksum=checksum(data),
            writer=writer_identity(GUARDRAIL_ACTOR),
        )  # fmt: skip
        return doc, StartHold(refusal, aside=aside, instead=instead, refused=doc)
    log.error(
        "the flag document %s (version %d) would serve again the variants of A/B tests "
        "their guardrails stopped (%s): %s; it was kept as %s and version %d written "
        "with those tests stopped; resume a test explicitly with cfgcore experiment "
        "start NAME (audited)",
        where, doc.version, names, shown, aside, stored.version,
    )  # fmt: skip
    return stored, StartHold(refusal, aside=aside)


def _keep_refused(register: str | None, doc: Any) -> str | None:
    """A copy of a store's refused document (MessagePack) beside its stop register,
    ``flags-v<version>.msgpack.refused-<UTC time>``; None when it cannot be written."""
    from cfgcore.runtime.atomicio import atomic_write

    if register is None or not doc.data:
        return None
    aside = _aside_path(os.path.join(os.path.dirname(register), f"flags-v{doc.version}.msgpack"))
    try:
        os.makedirs(os.path.dirname(aside), exist_ok=True)
        atomic_write(aside, doc.data, mode=0o640)
    except OSError as exc:
        log.error("cannot keep the refused flag document as %s: %s", aside, exc)
        return None
    return aside


def _unlocked(store: Any, path: str) -> tuple[Any, bool]:
    """The flag file's document read without its lock, and whether :func:`hold_stops`
    looks at it (it serves A/B tests, or was edited by hand): a file written through the
    store that serves none costs a start no second read (a document looked at is
    judged as read, and again under the lock only if it would be written back:
    :func:`_hold_in_file`). ``(None, False)`` when it cannot be read or served
    (the caller's read reports it)."""
    from cfgcore.runtime.flags import derive

    try:
        data, origin = store.read_bytes()
        doc = store.document(data, origin)
        if origin != path:
            return doc, False  # the bundled seed (no file)
        return doc, not (doc.writer and not derive(doc.snapshot, origin).experiments)
    except ConfigError:
        return None, False


def _hold_in_file(store: Any, audit_path: str | None, unlocked: Any) -> StartHold | None:
    """:func:`hold_stops` for a flag file, whose document read without the lock is
    ``unlocked``. Judged first as read so: only a document that would be written back
    takes the store's lock (creating ``.<file>.lock`` beside it) and is judged again
    under it. A reader never writes the flag file's directory otherwise, which may be a
    read-only mount (a Kubernetes ConfigMap) or another user's: ``cfgcore health``,
    ``cfgcore eval`` and a service only serving the file need no lock there."""
    from cfgcore.runtime.atomicio import atomic_write
    from cfgcore.runtime.flags import derive

    path = store.path
    try:
        if not _would_refuse(store, unlocked, audit_path):
            return None
    except Exception:  # a start is never blocked by this look back
        log.exception("cannot check the flag file %s for A/B tests their guardrails stopped", path)
        return None
    try:
        with store.locked():
            try:
                data, origin = store.read_bytes()
                doc = store.document(data, origin)
                derived = derive(doc.snapshot, origin)
            except ConfigError:
                return None  # no file, or one that cannot serve: refused when loaded
            if origin != path:
                return None  # the bundled seed (no file)
            if doc.writer and not derived.experiments:
                # Written through the store, serving no A/B test: nothing to look up (a
                # test's flag splitting users without its record is a hand edit's).
                return None
            held = _held_records(store, derived, audit_path, stops_path(store))
            if not held:
                return None
            problems, again = _reactivated(held, derived, path)
            if not problems:
                return None
            refusal = ConfigError(problems)
            good = _stops_again(doc.snapshot, again, store.format, path)
            real = os.path.realpath(path)
            aside = _aside_path(real)
            mode = os.stat(real).st_mode & 0o777
            atomic_write(aside, data, mode=mode)
            atomic_write(path, good, follow_symlinks=True)
    except (OSError, ConfigError) as exc:
        log.error(
            "the flag file %s may serve again an A/B test its guardrail stopped, and it "
            "could not be set aside: %s", path, exc,
        )  # fmt: skip
        return None
    except Exception:  # a start is never blocked by this look back
        log.exception("cannot check the flag file %s for A/B tests their guardrails stopped", path)
        return None
    names, shown = _names(again), printable_lines(refusal)
    log.error(
        "the flag file %s would serve again the variants of A/B tests their guardrails "
        "stopped (%s, as the stop register and audit log last recorded them): %s; it was "
        "kept as %s and written back with those tests stopped; resume a test explicitly "
        "with cfgcore experiment start NAME (audited)",
        path, names, shown, aside,
    )  # fmt: skip
    return StartHold(refusal, aside=aside)


def _would_refuse(store: Any, doc: Any, audit_path: str | None) -> bool:
    """Whether :func:`_hold_in_file` refuses the flag file's document ``doc`` (read
    without the lock): it serves again the variants of a test a stop in force holds."""
    from cfgcore.runtime.flags import derive

    try:
        derived = derive(doc.snapshot, doc.origin)
    except ConfigError:
        return False  # one that cannot serve: refused when loaded
    held = _held_records(store, derived, audit_path, stops_path(store))
    return bool(held) and bool(_reactivated(held, derived, store.path)[0])


def _aside_path(real: str) -> str:
    """A free ``<file>.refused-<UTC time>[-n]`` beside ``real``."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    aside = f"{real}.refused-{stamp}"
    n = 1
    while os.path.lexists(aside):
        n += 1
        aside = f"{real}.refused-{stamp}-{n}"
    return aside


def _stops_again(snap: Any, held: dict[str, Any], fmt: Any, path: str) -> bytes:
    """The bytes of ``snap`` with each test of ``held`` stopped (:func:`_stopped_snapshot`)."""
    from cfgcore.snapshot import encode_snapshot

    data: bytes = encode_snapshot(_stopped_snapshot(snap, held, path), fmt, file=path)
    return data


def _stopped_snapshot(snap: Any, held: dict[str, Any], path: str) -> Any:
    """``snap`` with each test of ``held`` stopped as its recorded record says (its flag,
    if the document has one, serving that record's control)."""
    from cfgcore.snapshot import Rule

    flags, experiments = dict(snap.flags), dict(snap.experiments)
    for name, record in held.items():
        flag = flags.get(name)
        if flag is None and name not in experiments:
            continue  # deleted in the file: serves nothing of it
        experiments[name] = record
        if flag is not None:
            control = stored_control(record)
            if not isinstance(control, str) or control not in flag.variants:
                raise ConfigError(
                    f"the recorded stop of A/B test {name!r} names no variant of its "
                    f"flag as its control ({control!r})", file=path,
                )  # fmt: skip
            when = flag.rules[0].when if flag.rules else None
            flags[name] = msgspec.structs.replace(flag, rules=[Rule(when=when, serve=control)])
    return msgspec.structs.replace(snap, flags=flags, experiments=experiments)


#: The fields of a test's record that its guardrail stop sets (:func:`~cfgcore.
#: experiments.abtest._stopped`): what a write made stopped takes from the register.
_STOP_FIELDS = ("status", "stopped_reason", "stopped_at", GUARDRAIL_STOPPED_AT)


def _stopped_write(snap: Any, held: dict[str, Any], path: str) -> Any:
    """``snap`` (a document this host writes) with each test of ``held`` (``{test: the
    register's record}``) stopped: only the stop comes from the register (status,
    reason, times; no resume before it), the rest of the test is the write's own (its
    description, dates, metrics, split, control, layer slice, ``since``...), and its
    flag keeps the write's variants, schedule and targeting, serving the write's
    control. Where the write holds no record of the test (its flag splitting users
    without one), the register's record is the only one there is and is written as it
    is. ConfigError naming the test when the result could not serve the stop (its
    control no variant of its flag)."""
    from cfgcore.snapshot import Rule

    flags, experiments = dict(snap.flags), dict(snap.experiments)
    for name, record in held.items():
        mine, flag = experiments.get(name), flags.get(name)
        if flag is None and name not in experiments:
            continue  # deleted by the write: serves nothing of it
        if isinstance(mine, Mapping):
            stop = {k: v for k, v in mine.items() if k not in _STOP_FIELDS and k != RESUMED_AT}
            stop.update((k, record[k]) for k in _STOP_FIELDS if k in record)
            stop["status"] = "stopped"
            stop[GUARDRAIL_STOPPED_AT] = guardrail_stop(record)
            if not isinstance(stop.get("stopped_reason"), str):
                stop["stopped_reason"] = "guardrail"
            if _seconds(stop.get("stopped_at")) is None:
                stop["stopped_at"] = stop[GUARDRAIL_STOPPED_AT]
        else:
            stop = dict(record)
        experiments[name] = stop
        if flag is None:
            continue
        control = stored_control(stop)
        if not isinstance(control, str) or control not in (flag.variants or {}):
            whose = "the record written" if isinstance(mine, Mapping) else "the register"
            raise ConfigError(
                f"A/B test {name!r}: this write would serve the test's variants again, "
                "and it cannot be written stopped, as the fleet's guardrail stop register "
                f"holds it: its control {control!r:.60} is no variant of flags.{name} "
                f"({whose} names it); "
                "write the test with its flag serving the control", file=path,
            )  # fmt: skip
        when = flag.rules[0].when if flag.rules else None
        flags[name] = msgspec.structs.replace(flag, rules=[Rule(when=when, serve=control)])
    return msgspec.structs.replace(snap, flags=flags, experiments=experiments)


def _seconds(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None
