"""Each flag's change history, read back from audit logs.

Every flag document that goes live while a dynamic-config manager serves the store
(its own changes, the configuration manager's, file edits it reloads, fleet updates)
is audited as one ``change`` entry per changed flag: ``path`` ``flags.<name>``, the
flag before (``old``) and after (``new``), ``ts``, ``actor`` and ``source``
(:mod:`cfgcore.runtime.audit`). :class:`FlagHistory` collects those entries from one or
more logs (rotated files included, entries seen in two logs counted once), so a
caller can ask when a flag last changed and what it became.

A log proves more than the changes it holds: a flag with no entry since the log's
first entry (:attr:`FlagHistory.covers_since`) did not change through cfgcore since
then.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timezone
from typing import Any

import msgspec

from cfgcore.errors import ConfigError, Problem, parse_key_path
from cfgcore.experiments.abtest import is_boolean, parse_iso
from cfgcore.experiments.features import on_off
from cfgcore.runtime.audit import open_log_files
from cfgcore.snapshot import Flag

__all__ = ["FlagChange", "FlagHistory", "describe_flag"]


@dataclass(frozen=True)
class FlagChange:
    """One audited change of one flag: ``new`` is None when it was deleted, ``old``
    None when it was created (the stored flag definitions, as plain data)."""

    ts: float
    old: Any
    new: Any
    actor: str | None = None
    source: str | None = None

    def describe(self) -> str:
        """What the flag became: ``created``/``deleted``/its state (describe_flag)."""
        if self.new is None:
            return "deleted"
        text = describe_flag(self.new)
        return f"created: {text}" if self.old is None else text


@dataclass
class FlagHistory:
    """Audited changes per flag, oldest first, and the time the logs start."""

    changes: dict[str, list[FlagChange]] = field(default_factory=dict)
    covers_since: float | None = None
    files: list[str] = field(default_factory=list)

    def last(self, key: str) -> FlagChange | None:
        """The newest change of ``key``, or None if none is recorded."""
        found = self.changes.get(key)
        return found[-1] if found else None

    def created(self, key: str) -> float | None:
        """When ``key`` was last created (its newest entry with no ``old``), or None."""
        for change in reversed(self.changes.get(key, [])):
            if change.old is None and change.new is not None:
                return change.ts
        return None

    @classmethod
    def from_logs(cls, paths: Iterable[str | os.PathLike[str]]) -> FlagHistory:
        """Read every audit log of ``paths`` and its rotated files (missing ones are
        skipped). ConfigError naming the file and line for a line that is not an
        audit entry. An entry cut short by a crash is skipped: the last line without its
        newline, or the start of an entry that the next writer ended with its newline
        before its own entries (:func:`_cut_short`; ``cfgcore audit verify`` reports it)."""
        history = cls()
        seen: set[str] = set()
        rows: list[tuple[float, str, FlagChange]] = []
        for path in paths:
            opened = open_logs(path)
            try:
                for name, fh in opened:
                    history.files.append(name)
                    for entry in _entries(name, fh):
                        digest = str(entry.get("hash") or json.dumps(entry, sort_keys=True))
                        if digest in seen:
                            continue
                        seen.add(digest)
                        ts = _timestamp(entry.get("ts"))
                        if ts is None:
                            continue
                        if history.covers_since is None or ts < history.covers_since:
                            history.covers_since = ts
                        where = entry.get("path")
                        if entry.get("kind") != "change" or not isinstance(where, str):
                            continue
                        key = _flag_key(where)
                        if key is not None:
                            change = FlagChange(
                                ts,
                                entry.get("old"),
                                entry.get("new"),
                                entry.get("actor"),
                                entry.get("source"),
                            )
                            rows.append((ts, key, change))
            finally:  # a bad line in one file must not leave the later ones open
                for _, fh in opened:
                    fh.close()
        for _ts, key, change in sorted(rows, key=lambda row: row[0]):
            history.changes.setdefault(key, []).append(change)
        return history


def open_logs(path: str | os.PathLike[str]) -> list[tuple[str, Any]]:
    """Every file of the audit log at ``path``, oldest first, each open, as they all were
    at one moment (:func:`cfgcore.runtime.audit.open_log_files`: a rotation while they
    are opened neither hides one nor shows one twice; regular files only, so a FIFO
    planted as a rotated file is refused, never waited on; no lock taken, so a reader
    never holds up the writers). ConfigError naming a file that cannot be opened."""
    try:
        return open_log_files(path)
    except OSError as exc:
        name = exc.filename or os.fspath(path)
        raise ConfigError(f"cannot read audit log: {exc.strerror or exc}", file=name) from None


def raw_lines(path: str, fh: Any) -> Iterable[bytes]:
    """The lines of one open audit log file, read a line at a time (a planted multi-GB
    rotated file must not be read whole): a line longer than any entry cfgcore writes
    comes in pieces of at most ``_MAX_LINE + 1`` bytes. ConfigError naming the file
    when it cannot be read."""
    from cfgcore.runtime.audit import _MAX_LINE

    while True:
        try:
            raw = fh.readline(_MAX_LINE + 1)
        except OSError as exc:
            raise ConfigError(f"cannot read audit log: {exc.strerror or exc}", file=path) from None
        if not raw:
            return
        yield raw


def _entries(path: str, fh: Any) -> Iterable[dict[str, Any]]:
    """The entries of one audit log file (:func:`raw_lines`); a line longer than any
    entry cfgcore writes is a ConfigError naming the file and line, as a line that is
    not an entry."""
    from cfgcore.runtime.audit import _MAX_LINE

    with fh:
        for n, raw in enumerate(raw_lines(path, fh), 1):
            if len(raw) > _MAX_LINE:
                raise ConfigError([Problem(
                    path="", message=f"line longer than {_MAX_LINE >> 20} MiB: not an entry "
                    "cfgcore writes", file=path, line=n,
                )])  # fmt: skip
            if not raw.strip():
                continue
            try:
                entry = json.loads(raw)
            except (ValueError, RecursionError):  # RecursionError: "[[[[..." nested too deep
                # The last line without its newline, or one the next writer ended (every
                # writer does before its own entries): a write cut short by a crash. Not
                # skipped, it made `cfgcore flags stale` fail for as long as its file was
                # kept, from the first append after any crash mid-write.
                if not raw.endswith(b"\n") or _cut_short(raw):
                    continue
                entry = None
            if not isinstance(entry, dict):
                raise ConfigError(
                    [Problem(path="", message="not an audit entry", file=path, line=n)]
                )
            yield entry


def _cut_short(raw: bytes) -> bool:
    """Whether ``raw``, a line that is not JSON, is the start of a JSON object cut
    short: the input ends inside its last token (a string, a number, a literal, an
    escape, a character's UTF-8 bytes) or between two. An edited line fails before its
    end (``nul,``, a key without quotes, something after the object) and is not one."""
    text = raw.rstrip()
    try:
        doc = text.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.reason != "unexpected end of data":
            return False
        doc = text[: exc.start].decode("utf-8", "replace")
    if not doc.startswith("{"):
        return False
    try:
        json.loads(doc)
    except json.JSONDecodeError as exc:
        if exc.msg.startswith("Unterminated string"):
            return True  # (no closing quote up to the end of the line)
        if exc.msg == "Extra data":
            return False  # a whole value, then more
        return not any(c in doc[exc.pos :] for c in '",:{}[] \t')
    except (ValueError, RecursionError):
        return False
    return False


def _flag_key(path: str) -> str | None:
    """The flag a change entry's ``path`` names (``flags.checkout``, or quoted:
    ``flags["a.b"]``), else None. Logs written before flag keys were quoted name a key
    holding a dot unquoted (``flags.a.b``): all after ``flags.`` is the key there."""
    if path.startswith('flags["'):
        segs = parse_key_path(path)
        return segs[1] if len(segs) == 2 and segs[0] == "flags" else None
    return path[len("flags.") :] if path.startswith("flags.") else None


def _timestamp(value: Any) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        when = parse_iso(value)
    except ValueError:
        return None
    if when.tzinfo is None:
        # cfgcore writes "ts" with its offset; a naive one (another tool's entry) is UTC,
        # as every stored time is, not the local time of the host reading the log.
        when = when.replace(tzinfo=timezone.utc)
    return when.timestamp()


def describe_flag(data: Any) -> str:
    """A short account of a stored flag definition: ``disabled``, ``on, rollout 25%``,
    ``off, targeted``, ``default 'control', 2 rules``; ``changed`` when it cannot be
    read (redacted)."""
    try:
        flag = msgspec.convert(data, Flag)
    except (msgspec.ValidationError, TypeError):
        return "changed"
    if not flag.enabled:
        return "disabled"
    if is_boolean(flag):
        on, _off = on_off(flag)
        plain = [r for r in flag.rules if r.serve == on and r.split is None and r.when is None]
        shares = [100.0 if r.rollout is None else float(r.rollout) for r in plain]
        if (flag.default or "on") == on:
            shares.append(100.0)
        targeted = any(r.when is not None for r in flag.rules)
        share = max(shares, default=0.0)
        text = f"on, rollout {share:g}%" if share > 0 else "off"
        return text + (", targeted" if targeted else "")
    rules = len(flag.rules)
    return f"default {flag.default!r}, {rules} rule{'s' if rules != 1 else ''}"
