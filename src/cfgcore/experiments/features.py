"""Feature flags in the seed's API: the catalog enum and the changes its calls make.

Each change is a pure function of the stored snapshot (``Snapshot -> Snapshot``), so the
flag store can apply it to the newest document, and retry it after a compare-and-set
conflict, without surprises.
"""

from __future__ import annotations

import copy
import dataclasses
import shlex
from collections.abc import Callable, Mapping, Sequence
from enum import Enum
from typing import Any

import msgspec

from cfgcore.details import exact_name
from cfgcore.errors import ConfigError, Problem, child_key_path
from cfgcore.experiments.abtest import is_boolean
from cfgcore.experiments.layers import is_internal_flag
from cfgcore.runtime.events import ConfigChangeEvent
from cfgcore.runtime.flagstore import FlagDocument
from cfgcore.snapshot import Flag, Prerequisite, Rule, Snapshot, flag_references, same

__all__ = [
    "FeatureFlag",
    "FlagInUseError",
    "UnknownFlagError",
    "custom_flag_change",
    "delete_change",
    "dependencies_change",
    "flag_dependents",
    "feature_status",
    "flag_key",
    "on_off",
    "rollout_change",
    "with_rollout",
]

Change = Callable[[Snapshot], Snapshot]


class FeatureFlag(str, Enum):
    """The built-in flag catalog (the bundled music-streaming flags).

    Members are strings too (``FeatureFlag.X == "x"``). Any other flag can be checked
    by name or through your own Enum
    (:meth:`DynamicConfigurationManager.register_custom_feature_flag`).
    """

    ENHANCED_ANOMALY_DETECTION = "enhanced_anomaly_detection"
    EXPERIMENTAL_ML_MODELS = "experimental_ml_models"
    ADVANCED_AUDIO_ANALYTICS = "advanced_audio_analytics"
    # The segment features of the user_segments block.
    ENHANCED_RECOMMENDATIONS = "enhanced_recommendations"
    PREDICTIVE_SKIP_DETECTION = "predictive_skip_detection"
    PARENTAL_CONTROLS = "parental_controls"
    SHARED_PLAYLISTS_ANALYSIS = "shared_playlists_analysis"
    STUDY_MODE_DETECTION = "study_mode_detection"
    CAMPUS_TRENDING_ANALYSIS = "campus_trending_analysis"
    AD_PLACEMENT_OPTIMIZATION = "ad_placement_optimization"
    CONVERSION_TRIGGER_DETECTION = "conversion_trigger_detection"
    LOSSLESS_AUDIO_EU = "lossless_audio_eu"


def flag_key(flag: Any) -> str:
    """The flag key ``flag`` names (an Enum member's value, or a str); ConfigError for
    anything else, an empty key, or text no flag file can hold (a lone surrogate: the
    write failed with UnicodeEncodeError)."""
    if isinstance(flag, Enum):
        value = flag.value
        if not isinstance(value, str) or not value:
            raise ConfigError(
                f"feature flag {flag!r}: its value must be a non-empty string (the flag key)"
            )
    elif isinstance(flag, str) and flag:
        value = flag
    else:
        raise ConfigError(f"a feature flag is an Enum member or a non-empty string, got {flag!r}")
    key = exact_name(value)
    if key is None:
        raise ConfigError(
            f"feature flag {value!r}: not valid Unicode (a lone surrogate such as \\ud800)"
        )
    return key


def on_off(flag: Flag) -> tuple[str, str]:
    if flag.variants is None:
        return "on", flag.off_variant or "off"
    on = next((k for k, v in flag.variants.items() if v is True), "on")
    off = next((k for k, v in flag.variants.items() if v is False), "off")
    return on, flag.off_variant or off


# --------------------------------------------------------------------------- manager


def with_rollout(flag: Flag, pct: float) -> Flag:
    """``flag`` with every rule serving its on-variant rolled out to ``pct`` percent.

    A flag with no such rule (on or off for everyone), or whose default serves the
    on-variant (users no rule matched would get it regardless of the percentage), gets
    a final rollout rule and the off variant as its default, so the percentage
    applies to everyone else.
    """
    on, off = on_off(flag)
    rollout = None if pct >= 100.0 else pct
    rules = [
        msgspec.structs.replace(r, rollout=rollout) if r.serve == on and r.split is None else r
        for r in flag.rules
    ]
    default = flag.default
    if (flag.default or "on") == on or not any(
        r.serve == on and r.split is None for r in flag.rules
    ):
        rules.append(Rule(serve=on, rollout=rollout, name="rollout"))
        default = off
    return msgspec.structs.replace(flag, rules=rules, default=default)


