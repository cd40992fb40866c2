"""An installation without the compiled extensions works, with the pure-Python
evaluator, as README promises ("Without a working compiler it still installs, with the
pure-Python evaluator (same answers, 20 to 150 times slower ...)").

It did not: cfgcore._compat set IMPLEMENTATION = "py" when cfgcore._eval failed to
import but never bound ``impl``, so ``import cfgcore.engine`` (cfgcore.Engine, the
dynamic-config manager, ``cfgcore demo``, ``cfgcore eval``...) raised "ImportError:
cannot import name 'impl' from 'cfgcore._compat'" on every sdist install without a
compiler, including the deliberate CFGCORE_NO_EXTENSIONS=1 build. wheels/check_sdist.sh
only imported the package root, which does not import the engine.

The package is copied without its extension modules (as such an installation is laid
out, with setup.py's marker file for the second case) and used from a fresh
interpreter.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import cfgcore

PACKAGE = Path(cfgcore.__file__).resolve().parent

USE = r"""
import json, sys, warnings
import cfgcore
from cfgcore.experiments.dynamic import get_dynamic_config_manager

engine = cfgcore.Engine.bundled()
ctx = {"user_id": "12345", "user_segment": "premium", "region": "EU"}
dynamic = get_dynamic_config_manager()
print(json.dumps({
    "implementation": cfgcore.IMPLEMENTATION,
    "variant": engine.variant("recommendation_algorithm_v2", ctx),
    "enabled": engine.is_enabled("enhanced_anomaly_detection", ctx),
    "seed": dynamic.is_feature_enabled("enhanced_anomaly_detection", ctx),
}))
"""


def _without_extensions(tmp_path: Path, marker: dict | None) -> Path:
    root = tmp_path / "site"
    shutil.copytree(
        PACKAGE,
        root / "cfgcore",
        ignore=shutil.ignore_patterns("*.so", "*.pyd", "__pycache__", "_no_extension.json"),
    )
    if marker is not None:
        (root / "cfgcore" / "_no_extension.json").write_text(json.dumps(marker))
    return root


def _run(root: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CFGCORE", "CONFIG_"))}
    env.update(PYTHONPATH=str(root), HOME=str(tmp_path), CFGCORE_STATE_DIR=str(tmp_path / "s"))
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=120, env=env,
        cwd=tmp_path,
    )  # fmt: skip


def _expected() -> dict:
    ctx = {"user_id": "12345", "user_segment": "premium", "region": "EU"}
    engine = cfgcore.Engine.bundled()
    return {
        "variant": engine.variant("recommendation_algorithm_v2", ctx),
        "enabled": engine.is_enabled("enhanced_anomaly_detection", ctx),
    }


@pytest.mark.parametrize(
    "marker, warns",
    [
        ({"reason": "the C extension failed to build: no compiler", "deliberate": False}, True),
        ({"reason": "CFGCORE_NO_EXTENSIONS=1 at build time", "deliberate": True}, False),
        (None, True),  # the extension lost after the install
    ],
)
def test_the_engine_works_without_the_compiled_extension(tmp_path, marker, warns):
    root = _without_extensions(tmp_path, marker)
    done = _run(root, tmp_path, "-c", USE)
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["implementation"] == "py"
    expected = _expected()
    assert got["variant"] == expected["variant"]
    assert got["enabled"] == got["seed"] == expected["enabled"]
    assert ("failed to import" in done.stderr) is warns, done.stderr
    # The advice must rebuild: a plain reinstall takes pip's cached pure-Python wheel.
    assert ("pip install --no-cache-dir --force-reinstall" in done.stderr) is warns


def test_cli_eval_runs_without_the_compiled_extension(tmp_path):
    # (`cfgcore demo` too, but its timing loops take a minute on the reference.)
    root = _without_extensions(tmp_path, {"reason": "no compiler", "deliberate": True})
    args = ["-m", "cfgcore", "eval", "enhanced_anomaly_detection", "--json"]
    done = _run(root, tmp_path, *args, "--ctx", "user_id=12345", "region=EU")
    assert done.returncode == 0, done.stderr
    assert "value" in json.loads(done.stdout)
    assert "internal error" not in done.stderr
    version = _run(root, tmp_path, "-m", "cfgcore", "--version")
    assert version.returncode == 0 and "evaluator: py" in version.stdout, version.stdout
