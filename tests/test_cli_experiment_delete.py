"""``cfgcore experiment delete TEST``: what ``delete_ab_test`` does, from the command line.

The test's record and its flag leave the flag document in one change, audited (source
``delete_ab_test``, the actor) and taken by every process serving the store; its logged
exposures and metric events stay in the logs, and a test created again under its name
leaves them out. The store is found as by the other ``experiment`` subcommands
(``--flags``, ``--state-dir``, ``--store``). Real files, and a real redis-server.
"""

from __future__ import annotations

import json

import pytest

from cfgcore.dynamic_config import DynamicConfigurationManager
from cfgcore.runtime.audit import AuditLog, default_actor
from cfgcore.runtime.flagstore import open_store
from cfgcore.runtime.policy import AccessPolicy, set_policy
from tests.conftest import run_cli
from tests.redis_server import wait_for

SPLIT = ("--split", "control=50,green=50")


@pytest.fixture(autouse=True)
def _quiet_state(tmp_path, monkeypatch):
    for name in ("CFGCORE_CONFIG_DIR", "CFGCORE_FLAG_STORE", "CFGCORE_ACCESS_POLICY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("CFGCORE_USAGE", "0")
    monkeypatch.chdir(tmp_path)


def _stored(flags) -> tuple[set, set]:
    document = json.loads(flags.read_text())
    return set(document.get("experiments", {})), set(document.get("flags", {}))


def _deletions(audit) -> set[tuple[str, str, bool]]:
    """What the audit log records of ``delete_ab_test`` changes: (key path, actor, whether
    the new value is gone), one entry per key path the change touched."""
    return {
        (e["path"], e["actor"], e["new"] is None)
        for e in AuditLog.read(str(audit))
        if e.get("source") == "delete_ab_test"
    }


def _deleted_by(actor: str, test: str = "checkout") -> set[tuple[str, str, bool]]:
    # the test's flag and record removed, and the time it went recorded in the metadata
    return {(f"flags.{test}", actor, True), (f"experiments.{test}", actor, True),
            ("metadata", actor, False)}  # fmt: skip


def test_delete_removes_the_test_and_its_flag_audits_and_keeps_the_logs(tmp_path, capsys):
    flags = tmp_path / "flags.json"
    where = ("--flags", str(flags))
    for name in ("checkout", "banner"):
        code, _, err = run_cli(capsys, "experiment", "create", name, *SPLIT, "--start", *where)
        assert code == 0, err
    events = tmp_path / "events.jsonl"
    events.write_text(
        '{"test": "checkout", "user": "u1", "variant": "green"}\n'
        '{"test": "checkout", "user": "u1", "metric": "conversion", "value": 1}\n'
    )
    assert run_cli(capsys, "experiment", "ingest", str(events), *where)[0] == 0
    logs = {p: p.read_bytes() for p in tmp_path.glob("flags.*.jsonl") if "audit" not in p.name}
    assert len(logs) == 2 and all(b'"checkout"' in data for data in logs.values())
    code, out, err = run_cli(capsys, "experiment", "report", "checkout", "--json", *where)
    assert code == 0 and json.loads(out)["exposures"]["green"] == 1, err

    code, out, err = run_cli(capsys, "experiment", "delete", "checkout", *where)
    assert code == 0, err
    assert out == ""
    assert f"deleted A/B test checkout and its flag from {flags} (version " in err
    tests, flag_keys = _stored(flags)
    assert "checkout" not in tests and "checkout" not in flag_keys
    assert "banner" in tests and "banner" in flag_keys  # the other test untouched
    # its records stay where they were, as written
    assert {p: p.read_bytes() for p in logs} == logs
    assert _deletions(tmp_path / "flags.audit.jsonl") == _deleted_by(default_actor())

    code, out, _ = run_cli(capsys, "experiment", "list", *where)
    assert code == 0 and "checkout" not in out and "banner" in out

    # Created again under its name: a new run, which leaves the old records out.
    assert run_cli(capsys, "experiment", "create", "checkout", *SPLIT, "--start", *where)[0] == 0
    code, out, err = run_cli(capsys, "experiment", "report", "checkout", "--json", *where)
    assert code == 0, err
    report = json.loads(out)
    assert report["exposures"] == {"control": 0, "green": 0} and report["results"] == [], report


def test_an_unknown_test_is_an_error_naming_it_and_changes_nothing(tmp_path, capsys):
    flags = tmp_path / "flags.json"
    where = ("--flags", str(flags))
    assert run_cli(capsys, "experiment", "create", "checkout", *SPLIT, *where)[0] == 0
    before = flags.read_bytes()
    audit = tmp_path / "flags.audit.jsonl"
    entries = AuditLog.read(str(audit))
    code, out, err = run_cli(capsys, "experiment", "delete", "chekout", *where)
    assert code == 1 and out == ""
    assert f"chekout: no such A/B test in {flags}" in err and "checkout" in err  # did you mean
    assert flags.read_bytes() == before
    assert AuditLog.read(str(audit)) == entries
    # (and no flags file at all: said, as for start and stop)
    code, _, err = run_cli(capsys, "experiment", "delete", "x", "--flags", str(tmp_path / "none"))
    assert code == 1 and "no dynamic-config flags file" in err


def test_deleting_a_test_flag_with_flags_delete_names_the_command(tmp_path, capsys):
    flags = tmp_path / "flags.json"
    assert (
        run_cli(capsys, "experiment", "create", "checkout", *SPLIT, "--flags", str(flags))[0] == 0
    )
    before = flags.read_bytes()
    code, _, err = run_cli(capsys, "flags", "delete", "checkout", "--store", str(flags))
    assert code == 1 and flags.read_bytes() == before
    assert "delete the test instead, with cfgcore experiment delete checkout" in err
    # ... and that command does it
    assert run_cli(capsys, "experiment", "delete", "checkout", "--flags", str(flags))[0] == 0
    assert "checkout" not in _stored(flags)[1]


def test_the_state_directory_is_found_as_by_the_other_subcommands(tmp_path, capsys):
    state = tmp_path / "other-state"
    where = ("--state-dir", str(state))
    assert run_cli(capsys, "experiment", "create", "checkout", *SPLIT, *where)[0] == 0
    assert "checkout" in _stored(state / "flags.json")[0]
    code, _, err = run_cli(capsys, "experiment", "delete", "checkout", *where)
    assert code == 0, err
    assert "checkout" not in _stored(state / "flags.json")[0]
    assert _deletions(state / "flags.audit.jsonl") == _deleted_by(default_actor())


def test_the_access_policy_judges_the_delete_and_actor(tmp_path, capsys):
    flags = tmp_path / "flags.json"
    where = ("--flags", str(flags))
    assert run_cli(capsys, "experiment", "create", "checkout", *SPLIT, *where)[0] == 0
    before = flags.read_bytes()
    me = default_actor()
    set_policy(
        AccessPolicy(
            {
                "runner": {"experiment.stop": ["*"]},
                "cleaner": {"experiment.delete": ["check*"]},
                "lead": {"actor.assume": ["carol"]},
            },
            {me: ["runner", "lead"], "carol": ["cleaner"]},
        )
    )
    try:
        code, _, err = run_cli(capsys, "experiment", "delete", "checkout", *where)
        assert code == 1 and "may not experiment.delete checkout" in err, err
        assert flags.read_bytes() == before
        denied = [e for e in AuditLog.read(str(tmp_path / "flags.audit.jsonl"))
                  if e["kind"] == "denied"]  # fmt: skip
        assert [(e["actor"], e["source"]) for e in denied] == [(me, "experiment.delete")]
        code, _, err = run_cli(capsys, "experiment", "delete", "checkout", "--actor", "carol",
                               *where)  # fmt: skip
        assert code == 0, err
    finally:
        set_policy(None)
    assert _deletions(tmp_path / "flags.audit.jsonl") == _deleted_by("carol")
    assert "checkout" not in _stored(flags)[0]


def test_a_redis_store_deletion_reaches_a_serving_process(redis_server, tmp_path, capsys):
    url = redis_server.url + "?namespace=expdel&cache=off"
    where = ("--store", url, "--state-dir", str(tmp_path / "cli"))
    code, _, err = run_cli(capsys, "experiment", "create", "checkout", *SPLIT, "--start", *where)
    assert code == 0, err
    serving = DynamicConfigurationManager(
        store=url + "&poll=0.05", state_dir=tmp_path / "svc", log_exposures=False,
        record_usage=False,
    )  # fmt: skip
    try:
        assert serving.get_ab_test("checkout") is not None
        code, _, err = run_cli(capsys, "experiment", "delete", "checkout", *where)
        assert code == 0, err
        assert "deleted A/B test checkout and its flag from redis://" in err
        wait_for(lambda: serving.get_ab_test("checkout") is None)
        assert "checkout" not in serving.snapshot.flags
    finally:
        serving.close()
    store = open_store(url)
    try:
        doc = store.read()
        assert "checkout" not in doc.snapshot.experiments and "checkout" not in doc.snapshot.flags
    finally:
        store.close()
    assert _deletions(tmp_path / "cli" / "flags.audit.jsonl") == _deleted_by(default_actor())
    code, _, err = run_cli(capsys, "experiment", "delete", "checkout", *where)
    assert code == 1 and "checkout: no such A/B test in redis://" in err
