"""The compiled modules compile where GCC 14 makes some old warnings errors (its
default on manylinux_2_28, musllinux_1_2, Debian 13): an older compiler only warns,
and wheels/check_sdist.sh passes the same flags to catch that here.

``cfgcore._tree`` did not: it declared ``PyObject_TypeCheck``'s type argument as a
``PyObject*`` (Python.h has ``PyTypeObject*``), an incompatible pointer type. setup.py
then left ``_tree`` out, and ``_atomic`` (built after it) too, while ``_eval`` (built
before) installed: IMPLEMENTATION said "c", check_sdist.sh's check of it passed, and
the tests of ``_tree`` skipped (``importorskip``).

Each .pyx is translated with Cython and its C compiled (not linked) with those errors
on, as setup.py would compile it. ``_eval`` (about a minute) is left to check_sdist.sh.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "src" / "cfgcore"
CC = shutil.which("gcc") or shutil.which("cc")
GCC14_ERRORS = [
    "-Werror=incompatible-pointer-types",
    "-Werror=implicit-function-declaration",
    "-Werror=int-conversion",
    "-Werror=implicit-int",
]
pytestmark = pytest.mark.skipif(
    CC is None or sys.platform == "win32" or not PKG.is_dir(),
    reason="needs a POSIX C compiler and the .pyx sources (src/)",
)


@pytest.mark.parametrize("module", ["_tree", "_atomic"])
def test_the_module_compiles_with_gcc14s_errors(tmp_path, module):
    pytest.importorskip("Cython")
    c_file = tmp_path / f"{module}.c"
    done = subprocess.run(
        [sys.executable, "-m", "cython", "-3", "--directive", "embedsignature=True",
         "-I", str(PKG), "--module-name", f"cfgcore.{module}",
         str(PKG / f"{module}.pyx"), "-o", str(c_file)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    done = subprocess.run(
        [CC, *GCC14_ERRORS, "-fPIC", f"-I{sysconfig.get_paths()['include']}", "-c",
         str(c_file), "-o", str(tmp_path / f"{module}.o")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    errors = [line for line in done.stderr.splitlines() if "error:" in line]
    assert done.returncode == 0, errors or done.stderr
