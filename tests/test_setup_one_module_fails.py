"""setup.py builds each compiled module on its own: a compiler that fails on one of
them (``cfgcore._atomic``) still installs the others, and says which one is missing.

It did not: the first failure ended build_ext, so a failure of ``cfgcore._atomic`` (the
last built) printed "installed WITHOUT its compiled evaluator ... IMPLEMENTATION ==
'py'" while ``_eval`` and ``_tree``, built before it, were installed and live, and the
marker file said the same wrong thing; a failure of ``_eval`` left the others unbuilt.

setup.py runs on a copy of the project whose three modules are one-line stand-ins (the
real ones take a minute to compile; what is under test is setup.py) and a minimal
pyproject.toml, with a compiler that refuses one source file.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytest.importorskip("Cython")
CC = shutil.which("cc") or shutil.which("gcc")
pytestmark = pytest.mark.skipif(CC is None or os.name == "nt", reason="needs a POSIX C compiler")


def _project(tmp_path: Path, refuse: str) -> tuple[Path, dict[str, str]]:
    tree = tmp_path / "proj"
    pkg = tree / "src" / "cfgcore"
    pkg.mkdir(parents=True)
    for name in ("setup.py", "README.md"):
        shutil.copy(ROOT / name, tree / name)
    # The metadata setup.py does not give (the project's own pyproject.toml needs the
    # setuptools of its build-system table, which an older one here refuses).
    (tree / "pyproject.toml").write_text(
        '[project]\nname = "cfgcore"\nversion = "0.0.1"\ndynamic = ["readme"]\n'
        '[tool.setuptools]\npackage-dir = { "" = "src" }\n'
    )
    (pkg / "__init__.py").write_text('__version__ = "0.0.1"\n')
    for name in ("_eval", "_tree", "_atomic"):
        (pkg / f"{name}.pyx").write_text(f"WHO = {name!r}\n")
    wrapper = tmp_path / "cc"
    wrapper.write_text(
        f'#!/bin/sh\ncase "$*" in *{refuse}.c*) echo "refused {refuse}" >&2; exit 1 ;; esac\n'
        f'exec {CC} "$@"\n'
    )
    wrapper.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CFGCORE")}
    env.update(CC=str(wrapper), LDSHARED=f"{CC} -shared")
    return tree, env


def _build_in_place(tree: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "setup.py", "-q", "build_ext", "--inplace"],
        cwd=tree, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def _built(tree: Path) -> set[str]:
    return {p.name.split(".")[0] for p in (tree / "src" / "cfgcore").glob("_*.so")}


def test_a_module_that_fails_alone_leaves_the_evaluator_and_names_itself(tmp_path):
    tree, env = _project(tmp_path, "_atomic")
    done = _build_in_place(tree, env)
    assert done.returncode == 0, done.stderr
    assert _built(tree) == {"_eval", "_tree"}, done.stderr
    assert "WITHOUT its compiled evaluator" not in done.stderr, done.stderr
    assert "without cfgcore._atomic" in done.stderr and "refused _atomic" in done.stderr
    marker = json.loads((tree / "src" / "cfgcore" / "_no_extension.json").read_text())
    assert marker["deliberate"] is False and marker["missing"] == ["cfgcore._atomic"]
    assert "cfgcore._atomic" in marker["reason"]


def test_the_evaluator_failing_still_says_the_evaluator_is_missing(tmp_path):
    tree, env = _project(tmp_path, "_eval")
    done = _build_in_place(tree, env)
    assert done.returncode == 0, done.stderr
    assert _built(tree) == {"_tree", "_atomic"}, done.stderr
    assert "WITHOUT its compiled evaluator" in done.stderr
    marker = json.loads((tree / "src" / "cfgcore" / "_no_extension.json").read_text())
    assert marker["deliberate"] is False and "refused" not in marker


def test_a_build_of_all_three_leaves_no_marker(tmp_path):
    tree, env = _project(tmp_path, "_nothing_")
    pkg = tree / "src" / "cfgcore"
    (pkg / "_no_extension.json").write_text('{"reason": "old", "deliberate": false}')
    done = _build_in_place(tree, env)
    assert done.returncode == 0, done.stderr
    assert _built(tree) == {"_eval", "_tree", "_atomic"}
    assert not (pkg / "_no_extension.json").exists()


def test_an_in_place_build_that_fails_on_a_module_leaves_no_older_build_of_it(tmp_path):
    # A checkout built before, then changed and built again with the compiler failing
    # on one module: the older build's file stayed beside the sources, and that older
    # code was imported while the build said the module takes its Python steps.
    tree, env = _project(tmp_path, "_atomic")
    pkg = tree / "src" / "cfgcore"
    first = _build_in_place(tree, {**env, "CC": env["LDSHARED"].split()[0]})
    assert first.returncode == 0, first.stderr
    assert _built(tree) == {"_eval", "_tree", "_atomic"}
    (pkg / "_atomic.pyx").write_text("WHO = '_atomic, changed'\n")
    done = _build_in_place(tree, env)
    assert done.returncode == 0, done.stderr
    assert "refused _atomic" in done.stderr and "without cfgcore._atomic" in done.stderr
    assert _built(tree) == {"_eval", "_tree"}, done.stderr
    marker = json.loads((pkg / "_no_extension.json").read_text())
    assert marker["missing"] == ["cfgcore._atomic"]
