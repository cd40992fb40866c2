"""The ``cfgcore`` command line (also ``python -m cfgcore``).

Each capability registers its own subcommands from its own module, listed in
``_COMMAND_MODULES``; a module exposes ``register(subparsers)`` and sets
``func`` on the parsers it adds (``func(args) -> int`` exit code). Errors are
one clear line on stderr and a non-zero exit; a traceback is a bug.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from importlib import import_module

from cfgcore.errors import ConfigError

_COMMAND_MODULES = (
    "cfgcore.cli.flags",  # demo, flags eval (compiled core)
    "cfgcore.cli.config",  # show, get, explain, diff, watch, eval (configuration manager)
    "cfgcore.cli.validate",  # validate, schema (validation engine)
    "cfgcore.cli.experiment",  # experiment report (dynamic config / A-B)
    "cfgcore.cli.fleet",  # publish (and watch --store): the Redis fleet store
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cfgcore", description="cfgcore configuration, feature flags and experiments"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMAND_MODULES:
        try:
            module = import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:  # a real import error inside the module: surface it
                raise
            continue
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        return int(func(args) or 0)
    except ConfigError as exc:
        print(f"cfgcore: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `cfgcore show | head`: the reader left; say nothing more, like other Unix tools.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
