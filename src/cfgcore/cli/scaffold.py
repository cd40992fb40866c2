"""Scaffold a configuration directory from the embedded defaults.

    python -m cfgcore.setup --environment staging            # writes ./config
    python -m cfgcore.setup -e production -o /app/config
    python -m cfgcore.setup --all-environments --force

Writes ``base.yaml``, the environment file(s) and ``flags.yaml`` (the music-streaming
set shipped with cfgcore). Existing files are kept unless ``--force`` (so a second
run adds another environment's file to a directory already set up, the user's edits
untouched); every file is written atomically, so a hot-reloading service watching the
directory never reads a half-written file. (This is cfgcore's ``setup`` command
module, not a packaging script.)
"""

from __future__ import annotations

import argparse
import errno
import os
import shlex
import sys
from collections.abc import Sequence
from importlib.resources import files

from cfgcore.errors import ConfigError
from cfgcore.runtime.atomicio import atomic_write

__all__ = ["main", "scaffold", "add_arguments"]

ENVIRONMENTS = ("development", "staging", "production", "test")


def scaffold(
    target: str | os.PathLike[str],
    environments: Sequence[str] = ("development",),
    *,
    force: bool = False,
) -> list[str]:
    """Copy the embedded defaults for ``environments`` into ``target``; return written paths.

    Without ``force``, files that exist are kept and only the missing ones written;
    :class:`ConfigError` when every one exists (nothing to do: ``--force`` overwrites)
    or an environment has no embedded file.
    """
    unknown = [e for e in environments if e not in ENVIRONMENTS]
    if unknown:
        raise ConfigError(
            f"no embedded defaults for environment(s) {', '.join(unknown)}; "
            f"choose from {', '.join(ENVIRONMENTS)}"
        )
    defaults = files("cfgcore").joinpath("defaults")
    sources = [("base.yaml", defaults.joinpath("config", "base.yaml"))]
    sources += [(f"{e}.yaml", defaults.joinpath("config", f"{e}.yaml")) for e in environments]
    sources.append(("flags.yaml", defaults.joinpath("flags.yaml")))
    target = os.fspath(target)
    existing = [name for name, _ in sources if os.path.lexists(os.path.join(target, name))]
    if not force:
        if len(existing) == len(sources):
            raise ConfigError(
                f"{', '.join(existing)} already exist(s); use --force to overwrite", file=target
            )
        sources = [(name, src) for name, src in sources if name not in existing]
    made_dir = not os.path.isdir(target)
    written: list[str] = []
    path = target
    try:
        os.makedirs(target, exist_ok=True)
        for name, src in sources:
            path = os.path.join(target, name)
            atomic_write(path, src.read_bytes())
            written.append(path)
    except OSError as exc:
        raise _partial_failure(target, path, exc, written, existing, made_dir) from None
    return written


def _partial_failure(
    target: str, path: str, exc: OSError, written: list[str], existing: list[str], made_dir: bool
) -> ConfigError:
    """The error for a scaffold that failed at ``path`` (a full disk, a read-only
    directory): the files this run created are removed again, so a directory is never
    left with a configuration but no flags file; files ``--force`` already replaced
    are whole new versions, and are named."""
    replaced = []
    for done in written:
        if os.path.basename(done) in existing:
            replaced.append(os.path.basename(done))
            continue
        try:
            os.unlink(done)
        except OSError:
            replaced.append(os.path.basename(done))
    if made_dir:
        try:
            os.rmdir(target)
        except OSError:
            pass
    outcome = f"already written: {', '.join(replaced)}" if replaced else "nothing was written"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        todo = "free some space"
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        todo = "make the directory writable, or choose another with -o"
    else:
        todo = "fix that"
    return ConfigError(
        f"cannot write: {exc.strerror or exc}; {outcome} ({todo}, then run it again)",
        file=path,
        kind="io",
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The scaffold's options (shared by ``python -m cfgcore.setup`` and ``cfgcore setup``)."""
    parser.add_argument(
        "-e",
        "--environment",
        action="append",
        choices=ENVIRONMENTS,
        help="environment file to write (repeatable; default: $CONFIG_ENVIRONMENT or development)",
    )
    parser.add_argument(
        "--all-environments", action="store_true", help="write every environment file"
    )
    parser.add_argument(
        "-o", "--output", default="config", help="target directory (default: ./config)"
    )
    parser.add_argument("--force", action="store_true", help="overwrite existing files")


def run(args: argparse.Namespace) -> int:
    """Execute the scaffold for parsed arguments; print what was written."""
    if args.all_environments:
        envs: Sequence[str] = ENVIRONMENTS
    else:
        # Read like ConfigurationManager reads it: stripped and lower-cased.
        from cfgcore.config.envfile import aliased

        from_env = (aliased(os.environ, "ENVIRONMENT") or "").strip().lower()
        if not args.environment and from_env and from_env not in ENVIRONMENTS:
            var = next(
                v for v in ("CONFIG_ENVIRONMENT", "CFGCORE_ENVIRONMENT") if os.environ.get(v)
            )
            raise ConfigError(
                f"{var}={os.environ[var]!r}: no embedded defaults for that environment; "
                f"choose one of {', '.join(ENVIRONMENTS)} with -e, or unset {var}",
                file="<environment>",
            )
        envs = args.environment or [from_env or "development"]
    written = scaffold(args.output, envs, force=args.force)
    if getattr(args, "quiet", 0):  # `cfgcore setup -q`: the files, and not a word more
        return 0
    for path in written:
        print(f"wrote {path}")
    kept = [
        name
        for name in ("base.yaml", *(f"{e}.yaml" for e in envs), "flags.yaml")
        if os.path.join(args.output, name) not in written
    ]
    if kept:
        print(f"kept {', '.join(kept)} (already there; --force overwrites)")
    env = envs[0]
    print(
        f"next: CFGCORE_CONFIG_DIR={shlex.quote(args.output)} CONFIG_ENVIRONMENT={env} "
        "cfgcore show\n"
        "      secrets are ${VAR} references: export them (e.g. KAFKA_SASL_PASSWORD) before "
        "starting the service"
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m cfgcore.setup``; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m cfgcore.setup",
        description="Scaffold a configuration directory from cfgcore's embedded defaults.",
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except ConfigError as exc:
        print(f"cfgcore.setup: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
