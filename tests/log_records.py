"""Capturing cfgcore's log records in a test, whatever level another test left."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator


@contextlib.contextmanager
def records(
    level: int = logging.WARNING, name: str = "cfgcore"
) -> Iterator[list[logging.LogRecord]]:
    """The records of logger ``name`` at ``level`` and above logged meanwhile (the
    logger's own level set to ``level`` meanwhile: another test may have raised it)."""
    got: list[logging.LogRecord] = []
    handler = logging.Handler(level)
    handler.emit = got.append  # type: ignore[method-assign]
    logger = logging.getLogger(name)
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(level)
    try:
        yield got
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)
