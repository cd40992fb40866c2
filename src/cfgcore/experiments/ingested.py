"""What ``cfgcore experiment ingest`` has already ingested: one fingerprint per input.

Metric events given with an ``event_id`` are known by it: the ingest leaves out those
the metric log holds already (:class:`~cfgcore.experiments.event_ids.LoggedIds`), so
a file corrected in place and ingested whole again adds only its new lines. Lines
without one cannot be told from their copies: the same file ingested twice (a batch
job re-run after it failed later on) would count them twice. So each ingest that
wrote events records its input's fingerprint (SHA-256 of the bytes read, and their
size) in ``<flags>.ingested.json`` beside the logs; an input whose fingerprint is
there is refused (exit status 3, ``EXIT_NOTHING_TO_DO``: nothing to do) unless the
operator says ``--again``.

The record keeps the last :data:`MAX_LEDGER_ENTRIES` inputs (by the time they were
ingested); older ones are dropped as an entry is added, in the same atomic rewrite
(temp file, fsync, rename). The record is read whole at every ingest: unbounded, it
would grow past :data:`MAX_LEDGER_BYTES` and stop every ingest. The bound is about
re-runs: a batch job is re-run within hours or days, while 10,000 later inputs are
27 years of daily ingests, a week of one a minute. An input older than that is no
longer known; give its lines event ids, which the logs themselves answer for, as
long as they hold the events.

The record is written by :func:`~cfgcore.experiments.exposures.append_together`
under the logs' locks, after the events reached the disk and before the ingest's
journal is removed (its commit): a crash before the commit takes back the events and
the fingerprint together, so the record never says "ingested" for events that are
not in the logs, nor the reverse. Two ingests of the same input at once are checked
under those locks too: the second one finds the first one's fingerprint.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

import msgspec

from cfgcore.errors import ConfigError
from cfgcore.runtime.atomicio import read_state_file, write_state_file

#: The ledger is a small JSON object (one entry of ~200 bytes per ingest that wrote
#: events); read whole.
MAX_LEDGER_BYTES = 64 << 20

#: Entries the ledger keeps, the newest (see the module docstring): about 2.5 MB of
#: typical entries; even entries naming inputs by paths of 4,096 bytes stay under
#: MAX_LEDGER_BYTES.
MAX_LEDGER_ENTRIES = 10_000


class Fingerprint:
    """SHA-256 and size of the bytes an ingest read, fed as they are read."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self.size = 0

    def update(self, data: bytes) -> None:
        self._hash.update(data)
        self.size += len(data)

    @property
    def key(self) -> str:
        """The ledger key: ``sha256:<hex>:<size>``."""
        return f"sha256:{self._hash.hexdigest()}:{self.size}"

    @classmethod
    def of_file(cls, fh: Any) -> Fingerprint:
        """The fingerprint of the rest of the binary file ``fh``."""
        out = cls()
        while chunk := fh.read(1 << 20):
            out.update(chunk)
        return out


class HashingReader:
    """A binary file whose ``readline`` also feeds a :class:`Fingerprint`, so the
    fingerprint is of exactly the bytes the ingest read (stdin included)."""

    def __init__(self, fh: Any, fingerprint: Fingerprint) -> None:
        self._fh, self.fingerprint = fh, fingerprint

    def readline(self, size: int = -1) -> bytes:
        line: bytes = self._fh.readline(size)
        self.fingerprint.update(line)
        return line


class IngestRecord(msgspec.Struct):
    """One ingest's entry for :func:`append_together`: the ledger file, the input's
    fingerprint, the entry to record, and whether an existing entry is overridden
    (``--again``)."""

    path: str
    key: str
    entry: dict[str, Any]
    again: bool = False
    where: str = ""


class AlreadyIngested(ConfigError):
    """The input's fingerprint is in the ledger and ``--again`` was not given."""

    def __init__(self, where: str, entry: dict[str, Any]) -> None:
        super().__init__(already_message(where, entry))
        self.entry = entry


def already_message(where: str, entry: dict[str, Any]) -> str:
    """The refusal of an input ``entry`` (its ledger entry) says was ingested: when, as
    what, and what ingesting the same content again would do to the counts, by what the
    entry knows of its metric events without an ``event_id`` (an entry written by an
    earlier release, or edited by hand, does not say: then any such event)."""
    from cfgcore.errors import printable_name

    times = entry.get("times", 1)
    more = f", {times} times in all" if _count(times) is not None and times > 1 else ""
    return (
        f"{printable_name(where)}: already ingested at {printable_name(entry.get('at'))} "
        f"(as {printable_name(entry.get('file'))}: {entry.get('exposures')} exposure(s), "
        f"{entry.get('metrics')} metric event(s){more}); nothing was ingested now: "
        f"{_again_would(entry)}. Give --again to ingest it anyway (the earlier events "
        "were removed from the logs, say)"
    )


