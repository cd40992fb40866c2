"""Health reports: is this process live, and is it ready for traffic?

``manager.health()`` (the configuration manager's, or the dynamic-config manager's)
answers two questions, each with the checks that decided it:

* **live**: can this process still answer? A read of the live configuration and a
  trivial flag evaluation against the live snapshot succeed. A process that is not
  live should be restarted.
* **ready**: should it get traffic? A configuration is loaded and passed the
  validation gate; when it follows files or a store, what it serves was confirmed
  current within ``max_staleness`` seconds (a file watcher that stopped polling, a
  store follower disconnected for longer, a cache file older than that: not ready).
  A rejected reload keeps the last good snapshot serving: still ready, with a
  ``warn`` check saying why the new input was refused (``last_reload``, standing after
  a runtime update: the files still hold it); so does a published configuration
  refused while the store holds it (``config_source``: the version served, the version
  refused and why), as a refused flag document does (``flags``), and an entry of the
  fleet's guardrail stop register passed over while it stays stored (``flag_store``). A
  file watcher that is
  alive but stuck (its loop has not come round for its ``stall_after`` seconds, by default
  ``max(30, 20 x poll_interval)`` or ``CFGCORE_WATCHER_STALL_SECONDS``: a reload blocked
  on a hung read or a lock) is not ready either, naming the watcher and for how long.
  In production, a secret the live version left empty (``${DB_PASSWORD:-}`` not
  exported) is a ``warn`` check naming its key path, as ``cfgcore setup`` reports it:
  still ready. A manager that was closed (``close()``, a process shutting down) is not
  ready: reads still serve its last version, but nothing follows changes any more. So
  is a dynamic-config manager that was closed, and any manager whose flag set was closed.

``max_staleness`` resolves as: the argument, then ``health_monitoring.max_staleness``
in the configuration (seconds, or ``"2m"``), then :data:`DEFAULT_MAX_STALENESS`.
A report reads live state only: it never loads, reloads or connects.

:func:`wsgi_app` and :func:`asgi_app` (from :mod:`cfgcore.observability.http`) serve
the reports at ``/health/live`` and ``/health/ready``, and ``/metrics``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from cfgcore._numbers import positive_seconds
from cfgcore.config.tree import get_path
from cfgcore.errors import StopRegisterError, printable_name
from cfgcore.observability.http import asgi_app, paths, wsgi_app
from cfgcore.runtime.redaction import redact_text

__all__ = [
    "DEFAULT_MAX_STALENESS",
    "Check",
    "HealthReport",
    "asgi_app",
    "config_health",
    "flags_health",
    "paths",
    "wsgi_app",
]

#: Seconds a followed configuration or flag document may go unconfirmed before the
#: process stops being ready.
DEFAULT_MAX_STALENESS = 60.0

#: The key the liveness probe evaluates: no flag has it, so the evaluation walks the
#: live snapshot's index and returns the caller's default.
PROBE_KEY = "__cfgcore_health_probe__"


@dataclass(frozen=True)
class Check:
    """One finding: ``status`` is ``ok``, ``warn`` (reported, does not fail the probe)
    or ``fail``."""

    name: str
    status: str
    detail: str

    def __post_init__(self) -> None:
        # Details quote errors, store URLs and refusals, and the report is served over
        # HTTP: a webhook or credential URL in an error's text is masked here, once for
        # every check (redact_text: resolved secrets and URL passwords/tokens).
        object.__setattr__(self, "detail", redact_text(self.detail))

    @property
    def ok(self) -> bool:
        return self.status != "fail"

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "status": self.status, "detail": self.detail}


@dataclass(frozen=True)
class HealthReport:
    """Liveness and readiness with the checks behind each (``str()`` is readable)."""

    liveness: tuple[Check, ...]
    readiness: tuple[Check, ...]
    checked_at: float = field(default_factory=time.time)

    @property
    def live(self) -> bool:
        return all(c.ok for c in self.liveness)

    @property
    def ready(self) -> bool:
        return self.live and all(c.ok for c in self.readiness)

    @property
    def reasons(self) -> list[str]:
        """What is not ``ok``, as ``name: detail`` lines, failures first."""
        found = [*self.liveness, *self.readiness]
        ordered = [c for c in found if c.status == "fail"]
        ordered += [c for c in found if c.status == "warn"]
        return [f"{c.name}: {c.detail}" for c in ordered]

    def to_dict(self) -> dict[str, Any]:
        return {
            "live": self.live,
            "ready": self.ready,
            "checked_at": self.checked_at,
            "liveness": [c.to_dict() for c in self.liveness],
            "readiness": [c.to_dict() for c in self.readiness],
        }

    def __str__(self) -> str:
        """One line per check, for a terminal or a log. Names, statuses and details are
        shown with what is not printable escaped (:func:`~cfgcore.errors.printable_name`):
        a detail quotes error text from a store or a file, and ``cfgcore health --url``
        prints a report whatever answers at the URL sent; an escape sequence drove the
        terminal, and a newline forged a check line under a failing one."""
        lines = [
            f"live:  {'yes' if self.live else 'NO'}",
            f"ready: {'yes' if self.ready else 'NO'}",
        ]
        for title, found in (("liveness", self.liveness), ("readiness", self.readiness)):
            lines.append(f"{title}:")
            lines += [
                f"  [{printable_name(c.status):>4}] {printable_name(c.name)}: "
                f"{printable_name(c.detail)}"
                for c in found
            ]
        return "\n".join(lines)


# --------------------------------------------------------------------------- reports


def config_health(manager: Any, max_staleness: float | None = None) -> HealthReport:
    """The report of a :class:`~cfgcore.config.manager.ConfigurationManager` (what its
    ``health()`` returns)."""
    bound = _staleness_bound(manager, max_staleness)
    live = [_config_readable(manager)]
    ready = [*_config_loaded(manager), _config_fresh(manager, bound), *_empty_secrets(manager)]
    if getattr(manager, "closed", False):
        ready.append(
            Check("manager", "fail", "closed: shutting down (reads serve the last version)")
        )
    flags = manager._flags._live  # only if already serving: a report creates nothing
    if flags is not None:
        live.append(_can_evaluate(flags.engine))
        if not getattr(manager, "closed", False):  # (closed: its flag set may be too)
            ready += _flag_readiness(flags, bound)
    superseded = manager._flags.superseded  # (cfgcore.config.flags: a late flags file)
    if superseded is not None:
        ready.append(Check("flags_engine", "warn", superseded))
    return HealthReport(tuple(live), tuple(ready))


def flags_health(
    live_flags: Any, max_staleness: float | None = None, *, manager: Any = None
) -> HealthReport:
    """The report of a live flag set (what the dynamic-config manager's ``health()``
    returns): its engine evaluates, its document compiled, its store is followed.
    ``manager``: the dynamic-config manager asking; once closed it is not ready (its
    engine serves the last flags, but its watcher and exposure log are stopped), nor
    while its file watcher's thread has died without being stopped."""
    bound = (
        DEFAULT_MAX_STALENESS
        if max_staleness is None
        else positive_seconds("max_staleness", max_staleness)
    )
    live = (_can_evaluate(live_flags.engine),)
    if getattr(manager, "closed", False):  # (which also says why its set is closed)
        ready = [Check("manager", "fail", "closed: shutting down (checks serve the last flags)")]
    else:
        ready = _flag_readiness(live_flags, bound)
        watcher = getattr(manager, "_watcher", None)  # start_file_watching()'s
        if watcher is not None and watcher.wanted and not watcher.running:
            # Started and never stopped, yet its thread is gone: the flags file is no
            # longer followed, silently.
            why = "file watching is on but its watcher thread is not running"
            ready.append(Check("freshness", "fail", why))
        elif watcher is not None and (stuck := _stuck(watcher)) is not None:
            ready.append(stuck)
    return HealthReport(live, tuple(ready))


