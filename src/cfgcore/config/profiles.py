"""Deployment and geographic profiles (the seed's ConfigurationProfiles).

A profile is a named set of overrides merged over a configuration with the rules of
:mod:`cfgcore.layering` (maps merge, lists replace, ``"__delete__"`` removes).

Built-in deployment profiles (:class:`DeploymentProfile`):

* ``HIGH_VOLUME``: cache TTLs 3600 s, 32 worker threads, a large connection pool,
  anomaly detection in bigger batches over shorter windows, more replicas;
* ``LOW_LATENCY``: 15 s request timeouts, batches of 500, premium users prioritised,
  short in-memory cache TTL with more room, more prefetch;
* ``HIGH_ACCURACY``: anomaly-detection sample size 50000, four ensemble models instead
  of two, stricter validation threshold, extended feature engineering;
* ``COST_OPTIMIZED``: fewer workers, less memory and CPU, fewer replicas, longer cache
  TTLs, batch processing.

Built-in geographic profiles: ``EU`` (the GDPR block: consent, erasure, portability,
privacy by design, retention limits, EU data residency), ``US`` (CCPA opt-out) and
``APAC`` (PDPA-style consent, regional residency).

Custom profiles are files (YAML, JSON or TOML), one profile per file, usually in a
``profiles/`` directory next to the configuration files::

    kind: deployment          # or: geographic
    name: black_friday        # default: the file name without extension
    description: Peak traffic
    extends: high_volume      # optional: start from another profile's overrides
    overrides:
      performance:
        worker_threads: 64

Example::

    from cfgcore.configuration_profiles import get_profile_manager, DeploymentProfile

    pm = get_profile_manager()
    fast = pm.apply_profile(config, pm.get_deployment_profile(DeploymentProfile.HIGH_VOLUME))
    eu = pm.apply_geographic_profile(config, pm.get_geographic_profile("EU"))
"""

from __future__ import annotations

import enum
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from cfgcore.config.files import (
    FORMATS,
    MAX_DEPTH,
    MAX_EXPANDED,
    expands_too_far,
    read_config_file,
)
from cfgcore.config.tree import (
    REPLACE,
    SUGGESTION_LIMIT,
    FrozenDict,
    FrozenList,
    deep_merge,
    did_you_mean,
    freeze,
    thaw,
)
from cfgcore.errors import ConfigError, Problem
from cfgcore.runtime.forks import after_fork_in_child

#: The fields of a custom profile file; the configuration keys it sets go under
#: ``overrides``.
PROFILE_FIELDS = ("kind", "name", "description", "extends", "region", "overrides")


def _unknown_fields(unknown: list[str]) -> str:
    """The message for unknown fields of a profile file: the fields there are, a
    suggestion for a misspelt one, and where configuration keys go (a first profile
    written like a configuration layer, ``performance:`` at the top, was only told
    'unknown profile field(s)')."""
    hints = "".join(
        did_you_mean(str(k), list(PROFILE_FIELDS), n=1) for k in unknown[:SUGGESTION_LIMIT]
    )
    if len(unknown) > SUGGESTION_LIMIT:
        hints += f" ({len(unknown) - SUGGESTION_LIMIT} more unknown fields, not compared)"
    fields = f"a profile file's fields are {', '.join(PROFILE_FIELDS)}"
    if hints:
        return f"unknown profile field(s){hints}; {fields}"
    return (
        f"unknown profile field(s); {fields}: the configuration keys a profile sets go "
        f"under overrides (overrides: {{{unknown[0]}: ...}})"
    )


__all__ = [
    "DeploymentProfile",
    "GeographicProfile",
    "Profile",
    "ProfileManager",
    "EU_PROFILE_MARKER",
    "get_profile_manager",
    "is_profile_file",
]

# Top-level key the EU geographic profile sets so the validation engine knows the
# configuration is meant for the EU and applies its GDPR rules.
EU_PROFILE_MARKER = "geographic_profile"


