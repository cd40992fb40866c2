"""Environment switches read before anything else is imported (no cfgcore imports).

``NO_EXTENSIONS`` (``CFGCORE_NO_EXTENSIONS``) makes every module use its pure-Python
reference instead of the compiled one: the flag evaluator (:mod:`cfgcore._compat`),
the configuration tree's read path (:mod:`cfgcore.config.tree`) and the atomic write's
system calls (:mod:`cfgcore.runtime.atomicio`).

:func:`extension_missing` is what a module whose compiled part (``cfgcore._tree``,
``cfgcore._atomic``) failed to import calls before it takes its Python steps.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import os
import sys
import warnings
from typing import Any

_TRUE = {"1", "true", "yes", "on", "y", "t"}
_FALSE = {"0", "false", "no", "off", "n", "f", ""}


def env_flag(name: str, default: bool = False) -> bool:
    """Parse a boolean environment variable (1/0, true/false, yes/no, on/off)."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    warnings.warn(
        f"environment variable {name}={raw!r} is not a boolean; using {default}",
        RuntimeWarning,
        stacklevel=2,
    )
    return default


NO_EXTENSIONS = env_flag("CFGCORE_NO_EXTENSIONS")


# How to rebuild after installing a compiler. pip keeps the wheel it built from the sdist
# (the pure-Python one) in its cache and a plain reinstall, even --force-reinstall,
# installs that wheel again without running the compiler.
REBUILD_COMMAND = "pip install --no-cache-dir --force-reinstall --no-deps cfgcore"

#: The compiled modules that failed to import where the evaluator did, with why:
#: ``{"cfgcore._atomic": "ImportError: ..."}`` (``python -m cfgcore --version`` names them).
MISSING_EXTENSIONS: dict[str, str] = {}


def build_skipped_extension(module: str | None = None) -> dict[str, Any] | None:
    """Why this installation was built without its compiled modules, or None.

    setup.py writes ``_no_extension.json`` (``{"reason", "deliberate"}``) beside this
    module when a build installs no compiled module, or not all of them: deliberately
    (``CFGCORE_NO_EXTENSIONS=1`` at build time) or because the C compiler failed. A
    build that left some out names them (``"missing"``): given ``module``, the record
    is returned only if the build left that module out (one missing for another
    reason, deleted or damaged since, is not explained by another module's failure).
    """
    path = os.path.join(os.path.dirname(__file__), "_no_extension.json")
    try:
        with open(path, encoding="utf-8") as f:
            info = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(info, dict):
        return None
    missing = info.get("missing")
    if module is not None and isinstance(missing, list) and module not in missing:
        return None
    return info


def _evaluator_loads() -> bool:
    """Whether the compiled evaluator's file is there and loads, without importing it
    (its import imports much of cfgcore, and this runs inside the imports of the
    modules it would reach). A file that exists but does not load (damaged, built for
    another system) is no compiled evaluator: :mod:`cfgcore._compat` warns of it."""
    if "cfgcore._eval" in sys.modules:
        return True
    try:
        spec = importlib.util.find_spec("cfgcore._eval")
    except (ImportError, ValueError):
        return False
    if spec is None or not spec.origin or not os.path.isfile(spec.origin):
        return False
    if not spec.origin.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES)):
        return True  # (not a shared library: its import tells)
    import ctypes

    try:
        ctypes.CDLL(spec.origin)  # the loader's step that fails for such a file
    except OSError:
        return False
    return True


def extension_missing(module: str, exc: ImportError) -> None:
    """``module`` (``"cfgcore._tree"``, ``"cfgcore._atomic"``) failed to import and its
    caller takes its pure-Python steps instead: warn once, as :mod:`cfgcore._compat`
    does for the evaluator, unless the build left the compiled modules out on purpose
    (``CFGCORE_NO_EXTENSIONS=1`` at build time). An installation without the compiled
    evaluator too (no compiler at all) says so once, in the evaluator's warning.

    Without this an installation whose evaluator is compiled but which lacks one of the
    other modules (an in-place build older than the module, a compiler that failed on
    that module alone) ran slower without a word: ``IMPLEMENTATION`` says ``"c"``.
    """
    if module in MISSING_EXTENSIONS:
        return
    reason = f"{type(exc).__name__}: {exc}"
    skipped = build_skipped_extension(module)
    if skipped is not None:
        reason = f"not built: {skipped.get('reason')}"
    MISSING_EXTENSIONS[module] = reason
    if skipped is not None and skipped.get("deliberate"):
        return
    if not _evaluator_loads():  # no compiled evaluator either: cfgcore._compat warns
        return
    warnings.warn(
        f"cfgcore: the compiled module {module} failed to import ({reason}); its "
        "pure-Python steps run instead (the same results, slower). Rebuild the compiled "
        f"modules: {REBUILD_COMMAND} (or install a wheel; in a source checkout: pip "
        "install --no-deps -e .); or set CFGCORE_NO_EXTENSIONS=1 to silence this.",
        RuntimeWarning,
        stacklevel=3,
    )