def rollout_change(key: str, enabled: bool, pct: float, where: str | None) -> Change:
    """The change ``set_feature_flag`` makes: ``key`` on or off, rolled out to ``pct``
    percent of the users its rules let through (created when unknown). ``where``: the
    file its refusal names (None: none, a manager that writes no file)."""

    def change(snap: Snapshot) -> Snapshot:
        old = snap.flags.get(key)
        if old is None:
            old = Flag(description="created by set_feature_flag")
        elif key in snap.experiments or not is_boolean(old):
            raise ConfigError([Problem(
                child_key_path("flags", key),
                "not a boolean feature flag (use the A/B test API for multivariate flags)",
                file=where,
            )])  # fmt: skip
        new = msgspec.structs.replace(with_rollout(old, pct), enabled=enabled)
        return msgspec.structs.replace(snap, flags={**snap.flags, key: new})

    return change


def custom_flag_change(key: str, description: str, enabled: bool) -> Change:
    """The change ``register_custom_feature_flag`` makes: a new boolean flag, switched
    on or off as ``set_feature_flag(key, enabled)`` switches it (for everyone once on),
    so ``get_feature_flags_status()`` reads it alike: ``enabled`` is the switch."""

    def change(snap: Snapshot) -> Snapshot:
        new = Flag(enabled=bool(enabled), default="on", description=description, tags=["custom"])
        return msgspec.structs.replace(snap, flags={**snap.flags, key: new})

    return change


def dependencies_change(key: str, pres: list[str | Prerequisite], where: str | None) -> Change:
    """The change ``set_flag_dependencies`` makes: ``key``'s prerequisites (``where``:
    as :func:`rollout_change`'s)."""

    def change(snap: Snapshot) -> Snapshot:
        old = snap.flags.get(key)
        if old is None:
            raise ConfigError([Problem(child_key_path("flags", key), "unknown flag", file=where)])
        new = msgspec.structs.replace(old, prerequisites=pres)
        return msgspec.structs.replace(snap, flags={**snap.flags, key: new})

    return change


class FlagInUseError(ConfigError):
    """A flag cannot be deleted while other flags or A/B tests depend on it.

    ``flag`` is the flag's name and ``dependents`` what uses it, one description each
    (``"flag checkout_v2 (prerequisite)"``); the message names them all.
    """

    def __init__(self, flag: str, dependents: list[str], where: str | None) -> None:
        self.flag = flag
        self.dependents = list(dependents)
        message = "cannot delete: still used by " + ", ".join(self.dependents)
        super().__init__([Problem(child_key_path("flags", flag), message, file=where)])


class UnknownFlagError(ConfigError):
    """The flag to change does not exist (in the newest stored document)."""


def flag_dependents(snap: Snapshot, key: str) -> list[str]:
    """What in ``snap`` uses flag ``key``: flags and A/B tests that name it as a
    prerequisite, and the A/B test it serves (a test's flag is the test itself)."""
    found: list[str] = []
    if key in snap.experiments:
        found.append(
            f"A/B test {key} (the flag serves it: delete the test instead, with cfgcore "
            f"experiment delete {shlex.quote(key)} or delete_ab_test)"
        )
    for name, flag in snap.flags.items():
        if name == key or is_internal_flag(name):
            continue
        if key in flag_references(flag, snap.segments):  # a prerequisite, or in a condition
            what = "A/B test" if name in snap.experiments else "flag"
            found.append(f"{what} {name} (prerequisite)")
    return found


def delete_change(key: str, where: str | None) -> Change:
    """The change ``delete_feature_flag`` makes: ``key`` removed. Refused (the store
    writes nothing) with :class:`FlagInUseError` while anything depends on it, and with
    :class:`UnknownFlagError` when the newest document has no such flag."""

    def change(snap: Snapshot) -> Snapshot:
        if key not in snap.flags:
            raise UnknownFlagError(
                [Problem(child_key_path("flags", key), "unknown flag", file=where)]
            )
        dependents = flag_dependents(snap, key)
        if dependents:
            raise FlagInUseError(key, dependents, where)
        flags = {k: v for k, v in snap.flags.items() if k != key}
        return msgspec.structs.replace(snap, flags=flags)

    return change


