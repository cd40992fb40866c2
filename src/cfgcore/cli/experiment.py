"""``cfgcore experiment``: A/B tests from the command line.

``create`` / ``update`` / ``start`` / ``stop`` / ``delete`` / ``list`` change and show
the tests in the dynamic-config flags file (``create`` never writes over a stored test
unless ``--replace``; ``update`` changes only the fields given, keeping the test's
state), ``ingest FILE`` appends exposures and metric events (JSON
lines) next to it, and ``report NAME`` prints per-variant conversion or mean with
confidence intervals, the comparison with the control and the sample-ratio-mismatch
check (``--plot`` draws it). The tests are where the service's
:class:`~cfgcore.dynamic_config.DynamicConfigurationManager` serves them from:
``--store`` (a path or ``redis://`` URL), ``--flags FILE``, ``--state-dir
DIR/flags.json``, ``$CFGCORE_FLAG_STORE``, the configuration directory's flags file
(``config/flags.yaml`` in a project made by ``cfgcore setup``), else
``$CFGCORE_STATE_DIR/flags.json`` (default ``~/.local/state/cfgcore``). The exposure
log ``*.exposures.jsonl``, the metric events ``*.metrics.jsonl`` and the audit log
``*.audit.jsonl`` sit beside ``--flags FILE``, else in the state directory.

An option's value the command line alone judges (malformed, empty, out of range) and
options that exclude each other raise :class:`~cfgcore.cli.UsageError` (exit status 2,
as argparse's own refusals), never :class:`~cfgcore.cli.CommandError` (1), which is
left to what the stored test or the files decide.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import logging
import math
import os
import shlex
import sys
import textwrap
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from cfgcore.cli import CommandError, IntegerTooLong, UsageError, load_json, refuse_empty_paths
from cfgcore.config.files import tree_problem
from cfgcore.details import user_id_text
from cfgcore.errors import ConfigError, Problem, printable_name

if TYPE_CHECKING:
    from cfgcore.experiments.ingested import Fingerprint

STATE_HELP = (
    "Where the service's manager serves flags from: --store, else --flags FILE, else "
    "--state-dir DIR/flags.json, else $CFGCORE_FLAG_STORE, else the configuration "
    "directory's flags file (config/flags.yaml after 'cfgcore setup'), else "
    "$CFGCORE_STATE_DIR/flags.json (default $XDG_STATE_HOME/cfgcore, ~/.local/state/cfgcore). "
    "Exposures (*.exposures.jsonl), "
    "metric events (*.metrics.jsonl) and the audit log (*.audit.jsonl) sit beside --flags "
    "FILE, else in the state directory."
)

#: How far in the future an ingested "ts" may be (clock skew between hosts), seconds.
FUTURE_SLACK = 86400.0

INGEST_HELP = """\
FILE holds JSON lines ("-" reads stdin), one event per line:
  {"type": "exposure", "test": "T", "user": "u1", "variant": "control", "ts": 1764547200}
  {"type": "metric", "test": "T", "user": "u1", "metric": "ctr", "value": 1,
   "event_id": "order-8812"}
