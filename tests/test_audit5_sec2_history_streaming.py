"""Flag history (``cfgcore flags stale``, ``FlagHistory.from_logs``) read every rotated
audit file whole: a planted multi-GB file (a sparse one costs no disk) exhausted the
reader's memory. It reads a line at a time now, and a line longer than any entry
cfgcore writes is an error naming the file and line. Real files, a real memory limit."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import cfgcore
from cfgcore.errors import ConfigError
from cfgcore.experiments.history import FlagHistory
from cfgcore.runtime.audit import AuditLog
from cfgcore.runtime.events import ConfigChangeEvent

resource = pytest.importorskip("resource", reason="RLIMIT_AS needs a POSIX system")
SRC = os.path.dirname(os.path.dirname(os.path.abspath(cfgcore.__file__)))

_CHILD = r"""
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))  # 1 GiB of address space
from cfgcore.errors import ConfigError
from cfgcore.experiments.history import FlagHistory
try:
    FlagHistory.from_logs([sys.argv[1]])
    print("read")
except ConfigError as exc:
    print("refused|" + str(exc))
"""


@pytest.fixture(autouse=True)
def _no_key(monkeypatch):
    for var in ("CFGCORE_AUDIT_KEY", "CFGCORE_AUDIT_KEY_FILE", "CFGCORE_AUDIT_CHECKPOINT"):
        monkeypatch.delenv(var, raising=False)


def _log(path) -> None:
    log = AuditLog(path, max_bytes=0)
    log.record(ConfigChangeEvent("flags.dark_mode", None, {"default": "on"}, "t", 1, 1.7e9))


def test_a_planted_huge_rotated_file_is_refused_not_read_whole(tmp_path):
    path = tmp_path / "audit.jsonl"
    _log(path)
    planted = tmp_path / "audit.jsonl.1"
    with open(planted, "wb") as fh:
        fh.truncate(4 << 30)  # 4 GiB, sparse: no newline in it
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path)],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": SRC, "CFGCORE_AUDIT_KEY": ""},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith("refused|"), proc.stdout
    assert str(planted) in proc.stdout and "line longer than 64 MiB" in proc.stdout


def test_history_reads_entries_and_skips_a_cut_short_last_line(tmp_path):
    path = tmp_path / "audit.jsonl"
    _log(path)
    with open(path, "ab") as fh:
        fh.write(b'{"kind": "change", "path": "flags.x"')  # a crash mid-write
    history = FlagHistory.from_logs([path])
    assert list(history.changes) == ["dark_mode"]
    with open(path, "ab") as fh:
        fh.write(b"\n[1, 2]\n")  # the cut line is no longer last; a non-entry follows
    with pytest.raises(ConfigError, match="not an audit entry"):
        FlagHistory.from_logs([path])
