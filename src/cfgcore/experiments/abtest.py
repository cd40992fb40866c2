"""A/B tests: their configuration (the seed's :class:`ABTestConfiguration`) and the
operations on them (:class:`ABTests`), as multivariate flags on the compiled core.

A test is a multivariate flag keyed by the test name whose variants are the test's
configurations, split by a bucket salted with the test name (so assignment is sticky
per user and independent between tests) and scheduled from ``start_date`` to
``end_date``. Outside that window, in a holdout, outside the test's layer slice, or
without a ``user_id`` (or ``targeting_key``) to bucket by, a user gets no variant.

Times without a UTC offset: cfgcore's one rule. A naive time you give cfgcore (a naive
``datetime`` such as the seed's ``datetime.now()``, an ISO string without an offset, a
date or time on the command line) is the local time of the machine it is given on, as
Python treats naive datetimes; it is resolved there, at once, and stored as the UTC
instant with its offset (``2026-03-01T08:00:00+00:00``), so every host reads the same
instant back. A stored document (a flags file, a Redis document, an audit log) is read
by hosts in any time zone, so a naive time written into one by hand cannot mean any of
their local times: every reader takes it as UTC (schedules, A/B test dates, the stale
report, a test read back to be started again).

What the experiment API may change is narrower than what the flag file may hold:

* a test may not take the name of a boolean feature flag, and taking over any other
  flag that is not already a test's (a multivariate flag such as the bundled
  ``recommendation_algorithm_v2``) is a change to that flag, so the access policy must
  also allow the actor ``flag.set`` on it;
* configurations created through the API may not carry secret references
  (``ENC[...]``, ``${file:...}``): those are resolved when served, so anyone allowed to
  create an experiment could read any secret file or decrypt any envelope. Flag
  documents written by operators keep them; re-creating a test may keep a reference
  its stored document already holds at the same place (``cfgcore experiment start``).

A test that has served its variants keeps its users in them, whoever writes the flag
document: one judge, :func:`moved_users`, refuses a document that would move them
wherever documents are written or go live: every change made through cfgcore (judged
on the newest stored document, under the store's lock:
:meth:`cfgcore.runtime.flags.LiveFlags.update`), a document edited by hand or written
to the store by another tool (on reload, from the follower), ``cfgcore publish``;
unless it restarts the test as a new run: a later ``experiments.<test>.since`` (epoch
seconds; the records up to it are left out of the test's analysis). A test replaced
after it has served keeps ``served_at`` (epoch seconds) in its record, so a later start
date does not make it one that never served.
"""

from __future__ import annotations

import bisect
import copy
import dataclasses
import hashlib
import logging
import math
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, cast

import msgspec

from cfgcore._layout import BUCKETS
from cfgcore._msgspec_errors import msgspec_problem
from cfgcore._numbers import real_number, shown
from cfgcore._records import DEFAULT_BUCKET_BY, split_ends
from cfgcore.config.files import tree_problem
from cfgcore.config.tree import plain_value
from cfgcore.details import exact_name
from cfgcore.errors import (
    ConfigError,
    Problem,
    child_key_path,
    format_key_path,
    printable_name,
    python_key,
    python_key_segment,
)
from cfgcore.experiments.layers import allocate_layer_slice, is_internal_flag, layer_slices
from cfgcore.runtime.policy import check, current_actor
from cfgcore.runtime.secrets import needs_resolving
from cfgcore.snapshot import (
    Condition,
    Flag,
    Prerequisite,
    Rule,
    SameSet,
    Schedule,
    Snapshot,
    same,
    same_key,
)
from cfgcore.validation.structure import describe

if TYPE_CHECKING:
    from cfgcore.experiments.dynamic import DynamicConfigurationManager

__all__ = [
    "ABTestConfiguration",
    "ABTests",
    "GUARDRAIL_ENDS",
    "METRIC_KINDS",
    "NO_VARIANT",
    "NOT_STARTED",
    "RETIRED",
    "record_cutoffs",
    "record_runs",
    "retire_dropped",
    "retired_runs",
    "status_of",
]

log = logging.getLogger("cfgcore.dynamic_config")


#: Variant name a test flag serves to users who are not in the test (never returned).
NO_VARIANT = "__none__"

#: Snapshot ``metadata`` key of the A/B tests deleted: ``{test: when (epoch seconds)}``.
#: Their exposures and metric events stay in the shared logs; a test created again
#: under the same name records that time as its ``since`` and every reader of the logs
#: leaves out the records of that name up to it (:func:`record_cutoffs`).
RETIRED = "retired_ab_tests"

#: ``stopped_reason`` of a test created but not started (``cfgcore experiment create``
#: without ``--start``): it has served no variant yet.
NOT_STARTED = "created, not started"


def status_of(meta: Mapping[str, Any]) -> str:
    """The status a person is told of the A/B test whose record is ``meta``:
    ``"active"``, ``"stopped"``, or ``"not started"`` for one created and not started
    (stored as stopped, :data:`NOT_STARTED`), as the list, the report and the ingest
    refusals all say it."""
    status = meta.get("status", "active")
    if status == "stopped" and meta.get("stopped_reason") == NOT_STARTED:
        return "not started"
    return str(status)


#: Record key: when a guardrail stopped the test (epoch seconds; after the resume it ends,
#: if the host's clock is behind the resuming one's). Every later change of
#: the test keeps it (a stop by hand, a create without ``start``) until an explicit
#: resume (:meth:`ABTests.create` with ``start``: ``cfgcore experiment start``), which
#: records :data:`RESUMED_AT` instead; a document that serves the test's variants
#: again without one is refused (:func:`guardrail_reactivations`).
GUARDRAIL_STOPPED_AT = "guardrail_stopped_at"

#: Record key: when the test was last resumed through the experiment API after a
#: guardrail stop (epoch seconds, never before that stop whatever the resuming host's
#: clock says; audited as ``resume_ab_test``).
RESUMED_AT = "resumed_at"

#: Snapshot ``metadata`` key: ``{test: when}`` the last guardrail stop of each test the
#: document recorded was ended through the experiment API (an explicit resume, or the
#: test deleted while its record held the stop). A stop no later than that end is over
#: for every judge of this document (:func:`guardrail_reactivations`), whatever the
#: fleet's stop register holds then: the register's entry of the end can be lost
#: (deleted, Redis's data lost) while no host that recorded it runs, and a host that
#: was down with the stop in its own register would otherwise stop the test again at
#: its start. A later stop is always stamped after it (:func:`_stopped`).
GUARDRAIL_ENDS = "ended_guardrail_stops"

#: Words every refusal of a guardrail-stopped test served again starts its message with.
GUARDRAIL_HELD = "was stopped by its guardrail"


# An offset at the end of ISO text. Python's fromisoformat takes any character after a
# date as the date-time separator: "2026-03-01+05:00" reads as 05:00 without an offset.
_OFFSET_AT_END = re.compile(r"(?:[Zz]|[+-]\d{2}:?\d{2})\Z")


