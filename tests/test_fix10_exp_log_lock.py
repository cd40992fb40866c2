"""Tenth round: two services (or two hosts) that link one shared exposure or metric log
from their own state directories took two locks, each beside its own link, so their
size checks, rotations and appends interleaved (two rotations at once overwrite
backups and leave gaps the readers stop at). The lock is now beside the file the link
leads to: every writer of that file takes the same one. Rotation of a symlinked log
stays on the volume, the link kept. Real files, symlinks and processes."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.experiments import exposures
from cfgcore.experiments.exposures import (
    ExposureRecord,
    JsonLinesSink,
    LogTail,
    append_together,
    read_exposures,
)
from cfgcore.runtime.atomicio import LockTimeout
from tests.fuzz import examples


def _records(start: int, n: int, who: str = "u") -> list[dict]:
    return [
        {"test": "t", "variant": "a", "user": f"{who}{i}", "ts": float(i)}
        for i in range(start, start + n)
    ]


def _two_services(tmp_path):
    """Two state directories whose exposure logs link one file on a shared volume."""
    volume = tmp_path / "volume"
    volume.mkdir()
    target = volume / "shared.exposures.jsonl"
    links = []
    for name in ("service-a", "service-b"):
        state = tmp_path / name
        state.mkdir()
        link = state / "flags.exposures.jsonl"
        os.symlink(target, link)
        links.append(link)
    return target, links


def test_a_writer_through_one_link_waits_for_a_writer_through_the_other(tmp_path, monkeypatch):
    target, (link_a, link_b) = _two_services(tmp_path)
    a, b = JsonLinesSink(link_a), JsonLinesSink(link_b)
    monkeypatch.setattr(exposures, "LOCK_TIMEOUT", 0.2)
    with a.locked():
        # The same lock: b cannot rotate or append while a holds it.
        with pytest.raises(LockTimeout):
            b.write(_records(0, 1))
    b.write(_records(0, 1))
    assert [e.user for e in read_exposures(link_a)] == ["u0"]
    # The one lock file is beside the shared file, none beside the links.
    assert os.path.exists(f"{target}.lock")
    assert not os.path.lexists(f"{link_a}.lock") and not os.path.lexists(f"{link_b}.lock")


def test_an_ingest_through_one_link_waits_for_a_writer_through_the_other(tmp_path, monkeypatch):
    _target, (link_a, link_b) = _two_services(tmp_path)
    metrics_b = tmp_path / "service-b" / "flags.metrics.jsonl"
    a = JsonLinesSink(link_a)
    monkeypatch.setattr(exposures, "LOCK_TIMEOUT", 0.2)
    journal = str(tmp_path / "service-b" / "ingest.journal")
    with a.locked():
        with pytest.raises(LockTimeout):
            append_together(
                [(JsonLinesSink(link_b), b'{"x": 1}\n'), (JsonLinesSink(metrics_b), b'{"y": 2}\n')],
                journal,
            )
    assert not os.path.exists(journal)
    assert not os.path.exists(metrics_b)  # all or nothing: nothing was written


_WRITER = textwrap.dedent(
    """
    import sys
    from cfgcore.experiments.exposures import JsonLinesSink
    link, who, batches = sys.argv[1], sys.argv[2], int(sys.argv[3])
    sink = JsonLinesSink(link, max_bytes=2000, backups=10_000)
    for i in range(batches):
        sink.write([{"test": "t", "variant": "a", "user": f"{who}{i}-{k}", "ts": 0.0}
                    for k in range(3)])
    """
)


def test_two_services_rotating_one_shared_log_lose_no_record(tmp_path):
    """Two processes, each through its own link, append and rotate the one shared log
    at once: every record is kept, in each writer's order (one lock for both)."""
    _target, (link_a, link_b) = _two_services(tmp_path)
    batches = 300
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    procs = [
        subprocess.Popen([sys.executable, "-c", _WRITER, str(link), who, str(batches)], env=env)
        for link, who in ((link_a, "a"), (link_b, "b"))
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    users = [e.user for e in read_exposures(link_a)]
    assert len(users) == len(set(users)) == 2 * 3 * batches
    for who in "ab":
        mine = [u for u in users if u[0] == who]
        assert mine == [f"{who}{i}-{k}" for i in range(batches) for k in range(3)]


@settings(max_examples=examples(15), deadline=None)
@given(
    batches=st.lists(st.tuples(st.booleans(), st.integers(1, 6)), min_size=1, max_size=20),
    backups=st.integers(1, 4),
)
def test_writes_through_either_link_rotate_on_the_volume(tmp_path_factory, batches, backups):
    """Whichever link each batch goes through: the links stay, the rotated files are
    beside the shared file, and a reader through either link reads the newest records
    in order with no gap."""
    base = tmp_path_factory.mktemp("logs")
    _target, links = _two_services(base)
    sinks = [JsonLinesSink(link, max_bytes=300, backups=backups) for link in links]
    written = 0
    for second, k in batches:
        sinks[second].write(_records(written, k))
        written += k
    assert all(os.path.islink(link) for link in links)
    assert not any(os.path.lexists(f"{link}.lock") for link in links)  # one lock, on the volume
    for link in links:
        users = [int(e.user[1:]) for e in read_exposures(link)]
        assert users and users == list(range(users[0], written))
    tail = LogTail(links[1], ExposureRecord)
    try:
        seen: list[str] = []
        tail.read(lambda rs: seen.extend(r.user for r in rs))
        assert seen and seen[-1] == f"u{written - 1}"
    finally:
        tail.close()