# --------------------------------------------------------------------------- checks


def _staleness_bound(manager: Any, given: float | None) -> float:
    if given is not None:
        return positive_seconds("max_staleness", given)
    snap = manager._snap
    raw = get_path(snap.config, ("health_monitoring", "max_staleness"), None)
    if raw is not None:
        from cfgcore.config.schema import parse_duration

        seconds = parse_duration(raw)  # None for a bad value: validation reports it
        if seconds is not None and seconds > 0:
            return seconds
    return DEFAULT_MAX_STALENESS


def _first_line(error: BaseException) -> str:
    """The first line of ``error``'s message, or its type's name when it has none (an
    empty message made a report raise IndexError, and the probe answer 500)."""
    lines = str(error).splitlines()
    return lines[0] if lines and lines[0].strip() else type(error).__name__


def _config_readable(manager: Any) -> Check:
    snap = manager._snap
    if not snap.version:
        return Check("config_read", "ok", "no configuration loaded yet; reads return defaults")
    try:
        manager.get(PROBE_KEY)  # the same lock-free path a request's read takes
    except Exception as exc:  # reads never raise: if one does, the process is broken
        return Check("config_read", "fail", f"reading version {snap.version} raised {exc!r}")
    return Check("config_read", "ok", f"version {snap.version} readable")


