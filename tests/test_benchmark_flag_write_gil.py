"""benchmarks/flag_write_gil.py runs as benchmarks/RESULTS.md writes it (fifty-second
pass), both ways (the compiled write steps and ``--python-steps``), and checks what it
timed: no test ran it, and it timed writes without looking at what they wrote. No
timing is asserted.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import cfgcore

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "flag_write_gil.py"
pytestmark = pytest.mark.skipif(not SCRIPT.is_file(), reason="benchmarks/ is not here")


def _run(*args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CFGCORE", "CONFIG_"))}
    # The cfgcore under test (the tree's src/, or the installed package), as
    # PYTHONPATH=src gives it in RESULTS.md's command.
    env["PYTHONPATH"] = str(Path(cfgcore.__file__).resolve().parent.parent)
    env["HOME"] = env["TMPDIR"] = str(tmp_path)
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--writes", "2", "--spinners", "1", *args],
        capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path,
    )  # fmt: skip


@pytest.mark.parametrize("steps", [(), ("--python-steps",)])
def test_the_documented_command_runs_and_cleans_up(tmp_path, steps):
    done = _run(*steps, tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    timed = [line.split(":")[0] for line in lines[1:]]
    assert "alone" in timed and "1 CPU threads" in timed, lines
    assert any("CPU per write alone: median" in line for line in lines), lines
    if steps:
        assert "atomic write: Python" in lines[0], lines[0]
    # Its scratch directory is gone.
    assert not [n for n in os.listdir(tmp_path) if n.startswith("cfgcore-gilwrite-")]


def test_writes_that_do_nothing_fail_the_run(tmp_path):
    code = (
        "import runpy, sys\n"
        "from cfgcore.experiments.dynamic import DynamicConfigurationManager as M\n"
        "M.set_feature_flag = lambda *a, **k: None\n"
        f"sys.argv = [{str(SCRIPT)!r}, '--writes', '2', '--spinners', '1']\n"
        f"runpy.run_path({str(SCRIPT)!r}, run_name='__main__')\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CFGCORE", "CONFIG_"))}
    env["PYTHONPATH"] = str(Path(cfgcore.__file__).resolve().parent.parent)
    env["HOME"] = env["TMPDIR"] = str(tmp_path)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env,
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 1 and "did not do their work" in done.stderr, done.stderr
