"""Configuration manager commands: ``show``, ``get``, ``explain``, ``diff``, ``eval``,
``watch`` and ``setup``.

Every command reads the configuration directory (``--config-dir``, else
``$CFGCORE_CONFIG_DIR``, else the embedded set) for an environment (``-e``, else
``$CONFIG_ENVIRONMENT``, else ``development``) with optional profiles, exactly as the
manager builds it. ``show``, ``get``, ``explain`` and ``eval`` validate it as a load
does: a configuration a service would refuse is an error naming the file, line and key
path of each problem (exit 1), never printed as if it were live. ``--no-validate``
inspects it anyway (to find out which file set a bad value). ``diff`` compares the two
builds without validating them. These commands only read: they write no audit entry
and record no flag usage. Secret values are always redacted in output. Errors are one
line per problem naming the file, line, key path and variable.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import sys
import time
from collections.abc import Mapping
from typing import Any

from cfgcore.cli import CommandError
from cfgcore.config.tree import did_you_mean, key_paths, split_path
from cfgcore.errors import printable_name

__all__ = ["did_you_mean", "register"]


def _common(
    p: argparse.ArgumentParser, *, environment: bool = True, validation: bool = False
) -> None:
    p.add_argument(
        "--config-dir",
        help="configuration directory (default: $CFGCORE_CONFIG_DIR, else ./config if it "
        "holds a base or environment file, else the bundled set)",
    )
    if environment:
        p.add_argument(
            "-e",
            "--environment",
            help="environment (default: $CONFIG_ENVIRONMENT or $CFGCORE_ENVIRONMENT, else "
            "development)",
        )
    p.add_argument(
        "--profile", help="deployment profile (default: $CONFIG_PROFILE or $CFGCORE_PROFILE)"
    )
    p.add_argument(
        "--geographic-profile",
        help="geographic profile, e.g. EU (default: $CONFIG_GEOGRAPHIC_PROFILE or "
        "$CFGCORE_GEOGRAPHIC_PROFILE)",
    )
    if validation:
        p.add_argument(
            "--no-validate",
            dest="validate",
            action="store_false",
            help="do not validate: inspect a configuration that a load would refuse",
        )


def register(subparsers: Any) -> None:
    """Add the configuration manager's subcommands."""
    p = subparsers.add_parser("show", help="print the merged configuration (secrets redacted)")
    _common(p, validation=True)
    p.add_argument("key", nargs="?", help="only this section (key path, as for get)")
    p.add_argument(
        "--format", choices=("yaml", "json"), default="yaml", help="output format (default: yaml)"
    )
    p.set_defaults(func=_cmd_show)

    p = subparsers.add_parser("get", help="print one value (JSON for sections and lists)")
    _common(p, validation=True)
    p.add_argument(
        "key",
        help="dotted key path, e.g. music_streaming.audio_quality.premium_bitrate; a key "
        "that holds a dot quoted, as errors show it: 'loggers[\"uvicorn.access\"].level'",
    )
    p.set_defaults(func=_cmd_get)

    p = subparsers.add_parser("explain", help="which layer and file:line set a key")
    _common(p, validation=True)
    p.add_argument("key", help="key path, as for get")
    p.set_defaults(func=_cmd_explain)

    p = subparsers.add_parser(
        "diff",
        help="keys that differ between two environments (exit 1 if any)",
        description="Print the keys that differ between two environments. Exit status, "
        "like diff(1): 0 when they are the same, 1 when they differ.",
    )
    _common(p, environment=False)
    p.add_argument("env_a", help="an environment, e.g. staging")
    p.add_argument("env_b", help="the environment to compare it with, e.g. production")
    p.set_defaults(func=_cmd_diff)

    p = subparsers.add_parser("eval", help="evaluate a feature flag for a context")
    _common(p, validation=True)
    p.add_argument("flag", help="flag key")
    p.add_argument(
        "--ctx",
        nargs="+",
        action="extend",
        default=[],
        type=_ctx_item,
        metavar="KEY=VALUE",
        help="context attributes (numbers and true/false are typed; a value opening "
        "with [ or { is JSON)",
    )
    p.add_argument("--json", action="store_true", help="print the evaluation details as JSON")
    p.set_defaults(func=_cmd_eval)

    p = subparsers.add_parser("watch", help="print configuration changes as they happen")
    _common(p)
    p.add_argument("--count", type=_positive_int, default=0, help="exit after this many events")
    p.add_argument(
        "--timeout", type=positive_seconds, default=0, help="exit after this many seconds"
    )
    p.add_argument("--store", help="follow this flag store instead (redis://... or a flags file)")
    p.set_defaults(func=_cmd_watch)

    from cfgcore.cli import scaffold as setup

    p = subparsers.add_parser(
        "setup", help="scaffold a config directory from the embedded defaults"
    )
    setup.add_arguments(p)
    p.set_defaults(func=setup.run)


