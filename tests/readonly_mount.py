"""A directory that reads as a read-only mount (a Kubernetes ConfigMap volume, an image
layer), for tests of the checks that exempt such mounts: ``statvfs`` of that one
directory reports ``ST_RDONLY``; every other path is asked of the real system."""

from __future__ import annotations

import os
from typing import Any


class _ReadOnly:
    def __init__(self, st: Any) -> None:
        self.st = st

    def __getattr__(self, name: str) -> Any:
        return getattr(self.st, name)

    @property
    def f_flag(self) -> int:
        return self.st.f_flag | os.ST_RDONLY


def mount_read_only(monkeypatch: Any, directory: str | os.PathLike[str]) -> None:
    """Make cfgcore's ``statvfs`` (runtime.atomicio's) see ``directory`` as read-only."""
    from cfgcore.runtime import atomicio

    real, where = os.statvfs, os.fspath(directory)
    monkeypatch.setattr(
        atomicio.os,
        "statvfs",
        lambda d: _ReadOnly(real(d)) if os.fspath(d) == where else real(d),
    )
