"""Writers of one exposure or metric log running as several users of one group (a
group-writable state directory, docs/security.md): the operator gives the log and its
lock file group write. The log kept it; the lock file was narrowed back to 0640 by its
owner's next batch, and every batch of the group's other users failed from then on
(PermissionError opening the lock, the batch counted as lost)."""

from __future__ import annotations

import os
import stat

import pytest

from cfgcore.experiments.exposures import JsonLinesSink, read_exposures

REC = {"test": "t", "variant": "a", "user": "u1", "ts": 1.0}


@pytest.mark.skipif(os.name == "nt", reason="POSIX modes")
def test_group_write_given_to_a_log_and_its_lock_stays(tmp_path):
    log = tmp_path / "flags.exposures.jsonl"
    sink = JsonLinesSink(log)
    sink.write([REC])
    lock = sink.lock_path
    os.chmod(log, 0o660)
    os.chmod(lock, 0o660)
    sink.write([REC])
    assert stat.S_IMODE(os.stat(log).st_mode) == 0o660
    assert stat.S_IMODE(os.stat(lock).st_mode) == 0o660
    os.chmod(lock, 0o666)  # other users' bits are still taken off
    sink.write([REC])
    assert stat.S_IMODE(os.stat(lock).st_mode) == 0o660
    assert len(read_exposures(log)) == 3
