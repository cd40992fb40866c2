"""The README's usage example runs as written (in a scratch directory)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_python_example_runs(tmp_path):
    from cfgcore.engine import bundled_flags_path

    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert blocks, "README has no python example"
    shutil.copy(bundled_flags_path(), tmp_path / "flags.yaml")
    prelude = (
        "from cfgcore.snapshot import load_snapshot\nnew_snapshot = load_snapshot('flags.yaml')\n"
    )
    script = tmp_path / "example.py"
    script.write_text(prelude + blocks[0])
    env = {**os.environ, "HOME": str(tmp_path), "CFGCORE_STATE_DIR": str(tmp_path / "state")}
    env.pop("CONFIG_ENVIRONMENT", None)
    proc = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert "music_streaming.audio_quality.bitrates.premium = 320" in proc.stdout


def test_readme_gives_exactly_the_two_commands_ci_runs():
    text = README.read_text()
    shell_blocks = re.findall(r"```bash\n(.*?)```", text, re.S)
    assert shell_blocks[:2] == [
        "pip install -e '.[dev]' && python -m cfgcore demo\n",
        "python -m pytest -q\n",
    ]
    ci = (README.parent / ".ci" / "run").read_text()
    assert "\npython -m pytest -q\n" in ci
