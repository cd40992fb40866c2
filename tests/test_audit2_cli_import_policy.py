"""`cfgcore import` writes a flags file, possibly a service's live one: the access
policy's `flags.import` judges it and the audit log beside the file records it."""

from __future__ import annotations

import json

import pytest

from cfgcore.runtime import policy
from cfgcore.runtime.audit import AuditLog, default_actor
from tests.conftest import run_cli

FLAGD = {"flags": {"new_ui": {"state": "ENABLED", "variants": {"on": True, "off": False},
                              "defaultVariant": "on"}}}  # fmt: skip

ME = default_actor()  # the OS identity running the CLI: it may act as alice
POLICY = f"""\
roles:
  importer:
    flags.import: ["*/staging/*"]
  runner:
    actor.assume: [alice]
actors:
  alice: [importer]
  "{ME}": [runner]
"""


@pytest.fixture
def setup(tmp_path, monkeypatch):
    monkeypatch.delenv("CFGCORE_ACCESS_POLICY", raising=False)
    (tmp_path / "policy.yaml").write_text(POLICY)
    (tmp_path / "staging").mkdir()
    (tmp_path / "live").mkdir()
    src = tmp_path / "flagd.json"
    src.write_text(json.dumps(FLAGD))
    policy.set_policy(str(tmp_path / "policy.yaml"))
    yield tmp_path, src
    policy.set_policy(None)


def test_an_import_the_policy_refuses_writes_nothing_and_is_audited(setup, capsys):
    tmp, src = setup
    live = tmp / "live" / "flags.json"
    live.write_text('{"flags": {}}')
    code, _, err = run_cli(
        capsys, "import", "flagd", str(src), "--out", str(live), "--force", "--actor", "alice"
    )
    assert code == 1 and "alice may not flags.import" in err
    assert live.read_text() == '{"flags": {}}'  # the live file is untouched
    entries = AuditLog.read(tmp / "live" / "flags.audit.jsonl")
    assert [(e["kind"], e["source"], e["actor"]) for e in entries] == [
        ("assume", "actor.assume", ME),
        ("denied", "flags.import", "alice"),
    ]


def test_an_allowed_import_is_recorded_beside_the_file(setup, capsys):
    tmp, src = setup
    out = tmp / "staging" / "flags.json"
    code, out_text, _ = run_cli(capsys, "import", "flagd", str(src), "--out", str(out),
                                "--actor", "alice")  # fmt: skip
    assert code == 0 and "new_ui" in out_text and out.exists()
    assumed, entry = AuditLog.read(tmp / "staging" / "flags.audit.jsonl")
    assert (assumed["kind"], assumed["actor"], assumed["path"]) == ("assume", ME, "alice")
    assert entry["kind"] == "import" and entry["actor"] == "alice"
    assert entry["path"] == str(out) and entry["flags"] == ["new_ui"] and entry["refused"] == []
