"""Capturing cfgcore's log records in a test, whatever level another test left."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator


@contextlib.contextmanager
def records(
    level: int = logging.WARNING, name: str = "cfgcore"
) -> Iterator[list[logging.LogRecord]]:
    """The records of logger ``name`` and its children at ``level`` and above logged
    meanwhile. Meanwhile the logger's level is ``level``, its children's are unset,
    enabled and propagating, and ``logging.disable`` is lifted (another test of the
    worker may have raised ``cfgcore.fleet`` to CRITICAL, say, and a child's own level
    decides first); all of it restored afterwards."""
    got: list[logging.LogRecord] = []
    handler = logging.Handler(level)
    handler.emit = got.append  # type: ignore[method-assign]
    logger = logging.getLogger(name)
    children = [
        child
        for key, child in list(logging.Logger.manager.loggerDict.items())
        if key.startswith(name + ".") and isinstance(child, logging.Logger)
    ]
    saved = [(one, one.level, one.disabled, one.propagate) for one in [logger, *children]]
    disabled_below = logging.root.manager.disable  # (logging.disable(...) by a test)
    logging.disable(logging.NOTSET)
    for child in children:
        child.setLevel(logging.NOTSET)
        child.disabled, child.propagate = False, True
    logger.disabled = False
    logger.addHandler(handler)
    logger.setLevel(level)
    try:
        yield got
    finally:
        logger.removeHandler(handler)
        logging.disable(disabled_below)
        for one, one_level, disabled, propagate in saved:
            one.setLevel(one_level)
            one.disabled, one.propagate = disabled, propagate
