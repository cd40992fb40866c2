"""The exposure and metric logs kept elsewhere through a symlink, and shared by a group
(review of the audit7 fix that opens them without following symlinks, 0640).

* A log path that is a symlink the deployment made (the logs kept on a volume, as
  Kubernetes deployments often do) was refused like one planted by an attacker: every
  batch was lost. A link owned by the service's user or root is followed; one owned by
  another user is still refused.
* An older log an operator had made group-writable, so that writers running as
  several users of one group could append, was narrowed to 0640: the other users'
  batches were lost from then on. Only what other users may do is taken off.
"""

from __future__ import annotations

import os
import stat

import pytest

from cfgcore.experiments.exposures import JsonLinesSink, read_exposures

REC = {"test": "t", "variant": "b", "user": "u1", "ts": 1.0}


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_log_symlinked_by_the_deployment_to_a_volume_is_written(tmp_path):
    volume = tmp_path / "volume"
    volume.mkdir()
    state = tmp_path / "state"
    state.mkdir()
    os.symlink(volume / "flags.exposures.jsonl", state / "flags.exposures.jsonl")  # dangling
    sink = JsonLinesSink(state / "flags.exposures.jsonl")
    sink.write([REC])
    sink.write([{**REC, "user": "u2"}])
    assert os.path.islink(state / "flags.exposures.jsonl")
    assert [e.user for e in read_exposures(str(volume / "flags.exposures.jsonl"))] == ["u1", "u2"]
    assert _mode(volume / "flags.exposures.jsonl") & 0o007 == 0


def test_a_state_dir_that_is_a_symlink_to_a_volume_keeps_working(tmp_path):
    volume = tmp_path / "volume"
    volume.mkdir()
    os.symlink(volume, tmp_path / "state")
    sink = JsonLinesSink(tmp_path / "state" / "x.jsonl")
    sink.write([REC])
    assert [e.user for e in read_exposures(str(volume / "x.jsonl"))] == ["u1"]


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0,
    reason="planting a symlink owned by another user needs root (os.lchown)",
)
def test_a_symlink_planted_by_another_user_is_still_refused(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious\n")
    link = tmp_path / "x.jsonl"
    os.symlink(victim, link)
    os.lchown(link, 65534, 65534)
    sink = JsonLinesSink(link)
    with pytest.raises(OSError, match="not followed"):
        sink.write([REC])
    assert victim.read_bytes() == b"precious\n"


def test_group_write_given_to_an_older_log_is_kept(tmp_path):
    path = tmp_path / "x.jsonl"
    sink = JsonLinesSink(path)
    sink.write([REC])
    os.chmod(path, 0o664)  # writers run as several users of one group
    sink.write([{**REC, "user": "u2"}])
    assert _mode(path) == 0o660  # other users lose read; the group keeps write
    assert [e.user for e in read_exposures(str(path))] == ["u1", "u2"]


def test_taking_back_an_unfinished_ingest_keeps_the_link_and_group_write(tmp_path):
    import json

    from cfgcore.experiments.exposures import recover_appends

    volume = tmp_path / "volume"
    volume.mkdir()
    state = tmp_path / "state"
    state.mkdir()
    os.symlink(volume / "x.jsonl", state / "x.jsonl")
    sink = JsonLinesSink(state / "x.jsonl")
    sink.write([REC])
    os.chmod(volume / "x.jsonl", 0o660)
    size = os.path.getsize(volume / "x.jsonl")
    crashed = json.dumps({**REC, "user": "crashed"}) + "\n"
    with open(volume / "x.jsonl", "a") as fh:
        fh.write(crashed)  # an ingest that died before removing its journal
    journal = state / "journal.json"
    journal.write_text(
        json.dumps({"appends": [{"path": str(state / "x.jsonl"), "offset": size, "data": crashed}]})
    )
    assert recover_appends(str(journal)) is True
    assert os.path.islink(state / "x.jsonl")  # the link still leads to the volume
    assert [e.user for e in read_exposures(str(volume / "x.jsonl"))] == ["u1"]
    assert _mode(volume / "x.jsonl") == 0o660
    sink.write([{**REC, "user": "u2"}])
    assert [e.user for e in read_exposures(str(volume / "x.jsonl"))] == ["u1", "u2"]
