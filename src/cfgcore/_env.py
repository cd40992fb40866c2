"""Environment switches read before anything else is imported (no cfgcore imports).

``NO_EXTENSIONS`` (``CFGCORE_NO_EXTENSIONS``) makes every module use its pure-Python
reference instead of the compiled one: the flag evaluator (:mod:`cfgcore._compat`)
and the configuration tree's read path (:mod:`cfgcore.config.tree`).
"""

from __future__ import annotations

import os
import warnings

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
