"""Round 4, the secrets registry under a flood: thousands of secret-named overrides
(CFGCORE__..._PASSWORD from the environment or a .env file) cost minutes of CPU (the
masking pattern was rebuilt on every registration) and pushed the service's own secrets
out of the registry, so they were shown in clear in messages and logs."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap

from cfgcore.runtime import secrets

CHILD = textwrap.dedent(
    """
    import json, logging, resource, sys
    resource.setrlimit(resource.RLIMIT_CPU, (60, 60))  # the old code took over 4 minutes
    records = []
    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())
    logging.getLogger("cfgcore").addHandler(Keep())
    from cfgcore.config.manager import ConfigurationManager
    from cfgcore.errors import ConfigError
    env = {"POSTGRES_PASSWORD": "RealPgPassw0rd"}
    for i in range(5000):
        env[f"CFGCORE__LABELS__P{i}_PASSWORD"] = f"filler-value-{i:05d}"
    m = ConfigurationManager(sys.argv[1], environment="development", environ=env,
                             audit_log=sys.argv[1] + "/audit.jsonl")
    m.load_environment_config()
    message = str(ConfigError("connecting with RealPgPassw0rd failed", file="db"))
    logging.getLogger("cfgcore.db").error("login RealPgPassw0rd refused")
    print(json.dumps({"message": message, "records": records}))
    """
)


def test_a_flood_of_secret_overrides_neither_stalls_the_load_nor_unmasks_the_first(tmp_path):
    (tmp_path / "development.yaml").write_text(
        "app:\n  name: svc\nlabels:\n  real: ${POSTGRES_PASSWORD}\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout)
    assert "RealPgPassw0rd" not in proc.stdout + proc.stderr
    assert out["message"] == "db: connecting with *** failed"
    assert "login *** refused" in out["records"]
    # Round 5: any number of secrets is remembered within a memory budget; nothing forgotten.
    assert not [r for r in out["records"] if "forgotten" in r]


def test_past_the_limit_the_least_recent_after_the_first_are_forgotten(monkeypatch, caplog):
    # Round 5: the limit is a memory budget; six 16-character secrets here.
    monkeypatch.setattr(secrets, "_ENTRY_COST", 0)
    monkeypatch.setattr(secrets, "_REGISTRY_BUDGET", 6 * 16)
    monkeypatch.setattr(secrets, "_PINNED", 2)
    monkeypatch.setattr(secrets, "_forgotten_said", False)
    secrets.forget_secrets()
    try:
        with caplog.at_level(logging.ERROR, logger="cfgcore"):
            for i in range(10):
                secrets.new_build_epoch()  # round 5: a build's own secrets are never forgotten
                secrets.register_secret(f"secret-number-{i}")
        masked = secrets.mask_text(" ".join(f"secret-number-{i}" for i in range(10)))
        # 0 and 1 pinned; 2..5 forgotten; 6..9 the most recent.
        assert (
            masked.split()
            == ["***", "***"] + [f"secret-number-{i}" for i in range(2, 6)] + ["***"] * 4
        )
        assert len([r for r in caplog.records if "forgotten" in r.getMessage()]) == 1
    finally:
        secrets.forget_secrets()


def test_a_registration_is_masked_at_once():
    secrets.forget_secrets()
    try:
        assert secrets.mask_text("a b-c d") == "a b-c d"
        secrets.register_secret("b-c-secret-1")
        assert secrets.mask_text("x b-c-secret-1 y") == "x *** y"
        secrets.register_secret("b-c-secret-2")
        assert secrets.mask_text("x b-c-secret-2 b-c-secret-1") == "x *** ***"
    finally:
        secrets.forget_secrets()
