"""One home for the table layout: ``_layout.pxd``.

The compiled evaluator cimports it; ``cfgcore._layout`` is its Python twin for the
compiler and the reference evaluator. These tests check both ways that every name
and value agrees, that no other core module declares layout numbers of its own,
and that the .pxd ships with the package (with the .pyx and the .pxi files it includes).
"""

from __future__ import annotations

import ast
import re
import sys
from fnmatch import fnmatch
from pathlib import Path

import pytest

from cfgcore import _layout, compiler
from cfgcore.details import ERROR_CODES, REASONS, ErrorCode, Reason
from tests.conftest import IMPLS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

PKG = Path(_layout.__file__).parent
ROOT = Path(__file__).resolve().parent.parent  # the checkout, or a copy of tests/ and pyproject


def test_python_twin_matches_the_pxd_both_ways():
    pxd = _layout.read_pxd()
    py = _layout.python_names()
    assert len(pxd) > 70
    missing_in_py = {n: v for n, v in pxd.items() if py.get(n) != v}
    missing_in_pxd = {n: v for n, v in py.items() if pxd.get(n) != v}
    assert not missing_in_py, (
        f"declared in _layout.pxd, not (or differently) in _layout.py: {missing_in_py}"
    )
    assert not missing_in_pxd, (
        f"defined in _layout.py, not (or differently) in _layout.pxd: {missing_in_pxd}"
    )


def test_the_extension_was_built_from_the_same_pxd():
    if "c" not in IMPLS:
        pytest.skip("cfgcore._eval is not built here")
    ext = IMPLS["c"]
    assert ext.LAYOUT == _layout.read_pxd()
    assert ext.OPCODES == _layout.OPCODES


def test_compiler_reexports_the_layout_unchanged():
    for name, value in _layout.python_names().items():
        assert getattr(compiler, name) == value, name


def test_reason_codes_index_the_reason_strings():
    assert len(_layout.REASON_CODES) == len(REASONS)
    want = {
        "REASON_STATIC": Reason.STATIC,
        "REASON_DEFAULT": Reason.DEFAULT,
        "REASON_MATCH": Reason.TARGETING_MATCH,
        "REASON_SPLIT": Reason.SPLIT,
        "REASON_DISABLED": Reason.DISABLED,
        "REASON_PREREQ": Reason.PREREQUISITE_FAILED,
        "REASON_ERROR": Reason.ERROR,
    }
    assert {n: REASONS[v] for n, v in _layout.REASON_CODES.items()} == want


def test_counter_codes_index_the_reason_and_error_strings():
    assert _layout.N_REASONS == len(REASONS)
    errs = {n: v for n, v in _layout.python_names().items() if n.startswith("ERR_")}
    assert len(errs) == _layout.N_ERRORS == len(ERROR_CODES)
    assert {n: ERROR_CODES[v] for n, v in errs.items()} == {
        "ERR_FLAG_NOT_FOUND": ErrorCode.FLAG_NOT_FOUND,
        "ERR_TYPE_MISMATCH": ErrorCode.TYPE_MISMATCH,
        "ERR_INVALID_CONTEXT": ErrorCode.INVALID_CONTEXT,
        "ERR_GENERAL": ErrorCode.GENERAL,
    }


def test_values_are_distinct_where_they_must_be():
    for prefix in ("OP_", "F_", "R_", "REASON_", "V_"):
        group = {n: v for n, v in _layout.python_names().items() if n.startswith(prefix)}
        if prefix == "R_":
            group = {n: v for n, v in group.items() if not n.startswith("REASON_")}
        assert len(set(group.values())) == len(group), prefix
    assert max(v for n, v in _layout.python_names().items() if n.startswith("F_")) < _layout.FW
    rule_fields = [
        v
        for n, v in _layout.python_names().items()
        if n.startswith("R_") and not n.startswith("REASON_")
    ]
    assert max(rule_fields) < _layout.RW


def test_no_other_core_module_declares_layout_numbers():
    """A layout name assigned a literal anywhere but _layout.py would be a second home."""
    names = set(_layout.read_pxd())
    offenders = []
    for path in [*PKG.glob("*.py"), PKG / "_eval.pyx", *sorted(PKG.glob("_eval_*.pxi"))]:
        if path.name == "_layout.py":
            continue
        text = path.read_text(encoding="utf-8")
        if path.suffix in (".pyx", ".pxi"):
            for line in text.splitlines():
                head = line.strip().split(" = ")[0]
                if (
                    head in names
                    and line.startswith("    ")
                    and " = " in line
                    and "=" + head not in line
                ):
                    offenders.append(f"{path.name}: {line.strip()}")
            continue
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    for el in target.elts if isinstance(target, ast.Tuple) else [target]:
                        if isinstance(el, ast.Name) and el.id in names:
                            offenders.append(f"{path.name}:{node.lineno}: {el.id}")
    assert not offenders, offenders


def test_the_pxd_ships_in_wheels_and_sdists():
    """package-data must carry _layout.pxd (a cimporting build needs it) next to the .pyx,
    and the .pxi files _eval.pyx includes (its parts)."""
    conf = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = conf["tool"]["setuptools"]["package-data"]["cfgcore"]
    pyx = (PKG / "_eval.pyx").read_text(encoding="utf-8")
    parts = re.findall(r'^include "([^"]+)"$', pyx, re.M)
    assert parts, "_eval.pyx includes no parts"
    shipped_files = ("_layout.pxd", "_eval.pyx", *parts, "_eval.pyi", "_tree.pyx", "_tree.pyi")
    for shipped in (*shipped_files, "py.typed"):
        assert (PKG / shipped).is_file(), shipped
        assert any(fnmatch(shipped, p) for p in patterns), shipped
    excluded = conf["tool"]["setuptools"]["exclude-package-data"]["cfgcore"]
    assert not any(fnmatch("_layout.pxd", p) for p in excluded)