def feature_status(snapshot: Snapshot, tests: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Every boolean feature flag of ``snapshot`` (tests and internal flags excluded):
    ``enabled``, ``rollout_percentage``, ``targeted``, ``prerequisites``, ``description``,
    ``tags``."""
    out: dict[str, dict[str, Any]] = {}
    for key, flag in snapshot.flags.items():
        if key in tests or is_internal_flag(key) or not is_boolean(flag):
            continue
        on, _off = on_off(flag)
        rollouts = [
            100.0 if r.rollout is None else float(r.rollout)
            for r in flag.rules
            if r.serve == on and r.split is None
        ]
        if (flag.default or "on") == on:
            rollouts.append(100.0)
        out[key] = {
            "enabled": flag.enabled,
            "rollout_percentage": max(rollouts, default=0.0),
            "targeted": any(r.when is not None for r in flag.rules),
            "prerequisites": [
                p if isinstance(p, str) else {"flag": p.flag, "variant": p.variant}
                for p in flag.prerequisites
            ],
            "description": flag.description,
            "tags": list(flag.tags),
        }
    return out


def change_events(
    old: Snapshot,
    new: Snapshot,
    source: str,
    version: int,
    now: float,
    actor: str | None,
    doc: FlagDocument | None = None,
) -> list[ConfigChangeEvent]:
    """One event per changed flag, A/B test record and the metadata, carrying the
    actor and, for a stored document, its store version and writer (for remote changes
    as for local ones). Values are copies: a listener that edits its event must not edit
    the live flags or test records."""
    store: dict[str, Any] = (
        {"store_version": doc.version, "writer": doc.writer} if doc is not None else {}
    )

    def event(path: str, a: Any, b: Any) -> ConfigChangeEvent:
        return ConfigChangeEvent(path, a, b, source, version, now, actor=actor, **store)

    events = []
    for key in dict.fromkeys([*old.flags, *new.flags]):
        a, b = old.flags.get(key), new.flags.get(key)
        if not same(a, b):  # not !=: a variant going from 1 to True is a change
            events.append(event(child_key_path("flags", key), _plain(a), _plain(b)))
    for key in dict.fromkeys([*old.experiments, *new.experiments]):
        ea, eb = old.experiments.get(key), new.experiments.get(key)
        if not same(ea, eb):
            events.append(
                event(child_key_path("experiments", key), copy.deepcopy(ea), copy.deepcopy(eb))
            )
    if not same(old.metadata, new.metadata):
        events.append(event("metadata", copy.deepcopy(old.metadata), copy.deepcopy(new.metadata)))
    return events


def with_warnings(
    events: list[ConfigChangeEvent], warnings: Sequence[Problem], *, rest: bool = True
) -> tuple[list[ConfigChangeEvent], list[Problem]]:
    """``events`` with each warning (a Problem at a key path under ``flags.KEY``) on
    the event of that flag's change; ``rest``: one whose flag did not change (a rule
    whose condition reads a flag that did) goes on the first event. Returns the events
    and the warnings left unplaced."""
    if not warnings or not events:
        return events, list(warnings)
    placed: dict[int, list[str]] = {}
    left: list[Problem] = []
    # The first event at each flag key path: a warning's event is found by the key
    # paths its own path starts with (looking through the events for each warning
    # took 25 s for 5,000 of them on a change of 5,000 flags, inside the swap)
    first: dict[str, int] = {}
    for i, e in enumerate(events):
        if e.config_path.startswith("flags"):
            first.setdefault(e.config_path, i)
    for w in warnings:
        at = _event_of(w.path, first)
        if at is None:
            if not rest:
                left.append(w)
                continue
            at = 0
        placed.setdefault(at, []).append(str(w))
    out = [
        dataclasses.replace(e, warnings=(*e.warnings, *placed[i])) if i in placed else e
        for i, e in enumerate(events)
    ]
    return out, left


def _event_of(path: str, first: Mapping[str, int]) -> int | None:
    """The first event whose key path is ``path`` or one it is under (``at.`` or
    ``at[`` starts it), from ``first`` (key path -> index of its first event)."""
    found = [first[path]] if path in first else []
    found += [first[path[:k]] for k, c in enumerate(path) if c in ".[" and path[:k] in first]
    return min(found) if found else None


def _plain(flag: Flag | None) -> Any:
    return None if flag is None else msgspec.to_builtins(flag)
