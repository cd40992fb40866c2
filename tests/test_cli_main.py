"""The cfgcore command line as a whole: dispatch, errors, pipes."""

from __future__ import annotations

import subprocess
import sys


def test_help_lists_every_capability():
    out = subprocess.run(
        [sys.executable, "-m", "cfgcore", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for command in (
        "demo",
        "show",
        "get",
        "explain",
        "diff",
        "eval",
        "watch",
        "validate",
        "schema",
        "experiment",
    ):
        assert command in out, command


def test_closed_pipe_is_not_a_traceback():
    # the reader takes one line and closes the pipe while cfgcore is still writing
    proc = subprocess.run(
        f"{sys.executable} -m cfgcore schema | head -n 1",
        shell=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.stdout.strip() == "{"
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr


def test_secret_from_environment_is_not_flagged_as_literal(tmp_path):
    """`cfgcore validate` judges ${VAR} secrets as references, like the manager does."""
    env = {
        "PATH": "/usr/bin:/bin",
        "KAFKA_SASL_PASSWORD": "hunter2-but-longer-Secret!9",
        "HOME": str(tmp_path),
        # Production from the demo set is refused unless chosen on purpose (by loading,
        # and now by validate too).
        "CFGCORE_CONFIG_DIR": "embedded",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "cfgcore", "validate", "--environment", "production"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert "hunter2" not in proc.stdout + proc.stderr
    assert proc.returncode == 0, proc.stdout + proc.stderr