def _config_loaded(manager: Any) -> list[Check]:
    snap = manager._snap
    if not snap.version:
        why = f": {manager.last_error}" if manager.last_error is not None else ""
        return [Check("configuration", "fail", f"no configuration loaded{why}")]
    age = max(0.0, time.time() - snap.loaded_at)
    out = [
        Check(
            "configuration",
            "ok",
            f"version {snap.version} of {snap.environment!r}, activated {age:.0f} s ago",
        ),  # fmt: skip
        Check("validation", "ok", "passed the validation gate")
        if manager.validate
        else Check("validation", "warn", "validation is disabled for this manager"),
    ]
    # (a runtime update since the refusal reads no file: what they hold is still refused)
    error = manager.last_error or manager.reloader.refused
    if error is not None:
        from cfgcore.observability.instruments import reason_of

        first = _first_line(error)
        out.append(
            Check(
                "last_reload",
                "warn",
                f"rejected ({reason_of(error)}); still serving version {snap.version}: {first}",
            )  # fmt: skip
        )
    return out


#: Empty secrets named in a readiness detail; the rest are counted.
SHOWN_EMPTY_SECRETS = 10


def _empty_secrets(manager: Any) -> list[Check]:
    """In production, a ``warn`` naming each secret the live version left empty
    (``${DB_PASSWORD:-}`` with the variable not exported), as ``cfgcore setup`` and
    ``cfgcore validate`` report them. A warning, not a failure: the version loaded and
    passed validation, and taking a serving process out of rotation would not fill the
    secret. Worked out once per activated version, not per probe."""
    snap = manager._snap
    if not snap.version or snap.environment != "production":
        return []
    memo = manager._empty_secrets_memo
    if memo is None or memo[0] is not snap:
        from cfgcore.config.checks import empty_secrets_of, shown_ref

        try:
            found = [
                f"{path} (from {shown_ref(ref)})" if ref else path
                for path, ref in empty_secrets_of(snap, manager.builder.env_vars)
            ]
        except Exception as exc:  # a report never raises; say why it could not tell
            found = [f"<not checked: {type(exc).__name__}>"]
        memo = manager._empty_secrets_memo = (snap, found)
    found = memo[1]
    if not found:
        return [Check("secrets", "ok", "no secret is empty")]
    shown = ", ".join(found[:SHOWN_EMPTY_SECRETS])
    more = len(found) - SHOWN_EMPTY_SECRETS
    if more > 0:
        shown += f" and {more} more"
    return [
        Check(
            "secrets",
            "warn",
            f"{len(found)} secret(s) empty in production: {shown}; export the variables "
            "and reload (cfgcore validate lists them)",
        )  # fmt: skip
    ]


