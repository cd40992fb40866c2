"""``cfgcore validate`` and ``cfgcore schema``.

``cfgcore validate`` checks what would be activated: by default the configuration
directory's layers for the environment (built exactly as the configuration manager
builds them, without activating anything), or the files given on the command line,
deep-merged in order (maps merge, lists replace). Each finding is printed with the
file and line that set the key where that is known, and its suggested fix. Exit
status: 0 when valid, 1 when a critical/error finding (or, with ``--strict``, a
warning) is present or the input cannot be read.

``cfgcore schema`` prints (or atomically writes, ``-o FILE``) the JSON Schema of the
known configuration sections for editor completion.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping
from functools import reduce
from typing import Any

from cfgcore.errors import ConfigError, Problem, format_key_path, printable

__all__ = ["register"]


def register(subparsers: Any) -> None:
    """Add the ``validate`` and ``schema`` subcommands."""
    p = subparsers.add_parser(
        "validate",
        help="validate a configuration and print findings with suggested fixes",
        description="Validate a configuration (structure, security, GDPR, streaming rules).",
    )
    p.add_argument(
        "files",
        nargs="*",
        help="configuration files, deep-merged in the order given; default: the config "
        "directory's layers for the environment",
    )
    p.add_argument(
        "-e",
        "--environment",
        help="environment (default: $CONFIG_ENVIRONMENT or $CFGCORE_ENVIRONMENT, else "
        "development; with FILES, the files' own 'environment' key)",
    )
    p.add_argument(
        "--config-dir",
        help="configuration directory (default: $CFGCORE_CONFIG_DIR, else ./config if it "
        "holds a base or environment file, else the bundled set)",
    )
    p.add_argument(
        "--profile",
        help="deployment profile to apply (directory mode; default: $CONFIG_PROFILE or "
        "$CFGCORE_PROFILE)",
    )
    p.add_argument(
        "--geographic-profile",
        help="geographic profile to apply, e.g. EU (default in directory mode: "
        "$CONFIG_GEOGRAPHIC_PROFILE or $CFGCORE_GEOGRAPHIC_PROFILE)",
    )
    p.add_argument("--format", choices=("text", "json"), default="text", help="output format")
    p.add_argument("--strict", action="store_true", help="warnings also give exit status 1")
    p.add_argument(
        "--disable", action="append", default=[], metavar="RULE_ID", help="skip a rule (repeatable)"
    )
    p.add_argument("--list-rules", action="store_true", help="list the rules and exit")
    p.set_defaults(func=_cmd_validate)

    s = subparsers.add_parser(
        "schema",
        help="print the JSON Schema of the configuration",
        description="Print or write the JSON Schema of the known configuration sections.",
    )
    s.add_argument("-o", "--output", help="write to this file (atomically) instead of stdout")
    s.set_defaults(func=_cmd_schema)


def _cmd_schema(args: argparse.Namespace) -> int:
    from cfgcore.config.schema import json_schema_text

    text = json_schema_text()
    if args.output:
        from cfgcore.runtime.atomicio import atomic_write_text

        try:
            atomic_write_text(args.output, text)
        except OSError as exc:
            raise ConfigError(f"cannot write: {exc.strerror or exc}", file=args.output) from None
        if not getattr(args, "quiet", 0):  # -q: only errors on stderr
            print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    from cfgcore.validation_engine import ConfigValidator

    validator = ConfigValidator()
    if args.list_rules:
        _print_rules(validator)
        return 0
    skipped = set()  # the command's own checks that --disable names
    for rule_id in args.disable:
        if rule_id in COMMAND_CHECKS:
            skipped.add(rule_id)
            continue
        try:
            validator.disable_rule(rule_id)
        except KeyError:
            from cfgcore.cli import UsageError
            from cfgcore.config.tree import did_you_mean

            known = [r.rule_id for r in validator.rule_catalog()] + list(COMMAND_CHECKS)
            raise UsageError(
                f"--disable: unknown rule id {rule_id!r}{did_you_mean(rule_id, known)}; "
                "cfgcore validate --list-rules lists them"
            ) from None

    try:
        return _validate(args, validator, skipped)
    except ConfigError as exc:
        if args.format == "json":
            # The input cannot be read (a file missing, not YAML or JSON, the directory
            # absent): still a report on stdout, as a flags file's such problems are,
            # or a script parsing it broke exactly when something was wrong. The
            # error lines go to stderr too, as every command's do.
            _print_unreadable(args, exc)
        raise


def _print_unreadable(args: argparse.Namespace, exc: ConfigError) -> None:
    """The JSON report of a validation whose input could not be read: one critical
    ``config.read`` finding per problem, with its file and line."""
    from cfgcore.validation.core import ValidationReport, ValidationResult

    problems = exc.problems or [Problem(path="", message=str(exc))]
    name = "+".join(os.path.basename(f) for f in args.files) or str(args.environment or "")
    report = ValidationReport(name, args.environment)
    report.results = [
        ValidationResult(rule_id=READ, severity="critical", message=str(p)) for p in problems
    ]
    doc = report.to_dict()
    for item, p in zip(doc["results"], problems, strict=True):
        item["file"], item["line"] = p.file, p.line
    print(json.dumps(doc, indent=2, default=str))


def _validate(args: argparse.Namespace, validator: Any, skipped: set[str]) -> int:
    config, name, layers, env, flag_problems, snap, environ = _load(args)
    report = validator.validate_config(
        config,
        name,
        env,
        context={"geographic_profile": args.geographic_profile}
        if args.geographic_profile
        else None,
    )
    # Activation compiles the flags with the configuration and refuses both if they do
    # not compile: so does validate (issue 10: validate said valid, load failed).
    if RULE_AHEAD in skipped:
        flag_problems = [p for p in flag_problems if not isinstance(p, _RuleAhead)]
    report.results[:0] = [_flag_result(p) for p in flag_problems]
    if not args.files:
        report.results.extend(_resolved_findings(args, validator, name, env, report.results, snap))
        if UNKNOWN_OVERRIDE not in skipped:
            report.results.extend(_override_findings(args))
        if EMPTY_SECRET not in skipped:
            report.results.extend(_empty_secret_findings(snap, environ))
    where = {id(r): _locate(r.key_path, layers, config) for r in report.results}
    if args.format == "json":
        doc = report.to_dict()
        for item, r in zip(doc["results"], report.results, strict=True):
            item["file"], item["line"] = where[id(r)]
        print(json.dumps(doc, indent=2, default=str))
    else:
        _print_text(report, where)
    failed = not report.overall_valid or (args.strict and report.counts()["warning"] > 0)
    return 1 if failed else 0


def _load(
    args: argparse.Namespace,
) -> tuple[Mapping[str, Any], str, list[Any], str | None, list[Problem], Any, Any]:
    """The tree to validate, its display name, file layers for file:line lookup, the
    environment whose rules apply, the problems of the flags activation would
    compile with it, and (directory mode; else None) the unactivated build and the
    variables it was built with (the process's and the ``.env`` file's).

    File mode: flag documents (files named ``flags.*``, or whose top level is a flag
    document's: ``flags`` and at most ``version``, ``segments``, ``experiments`` and
    ``metadata``) are compiled as activation compiles them; the others are
    configuration layers, deep-merged in order.
    Directory mode: the layers and the flag store exactly as the manager builds them.
    """
    from cfgcore.config.builder import FLAG_FILE_NAMES, directory_flags_file, null_over_section
    from cfgcore.config.files import read_config_file
    from cfgcore.config.tree import deep_merge

    if args.files:
        for f in args.files:
            if os.path.isdir(f):
                raise ConfigError(
                    "is a directory; validate takes configuration files, or a "
                    f"configuration directory as --config-dir {f} -e ENVIRONMENT",
                    file=f,
                    kind="io",
                )
        flag_files = [f for f in args.files if os.path.basename(f) in FLAG_FILE_NAMES]
        layers = []
        for f in args.files:
            if f in flag_files:
                continue
            layer = read_config_file(f)
            if _is_flag_document(layer.data):
                flag_files.append(f)
            else:
                layers.append(layer)
        problems = [p for f in flag_files for p in _compile_flags(f, None)]
        if not layers:
            name = "+".join(os.path.basename(f) for f in flag_files)
            return {}, name, [], args.environment, problems, None, None
        # A later file leaving a section's key empty over an earlier file's section is
        # refused as the builder refuses it (a file saved half-way).
        merged: dict[str, Any] = {}
        for layer in layers:
            problems += [
                _LayerProblem(p.path, p.message, p.file, p.line, p.kind)
                for p in null_over_section(merged, layer)
            ]
            merged = deep_merge(merged, layer.data)
        config = reduce(deep_merge, (layer.data for layer in layers[1:]), dict(layers[0].data))
        name = "+".join(os.path.basename(f) for f in args.files)
        return config, name, layers, args.environment, problems, None, None

    from cfgcore.config.environ import with_refs
    from cfgcore.config.manager import ConfigurationManager
    from cfgcore.runtime.flagstore import bundled_seed

    manager = ConfigurationManager(args.config_dir, environment=args.environment)
    snap = manager._build_unactivated(args.environment, args.profile, args.geographic_profile)
    # with_refs: a secret supplied through ${ENV} is judged as that reference (as the
    # manager's own validation does), not as the literal value it resolved to.
    config = with_refs(snap.config, snap.refs)
    # The environment activation judges with: the one built (as load resolves it).
    env = args.environment or manager._resolve(None, None, None)[0]
    # Every layer of the build (profile files and environment variables included), as
    # activation's own messages use: with only base and the environment file, a value
    # a profile set was blamed on the line of base.yaml it overrode.
    layers = list(snap.layers)
    url = manager.flag_store_url()
    # (no demo catalog in place of a missing flags file in production, chosen by -e
    # too, as the manager's flag set: config/flags.py ConfigFlags._seed)
    seed = manager._flags._seed(bundled_seed(manager._environ))
    problems = _compile_flags(url, seed) if url else []
    # The directory's own flags file while a named store serves instead
    # ($CFGCORE_FLAG_STORE): what `cfgcore publish --flags` sends that store.
    own = directory_flags_file(manager.config_dir)
    if own is not None and url is not None and os.path.abspath(own) != os.path.abspath(url):
        problems += _compile_flags(own, None)
    try:
        # Loading production from the embedded demo set (no directory chosen) is
        # refused before anything is built: validate said "valid" to it.
        manager._refuse_embedded_in_production(str(env))
    except ConfigError as exc:
        problems[:0] = [
            _RefusedProblem(p.path, p.message, p.file, p.line, p.kind) for p in exc.problems
        ]
    return config, str(env), layers, str(env), problems, snap, manager.builder.env_vars


# The top-level fields of a flag document (cfgcore.snapshot.Snapshot).
_FLAG_DOCUMENT_KEYS = frozenset({"version", "flags", "segments", "experiments", "metadata"})


def _is_flag_document(data: Mapping[str, Any]) -> bool:
    """Whether a file not named ``flags.*`` holds a flag document rather than a
    configuration. ``Engine.from_file`` and ``--flags FILE`` take any name: such a file
    was validated as a configuration, which saw a rollout out of range but not a missing
    default or an unknown variant, and said "valid" to a document that does not compile."""
    return (
        "flags" in data
        and isinstance(data["flags"], Mapping)
        and data.keys() <= _FLAG_DOCUMENT_KEYS
    )


def _resolved_findings(
    args: argparse.Namespace,
    validator: Any,
    name: str,
    env: str | None,
    found: list[Any],
    snap: Any,
) -> list[Any]:
    """Findings on the values ``${VAR}`` references and ``CFGCORE__`` overrides resolved
    to, judged as activation judges them (cfgcore.config.checks.resolved_findings).

    ``snap`` is the build :func:`_load` made: building it again read and parsed every
    file twice, which doubled the time ``validate`` took on a large configuration."""
    from cfgcore.config.checks import resolved_findings

    context = {"geographic_profile": args.geographic_profile} if args.geographic_profile else None
    extra = resolved_findings(
        lambda tree: validator.validate_config(tree, name, env, context=context),
        snap.config,
        snap.refs,
        snap.layers,
    )
    seen = {(r.rule_id, r.key_path) for r in found if not r.is_valid}
    return [r for r in extra if (r.rule_id, r.key_path) not in seen]


EMPTY_SECRET = "secrets.empty"


def _empty_secret_findings(snap: Any, environ: Mapping[str, str] | None) -> list[Any]:
    """A warning for each secret the build left empty (``${POSTGRES_PASSWORD:-}`` with
    the variable not exported): loading accepts them, so they never block, but the
    service would start without them (``cfgcore setup`` reports the same list: the
    same variables judge which are secrets, ``CFGCORE_SECRET_VARS`` from the ``.env``
    file included)."""
    from cfgcore.config.checks import empty_secrets_of, shown_ref
    from cfgcore.validation.core import ValidationResult

    out = []
    for path, ref in empty_secrets_of(snap, environ):
        source = f" (from {shown_ref(ref)})" if ref else ""
        out.append(
            ValidationResult(
                rule_id=EMPTY_SECRET,
                severity="warning",
                message=f"{path}: secret is empty{source}",
                key_path=path,
                suggested_fix="export the variable (or set it in the .env file beside the "
                "configuration directory) before starting the service"
                if ref
                else "set the secret, as a ${VAR} reference or an encrypted value",
            )
        )
    return out


def _compile_flags(url: str, seed: str | None) -> list[Problem]:
    """Problems of the flag document at ``url`` (a path or store URL), compiled as
    activation compiles it (experiment layers derived, then the compiler); [] if fine."""
    import time

    from cfgcore.engine import Engine
    from cfgcore.experiments.abtest import rules_ahead_of_split
    from cfgcore.runtime.flags import derive
    from cfgcore.runtime.flagstore import document_lines, open_store

    try:
        store = open_store(url, seed=seed)
    except ConfigError as exc:
        return list(exc.problems)
    try:
        doc = store.read()
        with document_lines(store, doc):  # file:line: key path: ...
            derived = derive(doc.snapshot, doc.origin)
            Engine().compile(derived, file=doc.origin)
            # What goes live with it, told and not refused: a rule ahead of a running
            # A/B test's split takes users the test enrolled (every rule there: there
            # is no earlier document to compare with; the test's own flag has none).
            ahead = rules_ahead_of_split(None, derived, time.time(), doc.origin)
            return [_RuleAhead(p.path, p.message, p.file, p.line, p.kind) for p in ahead]
    except ConfigError as exc:
        return list(exc.problems)
    finally:
        store.close()


def _flag_result(problem: Problem) -> Any:
    from cfgcore.validation.core import ValidationResult

    if isinstance(problem, _RuleAhead):
        return ValidationResult(
            rule_id=RULE_AHEAD, severity="warning", message=str(problem), key_path=""
        )
    if isinstance(problem, _RefusedProblem):
        rule_id = "config.refused"
    elif isinstance(problem, _LayerProblem):
        rule_id = "config.incomplete"
    else:
        rule_id = "flags.compile"
    return ValidationResult(
        rule_id=rule_id,
        severity="critical",
        message=str(problem),
        key_path="",  # the message names file:line and key path already
    )


class _LayerProblem(Problem):
    """A configuration layer refused before validation (a section left empty over
    the one an earlier file set), reported beside the flag compile problems."""


class _RuleAhead(Problem):
    """A rule ahead of a running A/B test's split: a warning, not a refusal."""


