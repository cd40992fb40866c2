"""Stale flags and experiments: what ``cfgcore flags stale`` reports, with evidence.

Three kinds of stale entries, each with the evidence and a suggested action:

* ``unused``: not evaluated in the last N days by any process that records usage
  (the usage file, :mod:`cfgcore.runtime.usage`), or never recorded;
* ``fully_on`` / ``fully_off`` / ``constant``: a flag that serves the same thing to
  everyone (:mod:`cfgcore.experiments.served`, read from the compiled tables) and has
  not changed for N days (the audit log's history, :mod:`cfgcore.experiments.history`;
  else the time the whole flag document was last written, or how far back the audit
  log goes);
* ``experiment_ended``: an A/B test (in a layer or not) past its end date.

What cannot be judged yet is listed too, with why (a flag created 3 days ago is not
unused for a 30-day window; usage recorded for 10 days says nothing about 30). A flag
changed within the window is simply not stale.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

from cfgcore.compiler import compile_snapshot
from cfgcore.errors import ConfigError, Problem, format_key_path
from cfgcore.experiments.abtest import parse_iso
from cfgcore.experiments.features import flag_dependents
from cfgcore.experiments.history import FlagHistory
from cfgcore.experiments.layers import is_internal_flag
from cfgcore.experiments.served import Served, what_it_serves
from cfgcore.runtime.flags import derive
from cfgcore.runtime.flagstore import FlagDocument
from cfgcore.runtime.usage import Usage
from cfgcore.snapshot import Snapshot

__all__ = ["Evidence", "StaleEntry", "StaleReport", "document_time", "find_stale"]

DAY = 86400.0
CATEGORIES = {
    "unused": "not evaluated in the window",
    "fully_on": "on for everyone, unchanged for the window",
    "fully_off": "off for everyone, unchanged for the window",
    "constant": "one variant for everyone, unchanged for the window",
    "experiment_ended": "A/B tests past their end date",
}


# The longest window: its dates (when usage will have been recorded for it) stay
# within the years a datetime holds; a longer one ended the report with an OverflowError.
MAX_DAYS = 1_000_000


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class StaleEntry:
    """One stale flag or test: ``category`` (a key of :data:`CATEGORIES`), what makes
    it stale (``reason``), the ``evidence`` and the suggested ``action``."""

    category: str
    name: str
    reason: str
    action: str
    evidence: dict[str, Any]


@dataclass(frozen=True)
class NotJudged:
    """A check that could not be made for ``name`` yet, and why."""

    name: str
    check: str
    why: str


@dataclass(frozen=True)
class Evidence:
    """What the report is judged from besides the flags: usage, audit history, and
    when the whole flag document was last written (None if unknown)."""

    usage: Usage = field(default_factory=Usage)
    history: FlagHistory = field(default_factory=FlagHistory)
    document_time: float | None = None
    usage_file: str | None = None


@dataclass
class StaleReport:
    """The answer of :func:`find_stale`; :meth:`to_json` is the ``--json`` output."""

    now: float
    days: float
    store: str
    entries: list[StaleEntry]
    not_judged: list[NotJudged]
    notes: list[str]
    usage_file: str | None = None
    audit_logs: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "as_of": iso(self.now),
            "days": self.days,
            "store": self.store,
            "usage_file": self.usage_file,
            "audit_logs": list(self.audit_logs),
            "entries": [asdict(e) for e in self.entries],
            "not_judged": [asdict(n) for n in self.not_judged],
            "notes": list(self.notes),
        }

    def render(self) -> str:
        lines = [
            f"{self.store}: stale flags and experiments as of {iso(self.now)} "
            f"(window {self.days:g} days)"
        ]
        for category, title in CATEGORIES.items():
            found = [e for e in self.entries if e.category == category]
            if not found:
                continue
            lines += ["", f"{title} ({len(found)}):"]
            for e in found:
                lines += [f"  {e.name}: {e.reason}", f"      action: {e.action}"]
        if not self.entries:
            lines += ["", "nothing stale"]
        if self.not_judged:
            lines += ["", "not judged yet:"]
            lines += [f"  {n.name} ({n.check}): {n.why}" for n in self.not_judged]
        if self.notes:
            lines += ["", "notes:"] + [f"  {note}" for note in self.notes]
        return "\n".join(lines)


def document_time(doc: FlagDocument) -> float | None:
    """When ``doc`` was last written: its writer record's time, else the file's mtime
    (a file edited by hand, or the bundled catalog); None if neither is known."""
    written = doc.writer.get("time") if doc.writer else None
    if isinstance(written, (int, float)) and not isinstance(written, bool):
        return float(written)
    try:
        return os.path.getmtime(doc.origin) if doc.origin else None
    except OSError:
        return None


def _ago(now: float, ts: float) -> str:
    return f"{iso(ts)}, {(now - ts) / DAY:.0f} days ago"


class _Judge:
    """One report being built (keeps :func:`find_stale` readable)."""

    def __init__(
        self, snapshot: Snapshot, evidence: Evidence, days: float, now: float, origin: str | None
    ) -> None:
        self.snap, self.ev, self.days, self.now = snapshot, evidence, days, now
        self.origin = origin
        self.cutoff = now - days * DAY
        self.entries: list[StaleEntry] = []
        self.not_judged: list[NotJudged] = []
        self.notes: list[str] = []

    def delete_action(self, key: str, first: str) -> str:
        deps = flag_dependents(self.snap, key)
        after = f" (first remove it from: {', '.join(deps)})" if deps else ""
        return f"{first}, then `cfgcore flags delete {key}`{after}"

    def unused(self, keys: list[str]) -> None:
        usage = self.ev.usage
        if usage.since is None:
            self.notes.append(
                f"no flag usage recorded ({self.ev.usage_file or 'no usage file'}):"
                " unused flags not judged"
            )
            return
        if usage.since > self.cutoff:
            judged_from = iso(usage.since + self.days * DAY)
            self.notes.append(
                f"flag usage recorded only since {_ago(self.now, usage.since)}: "
                f"unused flags are judged from {judged_from}"
            )
            return
        pruned = usage.pruned_before
        for key in keys:
            last = usage.flags.get(key)
            if last is not None and last >= self.cutoff:
                continue
            created = self.ev.history.created(key)
            if created is not None and created > self.cutoff:
                self.not_judged.append(
                    NotJudged(key, "unused", f"created {_ago(self.now, created)}")
                )
                continue
            if last is None and pruned is not None and pruned >= self.cutoff:
                # dropped from the file: last evaluated at or before `pruned`, which may
                # be inside the window
                self.not_judged.append(
                    NotJudged(
                        key,
                        "unused",
                        "the usage file keeps no times at or before "
                        f"{_ago(self.now, pruned)} (CFGCORE_USAGE_RETAIN_DAYS)",
                    )
                )
                continue
            if last is not None:
                seen = _ago(self.now, last)
            elif pruned is not None:
                seen = f"not since {_ago(self.now, pruned)}, older times are not kept"
            else:
                seen = "never recorded"
            self.entries.append(
                StaleEntry(
                    "unused",
                    key,
                    f"not evaluated in the last {self.days:g} days (last evaluated: {seen})",
                    self.delete_action(key, "remove its checks from the code"),
                    {
                        "last_evaluated": None if last is None else iso(last),
                        "usage_recorded_since": iso(usage.since),
                        "usage_pruned_before": None if pruned is None else iso(pruned),
                        "usage_file": self.ev.usage_file,
                    },
                )
            )

    def unchanged_since(self, key: str) -> tuple[float | None, dict[str, Any]]:
        change = self.ev.history.last(key)
        if change is not None:
            return change.ts, {
                "last_change": iso(change.ts),
                "changed_to": change.describe(),
                "actor": change.actor,
                "source": change.source,
            }
        bounds: dict[str, Any] = {"last_change": None}
        times = []
        if self.ev.document_time is not None:
            times.append(self.ev.document_time)
            bounds["document_written"] = iso(self.ev.document_time)
        if self.ev.history.covers_since is not None:
            times.append(self.ev.history.covers_since)
            bounds["audit_log_since"] = iso(self.ev.history.covers_since)
        return (min(times) if times else None), bounds

    def rollout(self, served: Served) -> None:
        key, state = served.key, served.state
        category = {"on": "fully_on", "off": "fully_off", "constant": "constant"}.get(state)
        if category is None:
            return
        changed_at, evidence = self.unchanged_since(key)
        if changed_at is None:
            self.not_judged.append(
                NotJudged(
                    key, category, "no audit history and no time the flag document was written"
                )
            )
            return
        # A schedule that ended switched the flag off then, whatever changed before.
        since = changed_at if served.since is None else max(changed_at, served.since)
        if since > self.cutoff:
            return  # changed (or switched by its schedule) within the window
        evidence = {
            "serves": list(served.variants),
            "for_everyone": served.for_everyone,
            "others": list(served.others),
            **({"unhashable": list(served.unhashable)} if served.unhashable else {}),
            **evidence,
        }
        when = evidence.get("last_change")
        changed = (
            f"last changed {_ago(self.now, changed_at)} to: {evidence['changed_to']}"
            if when
            else f"no change since {_ago(self.now, changed_at)}"
        )
        first = {
            "fully_on": "remove the flag checks from the code, keeping the on path",
            "fully_off": "remove the code path the flag guards",
            "constant": f"use the value of variant {served.variants[0]!r} in the code",
        }[category]
        self.entries.append(
            StaleEntry(
                category,
                key,
                f"{served.describe()}; {changed}",
                self.delete_action(key, first),
                evidence,
            )
        )

    def experiments(self) -> None:
        for name, meta in self.snap.experiments.items():
            if not isinstance(meta, dict):
                continue
            end = _end_date(name, meta.get("end_date"), self.origin)
            if end is None or end > self.now:
                continue
            status = str(meta.get("status", "active"))
            evidence = {
                "end_date": iso(end),
                "status": status,
                "layer": meta.get("layer"),
                "stopped_reason": meta.get("stopped_reason"),
            }
            self.entries.append(
                StaleEntry(
                    "experiment_ended",
                    name,
                    f"ended {_ago(self.now, end)} (status: {status})",
                    f"read the results (`cfgcore experiment report {name}`), roll the winner out, "
                    f"then delete the test (`cfgcore experiment delete {name}`)",
                    evidence,
                )
            )


def _end_date(name: str, value: Any, origin: str | None) -> float | None:
    if value is None:
        return None
    try:
        when = parse_iso(str(value))
    except ValueError:
        raise ConfigError(
            [
                Problem(
                    format_key_path(("experiments", name, "end_date")),
                    f"not an ISO 8601 datetime: {value!r}",
                    file=origin,
                )
            ]
        ) from None
    if when.tzinfo is None:
        # Written by hand into the document (cfgcore writes an offset): UTC, as for
        # every stored time, so the report does not depend on the host's time zone.
        when = when.replace(tzinfo=timezone.utc)
    return when.timestamp()


def find_stale(
    snapshot: Snapshot,
    evidence: Evidence,
    *,
    days: float = 30.0,
    now: float,
    store: str = "",
) -> StaleReport:
    """The stale flags and experiments of ``snapshot`` at ``now`` (epoch seconds) over
    a window of ``days``. Raises ConfigError if the flags do not compile."""
    if not 0 < days <= MAX_DAYS:
        raise ConfigError(f"days: must be a positive number up to {MAX_DAYS:,}, got {days!r}")
    derived = derive(snapshot, store or None)
    tables = compile_snapshot(derived, file=store or None)
    judge = _Judge(derived, evidence, float(days), now, store or None)
    keys = [k for k in derived.flags if not is_internal_flag(k) and k not in derived.experiments]
    judge.unused(keys)
    served = what_it_serves(tables, now)
    for key in keys:
        judge.rollout(served[key])
    judge.experiments()
    return StaleReport(
        now,
        float(days),
        store,
        judge.entries,
        judge.not_judged,
        judge.notes,
        evidence.usage_file,
        list(evidence.history.files),
    )
