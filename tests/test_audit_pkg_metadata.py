"""Packaging: what pyproject.toml declares and what the installed package holds.

These run against whatever cfgcore is importable: the editable install in the normal
suite, the installed wheel in wheels/build.sh and cibuildwheel (they are listed in
wheels/ci-tests.txt), so they check the wheel's contents there. Building a wheel or an
sdist is too slow for the suite: wheels/build.sh and wheels/check_sdist.sh do that.
"""

from __future__ import annotations

import ast
import importlib.metadata
import os
import re
import subprocess
import sys
import textwrap
from importlib.resources import files
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

import cfgcore

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

# pyproject.toml beside tests/: the checkout, or cibuildwheel's copy (test-sources).
PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"
CONF = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))
PROJECT = CONF["project"]
CIBW = CONF["tool"]["cibuildwheel"]


def test_the_version_has_one_home():
    """pyproject.toml takes the version from cfgcore.__version__, which setuptools must
    be able to read statically (a literal string), so building never imports cfgcore."""
    assert "version" not in PROJECT, "the version is written twice"
    assert "version" in PROJECT["dynamic"]
    attr = CONF["tool"]["setuptools"]["dynamic"]["version"]["attr"]
    assert attr == "cfgcore.__version__"
    tree = ast.parse(Path(cfgcore.__file__).read_text(encoding="utf-8"))
    literal = [
        n.value.value
        for n in tree.body
        if isinstance(n, ast.Assign)
        and [getattr(t, "id", None) for t in n.targets] == ["__version__"]
        and isinstance(n.value, ast.Constant)
        and isinstance(n.value.value, str)
    ]
    assert literal == [cfgcore.__version__]


