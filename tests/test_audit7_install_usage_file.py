"""The flag-usage file (``<state dir>/flag-usage.json``) is read as every other input
is: a bounded regular file. ``read_usage`` opened it with a plain ``open()``, so a FIFO
there blocked the usage recorder's merge for ever, under the usage lock, and with it
the process's exit (the recorder merges at exit) and ``cfgcore flags stale``; a link to
``/dev/zero`` was read until memory ran out. Such a file is now "not a usage file": the
merge replaces it (logged) and ``read_usage`` names it in a ConfigError. Each case runs
in a child process with a timeout, so the old behaviour fails instead of hanging."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX FIFOs and devices")

READ = r"""
import sys
from cfgcore.errors import ConfigError
from cfgcore.runtime.usage import read_usage
try:
    read_usage(sys.argv[1])
except ConfigError as exc:
    print("refused:", exc)
else:
    print("read")
"""

MERGE = r"""
import sys
from cfgcore.runtime.usage import merge_usage
print(dict(merge_usage(sys.argv[1], {"flag_a": 1700000000.0}).flags))
"""


def _child(script: str, path: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            [sys.executable, "-c", script, path], capture_output=True, text=True, timeout=60
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"reading {path} did not return (a FIFO or device was opened and read)")


@pytest.fixture(params=["fifo", "devzero"])
def hostile(request, tmp_path):
    path = tmp_path / "flag-usage.json"
    if request.param == "fifo":
        os.mkfifo(path)
    else:
        os.symlink("/dev/zero", path)
    return str(path)


def test_read_usage_refuses_what_is_not_a_regular_file(hostile):
    done = _child(READ, hostile)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("refused:"), done.stdout
    assert "flag-usage.json" in done.stdout


def test_merge_replaces_what_is_not_a_regular_file(hostile):
    done = _child(MERGE, hostile)
    assert done.returncode == 0, done.stderr
    assert "flag_a" in done.stdout
    with open(hostile, "rb") as fh:  # a regular file now (the link itself was replaced)
        assert json.loads(fh.read())["flags"] == {"flag_a": 1700000000.0}


def test_a_usage_file_still_reads(tmp_path):
    from cfgcore.runtime.usage import merge_usage, read_usage

    path = tmp_path / "flag-usage.json"
    merge_usage(path, {"a": 10.0, "b": 20.0}, since=5.0)
    merge_usage(path, {"a": 30.0})
    usage = read_usage(path)
    assert dict(usage.flags) == {"a": 30.0, "b": 20.0} and usage.since == 5.0
