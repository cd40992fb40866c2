"""``cfgcore migrate SRC [--map MAP.yaml] --out DIR``: a legacy file into a config file.

Writes ``DIR/<name>.yaml`` (``--name``, default ``base``) and ``DIR/migration-report.json``
as one change (both or neither; see :func:`write_together`), the report first, so the
configuration never exists without its report; the report names the configuration's
SHA-256. Runs into one directory take turns (a lock file there), and a run that crashed
half-way is rolled back by the next one. It prints the migration report and the
validation findings, and refuses to replace an existing file unless ``--force`` is
given. Exit status: 0 when the result validates, 1 when it has validation errors, the
input cannot be read or the files cannot be written (nothing is written then).
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import hashlib
import json
import os
import shutil
import stat
import tempfile
from typing import Any

from cfgcore.errors import ConfigError, Problem, printable_name
from cfgcore.runtime.atomicio import FileLock, fsync_dir

__all__ = ["register"]

REPORT_NAME = "migration-report.json"
LOCK_NAME = ".cfgcore-migrate.lock"  # one run at a time per directory
STAGE_PREFIX = ".cfgcore-migrate-"  # a run's staging directory (see write_together)
PLAN = "plan.json"


def register(subparsers: Any) -> None:
    """Add the ``migrate`` subcommand."""
    p = subparsers.add_parser(
        "migrate",
        help="migrate a legacy INI/.properties/.env/JSON/YAML configuration",
        description="Convert a legacy configuration file into a cfgcore configuration "
        "file typed by the schema, with a report of mapped, unmapped, conflicting and "
        "defaulted keys.",
    )
    p.add_argument("source", metavar="SRC", help="the legacy file")
    p.add_argument("--map", metavar="MAP.yaml", help="mapping file: renames, moves, defaults")
    p.add_argument("--out", metavar="DIR", required=True, help="directory to write into")
    p.add_argument(
        "--name",
        default="base",
        type=_config_name,
        help="configuration file name, written as NAME.yaml (default: base)",
    )
    p.add_argument(
        "--keep-unmapped",
        action="store_true",
        help="keep keys that match nothing in the schema at their own dotted path",
    )
    p.add_argument("--force", action="store_true", help="replace existing files")
    p.set_defaults(func=_cmd_migrate)


def _config_name(raw: str) -> str:
    """``--name``: a plain file name, its ``.yaml``/``.yml`` suffix optional (``base.yaml``
    wrote ``base.yaml.yaml``). A name the configuration directory would read as another
    kind of file (``flags``: the flag document) or in another format is a usage error."""
    name = raw.removesuffix(".yaml").removesuffix(".yml")
    if not name or os.path.basename(name) != name or name.startswith(".") or "\\" in name:
        raise argparse.ArgumentTypeError(f"{raw!r}: expected a plain file name such as base")
    stem, ext = os.path.splitext(name)
    if ext.lower() in (".json", ".toml"):
        raise argparse.ArgumentTypeError(f"{raw!r}: migrate writes YAML; use --name {stem}")
    if name.lower() == "flags":
        raise argparse.ArgumentTypeError(
            f"{raw!r}: flags.yaml is the directory's flag document, not a configuration layer"
        )
    from cfgcore.config.builder import _ENV_NAME, MIGRATION_REPORT_STEM

    if name == MIGRATION_REPORT_STEM:  # no environment can be loaded from it
        raise argparse.ArgumentTypeError(
            f"{raw!r}: {REPORT_NAME} is the report migrate writes; choose another name"
        )
    if not _ENV_NAME.match(name):  # environments are looked up in lower case
        raise argparse.ArgumentTypeError(
            f"{raw!r}: expected lower case letters, digits, '_', '-' and '.' (an "
            "environment is looked up in lower case: -e Prod reads prod.yaml)"
        )
    return name


def _cmd_migrate(args: argparse.Namespace) -> int:
    from cfgcore.config.migration import LegacyConfigMigrator
    from cfgcore.config.tree import escape_markers
    from cfgcore.validation_engine import validate_configuration
    from cfgcore.yamlio import dump_yaml

    name = args.name  # checked by _config_name
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise ConfigError("--out must name a directory; this is a file", file=args.out)
    config_path = os.path.join(args.out, f"{name}.yaml")
    report_path = os.path.join(args.out, REPORT_NAME)
    if not args.force:
        _refuse_existing(config_path, report_path)  # early; checked again under the lock
    migration = LegacyConfigMigrator(args.map, keep_unmapped=args.keep_unmapped).migrate(
        args.source
    )
    report = validate_configuration(migration.config)
    unloadable = _malformed_references(migration.config)
    # The source's name escaped: a line break in it ended the comment, and the rest of
    # the name was read as configuration keys.
    source = printable_name(os.path.basename(args.source))
    header = f"# Migrated by cfgcore from {source}; see {REPORT_NAME}\n"
    # dump_yaml quotes what cfgcore's YAML 1.2 reading would not read back as written:
    # yaml.safe_dump left the text "0o17" plain, and loading the file gave the int 15.
    # The tree holds values as served: a legacy text "__delete__" is written escaped,
    # as a layer must spell it (it removed its key from the migrated configuration).
    body = dump_yaml(
        escape_markers(migration.config),
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
    )
    config_bytes = (header + (body if migration.config else "{}\n")).encode("utf-8")
    data = migration.report.to_dict()
    data["valid"] = report.overall_valid and not unloadable
    # Which configuration this report describes: a reader can tell a pair apart.
    data["config_file"] = os.path.basename(config_path)
    data["config_sha256"] = hashlib.sha256(config_bytes).hexdigest()
    report_bytes = (json.dumps(data, indent=2, default=str) + "\n").encode("utf-8")
    try:
        os.makedirs(args.out, exist_ok=True)
        with FileLock(os.path.join(args.out, LOCK_NAME)):
            recover(args.out)
            if not args.force:
                _refuse_existing(config_path, report_path)
            # The report first: the configuration never exists without its report.
            write_together(
                args.out,
                [(report_path, report_bytes), (config_path, config_bytes)],
                replace=args.force,
            )
    except OSError as exc:
        raise ConfigError(
            f"cannot write the migrated configuration ({exc.strerror or exc}); nothing was changed",
            file=getattr(exc, "filename", None) or args.out,
        ) from None
    print(migration.report)
    for r in report.failures:
        print(printable_name(f"  {r.severity:9}  {r.message}"))
    for line in unloadable:
        print(printable_name(f"  {'error':9}  {line}"))
    print(printable_name(f"wrote {config_path} and {report_path}"))
    if not report.overall_valid or unloadable:
        print("the migrated configuration does not validate: fix the findings above")
        return 1
    return 0


def _malformed_references(tree: Any, path: tuple[Any, ...] = ()) -> list[str]:
    """A line for each value of the migrated tree a load would refuse as a malformed
    environment reference: a legacy placeholder such as Spring's ``${user.home}``
    validated here (references are substituted at load), and the file then failed to
    load."""
    from cfgcore.config.transforms import _REF, _snippet
    from cfgcore.errors import format_key_path

    out: list[str] = []
    if isinstance(tree, dict):
        for key, value in tree.items():
            out += _malformed_references(value, (*path, key))
    elif isinstance(tree, list):
        for i, value in enumerate(tree):
            out += _malformed_references(value, (*path, i))
    elif isinstance(tree, str) and "${" in tree:
        bad = next((m for m in _REF.finditer(tree) if m.group("bad")), None)
        if bad is not None:
            out.append(
                f"{format_key_path(path)}: malformed reference {_snippet(tree, bad.start())}: "
                "a load reads ${ as an environment reference (write $${ for a literal ${, "
                "or ${NAME} for a variable)"
            )
    return out


def _refuse_existing(*paths: str) -> None:
    existing = [p for p in paths if os.path.lexists(p)]
    if existing:
        # Each named (the configuration and its report both there: both said, as
        # --force replaces both), one line each.
        raise ConfigError(
            [Problem("", "already exists (use --force to replace it)", file=p) for p in existing]
        )


# ------------------------------------------------------------ writing files together
#
# Each file alone is written atomically (temp file, fsync, rename); together they are a
# small transaction in a staging directory beside them (".cfgcore-migrate-*"):
#
# 1. the new files are written and fsynced there, the current files hard-linked there
#    as backups (they stay where they are), and then the plan (the target names);
# 2. each new file is renamed over its target, in order (no-replace: hard-linked, which
#    fails if the target appeared meanwhile);
# 3. the plan is removed (the commit), then the rest of the staging directory.
#
# Any failure in 2 puts the backups back (a target that did not exist is removed again),
# so a run changes all the files or none. A crash leaves the staging directory with its
# plan; the next run (under the same lock) rolls it back before doing anything else.


def write_together(directory: str, items: list[tuple[str, bytes]], *, replace: bool) -> None:
    """Write every ``(path, data)`` of ``items`` (all in ``directory``), in order, as
    one change: on an error (OSError, the no-replace target that appeared meanwhile)
    nothing was changed. The caller holds the directory's lock."""
    stage = tempfile.mkdtemp(prefix=STAGE_PREFIX, dir=directory)
    try:
        plan = []
        for i, (target, data) in enumerate(items):
            _write_synced(os.path.join(stage, f"new-{i}"), data)
            if os.path.lexists(target):
                if os.path.isdir(target) and not os.path.islink(target):
                    raise IsADirectoryError(errno.EISDIR, "a directory is in the way", target)
                _backup(target, os.path.join(stage, f"old-{i}"))
            plan.append(os.path.basename(target))
        _write_synced(os.path.join(stage, PLAN), json.dumps(plan).encode("utf-8"))
        fsync_dir(stage)
        try:
            for i, (target, _) in enumerate(items):
                new = os.path.join(stage, f"new-{i}")
                if replace:
                    os.replace(new, target)
                else:
                    _place_new(new, target)  # FileExistsError: someone else's file, kept
            fsync_dir(directory)
        except BaseException:
            _roll_back(directory, stage)
            raise
        os.unlink(os.path.join(stage, PLAN))  # committed
        fsync_dir(stage)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def recover(directory: str) -> None:
    """Roll back what a run that crashed while writing left half done (see above).

    Only a staging directory a run of this user made (``mkdtemp``: this user's, no one
    else may write in it) is rolled back and removed: in a directory others may create
    files in (a shared, sticky one), another user's, with a plan and "backups" of their
    own, made a run replace or remove any file of the directory with what they chose."""
    try:
        names = [n for n in os.listdir(directory) if n.startswith(STAGE_PREFIX)]
    except OSError:
        return
    for name in names:
        stage = os.path.join(directory, name)
        if not _own_stage(stage):
            continue
        if os.path.lexists(os.path.join(stage, PLAN)):
            _roll_back(directory, stage)
        shutil.rmtree(stage, ignore_errors=True)


