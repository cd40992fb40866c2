"""Decide which evaluator implementation is live.

The compiled extension (``cfgcore._eval``) is used unless it is missing or the
environment variable ``CFGCORE_NO_EXTENSIONS`` is true. When the extension was
expected (it is not disabled) but fails to import, cfgcore warns once: a build that
silently runs the pure-Python reference is ~30x slower, which is worse than a loud
message. ``IMPLEMENTATION`` is ``"c"`` or ``"py"`` and always tells the truth.
"""

from __future__ import annotations

import warnings
from types import ModuleType

from cfgcore._env import NO_EXTENSIONS, REBUILD_COMMAND, build_skipped_extension, env_flag

__all__ = ["IMPLEMENTATION", "NO_EXTENSIONS", "USE_EXTENSIONS", "env_flag", "implementations"]


USE_EXTENSIONS = not NO_EXTENSIONS  # the compiled evaluator is wanted (it may still fail)
EXTENSION_ERROR: str | None = None

impl: ModuleType
if NO_EXTENSIONS:
    from cfgcore import _eval_py as impl

    IMPLEMENTATION = "py"
else:
    try:
        from cfgcore import _eval as impl  # type: ignore[no-redef]  # noqa: F401

        IMPLEMENTATION = "c"
    except ImportError as exc:  # pragma: no cover - depends on the build
        # The reference evaluator serves instead: engine.py and the exposure writer
        # import ``impl`` from here (left unbound, a build without a compiler could not
        # import cfgcore.engine at all).
        from cfgcore import _eval_py as impl  # noqa: F401

        EXTENSION_ERROR = f"{type(exc).__name__}: {exc}"
        skipped = build_skipped_extension("cfgcore._eval")
        if skipped is not None:
            EXTENSION_ERROR = f"not built: {skipped['reason']}"
        # A build made pure-Python on purpose (CFGCORE_NO_EXTENSIONS=1 at build time)
        # stays quiet; anything else that lost the extension says so once.
        if skipped is None or not skipped.get("deliberate"):
            warnings.warn(
                "cfgcore: the compiled evaluator (cfgcore._eval) failed to import; "
                "falling back to the pure-Python reference, which is much slower "
                f"({EXTENSION_ERROR}). Reinstall with a C compiler, past the pure-Python "
                f"wheel pip cached: {REBUILD_COMMAND} (or install a wheel); or set "
                "CFGCORE_NO_EXTENSIONS=1 to silence this.",
                RuntimeWarning,
                stacklevel=2,
            )

        IMPLEMENTATION = "py"


def implementations() -> dict[str, ModuleType]:
    """Every evaluator implementation importable here, keyed ``"c"`` / ``"py"``."""
    from cfgcore import _eval_py

    found: dict[str, ModuleType] = {"py": _eval_py}
    try:
        from cfgcore import _eval

        found["c"] = _eval
    except ImportError:
        pass
    return found
