"""Files cfgcore appends to or locks in its state directory, where other local users may
create files (a shared sticky directory such as ``/tmp``, or a group-writable one): the
audit log and its ``.head`` record, the exposure and metric logs, the lock files of
every writer (flags, audit log, logs), and a verify's checkpoint.

Before: a regular file another user planted at a log's name was appended to (the audit
chain written into a file its owner can read and rewrite, exposures readable by them
and mixed with theirs); a ``.head`` record they planted was taken at its word (a
``tamper`` entry forged into the chain); a lock file they planted and held made every
writer wait its whole timeout, change after change (5 s an audited change, 30 s a batch
of exposures, the flag store's full timeout). Now each is judged as ``flags.json`` is
(``atomicio.foreign_state_file``), by the file actually opened (``fstat``): refused at
once, naming the file and the fix; audit entries wait in memory until it is removed,
exposure and metric batches are counted as lost and logged, never raised on the request
path. Real files owned by another uid (root gives them away), real lock holders."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from cfgcore.runtime.atomicio import FileLock, ForeignStateFile
from cfgcore.runtime.audit import AuditLog, verify
from cfgcore.runtime.events import ConfigChangeEvent
from tests.planted import OTHER, SHARED_MODES, as_root, plant, shared_dir

pytestmark = as_root

REC = {"test": "t", "variant": "b", "user": "u1", "ts": 1.0}


@pytest.fixture(params=list(SHARED_MODES))
def shared(request, tmp_path):
    return shared_dir(tmp_path, request.param)


def _event(i: int) -> ConfigChangeEvent:
    return ConfigChangeEvent(f"a.k{i}", i, i + 1, "update_config", i, 1.7e9 + i, actor="u")


HOLDER = textwrap.dedent(
    """
    import fcntl, os, sys
    fd = os.open(sys.argv[1], os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    print("held", flush=True)
    sys.stdin.readline()
    """
)


@pytest.fixture
def hold():
    """``hold(path)``: another process holds an exclusive flock on ``path`` until the
    test ends."""
    procs = []

    def start(path) -> None:
        p = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # fmt: skip
        procs.append(p)
        assert p.stdout.readline().strip() == "held"

    yield start
    for p in procs:
        p.stdin.close()
        p.wait(timeout=10)
        p.stdout.close()


# ------------------------------------------------------------------------ audit log


def test_a_planted_audit_log_is_not_appended_to(shared, caplog):
    path = shared / "flags.audit.jsonl"
    forged = b'{"kind":"update","seq":1,"prev":"0","hash":"x"}\n'
    plant(path, forged)
    audit = AuditLog(path, keys=())
    with caplog.at_level(logging.ERROR, logger="cfgcore.events"):
        audit.record(_event(1))  # never raises
        audit.record(_event(2))
    assert path.read_bytes() == forged  # (before: this service's entries appended into it)
    assert audit.pending() == 2  # waiting in memory, in order
    assert str(path) in audit.last_error and f"uid {OTHER}" in audit.last_error
    assert "CFGCORE_STATE_DIR" in audit.last_error  # the fix
    said = [r for r in caplog.records if str(path) in r.getMessage()]
    assert len(said) == 1  # once, not once per change
    # Removed by the operator: the waiting entries are the log's first, chained.
    os.unlink(path)
    assert audit.flush()
    assert [e["path"] for e in AuditLog.read(path)] == ["a.k1", "a.k2"]
    assert verify(path, keys=()).ok
    assert audit.last_error is None


def test_a_planted_symlink_at_the_audit_log_is_not_followed(shared, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious\n")
    link = shared / "flags.audit.jsonl"
    os.symlink(victim, link)
    os.lchown(link, OTHER, OTHER)
    audit = AuditLog(link, keys=())
    audit.record(_event(1))
    assert victim.read_bytes() == b"precious\n"
    assert str(link) in audit.last_error


def test_a_planted_head_record_is_not_taken_at_its_word(shared, caplog):
    path = shared / "flags.audit.jsonl"
    plant(shared / "flags.audit.jsonl.head",
           json.dumps({"seq": 99, "hash": "f" * 64, "log": path.name}).encode())  # fmt: skip
    audit = AuditLog(path, keys=())
    with caplog.at_level(logging.ERROR, logger="cfgcore.events"):
        audit.record(_event(1))
    entries = AuditLog.read(path)
    # (before: a 'tamper' entry saying seq 99 was written and removed, forged into the chain)
    assert [e["path"] for e in entries] == ["a.k1"]
    assert "tamper" not in [e["kind"] for e in entries]
    assert "flags.audit.jsonl.head" in caplog.text and f"uid {OTHER}" in caplog.text
    assert os.stat(str(path) + ".head").st_uid == os.geteuid()  # replaced by this writer's
    assert verify(path, keys=()).ok


def test_a_planted_audit_lock_held_by_its_owner_is_refused_at_once(shared, hold):
    path = shared / "flags.audit.jsonl"
    lock = shared / "flags.audit.jsonl.lock"
    plant(lock)
    hold(lock)
    audit = AuditLog(path, keys=(), lock_timeout=3)
    audit.record(_event(1))
    # (before: it waited the whole lock_timeout for every change, then said so)
    assert "another user may have put it there" in audit.last_error
    assert str(lock) in audit.last_error and f"uid {OTHER}" in audit.last_error
    assert audit.pending() == 1 and not path.exists()


# ------------------------------------------------------------- exposure / metric logs


@pytest.mark.parametrize("name", ["flags.exposures.jsonl", "flags.metrics.jsonl"])
def test_a_planted_log_is_not_appended_to(shared, name):
    from cfgcore.experiments.exposures import JsonLinesSink

    path = shared / name
    plant(path, b'{"test":"t","variant":"a","user":"planted","ts":1.0}\n')
    before = path.read_bytes()
    with pytest.raises(ForeignStateFile) as err:
        JsonLinesSink(path).write([REC])
    assert path.read_bytes() == before  # (before: this service's records appended)
    assert err.value.filename == str(path) and f"uid {OTHER}" in str(err.value)


def test_a_planted_log_lock_held_is_refused_at_once(shared, hold, monkeypatch):
    from cfgcore.experiments import exposures
    from cfgcore.experiments.exposures import JsonLinesSink

    monkeypatch.setattr(exposures, "LOCK_TIMEOUT", 3.0)
    path = shared / "flags.exposures.jsonl"
    lock = shared / "flags.exposures.jsonl.lock"
    plant(lock)
    hold(lock)
    # (before: it waited LOCK_TIMEOUT, then the batch was lost as a timeout)
    with pytest.raises(ForeignStateFile, match="another user may have put it there"):
        JsonLinesSink(path).write([REC])
    assert not path.exists()


def test_the_manager_counts_refused_exposures_and_logs_once(shared, caplog, private_state):
    """The request path never raises: exposures to a planted log are lost, counted and
    said once (not once per batch)."""
    from datetime import datetime, timedelta

    from cfgcore.dynamic_config import ABTestConfiguration, DynamicConfigurationManager

    plant(shared / "flags.exposures.jsonl", b"")
    m = DynamicConfigurationManager(state_dir=shared, record_usage=False)
    try:
        now = datetime.now()
        assert m.create_ab_test(
            ABTestConfiguration(
                "t", "", now - timedelta(days=1), now + timedelta(days=2),
                {"control": 50, "b": 50}, {"control": {}, "b": {}}, ["ctr"],
            )
        )  # fmt: skip
        with caplog.at_level(logging.ERROR, logger="cfgcore.experiments"):
            for batch in range(3):
                for u in range(5):
                    assert m.get_ab_test_variant("t", {"user_id": f"u{batch}-{u}"}) in (
                        "control",
                        "b",
                    )
                m.exposures.flush(10)
        assert m.exposures._writer.lost == 15
        assert (shared / "flags.exposures.jsonl").read_bytes() == b""
        said = [r for r in caplog.records if "flags.exposures.jsonl" in r.getMessage()
                or (r.exc_info and "flags.exposures.jsonl" in str(r.exc_info[1]))]  # fmt: skip
        assert len(said) == 1
    finally:
        m.close()


# ----------------------------------------------------------------------- lock files


def test_a_planted_flag_lock_held_is_refused_at_once(shared, hold, private_state):
    from cfgcore.dynamic_config import DynamicConfigurationManager
    from cfgcore.errors import ConfigError

    m = DynamicConfigurationManager(state_dir=shared, record_usage=False, log_exposures=False)
    try:
        lock = shared / os.path.basename(m.store.lock_path)
        assert m.store.lock_path == str(lock)
        plant(lock)
        hold(lock)
        with pytest.raises(ConfigError) as err:  # (before: after LOCK_TIMEOUT, as a timeout)
            m.set_feature_flag("x", True)
        assert "another user may have put it there" in str(err.value)
        assert str(lock) in str(err.value) and f"uid {OTHER}" in str(err.value)
    finally:
        m.close()


def test_a_reader_does_not_wait_on_a_planted_lock(shared, hold):
    lock = shared / "x.lock"
    plant(lock)
    hold(lock)
    done = threading.Event()

    def read() -> None:
        with FileLock(str(lock), shared=True, create=False):  # (before: waited for ever)
            done.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    assert done.wait(60), "a reader waited on another user's lock"


def test_a_lock_of_this_user_root_or_the_directory_owner_is_taken(shared):
    for uid in (0, os.geteuid()):
        lock = shared / f"own{uid}.lock"
        plant(lock, uid=uid)
        with FileLock(str(lock)):
            pass
    if shared.name == "sticky":
        return  # (there, only this user's or root's: anyone may be first to make a name)
    os.chown(shared, OTHER, OTHER)  # the directory owner's (an ingest run as root)
    plant(shared / "dir.lock")
    with FileLock(str(shared / "dir.lock")):
        pass


# ----------------------------------------------------------------------- checkpoint


def test_a_planted_checkpoint_is_refused(tmp_path, shared):
    log_dir = tmp_path / "state"
    log_dir.mkdir()
    path = log_dir / "flags.audit.jsonl"
    audit = AuditLog(path, keys=())
    audit.record(_event(1))
    checkpoint = shared / "audit.checkpoint"
    assert verify(path, keys=(), checkpoint=checkpoint).ok
    good = checkpoint.read_bytes()
    # Another user's copy in its place (an older one: a rollback it would hide).
    plant(checkpoint, good)
    result = verify(path, keys=(), checkpoint=checkpoint)
    assert not result.ok and f"uid {OTHER}" in result.problem
    os.unlink(checkpoint)
    assert verify(path, keys=(), checkpoint=checkpoint).ok


# ------------------------------------------------------------------ private directory


def test_a_private_directory_behaves_as_before(tmp_path, hold):
    """Another user's files (root gave them away: a restore) in a directory only its
    owner may write are appended to and locked as before."""
    from cfgcore.experiments.exposures import JsonLinesSink, read_exposures

    d = tmp_path / "private"
    d.mkdir(mode=0o755)
    log = d / "flags.exposures.jsonl"
    plant(log, b"")
    plant(d / "flags.exposures.jsonl.lock")
    JsonLinesSink(log).write([REC])
    assert [e.user for e in read_exposures(str(log))] == ["u1"]
    path = d / "flags.audit.jsonl"
    plant(path, b"")
    plant(d / "flags.audit.jsonl.lock")
    audit = AuditLog(path, keys=())
    audit.record(_event(1))
    assert audit.last_error is None and len(AuditLog.read(path)) == 1


# ------------------------------------------- records rewritten in the state directory


def test_a_planted_stop_register_is_not_read_and_is_replaced(shared, caplog):
    """The guardrail stop register holds a test stopped across restarts: one another
    user planted stopped any test they named."""
    from cfgcore.experiments.stops import read_stops, stops_path, write_stops

    # (the register beside the manager's audit log in the state directory)
    register = Path(stops_path(None, str(shared / "flags.audit.jsonl")) or "")
    assert register.parent == shared
    stop = {"status": "stopped", "stopped_reason": "guardrail: planted", "stopped_at": 1.0}
    plant(register, json.dumps({"tests": {"t": stop}}).encode())
    with caplog.at_level(logging.ERROR, logger="cfgcore.experiments"):
        assert read_stops(str(register)) == {}  # (before: 't' held stopped)
    assert str(register) in caplog.text and f"uid {OTHER}" in caplog.text
    write_stops(str(register), {"mine": {**stop, "stopped_reason": "guardrail: mine"}})
    assert os.stat(register).st_uid == os.geteuid()  # this writer's now, not theirs
    assert list(read_stops(str(register))) == ["mine"]


def test_a_planted_record_of_ingested_inputs_is_refused(shared):
    from cfgcore.errors import ConfigError
    from cfgcore.experiments.ingested import read_ledger, set_entry

    ledger = shared / "flags.ingested.json"
    plant(ledger, json.dumps({"inputs": {"k": {"ingested_at": 1.0}}}).encode())
    with pytest.raises(ConfigError) as err:  # (before: its entries taken as ingested)
        read_ledger(str(ledger))
    assert str(ledger) in str(err.value) and f"uid {OTHER}" in str(err.value)
    os.unlink(ledger)
    set_entry(str(ledger), "k", {"ingested_at": 2.0}, mode=0o640)
    assert read_ledger(str(ledger)) == {"k": {"ingested_at": 2.0}}