"type" may be left out (a line with "metric" is a metric event). "variant" is optional:
without it the user's variant is computed as the test assigns it, and a user who is not
in the test is skipped (the lines of a test that is stopped, targeted, or outside its
window need it).
"ts" (epoch seconds, not in the future nor negative) defaults to now, "value" to 1.
The whole file is read and checked before anything is written. Lines that cannot be
used (not UTF-8, not JSON, nested too deeply, wrong fields) are reported (file:line)
and skipped, the others are ingested, and the exit status is 1 if any were skipped: to
finish the job, ingest the corrected file again if its metric lines carry event_ids
(those already in are left out), else only the corrected lines.
A file that cannot be read to its end writes nothing. The exposure and metric logs
are written together or not at all: an ingest that fails writing them (or is killed
meanwhile: the next ingest or report takes that back) changed neither, so running it
again is always right.
A metric event's "event_id" (optional: text or an integer, at most 256 characters)
names it: one whose test, user, metric and id the metric log holds already is not
written again (nor one given twice in the input), so a file corrected in place and
ingested whole again adds only its new lines; one given again with other content is
reported unusable. Each input that wrote events is remembered by its content (SHA-256
and size, the newest 10,000 in *.ingested.json beside the logs): the same content
ingested again (a re-run batch job, the same file under another name) is refused,
naming when it was ingested and what ingesting it again would count twice (its metric
events without an event_id; nothing when every one has an id); --again ingests it
anyway (never an id the log holds).
Exit status: 0 ingested, 1 an error or unusable lines (the others ingested), 3 nothing
to do: the input was ingested before (refused by its content, or every event in it is
in the logs by its id), nothing written."""


def register(subparsers: Any) -> None:
    """Add the ``experiment`` command group."""
    p = subparsers.add_parser(
        "experiment",
        help="A/B tests: create, update, start, stop, delete, list, ingest events, report",
        description=f"A/B tests from the command line. {STATE_HELP}",
    )
    sub = p.add_subparsers(dest="experiment_command", metavar="SUBCOMMAND")

    def common(sp: Any) -> None:
        text = STATE_HELP
        if issubclass(sp.formatter_class, argparse.RawDescriptionHelpFormatter):
            # That formatter prints a group's text as it is (ingest's epilog needs it):
            # wrapped here, or its help showed this paragraph as one 400-column line.
            text = textwrap.fill(STATE_HELP, width=76)
        g = sp.add_argument_group("state", text)
        g.add_argument("--store", help="flag store: a path or redis:// URL")
        g.add_argument("--flags", help="dynamic-config flags file")
        g.add_argument("--state-dir", help="state directory (default: $CFGCORE_STATE_DIR)")

    c = sub.add_parser(
        "create",
        help="create an A/B test, not started unless --start (--replace to replace one)",
        description="Create an A/B test. Until it is started every user gets the control. "
        "A test of that name that is stored is left as it is: the same test again "
        "(every field, the window included) is a no-op, whatever its state; another is "
        "refused, exit status 1, naming the stored fields it would drop or change, and "
        "nothing is written. --replace replaces it with only what this command gives "
        "(fields not given take their defaults; without --start it is stopped). To "
        "change some fields of a test (ramping --layer-percentage up, a later --end-date), "
        "keeping the others and its state, use 'cfgcore experiment update'.",
    )
    c.add_argument("name", help="test name (also the name of the flag that serves it)")
    _test_options(c, update=False)
    c.add_argument("--start", action="store_true", help="start it right away")
    c.add_argument(
        "--replace",
        action="store_true",
        help="replace a stored test of that name with only what this command gives",
    )
    c.add_argument("--actor", help="who creates it (default: your OS user@host; another "
                   "name needs the policy's actor.assume)")  # fmt: skip
    common(c)
    c.set_defaults(func=_create)

    u = sub.add_parser(
        "update",
        help="change some fields of an A/B test, keeping the others and its state",
        description="Change only the fields given of a stored A/B test, audited "
        "(update_ab_test, under the access policy's experiment.create). Everything else "
        "is kept: its other fields (variant configurations, targeting, metric types, "
        "guardrails ...) and its state: a running test keeps running, one not started "
        "or stopped (by 'experiment stop' or by its guardrail) stays stopped with its "
        "reason. Each option replaces that field whole (--metric a --metric b sets the "
        "success metrics to a, b; --guardrail and --metric-type likewise), except "
        "--config, which replaces the configuration of the variants it names. "
        "--clear-metrics, --clear-guardrails and --clear-metric-types remove every "
        "success metric, guardrail or declared metric type (--targeting null the "
        "targeting); the events recorded stay in the report, and a test its guardrail "
        "stopped stays stopped until 'cfgcore experiment start'. A change "
        "that would move enrolled users to another variant is refused as for create: "
        "raising --layer-percentage only adds users. Exit status 1, nothing written, "
        "for an unknown test or a refused change; 2 for a wrong command line (an "
        "option's value malformed or out of range, options that exclude each other).",
    )
    u.add_argument("name", help="A/B test name")
    _test_options(u, update=True)
    u.add_argument("--actor", help="who changes it (default: your OS user@host; another "
                   "name needs the policy's actor.assume)")  # fmt: skip
    common(u)
    u.set_defaults(func=_update)

    s = sub.add_parser(
        "start",
        help="start (or resume) a test: users get their variants",
        description="Start a test created without --start, or resume a stopped one (a "
        "guardrail's stop included), audited: users get their variants again.",
    )
    s.add_argument("name", help="A/B test name")
    s.add_argument("--actor", help="who starts it (default: your OS user@host; another "
                   "name needs the policy's actor.assume)")  # fmt: skip
    common(s)
    s.set_defaults(func=_start)

    st = sub.add_parser(
        "stop",
        help="stop a test: every user gets the control",
        description="Stop a test, audited: every user gets its control and no exposures "
        "or metric events are collected, until 'cfgcore experiment start NAME'. Exit "
        "status 1, nothing changed, when the store holds no such test.",
    )
    st.add_argument("name", help="A/B test name")
    st.add_argument("--actor", help="who stops it (default: your OS user@host; another "
                    "name needs the policy's actor.assume)")  # fmt: skip
    st.add_argument(
        "--reason",
        default="stopped from the command line",
        help="why, kept in the test's record (stopped_reason; default: %(default)r)",
    )
    common(st)
    st.set_defaults(func=_stop)

    d = sub.add_parser(
        "delete",
        help="delete an A/B test and its flag (its logged records stay)",
        description="Delete an A/B test and the flag that serves it, audited like any "
        "change (as delete_ab_test). Its exposures and metric events stay in the logs; a "
        "test created again under its name is a new run, which leaves them out. A "
        "guardrail stop of the test ends with it. Exit status 1, nothing changed, when "
        "the store holds no such test.",
    )
    d.add_argument("name", help="A/B test name")
    d.add_argument("--actor", help="who deletes it (default: your OS user@host; another "
                   "name needs the policy's actor.assume)")  # fmt: skip
    common(d)
    d.set_defaults(func=_delete)

    ls = sub.add_parser(
        "list",
        help="the A/B tests: status, split, window, layer and share, targeting",
        description="One line per A/B test: its name, status, split and window, then its "
        "layer and the share of the layer it takes, and its targeting, when set.",
    )
    ls.add_argument("--json", action="store_true", help="print the stored records as JSON")
    common(ls)
    ls.set_defaults(func=_list)

    i = sub.add_parser(
        "ingest",
        help="append exposures and metric events from a JSON-lines file",
        description="Append exposures and metric events to the test's logs.",
        epilog=INGEST_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    i.add_argument("file", help='JSON-lines file, "-" for stdin')
    i.add_argument(
        "--again",
        action="store_true",
        help="ingest content that was ingested before (its events without ids then count "
        "twice, unless they were removed from the logs; events whose ids the log holds "
        "are still left out)",
    )
    common(i)
    i.set_defaults(func=_ingest)

    r = sub.add_parser(
        "report",
        help="per-variant results of one A/B test",
        description="Per-variant results, the comparison with the control and the "
        "sample-ratio-mismatch check of one A/B test.",
    )
    r.add_argument("name", help="A/B test name")
    common(r)
    r.add_argument("--metrics", help="metric events file (default: in the state directory, "
                   "or beside --flags FILE)")  # fmt: skip
    r.add_argument("--exposures", help="exposure log (default: in the state directory, or "
                   "beside --flags FILE)")  # fmt: skip
    r.add_argument("--confidence", type=float, default=0.95, help="interval level (0.95)")
    r.add_argument(
        "--plot",
        metavar="OUT",
        help="draw metrics with CIs per variant into the file OUT (PNG/SVG/PDF by extension, "
        "PNG without one; not a directory)",
    )
    r.add_argument("--json", action="store_true", help="print JSON instead of the table")
    r.add_argument(
        "--mde",
        type=float,
        help="also print the users per variant needed to detect this change from the control "
        "(absolute: 0.02 = 2 points of conversion; with --relative, 0.05 = +5 %%); a "
        "metric it does not fit (a change no rate can take) shows n/a with the reason",
    )
    r.add_argument("--relative", action="store_true", help="--mde is relative to the control")
    r.add_argument(
        "--max-users",
        type=int,
        metavar="N",
        help="keep at most N users per test in memory (the first N to appear; later users' "
        "exposures and events are left out and counted, as with the manager's "
        "max_tracked_users)",
    )
    r.set_defaults(func=_report)

    p.set_defaults(func=lambda _args: (p.print_help(sys.stderr), 2)[1])


#: ``update``'s options that empty a field of the test: option -> (the option that sets
#: that field, which it excludes; the field; what it removes, for --help).
CLEARS = {
    "--clear-metrics": ("--metric", "success_metrics", "success metric"),
    "--clear-guardrails": ("--guardrail", "guardrail_metrics", "guardrail"),
    "--clear-metric-types": ("--metric-type", "metric_types", "declared metric type"),
}


def _test_options(c: Any, *, update: bool) -> None:
    """The options that set a test's fields, on ``create`` and ``update`` (where each
    is optional and None when not given: that field is kept)."""
    keep = " (default: kept)" if update else ""
    c.add_argument(
        "--split",
        required=not update,
        action="append",
        metavar="VARIANT=PCT,...",
        help="variants and their traffic percentages, e.g. control=50,treatment=50 "
        "(or repeated: --split control=50 --split treatment=50)"
        + ("; a test that has served may only add a 0%% variant at the end" if update else ""),
    )
    c.add_argument("--description", help="what the test is about" + keep)
    c.add_argument(
        "--control",
        help="the control variant" + (keep if update else " (default: 'control' or the first)"),
    )
    c.add_argument(
        "--metric",
        action="append",
        metavar="NAME",
        help="success metric (repeat" + ("; replaces them all" if update else "") + ")",
    )
    c.add_argument(
        "--guardrail",
        action="append",
        metavar="METRIC=DIRECTION",
        help="stop the test when a variant is significantly worse "
        "(lower_is_better or higher_is_better; repeat"
        + ("; replaces them all" if update else "")
        + ")",
    )
    c.add_argument(
        "--metric-type",
        action="append",
        metavar="METRIC=KIND",
        help="binary, continuous (the mean per event) or per_user (the total per exposed "
        "user, 0 for one without events; repeat; "
        + (
            "default: kept)"
            if update
            else "default: inferred from the values, only 0/1 values being binary)"
        ),
    )
    if update:
        # A flag of its own, not an empty value: "--metric $M" with M unset must not
        # remove every metric of a running test without a word.
        for option, (sets, _field, what) in CLEARS.items():
            c.add_argument(
                option,
                action="store_true",
                help=f"remove every {what} (not with {sets}, which replaces them)"
                + (
                    "; a test its guardrail stopped stays stopped: 'cfgcore experiment "
                    "start NAME' resumes it"
                    if option == "--clear-guardrails"
                    else "; the events recorded stay in the report"
                ),
            )
    c.add_argument(
        "--config",
        action="append",
        metavar="VARIANT=JSON",
        help='configuration served to a variant, e.g. treatment=\'{"algo": "dnn"}\' '
        + ("(the variants not named keep theirs)" if update else '(default: {"variant": NAME})'),
    )
    c.add_argument(
        "--targeting",
        metavar="JSON",
        help="who may enter the test: a condition in the flag-file syntax, e.g. "
        '\'{"attr": "region", "in": ["EU"]}\''
        + (" (null removes it)" if update else " (default: every user)"),
    )
    c.add_argument(
        "--start-date",
        help="ISO date/time the window opens"
        + (keep if update else " (default: now; for a stored test, its own)")
        + "; without an offset (2026-03-01T09:00) it is this machine's local time, as in "
        "the Python API; 2026-03-01T09:00Z or +01:00 says which",
    )
    c.add_argument("--end-date", help="ISO date/time the window closes (local time as above)")
    c.add_argument(
        "--days",
        metavar="N",
        help="window length from the start, without --end-date"
        + (keep if update else " (default 14; for a stored test, its own window)"),
    )
    c.add_argument(
        "--layer",
        help="mutual-exclusion layer: a user is in at most one test of a layer (a layer "
        "of the test's own, such as its name, with --layer-percentage enrols a share of "
        "every user)",
    )
    c.add_argument(
        "--layer-percentage",
        metavar="PCT",
        help="percent of the layer's users the test takes, within (0, 100] (needs a "
        + (
            "layer). Raised, it only adds users; the users enrolled keep their variant"
            if update
            else "--layer; default 100). Raise it later with 'cfgcore experiment "
            "update NAME --layer-percentage PCT', which only adds users"
        ),
    )


# -- state ------------------------------------------------------------------------------


def _location(args: Any, *, must_exist: bool = True) -> tuple[str, dict[str, str]]:
    """Where the tests are (a path or store URL) and the files beside them, resolved as
    the service's manager resolves them (so a test created here is the one it serves)."""
    from cfgcore.experiments.dynamic import store_location

    refuse_empty_paths(args, "--store", "--flags", "--state-dir")
    url, paths = store_location(args.flags, state_dir=args.state_dir, store=args.store)
    if must_exist and "://" not in url and not os.path.exists(url):
        raise ConfigError("no dynamic-config flags file (create a test first)", file=url)
    return url, paths


