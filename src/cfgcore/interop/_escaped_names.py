"""Attribute names holding '#', escaped so that no context can forge a derived key.

The importers' ``context()`` functions derive keys beside each attribute by appending a
suffix that starts with '#' and a letter (``a#num``, ``a#cbor``, ``a#semver``,
``a#size``) or by whole keys starting so (``#random``, ``#fraction:...``). An attribute
whose own name held ``#`` (``{"a#num": 5}``) would stand for one of them. So in every
name (an attribute, a property, an object key, a path segment) each '#' is written
``#!``, in the context and in the conditions an importer lowers alike: the first '#'
of a key that is not followed by '!' starts its suffix, and a name without '#' is its
own key at no cost.
"""

from __future__ import annotations

__all__ = ["ESCAPED_HASH", "escape_name", "split_derived", "unescape_name"]

ESCAPED_HASH = "#!"


def escape_name(name: str) -> str:
    """The key of the name ``name`` (one attribute, property or path segment)."""
    return name.replace("#", ESCAPED_HASH) if "#" in name else name


def unescape_name(key: str) -> str:
    """The name whose key (:func:`escape_name`) is ``key``."""
    return key.replace(ESCAPED_HASH, "#") if "#" in key else key


def split_derived(key: str) -> tuple[str, str]:
    """(name or path, suffix) of a key: the suffix (``#num``, ``#size#vn``, ...) starts
    at the first '#' that is no escaped one of the name (see :func:`escape_name`)."""
    i = key.find("#")
    while i >= 0 and key.startswith("!", i + 1):
        i = key.find("#", i + 2)
    return (key, "") if i < 0 else (key[:i], key[i:])
