"""``cfgcore audit verify`` on logs with files or entries removed: a missing rotated
file, entries cut from the start or the end of the log, the live file gone. Retention
dropping the oldest file is the one removal that must pass."""

from __future__ import annotations

import json
import os
import tempfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.cli import main
from cfgcore.runtime import audit
from cfgcore.runtime.audit import GENESIS, AuditLog, entry_hash, log_files, verify
from tests.fuzz import examples


def _fill(path, n: int, *, max_bytes: int = 600, backups: int = 5) -> AuditLog:
    log = AuditLog(path, max_bytes=max_bytes, backups=backups)
    for i in range(n):
        log.append({"kind": "update", "path": f"k{i}", "new": i})
    return log


def _lines(path) -> list[bytes]:
    with open(path, "rb") as fh:
        return fh.read().splitlines(keepends=True)


def _write(path, lines: list[bytes]) -> None:
    with open(path, "wb") as fh:
        fh.write(b"".join(lines))


@pytest.fixture
def rotated(tmp_path):
    """30 entries across the live file and five old files (more were rotated away)."""
    path = tmp_path / "a.jsonl"
    _fill(path, 30)
    assert os.path.exists(f"{path}.5") and not os.path.exists(f"{path}.6")
    assert AuditLog.read(f"{path}.5")[0]["seq"] > 1  # retention has dropped older files
    return path


def test_retention_dropping_the_oldest_files_passes(rotated):
    result = verify(rotated)
    assert result.ok and result.tail and result.ignored == (), result
    oldest = AuditLog.read(f"{rotated}.5")[0]
    assert oldest["kind"] == "rotation" and oldest["prev"] != GENESIS
    assert AuditLog.read(rotated)[0]["kept"] == 5


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
def test_a_removed_rotated_file_is_reported(rotated, capsys, n):
    os.remove(f"{rotated}.{n}")
    result = verify(rotated)
    assert not result.ok
    assert result.file == f"{rotated}.{n}" and "missing" in result.problem, result
    assert main(["audit", "verify", str(rotated)]) == 1
    assert f"{rotated}.{n}: missing" in capsys.readouterr().out


def test_files_with_higher_numbers_are_read_past_a_gap(rotated):
    os.remove(f"{rotated}.1")
    names = [os.path.basename(f) for f in log_files(rotated)]
    assert names == ["a.jsonl.5", "a.jsonl.4", "a.jsonl.3", "a.jsonl.2", "a.jsonl"]


def test_the_live_file_removed_is_reported(rotated):
    os.remove(rotated)
    result = verify(rotated)
    assert not result.ok and result.file == str(rotated) and "removed" in result.problem


def test_old_files_left_by_a_larger_retention_are_not_part_of_the_chain(tmp_path):
    path = tmp_path / "a.jsonl"
    _fill(path, 30, backups=5)
    log = AuditLog(path, max_bytes=600, backups=2)
    while AuditLog.read(path)[0]["kept"] != 2:  # until the smaller retention rotated
        log.append({"kind": "update", "path": "x"})
    result = verify(path)
    assert result.ok, result
    assert result.ignored == tuple(f"{path}.{n}" for n in (5, 4, 3))
    assert result.files == (f"{path}.2", f"{path}.1", str(path))
    os.remove(f"{path}.2")  # but the files it kept are still required
    assert not verify(path).ok


@settings(max_examples=examples(40), deadline=None)
@given(total=st.integers(2, 12), data=st.data())
def test_entries_removed_from_the_start_of_a_log_are_reported(total, data):
    cut = data.draw(st.integers(1, total - 1))
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "b.jsonl")
        _fill(path, total, max_bytes=0)  # never rotated
        assert verify(path).ok
        _write(path, _lines(path)[cut:])
        result = verify(path)
        assert not result.ok and (result.file, result.line) == (path, 1), result
        assert f"entries seq 1..{cut} are missing" in result.problem


def test_entries_removed_from_the_start_of_the_oldest_rotated_file_are_reported(rotated):
    lines = _lines(f"{rotated}.5")
    _write(f"{rotated}.5", lines[1:])  # its rotation entry and nothing else
    result = verify(rotated)
    assert not result.ok and result.line == 1 and "removed from the start" in result.problem


def test_a_first_entry_that_claims_seq_1_must_start_at_the_genesis_hash(tmp_path):
    path = tmp_path / "c.jsonl"
    entry = {"kind": "update", "path": "k", "seq": 1, "prev": "f" * 64}
    entry["hash"] = entry_hash(entry)
    path.write_text(json.dumps(entry) + "\n")
    result = verify(path)
    assert not result.ok and "genesis" in result.problem
    entry["prev"] = GENESIS
    entry["hash"] = entry_hash(entry)
    path.write_text(json.dumps(entry) + "\n")
    assert verify(path).ok


@pytest.mark.parametrize("cut", [1, 3])
def test_entries_removed_from_the_end_are_reported_against_the_head_record(tmp_path, cut):
    path = tmp_path / "d.jsonl"
    _fill(path, 6, max_bytes=0)
    _write(path, _lines(path)[:-cut])
    result = verify(path)
    assert not result.ok and f"entries seq {7 - cut}..6 are missing" in result.problem
    # A chain alone cannot see it: without the writer's record, verify says so.
    os.remove(f"{path}.head")
    result = verify(path)
    assert result.ok and not result.tail
    assert "entries removed from the end go unnoticed" in str(result)


def test_a_replaced_last_entry_is_reported_against_the_head_record(tmp_path):
    path = tmp_path / "e.jsonl"
    _fill(path, 3, max_bytes=0)
    lines = _lines(path)
    last = json.loads(lines[-1])
    last["new"] = "forged"
    last["hash"] = entry_hash(last)  # recomputed: the chain alone is satisfied
    lines[-1] = json.dumps(last).encode() + b"\n"
    _write(path, lines)
    result = verify(path)
    assert not result.ok and "not the one written" in result.problem


def test_a_garbled_head_record_is_reported(tmp_path):
    path = tmp_path / "f.jsonl"
    _fill(path, 2, max_bytes=0)
    with open(f"{path}.head", "w") as fh:
        fh.write('{"seq": 2')
    result = verify(path)
    assert not result.ok and result.file == f"{path}.head"


@pytest.fixture(scope="module")
def no_settling():
    """Nothing writes these logs while they are verified: a failure's wait to see
    whether a rotation was under way (``_SETTLE``) would only delay the same verdict."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(audit, "_SETTLE", 0.0)
        yield


@settings(max_examples=examples(60), deadline=None)
@given(data=st.data())
def test_any_run_of_removed_lines_anywhere_in_a_rotated_log_is_reported(no_settling, data):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "g.jsonl")
        _fill(path, 30)
        files = log_files(path)
        stream = [(name, line) for name in files for line in _lines(name)]
        start = data.draw(st.integers(0, len(stream) - 1))
        length = data.draw(st.integers(1, len(stream) - start))
        kept = stream[:start] + stream[start + length :]
        for name in files:
            _write(name, [line for owner, line in kept if owner == name])
        assert not verify(path).ok
