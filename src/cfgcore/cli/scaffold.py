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

Then each environment written is built from the directory as the service would build
it (with this process's environment variables and ``.env`` file) and checked
(:func:`check_ready`): it loads, passes validation, and no secret is empty. The
defaults read every secret as ``${VAR:-}``, so a secret whose variable is not
exported is empty, and the service would start without it. Each empty secret is
named by key path and variable. For production, the environment being set up (the
first ``-e``), that is an error: exit status 1 (the files stay written; export the
variables and run ``cfgcore validate``). Elsewhere it is a warning.
"""

from __future__ import annotations

import argparse
import errno
import os
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib.resources import files
from typing import Any

from cfgcore.errors import ConfigError, listed
from cfgcore.runtime.atomicio import atomic_write

__all__ = ["Readiness", "add_arguments", "check_ready", "main", "scaffold"]

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
    # One segment per joinpath(): Traversable takes several only from Python 3.11.
    defaults = files("cfgcore").joinpath("defaults")
    config = defaults.joinpath("config")
    sources = [("base.yaml", config.joinpath("base.yaml"))]
    sources += [(f"{e}.yaml", config.joinpath(f"{e}.yaml")) for e in environments]
    sources.append(("flags.yaml", defaults.joinpath("flags.yaml")))
    target = os.fspath(target)
    existing = [name for name, _ in sources if os.path.lexists(os.path.join(target, name))]
    if not force:
        if len(existing) == len(sources):
            raise ConfigError(
                f"nothing to write: {listed(existing)} already exist (-e ENV adds another "
                f"environment's file; --force overwrites them)",
                file=target,
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


@dataclass
class Readiness:
    """Whether an environment of a configuration directory is ready to serve.

    ``empty_secrets``: ``(key path, reference or None)`` of each secret that resolved
    to nothing (:func:`cfgcore.validation.security.empty_secrets`); ``problems``: why
    the environment would not load (a build error, blocking validation findings).
    """

    environment: str
    empty_secrets: list[tuple[str, str | None]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ready(self) -> bool:
        return not self.empty_secrets and not self.problems

    def lines(self) -> list[str]:
        """What is missing, one item a line (never a secret's value: they are empty)."""
        from cfgcore.config.checks import shown_ref

        out = list(self.problems)
        for path, ref in self.empty_secrets:
            source = f" (from {shown_ref(ref)})" if ref else ""
            out.append(f"{path}: secret is empty{source}")
        return out

    def variables(self) -> list[str]:
        """The environment variables that would fill the empty secrets."""
        from cfgcore.config.environ import ref_names

        return sorted(ref_names(ref for _, ref in self.empty_secrets if ref))


def check_ready(
    target: str | os.PathLike[str],
    environment: str,
    environ: Any = None,
) -> Readiness:
    """Build ``environment`` from the directory ``target`` as a service would (with
    ``environ``, default this process's variables and ``.env`` file), without
    activating it, and say what keeps it from being ready: a build error, a blocking
    validation finding, a secret that is empty (a key named as a secret, or a value
    read from a secret variable such as ``${KAFKA_SASL_PASSWORD:-}``)."""
    from cfgcore.config.checks import blocking_problems, empty_secrets_of
    from cfgcore.config.manager import ConfigurationManager
    from cfgcore.config.state import EMPTY

    result = Readiness(environment)
    manager = ConfigurationManager(os.fspath(target), environment=environment, environ=environ)
    try:
        snap = manager._build_unactivated(environment, None, None)
        result.problems = [
            str(p)
            for p in blocking_problems(snap.config, snap.environment, EMPTY, snap.layers, snap.refs)
        ]
        result.empty_secrets = empty_secrets_of(snap, manager.builder.env_vars)
    except ConfigError as exc:
        result.problems = [str(p) for p in exc.problems] or [str(exc)]
    finally:
        manager.close()
    return result


def _report_readiness(
    output: str, envs: Sequence[str], quiet: bool
) -> tuple[bool, list[Readiness]]:
    """Check each environment written; print what is missing (stderr). Returns whether
    the environment being set up (the first) may be called ready, and the checks."""
    checked = [check_ready(output, env) for env in envs]
    ok = True
    for i, found in enumerate(checked):
        if found.ready:
            continue
        items = found.lines()
        variables = found.variables()
        todo = (
            f"export {' '.join(variables)} (or set them in a .env file beside {output}), then"
            if variables
            else "fix them, then"
        )
        check = (
            f"CFGCORE_CONFIG_DIR={shlex.quote(output)} CONFIG_ENVIRONMENT={found.environment} "
            "cfgcore validate"
        )
        if i == 0 and found.environment == "production":
            ok = False
            head = (
                f"error: production is not ready ({len(items)} problem(s)); the files are written:"
            )
        elif quiet:
            continue
        else:
            head = f"warning: {found.environment} is not ready ({len(items)} problem(s)):"
        print(f"cfgcore setup: {head}", file=sys.stderr)
        for line in items:
            print(f"  {line}", file=sys.stderr)
        print(f"  {todo} check: {check}", file=sys.stderr)
    return ok, checked


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The scaffold's options (shared by ``python -m cfgcore.setup`` and ``cfgcore setup``)."""
    parser.add_argument(
        "-e",
        "--environment",
        action="append",
        choices=ENVIRONMENTS,
        help="environment file to write (repeatable; default: $CONFIG_ENVIRONMENT or "
        "$CFGCORE_ENVIRONMENT, else development). The first is the one set up: production "
        "is not ready (exit status 1) while a secret is empty",
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
    quiet = bool(getattr(args, "quiet", 0))  # `cfgcore setup -q`: the files, errors only
    if not quiet:
        for path in written:
            print(f"wrote {path}")
        kept = [
            name
            for name in ("base.yaml", *(f"{e}.yaml" for e in envs), "flags.yaml")
            if os.path.join(args.output, name) not in written
        ]
        if kept:
            print(f"kept {', '.join(kept)} (already there; --force overwrites)")
    ready, checked = _report_readiness(args.output, envs, quiet)
    if not ready:
        return 1
    if quiet:
        return 0
    print(
        f"next: CFGCORE_CONFIG_DIR={shlex.quote(args.output)} CONFIG_ENVIRONMENT={envs[0]} "
        "cfgcore show"
    )
    if not all(found.ready for found in checked):
        print("      before starting the service: export the secrets listed above")
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
