"""A test whose captured log or failure text holds a lone surrogate is reported under
pytest-xdist like any other. The fuzz tests name flags and attributes ``"\\udc00"``,
and the compiler's warnings name the flag: pytest-xdist cannot send text UTF-8 cannot
encode, so such a report (even a passing test's captured log) ended the whole run with
INTERNALERROR "Unexpectedly no active workers available", without naming the test."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CASES = """
import logging


def test_passes_logging_a_lone_surrogate():
    logging.getLogger("cfgcore.compiler").warning("flags.\\udc00.rules[0].split: rounded")


def test_fails_naming_a_lone_surrogate():
    assert "\\udc00" == "x", "context {'\\udc00': 1}"
"""


def test_reports_with_lone_surrogates_reach_the_controller(tmp_path):
    (tmp_path / "test_cases.py").write_text(CASES)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "src")])}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-n", "1", "-p", "tests.conftest", "-p",
         "no:cacheprovider", "-o", "addopts=", "-rA", "test_cases.py"],
        cwd=tmp_path, env=env, capture_output=True, text=True, errors="backslashreplace",
        timeout=120,
    )  # fmt: skip
    assert "INTERNALERROR" not in run.stdout + run.stderr
    assert "1 failed, 1 passed" in run.stdout, run.stdout[-2000:]
    # the failure names the test and shows the text, escaped
    assert "FAILED test_cases.py::test_fails_naming_a_lone_surrogate" in run.stdout
    assert "\\udc00" in run.stdout
