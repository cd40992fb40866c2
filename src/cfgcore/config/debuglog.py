"""Debug-mode narration of the configuration manager's change path.

With ``cfgcore`` logging at DEBUG (``manager.enable_debug_mode()``, or
``logging.getLogger("cfgcore").setLevel(logging.DEBUG)``) every activation tells its
steps on ``cfgcore.manager``: the files read, the layers merged, the validation
result, and the swap with every changed key. Values pass through
:func:`cfgcore.runtime.redaction.redact` (secret keys, resolved secrets, credentials in
URLs), so a debug log can be shared.

File names and key paths are shown escaped (:func:`cfgcore.errors.printable_name`):
a key holding a newline cannot forge a line of the log.

Callers guard each call with ``log.isEnabledFor(logging.DEBUG)``: above DEBUG the
change path does not even build the arguments.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

from cfgcore.config.files import Layer
from cfgcore.config.tree import diff_trees
from cfgcore.errors import Problem, printable_name
from cfgcore.runtime.redaction import redact

__all__ = ["files_read", "layers_merged", "swapped", "validated"]

log = logging.getLogger("cfgcore.manager")

#: Changed keys listed per swap; the rest are counted.
MAX_CHANGES = 50


def files_read(env: str, texts: Iterable[tuple[str, bytes]], flags_file: str | None) -> None:
    """Step 1: which input files were read for ``env``, and their sizes."""
    read = ", ".join(f"{printable_name(path)} ({len(raw)} bytes)" for path, raw in texts)
    log.debug("reload %s: read %s%s", env, read or "no files",
              f"; flags {flags_file}" if flags_file else "")  # fmt: skip


def layers_merged(env: str, layers: Sequence[Layer]) -> None:
    """Step 2: the layers merged, lowest first, with how many top-level keys each set."""
    shown = []
    for layer in layers:
        where = printable_name(layer.file or layer.kind)
        shown.append(f"{layer.name} [{layer.kind}, {where}, {len(layer.data)} keys]")
    log.debug("reload %s: merged %s", env, " < ".join(shown))


def validated(version: int, problems: Sequence[Problem], seconds: float) -> None:
    """Step 3: the validation gate's verdict (problems are masked by ``Problem``)."""
    if not problems:
        log.debug("version %d: validation passed in %.2f ms", version, seconds * 1e3)
        return
    log.debug("version %d: validation blocked it in %.2f ms (%d problems): %s", version,
              seconds * 1e3, len(problems), "; ".join(str(p) for p in problems))  # fmt: skip


def swapped(previous: Any, snap: Any, source: str) -> None:
    """Step 4: the swap, and every changed key with its old and new value redacted."""
    changes = diff_trees(previous.config, snap.config) if previous.version else []
    lines = [
        f"{printable_name(path)}: {redact(path, old)!r} -> {redact(path, new)!r}"
        for path, old, new in changes[:MAX_CHANGES]
    ]
    if len(changes) > MAX_CHANGES:
        lines.append(f"... and {len(changes) - MAX_CHANGES} more")
    log.debug("swap (%s): version %d -> %d, %s%s", source, previous.version, snap.version,
              f"{len(changes)} keys changed" if previous.version else "first load",
              "".join(f"\n  {line}" for line in lines))  # fmt: skip
