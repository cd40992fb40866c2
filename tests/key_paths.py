"""Checks the syntax-error key path tests share (YAML and JSON): does a path an error
names lead somewhere in the document the broken text came from?"""

from __future__ import annotations

from typing import Any


def resolves(document: Any, segments: list[str]) -> bool:
    """Whether each segment names a key of a mapping or an index of a list there (one
    past the last item allowed, as the last segment: the place an item goes)."""
    node = document
    for i, segment in enumerate(segments):
        if isinstance(node, dict):
            if segment not in node:
                return False
            node = node[segment]
        elif isinstance(node, list):
            if not segment.isdigit() or int(segment) > len(node):
                return False
            if int(segment) == len(node):
                return i == len(segments) - 1
            node = node[int(segment)]
        else:
            return False  # a path going on past a value
    return True