def _read_state(args: Any) -> tuple[Any, str, dict[str, str]]:
    """The tests' snapshot (read, not served), where it was read (a file's path, or the
    store's URL without its password) and the files beside. A test created again by
    hand under a retired name is the run every process serves
    (:func:`~cfgcore.experiments.abtest.retired_runs`)."""
    from cfgcore.experiments.abtest import retired_runs
    from cfgcore.runtime.flagstore import open_store

    url, paths = _location(args)
    store = open_store(url)
    try:
        where = getattr(store, "path", None) or store.url
        return retired_runs(store.read().snapshot, where), where, paths
    finally:
        store.close()


def _manager(args: Any, *, must_exist: bool = True) -> Any:
    from cfgcore.dynamic_config import DynamicConfigurationManager

    _location(args, must_exist=must_exist)
    # record_usage=False: a command that manages tests evaluates no flag for a request,
    # and a usage file it started would have `cfgcore flags stale` judge every flag of a
    # host whose services record none (or record elsewhere) unused, as of that command.
    return DynamicConfigurationManager(
        args.flags, state_dir=args.state_dir, store=args.store, record_usage=False
    )


def _known(manager: Any, name: str) -> None:
    """CommandError unless this process serves the test ``name`` (for a command that
    works from the served test: ``start`` re-creates it)."""
    tests = manager.list_ab_tests()
    if name not in tests:
        raise _no_such_test(manager, name, tests)


def _no_such_test(manager: Any, name: str, tests: Any) -> CommandError:
    """The command line's "no such A/B test": the store, and a test of ``tests`` the
    name may have meant (or all of them)."""
    from cfgcore.cli.config import did_you_mean

    hint = did_you_mean(name, list(tests)) or f" (known: {_names(sorted(tests))})"
    return CommandError(f"{printable_name(name)}: no such A/B test in {manager.flags_file}{hint}")


def _not_stored(manager: Any, name: str) -> CommandError:
    """:func:`_no_such_test` for a change refused because the newest stored document,
    which changes are judged and written on, does not hold the test (it may differ from
    the document this process serves: one it refused, a newer one not read yet): the
    tests named are that document's (those served when it cannot be read)."""
    try:
        snap = manager.store.read().snapshot
        tests: Any = [k for k, v in snap.experiments.items() if isinstance(v, dict)]
    except ConfigError:
        tests = manager.list_ab_tests()
    return _no_such_test(manager, name, tests)


def _gone(manager: Any, name: str) -> bool:
    """Whether the last change was refused only because the stored document holds no
    test ``name`` (the check made under the store's lock)."""
    from cfgcore.experiments.abtest import NO_SUCH_TEST

    problems = [p.message for p in manager.last_problems]
    return problems == [f"{name}: {NO_SUCH_TEST}"]


def _names(names: Any) -> str:
    """Test names read from a document, joined for a message, each escaped as the
    report escapes names (:func:`cfgcore.errors.printable_name`)."""
    return ", ".join(printable_name(n) for n in names) or "none"


def _info(args: Any, message: str) -> None:
    if not getattr(args, "quiet", 0):
        print(message, file=sys.stderr)


# -- create / start / stop / list -------------------------------------------------------