def test_installed_metadata_and_cli_report_the_same_version():
    meta = importlib.metadata.version("cfgcore")
    assert meta == cfgcore.__version__, (
        f"installed metadata says {meta}, cfgcore.__version__ says {cfgcore.__version__}: "
        "reinstall (pip install -e .)"
    )
    out = subprocess.run(
        [sys.executable, "-m", "cfgcore", "--version"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert out.startswith(f"cfgcore {meta} (evaluator: {cfgcore.IMPLEMENTATION}, Python ")


def test_package_data_is_installed():
    pkg = files("cfgcore")
    for name in ("py.typed", "_eval.pyi", "_tree.pyi", "_atomic.pyi", "_layout.pxd"):
        assert pkg.joinpath(name).is_file(), name
    defaults = pkg.joinpath("defaults")
    assert defaults.joinpath("flags.yaml").is_file()
    envs = {p.name for p in defaults.joinpath("config").iterdir() if p.name.endswith(".yaml")}
    assert {"base.yaml", "development.yaml", "staging.yaml", "production.yaml"} <= envs


def test_the_package_description_links_work_off_the_repository():
    """PyPI shows README.md as the description, away from the repository: setup.py
    points its relative links (docs/fleet.md, ...) at the repository's files. The
    installed metadata is what a wheel carries to PyPI."""
    meta = importlib.metadata.metadata("cfgcore")
    assert meta["Description-Content-Type"] == "text/markdown"
    # The body, or a Description field (core metadata allows either; tools differ).
    body = meta.get_payload() or meta["Description"] or ""
    assert isinstance(body, str) and body.startswith("# cfgcore"), body[:80]
    links = re.findall(r"\]\(([^)\s]+)\)", body)
    relative = [u for u in links if not re.match(r"[a-z][a-z0-9+.-]*:|#", u)]
    assert not relative, f"relative links in the package description: {relative}"
    files_at = PROJECT["urls"]["Source"].rstrip("/") + "/blob/main/"
    readme = (PYPROJECT.parent / "README.md").read_text(encoding="utf-8")
    in_readme = set(re.findall(r"\]\((?![a-z][a-z0-9+.-]*:|#)([^)\s]+)\)", readme))
    assert in_readme, "README.md has no relative links: this test checks nothing"
    into_repo = {u[len(files_at) :] for u in links if u.startswith(files_at)}
    # Every relative link of README.md is rewritten, and each names a file that exists.
    assert in_readme <= into_repo, (
        f"{sorted(in_readme - into_repo)}: not in the installed description (README.md "
        "changed since the install? pip install -e .)"
    )
    for path in into_repo:
        assert (PYPROJECT.parent / path.split("#")[0]).is_file(), path


def test_python_versions_agree():
    """requires-python, the classifiers and the wheels cibuildwheel builds name the same
    CPython versions."""
    classified = sorted(
        int(m.group(1))
        for c in PROJECT["classifiers"]
        if (m := re.fullmatch(r"Programming Language :: Python :: 3\.(\d+)", c))
    )
    built = sorted(int(m) for m in re.findall(r"cp3(\d+)-\*", CIBW["build"]))
    assert classified == built
    spec = SpecifierSet(PROJECT["requires-python"])
    assert f"3.{built[0]}" in spec and f"3.{built[0] - 1}" not in spec
    assert all(f"3.{m}" in spec for m in built)


def test_mypy_reads_the_standard_library_of_the_oldest_supported_python():
    """Development and CI's lint run on a newer Python than the oldest one supported: mypy
    reads the standard library as that oldest one has it, so a newer name (typing.Self,
    tomllib, datetime.UTC) fails the lint rather than ``import cfgcore`` on that Python."""
    oldest = min(int(m) for m in re.findall(r"cp3(\d+)-\*", CIBW["build"]))
    assert CONF["tool"]["mypy"]["python_version"] == f"3.{oldest}"


# Every module, imported in a fresh interpreter with warnings as errors (a deprecated
# standard-library name warns on import on some Pythons): the names of those that fail.
_IMPORT_ALL = """
import importlib, pkgutil, traceback
import cfgcore
failed, walked = [], 0
for info in pkgutil.walk_packages(cfgcore.__path__, "cfgcore.", onerror=failed.append):
    if info.name == "cfgcore.__main__":  # runs the command line
        continue
    walked += 1
    try:
        importlib.import_module(info.name)
    except Exception:
        failed.append(info.name)
        traceback.print_exc()
print(walked, *failed)
"""


def test_every_module_imports_on_this_python():
    """Each module imports on the running Python; the wheels run this on every supported
    one (cp310 once failed here: typing.Self is new in 3.11)."""
    proc = subprocess.run(
        [sys.executable, "-W", "error", "-c", _IMPORT_ALL],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    count, *failed = proc.stdout.split()
    assert failed == [], proc.stderr
    assert int(count) > 100, "the walk missed the package's modules"


def _extra(name: str) -> list[Requirement]:
    """The requirements of an extra, with cfgcore[...] self-references expanded."""
    found: list[Requirement] = []
    for text in PROJECT["optional-dependencies"][name]:
        req = Requirement(text)
        if req.name == "cfgcore":
            for sub in sorted(req.extras):
                found += _extra(sub)
        else:
            found.append(req)
    return found


def _commands(option) -> list[str]:
    return [option] if isinstance(option, str) else list(option)


def test_musllinux_aarch64_installs_the_test_extra_but_matplotlib():
    """That build cannot install matplotlib (no wheels) and lists the test extra's
    requirements by hand instead: the list must not fall behind the extra."""
    (override,) = [o for o in CIBW["overrides"] if o["select"] == "*-musllinux_aarch64"]
    assert override["test-extras"] == []
    want = sorted(str(r) for r in _extra("test") if r.name != "matplotlib")
    assert sorted(override["test-requires"]) == want


def test_cibuildwheel_test_commands_work_under_cmd_exe():
    """On Windows cibuildwheel runs test-command through cmd.exe, which does not take
    ' as a quote: `-k 'not x'` reaches pytest as two broken arguments."""
    commands = _commands(CIBW["test-command"])
    for override in CIBW.get("overrides", []):
        commands += _commands(override.get("test-command", []))
    for command in commands:
        outside = re.sub(r'"[^"]*"', "", command)
        assert "'" not in outside, command


def test_cibuildwheel_fails_a_wheel_without_the_compiled_evaluator():
    """The first test command must fail when IMPLEMENTATION is not "c"; run it as the
    shell would, against this interpreter, with the reference evaluator forced."""
    first = _commands(CIBW["test-command"])[0]
    assert first.startswith('python -c "') and first.endswith('"')
    code = first[len('python -c "') : -1]
    env_py = {**os.environ, "CFGCORE_NO_EXTENSIONS": "1"}
    failed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env_py, timeout=60
    )
    assert failed.returncode != 0 and "not live" in failed.stderr
    if cfgcore.IMPLEMENTATION == "c":
        ok = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
        assert ok.returncode == 0, ok.stderr


# Top-level paths of the checkout that tests/ names but cibuildwheel's copy may leave out,
# and why no test that cibuildwheel runs needs them there.
_NOT_TEST_SOURCES = {
    # test_core_typing.py puts src/ on PYTHONPATH; where there is none, its mypy run
    # reads the installed wheel, which is what is under test there.
    "src": "optional",
    # test_peers_agree.py (the peer SDKs) is not run by cibuildwheel's test-command.
    "benchmarks": "not run",
    # The test below reads it only where it is there (the checkout, the sdist).
    "MANIFEST.in": "optional",
    # test_setup_one_module_fails.py builds with it where it is there (a wheel has no
    # setup.py to test).
    "setup.py": "optional",
}


def _top_level_names_in(module: Path, names: set[str]) -> set[str]:
    """The entries of ``names`` that a string in ``module`` names, alone or as the first
    part of a path (``ROOT / ".ci" / "run"``, ``"docs/flags.md"``)."""
    found = set()
    for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            first = node.value.split("/")[0]
            if first in names and (first == node.value or "/" in node.value):
                found.add(first)
    return found


def test_cibuildwheel_copies_every_path_the_tests_read():
    """cibuildwheel runs the suite from a copy of test-sources only: a file beside tests/
    that a test reads and the list leaves out fails that test on every wheel (with -x,
    the whole run). .ci/constraints.txt and docs/ were left out so."""
    root = PYPROJECT.parent
    tests_dir = Path(__file__).resolve().parent
    # In cibuildwheel's copy there is only test-sources. In the checkout (or the sdist),
    # the project's own top-level entries, as MANIFEST.in ships them: not .git or the
    # caches a tool leaves there (.mypy_cache, which a test also names for its own run).
    names = {p.name for p in root.iterdir()} - {tests_dir.name}
    manifest = root / "MANIFEST.in"
    if manifest.is_file():
        shipped = set()
        for line in manifest.read_text(encoding="utf-8").splitlines():
            words = line.split()
            if words and words[0] in {"include", "graft", "recursive-include"}:
                paths = words[1:] if words[0] == "include" else words[1:2]
                shipped |= {w.split("/")[0] for w in paths}
        names &= shipped
    read = set()
    for module in tests_dir.rglob("*.py"):
        read |= _top_level_names_in(module, names)
    copied = set(CIBW["test-sources"])
    missing = read - copied - set(_NOT_TEST_SOURCES)
    assert not missing, f"tests/ reads {sorted(missing)}; add them to test-sources"
    assert "tests" in copied and "pyproject.toml" in copied


# -- a feature used without its extra names the extra --------------------------------
# Each case blocks the extra's module (None in sys.modules makes its import fail as if
# it were not installed) in a fresh interpreter, uses the feature, and expects an error
# that names `pip install 'cfgcore[EXTRA]'`, not an ImportError traceback.

_MISSING = {
    "stats": (
        "scipy",
        """
        from cfgcore.experiments.stats import proportion_ci
        proportion_ci(3, 10)
        """,
    ),
    "secrets": (
        "cryptography",
        """
        from cfgcore.cli import main
        sys.exit(main(["secrets", "encrypt", "--key-file", KEY, "hello"]))
        """,
    ),
    "redis": (
        "redis",
        """
        from cfgcore.runtime.flagstore import open_store
        open_store("redis://127.0.0.1:1/0")
        """,
    ),
    "openfeature": (
        "openfeature",
        """
        import cfgcore.openfeature
        """,
    ),
    "prometheus": (
        "prometheus_client",
        """
        import cfgcore.observability.prometheus
        """,
    ),
}


@pytest.mark.parametrize("extra", list(_MISSING))
def test_a_feature_without_its_extra_names_the_extra(extra, tmp_path):
    module, use = _MISSING[extra]
    key = tmp_path / "key.txt"
    key.write_text("k1:" + "A" * 43 + "=\n", encoding="utf-8")
    script = f"import sys\nsys.modules[{module!r}] = None\nKEY = {str(key)!r}\n"
    script += textwrap.dedent(use)
    proc = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "CFGCORE_STATE_DIR": str(tmp_path / "state")},
    )
    assert proc.returncode != 0, "the feature worked without its dependency?"
    assert f"pip install 'cfgcore[{extra}]'" in proc.stderr, proc.stderr
