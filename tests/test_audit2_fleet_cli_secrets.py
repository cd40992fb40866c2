"""cfgcore publish, second audit: a store URL's password never reaches the audit log,
the refusal message or an authorize hook."""

from __future__ import annotations

import os

from cfgcore.setup import main as setup_main
from tests.redis_server import refused_port


def _files_containing(root, needle: bytes) -> list[str]:
    found = []
    for base, _dirs, files in os.walk(root):
        for name in files:
            path = os.path.join(base, name)
            with open(path, "rb") as fh:
                if needle in fh.read():
                    found.append(path)
    return found


def test_a_denied_flag_publish_keeps_the_store_password_out_of_audit_and_output(
    tmp_path, capsys, monkeypatch
):
    from cfgcore.cli import main

    state = tmp_path / "state"
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(state))
    monkeypatch.setenv("CFGCORE_AUDIT_LOG", str(tmp_path / "audit.jsonl"))
    config = tmp_path / "pub"
    assert setup_main(["-e", "staging", "-o", str(config)]) == 0
    capsys.readouterr()
    policy_path = tmp_path / "policy.yaml"
    from cfgcore.runtime.audit import default_actor

    policy_path.write_text(  # the OS identity running the CLI may act as ci
        "roles:\n  release:\n    config.publish: ['staging']\n"
        "  runner:\n    actor.assume: [ci]\n"
        f"actors:\n  ci: [release]\n  '{default_actor()}': [runner]\n"
    )
    monkeypatch.setenv("CFGCORE_ACCESS_POLICY", str(policy_path))
    secret = "pw-Zq81-never-shown"
    # refused before any connection: nothing listens on the port
    url = f"redis://deploy:{secret}@127.0.0.1:{refused_port()}/0?namespace=deny&cache=off"
    argv = ["publish", "--store", url, "--config-dir", str(config), "-e", "staging", "--flags"]
    assert main([*argv, "--actor", "ci"]) == 1
    err = capsys.readouterr().err
    assert "ci may not flags.publish" in err and "deploy:***@127.0.0.1" in err
    assert secret not in err
    assert _files_containing(tmp_path, b"flags.publish")  # the refusal was audited ...
    assert _files_containing(tmp_path, secret.encode()) == []  # ... without the password


def test_an_authorize_hook_gets_the_store_url_without_its_password(tmp_path, monkeypatch):
    from cfgcore.cli import main
    from cfgcore.runtime import policy

    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    config = tmp_path / "pub"
    assert setup_main(["-e", "staging", "-o", str(config)]) == 0
    seen = []

    def hook(actor, action, target):
        seen.append((action, target))
        return action != "flags.publish"

    policy.set_authorizer(hook)
    try:
        port = refused_port()
        url = f"redis://:hunter2-secret@127.0.0.1:{port}/0?namespace=h&cache=off"
        argv = ["publish", "--store", url, "--config-dir", str(config), "-e", "staging"]
        assert main([*argv, "--flags", "--actor", "ci"]) == 1
    finally:
        policy.set_authorizer(None)
    assert (
        "flags.publish",
        f"redis://:***@127.0.0.1:{url.split(':')[3].split('/')[0]}/0?namespace=h",
    ) in seen
    assert all("hunter2" not in target for _, target in seen)


def test_a_store_url_needing_the_redis_extra_is_named_without_secrets(monkeypatch):
    import sys

    import pytest

    from cfgcore.errors import ConfigError
    from cfgcore.runtime.flagstore import open_store

    monkeypatch.setitem(sys.modules, "redis", None)  # as without the [redis] extra
    url = "redis+sentinel://:pw1@s1:26379/main/0?sentinel_password=pw2-secret&namespace=n"
    with pytest.raises(ConfigError, match="needs the Redis store") as err:
        open_store(url)
    assert "pw1" not in str(err.value) and "pw2-secret" not in str(err.value)
    assert "s1:26379" in str(err.value)
