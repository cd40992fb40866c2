"""Experiment layers and holdouts, lowered to ordinary flags.

A layer is a flag split into one slice per test plus an unassigned remainder, salted
by the layer's name; each test of the layer has a prerequisite ``{flag: <layer flag>,
variant: <its slice>}``, so a user is in at most one test of a layer. A holdout is a
slice of users (bucketed by its own salt) that no test ever enrols: every test has the
prerequisite ``__experiments__.eligible``, which is off for the holdout.
"""

from __future__ import annotations

import logging
from typing import Any

from cfgcore.snapshot import Condition, Flag, Prerequisite, Rule, Snapshot

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no cross-process lock
    fcntl = None  # type: ignore[assignment]


log = logging.getLogger("cfgcore.experiments")

LAYER_PREFIX = "__layer__."
ELIGIBLE_FLAG = "__experiments__.eligible"
UNASSIGNED = "__unassigned__"
HOLDOUT_SALT = "__experiments__.holdout"


def allocate_layer_slice(
    taken: list[tuple[float, float]], pct: float, prefer: float | None = None
) -> float | None:
    """The lowest offset where a slice of ``pct`` percent fits between the ``taken``
    ``(offset, pct)`` slices of a layer (``prefer`` first, if it fits); None if full."""
    ranges = sorted(taken)

    def fits(start: float) -> bool:
        end = start + pct
        return end <= 100.0 + 1e-9 and all(
            end <= o + 1e-9 or start >= o + p - 1e-9 for o, p in ranges
        )

    if prefer is not None and fits(prefer):
        return prefer
    for start in [0.0, *(o + p for o, p in ranges)]:
        if fits(start):
            return start
    return None


def layer_flag_key(layer: str) -> str:
    """The flag that splits a layer's traffic between its tests."""
    return LAYER_PREFIX + layer


# ----------------------------------------------------------------------------- layers


def derive_flags(snapshot: Snapshot) -> dict[str, Flag]:
    """The layer and holdout flags implied by ``snapshot.experiments`` and its
    ``metadata["holdout_percentage"]``, and each test flag's prerequisites.

    Returns the full new ``flags`` mapping: user flags unchanged, previous derived
    flags replaced, test flags with their layer/holdout prerequisites set. Tests are
    taken in insertion order, so a test added later never moves users of earlier
    tests (their slices keep their cumulative position).
    """
    flags = {k: v for k, v in snapshot.flags.items() if not _is_derived(k)}
    tests = {k: v for k, v in snapshot.experiments.items() if isinstance(v, dict)}
    holdout = float(snapshot.metadata.get("holdout_percentage", 0) or 0)
    derived: dict[str, Flag] = {}
    if holdout > 0:
        derived[ELIGIBLE_FLAG] = Flag(
            default="off",
            rules=[Rule(serve="on", rollout=100.0 - holdout)],
            salt=HOLDOUT_SALT,
            description=f"users outside the {holdout:g}% experiment holdout",
            tags=["experiment-internal"],
        )
    layers: dict[str, list[tuple[float, float, str]]] = {}
    for name, (layer, offset, pct) in layer_slices(tests).items():
        layers.setdefault(layer, []).append((offset, pct, name))
    for layer, members in layers.items():
        # Each test owns a fixed bucket range [offset, offset + pct) of the layer, so
        # adding or deleting a test never moves the users of another one; gaps are
        # unassigned slices.
        split: dict[str, float] = {}
        variants: dict[str, Any] = {}
        pos = 0.0
        for offset, pct, name in sorted(members):
            if offset > pos + 1e-9:
                gap = f"{UNASSIGNED}{len(split)}"
                split[gap], variants[gap] = offset - pos, None
            split[name], variants[name] = pct, name
            pos = offset + pct
        # The last slice (possibly empty) is also the default: users without a
        # bucketing attribute are in no test of the layer.
        split[UNASSIGNED], variants[UNASSIGNED] = max(100.0 - pos, 0.0), None
        derived[layer_flag_key(layer)] = Flag(
            variants=variants,
            default=UNASSIGNED,
            rules=[Rule(split=split)],
            salt=layer_flag_key(layer),
            description=f"experiment layer {layer!r}: mutually exclusive tests",
            tags=["experiment-internal"],
        )
    for name, meta in tests.items():
        flag = flags.get(name)
        if flag is None:
            continue
        pre: list[str | Prerequisite] = [
            p for p in flag.prerequisites if not _is_derived(p if isinstance(p, str) else p.flag)
        ]
        if meta.get("layer"):
            pre.append(Prerequisite(flag=layer_flag_key(meta["layer"]), variant=name))
        if holdout > 0:
            pre.append(ELIGIBLE_FLAG)
        flags[name] = _replace(flag, prerequisites=pre)
    return {**derived, **flags}


def layer_slices(experiments: dict[str, Any]) -> dict[str, tuple[str, float, float]]:
    """``{test: (layer, offset, percentage)}``: the slice of its layer each layered test
    owns, as :func:`derive_flags` lays them out (a record written without a
    ``layer_offset`` is packed after the slices before it). Raises TypeError or
    ValueError for a malformed record."""
    out: dict[str, tuple[str, float, float]] = {}
    ends: dict[str, float] = {}
    for name, meta in experiments.items():
        if not isinstance(meta, dict) or not meta.get("layer"):
            continue
        layer = meta["layer"]
        pct = float(meta.get("layer_percentage", 100.0))
        offset = meta.get("layer_offset")
        if offset is None:  # records written without an offset: pack in order
            offset = ends.get(layer, 0.0)
        offset = float(offset)
        ends[layer] = max(ends.get(layer, 0.0), offset + pct)
        out[name] = (layer, offset, pct)
    return out


def is_internal_flag(key: str) -> bool:
    """True for flags derived from experiment metadata (layers, holdout)."""
    return key.startswith(LAYER_PREFIX) or key == ELIGIBLE_FLAG


_is_derived = is_internal_flag


def _replace(flag: Flag, **changes: Any) -> Flag:
    import msgspec

    return msgspec.structs.replace(flag, **changes)


def segment_condition(attr: str, values: list[str]) -> Condition:
    """A condition ``attr in values`` (helper for targeting a test to a population)."""
    return Condition(attr=attr, in_=list(values))
