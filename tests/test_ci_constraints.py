"""CI's pins (.ci/constraints.txt) cover what .ci/run installs and agree with pyproject.

`.ci/run` installs with ``PIP_CONSTRAINT=.ci/constraints.txt`` so that a release made
upstream after the last CI run cannot fail it for code that did not change (redis-py 8.2
once did, through mypy). These checks keep the pins honest: a dependency added to
pyproject.toml without a pin, or a floor raised past its pin (which pip would only report
as a resolution failure in CI), fails here, with the file to refresh named.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - cfgcore depends on tomli there
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
CONSTRAINTS = ROOT / ".ci" / "constraints.txt"


def _pins() -> dict[str, Version]:
    """The pins that hold for this interpreter: a line with an environment marker (the
    other CPythons' pins, .ci/pin_pythons.py) counts where its marker is true."""
    pins: dict[str, Version] = {}
    for n, line in enumerate(CONSTRAINTS.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^;\s]+)(?:\s*;\s*(.+))?", line)
        assert m, f"{CONSTRAINTS}:{n}: not a NAME==VERSION pin: {line!r}"
        if m.group(3) is not None:
            marker = Marker(m.group(3))  # (raises on a malformed one)
            assert "python_version" in m.group(3), f"{CONSTRAINTS}:{n}: {line!r}"
            if not marker.evaluate():
                continue
        name = canonicalize_name(m.group(1))
        assert name not in pins, f"{CONSTRAINTS}:{n}: {name} is pinned twice"
        pins[name] = Version(m.group(2))
    return pins


@pytest.mark.parametrize("minor", ["3.10", "3.11", "3.12", "3.13", "3.14"])
def test_each_python_version_gets_one_pin_a_package(minor):
    """The marked lines of one package never overlap: for every supported Python there
    is at most one pin of it (pip would refuse two)."""
    seen: dict[str, str] = {}
    for line in CONSTRAINTS.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, _, rest = line.partition("==")
        marker = rest.partition(";")[2].strip()
        if marker and not Marker(marker).evaluate({"python_version": minor}):
            continue
        key = canonicalize_name(name)
        assert key not in seen, f"{key} pinned twice for Python {minor}: {seen[key]!r}, {line!r}"
        seen[key] = line


def _ci_requirements() -> list[tuple[str, Requirement]]:
    """What .ci/run asks pip for: the runtime dependencies, the dev and lint extras
    (following cfgcore[...] references), and the build requirements."""
    extras = PYPROJECT["project"]["optional-dependencies"]
    out = [("dependencies", Requirement(r)) for r in PYPROJECT["project"]["dependencies"]]
    build = PYPROJECT["build-system"]["requires"]
    out += [("build-system.requires", Requirement(r)) for r in build]
    todo, seen = ["dev", "lint"], set()
    while todo:
        extra = todo.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for text in extras[extra]:
            req = Requirement(text)
            if canonicalize_name(req.name) == "cfgcore":
                todo.extend(sorted(req.extras))  # a set: sorted, so every worker collects alike
            else:
                out.append((f"optional-dependencies.{extra}", req))
    # Those whose markers leave them out here (tomli before 3.11) are not installed, so
    # there is nothing to pin for this interpreter.
    return [(where, req) for where, req in out if req.marker is None or req.marker.evaluate()]


def test_constraints_file_is_well_formed():
    pins = _pins()
    assert "cfgcore" not in pins, "the project itself must not be pinned"
    assert "pip" not in pins, "pip is the installer's own: not pinned"


@pytest.mark.parametrize(("where", "req"), _ci_requirements(), ids=lambda v: str(v))
def test_every_ci_requirement_is_pinned_within_its_range(where, req):
    pins = _pins()
    name = canonicalize_name(req.name)
    assert name in pins, (
        f"pyproject.toml {where} names {req.name}, which {CONSTRAINTS} does not pin: "
        "run .ci/refresh-constraints"
    )
    assert req.specifier.contains(pins[name], prereleases=True), (
        f"pyproject.toml {where} asks for {req}, but {CONSTRAINTS} pins {req.name}=={pins[name]}: "
        "run .ci/refresh-constraints"
    )


def test_ci_run_installs_under_the_constraints():
    run = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    # Set before the first pip install, so every install (build environments included) is pinned.
    set_at = run.index('export PIP_CONSTRAINT="$PWD/.ci/constraints.txt"')
    first_install = re.search(r"^\s*python -m pip install", run, re.M)
    assert first_install, "no pip install in .ci/run"
    assert set_at < first_install.start(), "PIP_CONSTRAINT must be set before the first install"