def _ctx_item(item: str) -> tuple[str, Any]:
    """``--ctx KEY=VALUE``: a malformed item is a usage error (exit 2) naming it. A
    value opening with ``[`` or ``{`` is JSON: one that does not read as JSON is a usage
    error naming the key path where it breaks (``--ctx: prefs.langs.1: invalid JSON:
    ...``), as an environment variable's JSON is, not a string evaluated in its place."""
    from cfgcore.config.environ import json_syntax_error, parse_env_value, unread_problem
    from cfgcore.errors import format_key_path, join_key_paths

    key, sep, raw = item.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(
            f"{item!r}: expected KEY=VALUE (e.g. --ctx user_id=12345 region=EU)"
        )
    value = parse_env_value(raw)
    if isinstance(value, str) and raw.strip()[:1] in ("[", "{"):
        where = format_key_path([key])
        broken = json_syntax_error(raw)
        if broken is not None:
            inner, what = broken
            raise argparse.ArgumentTypeError(f"{join_key_paths(where, inner)}: {what}")
        why = unread_problem(raw)  # a repeated key, nesting past the parser's limit
        if why is not None:
            raise argparse.ArgumentTypeError(f"{where}: {why}")
    return key, value


def _positive_int(raw: str) -> int:
    """A count of at least 1 (``--count 0`` or ``-1`` would exit before the first event)."""
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r}: expected a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{raw!r}: expected a count of at least 1")
    return value


def positive_seconds(raw: str) -> float:
    """A finite number of seconds above 0: ``nan`` (never reached, so ``watch --timeout
    nan`` ran forever), ``inf``, 0 and negative values are usage errors (exit 2)."""
    try:
        value = float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r}: expected a number of seconds") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(
            f"{raw!r}: expected a finite number of seconds greater than 0"
        )
    return value


def _manager(args: argparse.Namespace, *, validate: bool = True) -> Any:
    """A manager that inspects: it validates like a service's (unless ``validate`` is
    False), but writes no audit entry (``cfgcore get`` is not a load of the service's
    configuration, and run as another user it would leave audit files the service cannot
    append to) and records no flag usage (a flag evaluated by hand is not in use)."""
    from cfgcore.config.manager import ConfigurationManager

    manager = ConfigurationManager(
        args.config_dir,
        profile=args.profile,
        geographic_profile=args.geographic_profile,
        validate=validate,
        record_usage=False,
    )
    manager.disable_audit()
    return manager


def _load(args: argparse.Namespace, *, validate: bool | None = None) -> Any:
    """Build and activate the environment's configuration in a fresh inspecting manager.

    ``validate`` defaults to the command's ``--no-validate`` switch (validating when the
    command has none). A configuration that validation refuses is a :class:`CommandError`
    listing each problem with its file, line and key path, and how to look anyway."""
    from cfgcore.errors import ConfigValidationError

    if validate is None:
        validate = getattr(args, "validate", True)
    manager = _manager(args, validate=validate)
    try:
        manager.load_environment_config(getattr(args, "environment", None))
    except ConfigValidationError as exc:
        manager.close()
        if not hasattr(args, "validate"):
            raise
        raise CommandError(
            *str(exc).splitlines(),  # a line per problem, as the refusal rendered them
            f"a load refuses this configuration; cfgcore {args.command} --no-validate "
            "shows it anyway",
        ) from None
    except BaseException:
        manager.close()
        raise
    return manager