class DeploymentProfile(str, enum.Enum):
    """Built-in deployment profiles; the value is the name used in files and CONFIG_PROFILE."""

    HIGH_VOLUME = "high_volume"
    LOW_LATENCY = "low_latency"
    HIGH_ACCURACY = "high_accuracy"
    COST_OPTIMIZED = "cost_optimized"


@dataclass(frozen=True)
class Profile:
    """A named set of overrides; ``kind`` is ``deployment`` or ``geographic``.

    ``overrides`` is read-only; ``source`` is the file it came from or ``"builtin"``.
    """

    name: str
    kind: str
    overrides: Mapping[str, Any]
    description: str = ""
    source: str = "builtin"
    region: str | None = None
    settings: Mapping[str, Any] = field(default_factory=dict, repr=False)
    # A custom profile's file text and format, so an error can name the line of a key.
    text: str | None = field(default=None, repr=False, compare=False)
    fmt: str | None = field(default=None, repr=False, compare=False)
    # Its lines as the file's one parse found them (a YAML file's yamlio.LineMarks).
    marks: Any = field(default=None, repr=False, compare=False)
    # A profile that ``extends`` another: that profile, and the overrides this one's own
    # file writes (``overrides`` holds both, composed). An error or ``explain`` about a
    # key the extended profile sets names that profile's file and line, not this one's.
    base: Profile | None = field(default=None, repr=False, compare=False)
    own: Mapping[str, Any] | None = field(default=None, repr=False, compare=False)

    def chain(self) -> list[Profile]:
        """This profile and the ones it extends, the furthest base first."""
        out: list[Profile] = []
        profile: Profile | None = self
        while profile is not None and len(out) <= MAX_DEPTH:
            out.append(profile)
            profile = profile.base
        return out[::-1]

    def apply(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """A new plain dict: ``config`` with this profile's overrides merged over it.

        :class:`ConfigError` when ``config`` is not a mapping (``None`` from a lookup
        that found nothing used to fail as "'NoneType' object is not iterable")."""
        if not isinstance(config, Mapping):
            got = "null" if config is None else f"a {type(config).__name__}"
            raise ConfigError(
                f"cannot apply profile {self.name!r}: a configuration is a mapping of "
                f"sections, got {got}",
                kind="profile",
            )
        for what, tree in (("the configuration", config), ("its overrides", self.overrides)):
            # One dict at both keys of each of 60 levels: 2**60 copies; merging and
            # freezing it never ended. Overrides too: a Profile made in Python may hold
            # one mapping in many places as well as a configuration can.
            if isinstance(tree, Mapping) and expands_too_far(dict(tree)):
                raise ConfigError(
                    f"cannot apply profile {self.name!r}: {what} holds a mapping or list "
                    f"in so many places that it expands to more than {MAX_EXPANDED:,} values",
                    kind="profile",
                )
        try:
            return thaw(freeze(deep_merge(config, self.overrides)))  # freeze drops spent markers
        except RecursionError:
            # A configuration nested deeper than any file may be, or containing itself.
            raise ConfigError(
                f"cannot apply profile {self.name!r}: the configuration nests too deeply "
                f"(more than {MAX_DEPTH} levels are refused everywhere) or contains itself",
                kind="profile",
            ) from None


GeographicProfile = Profile

_BUILTIN_DEPLOYMENT: dict[str, tuple[str, dict[str, Any]]] = {
    "high_volume": (
        "Millions of concurrent users: long cache TTLs, 32 workers, aggressive pooling",
        {
            "performance": {
                "worker_threads": 32,
                "connection_pool": {
                    "min_size": 50,
                    "max_size": 200,
                    "pool_timeout_seconds": 5,
                    "max_idle_seconds": 600,
                },
            },
            "caching_layers": {
                "l1_cache": {"ttl": 3600},
                "l2_cache": {"ttl": 3600},
                "l3_cache": {"ttl": 3600},
            },
            "anomaly_detection": {"batch_size": 5000, "evaluation_window": "1m"},
            "auto_scaling": {"max_replicas": 50, "target_cpu_utilization": 60},
        },
    ),
    "low_latency": (
        "Real-time streaming: 15 s timeouts, batches of 500, premium users first",
        {
            "server": {"request_timeout_seconds": 15},
            "performance": {"batch_size": 500, "prioritize_premium_users": True},
            "anomaly_detection": {"batch_size": 500},
            "caching_layers": {"l1_cache": {"ttl": 120, "size_limit": "4GB"}},
            "music_streaming": {"streaming": {"prefetch_tracks": 3}},
        },
    ),
    "high_accuracy": (
        "Precise ML: sample size 50000, more ensemble models, stricter thresholds",
        {
            "anomaly_detection": {
                "sample_size": 50000,
                "ensemble_models": [
                    "isolation_forest",
                    "local_outlier_factor",
                    "one_class_svm",
                    "autoencoder",
                ],
                "validation_threshold": 0.95,
            },
            "recommendation_engine": {"feature_engineering": {"extended_features": True}},
        },
    ),
    "cost_optimized": (
        "Cost-effective: fewer resources, longer caches, batch processing",
        {
            "performance": {
                "worker_threads": 4,
                "memory_limit": "2GiB",
                "cpu_limit": 1.0,
                "processing_mode": "batch",
                "batch_size": 5000,
                "connection_pool": {"min_size": 2, "max_size": 10},
            },
            "caching_layers": {
                "l1_cache": {"ttl": 900},
                "l2_cache": {"ttl": 7200},
                "l3_cache": {"ttl": 86400},
            },
            "auto_scaling": {"min_replicas": 1, "max_replicas": 8, "target_cpu_utilization": 80},
        },
    ),
}

_BUILTIN_GEOGRAPHIC: dict[str, tuple[str, dict[str, Any]]] = {
    "EU": (
        "European Union: GDPR consent, erasure, portability, retention limits, EU residency",
        {
            EU_PROFILE_MARKER: "EU",
            "gdpr_compliance": {
                "consent_required": True,
                "right_to_be_forgotten": True,
                "data_portability": True,
                "privacy_by_design": True,
                "data_retention": {
                    "user_data_days": 2555,
                    "logs_days": 365,
                    "analytics_data_days": 1095,
                },
            },
            "data_residency": {"region": "eu", "allowed_regions": ["eu-west-1", "eu-central-1"]},
            "music_streaming": {"cdn": {"region": "eu"}},
        },
    ),
    "US": (
        "United States: CCPA opt-out of sale, US residency",
        {
            EU_PROFILE_MARKER: "US",
            "ccpa_compliance": {
                "enabled": True,
                "do_not_sell_opt_out": True,
                "data_deletion_requests": True,
            },
            "data_residency": {"region": "us", "allowed_regions": ["us-east-1", "us-west-2"]},
            "music_streaming": {"cdn": {"region": "us"}},
        },
    ),
    "APAC": (
        "Asia-Pacific: PDPA-style consent and regional residency",
        {
            EU_PROFILE_MARKER: "APAC",
            "pdpa_compliance": {
                "enabled": True,
                "consent_required": True,
                "cross_border_transfer_review": True,
            },
            "data_residency": {
                "region": "apac",
                "allowed_regions": ["ap-southeast-1", "ap-northeast-1"],
            },
            "music_streaming": {"cdn": {"region": "apac"}},
        },
    ),
}


def _freeze_overrides(value: Any) -> Any:
    # Read-only like freeze(), but keeping "__delete__"/"__replace__": they are
    # instructions for the merge over a configuration, which happens later.
    if isinstance(value, dict):
        return FrozenDict({k: _freeze_overrides(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return FrozenList([_freeze_overrides(v) for v in value])
    return value


def compose_overrides(first: Mapping[str, Any], then: Mapping[str, Any]) -> dict[str, Any]:
    """Overrides that do to any configuration what ``first`` and then ``then`` do.

    This is how a profile that ``extends`` another gets its overrides. ``deep_merge``
    cannot do it: it carries out ``then``'s ``"__delete__"`` on ``first`` (where the
    key usually is not) instead of keeping it for the configuration, so a child
    profile's deletions were lost. A mapping that lands where ``first`` deleted the
    key or set a non-mapping replaces what the configuration has there.

    >>> compose_overrides({"a": {"x": 1}}, {"a": "__delete__", "b": {"y": 2}})
    {'a': '__delete__', 'b': {'y': 2}}
    """
    out = dict(first)
    for key, value in then.items():
        if key == REPLACE:
            continue
        below = out.get(key, _MISSING)
        if isinstance(value, Mapping) and not value.get(REPLACE):
            if isinstance(below, Mapping):
                value = compose_overrides(below, value)
            elif below is not _MISSING:
                # first deleted the key or set a scalar: then's mapping starts afresh.
                value = {**value, REPLACE: True}
        out[key] = value
    return out


_MISSING = object()


def is_profile_file(name: str) -> bool:
    """True for a file name in a profile directory that names a profile file: a
    configuration format's extension, not hidden (a ConfigMap's ``..data`` is not one)."""
    return os.path.splitext(name)[1].lower() in FORMATS and not name.startswith(".")


def _builtin_profiles() -> list[Profile]:
    out = [
        Profile(name=name, kind="deployment", overrides=freeze(o), description=d)
        for name, (d, o) in _BUILTIN_DEPLOYMENT.items()
    ]
    out += [
        Profile(name=name, kind="geographic", overrides=freeze(o), description=d, region=name)
        for name, (d, o) in _BUILTIN_GEOGRAPHIC.items()
    ]
    return out


class ProfileManager:
    """Looks up, loads and applies deployment and geographic profiles.

    ``profile_dirs``: directories whose ``*.yaml``/``*.json``/``*.toml`` files are loaded
    as custom profiles (a custom profile with a built-in's name replaces it).
    """

    def __init__(self, profile_dirs: list[str] | tuple[str, ...] = ()) -> None:
        self._lock = threading.Lock()
        self._profiles: dict[tuple[str, str], Profile] = {}
        for p in _builtin_profiles():
            self._profiles[(p.kind, p.name.lower())] = p
        for d in profile_dirs:
            self.load_directory(d)

    # registration -------------------------------------------------------------------

    def register(self, profile: Profile) -> Profile:
        """Add or replace a profile."""
        if profile.kind not in ("deployment", "geographic"):
            raise ConfigError(
                f"profile kind must be 'deployment' or 'geographic', got {profile.kind!r}",
                file=profile.source if profile.source != "builtin" else None,
                kind="profile",
            )
        with self._lock:
            self._profiles[(profile.kind, profile.name.lower())] = profile
        return profile

    def load_file(self, path: str) -> Profile:
        """Load one custom profile file and register it."""
        return self._load_layer(path, read_config_file(path))

    def _load_layer(self, path: str, layer: Any) -> Profile:
        """Register the profile the file ``path`` holds, read as ``layer``."""
        data = layer.data
        kind = data.get("kind", "deployment")
        name = data.get("name") or os.path.splitext(os.path.basename(path))[0]
        overrides = data.get("overrides", {})
        problems = []
        if kind not in ("deployment", "geographic"):
            problems.append(Problem("kind", "must be 'deployment' or 'geographic'", file=path))
        if not isinstance(overrides, dict):
            problems.append(Problem("overrides", "must be a mapping", file=path))
        # A list or mapping here used to become its repr: a profile named "[1]".
        for key, allowed in (("name", (str, int)), ("extends", (str,)), ("region", (str,)),
                             ("description", (str,))):  # fmt: skip
            value = data.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, allowed)):
                problems.append(
                    Problem(key, f"must be text, got {type(value).__name__}", file=path)
                )
        unknown = set(data) - set(PROFILE_FIELDS)
        if unknown:
            problems.append(
                Problem(", ".join(sorted(unknown)), _unknown_fields(sorted(unknown)), file=path)
            )
        if problems:
            lines = [layer.line_of((p.path.split(", ")[0],)) for p in problems]
            raise ConfigError(
                [replace(p, line=line) for p, line in zip(problems, lines, strict=True)],
                kind="profile",
            )
        extends = data.get("extends")
        base: Profile | None = None
        own: Mapping[str, Any] | None = None
        if extends:
            try:
                base = self._get(kind, str(extends))
            except ConfigError as exc:
                message = exc.problems[0].message if exc.problems else str(exc)
                if str(extends).lower() == str(name).lower():
                    # "unknown deployment profile 'peak'" of the file defining peak misled.
                    message = (
                        f"profile {str(name)!r} extends itself: only a built-in profile "
                        f"of the same name can be extended ({message.partition('; ')[2]})"
                    )
                raise ConfigError(
                    [Problem("extends", message, file=path, line=layer.line_of(("extends",)))],
                    kind="profile",
                ) from None
            own, overrides = overrides, compose_overrides(base.overrides, overrides)
        return self.register(
            Profile(
                name=str(name),
                kind=kind,
                overrides=_freeze_overrides(overrides),
                base=base,
                own=None if own is None else _freeze_overrides(own),
                description=str(data.get("description", "")),
                source=path,
                region=str(data.get("region", name)) if kind == "geographic" else None,
                text=layer.text,
                fmt=layer.fmt,
                marks=layer.marks,
            )
        )

    def load_directory(self, directory: str) -> list[Profile]:
        """Load every profile file in ``directory`` (by name, bases first); missing dir -> []."""
        if not os.path.isdir(directory):
            return []
        try:
            names = sorted(os.listdir(directory))
        except (FileNotFoundError, NotADirectoryError):
            return []  # gone since it was looked at: as a missing directory
        except OSError as exc:
            # Not the OSError itself: a reload says why it refused (returning False),
            # where a PermissionError raised out of it, naming no profile.
            need = isinstance(exc, PermissionError)
            raise ConfigError(
                f"cannot list the profile files: {exc.strerror or exc}"
                + (" (the process needs permission to read this directory)" if need else ""),
                file=directory,
                kind="io",
            ) from None
        paths = [os.path.join(directory, f) for f in names if is_profile_file(f)]
        # A profile may extend another file of this directory whatever the file names:
        # load that one first, so it (not a built-in of the same name) is the base.
        entries: list[tuple[tuple[str, str], str, Any]] = []
        lines: dict[str, int | None] = {}
        read: dict[str, Any] = {}  # each file's layer: read once, registered in order
        by_key: dict[tuple[str, str], int] = {}
        for path in paths:
            layer = read[path] = read_config_file(path)
            data = layer.data
            name = data.get("name") or os.path.splitext(os.path.basename(path))[0]
            key = (str(data.get("kind", "deployment")), str(name).lower())
            lines[path] = layer.line_of(("extends",))
            if key in by_key:
                # Two files, one profile: which one applied depended on the file names.
                other = entries[by_key[key]][1]
                raise ConfigError(
                    [
                        Problem(
                            "name",
                            f"{key[0]} profile {str(name)!r} is also defined in {other}",
                            file=path,
                            line=layer.line_of(("name",)),
                        )
                    ],
                    kind="profile",
                )
            by_key[key] = len(entries)
            entries.append((key, path, data.get("extends")))
        order: list[str] = []
        state: dict[int, str] = {}

        def visit(i: int) -> None:
            if state.get(i) == "done":
                return
            key, path, extends = entries[i]
            if state.get(i) == "active":
                raise ConfigError(
                    [Problem("extends", "circular extends", file=path, line=lines[path])],
                    kind="profile",
                )
            state[i] = "active"
            base = by_key.get((key[0], str(extends).lower())) if extends else None
            if base is not None and entries[base][0] != key:
                visit(base)
            state[i] = "done"
            order.append(path)

        for i in range(len(entries)):
            visit(i)
        return [self._load_layer(path, read[path]) for path in order]

    # lookup -------------------------------------------------------------------------

    def _get(self, kind: str, name: str) -> Profile:
        key = (kind, name.lower())
        profile = self._profiles.get(key)
        if profile is None:
            known = sorted(n for k, n in self._profiles if k == kind)
            other = "geographic" if kind == "deployment" else "deployment"
            if (other, name.lower()) in self._profiles:
                # profiles/eu.yaml exists: "unknown" alone sent the reader looking for it.
                setting = "CONFIG_PROFILE" if other == "deployment" else "CONFIG_GEOGRAPHIC_PROFILE"
                hint = f" (it is a {other} profile: select it as {setting})"
            else:
                hint = self._file_hint(kind, name) or did_you_mean(name.lower(), known, n=1)
            raise ConfigError(
                f"unknown {kind} profile {name!r}{hint}; known: {', '.join(known)}",
                kind="profile",
            )
        return profile

    def _file_hint(self, kind: str, name: str) -> str:
        """`` (profiles/peak.yaml defines it as 'black_friday': ...)`` when ``name`` is
        the file name (or path) of a custom profile that its ``name:`` calls otherwise:
        a profile is selected by its name, never by its file."""
        stem = os.path.splitext(os.path.basename(name))[0].lower()
        for (k, _), profile in list(self._profiles.items()):
            if k != kind or profile.source == "builtin":
                continue
            if os.path.splitext(os.path.basename(profile.source))[0].lower() == stem:
                return (
                    f" ({profile.source} defines it as {profile.name!r}: a profile is "
                    f"selected by its name, the file's 'name:' or else the file name "
                    f"without its extension)"
                )
        return ""

    def get_deployment_profile(self, profile: DeploymentProfile | str) -> Profile:
        """The deployment profile for an enum member or a name (case-insensitive)."""
        name = profile.value if isinstance(profile, DeploymentProfile) else str(profile)
        return self._get("deployment", name)

    def get_geographic_profile(self, region: str) -> Profile:
        """The geographic profile for a region name such as ``"EU"`` (case-insensitive)."""
        return self._get("geographic", str(region))

    def list_profiles(self, kind: str | None = None) -> list[Profile]:
        """Every registered profile, optionally of one kind, sorted by kind and name."""
        return sorted(
            (p for (k, _), p in self._profiles.items() if kind is None or k == kind),
            key=lambda p: (p.kind, p.name),
        )

    # application --------------------------------------------------------------------

    def apply_profile(
        self, config: Mapping[str, Any], profile: Profile | DeploymentProfile | str
    ) -> dict[str, Any]:
        """A new dict: ``config`` with a deployment profile merged over it."""
        if not isinstance(profile, Profile):
            profile = self.get_deployment_profile(profile)
        return profile.apply(config)

    def apply_geographic_profile(
        self, config: Mapping[str, Any], profile: Profile | str
    ) -> dict[str, Any]:
        """A new dict: ``config`` with a geographic profile merged over it."""
        if not isinstance(profile, Profile):
            profile = self.get_geographic_profile(profile)
        return profile.apply(config)


_manager: ProfileManager | None = None
_manager_lock = threading.Lock()


@after_fork_in_child
def _after_fork_in_child() -> None:
    # A thread of the parent may have held either lock at the fork (building the
    # process-wide manager, registering a profile): held for good in the child.
    global _manager_lock
    _manager_lock = threading.Lock()
    if _manager is not None:
        _manager._lock = threading.Lock()


def get_profile_manager() -> ProfileManager:
    """The process-wide :class:`ProfileManager` (built-in profiles only)."""
    global _manager
    with _manager_lock:
        if _manager is None:
            _manager = ProfileManager()
        return _manager
