"""Pins for the other CPythons CI builds wheels with (used by .ci/refresh-constraints).

    python .ci/pin_pythons.py CONSTRAINTS PYTHON [PYTHON ...]

CONSTRAINTS holds the CI interpreter's pins (`pkg==version`, one a line; lines with an
environment marker are earlier runs of this script, and are dropped). For each other
interpreter, pip resolves what `wheels/build.sh` installs there (the `test` extra and
the build requirements) holding it to those pins, and drops only the pins pip says that
interpreter cannot have (a release that left that Python behind, such as hypothesis or
numpy leaving 3.10), so each interpreter differs from CI's by as few packages as it
must. A package whose version differs gets one line a Python version, with its marker
(`pkg==v; python_version == "3.10"`); pip ignores the lines whose marker is false. The
file is rewritten in place (temp file, rename).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from typing import Any

WANTED = [".[test]", "setuptools>=77", "Cython>=3.0,<4"]  # pyproject's build requires
CONFLICT = re.compile(r"The user requested \(constraint\) ([A-Za-z0-9_.\-]+)==")
PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==([^;\s]+)\s*(?:;(.*))?$")


def canon(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_pins(path: str) -> tuple[list[str], dict[str, tuple[str, str]]]:
    """The file's leading comments and CI's pins (canonical name -> (name, version)):
    every pin but the lines this script wrote for one other Python version."""
    head: list[str] = []
    pins: dict[str, tuple[str, str]] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("#"):
                if not pins:
                    head.append(line)
                continue
            m = PIN.match(line)
            if m and not (m[3] and "==" in m[3]):
                pins[canon(m[1])] = (m[1], m[2])
    return head, pins


def _dry_run(python: str, pins: dict[str, tuple[str, str]]) -> tuple[bool, Any]:
    """pip's resolution of WANTED for ``python`` under ``pins``: (True, {key: (name,
    version)}), or (False, pip's output)."""
    with tempfile.TemporaryDirectory() as tmp:
        constraints = os.path.join(tmp, "c.txt")
        report = os.path.join(tmp, "r.json")
        with open(constraints, "w", encoding="utf-8") as f:
            f.writelines(f"{n}=={v}\n" for n, v in pins.values())
        env = {**os.environ, "PIP_CONSTRAINT": constraints}
        run = subprocess.run(
            [python, "-m", "pip", "install", "--dry-run", "--ignore-installed",
             "--report", report, *WANTED],
            capture_output=True, text=True, env=env, check=False,
        )  # fmt: skip
        if run.returncode != 0:
            return False, run.stdout + run.stderr
        with open(report, encoding="utf-8") as f:
            got = json.load(f)["install"]
    return True, {
        canon(i["metadata"]["name"]): (i["metadata"]["name"], i["metadata"]["version"])
        for i in got
        if canon(i["metadata"]["name"]) != "cfgcore"
    }


def _available(python: str, name: str) -> set[str]:
    """The releases of ``name`` pip offers ``python`` (its Requires-Python and tags)."""
    run = subprocess.run(
        [python, "-m", "pip", "index", "versions", name],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    m = re.search(r"^Available versions: (.*)$", run.stdout, re.M)
    return {v.strip() for v in m[1].split(",")} if m else set()


def resolve(python: str, pins: dict[str, tuple[str, str]]) -> dict[str, tuple[str, str]]:
    """What pip installs with ``python``, held to ``pins`` except those it cannot have.

    Holding pip to a pin with no release for that Python makes its resolver backtrack
    through every release of what depends on it (many minutes), so: resolve without
    pins, keep the pins of the packages that resolution holds whose pinned release that
    Python can install, and resolve again under those; should that conflict, drop what
    pip names and retry."""
    ok, free = _dry_run(python, {})
    if not ok:
        sys.exit(f"{python}: pip cannot resolve {WANTED} at all:\n{free}")
    held = {}
    for key in free:
        if key in pins:
            if pins[key][1] in _available(python, pins[key][0]):
                held[key] = pins[key]
            else:
                print(f"{python}: {pins[key][0]}=={pins[key][1]} is not for it", file=sys.stderr)
    for _ in range(10):
        ok, got = _dry_run(python, held)
        if ok:
            return got
        dropped = {canon(n) for n in CONFLICT.findall(got)} & held.keys()
        if not dropped:
            sys.exit(f"{python}: pip cannot resolve, and names no pin to drop:\n{got}")
        for key in sorted(dropped):
            print(f"{python}: {held[key][0]}=={held[key][1]} conflicts there", file=sys.stderr)
            del held[key]
    sys.exit(f"{python}: still no resolution after 10 rounds of dropping pins")


def version_of(python: str) -> str:
    out = subprocess.run(
        [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return out.stdout.strip()


def main(path: str, pythons: list[str]) -> None:
    head, base = read_pins(path)
    others = {version_of(p): resolve(p, base) for p in pythons}
    lines = [f"{n}=={v}" for n, v in base.values()]
    marked: list[str] = []
    for ver, pins in sorted(others.items()):
        for key, (name, version) in pins.items():
            if key not in base or base[key][1] != version:
                marked.append(f'{name}=={version}; python_version == "{ver}"')
    # A package pinned for CI at another version: CI's pin holds only for the Python
    # versions that agree with it.
    differing = {
        key
        for pins in others.values()
        for key, (_, v) in pins.items()
        if key in base and base[key][1] != v
    }
    for i, line in enumerate(lines):
        key = canon(line.split("==")[0])
        if key in differing:
            differ = sorted(
                ver for ver, pins in others.items() if pins.get(key, base[key])[1] != base[key][1]
            )
            lines[i] = line + "; " + " and ".join(f'python_version != "{v}"' for v in differ)
    body = sorted(lines + marked, key=lambda s: (canon(re.split(r"[=;]", s)[0]), s))
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("\n".join(head + body) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    print(
        f"{path}: {len(marked)} pin(s) for {', '.join(sorted(others))} beside CI's", file=sys.stderr
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
