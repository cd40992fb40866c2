"""The audit log: an append-only JSON-lines record of every change, with secret-looking
values redacted (:func:`cfgcore.runtime.redaction.redact`).
"""

from __future__ import annotations

import collections
import json
import logging
import os
import threading
import weakref
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

from cfgcore.runtime.events import ConfigChangeEvent
from cfgcore.runtime.forks import after_fork_in_child
from cfgcore.runtime.redaction import redact

log = logging.getLogger("cfgcore.events")

# --------------------------------------------------------------------------- audit log


class AuditLog:
    """Append-only record of configuration changes, as JSON lines.

    Each entry holds ``ts`` (ISO 8601 UTC), ``kind``, ``source``, ``path``, ``old``,
    ``new``, ``version`` and, for errors, ``error``; values are passed through
    :func:`redact`. Each entry is written with one ``write`` on an ``O_APPEND`` file, so
    concurrent processes never interleave inside a line. The last ``keep`` entries are
    also kept in memory (:meth:`entries`).
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, *, keep: int = 1000) -> None:
        # Resolved now: a later chdir (daemons do one) must not move the log.
        self.path = os.path.abspath(path) if path is not None else None
        self._recent: collections.deque[dict[str, Any]] = collections.deque(maxlen=keep)
        self._lock = threading.Lock()
        _AUDIT_LOGS.add(self)

    def record(self, event: ConfigChangeEvent) -> dict[str, Any]:
        """Append one event; returns the (redacted) entry. Never raises on I/O errors."""
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(event.timestamp, tz=timezone.utc).isoformat(),
            "kind": event.kind,
            "source": event.source,
            "path": event.config_path,
            "old": redact(event.config_path, event.old_value),
            "new": redact(event.config_path, event.new_value),
            "version": event.version,
        }
        if event.environment is not None:
            entry["environment"] = event.environment
        if event.error is not None:
            entry["error"] = str(event.error)
        if event.store_version is not None:
            entry["store_version"] = event.store_version
        if event.writer:
            entry["writer"] = {k: v for k, v in event.writer.items() if k != "id"}
        line = (json.dumps(entry, default=str, ensure_ascii=False) + "\n").encode("utf-8")
        with self._lock:
            self._recent.append(entry)
            if self.path is not None:
                try:
                    fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
                    try:
                        os.write(fd, line)
                    finally:
                        os.close(fd)
                except OSError:
                    log.exception("cannot append to audit log %s", self.path)
        return entry

    def record_all(self, events: Iterable[ConfigChangeEvent]) -> None:
        """:meth:`record` each event."""
        for event in events:
            self.record(event)

    def entries(self) -> list[dict[str, Any]]:
        """The most recent entries kept in memory, oldest first."""
        with self._lock:
            return list(self._recent)

    @staticmethod
    def read(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
        """Read every entry of an audit log file."""
        with open(path, encoding="utf-8") as fh:
            return [json.loads(line) for line in fh if line.strip()]


_AUDIT_LOGS: weakref.WeakSet[AuditLog] = weakref.WeakSet()


def _reset_audit_logs_after_fork() -> None:
    # A thread that was appending when the parent forked does not exist in the child,
    # so the lock it held would stay held forever there.
    for audit in list(_AUDIT_LOGS):
        audit._lock = threading.Lock()


after_fork_in_child(_reset_audit_logs_after_fork)
