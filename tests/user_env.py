"""The environment of a new user running cfgcore in a subprocess: none of the caller's
cfgcore settings (``CFGCORE_*``, ``CONFIG_*``, ``XDG_*``), a home and state directory of
the test's own, and the cfgcore under test importable wherever it was imported from."""

from __future__ import annotations

import os
from pathlib import Path

import cfgcore


def new_user_env(home: Path, **extra: str) -> dict[str, str]:
    """The process environment without cfgcore's settings, ``HOME`` at ``home``, the
    state directory under it, ``PYTHONPATH`` the cfgcore under test; ``extra`` on top."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CFGCORE_", "CONFIG_", "XDG_")) and k != "PYTHONPATH"
    }
    env.update(
        HOME=str(home),
        CFGCORE_STATE_DIR=str(home / "state"),
        PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(cfgcore.__file__))),
        **extra,
    )
    return env