def _own_stage(stage: str) -> bool:
    """Whether ``stage`` is a directory (not a link to one) of this user that no one
    else may write in, as ``mkdtemp`` makes it."""
    try:
        st = os.lstat(stage)
    except OSError:
        return False
    if not stat.S_ISDIR(st.st_mode):
        return False
    if os.name == "nt" or not hasattr(os, "geteuid"):  # pragma: no cover - no POSIX owners
        return True
    return st.st_uid == os.geteuid() and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def _roll_back(directory: str, stage: str) -> None:
    try:
        with open(os.path.join(stage, PLAN), "rb") as fh:
            plan = json.loads(fh.read())
    except (OSError, ValueError):
        return
    for i, base in enumerate(plan):
        if not isinstance(base, str) or os.path.basename(base) != base or not base:
            continue
        target = os.path.join(directory, base)
        new, old = os.path.join(stage, f"new-{i}"), os.path.join(stage, f"old-{i}")
        placed = not os.path.lexists(new) or (
            os.path.lexists(target) and os.path.samestat(os.lstat(new), os.lstat(target))
        )
        if not placed:
            continue
        if os.path.lexists(old):
            os.replace(old, target)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(target)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(os.path.join(stage, PLAN))
    fsync_dir(directory)


# A filesystem without hard links (some network and FUSE ones) says so with these.
_NO_LINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.ENOSYS}


def _backup(target: str, backup: str) -> None:
    """``backup``: the current ``target`` (a hard link; a copy where there are none)."""
    try:
        os.link(target, backup, follow_symlinks=False)
    except OSError as exc:
        if exc.errno not in _NO_LINKS:
            raise
        shutil.copy2(target, backup, follow_symlinks=False)


def _place_new(new: str, target: str) -> None:
    """Rename ``new`` to ``target`` unless ``target`` exists (FileExistsError)."""
    try:
        os.link(new, target)  # fails if the target exists, whoever made it
    except FileExistsError:
        raise
    except OSError as exc:
        if exc.errno not in _NO_LINKS:
            raise
        if os.path.lexists(target):  # no atomic check there: the lock has to do
            raise FileExistsError(errno.EEXIST, "already exists", target) from None
        os.replace(new, target)
    else:
        os.unlink(new)


def _write_synced(path: str, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
