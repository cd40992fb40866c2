"""Second security round: the audit log's files are cfgcore's own (no symlink or FIFO
planted in the state directory is followed), and the chain fields are the log's own."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from cfgcore.runtime.audit import AuditLog, entry_hash, verify
from cfgcore.runtime.events import ConfigChangeEvent

SRC = os.path.dirname(os.path.dirname(os.path.abspath(__import__("cfgcore").__file__)))

posix_only = pytest.mark.skipif(not hasattr(os, "O_NOFOLLOW"), reason="POSIX symlink semantics")


def _event(i: int) -> ConfigChangeEvent:
    return ConfigChangeEvent(f"a.k{i}", i, i + 1, "update_config", i, 1.7e9 + i, actor="ops")


@posix_only
def test_a_symlinked_head_temp_file_does_not_clobber_its_target(tmp_path):
    # Someone who can write the state directory plants the head's temporary name as a
    # link to a file of the service's user: the next append truncated and overwrote it.
    victim = tmp_path / "outside" / "precious.txt"
    victim.parent.mkdir()
    victim.write_text("keep me\n")
    state = tmp_path / "state"
    state.mkdir()
    path = state / "audit.jsonl"
    os.symlink(victim, f"{path}.head.tmp")
    log = AuditLog(path)
    log.record(_event(1))
    assert victim.read_text() == "keep me\n"
    assert verify(path).ok and verify(path).tail  # the head was still recorded


@posix_only
def test_a_symlinked_audit_log_is_not_appended_through(tmp_path, caplog):
    victim = tmp_path / "outside.txt"
    victim.write_text("keep me\n")
    state = tmp_path / "state"
    state.mkdir()
    path = state / "audit.jsonl"
    os.symlink(victim, path)
    log = AuditLog(path)
    entry = log.record(_event(1))  # never raises: kept in memory, the failure logged
    assert victim.read_text() == "keep me\n"
    assert entry["seq"] == 1 and log.entries() == [entry]
    assert any("cannot append to audit log" in r.getMessage() for r in caplog.records)


def _run(code: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": SRC}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=timeout, env=env)  # fmt: skip


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_in_place_of_the_log_neither_hangs_the_writer_nor_verify(tmp_path):
    # A FIFO planted as the log (or the head) made the next change block forever, under
    # the writers' lock, and `cfgcore audit verify` hang.
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path)
    log.record(_event(1))
    os.unlink(path)
    os.mkfifo(path)
    proc = _run(f"""
        from cfgcore.runtime.audit import AuditLog, verify
        from cfgcore.runtime.events import ConfigChangeEvent
        log = AuditLog({str(path)!r})
        e = log.record(ConfigChangeEvent("a.b", 1, 2, "update_config", 2, 1.7e9))
        print("appended", e["seq"])
        print(verify({str(path)!r}))
    """)
    assert proc.returncode == 0, proc.stderr
    assert "appended 1" in proc.stdout
    assert "not a regular file" in proc.stdout
    assert "cannot append to audit log" in proc.stderr


def test_caller_supplied_chain_fields_do_not_forge_the_in_memory_chain():
    # append() is public: an entry arriving with its own seq/prev/hash was kept as it
    # was in a log without a file, so later entries chained onto a forged link.
    log = AuditLog(None)
    first = log.record(_event(1))
    forged = log.append({"kind": "load", "source": "x", "seq": 99, "prev": "0" * 64,
                         "hash": "f" * 64})  # fmt: skip
    assert forged["seq"] == first["seq"] + 1
    assert forged["prev"] == first["hash"]
    assert forged["hash"] == entry_hash(forged)
    after = log.record(_event(2))
    assert after["seq"] == forged["seq"] + 1 and after["prev"] == forged["hash"]


def test_caller_supplied_chain_fields_are_rechained_in_the_file_too(tmp_path):
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path)
    log.record(_event(1))
    log.append({"kind": "load", "source": "x", "seq": 7, "prev": "a" * 64, "hash": "b" * 64})
    log.record(_event(2))
    result = verify(path)
    assert result.ok and result.tail and result.entries == 3, result


@posix_only
def test_a_symlinked_lock_file_creates_nothing_where_it_points(tmp_path, caplog):
    # The writers' lock file was opened with O_CREAT through a planted link: a service
    # running as root would create, say, /etc/nologin.
    victim = tmp_path / "outside" / "nologin"
    victim.parent.mkdir()
    state = tmp_path / "state"
    state.mkdir()
    path = state / "audit.jsonl"
    os.symlink(victim, f"{path}.lock")
    log = AuditLog(path)
    entry = log.record(_event(1))
    assert not os.path.lexists(victim)
    assert entry["seq"] == 1 and not path.exists()  # kept in memory, the failure logged
    assert any("cannot append to audit log" in r.getMessage() for r in caplog.records)


@pytest.mark.skipif(not hasattr(os, "fchmod"), reason="POSIX")
def test_atomic_write_sets_the_mode_on_what_it_wrote_not_on_a_swapped_name(
    tmp_path, monkeypatch, python_atomic_write
):
    # atomic_write chmod-ed its temp file by name after writing it: whoever can write the
    # directory could swap that name for a symlink in between, and the chmod followed it
    # (as root: /etc/shadow made world-readable). The race window is opened on purpose
    # here: the swap happens during the write's fsync. (The Python steps, where a test
    # can open the window; cfgcore._atomic's fchmod is on the descriptor too.)
    from cfgcore.runtime import atomicio

    victim = tmp_path / "victim"
    victim.write_text("private")
    victim.chmod(0o600)
    state = tmp_path / "state"
    state.mkdir()
    target = state / "data.json"
    real_fsync = os.fsync

    def fsync_then_swap(fd):
        real_fsync(fd)
        for name in os.listdir(state):
            if name.endswith(".tmp"):
                os.rename(state / name, state / (name + ".moved"))
                os.symlink(victim, state / name)

    monkeypatch.setattr(atomicio.os, "fsync", fsync_then_swap)
    atomicio.atomic_write(target, b"{}", mode=0o644)
    assert (victim.stat().st_mode & 0o777) == 0o600


def test_reading_a_log_whose_values_hold_line_separators(tmp_path):
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path)
    log.record(ConfigChangeEvent("a.b", "x\u2028y", "p\x0cq\x1cr", "update_config", 1, 1.7e9))
    entries = AuditLog.read(path)
    assert [(e["old"], e["new"]) for e in entries] == [("x\u2028y", "p\x0cq\x1cr")]
    assert verify(path).ok
