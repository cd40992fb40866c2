"""A ``.head`` record or checkpoint nested too deeply (``[[[[...``, 4 KiB of it: anyone
who can write the state directory can put one there) raised RecursionError out of
every change's audit append (the change went live; its audit entry, the ``tamper``
entry and what the manager does after its audit step were lost) and out of ``cfgcore
audit verify``. Such a record is now one that is not a record: the writer records
the head as edited, verify reports the file.
"""

from __future__ import annotations

import pytest

from cfgcore.cli import main
from cfgcore.dynamic_config import DynamicConfigurationManager
from cfgcore.errors import ConfigError
from cfgcore.runtime.audit import AuditLog, verify
from tests.conftest import run_cli, started_experiment_state

BOMB = b"[" * 4000


@pytest.fixture(autouse=True)
def _no_key(monkeypatch):
    for var in ("CFGCORE_AUDIT_KEY", "CFGCORE_AUDIT_KEY_FILE", "CFGCORE_AUDIT_CHECKPOINT"):
        monkeypatch.delenv(var, raising=False)


def _log(tmp_path):
    path = tmp_path / "audit.jsonl"
    AuditLog(path, keys=()).append({"kind": "update", "path": "a"})
    return path


def test_verify_reports_a_head_nested_too_deeply(tmp_path, capsys):
    path = _log(tmp_path)
    (tmp_path / "audit.jsonl.head").write_bytes(BOMB)
    result = verify(path, keys=())
    assert not result.ok and result.file == f"{path}.head", result
    assert "not a record of the last entry written" in str(result)
    assert main(["audit", "verify", str(path)]) == 1
    assert "audit.jsonl.head: not a record" in capsys.readouterr().out


def test_verify_reports_a_checkpoint_nested_too_deeply(tmp_path, tmp_path_factory, capsys):
    path = _log(tmp_path)
    checkpoint = tmp_path_factory.mktemp("verifier") / "audit.cp"
    checkpoint.write_bytes(BOMB)
    result = verify(path, keys=(), checkpoint=checkpoint)
    assert not result.ok and result.file == str(checkpoint), result
    assert "not a checkpoint of an audit log" in str(result)
    assert main(["audit", "verify", "--checkpoint", str(checkpoint), str(path)]) == 1
    capsys.readouterr()


def test_a_writer_records_a_head_nested_too_deeply_as_edited(tmp_path):
    path = _log(tmp_path)
    (tmp_path / "audit.jsonl.head").write_bytes(BOMB)
    entry = AuditLog(path, keys=()).append({"kind": "update", "path": "b"})
    assert entry["seq"] == 3  # after the tamper entry seq 2
    result = verify(path, keys=())
    assert not result.ok and result.line == 2 and "tampered with" in str(result), result


def test_a_flag_change_is_audited_and_told_despite_such_a_head(tmp_path):
    flags = tmp_path / "flags.yaml"
    flags.write_text("flags:\n  a: {default: 'on'}\n")
    state = tmp_path / "state"
    DynamicConfigurationManager(str(flags), state_dir=state).close()
    manager = DynamicConfigurationManager(str(flags), state_dir=state)
    try:
        head = manager.audit.path + ".head"
        with open(head, "wb") as fh:
            fh.write(BOMB)
        manager.set_feature_flag("a", False)
        entries = AuditLog.read(manager.audit.path)
        assert [e["kind"] for e in entries][-2:] == ["tamper", "change"], entries
        assert entries[-1]["path"] == "flags.a"
    finally:
        manager.close()


def test_ingest_refuses_a_ledger_nested_too_deeply(tmp_path, monkeypatch, capsys):
    """The record of ingested inputs (``flags.ingested.json``, in the state directory)
    nested too deeply made every ``cfgcore experiment ingest`` end in a RecursionError
    traceback; it is refused naming the file, as any unusable record is, and nothing
    is written."""
    state = started_experiment_state(tmp_path, monkeypatch, capsys)
    ledger = state / "state" / "flags.ingested.json"
    ledger.write_bytes(b'{"inputs": ' + b"[" * 5000)
    batch = state / "batch.jsonl"
    batch.write_text('{"test": "t", "user": "u1", "variant": "b"}\n')
    code, _out, err = run_cli(capsys, "experiment", "ingest", str(batch))
    assert code == 1 and "Traceback" not in err, err
    assert f"{ledger}" in err and "nested too deeply" in err
    assert not (state / "state" / "flags.exposures.jsonl").exists()


def test_a_journal_nested_too_deeply_is_refused_naming_it(tmp_path):
    """An ingest's journal whose record entry is nested too deeply: a RecursionError out
    of every report, ingest and guardrail read of the logs; refused naming the file."""
    from cfgcore.experiments.exposures import recover_appends

    journal = tmp_path / "flags.ingest-journal.json"
    journal.write_bytes(
        b'{"appends": [], "ledger": {"path": "x", "key": "k", "before": {"a": ' + b"[" * 5000
    )
    with pytest.raises(ConfigError, match="unusable journal of an unfinished ingest") as caught:
        recover_appends(str(journal))
    assert str(journal) in str(caught.value)


def test_a_usage_file_nested_too_deeply_is_replaced_by_the_next_merge(tmp_path):
    """``flag-usage.json`` nested too deeply: every merge (the recorders' and the exit's)
    raised RecursionError, so usage was never recorded again, and ``cfgcore flags stale``
    ended in a traceback. It is an unusable usage file: refused naming it, replaced by
    the next merge."""
    from cfgcore.runtime.usage import merge_usage, read_usage

    path = tmp_path / "flag-usage.json"
    path.write_bytes(BOMB)
    with pytest.raises(ConfigError, match="nested too deeply") as caught:
        read_usage(path)
    assert str(path) in str(caught.value)
    merged = merge_usage(path, {"a": 1.7e9})
    assert merged.flags == {"a": 1.7e9} and read_usage(path).flags == {"a": 1.7e9}