def _count(value: Any) -> int | None:
    """``value`` if it is a count (an int, not a bool, not negative), else None."""
    return value if type(value) is int and value >= 0 else None


def _again_would(entry: dict[str, Any]) -> str:
    """What the same content ingested again would do: its metric events with an
    ``event_id`` are left out by it (the metric log holds them), its exposures change no
    count (a report counts a user's exposures to a variant once), and only its metric
    events without one would count twice."""
    with_ids = _count(entry.get("metrics_with_event_id"))
    without = _count(entry.get("metrics_without_event_id"))
    if with_ids is None or without is None:  # recorded by an earlier release
        return (
            "the same content ingested again would count twice any of its metric events "
            "without an event_id (those with one are left out by their id, and an "
            "exposure again changes no count)"
        )
    if without:
        left_out = f" (its {with_ids} with one would be left out by their id)" if with_ids else ""
        return (
            f"the same content ingested again would count its {without} metric event(s) "
            f"without an event_id twice{left_out}"
        )
    if with_ids:
        return (
            f"all its {with_ids} metric event(s) have an event_id, so the same content "
            "ingested again would count nothing twice (they are left out by their id, and "
            "an exposure again changes no count)"
        )
    return (
        "it holds no metric events, only exposures, so the same content ingested again "
        "would count nothing twice (an exposure again changes no count)"
    )


def read_ledger(path: str) -> dict[str, Any]:
    """The ledger's entries by fingerprint key ({} when there is none)."""
    try:
        # (another user's, where others may create files, is refused: ForeignStateFile)
        raw = read_state_file(path, MAX_LEDGER_BYTES)
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror or exc}", file=path) from None
    try:
        data = msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        raise ConfigError(f"unusable record of ingested inputs: {exc}", file=path) from None
    except RecursionError:  # ("[[[[...": a traceback out of every ingest)
        raise ConfigError(
            "unusable record of ingested inputs: nested too deeply", file=path
        ) from None
    entries = data.get("inputs") if isinstance(data, dict) else None
    if not isinstance(entries, dict):
        raise ConfigError("unusable record of ingested inputs: no 'inputs' object", file=path)
    return entries


def set_entry(path: str, key: str, entry: dict[str, Any] | None, *, mode: int) -> None:
    """Record ``entry`` under ``key`` (remove it for None), atomically (temp file,
    fsync, rename), keeping the newest :data:`MAX_LEDGER_ENTRIES` entries. The caller
    holds the logs' locks.

    (A recovery that takes an ingest back puts back that input's entry only: entries
    the ingest's rewrite dropped as the oldest stay dropped, as the next ingest would
    drop them.)"""
    entries = read_ledger(path)
    if entries.get(key) == entry:
        return
    if entry is None:
        entries.pop(key, None)
    else:
        entries[key] = entry
        entries = trimmed(entries, MAX_LEDGER_ENTRIES, key)
    data = msgspec.json.format(msgspec.json.encode({"inputs": entries}), indent=1)
    write_state_file(path, data + b"\n", mode=mode)


def trimmed(entries: dict[str, Any], keep: int, newest: str | None = None) -> dict[str, Any]:
    """The newest ``keep`` of ``entries``, by their ``at`` (ISO 8601 UTC texts, which
    sort as times; an entry without one counts as the oldest), ties in their order;
    the entry ``newest`` (the one just recorded) is kept whatever its time says (a
    clock stepped back)."""
    if len(entries) <= keep:
        return entries

    def when(item: tuple[int, tuple[str, Any]]) -> tuple[int, str, int]:
        key, entry = item[1]
        at = entry.get("at") if isinstance(entry, dict) else None
        return (key == newest, at if isinstance(at, str) else "", item[0])

    kept = sorted(enumerate(entries.items()), key=when)[-keep:] if keep > 0 else []
    return {k: v for _, (k, v) in sorted(kept)}


def checked_entry(record: IngestRecord) -> dict[str, Any] | None:
    """Under the logs' locks: the entry ``record.key`` has now (None: none), or
    :class:`AlreadyIngested` when it has one and ``again`` is not set."""
    before = read_ledger(record.path).get(record.key)
    if before is not None and not record.again:
        raise AlreadyIngested(record.where, before)
    if before is not None:
        times = before.get("times", 1)
        record.entry["times"] = (times if isinstance(times, int) else 1) + 1
    return before if isinstance(before, dict) or before is None else None


def early_check(path: str, key: str, where: str) -> None:
    """The refusal before reading a file's events (its line errors would be printed
    again first); the check that counts is made under the logs' locks."""
    entry = read_ledger(path).get(key)
    if isinstance(entry, dict):
        raise AlreadyIngested(where, entry)


def is_regular(fd: int) -> bool:
    import stat

    return stat.S_ISREG(os.fstat(fd).st_mode)