def _dump(value: Any, fmt: str = "yaml") -> str:
    from cfgcore.config.tree import thaw

    plain = thaw(value)
    if fmt == "json":
        return json.dumps(plain, indent=2, ensure_ascii=False, default=_json_default)
    from cfgcore.yamlio import dump_yaml

    text = dump_yaml(plain, sort_keys=False, allow_unicode=True, default_flow_style=False)
    # A scalar is dumped as a document with an explicit end ("false\n...\n"); the
    # marker is noise to a reader and optional to a parser.
    return text.removesuffix("\n...\n") + "\n" if text.endswith("\n...\n") else text


def _json_default(value: Any) -> Any:
    # Flag values are served frozen (read-only dict and list subclasses); print them as JSON.
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, (_dt.date, _dt.time)):  # TOML and YAML dates and times: ISO 8601
        return value.isoformat()
    return str(value)


def _scalar(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=_json_default)


def _cmd_show(args: argparse.Namespace) -> int:
    from cfgcore.runtime.redaction import redact

    manager = _load(args)
    # On stderr, so that stdout stays a document a script can parse.
    unchecked = "" if manager.validate else ", not validated"
    if not getattr(args, "quiet", 0):  # -q: only errors on stderr
        print(
            f"# {manager.environment} from {manager.config_dir} "
            f"({manager.config_dir_source}{unchecked})",
            file=sys.stderr,
        )
    key = args.key or ""
    value = manager.config if not key else _require(manager, key)
    sys.stdout.write(_dump(redact(split_path(key), value), args.format).rstrip("\n") + "\n")
    return 0


def _require(manager: Any, key: str) -> Any:
    missing = object()
    # A key holding a dot is written as errors show it (loggers["uvicorn.access"].level);
    # any other text splits on every dot, as get() splits it (split_path: "x[0].level" is
    # key x[0], as in the Python API, not item 0 of a list x).
    value = manager.get(split_path(key), missing)
    if value is missing:
        hint = did_you_mean(key, key_paths(manager.config))
        raise CommandError(f"{key}: not set in environment {manager.environment!r}{hint}")
    return value


def _cmd_get(args: argparse.Namespace) -> int:
    from cfgcore.runtime.redaction import redact

    manager = _load(args)
    value = redact(split_path(args.key), _require(manager, args.key))
    if isinstance(value, dict | list):
        print(_dump(value, "json"))
    else:
        print(_scalar(value))
    return 0


def _cmd_explain(args: argparse.Namespace) -> int:
    from cfgcore.runtime.redaction import redact

    manager = _load(args)
    prov = manager.explain(split_path(args.key))
    if not prov.found and not prov.chain:
        hint = did_you_mean(args.key, key_paths(manager.config))
        where = f"environment {manager.environment!r}"
        raise CommandError(f"{args.key}: not set in {where}; no layer defines it{hint}")
    head = (
        f"{prov.key} = {_scalar(redact(prov.key, prov.value))}"
        if prov.found
        else (f"{prov.key} is not set")
    )
    # Each line escaped: a key or value read from a file holding a line break forged a
    # line of the answer, and one holding a terminal escape drove the terminal.
    print(printable_name(f"{head}    [environment {manager.environment}]"))
    for i, origin in enumerate(prov.chain):
        verb = ("set by" if i == 0 else "overrides") if origin.status == "set" else origin.status
        value = f" = {_scalar(redact(prov.key, origin.value))}" if origin.status == "set" else ""
        if isinstance(origin.value, dict) and origin.status == "set":
            value = " (section)"
        print(printable_name(f"  {verb:<10} {origin.kind:<22} {origin.where()}{value}"))
    if not prov.found:
        # deleted by a later layer (__delete__): the chain above says which
        print(
            f"cfgcore: error: {prov.key}: not set in environment {manager.environment!r}",
            file=sys.stderr,
        )
        return 1
    return 0


def _cmd_diff(args: argparse.Namespace) -> int:
    from cfgcore.config.tree import diff_trees
    from cfgcore.runtime.redaction import redact

    manager = _manager(args)
    a = manager.build_config(args.env_a)
    b = manager.build_config(args.env_b)
    changes = diff_trees(a, b)
    for path, old, new in changes:
        if old is None and new is not None:
            line = f"+ {path}: {_scalar(redact(path, new))}"
        elif new is None and old is not None:
            line = f"- {path}: {_scalar(redact(path, old))}"
        else:
            line = f"~ {path}: {_scalar(redact(path, old))} -> {_scalar(redact(path, new))}"
        print(printable_name(line))  # one line per difference (see _cmd_explain)
    if not getattr(args, "quiet", 0):
        print(
            f"{len(changes)} difference(s) between {args.env_a} and {args.env_b}",
            file=sys.stderr,
        )
    # like diff(1): 0 the same, 1 different, 2 (usage) or 1 (error) on trouble
    return 1 if changes else 0


