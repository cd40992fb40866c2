"""The readers of the exposure and metric logs (the reports, ``read_exposures``,
``read_log``, and :class:`LogTail`, which the guardrail checks follow) hold a log's
files to the rule its writers do: where other local users may create files in the
state directory, a file of another user's at the log's name or a rotated file's name
(``<log>.1``) is refused, naming it, its owner and the fix, instead of being counted as
this service's exposures and events (a guardrail check acting on them stops a test).
Before, only the writers refused such a file: the readers counted its records.

Real files owned by another uid (root gives them away); this user's, root's and the
directory owner's files, and a private directory, read as before."""

from __future__ import annotations

import json
import os

import pytest

from cfgcore.errors import ConfigError
from cfgcore.experiments.exposures import (
    ExposureRecord,
    JsonLinesSink,
    LogTail,
    read_exposures,
    read_log,
)
from tests.planted import OTHER, SHARED_MODES, as_root, plant, shared_dir

pytestmark = as_root

MINE = {"test": "t", "variant": "a", "user": "u1", "ts": 1.0}
FORGED = {"test": "t", "variant": "b", "user": "forged", "ts": 0.5}


def _plant(path, records, uid: int = OTHER) -> None:
    """Another user's log at ``path``, holding ``records``."""
    plant(path, "".join(json.dumps(r) + "\n" for r in records), uid)


@pytest.fixture(params=list(SHARED_MODES))
def shared(request, tmp_path):
    return shared_dir(tmp_path, request.param)


def _users(path) -> list[str]:
    return [e.user for e in read_exposures(path)]


def test_a_planted_rotated_file_is_not_read(shared):
    log = shared / "flags.exposures.jsonl"
    JsonLinesSink(log).write([MINE])
    _plant(shared / "flags.exposures.jsonl.1", [FORGED])
    with pytest.raises(ConfigError) as err:
        _users(log)
    text = str(err.value)
    assert "flags.exposures.jsonl.1" in text and f"uid {OTHER}" in text, text
    (shared / "flags.exposures.jsonl.1").unlink()
    assert _users(log) == ["u1"]


def test_a_planted_current_file_is_not_followed(shared):
    log = shared / "flags.metrics.jsonl"
    JsonLinesSink(log).write([MINE])
    tail = LogTail(log, ExposureRecord)
    got: list[ExposureRecord] = []
    try:
        tail.read(got.extend)
        _plant(log, [FORGED])  # renamed over the log's name
        with pytest.raises(ConfigError, match=f"uid {OTHER}"):
            tail.read(got.extend)
    finally:
        tail.close()
    assert [r.user for r in got] == ["u1"]
    with pytest.raises(ConfigError, match="flags.metrics.jsonl"):
        list(read_log(log, ExposureRecord, rotated=False))


def test_files_of_the_directory_owner_root_and_this_user_are_read(tmp_path):
    # A group-writable state directory owned by another user (the service runs as a
    # member of its group): the owner's files are the service's as much as its own.
    d = tmp_path / "owned"
    d.mkdir()
    os.chown(d, OTHER, OTHER)
    os.chmod(d, 0o2775)
    log = d / "flags.exposures.jsonl"
    JsonLinesSink(log).write([MINE])
    _plant(d / "flags.exposures.jsonl.1", [FORGED], uid=OTHER)
    assert _users(log) == ["forged", "u1"]


@pytest.mark.parametrize("mode", [0o777, 0o2777, 0o755])
def test_an_emptydir_or_private_directory_reads_as_before(tmp_path, mode):
    # A Kubernetes emptyDir volume (0777, 2777 with an fsGroup) holding this user's
    # files; a directory only its owner may write holds nothing refused.
    d = tmp_path / "vol"
    d.mkdir()
    os.chmod(d, mode)
    log = d / "flags.exposures.jsonl"
    JsonLinesSink(log).write([MINE])
    _plant(d / "flags.exposures.jsonl.1", [FORGED], uid=0 if mode != 0o755 else OTHER)
    assert _users(log) == ["forged", "u1"]