def _pairs(items: list[str], what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        for part in item.split(","):
            key, sep, value = part.partition("=")
            if not sep or not key.strip():
                raise UsageError(f"{what} {part!r}: expected NAME=VALUE")
            if key.strip() in out:  # the first would be dropped without a word
                raise UsageError(f"{what}: {key.strip()!r} given twice")
            out[key.strip()] = value.strip()
    return out


def parse_time(raw: str | None, what: str, default: datetime) -> datetime:
    """``raw`` as an aware datetime. Without an offset it is local time, as the Python
    API reads a naive datetime, so the same text means the same instant on the command
    line and in ``create_ab_test`` (the command echoes what it resolved)."""
    from cfgcore.experiments.abtest import parse_iso

    if raw is None:
        return default
    try:
        value = parse_iso(raw)
    except ValueError:
        raise UsageError(
            f"{what} {raw!r}: expected an ISO date or date-time "
            "(2026-03-01, 2026-03-01T09:00 local time, 2026-03-01T09:00Z or +01:00)"
        ) from None
    return aware(value, what, raw)


def aware(value: datetime, what: str, raw: str) -> datetime:
    """``value`` with its offset: a naive one is this machine's local time."""
    from cfgcore.experiments.abtest import local_aware

    if value.tzinfo is not None:
        return value
    try:
        local = local_aware(value)
        local.astimezone(timezone.utc)  # representable as a UTC instant
    except (OverflowError, OSError, ValueError):
        raise UsageError(
            f"{what} {raw!r}: out of range in local time (give its offset: {raw}Z for UTC)"
        ) from None
    return local


def shown(value: datetime) -> str:
    """An instant as an operator reads it back: with its offset, and in UTC."""
    utc = value.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
    return f"{value.isoformat(timespec='seconds')} ({utc})"


def _create(args: Any) -> int:
    from cfgcore.dynamic_config import ABTestConfiguration
    from cfgcore.runtime.policy import cli_actor

    split = _split(args.split)
    configs: dict[str, Any] = {v: {"variant": v} for v in split}
    configs.update(_pairs_json(args.config or []))
    fields = _field_options(args)  # every value checked before the store is opened
    manager = _manager(args, must_exist=False)
    try:
        exists = args.name in manager.list_ab_tests()
        try:
            stored = manager.get_ab_test(args.name) if exists else None
        except ConfigError:
            if not args.replace:
                raise  # (a record of the wrong shape: named, file and field)
            stored = None  # replaced whole: its window is not this one's default
        start, end = _create_window(args, stored)
        test = ABTestConfiguration(
            test_name=args.name,
            description=fields.get("description", ""),
            start_date=start,
            end_date=end,
            traffic_split=split,
            configurations=configs,
            success_metrics=fields.get("success_metrics", []),
            control=fields.get("control"),
            guardrail_metrics=fields.get("guardrail_metrics", {}),
            metric_types=fields.get("metric_types", {}),
            layer=fields.get("layer"),
            layer_percentage=fields.get("layer_percentage", 100.0),
            targeting=fields.get("targeting"),
        )
        actor = cli_actor(args.actor, manager.audit)  # --actor: judged, never just claimed
        with _quiet_refusals():
            # Without --start: written stopped in the same change (serving the control),
            # so no process serves its variants in between.
            created = manager.create_ab_test(
                test, start=bool(args.start), actor=actor, replace=bool(args.replace)
            )
        if not created:
            problems = [dataclasses.replace(p, file=None) for p in manager.last_problems]
            raise ConfigError(problems or manager.last_error or "rejected")
    finally:
        manager.close()
    name = printable_name(args.name)
    if exists and not args.replace:
        # Not replaced (refused above otherwise): the stored test is this one.
        _info(args, f"A/B test {name} unchanged in {manager.flags_file} (the same test is "
              f"stored; {_state_of(manager, args.name)})")  # fmt: skip
        return 0
    command = f"cfgcore experiment start {_command_argument(args.name)}"
    state = "started" if args.start else f"not started: {command}"
    if not args.start and _stopped_reason(manager, args.name) == "stopped":
        state = f"stopped, as it has served its variants: {command}"
    verb = "replaced" if exists else "created"
    _info(args, f"{verb} A/B test {name} in {manager.flags_file} ({state})")
    _info(args, f"  window {shown(_local(start))} .. {shown(_local(end))}")
    return 0


class _quiet_refusals:
    """The manager logs a refusal at WARNING for services; a command says it once, in
    its error line (its problems concern the command line, not the flag file)."""

    def __enter__(self) -> None:
        self.log = logging.getLogger("cfgcore.dynamic_config")
        self.level = self.log.level
        self.log.setLevel(logging.ERROR)

    def __exit__(self, *exc: object) -> None:
        self.log.setLevel(self.level)


def _create_window(args: Any, stored: Any) -> tuple[datetime, datetime]:
    """The window ``create`` gives: the options', else for a stored test its own
    (re-running a create is the same test, not one moved to start now), else from
    now for 14 days."""
    days = _days(args.days)
    if stored is not None and args.start_date is None:
        start = stored.start_date
        if args.end_date is None and days is None:
            return start, stored.end_date
    else:
        start = parse_time(args.start_date, "--start-date", datetime.now().astimezone())
    if args.end_date is not None:
        return start, parse_time(args.end_date, "--end-date", start)
    return start, _window_end(start, 14.0 if days is None else days, args)


def _update(args: Any) -> int:
    from cfgcore.runtime.policy import cli_actor

    changes = _field_options(args)
    if args.split is not None:
        changes["traffic_split"] = _split(args.split)
    if args.config is not None:
        changes["configurations"] = _pairs_json(args.config)
    days = _days(args.days)
    if args.start_date is not None:
        changes["start_date"] = parse_time(args.start_date, "--start-date", datetime.now())
    if args.end_date is not None:
        if days is not None:
            raise UsageError("--end-date and --days: give one of them")
        changes["end_date"] = parse_time(args.end_date, "--end-date", datetime.now().astimezone())
    if not changes and days is None:
        raise UsageError(
            "nothing to update: give the fields to change (--layer-percentage, --end-date, "
            "--description, --metric, ...; see --help)"
        )
    manager = _manager(args)
    try:
        # (No check against the test this process serves: whether the test exists is
        # judged with the update, on the stored document it is written on.)

        def derived(stored: Any) -> dict[str, Any]:
            # From the stored test the update is written on (which this process may
            # not serve: another process changed it since, or this one refused it).
            out: dict[str, Any] = {}
            if days is not None:
                start = changes.get("start_date") or stored.start_date
                out["end_date"] = _window_end(start, days, args)
            if "traffic_split" in changes:
                # A variant the test did not have gets the default configuration, as
                # create gives one, unless --config names it.
                given = dict(changes.get("configurations", {}))
                for variant in changes["traffic_split"]:
                    if variant not in stored.configurations and variant not in given:
                        given[variant] = {"variant": variant}
                out["configurations"] = given
            return out

        actor = cli_actor(args.actor, manager.audit)
        with _quiet_refusals():
            updated = manager.update_ab_test(args.name, changes, derive=derived, actor=actor)
        if not updated:
            if _gone(manager, args.name):
                raise _not_stored(manager, args.name)
            problems = [dataclasses.replace(p, file=None) for p in manager.last_problems]
            raise ConfigError(problems or manager.last_error or "rejected")
        # What the update changed in the stored test it was made on (this process may
        # serve another document: one it refused), as its audit entry says.
        changed = list(manager.last_changed)
        state = _state_of(manager, args.name)
    finally:
        manager.close()
    name = printable_name(args.name)
    if not changed:
        _info(args, f"A/B test {name} unchanged in {manager.flags_file} ({state})")
        return 0
    _info(args, f"updated A/B test {name} in {manager.flags_file}: {', '.join(changed)} "
          f"({state})")  # fmt: skip
    if "guardrail_metrics" in changed and state.startswith("stopped"):
        # The owner removing the guardrail that stopped it may expect it to run again.
        _info(args, f"  still stopped: cfgcore experiment start {_command_argument(args.name)} "
              "resumes it")  # fmt: skip
    return 0


def _state_of(manager: Any, name: str) -> str:
    """The stored test's state as ``list`` shows it, with its stop's reason."""
    from cfgcore.experiments.abtest import NOT_STARTED

    meta = manager.snapshot.experiments.get(name)
    if not isinstance(meta, dict) or meta.get("status", "active") != "stopped":
        return "running"
    reason = meta.get("stopped_reason")
    if reason == NOT_STARTED:
        return "not started"
    return f"stopped: {printable_name(reason)}" if reason else "stopped"


def _split(items: list[str]) -> dict[str, float]:
    split: dict[str, float] = {}
    for variant, raw in _pairs(items, "--split").items():
        try:
            split[variant] = float(raw)
        except ValueError:
            raise UsageError(f"--split {variant}={raw}: not a number") from None
    return split


def _field_options(args: Any) -> dict[str, Any]:
    """``{field: value}`` of the test fields the options give (not the split, the
    configurations nor the window), each checked, naming the option it came from."""
    from cfgcore.experiments.abtest import GUARDRAIL_DIRECTIONS, METRIC_KINDS

    out: dict[str, Any] = {}
    if args.description is not None:
        out["description"] = args.description
    if args.control is not None:
        out["control"] = args.control
    update = args.func is _update
    if args.metric is not None:
        for metric in args.metric:
            if not metric.strip():
                raise UsageError(
                    f"--metric {metric!r}: expected a metric name, got an empty one"
                    + _clear_hint("--metric", update)
                )
        out["success_metrics"] = list(args.metric)
    if args.guardrail is not None:
        out["guardrail_metrics"] = _kinds(
            args.guardrail, "--guardrail", GUARDRAIL_DIRECTIONS, update=update
        )
    if args.metric_type is not None:
        out["metric_types"] = _kinds(args.metric_type, "--metric-type", METRIC_KINDS, update=update)
    for option, (sets, field, _what) in CLEARS.items():
        if getattr(args, option[2:].replace("-", "_"), False):  # (update's only)
            if getattr(args, sets[2:].replace("-", "_")) is not None:
                raise UsageError(
                    f"{option} and {sets}: give one of them ({sets} replaces them all, "
                    f"{option} removes them all)"
                )
            # The field's empty value, as update_ab_test takes it (and create stores).
            out[field] = [] if field == "success_metrics" else {}
    if args.layer is not None:
        if not args.layer.strip():
            raise UsageError("--layer: expected a layer name, got an empty one")
        out["layer"] = args.layer
    if args.layer_percentage is not None:
        out["layer_percentage"] = _percentage(args.layer_percentage, "--layer-percentage")
    if args.targeting is not None:
        out["targeting"] = _targeting(args.targeting, may_remove=args.func is _update)
    return out


def _clear_hint(option: str, update: bool) -> str:
    """How to remove them all, for an empty value of ``option`` on ``update``."""
    if not update:
        return ""
    clear = next(c for c, (sets, _, _) in CLEARS.items() if sets == option)
    return f" ({clear} removes them all)"


def _kinds(
    items: list[str], option: str, kinds: tuple[str, ...], *, update: bool = False
) -> dict[str, str]:
    for item in items:
        if not item.strip():
            raise UsageError(
                f"{option} {item!r}: expected METRIC={'|'.join(kinds)}, got an empty value"
                + _clear_hint(option, update)
            )
    out = _pairs(items, option)
    for metric, kind in out.items():
        if kind not in kinds:
            raise UsageError(
                f"{option} {printable_name(metric)}={printable_name(kind)[:60]}: expected "
                f"{' or '.join(kinds)}"
            )
    return out


def _percentage(raw: str, option: str) -> float:
    """A layer percentage: a number within (0, 100]."""
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and 0 < value <= 100):
        raise UsageError(
            f"{option} {printable_name(raw)[:60]}: layer_percentage must be a number within "
            "(0, 100]"
        )
    return value