def _cmd_eval(args: argparse.Namespace) -> int:
    ctx: dict[str, Any] = dict(args.ctx)  # (key, value) pairs, checked by _ctx_item
    manager = _load(args)
    engine = manager.flags
    keys = list(engine.snapshot().keys)
    if args.flag not in keys:
        # The flags file named: the directory's, a store's, or the bundled demo flags
        # served while none is written (a user evaluating "their" flag against those).
        where = manager.flags_path()
        if not keys:
            hint = (
                f" ({where} holds no flags)"
                if where
                else " (this configuration serves no flags: its directory has no flags.yaml;"
                " cfgcore setup writes one)"
            )
        else:
            hint = did_you_mean(args.flag, keys)
            if where:
                hint = f" in {where}{hint}"
        raise CommandError(f"{args.flag}: unknown flag{hint}")
    from cfgcore.runtime.redaction import redact

    details = engine.evaluate(args.flag, ctx)
    # A payload's decrypted ENC[...] values and secret files' contents are masked, as
    # `get` masks them in the configuration (the application reads them in clear).
    value = redact(
        ("flags", args.flag, "variants", str(getattr(details, "variant", ""))),
        getattr(details, "value", None),
    )
    if args.json:
        doc = {
            "flag": args.flag,
            "value": value,
            "variant": getattr(details, "variant", None),
            "reason": str(getattr(details, "reason", "")),
        }
        error = getattr(details, "error_code", None)
        if error:
            doc["error_code"] = str(error)
        print(json.dumps(doc, default=_json_default))
    else:
        # One line, escaped (as explain): a variant's name or text value from the flag
        # document holding a line break or a terminal escape; --json for scripts.
        line = (
            f"{args.flag} = {_scalar(value)}  "
            f"(variant {details.variant}, reason {getattr(details, 'reason', '')})"
        )
        print(printable_name(line))
    return 0


def _cmd_watch(args: argparse.Namespace) -> int:
    import queue

    if args.store:
        from cfgcore.cli.fleet import watch_store

        return watch_store(args)

    from cfgcore.runtime.redaction import redact

    manager = _load(args, validate=True)
    events: queue.Queue[Any] = queue.Queue()
    manager.register_change_listener(events.put)
    manager.enable_hot_reload()
    if not getattr(args, "quiet", 0):  # -q: only errors on stderr
        print(
            f"watching {manager.config_dir} (environment {manager.environment}, "
            f"version {manager.version}); Ctrl-C to stop",
            file=sys.stderr,
            flush=True,
        )
    seen = 0
    deadline = time.monotonic() + args.timeout if args.timeout else None
    try:
        while not args.count or seen < args.count:
            wait = None if deadline is None else deadline - time.monotonic()
            if wait is not None and wait <= 0:
                break
            try:
                event = events.get(timeout=wait if wait is not None else 0.5)
            except queue.Empty:
                continue
            seen += 1
            stamp = time.strftime("%H:%M:%S", time.localtime(event.timestamp))
            if event.is_error:
                # (an error with no message: its type, not an IndexError ending the watch)
                first = next(iter(str(event.error or "").splitlines()), "") or (
                    type(event.error).__name__ if event.error else "rejected"
                )
                print(printable_name(f"{stamp} v{event.version} REJECTED {first}"), flush=True)
            elif event.kind == "flags":
                line = f"{stamp} v{event.version} {event.source} flags from {event.config_path}"
                print(printable_name(line), flush=True)
            else:
                old = _scalar(redact(event.config_path, event.old_value))
                new = _scalar(redact(event.config_path, event.new_value))
                line = (
                    f"{stamp} v{event.version} {event.source} {event.config_path}: {old} -> {new}"
                )
                print(printable_name(line), flush=True)  # one line per change
    finally:
        manager.close()
    return 0
