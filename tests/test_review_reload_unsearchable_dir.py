"""A configuration directory the process may not search is reported as such.

A directory whose execute (search) permission is taken away (a wrong ``chmod`` in a
deploy, an ``fsGroup`` change on a volume) makes every file in it unreachable, though
they are all there. The loader asked ``os.path.lexists()`` for each name, which answers
False for "permission denied" as for "no such file", so a reload was refused with ``no
configuration file for environment 'staging' (looked for staging.yaml/...); available:
none``, sending the on-call engineer to look for a deleted file. It now says the
directory cannot be searched and why, the last good version serving on.

Root reads and searches whatever the modes say (``CAP_DAC_OVERRIDE``,
``CAP_DAC_READ_SEARCH``); as root the scenario runs in a child without those two
capabilities (``setpriv``), as a service's non-root user would.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(not hasattr(os, "geteuid"), reason="POSIX permissions")

SCRIPT = r"""
import os, sys
from cfgcore.config.manager import ConfigurationManager
config = sys.argv[1]
m = ConfigurationManager(config, environ={}, validate=False)
m.load_environment_config("staging")
assert m.get("app.name") == "one"
os.chmod(config, 0o600)  # readable, not searchable
try:
    refused = not m.reload()
    print("RELOAD", refused, m.get("app.name"), m.last_error, sep="|")
    try:
        ConfigurationManager(config, environ={}, validate=False).load_environment_config("staging")
    except Exception as exc:
        print("START", type(exc).__name__, exc, sep="|")
finally:
    os.chmod(config, 0o755)
m.close()
"""


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-c", SCRIPT, *argv]
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("needs setpriv (util-linux) to drop root's permission override")
        drop = "-dac_override,-dac_read_search"
        command = ["setpriv", f"--inh-caps={drop}", f"--bounding-set={drop}", *command]
    env = {**os.environ, "CFGCORE_USAGE": "0"}
    return subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)


def test_an_unsearchable_config_dir_is_reported_as_such(tmp_path):
    config = tmp_path / "config"
    config.mkdir()
    (config / "staging.yaml").write_text("app:\n  name: one\n")
    done = _run(str(config))
    if done.returncode != 0 and "setpriv" in done.stderr:
        pytest.skip(f"cannot drop the capabilities here: {done.stderr.strip()}")
    assert done.returncode == 0, done.stderr
    lines = dict(line.split("|", 1) for line in done.stdout.splitlines() if "|" in line)
    refused, name, error = lines["RELOAD"].split("|", 2)
    assert (refused, name) == ("True", "one")  # refused; the last good version serves
    for message in (error, lines["START"]):
        assert "Permission denied" in message, message
        assert str(config) in message
        assert "no configuration file" not in message