def _days(raw: str | None) -> float | None:
    if raw is None:
        return None
    try:
        days = float(raw)
    except ValueError:
        raise UsageError(f"--days {printable_name(raw)[:60]}: expected a positive number "
                           "of days") from None  # fmt: skip
    if not math.isfinite(days) or days <= 0:
        raise UsageError(f"--days {days:g}: expected a positive number of days")
    return days


def _targeting(raw: str, *, may_remove: bool) -> dict[str, Any] | None:
    """``--targeting JSON``: a condition object (``null`` removes it, on ``update``),
    checked as the flag file's conditions are."""
    import msgspec

    from cfgcore._msgspec_errors import msgspec_problem
    from cfgcore.snapshot import Condition

    try:
        value = load_json(raw, allow_nan=False)
    except ValueError as exc:
        raise UsageError(f"--targeting: {_json_refusal(raw, exc)}") from None
    if value is None and may_remove:
        return None
    if not isinstance(value, dict):
        kind = "null" if value is None else type(value).__name__
        raise UsageError(
            f"--targeting: expected a JSON object (a condition such as "
            f'{{"attr": "region", "in": ["EU"]}}), got {kind}'
        )
    problem = tree_problem(value, ("targeting",))
    if problem is not None:
        raise UsageError(f"--targeting: {problem[0]}: {problem[1]}")
    try:
        msgspec.convert(value, Condition)
    except msgspec.ValidationError as exc:
        found = msgspec_problem(exc, None, "targeting", value, Condition)
        raise UsageError(f"--targeting: not a condition: {found}") from None
    return value


def _command_argument(name: str) -> str:
    """``name`` as a command line to paste takes it: shell-quoted (a name with a space),
    after ``--`` when it starts with a dash (else it reads as an option)."""
    text = shlex.quote(printable_name(name))
    return f"-- {text}" if name.startswith("-") else text


def _stopped_reason(manager: Any, name: str) -> Any:
    """The stored ``stopped_reason`` of test ``name`` (None while it runs)."""
    meta = manager.snapshot.experiments.get(name)
    return meta.get("stopped_reason") if isinstance(meta, dict) else None


def _window_end(start: datetime, days: float, args: Any) -> datetime:
    """``start + days`` (``--days``, checked by :func:`_days`); a window ending past
    the year 9999 is refused naming the option."""
    try:
        return start + timedelta(days=days)
    except OverflowError:
        since = f" from --start-date {args.start_date}" if args.start_date else ""
        raise UsageError(
            f"--days {days:g}{since}: the window would end past the year 9999"
        ) from None


def _pairs_json(items: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        variant, sep, raw = item.partition("=")
        if not sep or not variant:
            raise UsageError(f"--config {item[:60]!r}: expected VARIANT=JSON")
        if variant in out:  # the first would be dropped without a word, as --split's
            raise UsageError(f"--config: {printable_name(variant)[:60]!r} given twice")
        try:
            # NaN and Infinity are not JSON: flags.json would store them as null
            value = load_json(raw, allow_nan=False)
        except ValueError as exc:
            raise UsageError(f"--config {variant}: {_json_refusal(raw, exc)}") from None
        # The configuration input limits (depth, 64-bit integers): every later step
        # (copying, storing, compiling the flag) relies on them.
        problem = tree_problem(value)
        if problem is not None:
            where = f"{problem[0]}: " if problem[0] else ""
            raise UsageError(f"--config {variant}: {where}{problem[1]}")
        out[variant] = value
    return out


def _json_refusal(raw: str, exc: ValueError) -> str:
    """``load_json``'s refusal of an option's JSON as ``key path: invalid JSON: ...
    (column N)`` where the decoder places a syntax error, else its own reason (a
    duplicate key, NaN, nesting)."""
    import json

    from cfgcore._json_errors import json_value_error

    try:
        json.loads(raw)
    except json.JSONDecodeError as err:
        path, what = json_value_error(err)
        return f"{path}: {what}" if path else what
    except Exception:  # nested past the parser's stack, an integer past the digit limit
        pass
    return str(exc)


def _start(args: Any) -> int:
    from cfgcore.runtime.policy import cli_actor

    manager = _manager(args)
    try:
        _known(manager, args.name)
        test = manager.get_ab_test(args.name)
        actor = cli_actor(args.actor, manager.audit)  # --actor: judged, never just claimed
        if test is None or not manager.create_ab_test(test, actor=actor):
            raise ConfigError(manager.last_problems or manager.last_error or "cannot start")
    finally:
        manager.close()
    _info(args, f"started A/B test {printable_name(args.name)}")
    _info(args, f"  window {shown(_local(test.start_date))} .. {shown(_local(test.end_date))}")
    return 0


def _local(value: datetime) -> datetime:
    """A stored instant in this machine's local time (as stored if out of its range)."""
    try:
        return value.astimezone()
    except (OverflowError, OSError, ValueError):
        return value


def _stop(args: Any) -> int:
    from cfgcore.runtime.policy import cli_actor

    manager = _manager(args)
    try:
        # (No check against the test this process serves: whether the test exists is
        # judged with the stop, on the stored document it is written on.)
        actor = cli_actor(args.actor, manager.audit)  # --actor: judged, never just claimed
        if not manager.stop_ab_test(args.name, args.reason, source="cli", actor=actor):
            raise _not_stored(manager, args.name)
    finally:
        manager.close()
    _info(args, f"stopped A/B test {printable_name(args.name)}: every user gets the control")
    return 0


def _delete(args: Any) -> int:
    from cfgcore.runtime.policy import cli_actor

    manager = _manager(args)
    try:
        actor = cli_actor(args.actor, manager.audit)  # --actor: judged, never just claimed
        # (judged on the stored document the delete is written on, as stop's)
        if not manager.delete_ab_test(args.name, actor=actor):
            raise _not_stored(manager, args.name)
        version = manager.store.read().version
    finally:
        manager.close()
    _info(
        args,
        f"deleted A/B test {printable_name(args.name)} and its flag from "
        f"{manager.flags_file} (version {version}); its exposures and metric events stay "
        "in the logs, left out of a test created again under its name",
    )
    return 0


def _list(args: Any) -> int:
    from cfgcore.experiments.abtest import status_of

    snap, where = _read_state(args)[:2]
    tests = {k: v for k, v in snap.experiments.items() if isinstance(v, dict)}
    if args.json:
        print(json.dumps(tests, indent=2, default=str))
        return 0
    if not tests:  # say so: an empty output reads as a wrong store or a failure
        print(f"no A/B tests in {where}", file=sys.stderr)
        return 0
    # Every text below is the document's, which anyone who can write the store (or a
    # hand edit) filled: escaped, as the report shows names, so a name cannot drive the
    # terminal or forge a line of this list.
    shown = printable_name
    for name, meta in tests.items():
        weights = meta.get("traffic_split")
        weights = weights if isinstance(weights, dict) else {}
        split = ", ".join(f"{shown(k)} {_pct(v)}" for k, v in weights.items())
        status = status_of(meta)
        start, end = (_listed_instant(meta.get(k)) for k in ("start_date", "end_date"))
        window = f"{start} .. {end}"
        extra = ""
        if meta.get("layer") is not None:
            pct = meta.get("layer_percentage", 100.0)
            extra += f"  layer {shown(meta['layer'])} {_pct(pct)}"
        if meta.get("targeting") is not None:
            extra += f"  targeting {shown(_compact(meta['targeting']))}"
        print(f"{shown(name)}  [{shown(status)}]  {split}  {window}{extra}")
    return 0


def _compact(value: Any) -> str:
    """A stored value (targeting) as one line of JSON, as ``--targeting`` takes it."""
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
    except (TypeError, ValueError):  # a hand edit json cannot write (a key of another type)
        return repr(value)


def _listed_instant(value: Any) -> str:
    """A stored start or end date as ``create`` and ``start`` print it (to the second,
    with its offset, and in UTC), not the microseconds the document keeps; anything
    else a hand edit left there, escaped as it is."""
    if isinstance(value, str):
        try:
            when = datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            if when.tzinfo is not None:
                return shown(_local(when))
    return printable_name(value)


def _pct(value: Any) -> str:
    # a hand-edited file may hold anything here: show it, never crash on it
    return f"{value:g}%" if isinstance(value, int | float) else f"{value!r}"


# -- ingest ---------------------------------------------------------------------------


def _lines(
    path: str, fingerprint: Fingerprint | None = None, ledger: str | None = None
) -> Iterator[tuple[int, bytes | None]]:
    """The input's numbered lines, every byte read fed to ``fingerprint``. A regular
    file already ingested (its content in ``ledger``) is refused before its first line;
    ``ledger`` None: no such check (``--again``)."""
    from cfgcore.experiments.exposures import bounded_lines
    from cfgcore.experiments.ingested import Fingerprint, HashingReader, early_check, is_regular

    fingerprint = fingerprint or Fingerprint()

    # Bytes: a line that is not UTF-8 is one unusable line (file:line), not the end of
    # the run; but a file saved as UTF-16 or UTF-32 is refused whole, by its first line.
    if path == "-":
        stdin = bounded_lines(HashingReader(sys.stdin.buffer, fingerprint))
        yield from _utf8_lines(stdin, "<stdin>")
        return
    try:
        fh = open(path, "rb")
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror or exc}", file=path) from None
    with fh:
        try:
            if ledger is not None and is_regular(fh.fileno()):
                # Read once more, but its lines' errors are not printed again before the
                # refusal (the check that counts is made as the events are written).
                early_check(ledger, Fingerprint.of_file(fh).key, path)
                fh.seek(0)
            yield from _utf8_lines(bounded_lines(HashingReader(fh, fingerprint)), path)
        except OSError as exc:  # a directory, a read error midway
            raise ConfigError(f"cannot read: {exc.strerror or exc}", file=path) from None


