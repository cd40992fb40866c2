"""Eighth round: deployments link the exposure and metric logs into a shared volume.
Rotating such a log renamed the link (the link became ``<log>.1``) and started a
local regular file in its place, so every later record stayed off the volume. Now
the file the link leads to is rotated beside itself and the link stays; readers
(read_exposures, LogTail, the ingest's recovery) find the rotated files there.
Real files and symlinks."""

from __future__ import annotations

import os

from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.experiments.exposures import (
    ExposureRecord,
    JsonLinesSink,
    LogTail,
    read_exposures,
)
from tests.fuzz import examples


def _records(start: int, n: int) -> list[dict]:
    return [
        {"test": "t", "variant": "a", "user": f"u{i}", "ts": float(i)}
        for i in range(start, start + n)
    ]


def test_a_symlinked_log_rotates_on_its_volume_and_keeps_the_link(tmp_path):
    state, volume = tmp_path / "state", tmp_path / "volume"
    state.mkdir()
    volume.mkdir()
    target = volume / "host-a.exposures.jsonl"
    target.write_bytes(b"")
    link = state / "flags.exposures.jsonl"
    os.symlink(target, link)

    sink = JsonLinesSink(link, max_bytes=400, backups=50)
    tail = LogTail(link, ExposureRecord)
    followed: list[str] = []
    try:
        written = 0
        for _ in range(20):
            sink.write(_records(written, 3))
            written += 3
            tail.read(lambda rs: followed.extend(r.user for r in rs))
        assert os.path.islink(link) and os.path.realpath(link) == str(target)
        # The rotated files are on the volume, none in the state directory.
        assert sorted(p for p in os.listdir(state) if not p.endswith(".lock")) == [link.name]
        assert os.path.exists(f"{target}.1") and os.path.exists(f"{target}.2")
        every = [f"u{i}" for i in range(written)]
        assert [e.user for e in read_exposures(link)] == every
        assert followed == every
        assert sink.files()[-1] == str(link) and all(
            f.startswith(str(target)) for f in sink.files()[:-1]
        )
    finally:
        tail.close()


@settings(max_examples=examples(20), deadline=None)
@given(batches=st.lists(st.integers(1, 8), min_size=1, max_size=25), backups=st.integers(1, 4))
def test_every_record_the_kept_files_hold_reads_back_in_order(tmp_path_factory, batches, backups):
    """Whatever the batches and the number of backups: the link stays, and what is
    read through it is the newest records, in order, with no gap."""
    base = tmp_path_factory.mktemp("logs")
    (base / "vol").mkdir()
    target = base / "vol" / "x.jsonl"
    link = base / "x.jsonl"
    os.symlink(target, link)
    sink = JsonLinesSink(link, max_bytes=300, backups=backups)
    written = 0
    for k in batches:
        sink.write(_records(written, k))
        written += k
    assert os.path.islink(link)
    users = [int(e.user[1:]) for e in read_exposures(link)]
    assert users and users == list(range(users[0], written))
