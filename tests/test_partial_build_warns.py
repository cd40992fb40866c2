"""An installation whose compiled evaluator imports but another compiled module does not
(``cfgcore._atomic``, ``cfgcore._tree``) says so, as one without the evaluator does.

It did not: each module took its Python steps without a word (``atomicio``, ``_frozen``
and ``config.view`` caught the ImportError, trusting ``cfgcore._compat`` to warn, which
it does only when ``cfgcore._eval`` is missing), and ``IMPLEMENTATION`` and ``python -m
cfgcore --version`` said ``c``. The state is a common one: an in-place (editable) build
made before ``cfgcore._atomic`` existed still has ``_eval`` and ``_tree``, and a flag
write beside CPU-bound threads then takes about twice as long (benchmarks/RESULTS.md,
fifty-second pass) with nothing to say why.

The package is copied without the module's extension file, as such an installation is
laid out, and used from a fresh interpreter.
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
BUILT = {p.name.split(".")[0] for p in PACKAGE.glob("_*.so")} | {
    p.name.split(".")[0] for p in PACKAGE.glob("_*.pyd")
}
needs_build = pytest.mark.skipif(
    not {"_eval", "_tree", "_atomic"} <= BUILT or os.name == "nt",
    reason="needs the three compiled modules built (POSIX)",
)

USE = r"""
import json, os, sys, warnings
warnings.simplefilter("always")
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import cfgcore
    from cfgcore.runtime import atomicio
    from cfgcore import _frozen
    from cfgcore.config import view
    engine = cfgcore.Engine.bundled()
    on = engine.is_enabled("enhanced_anomaly_detection", {"user_id": "1"})
    atomicio.atomic_write("out.txt", b"written", mode=0o640)
with open("out.txt", "rb") as f:
    data = f.read()
print(json.dumps({
    "implementation": cfgcore.IMPLEMENTATION,
    "native": atomicio.NATIVE,
    "tree": _frozen.FrozenDict.__module__,
    "reads": view.LiveReads.__module__,
    "written": data.decode(), "mode": oct(os.stat("out.txt").st_mode & 0o777),
    "warnings": [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)],
}))
"""


def _copy(tmp_path: Path, drop: tuple[str, ...], marker: dict | None = None) -> Path:
    root = tmp_path / "site"
    patterns = [f"{name}.*.so" for name in drop] + [f"{name}.*.pyd" for name in drop]
    shutil.copytree(
        PACKAGE,
        root / "cfgcore",
        ignore=shutil.ignore_patterns(*patterns, "__pycache__", "_no_extension.json"),
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


def _use(root: Path, tmp_path: Path) -> dict:
    done = _run(root, tmp_path, "-c", USE)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@needs_build
@pytest.mark.parametrize("module", ["_atomic", "_tree"])
def test_a_missing_compiled_module_beside_the_compiled_evaluator_warns_once(tmp_path, module):
    root = _copy(tmp_path, (module,))
    got = _use(root, tmp_path)
    # The Python steps serve, with the same results.
    assert got["implementation"] == "c"
    assert got["written"] == "written" and got["mode"] == "0o640"
    assert got["native"] is (module != "_atomic")
    assert (got["tree"] == "cfgcore._tree") is (module != "_tree")
    assert (got["reads"] == "cfgcore._tree") is (module != "_tree")
    # ... and say so once (_frozen and config.view both fall back for _tree), naming the
    # module and how to rebuild it.
    assert len(got["warnings"]) == 1, got["warnings"]
    message = got["warnings"][0]
    assert f"cfgcore.{module} failed to import" in message
    assert "pip install --no-deps -e ." in message and "--no-cache-dir --force-reinstall" in message
    version = _run(root, tmp_path, "-m", "cfgcore", "--version")
    assert version.returncode == 0, version.stderr
    assert "(evaluator: c, Python " in version.stdout
    assert f"not compiled: cfgcore.{module})" in version.stdout, version.stdout


@needs_build
def test_the_whole_build_says_nothing_more_than_it_did(tmp_path):
    # All three present: quiet. None present: the evaluator's one warning, not three.
    got = _use(_copy(tmp_path / "all", ()), tmp_path)
    assert got["warnings"] == [] and got["native"] is True
    got = _use(_copy(tmp_path / "none", ("_eval", "_tree", "_atomic")), tmp_path)
    assert got["implementation"] == "py" and got["native"] is False
    assert len(got["warnings"]) == 1 and "cfgcore._eval" in got["warnings"][0], got["warnings"]


@needs_build
def test_a_build_that_left_the_modules_out_on_purpose_is_quiet(tmp_path):
    marker = {"reason": "CFGCORE_NO_EXTENSIONS was set at build time", "deliberate": True}
    got = _use(_copy(tmp_path, ("_atomic",), marker), tmp_path)
    assert got["warnings"] == [] and got["native"] is False and got["written"] == "written"


@needs_build
@pytest.mark.parametrize("module", ["_atomic", "_tree"])
def test_cibuildwheels_first_check_fails_a_wheel_without_the_module(tmp_path, module):
    """Its tests skip where the module is not built (``importorskip``): the wheel's first
    test command is what fails such a wheel."""
    from tests.test_audit_pkg_metadata import CIBW, _commands

    first = _commands(CIBW["test-command"])[0]
    code = first[len('python -c "') : -1]
    done = _run(_copy(tmp_path, (module,)), tmp_path, "-c", code)
    assert done.returncode != 0 and f"not compiled: cfgcore.{module}" in done.stderr
    assert _run(_copy(tmp_path / "all", ()), tmp_path, "-c", code).returncode == 0


@needs_build
def test_a_compiled_evaluator_that_fails_to_import_warns_once(tmp_path):
    # Every extension file present but none loads (copied from another machine, a
    # damaged install): the evaluator's one warning, as when none is present. The
    # check was "is there a cfgcore._eval file", so _tree and _atomic warned besides,
    # telling to rebuild "the compiled modules" beside an evaluator that is not there.
    root = _copy(tmp_path, ())
    for so in (root / "cfgcore").glob("_*.so"):
        if so.name.split(".")[0] in ("_eval", "_tree", "_atomic"):
            so.write_bytes(b"not an extension module")
    got = _use(root, tmp_path)
    assert got["implementation"] == "py" and got["native"] is False
    assert len(got["warnings"]) == 1 and "cfgcore._eval" in got["warnings"][0], got["warnings"]


@needs_build
def test_a_partial_builds_reason_is_given_for_the_module_it_left_out_only(tmp_path):
    # The build left cfgcore._atomic out; cfgcore._tree is missing for another reason
    # (deleted since): its warning gave the build's reason for _atomic as its own.
    marker = {
        "reason": "failed to build: cfgcore._atomic: command 'cc' failed",
        "deliberate": False,
        "missing": ["cfgcore._atomic"],
    }
    got = _use(_copy(tmp_path, ("_atomic", "_tree"), marker), tmp_path)
    assert got["implementation"] == "c"
    assert len(got["warnings"]) == 2, got["warnings"]
    tree = next(w for w in got["warnings"] if "cfgcore._tree" in w)
    atomic = next(w for w in got["warnings"] if "cfgcore._atomic" in w)
    assert "not built: failed to build: cfgcore._atomic" in atomic
    assert "cc' failed" not in tree and "ModuleNotFoundError" in tree, tree
    # ... and the evaluator's own warning, when it is the one missing, likewise.
    got = _use(_copy(tmp_path / "eval", ("_eval",), marker), tmp_path)
    assert got["implementation"] == "py"
    assert len(got["warnings"]) == 1 and "cc' failed" not in got["warnings"][0], got["warnings"]
