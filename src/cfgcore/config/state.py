"""The configuration manager's state: one immutable :class:`ConfigSnapshot` per version,
and the runtime-updates layer that sits on top of every file layer."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from cfgcore.config.files import Layer
from cfgcore.config.tree import REPLACE, FrozenDict, thaw

_ABSENT: Any = object()

__all__ = ["EMPTY", "ConfigSnapshot", "runtime_snapshot", "runtime_with", "set_in"]


@dataclass(frozen=True, slots=True)
class ConfigSnapshot:
    """One immutable, fully built configuration state (what the manager swaps in).

    ``config`` is the frozen merged tree; ``layers`` are kept for provenance;
    ``fingerprint`` is the (inode, size, mtime, ctime) of every input file, used by the
    hot-reload poll; ``sources`` the bytes digest of every input, used to skip no-op
    reloads; ``refs`` maps each key whose live value came from an environment variable
    to the reference that produced it (``${KAFKA_PASSWORD}``), so validation judges the
    reference rather than the secret it resolved to; ``env_names`` the environment
    variables the input files reference (their values are part of ``sources``).
    """

    config: FrozenDict
    layers: tuple[Layer, ...]
    version: int
    environment: str
    profile: str | None
    geographic_profile: str | None
    files: tuple[str, ...]
    flags_file: str | None
    fingerprint: tuple[Any, ...]
    sources: tuple[Any, ...]
    loaded_at: float
    refs: Mapping[tuple[Any, ...], str] = field(default_factory=dict, repr=False)
    env_names: frozenset[str] = field(default=frozenset(), repr=False)
    flat: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def runtime(self) -> Layer:
        """The runtime-updates layer (always the top one)."""
        return self.layers[-1]


EMPTY = ConfigSnapshot(
    config=FrozenDict(),
    layers=(Layer("runtime", "runtime", {}),),
    version=0,
    environment="",
    profile=None,
    geographic_profile=None,
    files=(),
    flags_file=None,
    fingerprint=(),
    sources=(),
    loaded_at=0.0,
)


def runtime_with(runtime: Layer, overrides: Mapping[tuple[Any, ...], Any], source: str) -> Layer:
    """A new runtime layer with ``overrides`` (path -> value or DELETE) recorded."""
    data = runtime.data
    sources = dict(runtime.sources)
    now = time.time()
    for path, value in overrides.items():
        data = set_in(data, path, thaw(value))
        sources[tuple(path)] = (source, now)
    return Layer("runtime", "runtime", data, sources=sources)


def set_in(data: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    # Values are recorded, not merged: a mapping set at runtime replaces the section
    # (what update_config promised is exactly the value given), DELETE stays a marker so
    # it deletes the key from the file layers below on every rebuild.
    out = dict(data)
    node = out
    for seg in path[:-1]:
        nxt = node.get(seg, _ABSENT)
        if isinstance(nxt, dict):
            nxt = dict(nxt)
        else:  # absent: merge with the layers below; a marker or a value (null
            # included: it was set here, over the files) start afresh
            nxt = {} if nxt is _ABSENT else {REPLACE: True}
        node[seg] = nxt
        node = nxt
    node[path[-1]] = {**value, REPLACE: True} if isinstance(value, dict) else value
    return out


def runtime_snapshot(
    prev: ConfigSnapshot,
    config: FrozenDict,
    overrides: Mapping[tuple[Any, ...], Any],
    source: str,
    refs: Mapping[tuple[Any, ...], str],
) -> ConfigSnapshot:
    """``prev`` with a new tree whose differences are recorded as runtime overrides."""
    runtime = runtime_with(prev.runtime, overrides, source)
    return replace(
        prev, config=config, layers=(*prev.layers[:-1], runtime), version=prev.version + 1,
        loaded_at=time.time(), refs=refs, flat={},
    )  # fmt: skip