def parse_iso(text: str) -> datetime:
    """ISO 8601 text as a datetime (naive when the text has no offset; ``Z`` is UTC).
    A date with an offset and no time (``2026-03-01Z``, ``2026-03-01+05:00``) is that
    day's midnight at that offset. Raises ValueError."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    if value.tzinfo is None:
        m = _OFFSET_AT_END.search(text)
        if m is not None:
            day = datetime.fromisoformat(text[: m.start()])
            offset = m.group(0)
            offset = "+00:00" if offset in ("Z", "z") else offset
            value = datetime.fromisoformat(f"{day.isoformat()}{offset}")
    return value


def local_aware(dt: datetime) -> datetime:
    """A naive ``dt`` read as this machine's local time: aware, with its local offset.

    ``dt.astimezone()`` does this, but from CPython 3.12 on it also works out the
    instant of ``dt``'s other fold (to detect a gap), and that probe, a day later, is
    past ``datetime.max`` on 9999-12-31: every time of that day is refused with
    ValueError, in range or not (python/cpython#130718). The instant then comes from
    ``timestamp()``, which probes ``dt``'s own fold only, as ``astimezone`` did on 3.11,
    so a value 3.11 accepted is accepted on every version, as the same instant. Raises
    OverflowError, OSError or ValueError where the local time has no instant.

    >>> local_aware(datetime(2026, 3, 1, 9, 0)).tzinfo is not None
    True
    """
    try:
        return dt.astimezone()
    except ValueError:
        return datetime.fromtimestamp(dt.timestamp(), timezone.utc).astimezone()


#: The latest epoch time a record may hold: the start of the year 10000, the end of
#: the last a datetime holds (as a float: the end of 9999 rounds to it). A run's
#: ``since`` is before it (:func:`record_problems`), so that the retirement ending the
#: run, a moment after it, is still a time; past it the moment after could be inf. (A
#: retirement at it, after a run begun a moment before, starts no later run.)
LATEST_EPOCH = datetime.max.replace(tzinfo=timezone.utc).timestamp()


def epoch_time(value: Any) -> float | None:
    """``value`` as epoch seconds when it is a time a record may hold: a number (not a
    bool, nor text) from 1970 to :data:`LATEST_EPOCH`; else None."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    seconds = real_number(value)  # (None for an integer past a float)
    return seconds if seconds is not None and 0 <= seconds <= LATEST_EPOCH else None


def since_time(value: Any) -> float | None:
    """``value`` as the ``since`` of a run, when it is one: a time (:func:`epoch_time`)
    before :data:`LATEST_EPOCH`, so that the retirement ending the run, a moment after
    it, is a time too; else None (a document holding it is refused)."""
    seconds = epoch_time(value)
    return seconds if seconds is not None and seconds < LATEST_EPOCH else None


def unreadable_part(value: Any, where: str) -> tuple[str, str] | None:
    """``(key path, why)`` of the first part of ``value`` (below the key path ``where``)
    that cannot say what it is: an object whose ``__class__`` raises, which every
    ``isinstance`` check then raises from (a proxy or a mock gone wrong). Containers are
    read by their real type, never through methods of their own; None when all is well.

    >>> unreadable_part({"a": [1, "x"]}, "configurations") is None
    True
    """
    stack: list[tuple[Any, str]] = [(value, where)]
    seen: set[int] = set()  # a container holding itself is read once
    while stack:
        node, at = stack.pop()
        try:
            node.__class__  # noqa: B018 - the read is the test
        except Exception as exc:
            return at, (
                f"a {type(node).__name__} object whose __class__ raises "
                f"{type(exc).__name__}: not a value an A/B test can hold"
            )
        kind = type(node)
        if not issubclass(kind, dict | list | tuple) or id(node) in seen:
            continue
        seen.add(id(node))
        if issubclass(kind, dict):
            for k, v in reversed(dict.items(node)):
                stack += [(v, child_key_path(at, k)), (k, at)]
        else:
            items = list.__iter__(node) if issubclass(kind, list) else tuple.__iter__(node)
            stack += reversed([(v, f"{at}[{i}]") for i, v in enumerate(items)])
    return None


def by_value(ab_test: ABTestConfiguration) -> ABTestConfiguration:
    """``ab_test`` with each field's subclasses of str, int and float (a ``StrEnum`` of
    names, a ``numpy.float64`` computed for a configuration, dict and list subclasses
    too) as their base types' values (:func:`~cfgcore.config.tree.plain_value`), so
    that they are judged, encoded and stored as the values they hold: msgspec, which
    writes the document, refuses such subclasses. ``ab_test`` as it is when a field
    cannot be read so (a hostile object): :meth:`ABTestConfiguration.validate` names
    that field."""
    try:
        values = {f.name: getattr(ab_test, f.name) for f in fields(ab_test) if f.init}
        if any(unreadable_part(v, k) is not None for k, v in values.items()):
            return ab_test
        return dataclasses.replace(ab_test, **{k: plain_value(v) for k, v in values.items()})
    except Exception:  # a value whose base-type conversion raises, a container holding itself
        return ab_test


def _utc(dt: Any, what: str, test: str, *, stored: bool = False) -> datetime:
    """``dt`` (a datetime or an ISO 8601 string) as an aware UTC datetime. Naive: local
    time when it is given through the API, UTC when ``stored`` (read from a document:
    see the module docstring)."""
    if isinstance(dt, str):
        try:
            dt = parse_iso(dt)
        except ValueError:
            raise ConfigError(
                f"A/B test {test}: {what}: not an ISO 8601 datetime: {dt!r}"
            ) from None
    if not isinstance(dt, datetime):
        raise ConfigError(f"A/B test {test}: {what}: expected a datetime, got {type(dt).__name__}")
    if dt.tzinfo is None and stored:
        return dt.replace(tzinfo=timezone.utc)
    try:
        # A naive datetime is local time (what datetime.now() returns).
        return (dt if dt.tzinfo is not None else local_aware(dt)).astimezone(timezone.utc)
    except (OverflowError, OSError, ValueError):
        raise ConfigError(
            f"A/B test {test}: {what}: {dt.isoformat()} is out of range in UTC"
        ) from None


#: How far ahead of this host's clock a served test's new start date may be without
#: ``served_at`` (:func:`moved_users`): another host's "now" (clock skew), seconds.
CLOCK_SLACK = 300.0

GUARDRAIL_DIRECTIONS = ("lower_is_better", "higher_is_better")

#: The kinds ``ABTestConfiguration.metric_types`` takes (see
#: :mod:`cfgcore.experiments.metrics`): ``"binary"`` the share of the variant's users
#: who converted, ``"continuous"`` the mean per event, ``"per_user"`` the mean over
#: the variant's exposed users of each one's total (0 for a user without an event).
#: Only the first two are ever inferred; ``"per_user"`` is used only when declared.
METRIC_KINDS = ("binary", "continuous", "per_user")


@dataclass
class ABTestConfiguration:
    """An A/B test: variants, their traffic split (percent) and configurations.

    The first seven fields are the seed's; the rest are optional. ``start_date`` and
    ``end_date`` are datetimes (or ISO 8601 strings); without an offset they are this
    machine's local time, as ``datetime.now()`` is, and are stored as UTC instants
    (see the module docstring for the rule every surface follows).

    * ``control``: the control variant (default ``"control"`` if present, else the
      first variant of ``traffic_split``);
    * ``guardrail_metrics``: ``{metric: "lower_is_better" | "higher_is_better"}``; a
      variant significantly worse on one stops the test (all traffic to control);
    * ``metric_types``: ``{metric: "binary" | "continuous" | "per_user"}``: the share
      of users who converted, the mean per event, or the mean per exposed user of each
      user's total, 0 for exposed users without an event (revenue per exposed user; see
      :mod:`cfgcore.experiments.metrics`). Inferred from the values when absent, as
      binary (only 0/1 values) or continuous; ``per_user`` only when declared;
    * ``layer`` / ``layer_percentage``: tests in one layer are mutually exclusive; the
      test takes ``layer_percentage`` percent of the layer's users (a test of its
      own layer, ``layer=test_name``, takes that share of every user; without a
      layer it takes them all, and another ``layer_percentage`` is refused);
    * ``targeting``: a condition in the flag-file syntax (``{"attr": "region", "in":
      ["EU"]}``) restricting who enters the test.

    >>> from datetime import datetime, timedelta
    >>> t = ABTestConfiguration("t", "demo", datetime(2026, 1, 1), datetime(2026, 2, 1),
    ...     {"control": 50, "b": 50}, {"control": {"x": 1}, "b": {"x": 2}}, ["ctr"])
    >>> t.validate()
    []
    """

    test_name: str
    description: str
    start_date: datetime
    end_date: datetime
    traffic_split: dict[str, float]
    configurations: dict[str, Any]
    success_metrics: list[str] = field(default_factory=list)
    control: str | None = None
    guardrail_metrics: dict[str, str] = field(default_factory=dict)
    metric_types: dict[str, str] = field(default_factory=dict)
    layer: str | None = None
    layer_percentage: float = 100.0
    targeting: dict[str, Any] | None = None

    @property
    def control_variant(self) -> str:
        """The control variant's name."""
        if self.control:
            return self.control
        return default_control(self.traffic_split)

    def validate(self) -> list[str]:
        """Every problem with this test, as ``"<test>: <field>: <message>"`` lines."""
        name = self.test_name
        out: list[str] = []
        for f in fields(self):
            found = unreadable_part(getattr(self, f.name), f.name)
            if found is not None:
                # Asked what it is (isinstance reads __class__), the object raised: no
                # check below could judge it, nor a file hold it. Named, not raised.
                shown = name if type(name) is str else f"<{type(name).__name__}>"
                return [f"{shown}: {found[0]}: {found[1]}"]

        def bad(where: str, msg: str) -> None:
            out.append(f"{name}: {where}: {msg}")

        if not isinstance(name, str) or not name.strip():
            return [f"{name!r}: test_name: must be a non-empty string"]
        if exact_name(name) is None:  # a lone surrogate: no file or log can hold it
            return [f"{name!r}: test_name: is not valid Unicode (a lone surrogate)"]
        if name.startswith("__"):
            bad("test_name", "names starting with '__' are reserved")
        split = self.traffic_split
        if not isinstance(split, Mapping) or len(split) < 2:
            bad("traffic_split", "needs at least two variants")
            split = dict(split) if isinstance(split, Mapping) else {}
        total = 0.0
        refused: list[Any] = []  # variants refused by name: their configurations are not judged
        for variant, weight in split.items():
            if (
                not isinstance(variant, str)
                or not variant
                or variant == NO_VARIANT
                or exact_name(variant) is None  # a lone surrogate
            ):
                # a key that is not text in Python's spelling in brackets: traffic_split[None]
                shown = variant if not isinstance(variant, str) else repr(variant)
                bad(child_key_path("traffic_split", shown), "not a usable variant name")
                refused.append(variant)
            w = real_number(weight)
            if w is None:  # True, "50", None, 10**400 (past a float)...
                at = child_key_path("traffic_split", variant)
                bad(at, f"weight must be a number, got {weight!r:.60}")
                continue
            if not (math.isfinite(w) and w >= 0):
                bad(
                    child_key_path("traffic_split", variant), f"weight must be >= 0, got {weight!r}"
                )
                continue
            total += w
        if split and abs(total - 100.0) > 1e-6:
            bad("traffic_split", f"weights sum to {total:g}, not 100")
        configs = self.configurations if isinstance(self.configurations, Mapping) else {}
        if not isinstance(self.configurations, Mapping):
            bad("configurations", "must be a mapping of variant -> configuration")
        for variant in split:
            if variant not in configs:
                bad(
                    child_key_path("configurations", variant),
                    "missing: every variant needs a configuration",
                )
        for variant in configs:
            if variant not in split:
                bad(child_key_path("configurations", variant), "not a variant of traffic_split")
                refused.append(variant)
        for variant, conf in configs.items():
            if _among(variant, refused):
                # Refused above by its name: one problem per cause. Its configuration's
                # own path (configurations.None.x, the text key "None") named no key of
                # the test.
                continue
            # The one judge of a configuration value (what a flag file can hold and
            # every process reads back the same): string keys, integers within 64
            # bits, finite numbers, text, nesting depth. A NaN was stored as null and an
            # integer past 64 bits made every later change of the flags raise.
            found = tree_problem(conf, ("configurations", str(variant)))
            if found is not None:
                where, message = found
                bad(where, message)
        try:
            start = _utc(self.start_date, "start_date", name)
            end = _utc(self.end_date, "end_date", name)
            if not end > start:
                bad("end_date", "must be after start_date")
        except ConfigError as exc:
            out.append(str(exc).removeprefix("<input>: "))
        # Types the constructor does not check (JSON payloads carry nulls); a wrong one
        # would raise below or be persisted in a file the decoder then refuses.
        if not isinstance(self.description, str):
            bad("description", f"must be a string, got {type(self.description).__name__}")
        sm = self.success_metrics
        if not isinstance(sm, (list, tuple)) or not all(isinstance(m, str) for m in sm):
            bad("success_metrics", "must be a list of metric names")
        if self.control is not None and (
            not isinstance(self.control, str) or self.control not in split
        ):
            bad("control", f"{self.control!r} is not a variant of traffic_split")
        for where in ("guardrail_metrics", "metric_types"):
            if not isinstance(getattr(self, where), Mapping):
                bad(where, "must be a mapping of metric -> kind")
        guardrails = self.guardrail_metrics if isinstance(self.guardrail_metrics, Mapping) else {}
        types = self.metric_types if isinstance(self.metric_types, Mapping) else {}
        for where, names in (("success_metrics", sm), ("guardrail_metrics", guardrails),
                             ("metric_types", types)):  # fmt: skip
            # Metric names as record_metric takes them (text): a key of another type was
            # stored as its JSON text ("1") or failed the write, and matched no event.
            if isinstance(names, list | tuple | Mapping):
                for metric in names:
                    if isinstance(metric, str) and exact_name(metric) is None:
                        bad(where, f"{metric!r} is not valid Unicode (a lone surrogate)")
                    elif not isinstance(metric, str) and where != "success_metrics":
                        bad(
                            where + python_key_segment(metric),
                            f"a metric name must be a string, got {python_key(metric)} "
                            f"({type(metric).__name__})",
                        )
        for metric, direction in guardrails.items():
            if direction not in GUARDRAIL_DIRECTIONS:
                bad(
                    child_key_path("guardrail_metrics", metric),
                    f"must be one of {GUARDRAIL_DIRECTIONS}",
                )
        for metric, kind in types.items():
            if kind not in METRIC_KINDS:
                got = repr(kind)[:60] if type(kind) is str else f"a {type(kind).__name__}"
                bad(
                    child_key_path("metric_types", metric),
                    f"must be one of {METRIC_KINDS}, got {got}",
                )
        if self.layer is not None:
            if not isinstance(self.layer, str) or not self.layer:
                bad("layer", "must be a non-empty string")
            lp = real_number(self.layer_percentage)
            if lp is None or not 0 < lp <= 100:
                bad(
                    "layer_percentage",
                    f"must be within (0, 100], got {self.layer_percentage!r:.60}",
                )
        elif real_number(self.layer_percentage) != 100:
            # Only a layer's slice takes part of the users: without a layer the share
            # was dropped, and a test meant for 10 % of the users served all of them.
            bad(
                "layer_percentage",
                f"{self.layer_percentage!r:.60} takes effect only within a layer; to enrol "
                "part of the users, give the test a layer (a layer of its own, such as "
                "its name, holds its share of every user)",
            )
        for where in ("description", "layer", "targeting"):
            # Text every process reads back (a lone surrogate failed the write, raising
            # from create_ab_test), within the nesting a document holds.
            found = tree_problem(getattr(self, where), (where,))
            if found is not None:
                bad(found[0], found[1])
                return out
        if self.targeting is not None:
            try:
                msgspec.convert(self.targeting, Condition)
            except msgspec.ValidationError as exc:
                # its key path as a flag file's condition names it (targeting.any[0].gt),
                # not msgspec's ("... - at `$.any[0].gt`")
                problem = msgspec_problem(exc, None, "targeting", self.targeting, Condition)
                bad(problem.path or "targeting", problem.message)
        return out

    # -- storage -------------------------------------------------------------------

    def to_metadata(self) -> dict[str, Any]:
        """The record kept in the snapshot's ``experiments`` section."""
        meta: dict[str, Any] = {
            "description": self.description,
            "start_date": _utc(self.start_date, "start_date", self.test_name).isoformat(),
            "end_date": _utc(self.end_date, "end_date", self.test_name).isoformat(),
            "traffic_split": {k: float(v) for k, v in self.traffic_split.items()},
            "success_metrics": list(self.success_metrics),
            "control": self.control_variant,
            "status": "active",
        }
        if self.guardrail_metrics:
            meta["guardrail_metrics"] = dict(self.guardrail_metrics)
        if self.metric_types:
            meta["metric_types"] = dict(self.metric_types)
        if self.layer:
            meta["layer"] = self.layer
            meta["layer_percentage"] = float(self.layer_percentage)
        if self.targeting is not None:
            meta["targeting"] = copy.deepcopy(self.targeting)
        return meta

    @classmethod
    def from_metadata(
        cls, name: str, meta: Mapping[str, Any], configurations: Mapping[str, Any]
    ) -> ABTestConfiguration:
        """Rebuild a configuration from its stored record and its flag's variants."""
        return cls(
            test_name=name,
            description=str(meta.get("description", "")),
            start_date=_utc(meta["start_date"], "start_date", name, stored=True),
            end_date=_utc(meta["end_date"], "end_date", name, stored=True),
            traffic_split=dict(meta.get("traffic_split", {})),
            configurations={k: copy.deepcopy(v) for k, v in configurations.items()},
            success_metrics=list(meta.get("success_metrics", [])),
            control=meta.get("control"),
            guardrail_metrics=dict(meta.get("guardrail_metrics", {})),
            metric_types=dict(meta.get("metric_types", {})),
            layer=meta.get("layer"),
            layer_percentage=float(meta.get("layer_percentage", 100.0)),
            targeting=copy.deepcopy(meta.get("targeting")),
        )

    def to_flag(self) -> Flag:
        """The multivariate flag that serves this test."""
        when = msgspec.convert(self.targeting, Condition) if self.targeting is not None else None
        variants: dict[str, Any] = {
            k: copy.deepcopy(self.configurations[k]) for k in self.traffic_split
        }
        variants[NO_VARIANT] = None
        return Flag(
            variants=variants,
            default=NO_VARIANT,
            off_variant=NO_VARIANT,
            rules=[Rule(when=when, split={k: float(v) for k, v in self.traffic_split.items()})],
            salt=self.test_name,
            schedule=Schedule(
                start=_utc(self.start_date, "start_date", self.test_name),
                end=_utc(self.end_date, "end_date", self.test_name),
            ),
            description=self.description,
            tags=["ab-test"],
        )


def _ranges(split: Mapping[str, Any]) -> list[tuple[int, str]]:
    """``[(end bucket, variant)]`` of a split, as the compiler lays it out."""
    ends = split_ends([float(w) for w in split.values()])
    return [(end, str(name)) for end, name in zip(ends, split, strict=True)]


def moved_share(old: Mapping[str, Any], new: Mapping[str, Any]) -> float:
    """The fraction of a test's users that ``new`` serves another variant than ``old``
    (0.0 when nobody moves: same weights, or only a 0 % variant added at the end)."""
    a, b = _ranges(old), _ranges(new)
    moved = pos = i = j = 0
    while i < len(a) and j < len(b):
        end = min(a[i][0], b[j][0])
        if end > pos and a[i][1] != b[j][1]:
            moved += end - pos
        pos = max(pos, end)
        if a[i][0] == end:
            i += 1
        if j < len(b) and b[j][0] == end:
            j += 1
    return moved / BUCKETS


def _served_split(
    key: str, flag: Flag | None
) -> tuple[int, dict[str, Any], tuple[Any, ...]] | None:
    """``(rule index, split, bucketing)`` of the rule that splits a test flag's users
    between its variants, or None (a stopped test serves its control). ``bucketing``
    is what picks a user's bucket (salt, attributes, hashing): another one re-buckets
    every user."""
    if flag is None:
        return None
    for i, rule in enumerate(flag.rules):
        if rule.split is not None or rule.buckets is not None:
            return i, dict(rule.split or {}), _bucketing(key, flag, rule)
    return None


def _bucketing(key: str, flag: Flag, rule: Rule) -> tuple[Any, ...]:
    """What picks a user's bucket in ``rule`` of test ``key``'s ``flag``."""
    by = rule.bucket_by or flag.bucket_by or list(DEFAULT_BUCKET_BY)
    salt = flag.salt if flag.salt is not None else key
    return (salt, tuple([by] if isinstance(by, str) else by), flag.bucketing, rule.hash,
            rule.buckets)  # fmt: skip


def _reached_splits(key: str, flag: Flag | None) -> list[int]:
    """The indices of the split rules of test ``key``'s ``flag`` that users reach: its
    first split (:func:`_served_split`), and past a conditional (or gated) one the
    later splits, up to the first unconditional one bucketed as the first (every user
    with a bucket is assigned there; the others have none, for any of them)."""
    served = _served_split(key, flag)
    if flag is None or served is None:
        return []
    first, _, bucketing = served
    rules = flag.rules
    out = [first]
    if rules[first].when is None and not rules[first].gates:
        return out
    for r in range(first + 1, len(rules)):
        rule = rules[r]
        if not isinstance(rule, Rule) or (rule.split is None and rule.buckets is None):
            continue
        out.append(r)
        if _bucketing(key, flag, rule) == bucketing and rule.when is None and not rule.gates:
            break
    return out


def _restarted(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """Whether ``new`` says it is a new run of the test ``old`` recorded: a later
    ``since`` (records up to it are left out of its analysis: :func:`record_cutoffs`,
    and every process logs its users' exposures afresh)."""
    since, was = new.get("since"), old.get("since")
    if not isinstance(since, int | float) or isinstance(since, bool):
        return False
    return not isinstance(was, int | float) or isinstance(was, bool) or since > was


def record_problems(name: str, meta: Any, file: str | None = None) -> list[Problem]:
    """What is wrong with the shape of test ``name``'s stored record ``meta``, for
    the readers that analyse it (reports, guardrail checks, :meth:`ABTests.get`): a
    field present with a type they cannot use. A hand-edited record may leave out the
    optional fields (metrics, control, guardrails); what it holds must be of the kind
    :meth:`ABTestConfiguration.to_metadata` writes. A document holding such a record
    never goes live (:func:`records_problems`, judged as every document is derived);
    the readers check the records they are given too (the report reads a file)."""

    def bad(where: tuple[Any, ...], message: str) -> None:
        path = format_key_path(("experiments", name, *where))
        out.append(Problem(path=path, message=message, file=file))

    def bad_key(where: str, key: Any, message: str) -> None:
        # a key that is not text in Python's spelling in brackets: traffic_split[None],
        # never traffic_split.None (the text key "None")
        path = child_key_path(format_key_path(("experiments", name, where)), key)
        out.append(Problem(path=path, message=message, file=file))

    out: list[Problem] = []
    if not isinstance(meta, Mapping):
        bad((), f"expected a mapping, got {type(meta).__name__}")
        return out
    split = meta.get("traffic_split")
    if split is not None:
        if not isinstance(split, Mapping):
            bad(("traffic_split",), f"expected a mapping of variant to percent, got {split!r:.60}")
        else:
            for variant, weight in split.items():
                number = isinstance(weight, int | float) and not isinstance(weight, bool)
                try:
                    finite = number and math.isfinite(weight)
                except OverflowError:  # an int past a float (JSON and MessagePack carry one)
                    finite = False
                if not isinstance(variant, str) or not finite:
                    bad_key("traffic_split", variant, f"expected a percent, got {weight!r:.60}")
    metrics = meta.get("success_metrics")
    if metrics is not None and (
        not isinstance(metrics, list | tuple) or not all(isinstance(m, str) for m in metrics)
    ):
        bad(("success_metrics",), f"expected a list of metric names, got {metrics!r:.60}")
    for where, kinds in (("guardrail_metrics", GUARDRAIL_DIRECTIONS),
                         ("metric_types", METRIC_KINDS)):  # fmt: skip
        named = meta.get(where)
        if named is None:
            continue
        if not isinstance(named, Mapping):
            bad((where,), f"expected a mapping of metric to one of {kinds}, got {named!r:.60}")
            continue
        for metric, kind in named.items():
            if not isinstance(metric, str) or kind not in kinds:
                bad_key(where, metric, f"expected one of {kinds}, got {kind!r:.60}")
    for where in ("control", "status"):
        value = meta.get(where)
        if value is not None and not isinstance(value, str):
            bad((where,), f"expected a string, got {value!r:.60}")
    # A layer's slice: a hand-edited true was read as 1 % (or an offset of 1).
    for where in ("layer_percentage", "layer_offset"):
        value = meta.get(where)
        percent = real_number(value) if type(value) in (int, float) else None
        if value is not None and (percent is None or not math.isfinite(percent)):
            bad((where,), f"expected a percent, got {value!r:.60}")
    # When this run began: a time, or the retirement that ends the run (a moment
    # later) and every reader's cut-off would not be one (past the largest float: inf).
    since = meta.get("since")
    if since is not None and since_time(since) is None:
        bad(
            ("since",),
            "expected the epoch seconds this run of the test began (a number from 0 up "
            f"to, not including, {LATEST_EPOCH:.0f}, the start of the year 10000), got "
            f"{describe(since)}",
        )
    return out


def default_control(split: Any) -> str:
    """The control of a test that names none: ``"control"`` where ``split`` (its
    traffic split) has that variant or is empty, else the split's first variant."""
    names = list(split) if isinstance(split, Mapping) else []
    if not names or "control" in names:
        return "control"
    return str(names[0])


def stored_control(meta: Mapping[str, Any]) -> Any:
    """The variant a stop serves for the test whose stored record is ``meta``: its
    ``control``, else :func:`default_control` of its ``traffic_split`` (the rule
    :attr:`ABTestConfiguration.control_variant` follows)."""
    control = meta.get("control")
    return control if control else default_control(meta.get("traffic_split"))


def records_problems(snapshot: Snapshot, file: str | None = None) -> list[Problem]:
    """What keeps flag document ``snapshot`` from going live with its A/B test records
    (each mapping in ``experiments``; other entries are no test's): a field of the
    wrong shape (:func:`record_problems`), or a control that is no variant of the
    test's flag. Judged where every document goes live
    (:func:`cfgcore.runtime.flags.derive`), so a record a stop, a guardrail rollback or
    a report could not use never serves: the last good document keeps serving. Fields
    left out are fine."""
    out: list[Problem] = []
    for name, meta in snapshot.experiments.items():
        if not isinstance(meta, Mapping):
            continue
        found = record_problems(name, meta, file)
        out += found
        flag = snapshot.flags.get(name)
        if found or flag is None or not flag.variants:
            continue
        control = stored_control(meta)
        if control == NO_VARIANT or control not in flag.variants:
            named = "names" if meta.get("control") else "names none, so its control is"
            out.append(Problem(
                path=format_key_path(("experiments", name, "control")),
                message=f"the record {named} {control!r:.60}, which is no variant of "
                f"{child_key_path('flags', name)}: stopping the test (by hand or by a "
                "guardrail) would serve it to everyone; name the test's control variant",
                file=file,
            ))  # fmt: skip
    return out


def without_malformed_records(snapshot: Snapshot) -> Snapshot:
    """``snapshot`` without the A/B test records :func:`records_problems` refuses (the
    document itself when it holds none). The base a change or a publish is judged
    against (its served tests' users not moved): no process serves a document for
    such a record, so it must not refuse the change that removes or replaces it; the
    result is judged whole as it goes live."""
    if not records_problems(snapshot):
        return snapshot
    kept = {
        name: meta
        for name, meta in snapshot.experiments.items()
        if not records_problems(msgspec.structs.replace(snapshot, experiments={name: meta}))
    }
    return msgspec.structs.replace(snapshot, experiments=kept)


def check_record(name: str, meta: Any, file: str | None = None) -> None:
    """ConfigError naming ``file`` and each field (:func:`record_problems`) when test
    ``name``'s stored record cannot be analysed."""
    problems = record_problems(name, meta, file)
    if problems:
        raise ConfigError(problems)


def guardrail_stop(meta: Any) -> float | None:
    """When a guardrail stopped the test whose record is ``meta``, if that stop is still
    in force (no explicit resume since); None otherwise. A test stopped by a guardrail
    before :data:`GUARDRAIL_STOPPED_AT` was recorded is known by its ``stopped_reason``
    while it stays stopped."""
    if not isinstance(meta, Mapping):
        return None
    at = _number(meta.get(GUARDRAIL_STOPPED_AT))
    if at is None:
        reason = meta.get("stopped_reason")
        if meta.get("status") != "stopped" or not (
            isinstance(reason, str) and reason.startswith("guardrail:")
        ):
            return None
        at = _number(meta.get("stopped_at")) or 0.0
    resumed = _number(meta.get(RESUMED_AT))
    return None if resumed is not None and resumed >= at else at


def recorded_end(metadata: Any, name: str) -> float | None:
    """When document ``metadata`` says the last guardrail stop of test ``name`` it
    recorded was ended (:data:`GUARDRAIL_ENDS`), or None."""
    ends = metadata.get(GUARDRAIL_ENDS) if isinstance(metadata, Mapping) else None
    return _number(ends.get(name)) if isinstance(ends, Mapping) else None


def _with_end(metadata: Mapping[str, Any], name: str, at: float) -> dict[str, Any]:
    """``metadata`` recording that test ``name``'s guardrail stop ended at ``at``."""
    ends = metadata.get(GUARDRAIL_ENDS)
    ends = dict(ends) if isinstance(ends, Mapping) else {}
    ends[name] = max(at, recorded_end(metadata, name) or at)
    return {**metadata, GUARDRAIL_ENDS: ends}


def guardrail_reactivations(
    old: Snapshot, new: Snapshot, file: str | None = None, *, stored: bool = False
) -> list[Problem]:
    """What in flag document ``new`` would serve again the variants of a test a
    guardrail stopped in ``old`` (the live one) with no explicit resume: its record made
    active again, or its flag splitting users between variants again (under its record
    or without one). A guardrail stop stays in force until ``cfgcore experiment start``
    (or ``create_ab_test`` with ``start``) resumes the test, audited; a file put back
    from before the stop, or a hand edit, must not undo it. A stop ``new`` records the
    end of (:data:`GUARDRAIL_ENDS`: an end not before it) is over. ``stored``: ``new``
    is a change made through cfgcore on a stored document the process refused, and the
    messages say how to repair the store (:func:`stored_refusal_advice`)."""
    problems: list[Problem] = []
    for name, was in old.experiments.items():
        stopped_at = guardrail_stop(was)
        if stopped_at is None or not isinstance(was, Mapping):
            continue
        ended = recorded_end(new.metadata, name)
        if ended is not None and ended >= stopped_at:
            continue  # ended through the API on the document that recorded it
        meta = new.experiments.get(name)
        record = meta if isinstance(meta, Mapping) else None
        active = record is not None and record.get("status", "active") != "stopped"
        try:
            splits = _served_split(name, new.flags.get(name)) is not None
        except (TypeError, ValueError):
            splits = False  # a malformed flag: the compiler refuses the document
        if not (active or splits):
            continue
        if active and guardrail_stop(record) is None:
            resumed = _number(record.get(RESUMED_AT))  # type: ignore[union-attr]
            if resumed is not None and resumed >= stopped_at:
                continue  # resumed through the API (in another process, say)
        reason = was.get("stopped_reason")
        why = f" ({reason})" if isinstance(reason, str) and reason else ""
        if stored:
            problems.append(Problem(
                path=format_key_path(
                    ("experiments", name, "status") if active else ("flags", name, "rules")
                ),
                message=f"A/B test {name!r} {GUARDRAIL_HELD}{why}; the stored flag "
                "document, which this process refused, serves its variants again, and this "
                f"change made on it would too. {stored_refusal_advice(name, guardrail=True)}",
                file=file, kind="flags",
            ))  # fmt: skip
            continue
        problems.append(Problem(
            path=format_key_path(
                ("experiments", name, "status") if active else ("flags", name, "rules")
            ),
            message=f"A/B test {name!r} {GUARDRAIL_HELD}{why}; this document would "
            "serve its variants again. A guardrail stop stays in force until the test is "
            f"resumed explicitly: cfgcore experiment start {name} (audited), or "
            "create_ab_test with start=True; keep the test stopped in this file",
            file=file, kind="flags",
        ))  # fmt: skip
    return problems


def moved_users(
    old: Snapshot, new: Snapshot, now: float, file: str | None = None, *, stored: bool = False
) -> list[Problem]:
    """What in flag document ``new`` would move users that ``old`` (the live one) has
    enrolled in an A/B test to another variant, or out of the test, when it goes live:
    the one judge of every flag document written through cfgcore's API and command
    line and of those written by hand or by another tool (a file edit, the Redis
    document). A test that has not served its variants, or that ``new`` restarts as a
    new run (a later ``since``), is free to change. Stopping a test (its flag serving
    its record's control), changing its configurations, dates, targeting or
    ``layer_percentage`` in place, or adding a 0 % variant at the end moves nobody; a
    stopped test's flag serving another variant, or a flag of its name serving none of
    its variants, moves them all (:func:`_moved_by_fixed_serve`); a
    start date moved past now (or a "not started" stop) must keep the record's
    ``served_at``, or the next document could change the split of a test that looks as
    if it never served. ``stored``: ``new`` is a change made through cfgcore on a
    stored document this process refused; the messages say how to repair the store
    (:func:`stored_refusal_advice`), not how to edit a file."""
    # A guardrail stop undone (its test's variants served again) moves every user of
    # the test from the control back to the variant found harmful.
    problems: list[Problem] = guardrail_reactivations(old, new, file, stored=stored)
    try:
        old_slices = layer_slices(old.experiments)
        new_slices = layer_slices(new.experiments)
    except (TypeError, ValueError):
        old_slices, new_slices = {}, {}  # malformed records: derive() refuses them
    for name, was in old.experiments.items():
        meta = new.experiments.get(name)
        if not isinstance(was, Mapping) or not isinstance(meta, Mapping):
            continue  # deleted (or not a test): the API allows that too
        if not has_served(was, now) or _restarted(was, meta):
            continue
        if (
            old_slices.get(name) == new_slices.get(name)
            and same(was, meta)
            and same(old.flags.get(name), new.flags.get(name))
        ):
            # The test as it was (record, flag, layer slice, as stored: 1 and 1.0 and
            # true differ) moves nobody: a change of one flag of a document holding many
            # tests is judged by what it changes, not by every test again.
            continue
        found: list[tuple[str, str]] = []
        if not has_served(meta, now + CLOCK_SLACK):
            # A start date moved past now (or "not started") without served_at: the
            # next document could then change its split freely and move its users. (A
            # start a few minutes ahead is another host's "now": clock skew, refused,
            # split the fleet between hosts serving the document and hosts refusing it.)
            served = _served_at(was, now)
            found.append((
                "served_at",
                "this document would make it a test that has not served (its start date "
                f"after now, or not started), so its split could then change: keep "
                f"served_at: {served} in its record",
            ))  # fmt: skip
        try:
            before, after = was.get("traffic_split"), meta.get("traffic_split")
            if isinstance(before, Mapping) and isinstance(after, Mapping):
                share = moved_share(before, after)
                if share:
                    found.append(("traffic_split", f"this split would move {share:.3%} of "
                                  "its users to another variant"))  # fmt: skip
            served_before = _served_split(name, old.flags.get(name))
            served_after = _served_split(name, new.flags.get(name))
            if served_after is not None:
                i, split, bucketing = served_after
                where = f"{child_key_path('flags', name)}.rules[{i}]"
                if served_before is not None and bucketing != served_before[2]:
                    found.append((where, "this rule buckets users another way (salt, "
                                  "bucket_by or hashing): every user would be bucketed "
                                  "again"))  # fmt: skip
                else:
                    base = served_before[1] if served_before is not None else before
                    share = moved_share(base, split) if isinstance(base, Mapping) else 0.0
                    if share:
                        found.append((f"{where}.split", f"this split would move {share:.3%} "
                                      "of its users to another variant"))  # fmt: skip
                    if isinstance(base, Mapping):
                        found += _later_splits(name, old.flags.get(name),
                                               new.flags.get(name), base)  # fmt: skip
            fixed = _moved_by_fixed_serve(name, old.flags.get(name), new.flags.get(name), meta)
            if fixed is not None:
                found.append(fixed)
        except (TypeError, ValueError):
            pass  # weights that are not numbers: the compiler refuses the document
        slice_before, slice_after = old_slices.get(name), new_slices.get(name)
        if slice_before is not None and slice_after is not None:
            (layer, offset, pct), (layer2, offset2, pct2) = slice_before, slice_after
            if layer != layer2 and not (pct >= 100.0 and pct2 >= 100.0):
                found.append(("layer", f"moving it from layer {layer!r} to layer {layer2!r} "
                              "would take its users out of the test and enrol others"))  # fmt: skip
            elif layer == layer2 and abs(offset - offset2) > 1e-9 and pct > 0:
                kept = max(0.0, min(offset + pct, offset2 + pct2) - max(offset, offset2))
                if kept < pct - 1e-9:
                    share = (pct - kept) / pct
                    found.append(("layer_offset", f"its slice of layer {layer!r} would move "
                                  f"from {offset:g}% to {offset2:g}%, taking {share:.0%} "
                                  "of its users out of the test"))  # fmt: skip
        if not found:
            continue
        # One problem per test (a health check shows the first line), naming each place.
        test_at = child_key_path("experiments", name)
        paths = [w if w.startswith("flags") else f"{test_at}.{w}" for w, _ in found]
        what = "; ".join(
            [found[0][1], *(f"{p}: {w}" for p, (_, w) in zip(paths[1:], found[1:], strict=True))]
        )
        sticky = (
            "(assignment is sticky for the life of a test, and their metric events would be "
            "counted in the wrong variant)"
        )
        if stored:
            message = (
                f"A/B test {name!r} has served its variants; in the stored flag document, "
                f"which this process refused, and in this change made on it, {what} "
                f"{sticky}. {stored_refusal_advice(name, since=math.floor(now))}"
            )
        else:
            message = (
                f"A/B test {name!r} has served its variants; {what} {sticky}. To restart "
                f"it as a new run, set experiments.{name}.since: {math.floor(now)} (epoch "
                "seconds; its earlier exposures and metric events are left out of its "
                "analysis), or create a test under a new name"
            )
        problems.append(Problem(path=paths[0], message=message, file=file, kind="flags"))
    return problems


def _later_splits(
    name: str, before: Flag | None, after: Flag | None, base: Mapping[str, Any]
) -> list[tuple[str, str]]:
    """``[(key path, why)]`` for the splits of test ``name``'s flag ``after`` past its
    first one (:func:`_served_split`, judged by the caller) that users can reach and
    that split them otherwise than ``base``, the test's split as served: the first
    split made conditional (``when``, gates), the users it does not take are split by
    the next one. A split as ``before`` had it (unchanged) is not judged again; a later
    split bucketed as the first is reached by nobody once an unconditional one is
    passed (every user with a bucket was assigned there, the others have none)."""
    reached = _reached_splits(name, after)
    if after is None or len(reached) < 2:
        return []
    bucketing = _bucketing(name, after, after.rules[reached[0]])
    # (a set: one lookup per split, not a comparison with each rule of ``before``)
    kept = SameSet(before.rules if before is not None and isinstance(before.rules, list) else ())
    found: list[tuple[str, str]] = []
    for r in reached[1:]:
        rule = after.rules[r]
        if rule in kept:
            continue
        where = f"{child_key_path('flags', name)}.rules[{r}]"
        if _bucketing(name, after, rule) != bucketing:
            why = ("this rule buckets users another way (salt, bucket_by or hashing): "
                   "the users it reaches would be bucketed again")  # fmt: skip
            found.append((where, why))
            continue
        share = moved_share(base, rule.split or {})
        if share:
            found.append((f"{where}.split", f"this split would move {share:.3%} of the "
                          "users it reaches to another variant"))  # fmt: skip
    return found


_WRITE_BACK = (
    "write it back (edit the flags file; a Redis store: cfgcore publish --store URL --flags FILE)"
)


def stored_refusal_advice(name: str, *, guardrail: bool = False, since: int | None = None) -> str:
    """What a refusal of a change made through cfgcore (the API, ``cfgcore experiment
    ...``) on a stored document the process refused says of test ``name``: that
    nothing was written, and the changes that repair the store. A change whose result
    moves nobody, judged against what the process serves and against the stored
    document, is written (:meth:`cfgcore.runtime.flags.LiveFlags.update`): for a
    guardrail stop undone, a stop or a delete of the test; for users moved, a delete;
    or the store rewritten by hand (``cfgcore publish`` for a Redis store)."""
    if guardrail:
        return (
            "Nothing was written. Repair the store with a change that keeps the test "
            f"stopped: cfgcore experiment stop {name} (stop_ab_test) or cfgcore experiment "
            f"delete {name} (delete_ab_test); or {_WRITE_BACK} with the test stopped. "
            f"Once it holds the stop, cfgcore experiment start {name} resumes the test "
            "(audited)"
        )
    new_run = "" if since is None else f": set experiments.{name}.since: {since}"
    return (
        "Nothing was written. Repair the store: cfgcore experiment delete "
        f"{name} (delete_ab_test) writes it without the test; or {_WRITE_BACK} with the "
        f"test as this process serves it, or restarted as a new run{new_run} (epoch "
        "seconds; its earlier exposures and metric events are left out of its analysis)"
    )


def _fixed_serve(flag: Flag) -> dict[str, str]:
    """``{key path under the flag: variant}`` of what a test flag that splits nobody
    serves everyone it lets through (each rule's ``serve``, and its ``default``); the
    test's "no variant" left out (such users are out of the test, as in a holdout)."""
    out = {f"rules[{i}]": r.serve for i, r in enumerate(flag.rules) if r.serve is not None}
    if flag.default is not None:
        out["default"] = flag.default
    return {where: str(v) for where, v in out.items() if v != NO_VARIANT}


def _moved_by_fixed_serve(
    name: str, before: Flag | None, after: Flag | None, meta: Mapping[str, Any]
) -> tuple[str, str] | None:
    """``(key path, why)`` when test ``name``'s flag ``after`` (of a served test, record
    ``meta`` in the new document) serves everyone it lets through one value that moves
    them, or None. A stopped test serves one variant to every user it enrolled: while
    it stays stopped that variant must stay (another one, or another ``control``
    served, would move them all to it: for a guardrail stop, to the variant found
    harmful), and a test stopped by this document must serve the control its record
    names, as a stop does. A flag of the test's name that serves none of its variants
    (a boolean flag written over it) would take every user out of it. A flag switched
    off (``enabled: false``) serves nobody a variant: as for a holdout, its users leave
    the test and come back with their variant."""
    if before is None or after is None or not before.variants or not after.enabled:
        return None
    at = child_key_path("flags", name)
    if not after.variants:
        return (at, "this flag would serve none of its variants, taking every user it "
                "enrolled out of the test")  # fmt: skip
    if _served_split(name, after) is not None:
        return None  # splitting users: judged by its split
    served = _fixed_serve(after)
    if _served_split(name, before) is None:
        kept = set(_fixed_serve(before).values())
        was = f"the test is stopped and serves {_listed_values(kept)} to every user it enrolled"
    else:
        kept = {str(stored_control(meta))}
        was = f"stopping the test serves its control {next(iter(kept))!r:.60} to every user"
    for where, variant in served.items():
        if variant not in kept:
            why = (f"{was}; this document would serve them all {variant!r:.60} instead "
                   "(keep the control while the test is stopped)")  # fmt: skip
            return f"{at}.{where}", why
    return None


def _listed_values(values: set[str]) -> str:
    return ", ".join(repr(v)[:62] for v in sorted(values)) or "no variant"


def moved_from_records(doc: Snapshot, now: float, file: str | None = None) -> list[Problem]:
    """What in flag document ``doc`` serves users of a served A/B test other variants
    than its own ``experiments`` record enrolled them in: the test's flag splits them
    otherwise than ``traffic_split`` (the flag edited by hand, its record not). The one
    judgement possible with no earlier document to compare with (a process starting on
    a file): a change that edited both alike cannot be told from a test created so."""
    recorded = msgspec.structs.replace(
        doc, flags={k: v for k, v in doc.flags.items() if k not in doc.experiments}
    )
    return moved_users(recorded, doc, now, file)


def rules_ahead_of_split(
    old: Snapshot | None, new: Snapshot, now: float, file: str | None = None
) -> list[Problem]:
    """Warnings (never refusals) for the rules document ``new`` places ahead of a
    running A/B test's split: a rule there takes the users it matches before the split
    is reached, so users the test enrolled get its answer instead of their variant. A
    targeting change, not refused (docs/experiments.md), but told: one Problem per
    rule, at its key path, naming the test and what share of its traffic the rule can
    take (exact for a rollout bucketed as the split is), else that it can take any
    enrolled user matching its condition. A ``prerequisites`` entry of the test's flag
    (other than the layers' and the holdout's) is checked before any rule: users for
    whom it does not hold leave the test (no variant), told the same way at its path.

    ``old``: the document served before this one goes live; a rule it had ahead of the
    split already is told again only when something it reads changes (a flag its
    condition's ``prerequisite`` names, a segment it uses): ``set_feature_flag`` on
    that flag widens or narrows the rule. Removing a rule, a rule after the split, a
    test not running (not served yet, stopped, a flag switched off) or made a new run
    (a later ``since``) and a test new in ``new`` give nothing. ``old`` None (``cfgcore
    validate`` of a file: nothing to compare with): every rule ahead of a running
    test's split is told, as the test's own flag has none."""
    return [found.problem for found in judge_rules_ahead(old, new, now, file)]


@dataclass(frozen=True)
class RuleAhead:
    """A rule (or prerequisite) of a running A/B test's flag checked ahead of its split
    (:func:`judge_rules_ahead`). ``changed``: told by :func:`rules_ahead_of_split`
    (what the change from the old document did); ``key``: the situation, for telling
    each once (``b""`` unless asked for)."""

    problem: Problem
    changed: bool
    key: bytes = b""


def judge_rules_ahead(
    old: Snapshot | None,
    new: Snapshot,
    now: float,
    file: str | None = None,
    *,
    standing: bool = False,
) -> list[RuleAhead]:
    """What :func:`rules_ahead_of_split` tells (``changed``), and with ``standing``
    every other rule and prerequisite ahead of a running test's split in ``new`` too,
    worded as ``old`` None words them (a rule kept as it was, a test new in ``new`` or
    made a new run by it, a test that has started serving since ``old``), each with the
    key of its situation: the test's run, the rule, the share it can take and what its
    condition reads as ``new`` holds them (a flag or segment, theirs included). Equal
    keys: the same users taken the same way, told once by a process
    (:class:`cfgcore.runtime.flags.LiveFlags`). Linear in the documents' size: each
    rule, flag and segment encoded a few times, whatever the number of rules."""
    out: list[RuleAhead] = []
    memo: dict[Any, Any] = {}  # (segments walked, flags and segments compared: _differs)
    seen: dict[bytes, int] = {}  # (keys made: an identical rule twice is two situations)

    def told(problem: Problem, why: str | None, situation: tuple[Any, ...]) -> None:
        # situation: (test, run, what: "rule" | "prerequisite", the rule, the digest of
        # what it reads, the share it can take)
        key = b""
        if standing:
            *head, item, reads, reach = situation
            digest = hashlib.blake2b(digest_size=16)
            for part in (repr(head), item, reads, reach):
                if isinstance(part, str):
                    digest.update(_text_bytes(part))
                elif isinstance(part, bytes):
                    digest.update(part)
                else:
                    digest.update(same_key(part) or _text_bytes(repr(part)))
                digest.update(b"\0")
            key = digest.digest()
            count = seen.get(key, 0)
            seen[key] = count + 1
            if count:  # (the same rule twice ahead of the split)
                key += count.to_bytes(8, "big")
        out.append(RuleAhead(problem, why is not None, key))

    for name, meta in new.experiments.items():
        flag = new.flags.get(name)
        if not isinstance(flag, Flag):
            continue
        rules, pres = flag.rules, _own_prerequisites(flag)
        first = rules[0] if isinstance(rules, list) and rules else None
        if not pres and (
            not isinstance(first, Rule)
            or (
                (first.split is not None or first.buckets is not None)
                and first.when is None
                and not first.gates
            )
        ):
            continue  # its split first, nothing before it (a test's own flag: the usual case)
        try:
            served = _served_split(name, flag)
            reached = _reached_splits(name, flag)
        except (TypeError, AttributeError):
            continue  # a malformed flag: the compiler refuses it
        if served is None or not flag.enabled:
            continue
        if not isinstance(meta, Mapping) or status_of(meta) != "active":
            continue
        was = meta if old is None else old.experiments.get(name)
        # Judged against ``old``: not a test new in this document or not served yet
        # there (nobody was enrolled), nor one this document makes a new run.
        judged = (
            isinstance(was, Mapping)
            and has_served(was, now)
            and not (old is not None and _restarted(was, meta))
        )
        if not judged and not (standing and has_served(meta, now)):
            continue
        at, (i, split, bucketing) = child_key_path("flags", name), served
        # What ``old`` had ahead of the split: sets, each rule of ``new`` looked up once
        # (compared with each of ``old``'s, thousands of rules took tens of seconds,
        # inside the swap)
        earlier, earlier_pres = SameSet(), SameSet()
        if old is not None and judged:
            before = old.flags.get(name)
            try:
                was_split = _served_split(name, before)
            except (TypeError, AttributeError):
                was_split = None
            if isinstance(before, Flag) and was_split is not None:
                earlier = SameSet(r for _, r in _rules_ahead(name, before))
                earlier_pres = SameSet(p for _, p in _own_prerequisites(before))
        for k, pre in pres:
            target = pre if isinstance(pre, str) else pre.flag
            why: str | None
            if not judged:
                why = None  # (standing only)
            elif earlier_pres.take(pre):
                assert old is not None  # (earlier_pres is empty without it)
                if not _differs(old.flags, new.flags, target, memo):
                    why = None  # as it was: told when it went live
                else:
                    why = (f", it reads flag {target!r:.60}, which this document changes "
                           "(so do the users it takes)")  # fmt: skip
            else:
                why = "" if old is None else ", added or changed by this document"
            if why is None and not standing:
                continue
            problem = Problem(
                path=f"{at}.prerequisites[{k}]",
                message=(
                    f"A/B test {name!r} is running, and this prerequisite of its flag is "
                    f"checked ahead of its split ({at}.rules[{i}]){why or ''}: it can take "
                    f"any enrolled user for whom it does not hold (flag {target!r:.60}) out "
                    "of the test: no variant, as outside the test, their later events not "
                    "recorded (a targeting change, not refused; remove the prerequisite to "
                    "leave the test's users alone)"
                ),
                file=file,
                kind="flags",
            )  # fmt: skip
            reads = _inputs_digest([target], [], new, memo) if standing else b""
            told(problem, why, (name, run_of(meta), "prerequisite", pre, reads, ""))
        for j, rule in _rules_ahead(name, flag, reached):
            split_at = reached[bisect.bisect_right(reached, j)]  # (reached is ascending)
            if not judged:
                why = None
            elif earlier.take(rule):
                assert old is not None  # (earlier is empty without it)
                changed = _changed_inputs(rule, old, new, memo)
                if not changed:
                    why = None  # as it was: told when it went live
                else:
                    why = f", {changed}, which this document changes (so do the users it takes)"
            else:
                why = "" if old is None else ", added or changed by this document"
            if why is None and not standing:
                continue
            reach = _reach(rule, flag, split, bucketing)
            problem = Problem(
                path=f"{at}.rules[{j}]",
                message=(
                    f"A/B test {name!r} is running, and this rule of its flag comes ahead "
                    f"of its split ({at}.rules[{split_at}]){why or ''}: {reach}. Users it "
                    "takes get its answer instead of the variant the test enrolled them in "
                    "(a targeting change, not refused; put the rule after the split to "
                    "leave the test's users alone)"
                ),
                file=file,
                kind="flags",
            )  # fmt: skip
            reads = _inputs_digest(*_reads_of(rule, new, memo), new, memo) if standing else b""
            told(problem, why, (name, run_of(meta), "rule", rule, reads, reach))
    return out


def _text_bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def _rules_ahead(name: str, flag: Flag, reached: list[int] | None = None) -> list[tuple[int, Rule]]:
    """``[(index, rule)]`` of the rules of test ``name``'s ``flag`` that users meet
    before a split they reach (:func:`_reached_splits`), splits left out."""
    reached = _reached_splits(name, flag) if reached is None else reached
    if not reached:
        return []
    return [
        (j, rule)
        for j, rule in enumerate(flag.rules[: reached[-1]])
        if isinstance(rule, Rule) and rule.split is None and rule.buckets is None
    ]


def _own_prerequisites(flag: Flag) -> list[tuple[int, str | Prerequisite]]:
    """``[(index, prerequisite)]`` of ``flag``'s prerequisites other than those the
    experiment layers and the holdout derive (:func:`~cfgcore.experiments.layers.derive_flags`)."""
    out: list[tuple[int, str | Prerequisite]] = []
    for k, pre in enumerate(flag.prerequisites if isinstance(flag.prerequisites, list) else ()):
        target = pre if isinstance(pre, str) else getattr(pre, "flag", None)
        if isinstance(target, str) and not is_internal_flag(target):
            out.append((k, pre))
    return out


def _differs(
    old: Mapping[str, Any], new: Mapping[str, Any], key: str, memo: dict[Any, Any]
) -> bool:
    """Whether ``key`` of ``old`` (flags or segments) is not :func:`same` as in ``new``,
    compared once per judge (``memo``): thousands of kept rules reading one large flag
    encoded it twice each, seconds on every swap."""
    at = ("differs", id(old), id(new), key)
    found = memo.get(at)
    if found is None:
        found = memo[at] = not same(old.get(key), new.get(key))
    return bool(found)


def _reads(condition: Any, flags: dict[str, None], segments: dict[str, None]) -> None:
    """Add the flags ``condition`` names by ``prerequisite`` and the segments it uses
    (not theirs) to ``flags`` and ``segments`` (ordered sets)."""
    stack = [condition]
    while stack:
        c = stack.pop()
        if not isinstance(c, Condition):
            continue
        pre = c.prerequisite
        key = pre if isinstance(pre, str) else getattr(pre, "flag", None)
        if isinstance(key, str):
            flags.setdefault(key)
        if isinstance(c.segment, str):
            segments.setdefault(c.segment)
        stack.extend(c.all or ())
        stack.extend(c.any or ())
        stack.append(c.not_)


def _reads_of(
    rule: Rule, new: Snapshot, memo: dict[Any, Any]
) -> tuple[dict[str, None], dict[str, None]]:
    """The flags (named by a ``prerequisite``) and segments ``rule``'s condition reads in
    document ``new``, the segments' own included (ordered sets, not to be changed).
    ``memo``: each segment's reads, walked once per judge, and those of the rules that
    read the same directly."""
    flags: dict[str, None] = {}
    segments: dict[str, None] = {}
    _reads(rule.when, flags, segments)
    if not segments:
        return flags, segments
    walked = ("walked", id(new), tuple(flags), tuple(segments))
    if walked in memo:
        return cast("tuple[dict[str, None], dict[str, None]]", memo[walked])
    memo[walked] = (flags, segments)
    todo = list(segments)
    while todo:
        name = todo.pop()
        at = ("reads", id(new), name)
        found = memo.get(at)
        if found is None:
            found = memo[at] = ({}, {})
            _reads(new.segments.get(name), *found)
        flags.update(found[0])
        for s in found[1]:
            if s not in segments:
                segments[s] = None
                todo.append(s)
    return flags, segments


def _inputs_digest(flags: Any, segments: Any, new: Snapshot, memo: dict[Any, Any]) -> bytes:
    """A digest of the flags and segments named, as document ``new`` holds them: each
    encoded once per judge (``memo``), and each set of them digested once."""
    at = ("digest", id(new), tuple(flags), tuple(segments))
    found = memo.get(at)
    if found is None:
        digest = hashlib.blake2b(digest_size=16)
        for kind, names, held in (("flag", flags, new.flags), ("segment", segments, new.segments)):
            for name in names:
                one = ("encoded", id(new), kind, name)
                data = memo.get(one)
                if data is None:
                    value = held.get(name)
                    data = memo[one] = same_key(value) or _text_bytes(repr(value))
                digest.update(_text_bytes(f"{kind} {name!r}\0"))
                digest.update(data)
                digest.update(b"\0")
        found = memo[at] = digest.digest()
    return bytes(found)


def _changed_inputs(
    rule: Rule, old: Snapshot, new: Snapshot, memo: dict[Any, Any] | None = None
) -> str:
    """What ``rule``'s condition reads that differs between ``old`` and ``new`` (a
    flag named by a ``prerequisite``, a segment it uses, theirs included), as words;
    ``""`` when nothing does. ``memo``: what the judge found already (each segment's
    reads, each comparison), so that thousands of kept rules using the same segments
    and flags walk and compare them once."""
    memo = {} if memo is None else memo
    direct: dict[str, None] = {}
    direct_segments: dict[str, None] = {}
    _reads(rule.when, direct, direct_segments)
    # (rules reading the same flags and segments directly read the same in all)
    told = ("told", id(old), id(new), tuple(direct), tuple(direct_segments))
    if told in memo:
        return str(memo[told])
    flags, segments = _reads_of(rule, new, memo)
    what = [f"flag {k!r:.60}" for k in flags if _differs(old.flags, new.flags, k, memo)]
    what += [
        f"segment {s!r:.60}" for s in segments if _differs(old.segments, new.segments, s, memo)
    ]
    memo[told] = f"its condition reads {' and '.join(what)}" if what else ""
    return str(memo[told])


def _served_as(variant: Any) -> str:
    if variant == NO_VARIANT:
        return "no variant (out of the test)"
    return f"{variant!r:.60}"


def _reach(rule: Rule, flag: Flag, split: Mapping[str, Any], bucketing: tuple[Any, ...]) -> str:
    """What share of a test's traffic ``rule`` (ahead of its split) can take, in words:
    a percentage when it can be computed (a rollout; exact, with the users it moves,
    when bucketed as the split is), else "any enrolled user matching its condition"."""
    conditional = rule.when is not None or bool(rule.gates)
    matching = " (those of them matching its condition)" if conditional else ""
    if rule.buckets is not None and rule.hash is not None:
        try:
            space = int(rule.hash.space)
            width = sum(int(w) for v, w in rule.buckets if v is not None)
            share = min(max(width, 0), space) / space
        except (TypeError, ValueError, ZeroDivisionError):
            return "it can take any enrolled user matching its condition"
        return (
            f"it can take about {share:.3%} of the test's traffic{matching} (its own "
            "buckets, hashed otherwise than the split)"
        )
    serve = _served_as(rule.serve)
    if rule.rollout is None:
        if not conditional:
            return (
                f"it takes every enrolled user that reaches it (no condition, no rollout), "
                f"serving them {serve}"
            )
        return f"it can take any enrolled user matching its condition, serving them {serve}"
    try:
        cut = round(float(rule.rollout) * (BUCKETS // 100))
    except (TypeError, ValueError, OverflowError):
        return f"it can take any enrolled user matching its condition, serving them {serve}"
    cut = min(max(cut, 0), BUCKETS)
    take = cut / BUCKETS
    by = rule.bucket_by or flag.bucket_by or list(DEFAULT_BUCKET_BY)
    _salt, split_by, _scheme, split_hash, split_buckets = bucketing
    same_buckets = split_hash is None and split_buckets is None
    if tuple([by] if isinstance(by, str) else by) != split_by or not same_buckets:
        return (
            f"it can take about {take:.3%} of the test's traffic{matching} (its rollout, "
            f"bucketed otherwise than the split), serving them {serve}"
        )
    # Bucketed as the split is (the flag's salt and hashing): the rollout takes the
    # buckets below its cut, which the split gave to the variants it covers there.
    moved, pos = 0, 0
    try:
        ranges = _ranges(split)
    except (TypeError, ValueError):
        ranges = []
    for end, variant in ranges:
        top = min(end, cut)
        if top > pos and variant != rule.serve:
            moved += top - pos
        pos = max(pos, end)
        if pos >= cut:
            break
    upto = "up to " if conditional else ""
    return (
        f"it can take {upto}{take:.3%} of the test's traffic{matching} (its rollout, "
        f"bucketed as the split is: the buckets below {take:.3%}), serving them {serve}: "
        f"{upto}{moved / BUCKETS:.3%} of its users would get {serve} instead of their variant"
    )


def has_served(meta: Mapping[str, Any], now: float) -> bool:
    """Whether a stored test has served its variants: its window opened while it was
    active (a test stopped before it opened, or created and not started, has not), or
    its record says it did (``served_at``: kept when a test that had served is
    replaced, so that moving its start date later does not make it one that never
    served, whose split may change; a later ``since``, a new run, sets it aside)."""
    served = _number(meta.get("served_at"))
    if served is not None:
        since = run_of(meta)
        if since is None or since <= served:
            return True
    try:
        start = _utc(meta["start_date"], "start_date", "", stored=True).timestamp()
    except (KeyError, ConfigError):
        return True  # unknown: assume its users have variants
    if meta.get("status", "active") == "stopped":
        if meta.get("stopped_reason") == NOT_STARTED:
            return False
        stopped = meta.get("stopped_at")
        return not isinstance(stopped, int | float) or stopped > start
    return start <= now


def _number(value: Any) -> float | None:
    """``value`` as a float when it is a finite number (not a bool), else None."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            if math.isfinite(value):
                return float(value)
        except OverflowError:  # an int past a float (JSON and MessagePack carry one)
            pass
    return None


def _served_at(stored: Any, now: float) -> float | None:
    """When the stored test ``stored`` began serving its variants, if it has: its
    ``served_at``, else its start."""
    if not isinstance(stored, Mapping) or not has_served(stored, now):
        return None
    served = _number(stored.get("served_at"))
    if served is None:
        try:
            served = _utc(stored["start_date"], "start_date", "", stored=True).timestamp()
        except (KeyError, ConfigError):
            served = now
    # A new run (a later since) began serving at its since, not at the test's start:
    # an earlier served_at is set aside by has_served, and the run would look unserved.
    since = run_of(stored)
    return served if since is None else max(served, since)


def _start(meta: Mapping[str, Any]) -> float | None:
    try:
        return _utc(meta["start_date"], "start_date", "", stored=True).timestamp()
    except (KeyError, ConfigError):
        return None


def _carry_served(record: dict[str, Any], stored: Any, now: float) -> dict[str, Any]:
    """``record`` replacing ``stored``, remembering that ``stored`` served its variants
    (``served_at``): assignment stays sticky whatever the new start date says."""
    served = _served_at(stored, now)
    if served is None:
        return record
    start = _start(record)
    if "served_at" not in stored and start is not None and start <= served:
        # Its own dates say it has served, on every host whatever its clock: the record
        # stays as it was. (Judged against when it began serving, not this host's now:
        # a start of "now" here is the future on a host whose clock is behind, which
        # then refused the document as making a served test look unserved.)
        return record
    return {**record, "served_at": served}


def record_cutoffs(experiments: Mapping[str, Any], tests: Any = None) -> dict[str, float]:
    """``{test: since}`` for the tests (all, or those named in ``tests``) created again
    under the name of a deleted one: their records in the shared logs with a time up to
    ``since`` are the deleted test's, not theirs, and are left out of every analysis."""
    out: dict[str, float] = {}
    for name, meta in experiments.items():
        if tests is not None and name not in tests:
            continue
        since = run_of(meta)
        if since is not None:
            out[name] = since
    return out


def record_runs(experiments: Mapping[str, Any], tests: Any = None) -> dict[str, float | None]:
    """``{test: run}`` for the tests (all, or those named in ``tests``): which run of
    each a record of the shared logs must be tagged with to be its own (:func:`run_of`:
    its ``since`` as the flag document holds it, None for a test never created again).
    The writers tag every record with the run of the document they served it from
    (``run`` in the log line), and readers attribute a tagged record by that tag alone
    (:func:`cfgcore.experiments.exposures.in_run`): a host still serving the earlier
    run, whatever its clock says, cannot add records to this one. Records without a tag
    (written before tags, or by an older version) fall back to :func:`record_cutoffs`."""
    out: dict[str, float | None] = {}
    for name, meta in experiments.items():
        if (tests is None or name in tests) and isinstance(meta, Mapping):
            out[name] = run_of(meta)
    return out


def _incarnation(name: str, stored: Any, metadata: Mapping[str, Any]) -> float | None:
    """The ``since`` a test created (or replaced) as ``name`` keeps: the stored test's,
    else, for a name that a deleted test had, the time it was deleted."""
    if isinstance(stored, Mapping):
        return since_time(stored.get("since"))
    retired = metadata.get(RETIRED)
    return since_time(retired.get(name)) if isinstance(retired, Mapping) else None


# What retired_runs told already: (where, test, retirement, run as written). A document
# is derived several times as it goes live, and again at every reload of the same
# text; each such test is told once. Forgotten whole past _RUNS_TOLD_MAX entries.
_RUNS_TOLD: set[tuple[Any, ...]] = set()
_RUNS_TOLD_MAX = 1024
_RUNS_TOLD_EACH = 20  # named one by one in one derivation; the rest counted in one line


def retired_runs(snapshot: Snapshot, origin: str | None = None) -> Snapshot:
    """``snapshot`` with every A/B test whose name its metadata records as retired at
    R (:data:`RETIRED`), and whose ``since`` is missing (or null) or earlier than R,
    given ``since: R``: a test created again by hand (a file edit,
    another tool's write to the store) under the name of a deleted or dropped one is
    the run starting then, as one created again through the experiment API is
    (:func:`_incarnation`), and the earlier run's records in the shared logs are not
    its own. Every process derives the same run from the document alone, with no
    write; an API write of the document stores it. Each such test is logged once at
    WARNING, naming ``origin`` and the key path. A retirement that is not a time is
    passed over, as every reader of it does (and replaced by the next retirement of
    the name). A ``since`` that is no time (:func:`epoch_time`) stays as written: the
    document is refused naming it (:func:`record_problems`), and a write through
    cfgcore on it is refused too, rather than written live with the retirement in its
    place (and whatever else that edit changed, judged against nothing). ``snapshot``
    itself (the same object) when there is nothing to derive."""
    retired = snapshot.metadata.get(RETIRED)
    if not isinstance(retired, Mapping) or not retired or not snapshot.experiments:
        return snapshot
    runs: dict[str, Any] = {}
    named = untold = 0
    for name, meta in snapshot.experiments.items():
        if not isinstance(meta, Mapping) or name not in retired:
            continue
        written = meta.get("since")
        when, run = since_time(retired[name]), since_time(written)
        if when is None or (written is not None and (run is None or run >= when)):
            continue
        runs[name] = {**meta, "since": when}
        told = (origin, name, when, run)
        if told in _RUNS_TOLD:
            continue
        if len(_RUNS_TOLD) >= _RUNS_TOLD_MAX:
            _RUNS_TOLD.clear()
        _RUNS_TOLD.add(told)
        if named >= _RUNS_TOLD_EACH:
            untold += 1  # (a document of many such tests: a few named, the rest counted)
            continue
        named += 1
        written = "is missing" if "since" not in meta else f"is {describe(written)}"
        log.warning(
            "%s: %s: A/B test %s is under the name of a test retired at %r (metadata.%s) "
            "and its since %s: served as a new run from then, the earlier run's records "
            "left out of its analysis; the document should set since: %r",
            origin or "flag document", format_key_path(("experiments", name, "since")),
            printable_name(name), when, RETIRED, written, when,
        )  # fmt: skip
    if untold:
        log.warning(
            "%s: %d more A/B tests are under the names of retired tests without a later "
            "since (metadata.%s): each served as a new run from its retirement",
            origin or "flag document", untold, RETIRED,
        )  # fmt: skip
    if not runs:
        return snapshot
    return msgspec.structs.replace(snapshot, experiments={**snapshot.experiments, **runs})


def _retired(metadata: Mapping[str, Any], name: str, meta: Any) -> dict[str, Any]:
    """``metadata`` recording that test ``name`` (its record ``meta``) was retired now:
    wall-clock time, as the request path stamps the records (``time.time()``), and after
    the run it ends (its ``since``), so that a test created again is a later run."""
    retired = metadata.get(RETIRED)
    retired = dict(retired) if isinstance(retired, Mapping) else {}
    now, run = time.time(), run_of(meta)
    # (run_of: a time before the year 10000, so the moment after it is one too)
    retired[name] = now if run is None or run < now else math.nextafter(run, math.inf)
    return {**metadata, RETIRED: retired}


def _retirement_recorded(metadata: Mapping[str, Any], name: str, meta: Any) -> bool:
    """Whether ``metadata`` records the retirement of the run of test ``name`` whose
    record is ``meta``: a retirement after that run began (any, for a first run)."""
    retired = metadata.get(RETIRED)
    when = epoch_time(retired.get(name)) if isinstance(retired, Mapping) else None
    run = run_of(meta)
    return when is not None and (run is None or when > run)


def retire_dropped(old: Snapshot, new: Snapshot) -> Snapshot:
    """``new`` (a flag document replacing ``old``) recording the retirement of every A/B
    test ``old`` holds that ``new`` does not, as :meth:`ABTests.delete` records it:
    however the test went (a hand edit, ``cfgcore import --force`` or ``cfgcore publish
    --flags`` of a document without it, another tool's write), the shared logs keep
    its records, and a test created again under its name must not count them. The
    retirements ``old`` records and ``new`` lacks (a document written whole) are kept.
    ``new`` itself (the same object) when there is nothing to record, so that every
    process of a fleet seeing the same drop records it once: judged on the newest
    stored document, the first one's record is found there by the others.

    A test taken out and put back in one write (the same run: same ``since``) is no
    retirement. A process that starts on a document without the test has nothing to
    compare with, and records nothing."""
    metadata: Mapping[str, Any] = new.metadata
    was = old.metadata.get(RETIRED)
    if isinstance(was, Mapping):
        kept = metadata.get(RETIRED)
        kept = kept if isinstance(kept, Mapping) else {}
        carried = {}
        for name, when in was.items():
            earlier, now = epoch_time(when), epoch_time(kept.get(name))
            if earlier is not None and (now is None or now < earlier):
                carried[name] = when
        if carried:
            metadata = {**metadata, RETIRED: {**kept, **carried}}
    for name, meta in old.experiments.items():
        if name in new.experiments or not isinstance(meta, Mapping):
            continue
        if not _retirement_recorded(metadata, name, meta):
            metadata = _retired(metadata, name, meta)
    if metadata is new.metadata:
        return new
    return msgspec.structs.replace(new, metadata=dict(metadata))


def _stopped(
    meta: dict[str, Any],
    flag: Flag,
    reason: str,
    now: float,
    *,
    guardrail: bool = False,
    after: float | None = None,
) -> tuple[dict[str, Any], Flag]:
    """A test's record and flag stopped: its control served to everyone (its
    targeting and window kept), status ``stopped`` with ``reason`` and the time.
    ``guardrail``: a guardrail stopped it (:data:`GUARDRAIL_STOPPED_AT`), stamped after
    ``after`` (the end of its last stop the document records: :func:`recorded_end`)."""
    control = stored_control(meta)
    when = flag.rules[0].when if flag.rules else None
    record = {**meta, "status": "stopped", "stopped_reason": reason, "stopped_at": now}
    if guardrail:
        # After the resume it ends, whatever this host's clock says (behind the
        # resuming host's): a document from before this stop, resumed, carries that
        # resume's time, and must read as older than the stop to be refused.
        # The same for an end the document records (a deletion's): an end no
        # earlier than a stop ends it, so this stop must come after it.
        resumed = _number(record.pop(RESUMED_AT, None))
        floor = max((t for t in (resumed, after) if t is not None), default=None)
        record[GUARDRAIL_STOPPED_AT] = (
            now if floor is None or floor < now else math.nextafter(floor, math.inf)
        )
    return record, msgspec.structs.replace(flag, rules=[Rule(when=when, serve=control)])


def changed_fields(
    name: str, was: tuple[Mapping[str, Any], Flag], now: tuple[Mapping[str, Any], Flag]
) -> list[str]:
    """The :class:`ABTestConfiguration` fields (in their order) in which test ``name``,
    as record and flag ``now``, differs from ``was``: compared as stored (``same``: 1
    is not 1.0), instants as instants."""

    def test(record: Mapping[str, Any], flag: Flag) -> ABTestConfiguration:
        configs = {k: v for k, v in (flag.variants or {}).items() if k != NO_VARIANT}
        return ABTestConfiguration.from_metadata(name, record, configs)

    a, b = test(*was), test(*now)
    out = []
    for f in fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, datetime) and isinstance(y, datetime):
            if x != y:
                out.append(f.name)
        elif not same(x, y):
            out.append(f.name)
    return out


#: The record keys :meth:`ABTestConfiguration.to_metadata` writes from the test's fields,
#: in the order messages name them. A record's other keys are its history (status and
#: stop, ``since``, ``served_at``, guardrail stamps) and where its slice of a layer is
#: (``layer_offset``): :meth:`ABTests.update` keeps them.
TEST_FIELDS = (
    "description",
    "start_date",
    "end_date",
    "traffic_split",
    "control",
    "success_metrics",
    "guardrail_metrics",
    "metric_types",
    "layer",
    "layer_percentage",
    "targeting",
)

#: The fields :meth:`ABTests.update` takes (every field but the test's name).
UPDATABLE = (*TEST_FIELDS, "configurations")

#: The fields :meth:`ABTests.update` empties with their empty value (the value a test
#: created without them holds), shown in its refusal of None.
EMPTY_VALUES = {"success_metrics": "[]", "guardrail_metrics": "{}", "metric_types": "{}"}


def _update_fields(name: str, changes: Any, what: str) -> dict[str, Any]:
    """``{field: value}`` of ``changes`` (``what``: the argument it came from) for
    :meth:`ABTests.update`, each field one it changes; ConfigError naming the first
    that is not, or a None where the field's empty value is meant."""
    if not issubclass(type(changes), Mapping):
        raise ConfigError(f"{name}: {what}: expected a mapping of field to value")
    # Read once, and judged as read: a mapping whose keys differ between two reads
    # would pass the check with one set of fields and write another (test_name: the
    # salt of every user's bucket). Each field by the text its key holds: a str
    # subclass's own __eq__ and __hash__ could make "test_name" pass as another.
    try:
        pairs = list(dict(changes).items())
    except Exception as exc:  # the caller's mapping raised while read
        raise ConfigError(f"{name}: {what}: could not be read ({type(exc).__name__})") from None
    given: dict[str, Any] = {}
    for key, value in pairs:
        field_name = exact_name(key)
        if field_name is None or field_name not in UPDATABLE:
            shown = repr(field_name) if field_name is not None else f"<{type(key).__name__}>"
            raise ConfigError(
                f"{name}: {shown:.60}: not a field update changes (known: {', '.join(UPDATABLE)})"
            )
        given[field_name] = value
    for field_name, empty in EMPTY_VALUES.items():
        if field_name in given and given[field_name] is None:
            # (targeting takes None: it is that field's "none")
            raise ConfigError(
                f"{name}: {field_name}: null is no value here; {empty} removes them all"
            )
    return given


def _instant(value: Any) -> float | None:
    try:
        return _utc(value, "", "", stored=True).timestamp()
    except ConfigError:
        return None


def _field_value(meta: Mapping[str, Any], key: str) -> Any:
    """A record's ``key`` as compared between two tests: absent and empty alike, the
    control as stopping serves it, dates as instants, percentages as floats."""
    value = meta.get(key)
    if key == "control":
        return stored_control(meta)
    if key in ("start_date", "end_date"):
        return _instant(value) if value is not None else None
    if key == "traffic_split" and isinstance(value, Mapping):
        try:
            return [(k, float(v)) for k, v in value.items()]
        except (TypeError, ValueError, OverflowError):
            return value
    if key == "layer_percentage":
        if not meta.get("layer"):
            return None  # (a share without a layer is refused: never stored)
        try:
            return float(value if value is not None else 100.0)
        except (TypeError, ValueError, OverflowError):
            return value
    return None if value in ("", [], {}) else value


def replaced_fields(
    stored: Mapping[str, Any],
    variants: Mapping[str, Any],
    meta: Mapping[str, Any],
    configurations: Mapping[str, Any],
) -> tuple[list[str], list[str]]:
    """``(dropped, changed)``: the fields of the stored test (record ``stored``, flag
    variants ``variants``) that replacing it with the test of record ``meta`` and
    ``configurations`` would drop (set there, not here) or change, by name
    (``configurations.<variant>`` for each variant's configuration). Both empty: the
    same test. Compared as stored (``1``, ``1.0`` and ``True`` differ).

    >>> old = {"traffic_split": {"a": 50.0, "b": 50.0}, "targeting": {"attr": "x", "eq": 1}}
    >>> replaced_fields(old, {}, {"traffic_split": {"a": 50, "b": 50}}, {})
    (['targeting'], [])
    """
    dropped: list[str] = []
    changed: list[str] = []
    for key in TEST_FIELDS:
        old, new = _field_value(stored, key), _field_value(meta, key)
        if same(_unordered(old), _unordered(new)):
            continue
        (dropped if new is None else changed).append(key)
    for variant, old in variants.items():
        if variant == NO_VARIANT:
            continue
        where = child_key_path("configurations", str(variant))
        if variant not in configurations:
            dropped.append(where)
        elif not same(_unordered(old), _unordered(configurations[variant])):
            changed.append(where)
    return dropped, changed


def _among(key: Any, keys: list[Any]) -> bool:
    """Whether ``key`` is one of ``keys``: the same object, or an equal one of its type
    (1.5 given twice is two objects); a key whose equality raises is no match."""
    for other in keys:
        if other is key:
            return True
        try:
            if type(other) is type(key) and other == key:
                return True
        except Exception:  # noqa: BLE001 - a hostile key compares as no match
            continue
    return False


def _unordered(value: Any) -> Any:
    """``value`` with the keys of every mapping in it sorted, for comparing two tests:
    a configuration, a targeting condition or ``metric_types`` written in another key
    order is the same (what is served or judged does not depend on it). The traffic
    split is compared as a list (:func:`_field_value`): its order lays out the buckets."""
    if isinstance(value, Mapping):
        items = sorted(((str(k), _unordered(v)) for k, v in value.items()), key=lambda kv: kv[0])
        return {"mapping": items}  # (never equal to a list holding the same pairs)
    if isinstance(value, list | tuple):
        return [_unordered(v) for v in value]
    return value


def _layer_places(
    experiments: Mapping[str, Any], name: str, layer: Any
) -> tuple[list[tuple[float, float]], float | None]:
    """``(taken, own)``: the ``(offset, percentage)`` slices the other tests of
    ``layer`` own, and the offset of test ``name``'s slice when it is in ``layer``,
    as :func:`layer_slices` lays them out: a record written without ``layer_offset``
    owns the slice it is packed into, not one at 0 %."""
    try:
        slices = layer_slices(dict(experiments))
    except (TypeError, ValueError):  # a malformed record: the compiler refuses it
        slices = {}
    taken = [(o, p) for k, (lay, o, p) in slices.items() if k != name and lay == layer]
    own = slices.get(name)
    return taken, (own[1] if own is not None and own[0] == layer else None)


def _listed(names: list[str]) -> str:
    return ", ".join(names)


def _free_slice(
    name: str, ab_test: ABTestConfiguration, snap: Snapshot, file: str | None
) -> float | None:
    """The offset of a free slice of ``ab_test``'s layer for test ``name`` on ``snap``
    (the newest stored document, under the store's lock: create and update choose
    there), its current slice preferred; None without a layer. ConfigError when the
    layer has no such slice."""
    if not ab_test.layer:
        return None
    taken, prefer = _layer_places(snap.experiments, name, ab_test.layer)
    offset = allocate_layer_slice(taken, float(ab_test.layer_percentage), prefer)
    if offset is None:
        free = 100.0 - sum(p for _, p in taken)
        raise ConfigError(
            f"{name}: layer_percentage: layer {ab_test.layer!r} has no free slice of "
            f"{ab_test.layer_percentage:g}% in the stored flags ({free:g}% unassigned "
            "in total; other tests may have taken it since this process read them)",
            file=file,
        )
    return offset


class _Unchanged(Exception):
    """A change that would write the document as it is: nothing to write."""


#: What :meth:`ABTests.update` says (after the test's name) when the stored document it
#: judges the update on holds no such test.
NO_SUCH_TEST = "no such A/B test"


class _TestGone(Exception):
    """The newest stored document, judged under the store's lock, holds no such A/B
    test (whatever this process serves: another process may have deleted it)."""


class OtherRun(Exception):
    """The stored A/B test is another run (another ``since``) than the one a stop was
    meant for: created again since (:meth:`ABTests.stop` with ``run``)."""


#: :meth:`ABTests.stop`'s ``run`` when any run of the test may be stopped.
ANY_RUN: Any = object()


def run_of(meta: Any) -> float | None:
    """Which run of its test the record ``meta`` is: its ``since`` (None: the first)."""
    return since_time(meta.get("since")) if isinstance(meta, Mapping) else None


def secret_references(tree: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], str]]:
    """``[(key path, text)]`` of every string in ``tree`` that would be resolved as a
    secret when served (``ENC[...]``, ``${file:...}``)."""
    if isinstance(tree, Mapping):
        return [r for k, v in tree.items() for r in secret_references(v, (*path, str(k)))]
    if isinstance(tree, list | tuple):
        return [r for i, v in enumerate(tree) for r in secret_references(v, (*path, str(i)))]
    return [(path, tree)] if isinstance(tree, str) and needs_resolving(tree) else []


def _at(tree: Any, path: tuple[str, ...]) -> Any:
    """The value at ``path`` in ``tree`` (a stored variant), or None."""
    for key in path:
        if isinstance(tree, Mapping):
            tree = tree.get(key)
        elif isinstance(tree, list | tuple) and key.isdigit() and int(key) < len(tree):
            tree = tree[int(key)]
        else:
            return None
    return tree


def is_boolean(flag: Flag) -> bool:
    """A feature flag (on/off), as opposed to a multivariate flag or a test."""
    return flag.variants is None or all(v is True or v is False for v in flag.variants.values())


class ABTests:
    """The A/B-test operations of one :class:`DynamicConfigurationManager` (which exposes
    them under the seed's names: ``create_ab_test``, ``get_ab_test_variant``...).

    Internal: these methods do not check the access policy; the manager's methods,
    which do, are the API (the manager keeps this object private)."""

    def __init__(self, manager: DynamicConfigurationManager) -> None:
        self.manager = manager

    def create(
        self, ab_test: ABTestConfiguration, *, start: bool = True, replace: bool = True
    ) -> bool:
        """Create (or replace) an A/B test; False if it is invalid, with the reason in
        :attr:`last_error` (and :attr:`last_problems`). Creating a test identical to the
        live one is a no-op that returns True. ``start=False`` writes it stopped
        (:data:`NOT_STARTED`, serving its control) in the same change, so no process
        serves its variants meanwhile; a test that has served its variants stays one
        that has (stopped, not "not started").

        ``replace=False``: a test of that name that is stored is left as it is. The same
        test (every field, :func:`replaced_fields`) is a no-op that returns True
        whatever ``start`` says, unless ``start`` would start a stopped one; any other
        is refused naming the fields it would drop or change (judged on the newest
        stored document, under the store's lock)."""
        self.manager.last_error, self.manager.last_problems = None, []
        if issubclass(type(ab_test), Mapping):  # by its type: its __class__ may raise
            raw = cast("Mapping[str, Any]", ab_test)
            try:
                ab_test = ABTestConfiguration(**raw)
            except TypeError as exc:
                return self._reject([f"{raw.get('test_name')!r}: {exc}"])
        if not issubclass(type(ab_test), ABTestConfiguration):
            return self._reject([f"expected an ABTestConfiguration, got {type(ab_test).__name__}"])
        ab_test = by_value(ab_test)
        problems = ab_test.validate()
        name = ab_test.test_name
        offset: float | None = None
        secrets: list[tuple[tuple[str, ...], str]] = []
        if not problems:
            existing = self.manager._source.flags.get(name)
            if existing is not None and name not in self.manager._tests and is_boolean(existing):
                problems.append(f"{name}: test_name: a feature flag of that name exists")
            secrets = secret_references(ab_test.configurations)
            if ab_test.layer:
                taken, prefer = _layer_places(self.manager._tests, name, ab_test.layer)
                offset = allocate_layer_slice(taken, float(ab_test.layer_percentage), prefer)
                if offset is None:
                    free = 100.0 - sum(p for _, p in taken)
                    problems.append(
                        f"{name}: layer_percentage: layer {ab_test.layer!r} has no free slice of "
                        f"{ab_test.layer_percentage:g}% ({free:g}% unassigned in total)"
                    )
        if not problems and not replace:
            doc = self.manager._live.document
            kept = doc.snapshot.flags.get(name) if doc is not None else None
            try:
                problem = self._conflict(name, self.manager._tests.get(name), kept, ab_test, start)
            except _Unchanged:
                return True
            if problem:
                problems.append(problem)
        if not problems:
            stored = self.manager._tests.get(name)
            where = _layer_places(self.manager._tests, name, (stored or {}).get("layer"))[1]
            problem = self._moves_users(name, stored, ab_test) or self._moves_slice(
                name, stored, ab_test, offset, where
            )
            if problem:
                problems.append(problem)
        if problems:
            return self._reject(problems)
        meta = ab_test.to_metadata()
        if offset is not None:
            meta["layer_offset"] = offset
        flag = ab_test.to_flag()
        live = self.manager._tests.get(name)
        since = _incarnation(name, live, self.manager._source.metadata)
        live_meta = _carry_served(
            meta if since is None else {**meta, "since": since}, live, self.manager._now()
        )
        if (
            start
            and same(self.manager._tests.get(name), live_meta)
            and self._same_variants(name, flag)
        ):
            return True

        # A resume when this process serves the test stopped by its guardrail.
        resume = start and guardrail_stop(self.manager._tests.get(name)) is not None

        def change(snap: Snapshot) -> Snapshot:
            # Judged on the newest stored document, under the store's lock.
            self._may_replace(name, snap)
            stored = snap.experiments.get(name)
            if not replace:
                problem = self._conflict(name, stored, snap.flags.get(name), ab_test, start)
                if problem:
                    raise ConfigError(problem, file=self._file)
            problem = self._moves_users(name, stored if isinstance(stored, dict) else None,
                                        ab_test)  # fmt: skip
            if problem:
                raise ConfigError(problem, file=self._file)
            self._refuse_new_secrets(name, secrets, snap)
            chosen = self._slice_on(name, stored, ab_test, snap)
            # A name a deleted test had: the shared logs still hold that test's records
            # under it, which every analysis of this one leaves out (record_cutoffs).
            since = _incarnation(name, stored, snap.metadata)
            record = meta if since is None else {**meta, "since": since}
            if chosen is not None:
                record = {**record, "layer_offset": chosen}
            now = self.manager._now()
            # A test that has served its variants stays one that has, whatever its new
            # start date: postponing it made its split free to change (moving users).
            record = _carry_served(record, stored, now)
            served = flag
            held = guardrail_stop(stored)
            if not start:
                was_served = isinstance(stored, dict) and has_served(stored, now)
                reason = "stopped" if was_served else NOT_STARTED
                record, served = _stopped(record, flag, reason, now)
                if held is not None:  # still stopped: the guardrail's stop stays in force
                    record[GUARDRAIL_STOPPED_AT] = held
            elif held is not None:
                if not resume:
                    # Stopped by a guardrail (another process's) since this process
                    # last read the test: this caller replaces a test it believes
                    # running, it did not ask to resume a stopped one (nor would the
                    # audit log say resume_ab_test).
                    why = stored.get("stopped_reason") if isinstance(stored, dict) else None
                    raise ConfigError([Problem(
                        path=format_key_path(("experiments", name, "status")),
                        message=f"A/B test {name!r} {GUARDRAIL_HELD} since this process "
                        f"last read it ({why}); resume it "
                        f"explicitly, knowing the stop: cfgcore experiment start {name} "
                        "(audited), or create_ab_test again once this process serves "
                        "the stop", file=self._file, kind="flags",
                    )])  # fmt: skip
                # The explicit resume of a test a guardrail stopped (audited as
                # resume_ab_test): other processes serve it again on seeing this. Made
                # on the document that holds the stop, so it comes after it whatever
                # this host's clock says (stepped back, or behind the host that
                # stopped it): at its time, or later, or every other process refused
                # the resumed document as undoing the stop, and wrote the stop back.
                record = {**record, RESUMED_AT: max(now, held)}
                # Recorded in the document too: a later replacement of the test keeps
                # no RESUMED_AT, and the end must outlive the fleet register's entry.
                metadata = _with_end(snap.metadata, name, record[RESUMED_AT])
                return msgspec.structs.replace(
                    snap,
                    flags={**snap.flags, name: served},
                    experiments={**snap.experiments, name: record},
                    metadata=metadata,
                )
            return msgspec.structs.replace(
                snap,
                flags={**snap.flags, name: served},
                experiments={**snap.experiments, name: record},
            )

        try:
            written = self.manager._mutate(change, "resume_ab_test" if resume else "create_ab_test")
        except _Unchanged:
            return True  # (replace=False: the stored test is this one)
        except ConfigError as exc:
            return self._reject(list(exc.problems))
        record = written.experiments.get(name)
        if start and isinstance(record, dict) and record.get("status") == "stopped":
            # Written, but stopped: the fleet's stop register holds the test stopped
            # (LiveFlags.update -> stops.hold_fleet_stops). Not what the caller asked.
            return self._written_stopped(name, record)
        if resume:
            log.warning(
                "A/B test %s resumed after its guardrail stop (by %s): its variants are "
                "served again", printable_name(name), printable_name(current_actor() or "unknown"),
            )  # fmt: skip
        # The users already logged stay logged: a replacement moves none of them (see
        # _moves_users), and a new test under a deleted one's name starts afresh in
        # every process that sees it (DynamicConfigurationManager._install_source).
        return True

    def update(
        self,
        test_name: str,
        changes: Mapping[str, Any],
        *,
        derive: Callable[[ABTestConfiguration], Mapping[str, Any]] | None = None,
    ) -> bool:
        """Change the fields ``changes`` names (:data:`UPDATABLE`) of the stored test
        ``test_name`` and keep everything else: its other fields, and its history: a
        test running, not started or stopped (by hand or by its guardrail) stays so,
        with its stop's reason and times, its run (``since``), ``served_at`` and its
        slice of its layer where the slice can stay. ``configurations`` replaces the
        configurations of the variants it names; a variant the new ``traffic_split``
        drops loses its configuration. A field's empty value removes it
        (``success_metrics`` ``[]``, ``guardrail_metrics`` and ``metric_types`` ``{}``,
        ``targeting`` None; None for the three others is refused, naming the empty
        value). Judged as ``create`` judges a replacement (the
        fields validated, no enrolled user moved, no new secret reference), on the
        newest stored document under the store's lock. ``derive``: the changes that
        depend on the test (see :meth:`DynamicConfigurationManager.update_ab_test`),
        called there with the stored test; what it returns is checked as ``changes``
        is and made over them. False with the reason in :attr:`last_error` for an
        unknown test, an unknown field or a refused change; True when written, or when
        nothing would change (nothing written)."""
        self.manager.last_error, self.manager.last_problems = None, []
        name = exact_name(test_name)
        if name is None:
            return self._reject([f"{test_name!r:.60}: not a test name"])
        try:
            given = _update_fields(name, changes, "changes")
        except ConfigError as exc:
            return self._reject(list(exc.problems))

        changed: list[str] = []

        def change(snap: Snapshot) -> Snapshot:
            stored = snap.experiments.get(name)
            flag = snap.flags.get(name)
            if not isinstance(stored, Mapping) or flag is None or not flag.variants:
                raise _TestGone
            record, new_flag = self._updated(name, stored, flag, given, snap, derive)
            if same(record, stored) and same(new_flag, flag):
                raise _Unchanged
            # What this change makes of the stored test (the document it applies to,
            # which this process may not serve: a newer one not read yet, one refused).
            changed[:] = changed_fields(name, (stored, flag), (record, new_flag))
            return msgspec.structs.replace(
                snap,
                flags={**snap.flags, name: new_flag},
                experiments={**snap.experiments, name: record},
            )

        self.manager.last_changed = ()
        try:
            self.manager._mutate(change, "update_ab_test")
        except _Unchanged:
            return True
        except _TestGone:
            return self._reject([f"{name}: {NO_SUCH_TEST}"])
        except ConfigError as exc:
            return self._reject(list(exc.problems))
        self.manager.last_changed = tuple(changed)
        return True

    def _updated(
        self,
        name: str,
        stored: Mapping[str, Any],
        flag: Flag,
        changes: dict[str, Any],
        snap: Snapshot,
        derive: Callable[[ABTestConfiguration], Mapping[str, Any]] | None = None,
    ) -> tuple[dict[str, Any], Flag]:
        """The record and flag of the stored test ``name`` with ``changes`` made, and
        what ``derive`` makes of the stored test over them (see :meth:`update`);
        ConfigError naming each problem."""
        file = self._file
        check_record(name, stored, file)
        configs = {k: v for k, v in flag.variants.items() if k != NO_VARIANT}  # type: ignore[union-attr]
        current = ABTestConfiguration.from_metadata(name, stored, configs)
        if derive is not None:
            # (given a copy: what it does to the test it is given changes nothing)
            derived = _update_fields(name, derive(copy.deepcopy(current)), "derive")
            changes = {**changes, **derived}
        values = {k: copy.deepcopy(v) for k, v in changes.items()}
        split = values.get("traffic_split", current.traffic_split)
        if "configurations" in values or "traffic_split" in values:
            named = values.get("configurations", {})
            if not isinstance(named, Mapping):
                raise ConfigError(f"{name}: configurations: expected a mapping of variant "
                                  "to configuration", file=file)  # fmt: skip
            merged = {**current.configurations, **named}
            keep = split if isinstance(split, Mapping) else {}
            # A variant the split drops loses its configuration; one named here that is
            # no variant stays, for validate() to name.
            values["configurations"] = {k: v for k, v in merged.items() if k in keep or k in named}
        kept = {f.name: getattr(current, f.name) for f in fields(current)}
        updated = by_value(ABTestConfiguration(**{**kept, **values}))
        problems = updated.validate()
        if problems:
            raise ConfigError([Problem(path="", message=p, file=file) for p in problems])
        self._refuse_new_secrets(name, secret_references(updated.configurations), snap)
        offset = _free_slice(name, updated, snap, file)
        plain = dict(stored)
        problem = (
            self._moves_users(name, plain, updated)
            or self._moves_slice(
                name,
                plain,
                updated,
                offset,
                _layer_places(snap.experiments, name, plain.get("layer"))[1],
            )  # fmt: skip
        )
        if problem:
            raise ConfigError(problem, file=file)
        meta = updated.to_metadata()
        if offset is not None:
            meta["layer_offset"] = offset
        # The stored record's own order and history; only the test's fields change.
        record = dict(stored)
        for key in (*TEST_FIELDS, "layer_offset"):
            if key in meta:
                record[key] = meta[key]
            else:
                record.pop(key, None)
        record = _carry_served(record, stored, self.manager._now())
        new_flag = updated.to_flag()
        if record.get("status", "active") == "stopped":
            # Still stopped: its control to everyone, its new targeting and window kept.
            when = new_flag.rules[0].when if new_flag.rules else None
            new_flag = msgspec.structs.replace(
                new_flag, rules=[Rule(when=when, serve=stored_control(record))]
            )
        return record, new_flag

    def _slice_on(
        self, name: str, stored: Any, ab_test: ABTestConfiguration, snap: Snapshot
    ) -> float | None:
        """The offset of ``ab_test``'s slice of its layer on ``snap`` (the newest stored
        document, under the store's lock), or None without a layer; ConfigError when
        the layer has no free slice there, or when the slice would move the users of a
        test that has served its variants. The offset this process chose from its own
        view is only a first check: another process may have taken that slice since
        (two tests sharing a slice would put a user in two tests of one layer)."""
        if not ab_test.layer:
            return None
        file = self._file
        offset = _free_slice(name, ab_test, snap, file)
        plain = stored if isinstance(stored, dict) else None
        where = _layer_places(snap.experiments, name, (plain or {}).get("layer"))[1]
        problem = self._moves_slice(name, plain, ab_test, offset, where)
        if problem:
            raise ConfigError(problem, file=file)
        return offset

    def _conflict(
        self,
        name: str,
        stored: Any,
        flag: Flag | None,
        ab_test: ABTestConfiguration,
        start: bool,
    ) -> str | None:
        """Why ``create(ab_test, start=start, replace=False)`` must not write over the
        stored test (record ``stored``, flag ``flag``); None when there is none.
        Raises :class:`_Unchanged` when the stored test is ``ab_test`` and stays in
        its state."""
        if not isinstance(stored, Mapping):
            return None
        variants = flag.variants if flag is not None and flag.variants else {}
        dropped, changed = replaced_fields(
            stored, variants, ab_test.to_metadata(), ab_test.configurations
        )
        if dropped or changed:
            what = " and ".join(
                ([f"drop {_listed(dropped)}"] if dropped else [])
                + ([f"change {_listed(changed)}"] if changed else [])
            )
            return (
                f"A/B test {name!r} exists: replacing it would {what}; nothing written. "
                "Replace it whole with replace=True (cfgcore experiment create --replace), "
                "or change only some fields, keeping its state, with update_ab_test "
                "(cfgcore experiment update)"
            )
        if start and stored.get("status", "active") == "stopped":
            reason = stored.get("stopped_reason")
            state = "not started" if reason == NOT_STARTED else f"stopped ({reason})"
            return (
                f"A/B test {name!r} exists, {state}: creating it again would start it; "
                f"nothing written. Start it explicitly: cfgcore experiment start {name} "
                "(audited), or create it with replace=True (--replace)"
            )
        raise _Unchanged

    def _moves_users(
        self, name: str, stored: Mapping[str, Any] | None, ab_test: ABTestConfiguration
    ) -> str | None:
        """Why replacing a test that has served its variants with ``ab_test`` is
        refused, or None. Assignment is sticky: a user keeps the variant they were
        served for the life of the test. A new split that would serve some of them
        another variant (other weights, variants reordered, removed or renamed) would
        also mix their data across variants and fail the sample-ratio check, so it
        needs a new test. Adding a 0 % variant at the end, or changing anything but the
        split, moves nobody.

        :func:`moved_users` judges every write again (:meth:`LiveFlags.update`); this
        check and :meth:`_moves_slice` come first on create and update so that their
        callers get advice in the API's terms (a new name, ``layer_percentage``), not
        the judge's, which speaks to a hand edit (``since``)."""
        if stored is None or not has_served(stored, self.manager._now()):
            return None
        old = stored.get("traffic_split")
        if not isinstance(old, Mapping):
            return None
        try:
            share = moved_share(old, ab_test.traffic_split)
        except (TypeError, ValueError):
            return None  # a hand-edited record the compiler refuses anyway
        if share == 0:
            return None
        return (
            f"{name}: traffic_split: the test has served its variants; this split would "
            f"move {share:.3%} of its users to another variant (assignment is sticky "
            "for the life of a test): create a test under a new name instead, or keep "
            "the split and change layer_percentage to take in more or fewer users"
        )

    def _moves_slice(
        self,
        name: str,
        stored: Mapping[str, Any] | None,
        ab_test: ABTestConfiguration,
        offset: float | None,
        stored_offset: float | None = None,
    ) -> str | None:
        """Why a new layer slice for a test that has served its variants is refused, or
        None. ``layer_percentage`` grows or shrinks the slice where it starts, so the
        users it keeps keep their variant; when another test's slice follows it, the
        larger slice fits only elsewhere in the layer, and moving there would take its
        users out of the test (and enrol others). So would moving the test to another
        layer (another salt picks its users)."""
        if stored is None or not stored.get("layer") or not ab_test.layer:
            return None
        if not has_served(stored, self.manager._now()):
            return None
        try:
            old_pct = float(stored.get("layer_percentage", 100.0))
        except (TypeError, ValueError):
            return None  # a hand-edited record the compiler refuses anyway
        new_pct = float(ab_test.layer_percentage)
        # (A record written without layer_offset has its slice where it is packed,
        # as layer_slices lays it out: another layer moves its users all the same.)
        if stored["layer"] != ab_test.layer:
            if old_pct >= 100.0 and new_pct >= 100.0:
                return None  # everyone in both: nobody leaves
            return (
                f"{name}: layer: the test has served its variants in layer "
                f"{stored['layer']!r}; moving it to layer {ab_test.layer!r} would take its "
                "users out of the test and enrol others (assignment is sticky for the life "
                "of a test): create a test under a new name instead"
            )
        try:
            old_offset = float(stored.get("layer_offset", stored_offset))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return None  # no slice known (a malformed record the compiler refuses)
        if offset is None or abs(offset - old_offset) < 1e-9:
            return None
        kept = max(0.0, min(old_offset + old_pct, offset + new_pct) - max(old_offset, offset))
        share = (old_pct - kept) / old_pct if old_pct > 0 else 0.0
        if share <= 0:
            return None
        return (
            f"{name}: layer_percentage: the test has served its variants; its slice of layer "
            f"{ab_test.layer!r} (at {old_offset:g}%) cannot grow to {new_pct:g}% where it "
            f"is (another test's slice follows it), and the free slice at {offset:g}% would "
            f"take {share:.0%} of its users out of the test (assignment is sticky for the "
            "life of a test): free the slice after it, or create a test under a new name"
        )

    def _may_replace(self, name: str, snap: Snapshot) -> None:
        """Refuse a test named after a flag that is not a test's: a boolean feature flag
        always; any other flag unless the actor may also ``flag.set`` it (taking it
        over changes what the flag serves). PermissionError is audited as ``denied``."""
        existing = snap.flags.get(name)
        if existing is None or name in snap.experiments:
            return
        if is_boolean(existing):
            raise ConfigError(f"{name}: test_name: a feature flag of that name exists",
                              file=self._file)  # fmt: skip
        try:
            check(current_actor() or "", "flag.set", name, self.manager.audit)
        except PermissionError as exc:
            raise PermissionError(
                f"{exc} (creating A/B test {name} would replace the flag {name}, which is "
                "not an A/B test's)"
            ) from None

    def _refuse_new_secrets(
        self, name: str, secrets: list[tuple[tuple[str, ...], str]], snap: Snapshot
    ) -> None:
        """Refuse secret references the stored test does not already hold at the same
        place: the API may not introduce one (they are resolved when served)."""
        stored = snap.flags.get(name) if name in snap.experiments else None
        variants = stored.variants if stored is not None and stored.variants else {}
        problems = [
            Problem(
                path=format_key_path(("experiments", name, "configurations", *path)),
                message="a secret reference (ENC[...] or ${file:...}) cannot be set through "
                "the experiment API: write it in the flag file",
                file=self._file,
            )
            for path, text in secrets
            if _at(variants.get(path[0]), path[1:]) != text
        ]
        if problems:
            raise ConfigError(problems)

    def _same_variants(self, name: str, flag: Flag) -> bool:
        # Compared as stored: == would call 1, 1.0 and True the same configuration.
        live = self.manager._source.flags.get(name)
        return live is not None and same(live, flag)

    def _written_stopped(self, name: str, record: Mapping[str, Any]) -> bool:
        """``create`` with ``start`` whose test was written stopped: False, the reason
        in ``last_error`` and ``last_problems`` as a refusal's (the write itself was
        made, and logged as an ERROR where it was judged)."""
        why = record.get("stopped_reason")
        message = (
            f"A/B test {name!r} was written stopped, not started: the fleet's guardrail "
            f"stop register holds it stopped ({why}) and no end of that stop is "
            "recorded; its document records the stop now: resume it explicitly, knowing "
            f"the stop: cfgcore experiment start {name} (audited), or create_ab_test "
            "again with start=True"
        )
        self.manager.last_problems = [
            Problem(path=format_key_path(("experiments", name, "status")), message=message,
                    file=self._file, kind="flags")
        ]  # fmt: skip
        self.manager.last_error = str(self.manager.last_problems[0])
        return False

    @property
    def _file(self) -> str | None:
        """What a refused change names: the flag store the manager writes; None for one
        that keeps its changes in this process (``persist=False``), which writes no
        file: its refusals are key paths and messages, as a problem about a value
        passed in code is (:class:`~cfgcore.errors.Problem`)."""
        return self.manager._where

    def _reject(self, problems: Sequence[str | Problem], *, logged: bool = True) -> bool:
        """False, the refusal in ``last_problems`` (each naming :attr:`_file`, in place
        of any name of the store the problem was found in: a memory store's URL, the
        file a ``persist=False`` manager started from) and ``last_error`` (the store
        named once, then each problem)."""
        file = self._file
        kept = [(Problem(path="", message=p) if isinstance(p, str) else p) for p in problems]
        kept = self.manager._named(kept)
        self.manager.last_problems = kept
        shown = "; ".join(
            str(dataclasses.replace(p, file=None) if p.file == file else p) for p in kept
        )
        # (the store's name escaped as each problem's is)
        self.manager.last_error = str(Problem(path="", message=shown, file=file))
        if logged:
            log.warning("A/B test rejected: %s", printable_name(self.manager.last_error))
        return False

    def get(self, test_name: str) -> ABTestConfiguration | None:
        """The configuration of a live test, or None. Its configurations are as stored:
        an ``ENC[...]`` or ``${file:...}`` the flag file holds stays one (re-creating the
        test must never write the plaintext into the store). A record of the wrong shape
        raises ConfigError (:func:`check_record`)."""
        name = exact_name(test_name)
        if name is None:
            return None
        test_name = name
        meta = self.manager._tests.get(test_name)
        flag = self.manager._source.flags.get(test_name)
        if meta is None or flag is None or flag.variants is None:
            return None
        doc = self.manager._live.document
        stored = doc.snapshot.flags.get(test_name) if doc is not None else None
        if stored is not None and stored.variants is not None:
            flag = stored
        configs = {k: v for k, v in (flag.variants or {}).items() if k != NO_VARIANT}
        check_record(test_name, meta, self.manager.flags_file)
        return ABTestConfiguration.from_metadata(test_name, meta, configs)

    def list(self) -> dict[str, dict[str, Any]]:
        """``{test: stored record}`` (status, split, dates, metrics, layer ...)."""
        return copy.deepcopy(self.manager._tests)

    def config(self, test_name: str, variant: str | None = None) -> dict[str, Any] | None:
        """A copy of ``variant``'s configuration; the control's when ``variant`` is None
        (the user is not in the test). None for an unknown test or variant."""
        # Served per request (the variant get_ab_test_variant gave): a name that is not
        # a str (unhashable, a str subclass whose hash or eq raises) is no such test or
        # variant, never an exception.
        name = exact_name(test_name)
        if name is None:
            return None
        meta = self.manager._tests.get(name)
        flag = self.manager._source.flags.get(name)
        if meta is None or flag is None or flag.variants is None:
            return None
        if variant is not None:
            variant = exact_name(variant)
            if variant is None:
                return None
        else:
            # (a record edited by hand may hold a control that is no name: no variant)
            variant = exact_name(stored_control(meta))
            if variant is None:
                return None
        if variant == NO_VARIANT or variant not in flag.variants:
            return None
        return copy.deepcopy(flag.variants[variant])

    def stop(
        self,
        test_name: str,
        reason: str = "stopped",
        *,
        source: str = "stop_ab_test",
        run: float | None = ANY_RUN,
    ) -> bool:
        """Send all of the test's traffic to control (the window still applies).
        Whether the test exists is judged on the newest stored document, under the
        store's lock: the one the stop is written on, which this process may not serve
        (a newer one not read yet, one it refused). False, nothing written, when that
        document holds no such test; ConfigError naming the file and key path when the
        store refuses the write (the stored document's own problem, which the stop
        keeps). ``run``: stop only that run of the test (its ``since``:
        :func:`run_of`), raising :class:`OtherRun` when the store holds another (a
        guardrail's verdict on one run's events is no verdict on the next)."""
        if not isinstance(test_name, str):
            return False  # (a list: unhashable)
        # The text it holds, as the policy judged it: a subclass's __eq__ and __hash__
        # may find another test.
        test_name = str.__str__(test_name)
        # Kept as the record's stopped_reason, which every reader takes for text: a str
        # subclass as the text it holds (msgspec refuses to write one), and nothing
        # that is no text a file can hold (None, a number, a lone surrogate).
        why = exact_name(reason)
        if why is None:
            where = format_key_path(("experiments", test_name, "stopped_reason"))
            shown = repr(reason)[:60] if type(reason) is str else f"a {type(reason).__name__}"
            raise ConfigError(
                f"{where}: the reason must be text (no lone surrogate), got {shown}",
                file=self._file,
            )
        reason = why

        def change(snap: Snapshot) -> Snapshot:
            # (not judged on the test this process serves: an operator's stop of a test
            # another process created a moment ago, or that only the stored document
            # holds, must land)
            if not isinstance(snap.experiments.get(test_name), Mapping) or (
                test_name not in snap.flags
            ):
                raise _TestGone  # (an entry that is no record is no test: none serves it)
            if run is not ANY_RUN and run_of(snap.experiments[test_name]) != run:
                raise OtherRun(test_name)
            meta = dict(snap.experiments[test_name])
            now = self.manager._now()
            why = reason
            if why == NOT_STARTED and has_served(meta, now):
                # A test that has served its variants is never "not started": that
                # would free its split for changes that move its users.
                why = "stopped"
            meta, new_flag = _stopped(
                meta, snap.flags[test_name], why, now, guardrail=source == "guardrail_rollback",
                after=recorded_end(snap.metadata, test_name),
            )  # fmt: skip
            return msgspec.structs.replace(
                snap,
                flags={**snap.flags, test_name: new_flag},
                experiments={**snap.experiments, test_name: meta},
            )

        try:
            self.manager._mutate(change, source)
        except _TestGone:
            return False
        return True

    def delete(self, test_name: str) -> bool:
        """Remove a test and its flag. Whether the test exists is judged on the newest
        stored document, under the store's lock (as :meth:`stop` judges it): False,
        nothing written and no retirement recorded, when that document holds no such
        test (another process deleted it since this one read the store);
        ConfigError naming the file and key path when the store refuses the write."""
        self.manager.last_error, self.manager.last_problems = None, []
        if not isinstance(test_name, str):
            return self._reject([f"{test_name!r:.60}: not a test name"], logged=False)
        # The text it holds, as the policy judged it: a subclass's __eq__ and __hash__
        # may find another test.
        test_name = str.__str__(test_name)

        def change(snap: Snapshot) -> Snapshot:
            if not isinstance(snap.experiments.get(test_name), Mapping):
                # (a record with a malformed field is a test to delete: the repair of a
                # document no process serves; an entry that is no record, or a flag
                # without one, is no test)
                raise _TestGone
            flags = {k: v for k, v in snap.flags.items() if k != test_name}
            exps = {k: v for k, v in snap.experiments.items() if k != test_name}
            # Its records stay in the shared logs: remember when it went, so that a test
            # created again under its name does not count them as its own.
            metadata = _retired(snap.metadata, test_name, snap.experiments.get(test_name))
            now = metadata[RETIRED][test_name]
            stop = guardrail_stop(snap.experiments.get(test_name))
            if stop is not None:
                # Deleting a test whose record holds its guardrail stop ends the stop:
                # recorded in the document (see GUARDRAIL_ENDS), never before the stop.
                metadata = _with_end(metadata, test_name, max(now, stop))
            return msgspec.structs.replace(snap, flags=flags, experiments=exps, metadata=metadata)

        try:
            self.manager._mutate(change, "delete_ab_test")
        except _TestGone:
            # (said in last_error as update says it; not logged: nothing is left to do)
            return self._reject([f"{test_name}: {NO_SUCH_TEST}"], logged=False)
        if self.manager.exposures is not None:
            self.manager.exposures.forget(test_name)
        self.manager.metrics.forget(test_name)
        return True

    def set_holdout_percentage(self, percentage: float) -> None:
        """Keep ``percentage`` percent of users out of every A/B test (0 removes the
        holdout). Holdout users get no variant from any test. ``percentage`` is a
        number (an int, a float, a NumPy scalar, a Fraction or a Decimal) within
        [0, 100); anything else (a bool, text such as ``"25"``, None, NaN) is a
        ConfigError naming ``metadata.holdout_percentage``."""
        # A number by its value, never text (cfgcore._numbers): "25" was taken as 25 %
        # while a traffic split refused "50", and "2.5%" is a typo to report.
        pct = real_number(percentage)
        if pct is None or not 0.0 <= pct < 100.0:
            raise ConfigError(
                "metadata.holdout_percentage: "
                f"must be a number within [0, 100), got {shown(percentage)}",
                file=self._file,
            )

        def change(snap: Snapshot) -> Snapshot:
            meta = {k: v for k, v in snap.metadata.items() if k != "holdout_percentage"}
            if pct > 0:
                meta["holdout_percentage"] = pct
            return msgspec.structs.replace(snap, metadata=meta)

        self.manager._mutate(change, "set_holdout_percentage")