def _config_fresh(manager: Any, bound: float) -> Check:
    snap = manager._snap
    published = manager._published
    if published is not None and snap.version:
        store = published.store(snap.environment)
        if store is not None:
            check = _store_check("config_source", store, bound)
            refusal = published.refusal(snap.environment)
            return check if refusal is None else _refused_published(check, store, *refusal)
    watcher = getattr(manager.reloader, "_watcher", None)
    if watcher is not None and watcher.wanted and not watcher.running:
        # Enabled and never stopped, yet its thread is gone: reloads stopped silently.
        return Check(
            "freshness", "fail", "hot reload is enabled but its file watcher thread is not running"
        )
    task_watcher = getattr(manager.reloader, "_async_watcher", None)
    if task_watcher is not None and task_watcher.wanted and not task_watcher.running:
        # Started and never stopped, yet its task is gone (the event loop that ran it
        # ended or was closed, or other code cancelled it): reloads stopped silently, and
        # the report said "loaded on demand", ready.
        return Check(
            "freshness", "fail",
            f"file watching is on but its asyncio task {task_watcher.name} is not running "
            "(its event loop ended, or the task was cancelled, without "
            "stop_file_watching()): the files are no longer followed",
        )  # fmt: skip
    for each in (watcher, task_watcher):
        stuck = _stuck(each) if each is not None else None
        if stuck is not None:
            return stuck
    if not manager.hot_reload_enabled:
        return Check("freshness", "ok", "loaded on demand (not following files)")
    confirmed = max(snap.loaded_at, manager.reloader.confirmed_at)
    age = time.time() - confirmed
    if age <= bound:
        return Check("freshness", "ok", f"inputs confirmed current {age:.1f} s ago")
    return Check(
        "freshness", "fail",
        f"the file watcher has not confirmed the inputs for {age:.0f} s (bound {bound:g} s)",
    )  # fmt: skip


def _refused_published(
    check: Check, store: Any, version: int | None, error: BaseException
) -> Check:
    """``check`` (the followed store's) saying that the published configuration the
    store holds was refused: a ``warn`` (the last good one serves, as a refused flag
    document's), unless the store's own state is worse already. Ends once a version
    goes live (:meth:`~cfgcore.config.published.PublishedSource.refusal`)."""
    which = f"the published version {version}" if version is not None else "what it holds"
    refused = f"{which} was refused: {_first_line(error)}"
    if check.status != "ok":
        return Check(check.name, check.status, f"{check.detail}; {refused}")
    # (0: started on what the state directory held, the store's document refused)
    served = f"version {store.version}" if store.version else "what this host followed last"
    return Check(check.name, "warn", f"following {store.url}; serving {served}; {refused}")


def _stuck(watcher: Any) -> Check | None:
    """A ``fail`` when ``watcher`` runs but its loop has not come round for longer than
    its ``stall_after`` (a reload or poll blocked, or the watch itself): alive, yet what
    is served is no longer followed. Its thread still being there said ready before."""
    stalled = getattr(watcher, "stalled_for", None)
    age = stalled() if stalled is not None else None
    if age is None:
        return None
    paths = list(getattr(watcher, "paths", ()))
    where = ", ".join(paths[:3]) + (f" and {len(paths) - 3} more" if len(paths) > 3 else "")
    return Check(
        "freshness", "fail",
        f"file watcher {watcher.name} on {where} is stuck: its loop last came round "
        f"{age:.0f} s ago (bound {watcher.stall_after:g} s; a reload or poll blocked on a "
        "read or a lock, or the watch not returning); serving what it last read",
    )  # fmt: skip


def _can_evaluate(engine: Any) -> Check:
    """Evaluate :data:`PROBE_KEY` on the live snapshot's tables, through a private
    compiled snapshot that does not count: probes every few seconds must not show up as
    ``FLAG_NOT_FOUND`` errors in the evaluation metrics (nor as flag usage). Building it
    copies the tables (microseconds for a few hundred flags, ~4 ms for 10,000)."""
    started = time.perf_counter()
    try:
        live = engine.snapshot()
        probe = type(live)(live.tables, live.version)
        probe.counting = False
        details = probe.evaluate(PROBE_KEY, None, False)
    except Exception as exc:  # evaluation never raises: if it does, the process is broken
        return Check("flag_evaluation", "fail", f"a trivial evaluation raised {exc!r}")
    if details.error_code != "FLAG_NOT_FOUND" or details.value is not False:
        return Check("flag_evaluation", "fail", f"a trivial evaluation answered {details!r}")
    micros = (time.perf_counter() - started) * 1e6
    return Check("flag_evaluation", "ok", f"snapshot {live.version} evaluated in {micros:.0f} µs")


