"""Flag history (``cfgcore flags stale``) after a writer crashed mid-line.

A writer that finds the audit log's last line cut short (a crash mid-write) ends it
with a newline before its own entries, so the cut line stays for ``cfgcore audit
verify`` to report. The history reader skipped a cut line only while it was the last
line without its newline: from the first append after the crash, every ``cfgcore
flags stale`` failed with "not an audit entry" for as long as that file was kept (the
log cannot be repaired by hand without breaking its chain). A line that is the start of
an entry cut short is skipped wherever it is; an edited line still fails.
"""

from __future__ import annotations

import pytest

from cfgcore.cli import main
from cfgcore.errors import ConfigError
from cfgcore.experiments.history import FlagHistory
from cfgcore.runtime.audit import AuditLog, verify
from cfgcore.runtime.events import ConfigChangeEvent


@pytest.fixture(autouse=True)
def _no_key(monkeypatch):
    for var in ("CFGCORE_AUDIT_KEY", "CFGCORE_AUDIT_KEY_FILE", "CFGCORE_AUDIT_CHECKPOINT"):
        monkeypatch.delenv(var, raising=False)


def _change(name: str, new, ts: float) -> ConfigChangeEvent:
    return ConfigChangeEvent(f"flags.{name}", None, new, "set_feature_flag", 1, ts, actor="ops")


def _crashed_log(tmp_path, cut: int):
    """A log whose writer died ``cut`` bytes into an entry, appended to afterwards."""
    path = tmp_path / "flags.audit.jsonl"
    AuditLog(path, keys=()).record(_change("dark_mode", {"default": "on"}, 1.7e9))
    lost = tmp_path / "lost.jsonl"  # the entry the dead writer was writing, whole
    flag = {"default": "off", "rules": [{"serve": "é€", "rollout": 2.5}]}
    AuditLog(lost, keys=()).record(_change("checkout", flag, 1.7e9 + 1))
    line = lost.read_bytes()
    with open(path, "ab") as fh:
        fh.write(line[:cut])
    AuditLog(path, keys=()).record(_change("search", {"default": "on"}, 1.7e9 + 2))
    return path, len(line)


@pytest.mark.parametrize("cut", [1, 9, 40, 95, 130, 150, -30, -3])
def test_history_reads_on_after_a_cut_line_the_next_writer_ended(tmp_path, cut):
    path, size = _crashed_log(tmp_path, cut)
    assert 0 < cut % size < size - 1
    history = FlagHistory.from_logs([path])
    assert sorted(history.changes) == ["dark_mode", "search"]
    result = verify(path, keys=())
    assert not result.ok and result.line == 2, result  # verify still reports the cut line


def test_every_cut_of_an_entry_is_skipped_and_edited_lines_still_fail(tmp_path):
    path, size = _crashed_log(tmp_path, 1)
    for cut in range(1, size - 1):
        each = tmp_path / f"cut{cut}"
        each.mkdir()
        FlagHistory.from_logs([_crashed_log(each, cut)[0]])
    lines = path.read_bytes().split(b"\n")
    for edited in (
        lines[0].replace(b'"kind":"change"', b'"kind":change', 1),  # no quotes
        lines[0].replace(b"null", b"nul", 1),
        lines[0] + b"x",  # more after the object
        b"[1, 2]",
    ):
        path.write_bytes(b"\n".join([edited, *lines[1:]]))
        with pytest.raises(ConfigError, match="not an audit entry"):
            FlagHistory.from_logs([path])


def test_flags_stale_exits_0_after_a_crash_mid_write(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("CFGCORE_USAGE", "0")
    flags = tmp_path / "flags.yaml"
    flags.write_text("flags:\n  dark_mode: {default: 'on'}\n  search: {default: 'on'}\n")
    path, _ = _crashed_log(tmp_path, 60)
    code = main(["flags", "stale", "--store", str(flags), "--audit", str(path)])
    out = capsys.readouterr()
    assert code == 0, out
    assert "not an audit entry" not in out.out + out.err