def _utf8_lines(
    lines: Iterator[tuple[int, bytes | None]], file: str
) -> Iterator[tuple[int, bytes | None]]:
    """``lines`` with the first one judged by the text-encoding policy of every file
    cfgcore reads (:mod:`cfgcore._encoding`): a UTF-8 byte-order mark is dropped, and
    a UTF-16 or UTF-32 file refused saying to save it as UTF-8 (each of its lines would
    otherwise be a bad line of its own). Each later line is decoded as UTF-8 alone."""
    from cfgcore._encoding import UTF8_BOM, wide_encoding

    for lineno, line in lines:
        if lineno == 1 and line is not None:
            wide = wide_encoding(line)
            if wide is not None:
                raise ConfigError([Problem("", wide, file=file, line=1, kind="parse")])
            line = line.removeprefix(UTF8_BOM)
        yield lineno, line


def _ingest(args: Any) -> int:
    from cfgcore.cli import EXIT_NOTHING_TO_DO
    from cfgcore.experiments.ingested import AlreadyIngested

    refuse_empty_paths(args, "FILE")
    where = "<stdin>" if args.file == "-" else printable_name(args.file)
    try:
        return _ingest_input(args, where)
    except AlreadyIngested as exc:
        # Nothing to do, which is no failure: exit status 3, not an error's 1.
        print(f"cfgcore: {exc}", file=sys.stderr)
        return EXIT_NOTHING_TO_DO


def _ingest_input(args: Any, where: str) -> int:
    from cfgcore.cli import EXIT_NOTHING_TO_DO
    from cfgcore.experiments.abtest import record_runs, run_of
    from cfgcore.experiments.event_ids import LoggedIds
    from cfgcore.experiments.exposures import (
        MAX_LINE,
        UNTAGGED,
        Exposure,
        JsonLinesSink,
        append_together,
        recover_appends,
    )
    from cfgcore.experiments.ingested import Fingerprint, IngestRecord

    paths = _location(args)[1]
    manager = _manager(args)
    fingerprint = Fingerprint()
    tests = manager.list_ab_tests()
    exposures: list[Exposure] = []
    metrics: list[dict[str, Any]] = []
    # The metric events given with an id: (line number, key, event, "ts" given).
    with_ids: list[tuple[int, tuple[str, str, str, str], dict[str, Any], bool]] = []
    counts = {"exposure": 0, "metric": 0, "not in test": 0, "bad": 0, "already": 0}
    written = False
    logged: LoggedIds | None = None
    progress = _Progress(args, "ingesting")
    try:
        _took_back(args, recover_appends(paths["ingest_journal"]), paths)
        # Every line is read and checked before anything is written: a file that cannot
        # be read to its end, or a line that stops the run, leaves the logs untouched.
        for lineno, line in _lines(
            args.file, fingerprint, None if args.again else paths["ingested"]
        ):
            progress.tick(lineno)
            if line is None:
                too_long = f"line longer than {MAX_LINE >> 20} MiB (no event is)"
                print(f"cfgcore: error: {where}:{lineno}: {too_long}", file=sys.stderr)
                counts["bad"] += 1
                continue
            if not line.strip():
                continue
            try:
                kind, rec = _event(line, tests)
            except ValueError as exc:
                print(f"cfgcore: error: {where}:{lineno}: {exc}", file=sys.stderr)
                counts["bad"] += 1
                continue
            variant = rec.get("variant")
            user = str(rec["user"])
            if variant is None:
                variant = manager.engine.variant(rec["test"], {"user_id": user})
                if variant is None or variant == "__none__":
                    counts["not in test"] += 1
                    continue
            ts = float(rec.get("ts", time.time()))
            # Tagged with the run of the test this ingest read (as the writers tag the
            # records they log), unless its time says it is from before that run began:
            # left untagged, the readers judge it by its time, as before run tags.
            run = run_of(tests[rec["test"]])
            if run is not None and ts <= run:
                run = UNTAGGED
            if kind == "exposure":
                exposures.append(Exposure(rec["test"], str(variant), user, ts, run))
            else:
                value = float(rec.get("value", 1.0))
                event = {"test": rec["test"], "variant": str(variant), "user": user,
                         "metric": str(rec["metric"]), "value": value}  # fmt: skip
                eid = rec.get("event_id")
                if eid is not None:
                    event["event_id"] = eid  # (where the writers put it)
                if run is not UNTAGGED:
                    event["run"] = run  # (before the time, as the writers put it)
                event["ts"] = ts
                metrics.append(event)
                if eid is not None:
                    key = (rec["test"], user, event["metric"], eid)
                    with_ids.append((lineno, key, event, "ts" in rec))
            counts[kind] += 1
        # Both logs or neither: a failure between the two appends must not leave the
        # exposures without their metric events (and a second run would write them
        # twice). See append_together.
        exposure_log, metric_log = (
            JsonLinesSink(paths["exposures"]),
            JsonLinesSink(paths["metrics"]),
        )
        # The input's content is recorded with the events (or neither), so the same
        # content ingested again is refused: its events would count twice.
        entry = {
            "file": where if args.file == "-" else os.path.abspath(args.file),
            "at": datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
            "exposures": counts["exposure"],
            "metrics": counts["metric"],
            # The input's metric events by whether they have an id: ingested again, those
            # with one are left out by it and only the others would count twice (an
            # exposure again changes no count). The refusal says which (already_message).
            "metrics_with_event_id": len(with_ids),
            "metrics_without_event_id": len(metrics) - len(with_ids),
        }
        ingested = IngestRecord(paths["ingested"], fingerprint.key, entry, args.again, where)
        refine = None
        if with_ids:
            # Events with ids the metric log holds are in already: left out. The log is
            # read now, then under its lock what was appended meanwhile (refine).
            logged = LoggedIds(
                paths["metrics"], [key for _, key, _, _ in with_ids],
                record_runs(tests, {key[0] for _, key, _, _ in with_ids}),
            )  # fmt: skip
            logged.read()

            def refine() -> list[tuple[JsonLinesSink, bytes]]:
                assert logged is not None
                logged.read(lock_held=True)
                left_out = _settle_ids(with_ids, logged.found, where, counts)
                kept = [e for e in metrics if id(e) not in left_out]
                counts["metric"] = entry["metrics"] = len(kept)
                return [(exposure_log, exposure_log.encode(exposures)),
                        (metric_log, metric_log.encode(kept))]  # fmt: skip

        try:
            written = append_together(
                [(exposure_log, exposure_log.encode(exposures)),
                 (metric_log, metric_log.encode(metrics))],
                paths["ingest_journal"],
                ingested,
                refine=refine,
            )  # fmt: skip
        except OSError as exc:
            raise ConfigError(
                f"cannot write the events: {exc.strerror or exc}; nothing was ingested",
                file=getattr(exc, "filename", None) or os.path.dirname(manager.flags_file),
            ) from None
    finally:
        if logged is not None:
            logged.close()
        progress.done()
        manager.close()
    if not written:
        counts["exposure"] = counts["metric"] = 0
    already = (
        f", {counts['already']} metric event(s) already ingested (by their event_id)"
        if counts["already"] else ""
    )  # fmt: skip
    _info(
        args,
        f"ingested {counts['exposure']} exposure(s) and {counts['metric']} metric event(s) "
        f"into {_logs_where(paths)}; skipped {counts['not in test']} "
        f"line(s) of users not in their test{already} and {counts['bad']} unusable line(s)",
    )
    if counts["bad"]:
        return 1
    if not written and counts["already"]:
        # Every event was in the logs already (by its id): nothing to do.
        return EXIT_NOTHING_TO_DO
    return 0


