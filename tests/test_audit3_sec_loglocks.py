"""The exposure/metric log lock and the flag-usage lock, third security round: created
0644, so any local user could flock them read-only and hold the exposure writers (and a
process's exit, which merges flag usage) up for ever. Now 0640 (an old 0644 one narrowed)
and taken with a bounded wait: a write that cannot get the lock fails as a full disk
does (counted, named), never hangs. Held by a real second process."""

from __future__ import annotations

import os
import stat

import pytest

from cfgcore.experiments import exposures
from cfgcore.experiments.exposures import Exposure, JsonLinesSink
from cfgcore.runtime import usage
from cfgcore.runtime.atomicio import LockTimeout
from cfgcore.runtime.usage import merge_usage, read_usage
from tests.test_audit3_sec_lock import holders  # noqa: F401  (fixture)


def test_a_held_exposure_log_lock_fails_the_batch_instead_of_hanging(
    tmp_path,
    holders,  # noqa: F811
    monkeypatch,
):
    monkeypatch.setattr(exposures, "LOCK_TIMEOUT", 0.3)
    sink = JsonLinesSink(tmp_path / "exposures.jsonl")
    sink.write([Exposure("t", "control", "u1", 1.7e9)])
    lock = str(tmp_path / "exposures.jsonl.lock")
    assert stat.S_IMODE(os.stat(lock).st_mode) & 0o007 == 0  # not open to other users
    holder = holders(lock)
    with pytest.raises(LockTimeout, match=r"lock held by pid \d+"):
        sink.write([Exposure("t", "control", "u2", 1.7e9)])
    holder.release()
    sink.write([Exposure("t", "variant_a", "u3", 1.7e9)])
    users = [line for line in (tmp_path / "exposures.jsonl").read_text().splitlines() if line]
    assert len(users) == 2 and '"u2"' not in "".join(users)  # all of a batch or none


def test_an_old_world_readable_exposure_lock_is_narrowed(tmp_path):
    sink = JsonLinesSink(tmp_path / "exposures.jsonl")
    lock = tmp_path / "exposures.jsonl.lock"
    lock.write_bytes(b"")
    lock.chmod(0o644)
    sink.write([Exposure("t", "control", "u1", 1.7e9)])
    assert stat.S_IMODE(os.stat(lock).st_mode) & 0o007 == 0


def test_a_held_usage_lock_fails_the_merge_instead_of_hanging(tmp_path, holders, monkeypatch):  # noqa: F811
    monkeypatch.setattr(usage, "LOCK_TIMEOUT", 0.3)
    path = tmp_path / "flag-usage.json"
    merge_usage(path, {"a": 1.7e9})
    lock = str(tmp_path / ".flag-usage.json.lock")
    assert stat.S_IMODE(os.stat(lock).st_mode) & 0o007 == 0
    holder = holders(lock)
    with pytest.raises(LockTimeout):
        merge_usage(path, {"b": 1.7e9})
    holder.release()
    merge_usage(path, {"b": 1.7e9 + 1})
    assert set(read_usage(path).flags) == {"a", "b"}
