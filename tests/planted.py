"""Files another local user put in a directory others may create files in, for the
tests of cfgcore's state-directory ownership rule (runtime/atomicio.py): made as root,
given to a uid that need not exist."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

OTHER = 4321  # another local user (need not exist)

#: The tests that make another user's files: only root may give a file away.
as_root = pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0, reason="making another user's files needs root"
)

#: Directories other users may create files in: sticky and writable by every user (as
#: ``/tmp``), or writable by its group (setgid).
SHARED_MODES = {"sticky": 0o1777, "group": 0o2775}


def shared_dir(parent: Path, kind: str) -> Path:
    """A new directory ``parent/kind`` of :data:`SHARED_MODES` ``kind``."""
    d = parent / kind
    d.mkdir()
    os.chmod(d, SHARED_MODES[kind])
    return d


def plant(path: Path, data: bytes | str = b"", uid: int = OTHER) -> None:
    """Another user's file at ``path``: made aside and renamed in (a user who may create
    files in the directory may replace what it holds)."""
    aside = path.parent / f".{path.name}.planted"
    if isinstance(data, str):
        aside.write_text(data)
    else:
        aside.write_bytes(data)
    os.lchown(aside, uid, uid)
    os.replace(aside, path)
