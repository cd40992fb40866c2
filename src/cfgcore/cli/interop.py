"""``cfgcore import unleash|flagd|growthbook SRC --out FILE`` and ``cfgcore export``.

``import`` lowers another system's flag definitions (:mod:`cfgcore.interop`) into a
cfgcore flag file, compiles it to prove it loads, writes it atomically and prints what
was imported and what was refused (with the reason). Flags that cannot be lowered are
refused, never imported as something else (and so are the flags depending on them). It
never replaces an existing file without ``--force``. Writing the file is the access
policy's ``flags.import`` of its path (``--actor``, default the OS user), and is recorded
in the audit log beside it (``<name>.audit.jsonl``), as a refusal is. Exit status 0 when
every flag was imported, 1 when any was refused or the source cannot be read.

``export --format flagd`` writes the flags whose rules fit flagd's format as a flagd
definition document, and fails naming every flag that does not fit. Without
``--flags`` it exports the flags the services serve; where their flag document does
not exist yet that is the bundled demo set (never in production): it says so on
stderr and leaves out, naming them there, the demo flags that do not fit.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from cfgcore.cli import load_json
from cfgcore.errors import ConfigError, Problem, printable_name

__all__ = ["register"]

SYSTEMS = ("unleash", "flagd", "growthbook")


def register(subparsers: Any) -> None:
    """Add the ``import`` and ``export`` subcommands."""
    p = subparsers.add_parser(
        "import",
        help="import Unleash, flagd or GrowthBook flags into a cfgcore flag file",
        description="Lower another system's flags into a cfgcore flag file with the same "
        "bucketing, so every user keeps the variant they had.",
    )
    p.add_argument("system", choices=SYSTEMS, help="the source system")
    p.add_argument("source", metavar="SRC", help="its JSON (or YAML) flag definitions")
    p.add_argument(
        "--out", metavar="FILE", required=True, help="flag file to write (.yaml/.json/.msgpack)"
    )
    p.add_argument(
        "--fractional",
        choices=("v2", "v3"),
        default="v3",
        help="flagd: fractional bucketing version (default v3)",
    )
    p.add_argument("--saved-groups", metavar="FILE", help="growthbook: saved groups JSON")
    p.add_argument("--force", action="store_true", help="replace an existing file")
    p.add_argument(
        "--actor",
        help="who imports (default: the OS user@host; another name needs the policy's "
        "actor.assume); the access policy's flags.import of the output file, recorded in "
        "the audit log beside it",
    )
    p.set_defaults(func=_cmd_import)

    e = subparsers.add_parser(
        "export",
        help="export flags to another system's format (flagd)",
        description="Export the flags whose rules fit the target format; a flag that does "
        "not fit is an error naming it.",
    )
    e.add_argument("--format", choices=("flagd",), required=True, help="target format")
    e.add_argument("--flags", metavar="FILE", help="cfgcore flag file or store URL (default: "
                   "the flag store the services serve, found as `cfgcore experiment` "
                   "finds it; while it holds no document, the bundled demo flags they "
                   "serve, those that fit flagd)")  # fmt: skip
    e.add_argument("--out", metavar="FILE", help="write here instead of stdout")
    e.add_argument("--force", action="store_true", help="replace an existing file")
    e.set_defaults(func=_cmd_export)


def _read_document(path: str) -> Any:
    """The JSON (or YAML) document in ``path``, within the configuration input limits
    (nesting, 64-bit integers); ConfigError naming the file, line and key path. A file
    named ``*.json`` is read as JSON only; other names as JSON, else YAML."""
    return _read_source(path)[0]


def _read_source(path: str) -> tuple[Any, str, str]:
    """:func:`_read_document`'s document, with the text it was read from and its format
    (``json`` or ``yaml``), for :func:`cfgcore.snapshot.problem_lines` to name the line
    of a problem found later in it."""
    from cfgcore._encoding import decode_text
    from cfgcore.config.files import tree_problem
    from cfgcore.errors import Problem
    from cfgcore.runtime.atomicio import read_regular
    from cfgcore.snapshot import problem_lines

    try:
        raw = read_regular(path)  # a regular file of bounded size, not a FIFO or a device
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror or exc}", file=path) from None
    text = decode_text(raw, path)
    fmt = "json"
    try:
        doc = load_json(text)
    except ValueError as exc:
        if path.lower().endswith(".json"):
            # A .json file is JSON: read as YAML, some broken JSON is a different
            # document ({"on": true 1} is {"on": "true 1"} to YAML), imported silently.
            raise _json_refusal(text, path, exc) from None
        from cfgcore.yamlio import load_yaml

        # JSON's own errors are YAML's too, with the line; a key that is not text
        # (null:, true:, 1.5:) is refused on its line as the file spells it, as the
        # configuration and flag files' loaders refuse it.
        doc = load_yaml(text, file=path, text_keys=True)
        fmt = "yaml"
    problem = tree_problem(doc)
    if problem is not None:
        # on its line, as a configuration file's value out of range is
        with problem_lines(text, fmt, path):
            raise ConfigError([Problem(problem[0], problem[1], file=path)], kind="limits")
    return doc, text, fmt


def _json_refusal(text: str, path: str, exc: ValueError) -> ConfigError:
    """``load_json``'s refusal of a .json file as ``file:line: key path: invalid JSON:
    ...`` where the decoder places it, else its own reason (a duplicate key, nesting)."""
    from cfgcore._json_errors import json_syntax_problem

    try:
        json.loads(text)
    except json.JSONDecodeError as err:
        return ConfigError([json_syntax_problem(err, path)], kind="parse")
    except Exception:  # nested past the parser's stack, an integer past the digit limit
        pass
    return ConfigError(str(exc), file=path, kind="parse")


def _refuse_overwrite(path: str, force: bool) -> None:
    # a directory (not a link to one, which the write replaces) is refused even with
    # --force, before any work: the write would fail naming its temporary file
    if os.path.isdir(path) and not os.path.islink(path):
        raise ConfigError("is a directory (name the file to write)", file=path)
    if os.path.lexists(path) and not force:
        raise ConfigError("already exists (use --force to replace it)", file=path)


def _write_out(path: str, data: bytes) -> None:
    """``data`` written atomically to ``path``; ConfigError naming ``path`` (not the
    temporary file the write goes through) where it cannot be."""
    from cfgcore.runtime.atomicio import atomic_write

    try:
        atomic_write(path, data)
    except OSError as exc:
        raise ConfigError(f"cannot write: {exc.strerror or exc}", file=path) from None


def _cmd_import(args: argparse.Namespace) -> int:
    from cfgcore.experiments.dynamic import state_paths
    from cfgcore.runtime.audit import AuditLog
    from cfgcore.runtime.policy import check, cli_actor
    from cfgcore.snapshot import decode_snapshot, encode_snapshot, format_for, problem_lines

    # The output may be a service's live flags file: writing it is a change like any
    # other, judged by the access policy and recorded in the audit log kept beside it.
    target = os.path.abspath(args.out)
    audit = AuditLog(state_paths(target)["audit"])
    actor = cli_actor(args.actor, audit)  # --actor: judged, never just claimed
    check(actor, "flags.import", target, audit)  # PermissionError: denied, audited
    _refuse_overwrite(args.out, args.force)
    doc, text, source_format = _read_source(args.source)
    # A problem the importer or the compiler names by a key path of the source (not a
    # key that is not text, or a duplicate: the YAML loader gave those their line) gets
    # its line there, as a configuration file's problems have theirs.
    with problem_lines(text, source_format, args.source):  # file:line: key path: ...
        snapshot, paths = _imported(args, doc)
        snapshot = _retiring(snapshot, args.out)
        refused = dict(snapshot.metadata.get("refused") or {})
        _check_unicode(snapshot, refused, args.source, paths)  # before anything is written
    # each refused flag listed with its line in the source, as a problem raised has it
    lines = _refusal_lines(refused, paths, text, source_format, args.source)
    fmt = format_for(args.out)
    data = encode_snapshot(snapshot, fmt)
    decode_snapshot(data, fmt, file=args.out)  # and the file as written reads back
    out_dir = os.path.dirname(os.path.abspath(args.out))
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"cannot make its directory: {exc.strerror or exc}", file=args.out
        ) from None
    _write_out(args.out, data)
    audit.append(
        {
            "ts": datetime.now(tz=timezone.utc).isoformat(),
            "kind": "import",
            "source": f"import {args.system}",
            "path": target,
            "actor": actor,
            "flags": sorted(snapshot.flags),
            "refused": sorted(refused),
        }
    )
    # Flag keys come from the imported document: escaped, one entry per line (a key
    # holding a line break forged an entry; one holding a terminal escape drove the
    # operator's terminal).
    out = printable_name(args.out)
    print(f"imported {len(snapshot.flags)} flags from {args.system} into {out}")
    for name in sorted(snapshot.flags):
        print(f"  + {printable_name(name)}")
    for name, reason in sorted(refused.items()):
        print(
            printable_name(f"  - {name}: refused: {lines.get(name, '')}{reason}"), file=sys.stderr
        )
    if refused:
        # the file they were refused from: a script reading stderr alone knows which
        print(
            f"{printable_name(args.source)}: {len(refused)} flags refused (listed above), "
            f"left out of {printable_name(args.out)}",
            file=sys.stderr,
        )
    return 1 if refused else 0


def _refusal_lines(
    refused: Mapping[str, Any],
    paths: Mapping[str, str],
    text: str,
    fmt: str,
    source: str,
) -> dict[str, str]:
    """``file:line: `` for each refused flag whose place in the source file is found:
    the line of the source key path its reason starts with (``features[1].enabled:
    expected a boolean``, ``flags.f.targeting.if[0]: ...``,
    ``features.f.rules[2].condition: ...``: every importer names the source's key paths,
    a flagd evaluator's too, ``$evaluators.e``), else of the flag itself (``paths``, as
    the importer gave them). Found by :func:`cfgcore.snapshot.located_problems`, which
    gives a problem raised its line."""
    from cfgcore.snapshot import located_problems

    names: list[str] = []
    problems: list[Problem] = []
    for name, reason in refused.items():
        own = paths.get(name, "")
        named = _leading_key_path(str(reason))
        for path in (named, own):
            if path:
                names.append(name)
                problems.append(Problem(path, "refused", file=source))
    out: dict[str, str] = {}
    for name, problem in zip(names, located_problems(problems, text, fmt, source), strict=True):
        if problem.line is not None and name not in out:
            out[name] = f"{source}:{problem.line}: "
    return out


def _leading_key_path(reason: str) -> str:
    """The text before the first ``": "`` of ``reason`` outside a quoted key (``["a:
    b"]``): the key path a refusal's reason starts with, if it starts with one."""
    i, n = 0, len(reason)
    while i < n:
        if reason.startswith('["', i):
            i += 2
            while i < n and reason[i] != '"':
                i += 2 if reason[i] == "\\" else 1
            i += 1
        elif reason.startswith(": ", i):
            return reason[:i]
        else:
            i += 1
    return ""


def _imported(args: argparse.Namespace, doc: Any) -> tuple[Any, dict[str, str]]:
    """The source document ``doc`` as a cfgcore snapshot that compiles, and each imported
    flag's key path in the source (see :func:`_compiled`)."""
    paths: dict[str, str] = {}  # each imported flag's key path in the source document
    values: dict[str, dict[str, str]] = {}  # flag -> variant -> its value's key path there
    if args.system == "unleash":
        from cfgcore.interop import unleash

        snapshot = unleash.to_snapshot(
            doc, on_error="skip", source=args.source, source_paths=paths, value_paths=values
        )
    elif args.system == "flagd":
        from cfgcore.interop import flagd

        snapshot = flagd.to_snapshot(
            doc, args.fractional, on_error="skip", source=args.source, source_paths=paths,
            value_paths=values,
        )  # fmt: skip
    else:
        from cfgcore.interop import growthbook

        groups = _read_document(args.saved_groups) if args.saved_groups else None
        if groups is not None and not isinstance(groups, dict):
            raise ConfigError(
                "saved groups must be an object (group id -> list of values)",
                file=args.saved_groups,
            )
        snapshot = growthbook.to_snapshot(
            doc, saved_groups=groups, on_error="skip", source=args.source, source_paths=paths,
            value_paths=values,
        )  # fmt: skip
    snapshot = _without_secret_references(snapshot, paths, values)
    snapshot = _compiled(snapshot, args.source, args.out, paths)  # proves the file will load
    return snapshot, paths


def _retiring(snapshot: Any, out: str) -> Any:
    """``snapshot`` recording the retirement of the A/B tests that the flags file it
    replaces (``--force``) holds, as ``delete_ab_test`` records a deletion: the shared
    logs keep their records, which a test created again under the name must not count,
    whether or not a process serving the file is running to see them go."""
    from cfgcore.experiments.abtest import retire_dropped
    from cfgcore.snapshot import load_snapshot

    if not os.path.lexists(out):
        return snapshot
    try:
        replaced = load_snapshot(out)
    except (ConfigError, OSError):
        return snapshot  # not a flag document this version reads: no test to retire
    return retire_dropped(replaced, snapshot)


def _without_secret_references(
    snapshot: Any,
    paths: Mapping[str, str] | None = None,
    values: Mapping[str, Mapping[str, str]] | None = None,
) -> Any:
    """The snapshot without the flags whose payloads hold ``ENC[...]`` or ``${file:...}``,
    each refused naming the key path. cfgcore resolves them when it serves the flag, so
    whoever edits flags in the other system could otherwise serve any secret file, or
    decrypt any unbound envelope, as a flag value (as ``create_ab_test`` refuses them).
    The path is the value's in the source (``values``: flag -> variant -> its key path
    there, as the importers report them), else the flag's (``paths``) and the value's
    in the converted document, named as such."""
    import msgspec

    from cfgcore.errors import child_key_path, format_key_path
    from cfgcore.experiments.abtest import secret_references

    bad: dict[str, str] = {}
    for key, flag in snapshot.flags.items():
        found = secret_references(dict(flag.variants)) if flag.variants else []
        if not found:
            continue
        (variant, *inside), _ = found[0]
        why = (
            "holds an encrypted value or a secret file reference, which cfgcore would "
            "resolve and serve; secrets are not imported (add them to the flag file yourself)"
        )
        where = (values or {}).get(key, {}).get(variant)
        if where is not None:
            node = flag.variants[variant]
            for seg in inside:  # (secret_references names a list's items by digits)
                index = isinstance(node, list | tuple)
                where = child_key_path(where, int(seg) if index else seg)
                node = node[int(seg)] if index else node[seg]
            bad[key] = f"{where}: {why}"
        else:
            converted = format_key_path(("flags", key, "variants", variant, *inside))
            own = (paths or {}).get(key, "")
            bad[key] = (
                f"{own + ': ' if own else ''}{why} (at {converted} in the converted cfgcore "
                "document)"
            )
    if not bad:
        return snapshot
    refused = {**(snapshot.metadata.get("refused") or {}), **bad}
    return msgspec.structs.replace(
        snapshot,
        flags={k: v for k, v in snapshot.flags.items() if k not in bad},
        metadata={**snapshot.metadata, "refused": refused},
    )


def _flag_of(path: str, flags: Any) -> str | None:
    """The flag a compile problem's key path (``flags.<key>...``, a key holding a dot
    quoted: ``flags["a.b"].rules[0]``) is in, if any."""
    from cfgcore.errors import parse_key_path

    segs = parse_key_path(path)
    if len(segs) < 2 or segs[0] != "flags" or segs[1] not in flags:
        return None
    return segs[1]


def _converted(path: str, flags: Any, paths: Mapping[str, str] | None) -> tuple[str, str]:
    """Where a problem at ``path`` of the converted cfgcore document is in the source
    document: the key path of the flag holding it there (``features[3]``, ``""`` where
    it is in no flag or the importer did not say), and the converted document's path
    named as such: it is no key path of the source file, which has no ``flags.x.rules``."""
    key = _flag_of(path, flags)
    where = (paths or {}).get(key, "") if key is not None else ""
    return where, f"at {path} in the converted cfgcore document"


def _compiled(snapshot: Any, source: str, out: str, paths: Mapping[str, str] | None = None) -> Any:
    """The imported snapshot once it compiles: a flag the importer lowered but the
    compiler refuses (conditions nested past its bound, ...) is refused like the
    importer's own refusals, naming the flag's key path in the source (``paths``: flag
    -> key path, as the importers report them) and the key path in the converted
    document, and so are the flags that depend on it; a problem in no flag refuses the
    import, naming the source and the key path in the converted document."""
    import msgspec

    from cfgcore.engine import Engine
    from cfgcore.errors import SnapshotError

    while True:
        try:
            Engine.from_snapshot(snapshot, file=out)
            return snapshot
        except SnapshotError as exc:
            bad: dict[str, str] = {}
            for p in exc.problems:
                key = _flag_of(p.path, snapshot.flags)
                if key is None:  # not one flag's problem: nothing to leave out
                    problems = []
                    for q in exc.problems:
                        where, converted = _converted(q.path, snapshot.flags, paths)
                        problems.append(Problem(
                            where, f"the imported flags do not compile ({converted}): "
                            f"{q.message}", file=source))  # fmt: skip
                    raise SnapshotError(problems) from None
                where, converted = _converted(p.path, snapshot.flags, paths)
                bad.setdefault(
                    key,
                    f"{where + ': ' if where else ''}does not compile once converted "
                    f"({converted}): {p.message}",
                )
            refused = {**(snapshot.metadata.get("refused") or {}), **bad}
            snapshot = msgspec.structs.replace(
                snapshot,
                flags={k: v for k, v in snapshot.flags.items() if k not in bad},
                metadata={**snapshot.metadata, "refused": refused},
            )


def _check_unicode(
    snapshot: Any, refused: dict[str, Any], file: str, paths: Mapping[str, str] | None = None
) -> None:
    """A string holding a lone surrogate (JSON's ``"\\ud800"``, which the source's JSON
    reader accepts) is no text: a flag file cannot hold it as UTF-8, nor the audit log
    or the report a flag name. Refused naming the flag and the key path."""
    import msgspec

    from cfgcore.errors import Problem, child_key_path

    def bad(obj: Any, path: str) -> str | None:
        if isinstance(obj, str):
            return None if _is_text(obj) else path
        if isinstance(obj, dict):
            for k, v in obj.items():
                if not _is_text(str(k)):
                    return child_key_path(path, repr(k))
                found = bad(v, child_key_path(path, k))
                if found:
                    return found
        elif isinstance(obj, (list, tuple)):
            for i, v in enumerate(obj):
                found = bad(v, f"{path}[{i}]")
                if found:
                    return found
        return None

    problems = [
        Problem(child_key_path("flags", repr(name)), "a refused flag's name is not valid Unicode")
        for name in refused
        if not _is_text(name)
    ]
    tree = msgspec.to_builtins(snapshot)
    for section in ("flags", "segments", "metadata"):
        for key, value in (tree.get(section) or {}).items():
            found = bad({key: value}, section)
            if found is not None:
                where, converted = _converted(found, snapshot.flags, paths)
                problems.append(
                    Problem(where, f"not valid Unicode text (a lone surrogate; {converted})")
                )
    if problems:
        raise ConfigError([Problem(p.path, p.message, file=file) for p in problems])


def _is_text(s: str) -> bool:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _cmd_export(args: argparse.Namespace) -> int:
    from cfgcore.engine import Engine
    from cfgcore.experiments.dynamic import store_location
    from cfgcore.runtime.flagstore import bundled_seed, open_store

    if args.out:
        _refuse_overwrite(args.out, args.force)  # before the flags are read and judged
    # The flags the services serve, found as their managers find them: --flags, else
    # $CFGCORE_FLAG_STORE, the configuration directory's flags file (config/flags.yaml
    # after `cfgcore setup`), else the state directory's flags.json. Where that holds
    # no document yet the services serve the bundled demo flags (bundled_seed: never in
    # production), and so are they exported. A file named with --flags is the user's:
    # one that does not exist is an error, not the demo flags.
    seed = bundled_seed() if args.flags is None else None
    store = open_store(store_location(store=args.flags)[0], seed=seed)
    try:
        document = store.read()
    finally:
        store.close()
    snapshot = document.snapshot
    # Read from the seed: a file store names the seed file as the document's origin, a
    # Redis store holding no document serves it with no stored bytes.
    from_seed = seed is not None and (document.origin == seed or not document.data)
    # Only a document the services would serve is exported: one they refuse (a default
    # that names no variant, a value no JSON object holds) would go to flagd as if valid.
    origin = seed if from_seed and seed is not None else (document.origin or store.url)
    Engine.from_snapshot(snapshot, file=origin)
    exported, left_out = _to_flagd(snapshot, origin, leave_out=from_seed)
    if from_seed:
        where = getattr(store, "path", None) or store.url
        print(f"cfgcore: no flag document at {where}: exported the bundled demo flags, "
              f"which services serve in its place ({origin})", file=sys.stderr)  # fmt: skip
        if left_out:
            print(f"cfgcore: left out {len(left_out)} of them that do not fit flagd:",
                  file=sys.stderr)  # fmt: skip
            for p in left_out:
                print(printable_name(f"  - {p.path}: {p.message}"), file=sys.stderr)
    text = json.dumps(exported, indent=2, ensure_ascii=False) + "\n"
    if args.out:
        _refuse_overwrite(args.out, args.force)  # again: it may have appeared meanwhile
        _write_out(args.out, text.encode("utf-8"))
        print(f"wrote {printable_name(args.out)}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def _to_flagd(snapshot: Any, origin: str, *, leave_out: bool) -> tuple[Any, list[Problem]]:
    """The flagd document of ``snapshot`` and the problems of the flags left out of it.

    A flag that does not fit flagd is an error naming it and ``origin`` (a document of
    the user's is exported whole or not at all), unless ``leave_out`` (the bundled demo
    flags, exported in place of a document that does not exist): then it is left out
    and named in the problems returned, as are the flags that then no longer fit."""
    import msgspec

    from cfgcore.interop import flagd

    left_out: list[Problem] = []
    while True:
        try:
            return flagd.from_snapshot(snapshot), left_out
        except ConfigError as exc:  # each flag that does not fit, named with its file
            problems = [p if p.file else dataclasses.replace(p, file=origin)
                        for p in exc.problems]  # fmt: skip
            keys = {_flag_of(p.path, snapshot.flags) for p in problems}
            if not leave_out or None in keys:
                raise ConfigError(problems) from None
            left_out += problems
            snapshot = msgspec.structs.replace(
                snapshot, flags={k: v for k, v in snapshot.flags.items() if k not in keys}
            )