def _flag_readiness(live: Any, bound: float) -> list[Check]:
    doc = live.document
    if doc is None:
        return [Check("flags", "fail", "no flag document loaded")]
    count = len(live.source.flags)
    out = [Check("flags", "ok", f"version {doc.version}, {count} flags{_ahead(live)}")]
    if getattr(live, "closed", False):
        # Closed (its last manager closed, or close() called): the engine serves what
        # it last had, but no watcher or follower keeps it current any more.
        out[0] = Check("flags", "fail", f"flag set of {live.store.url} closed; serving version "
                       f"{doc.version} ({count} flags), following nothing")  # fmt: skip
        return out
    error = live.last_error
    if isinstance(error, StopRegisterError) and hasattr(live.store, "stop_register_problem"):
        # An entry of the guardrail stop register passed over: no document was refused.
        # The store's flag_store check says it while it stands (below), and stops saying
        # it once the entry is fixed or removed.
        error = None
    if error is not None:
        first = _first_line(error)
        # (Refused bytes, or a file gone or emptied: what the source holds now is not
        # what serves.)
        out[0] = Check("flags", "warn", f"refused what the flag source holds now; "
                       f"serving version {doc.version}: {first}")  # fmt: skip
    if getattr(live.store, "kind", None) == "redis":
        out.append(_store_check("flag_store", live.store, bound))
    return out


def _ahead(live: Any) -> str:
    """``"; N rules ahead of a running A/B test's split (paths)"``: what the live flag
    document held when it went live (logged once per process: docs/experiments.md);
    ``""`` for none. A targeting choice, not a fault: the check's status is not
    changed by it."""
    ahead, paths = getattr(live, "ahead", (0, ()))
    if not ahead:
        return ""
    shown = ", ".join(paths) + (f" and {ahead - len(paths)} more" if ahead > len(paths) else "")
    rules = "rule" if ahead == 1 else "rules"
    return f"; {ahead} {rules} ahead of a running A/B test's split ({shown})"


def _store_check(name: str, store: Any, bound: float) -> Check:
    """A followed store: connected, or confirmed within ``bound`` seconds; and a
    refusal of the fleet's guardrail stop register standing (an entry passed over: a
    ``warn``, as a refused flag document is)."""
    check = _store_state(name, store, bound)
    stops = getattr(store, "stop_register_problem", None)
    if stops is None:
        return check
    first = _first_line(ValueError(stops)).removeprefix(f"{store.url}: ")  # (named before)
    said = f"guardrail stop register entries passed over: {first}"
    return Check(name, "warn" if check.ok else check.status, f"{check.detail}; {said}")


def _store_state(name: str, store: Any, bound: float) -> Check:
    """A followed store: connected, or confirmed within ``bound`` seconds."""
    version = store.version
    failing = getattr(store, "failing_version", None)
    if store.connected and failing is not None:
        return Check(
            name, "warn",
            f"following {store.url}; at version {version}, version {failing} not applied "
            f"({store.last_error})",
        )  # fmt: skip
    if store.connected:
        # Connected is not enough: a follower stuck on a hung server (a stopped process,
        # a half-open connection) stays connected with no confirmation. Its polls confirm
        # the version every ``poll`` seconds; ages are monotonic (no wall-clock steps).
        confirmed = getattr(store, "confirmed_at", None)
        late = bound + float(getattr(store, "poll", 0.0) or 0.0)
        if confirmed is not None and time.monotonic() - confirmed > late:
            return Check(
                name, "warn",
                f"connected to {store.url} but version {version} not confirmed current for "
                f"{time.monotonic() - confirmed:.0f} s (bound {bound:g} s plus the poll)",
            )  # fmt: skip
        return Check(name, "ok", f"following {store.url}; at version {version}")
    contact = store.last_contact
    age = time.time() - contact if contact else None
    where = "the cache file" if store.serving_cache else "memory"
    why = f" ({store.last_error})" if store.last_error else ""
    if age is not None and age <= bound:
        return Check(
            name, "warn",
            f"not following {store.url}{why}; serving version {version} from {where}, "
            f"confirmed current {age:.0f} s ago (bound {bound:g} s)",
        )  # fmt: skip
    last = f"{age:.0f} s ago" if age is not None else "never"
    return Check(
        name, "fail",
        f"not following {store.url}{why}; version {version} from {where} was last "
        f"confirmed current {last} (bound {bound:g} s)",
    )  # fmt: skip
