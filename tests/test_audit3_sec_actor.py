"""Round 3 (security): the CLI's ``--actor`` is judged, never just claimed.

``cfgcore flags delete x --actor alice`` passed a policy that allows only alice, for
any OS user; so did ``USER=alice cfgcore ...`` (the default actor read ``$USER``). A
CLI command is now judged for the OS identity (``user@host`` of the real uid), and
``--actor NAME`` is honoured only when that identity may ``actor.assume`` NAME.

Real policy files, real flag files and audit logs, the real CLI in-process.
"""

from __future__ import annotations

import json
import pwd
import socket

import pytest

from cfgcore.runtime import policy
from cfgcore.runtime.audit import AuditLog, default_actor
from cfgcore.runtime.flagstore import FileFlagStore
from tests.conftest import run_cli
from tests.redis_server import refused_port

ME = f"{pwd.getpwuid(__import__('os').getuid()).pw_name}@{socket.gethostname()}"

FLAGS = {
    "version": 1,
    "flags": {
        "old_banner": {"variants": {"on": True, "off": False}, "default": "off"},
        "keep_me": {"variants": {"on": True, "off": False}, "default": "on"},
    },
}


@pytest.fixture
def setup(tmp_path, monkeypatch):
    monkeypatch.delenv("CFGCORE_ACCESS_POLICY", raising=False)
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    flags = tmp_path / "flags.json"
    flags.write_text(json.dumps(FLAGS))
    yield tmp_path, flags
    policy.set_policy(None)
    policy.set_authorizer(None)


def _policy(tmp_path, extra_actors: str = "") -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(
        "roles:\n"
        "  admin:\n    '*': ['*']\n"
        "  runner:\n    actor.assume: [alice]\n"
        f"actors:\n  'alice*': [admin]\n{extra_actors}"
    )
    policy.set_policy(str(path))


def test_default_actor_is_the_real_uid_not_the_user_variable(monkeypatch):
    monkeypatch.setenv("USER", "alice")
    monkeypatch.setenv("LOGNAME", "alice")
    monkeypatch.setenv("LNAME", "alice")
    monkeypatch.setenv("USERNAME", "alice")
    assert default_actor() == ME


def test_actor_flag_does_not_grant_the_claimed_identity(setup, capsys):
    tmp, flags = setup
    _policy(tmp)  # only alice (admin) may delete; the OS user may not act as her
    state = tmp / "state"
    code, _, err = run_cli(capsys, "flags", "delete", "old_banner", "--store", str(flags),
                           "--state-dir", str(state), "--actor", "alice")  # fmt: skip
    assert code == 1 and f"{ME} may not actor.assume alice" in err
    assert "old_banner" in FileFlagStore(str(flags)).read().snapshot.flags  # untouched
    entries = AuditLog.read(state / "flags.audit.jsonl")
    assert [(e["kind"], e["source"], e["path"], e["actor"]) for e in entries] == [
        ("denied", "actor.assume", "alice", ME)
    ]


def test_the_user_variable_does_not_grant_the_identity_either(setup, capsys, monkeypatch):
    tmp, flags = setup
    _policy(tmp)
    monkeypatch.setenv("USER", "alice")
    monkeypatch.setenv("LOGNAME", "alice")
    code, _, err = run_cli(capsys, "flags", "delete", "old_banner", "--store", str(flags),
                           "--state-dir", str(tmp / "state"))  # fmt: skip
    assert code == 1 and f"{ME} may not flag.delete old_banner" in err
    assert "old_banner" in FileFlagStore(str(flags)).read().snapshot.flags


def test_actor_flag_is_honoured_when_the_os_identity_may_assume_it(setup, capsys):
    tmp, flags = setup
    _policy(tmp, f"  '{ME}': [runner]\n")
    state = tmp / "state"
    code, _, err = run_cli(capsys, "flags", "delete", "old_banner", "--store", str(flags),
                           "--state-dir", str(state), "--actor", "alice")  # fmt: skip
    assert code == 0, err
    assert "old_banner" not in FileFlagStore(str(flags)).read().snapshot.flags
    entries = AuditLog.read(state / "flags.audit.jsonl")
    assert (entries[0]["kind"], entries[0]["path"], entries[0]["actor"]) == ("assume", "alice", ME)
    assert [(e["path"], e["actor"]) for e in entries[1:]] == [("flags.old_banner", "alice")]
    # The runner role allows acting as alice only: another claim is refused.
    code, _, err = run_cli(capsys, "flags", "delete", "keep_me", "--store", str(flags),
                           "--state-dir", str(state), "--actor", "alice2")  # fmt: skip
    assert code == 1 and f"{ME} may not actor.assume alice2" in err
    assert "keep_me" in FileFlagStore(str(flags)).read().snapshot.flags


def test_import_judges_the_os_identity(setup, capsys):
    tmp, _ = setup
    _policy(tmp)
    src = tmp / "flagd.json"
    src.write_text(json.dumps({"flags": {"new_ui": {"state": "ENABLED", "variants": {
        "on": True, "off": False}, "defaultVariant": "on"}}}))  # fmt: skip
    out = tmp / "live" / "flags.json"
    out.parent.mkdir()
    code, _, err = run_cli(capsys, "import", "flagd", str(src), "--out", str(out),
                           "--actor", "alice")  # fmt: skip
    assert code == 1 and f"{ME} may not actor.assume alice" in err and not out.exists()


def test_publish_judges_the_os_identity(setup, capsys):
    from cfgcore.setup import main as setup_main

    tmp, _ = setup
    _policy(tmp)
    config = tmp / "pub"
    assert setup_main(["-e", "staging", "-o", str(config)]) == 0
    capsys.readouterr()
    url = f"redis://127.0.0.1:{refused_port()}/0?namespace=x&cache=off"  # never reached
    code, _, err = run_cli(capsys, "publish", "--store", url, "--config-dir", str(config),
                           "-e", "staging", "--actor", "alice")  # fmt: skip
    assert code == 1 and f"{ME} may not actor.assume alice" in err


def test_in_process_actor_stays_trusted(setup):
    tmp, flags = setup
    _policy(tmp)
    from cfgcore.engine import Engine
    from cfgcore.experiments.dynamic import DynamicConfigurationManager

    manager = DynamicConfigurationManager(
        store=str(flags), state_dir=str(tmp / "state"), log_exposures=False,
        record_usage=False, engine=Engine(),
    )  # fmt: skip
    try:
        assert manager.delete_feature_flag("old_banner", actor="alice")  # as documented
    finally:
        manager.close()
        manager.store.close()