class _RefusedProblem(Problem):
    """Loading refuses the environment whatever its files hold (production from the
    embedded demo set): reported like the flag compile problems."""


UNKNOWN_OVERRIDE = "environment.unknown_override"

# The rule id of a --format json finding that the input could not be read.
READ = "config.read"


# The checks this command adds to the validation engine's rules (directory mode), by the
# rule id their findings print: --disable and --list-rules take them like the engine's,
# so a warning's [rule id] can be copied into --disable (it was "unknown rule id").
RULE_AHEAD = "flags.rule_ahead_of_split"

COMMAND_CHECKS = {
    EMPTY_SECRET: "secrets a ${VAR:-} reference left empty (the variable not set)",
    RULE_AHEAD: "flag rules ahead of a running A/B test's split (they take users it enrolled)",
    UNKNOWN_OVERRIDE: "CFGCORE__ variables that match no configuration key (a misspelt override)",
}


def _override_findings(args: argparse.Namespace) -> list[Any]:
    """A warning for each ``CFGCORE__A__B`` variable that matches no configuration key.

    The manager accepts such a variable as a new key, so a misspelled override
    (``CFGCORE__SERVER__PROT``) would otherwise change nothing without a word. The keys
    are those of the configuration built without any ``CFGCORE__`` variable.
    """
    from cfgcore.cli.config import did_you_mean
    from cfgcore.config.manager import ConfigurationManager
    from cfgcore.validation.core import ValidationResult

    marker = "CFGCORE__"
    probe = ConfigurationManager(args.config_dir, environment=args.environment)
    environ = dict(probe.builder.env_vars)
    names = sorted(k for k in environ if k.startswith(marker) and len(k) > len(marker))
    if not names:
        return []
    clean = {k: v for k, v in environ.items() if not k.startswith(marker)}
    tree = ConfigurationManager(
        args.config_dir, environment=args.environment, environ=clean
    ).build_config(
        args.environment,
        profile=args.profile,
        geographic_profile=args.geographic_profile,
        keep_references=True,
    )
    known: list[str] = []

    def walk(node: Any, prefix: tuple[str, ...]) -> None:
        if isinstance(node, Mapping):
            for k, v in node.items():
                path = (*prefix, str(k))
                known.append(marker + "__".join(s.upper() for s in path))
                walk(v, path)

    walk(tree, ())
    findings = []
    for var in names:
        node: Any = tree
        path: list[str] = []
        for part in var[len(marker) :].split("__"):
            match = None
            if isinstance(node, Mapping):
                match = next((k for k in node if str(k).lower() == part.lower()), None)
            if match is None:
                path.append(part.lower())
                break
            path.append(str(match))
            node = node[match]
        else:
            continue  # every segment names an existing key: a real override
        dotted = format_key_path(path)  # a key holding a dot quoted, as findings show it
        findings.append(
            ValidationResult(
                rule_id=UNKNOWN_OVERRIDE,
                severity="warning",
                message=f"{dotted}: environment variable {var} matches no configuration key, "
                f"so it adds one instead of overriding{did_you_mean(var, known)}",
                key_path=dotted,
                suggested_fix="correct the variable's name, or add the key to a "
                "configuration file if it is meant to be new",
            )
        )
    return findings