def _settle_ids(
    with_ids: list[tuple[int, tuple[str, str, str, str], dict[str, Any], bool]],
    logged: dict[Any, Any],
    where: str,
    counts: dict[str, int],
) -> set[int]:
    """The ``id()`` of each event with an id not to write: one the metric log holds
    (``logged``: its record by key) or given earlier in the input. The same event again
    is counted in ``counts["already"]``; one with other content (variant, value, or a
    "ts" the line gave) is reported as an unusable line, naming what differs, and
    counted in ``counts["bad"]``: the logs keep the first."""
    left_out: set[int] = set()
    first: dict[Any, tuple[int, dict[str, Any]]] = {}
    for lineno, key, event, gave_ts in with_ids:
        record = logged.get(key)
        if record is not None:
            before = {"variant": record.variant, "value": record.value, "ts": record.ts}
            there = "in the metric log"
        elif key in first:
            line, before = first[key]
            there = f"at line {line}"
        else:
            first[key] = (lineno, event)
            continue
        left_out.add(id(event))
        fields = ("variant", "value") + (("ts",) if gave_ts else ())
        differs = [f for f in fields if before.get(f) != event.get(f)]
        if not differs:
            counts["already"] += 1
            continue
        counts["bad"] += 1
        shown = ", ".join(
            f"{f} {printable_name(before.get(f))} {there}, {printable_name(event.get(f))} here"
            for f in differs
        )
        print(
            f"cfgcore: error: {where}:{lineno}: event_id {printable_name(key[3])}: given "
            f"before with other content ({shown}); not ingested, the logs keep the first "
            "(give a corrected event a new event_id, or remove the first from the logs)",
            file=sys.stderr,
        )
    return left_out


def _logs_where(paths: dict[str, str]) -> str:
    """Where an ingest wrote: the exposure and metric logs, which are in the state
    directory unless the tests' flags file was given (--flags), not beside the flags."""
    exposures, metrics = paths["exposures"], paths["metrics"]
    if os.path.dirname(exposures) == os.path.dirname(metrics):
        names = f"{os.path.basename(exposures)}, {os.path.basename(metrics)}"
        return f"{os.path.dirname(exposures)} ({names})"
    return f"{exposures} and {metrics}"


def _took_back(args: Any, recovered: bool, paths: dict[str, str]) -> None:
    if recovered:
        _info(
            args,
            f"cfgcore: warning: {paths['ingest_journal']}: an earlier ingest did not finish; "
            "what it had written was taken back (run it again)",
        )


@functools.lru_cache(maxsize=256)
def _closest(name: str, known: tuple[str, ...]) -> str:
    """`` (did you mean 'x'?)`` for a test or variant name a line misspells; cached, as
    a file of events from a misspelt test repeats the one name on every line."""
    from cfgcore.config.tree import did_you_mean

    return did_you_mean(name, [str(k) for k in known])


