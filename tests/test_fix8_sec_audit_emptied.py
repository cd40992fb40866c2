"""An audit log emptied (or cut) together with its ``.head`` record.

The ``.head`` record (written by rename after every append, signed with the audit key)
is the writer's record outside the log: while it stays, ``cfgcore audit verify``
catches a log truncated to zero bytes or to any shorter prefix, with or without the
key. Whoever can write the state directory can remove it too, and then a log emptied
with it reads like one never written. Two things still tell:

* a writer that wrote to the log remembers how far: finding the chain behind that, it
  records a ``tamper`` entry before appending (it used to restart the chain at seq 1
  and sign a fresh head, so the next verify passed);
* with the key, verify refuses a log with no ``.head`` (a signed log always has one),
  however few entries it has; ``--checkpoint`` catches it without the key.

A log that never had entries still verifies without a key.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from cfgcore.runtime.audit import HEAD_SUFFIX, AuditLog, audit_keys, verify

KEY = "k1:" + "A" * 43 + "="


@pytest.fixture
def ring():
    return audit_keys({"CFGCORE_AUDIT_KEY": KEY})


def _entry(n: int) -> dict:
    return {"kind": "update", "source": "api", "path": f"app.k{n}", "new": n, "actor": "ops"}


def _cli_verify(path, *, key: bool, checkpoint=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CFGCORE_AUDIT")}
    if key:
        env["CFGCORE_AUDIT_KEY"] = KEY
    args = [sys.executable, "-m", "cfgcore", "audit", "verify", str(path)]
    if checkpoint is not None:
        args += ["--checkpoint", str(checkpoint)]
    return subprocess.run(args, capture_output=True, text=True, env=env, timeout=60)


@pytest.mark.parametrize("keep", [0, 2], ids=["emptied", "cut-to-prefix"])
@pytest.mark.parametrize("signed", [True, False], ids=["signed", "unsigned"])
def test_a_writer_records_a_cut_made_with_its_head_before_appending(tmp_path, ring, keep, signed):
    path = tmp_path / "flags.audit.jsonl"
    log = AuditLog(path, keys=ring if signed else ())
    for n in range(5):
        log.append(_entry(n))
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:keep]))  # same inode: truncated in place
    os.remove(str(path) + HEAD_SUFFIX)
    log.append(_entry(99))
    result = verify(path, keys=ring if signed else ())
    assert not result.ok
    assert "tampered with" in result.problem
    if keep == 0 or not signed:  # (a signed writer finding entries and no head said so already)
        assert "wrote entries up to seq 5" in result.problem
    # ...and it stays reported, whatever is appended next.
    log.append(_entry(100))
    assert not verify(path, keys=ring if signed else ()).ok


def test_the_log_and_head_removed_and_recreated_is_caught_by_the_writer(tmp_path, ring):
    path = tmp_path / "flags.audit.jsonl"
    log = AuditLog(path, keys=ring)
    for n in range(3):
        log.append(_entry(n))
    os.remove(path)
    os.remove(str(path) + HEAD_SUFFIX)
    log.append(_entry(3))
    result = verify(path, keys=ring)
    assert not result.ok and "the log emptied" in result.problem


def test_truncated_to_zero_with_the_head_left_fails_with_and_without_the_key(tmp_path, ring):
    path = tmp_path / "flags.audit.jsonl"
    log = AuditLog(path, keys=ring)
    for n in range(3):
        log.append(_entry(n))
    path.write_bytes(b"")
    for key in (True, False):
        out = _cli_verify(path, key=key)
        assert out.returncode == 1, out.stdout
        assert "entries seq 1..3 are missing" in out.stdout


def test_a_signed_log_emptied_with_its_head_fails_verify_with_the_key(tmp_path, ring):
    path = tmp_path / "flags.audit.jsonl"
    log = AuditLog(path, keys=ring)
    log.append(_entry(0))
    path.write_bytes(b"")
    os.remove(str(path) + HEAD_SUFFIX)
    out = _cli_verify(path, key=True)
    assert out.returncode == 1
    assert ".head: missing, and the log holds no entry: emptied with its head" in out.stdout


def test_without_the_key_a_checkpoint_catches_it(tmp_path, ring):
    path = tmp_path / "state" / "flags.audit.jsonl"
    checkpoint = tmp_path / "outside" / "audit.checkpoint"
    checkpoint.parent.mkdir()
    log = AuditLog(path, keys=ring)
    for n in range(3):
        log.append(_entry(n))
    assert _cli_verify(path, key=True, checkpoint=checkpoint).returncode == 0
    path.write_bytes(b"")
    os.remove(str(path) + HEAD_SUFFIX)
    out = _cli_verify(path, key=False, checkpoint=checkpoint)
    assert out.returncode == 1 and "rolled back" in out.stdout


def test_a_log_that_never_had_entries_still_verifies(tmp_path):
    path = tmp_path / "flags.audit.jsonl"
    path.write_bytes(b"")  # created ahead of the first write, with its owner and mode
    out = _cli_verify(path, key=False)
    assert out.returncode == 0, out.stdout
    log = AuditLog(path, keys=())
    log.append(_entry(0))
    assert verify(path, keys=()).ok


def test_a_new_writer_after_a_rotation_by_another_is_no_cut(tmp_path, ring):
    # seq never goes back across rotations (by this writer or another): no false alarm.
    path = tmp_path / "flags.audit.jsonl"
    a = AuditLog(path, keys=ring, max_bytes=600, backups=2)
    b = AuditLog(path, keys=ring, max_bytes=600, backups=2)
    for n in range(12):
        (a if n % 3 else b).append(_entry(n))
    result = verify(path, keys=ring)
    assert result.ok, result
