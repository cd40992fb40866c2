"""A flag's history read while the audit log rotates, third audit. ``FlagHistory``
(``cfgcore flags stale``: "unchanged for N days") listed the audit log's files by name
and opened them one after the other; a rotation in between (a service auditing a
change meanwhile) renamed each file to the next number, so one rotated file was never
read: its flags' last changes vanished from the history, and a flag changed yesterday
could be judged unchanged for months. The files are now listed and opened under the
writers' lock. Real audit logs (AuditLog), really rotated during the read."""

from __future__ import annotations

from cfgcore.experiments import history as history_mod
from cfgcore.experiments.history import FlagHistory
from cfgcore.runtime.audit import AuditLog
from cfgcore.runtime.events import ConfigChangeEvent


def _change(log: AuditLog, flag: str, n: int) -> None:
    log.record(
        ConfigChangeEvent(
            f"flags.{flag}", {"default": "off"}, {"default": f"on{n}"}, "test", n, 0.0
        )  # fmt: skip
    )


def test_a_rotation_while_the_history_is_read_loses_no_file(tmp_path, monkeypatch):
    path = tmp_path / "flags.audit.jsonl"
    log = AuditLog(path, max_bytes=1200, backups=100)
    for i in range(40):
        _change(log, f"f{i}", i)
    assert len(list(tmp_path.glob("flags.audit.jsonl.*"))) > 5  # several rotated files
    real = history_mod._entries
    calls = []

    def rotating_meanwhile(*args):
        if not calls:  # while the first (oldest) file is read, the service audits more
            for i in range(40, 50):
                _change(log, f"g{i}", i)
        calls.append(args[0])
        yield from real(*args)

    monkeypatch.setattr(history_mod, "_entries", rotating_meanwhile)
    history = FlagHistory.from_logs([path])
    assert {f"f{i}" for i in range(40)} <= set(history.changes)
    assert history.last("f39").new == {"default": "on39"}