def _locate(key_path: str, layers: list[Any], config: Any) -> tuple[str | None, int | None]:
    if not key_path or not layers:
        return None, None
    from cfgcore.config.provenance import explain

    try:
        winner = explain(layers, key_path, config).winner
    except Exception:  # attribution is best effort; the finding itself still prints
        return None, None
    if winner is None or not winner.file:
        return None, None
    line = winner.line  # custom profile layers carry their lines too
    rel = os.path.relpath(winner.file)
    return (winner.file if rel.startswith("..") else rel), line


def _print_text(report: Any, where: dict[int, tuple[str | None, int | None]]) -> None:
    out = sys.stdout
    for r in report.failures:
        file, line = where[id(r)]
        loc = f"{file}:{line}: " if file and line else (f"{file}: " if file else "")
        # one finding, one line: a key from a file may hold "\n" or an escape sequence
        out.write(f"{printable(loc)}{r.severity}: {printable(r.message)} [{r.rule_id}]\n")
        if r.suggested_fix:
            out.write(f"    fix: {printable(r.suggested_fix)}\n")
    counts = report.counts()
    verdict = "valid" if report.overall_valid else "INVALID"
    shown = ", ".join(f"{n} {sev}" for sev, n in counts.items() if n)
    env = report.environment or "unspecified environment"
    tail = f" - {shown}" if shown else ""
    timing = f"[{report.rules_run} rules, {report.duration_ms:.2f} ms]"
    out.write(f"{report.config_name} ({env}): {verdict}{tail} {timing}\n")


def _print_rules(validator: Any) -> None:
    rows = validator.rule_catalog()
    width = max(len(r) for r in [*(r.rule_id for r in rows), *COMMAND_CHECKS])
    for r in rows:
        levels = ", ".join(f"{env}={lvl}" for env, lvl in r.env_severity.items())
        extra = f" ({levels})" if levels else ""
        print(f"{r.rule_id:<{width}}  {r.severity:<8} {r.description}{extra}")
    for rule_id, text in COMMAND_CHECKS.items():
        print(f"{rule_id:<{width}}  {'warning':<8} {text} (configuration directory only)")