def _event(raw: bytes, tests: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 (byte {exc.start + 1} of the line)") from None
    try:
        rec = load_json(line)
    except IntegerTooLong as exc:
        rec = _huge_int_field(line, exc.limit)  # raises, naming the field
    if not isinstance(rec, dict):
        raise ValueError("expected a JSON object")
    kind = rec.get("type") or ("metric" if "metric" in rec else "exposure")
    if kind not in ("exposure", "metric"):
        raise ValueError(f"type {kind!r:.60}: expected 'exposure' or 'metric'")
    for field in ("test", "user") + (("metric",) if kind == "metric" else ()):
        if not isinstance(rec.get(field), str | int) or isinstance(rec.get(field), bool):
            raise ValueError(f"{field}: missing or not a string")
        if user_id_text(rec[field]) is None:  # a lone surrogate: no log can hold it
            raise ValueError(f"{field}: not text (a lone surrogate)")
    if rec["test"] not in tests:
        hint = _closest(str(rec["test"])[:200], tuple(tests))
        raise ValueError(f"test {rec['test']!r:.60}: no such A/B test{hint}")
    variant = rec.get("variant")
    split = tests[rec["test"]].get("traffic_split") or {}
    if variant is not None and (not isinstance(variant, str) or variant not in split):
        hint = _closest(variant[:200], tuple(split)) if isinstance(variant, str) else ""
        test = printable_name(rec["test"])
        raise ValueError(f"variant {variant!r:.60}: not a variant of {test}{hint}")
    from cfgcore.experiments.abtest import status_of

    meta = tests[rec["test"]]
    status = status_of(meta)
    if variant is None and status != "active":
        # A stopped (or not started) test serves its control to everyone: the variant
        # computed now is not the one the user had, and every such user was filed under
        # the control (a user in two variants, a sample-ratio mismatch).
        raise ValueError(
            f"variant missing: A/B test {printable_name(rec['test'])} is {status} (every "
            "user gets its "
            "control now), so the user's variant cannot be computed: give it"
        )
    if variant is None and status == "active":
        closed = _window_closed(meta)
        if closed:
            # Computed now, every user of a test whose window is closed (ended: the
            # usual backfill; or not yet open) got no variant and was skipped as "not
            # in their test", with exit status 0.
            raise ValueError(
                f"variant missing: the window of A/B test {printable_name(rec['test'])} "
                f"{closed} (nobody "
                "gets a variant now), so the user's variant cannot be computed: give it"
            )
    if variant is None and meta.get("targeting") is not None:
        # Computed from the user id alone, every user of a targeted test missed its
        # targeting and was skipped as "not in their test".
        raise ValueError(
            f"variant missing: A/B test {printable_name(rec['test'])} has targeting (the "
            "line has none "
            "of its users' attributes), so the user's variant cannot be computed: give it"
        )
    if kind == "metric" and rec.get("event_id") is not None:
        from cfgcore.experiments.event_ids import MAX_EVENT_ID, event_id_text

        eid = event_id_text(rec["event_id"])
        if eid is None:
            raise ValueError(
                f"event_id: expected text or an integer of 1 to {MAX_EVENT_ID} characters, "
                f"got {rec['event_id']!r:.60}"
            )
        rec["event_id"] = eid
    for field in ("value", "ts"):
        if field in rec:
            value = rec[field]
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{field}: expected a number, got {value!r:.60}")
            try:
                number = float(value)
            except OverflowError:  # an int past a float's range
                number = math.inf
            if not math.isfinite(number):  # NaN, an infinity, or past a float's range
                raise ValueError(f"{field}: expected a finite number, got {value!r:.60}")
            from cfgcore.experiments.exposures import MAX_METRIC_VALUE

            if field == "value" and abs(number) > MAX_METRIC_VALUE:
                # the metric log's readers refuse it (the variance would overflow)
                raise ValueError(f"value: beyond +-{MAX_METRIC_VALUE:g}, got {value!r:.60}")
            if field == "ts" and number > time.time() + FUTURE_SLACK:
                # Milliseconds, most likely: such a record would also outlive every
                # restart of the test (records after a new run's since are its own).
                raise ValueError(
                    f"ts: {value!r:.60} is in the future (epoch seconds expected, not milliseconds)"
                )
            if field == "ts":
                _refuse_negative_ts(number, value)
    return kind, rec


def _refuse_negative_ts(number: float, value: Any) -> None:
    """A negative "ts" (before 1970) is no event time: a typo or a sign error, which the
    report counted as the current run's like any other line."""
    if number < 0:
        raise ValueError(f"ts: {value!r:.60} is before 1970 (epoch seconds expected)")


def _huge_int_field(line: str, limit: int) -> Any:
    """The ValueError for a line holding an integer literal past Python's digit limit,
    naming the field that holds it (Python's own message named its setting instead)."""
    from cfgcore.cli import HugeInt, load_json_marking_huge_ints

    try:
        rec = load_json_marking_huge_ints(line)
    except (ValueError, RecursionError):  # not JSON in other ways too
        rec = None
    # The first such literal, depth first, and its path (a list item by its index).
    stack: list[tuple[str, Any]] = [("", rec)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, HugeInt):
            where = f"{path}: " if path else ""
            raise ValueError(
                f"{where}an integer literal of {value.digits:,} digits "
                f"(cfgcore reads at most {limit:,})"
            )
        if isinstance(value, dict | list):
            items = value.items() if isinstance(value, dict) else enumerate(value)
            stack.extend(reversed([(f"{path}.{k}" if path else str(k), v) for k, v in items]))
    raise ValueError(f"an integer literal of more than {limit:,} digits")


def _window_closed(meta: dict[str, Any]) -> str | None:
    """How the window of the test ``meta`` is closed now ("ended at ...", "opens at
    ..."), or None when it is open (or its dates cannot be read: the manager refuses
    such a document)."""
    try:
        window = _window(meta["start_date"], meta["end_date"])
    except (KeyError, TypeError):  # (TypeError: a date that is no text, unhashable)
        return None
    if window is None:
        return None
    now = time.time()
    if now < window[0]:
        return f"opens at {window[2]}"
    if now >= window[1]:
        return f"ended at {window[3]}"
    return None


@functools.lru_cache(maxsize=64)
def _window(start: Any, end: Any) -> tuple[float, float, str, str] | None:
    # Once per test, not per line: an ingest may hold millions of lines.
    from cfgcore.experiments.abtest import _utc

    try:
        a = _utc(start, "start_date", "", stored=True)
        b = _utc(end, "end_date", "", stored=True)
    except ConfigError:
        return None
    return a.timestamp(), b.timestamp(), a.isoformat(), b.isoformat()


class _Progress:
    """Progress on stderr for long runs: only on a terminal, not with -q, at most 5/s."""

    def __init__(self, args: Any, what: str, every: int = 50_000) -> None:
        self.on = sys.stderr.isatty() and not getattr(args, "quiet", 0)
        self.what = what
        self.every = every
        self.last = 0.0
        self.shown = False

    def tick(self, n: int) -> None:
        if self.on and n % self.every == 0 and time.monotonic() - self.last > 0.2:
            self.last = time.monotonic()
            self.shown = True
            print(f"\r{self.what}: {n:,} events", end="", file=sys.stderr, flush=True)

    def done(self) -> None:
        if self.shown:
            print(file=sys.stderr)


# -- report -----------------------------------------------------------------------------


def _report(args: Any) -> int:
    from cfgcore.experiments.abtest import record_runs
    from cfgcore.experiments.analysis import analyze
    from cfgcore.experiments.metrics import MetricsStore

    if not 0 < args.confidence < 1:
        raise UsageError(f"--confidence must be within (0, 1), got {args.confidence}")
    if args.mde is not None and not (math.isfinite(args.mde) and args.mde != 0):
        # (nan, inf: no change a sample size is computed for, as 0 is none)
        raise UsageError(f"--mde must be a finite non-zero number, got {args.mde:g}")
    refuse_empty_paths(args, "--metrics", "--exposures", "--plot")
    if args.relative and args.mde is None:
        # (it says how to read --mde: alone it changed nothing, and said nothing)
        raise UsageError("--relative: give it with --mde (e.g. --mde 0.05 --relative: +5 %)")
    if args.max_users is not None and args.max_users < 1:
        raise UsageError(f"--max-users must be at least 1, got {args.max_users}")
    for option, given in (("--metrics", args.metrics), ("--exposures", args.exposures)):
        # A log named on purpose that is not there (a typo, the wrong host's path) is an
        # error: read as "nothing logged", it made a report of no data, exit status 0.
        if given and not (os.path.lexists(given) or os.path.lexists(f"{given}.1")):
            raise CommandError(f"{option} {given}: no such file")
    snap, path, files = _read_state(args)
    meta = snap.experiments.get(args.name)
    if not isinstance(meta, dict):
        from cfgcore.cli.config import did_you_mean

        known = sorted(k for k, v in snap.experiments.items() if isinstance(v, dict))
        hint = did_you_mean(args.name, known) or f" (known: {_names(known)})"
        raise CommandError(f"{printable_name(args.name)}: no such A/B test in {path}{hint}")
    from cfgcore.experiments.abtest import check_record
    from cfgcore.experiments.exposures import recover_appends

    check_record(args.name, meta, path)
    _took_back(args, recover_appends(files["ingest_journal"]), files)
    progress = _Progress(args, "reading events")
    try:
        store = MetricsStore.load(
            args.metrics or files["metrics"],
            args.exposures or files["exposures"],
            progress=progress.tick,
            max_users=args.max_users,
            # A test created again under a deleted one's name: not that one's records
            # (tagged for another run, or untagged and stamped up to its since).
            runs=record_runs(snap.experiments, {args.name}),
            # (one that crashed after the recovery above, found at the cut)
            journal=files["ingest_journal"],
        )
    finally:
        progress.done()
    report = analyze(args.name, meta, store, confidence=args.confidence)
    if store.skipped:
        # Named on stderr too: the table's warning line is easy to miss in a script.
        for line in store.skipped.first:
            print(f"cfgcore: warning: {printable_name(line)}: line left out", file=sys.stderr)
        if store.skipped.count > len(store.skipped.first):
            more = store.skipped.count - len(store.skipped.first)
            print(f"cfgcore: warning: and {more} more unusable line(s)", file=sys.stderr)
    sizes = {}
    # Why a metric has no size (its control gives no baseline): said, never "no data"
    # for a control with users.
    unavailable = {}
    if args.mde is not None:
        metrics = dict.fromkeys(r.metric for r in report.results)
        # An --mde that does not fit a metric (an absolute change a rate cannot take,
        # while it is a fine change of a revenue metric of the same test): that metric
        # has no size, said why, and the others have theirs. One that fits no metric
        # at all was given wrongly (95 for 0.95): an error, as it always was.
        misfits = []
        for m in metrics:
            try:
                sizes[m] = report.sample_size(m, args.mde, relative=args.relative)
            except ValueError as exc:
                sizes[m] = None
                unavailable[m] = f"--mde {args.mde:g} does not fit: {exc}"
                misfits.append(f"for {printable_name(m)}: {exc}")
                continue
            if sizes[m] is None:
                unavailable[m] = (
                    report.no_sample_size(m, relative=args.relative)
                    or "the change is too small for the control's value"
                )
        if misfits and all(n is None for n in sizes.values()):
            raise CommandError(f"--mde {args.mde:g} " + "; ".join(misfits))
    if args.json:
        data = report.to_dict()
        if sizes:
            data["sample_size_per_variant"] = sizes
            data["sample_size_unavailable"] = unavailable
        # strict JSON: to_dict() has turned NaN and infinities into null
        print(json.dumps(data, indent=2, default=str, allow_nan=False))
    else:
        print(report.to_text())
        if sizes:
            kind = "a relative" if args.relative else "an absolute"
            print(
                f"\nusers per variant to detect {kind} change of {args.mde:g} "
                "(alpha 0.05, power 0.8):"
            )
            for m, n in sizes.items():
                have = min((r.n for r in report.for_metric(m)), default=0)
                need = (
                    f"n/a ({unavailable[m]})" if n is None else f"{n} (smallest variant has {have})"
                )
                print(f"  {printable_name(m)}: {need}")
    if args.plot:
        out = report.plot(args.plot)
        if not args.json:
            print(f"\nplot written to {out}")
    return 0


__all__ = ["register"]
