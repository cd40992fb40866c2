"""The exposure and metric logs as files: who may read them, and what a writer appends
to.

The logs hold user ids and what each user did, and were created 0644 (readable by
every local user; the audit log and the logs' own locks are 0640) and opened
following symlinks: a link planted in the state directory in a log's place made the
writers append JSON lines to whatever file it named, and a FIFO swallowed the records
(then blocked the writer thread, holding the log's lock, once its buffer was full).
They are now created 0640 (an older 0644 log narrowed by its owner) and opened as the
audit log is: regular files only, no symlink, the batch counted as lost (named)
otherwise, as for a full disk.
"""

from __future__ import annotations

import os
import stat
from datetime import datetime, timedelta

import pytest

from cfgcore.dynamic_config import ABTestConfiguration, DynamicConfigurationManager
from cfgcore.experiments.exposures import JsonLinesSink, read_exposures


@pytest.fixture
def manager(tmp_path):
    m = DynamicConfigurationManager(state_dir=tmp_path, record_usage=False)
    now = datetime.now()
    assert m.create_ab_test(
        ABTestConfiguration(
            "t", "", now - timedelta(days=1), now + timedelta(days=2),
            {"control": 50, "b": 50}, {"control": {}, "b": {}}, ["ctr"],
        )
    )  # fmt: skip
    yield m
    m.close()


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def _traffic(manager, users):
    for u in users:
        manager.get_ab_test_variant("t", {"user_id": u})
        manager.record_metric("t", "ctr", 1.0, user_id=u)
    assert manager.exposures.flush(10) and manager.metrics.flush(10)


def test_the_logs_are_not_readable_by_other_users(manager, tmp_path):
    old = os.umask(0o022)  # the usual umask: 0644 files are readable by everyone
    try:
        _traffic(manager, ["u1", "u2"])
    finally:
        os.umask(old)
    for name in ("flags.exposures.jsonl", "flags.metrics.jsonl"):
        assert _mode(tmp_path / name) & 0o007 == 0, name
        assert _mode(tmp_path / name) & 0o600 == 0o600  # the service reads and writes it


def test_an_older_world_readable_log_is_narrowed_and_kept(manager, tmp_path):
    _traffic(manager, ["u1"])
    log = tmp_path / "flags.exposures.jsonl"
    os.chmod(log, 0o644)
    _traffic(manager, ["u2"])
    assert _mode(log) == 0o640
    assert {e.user for e in read_exposures(str(log))} == {"u1", "u2"}


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0,
    reason="planting a symlink owned by another user needs root (os.lchown); a link "
    "owned by the service's user or root is the deployment's own and is followed",
)
def test_a_symlink_in_a_logs_place_is_not_written_through(manager, tmp_path, caplog):
    victim = tmp_path / "elsewhere.txt"
    victim.write_bytes(b"precious\n")
    os.symlink(victim, tmp_path / "flags.exposures.jsonl")
    os.lchown(tmp_path / "flags.exposures.jsonl", 65534, 65534)  # planted by another user
    _traffic(manager, ["u1", "u2"])
    assert victim.read_bytes() == b"precious\n"
    assert manager.exposures._writer.lost >= 1  # counted as lost, as for a full disk
    assert "flags.exposures.jsonl" in caplog.text
    # the request path answered all along
    assert manager.get_ab_test_variant("t", {"user_id": "u3"}) in ("control", "b")


def test_a_fifo_in_a_logs_place_is_refused_not_blocked_on(manager, tmp_path):
    os.mkfifo(tmp_path / "flags.metrics.jsonl")
    _traffic(manager, [f"u{i}" for i in range(20)])  # flush returns: the writer is not stuck
    assert manager.metrics._writer.lost >= 1


def test_a_sink_still_appends_whole_records(tmp_path):
    sink = JsonLinesSink(tmp_path / "x.jsonl", max_bytes=200, backups=2)
    for i in range(20):
        sink.write([{"test": "t", "variant": "b", "user": f"u{i}", "ts": 1.0}])
    files = sink.files()
    assert len(files) == 3
    assert all(_mode(f) == 0o640 for f in files)
    lines = []
    for f in files:
        with open(f, "rb") as fh:
            lines += fh.read().splitlines()
    assert all(line.startswith(b"{") and line.endswith(b"}") for line in lines)
