"""The ``cfgcore`` command line (also ``python -m cfgcore``).

Each capability registers its own subcommands from its own module, listed in
``_COMMAND_MODULES``; a module exposes ``register(subparsers)`` and sets
``func`` on the parsers it adds (``func(args) -> int`` exit code).

Exit status, for scripts: 0 success; 1 an error (one ``cfgcore: error: ...`` line on
stderr per problem) or a negative answer (``diff`` found differences, ``validate``
found errors); 2 a usage error (argparse's message); 3 nothing to do, the input was
done before (``experiment ingest`` of events already ingested: nothing written);
130 interrupted. A traceback is a bug: unexpected exceptions are one line too, with
the traceback only under ``-vv`` or ``--log-level DEBUG``.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import io
import logging
import os
import re
import sys
import textwrap
from collections.abc import Callable, Sequence
from importlib import import_module
from typing import Any, NoReturn

from cfgcore.errors import ConfigError

_COMMAND_MODULES = (
    "cfgcore.cli.flags",  # demo, flags eval (compiled core)
    "cfgcore.cli.config",  # show, get, explain, diff, watch, eval (configuration manager)
    "cfgcore.cli.validate",  # validate, schema (validation engine)
    "cfgcore.cli.experiment",  # experiment create/update/start/stop/list/ingest/report
    "cfgcore.cli.secrets",  # secrets keygen/encrypt/decrypt/rotate
    "cfgcore.cli.audit",  # audit verify (hash chain)
    "cfgcore.cli.migrate",  # migrate (legacy configuration files)
    "cfgcore.cli.interop",  # import unleash|flagd|growthbook, export --format flagd
    "cfgcore.cli.fleet",  # publish (and watch --store): the Redis fleet store
    "cfgcore.cli.health",  # health (liveness and readiness report)
    "cfgcore.cli.alerts",  # alerts export (Prometheus alerting rules)
)

_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

#: Exit status of a command that had nothing to do because its input was done before
#: (``cfgcore experiment ingest`` of events already ingested): nothing was written, and
#: that is no failure, so a script can tell it from one (1) and from a run that wrote (0).
EXIT_NOTHING_TO_DO = 3


class CommandError(Exception):
    """A command's answer is an error: printed as ``cfgcore: error: <message>``, exit 1.

    For failures that are about the question asked (an unknown key or flag), not about
    an input file, which ``ConfigError`` reports with its file and key path. An answer
    of several lines (a refusal and what it lists) is given line by line,
    ``CommandError(first, *more)``: each is an error line of its own, and a line break
    inside one (an argument echoed back) is shown escaped, never as a line.
    """

    def __init__(self, message: object = "", *more: object) -> None:
        self.lines = [str(message), *map(str, more)]
        super().__init__("\n".join(self.lines))


class UsageError(Exception):
    """The command line itself is wrong (an option's value the parser cannot judge, such
    as a rule id only the validator knows): ``cfgcore: error: <message>``, exit 2, as
    argparse's own usage errors."""


def refuse_empty_paths(args: Any, *options: str) -> None:
    """UsageError for a file, directory or store option given as empty text
    (``--metrics "$METRICS"`` with the variable unset): taken as "not given", it read the
    default file instead, or failed naming the working directory. ``options`` are the
    options' spellings (``--state-dir``); a positional is named by its metavar (``FILE``)
    and read from its lowercased attribute."""
    for option in options:
        value = getattr(args, option.lstrip("-").replace("-", "_").lower(), None)
        for given in value if isinstance(value, list) else [value]:
            if given == "":
                raise UsageError(f"{option} '': expected a path, got an empty one")


def load_json(text: str | bytes, *, allow_nan: bool = True) -> Any:
    """``json.loads`` for text a user handed the command line: every refusal is a
    ValueError with a short reason, for the caller to prefix with the file, line or
    option. A document nested past the parser's stack is refused, not a RecursionError;
    with ``allow_nan=False`` so are ``NaN``, ``Infinity`` and numbers past a float's
    range (not JSON, and a config value that would be stored as null).

    >>> load_json('{"a": [1]}')
    {'a': [1]}
    """
    import json

    def no_constant(name: str) -> Any:
        raise ValueError(f"{name} is not a JSON value")

    def finite(raw: str) -> float:
        value = float(raw)
        if value in (float("inf"), float("-inf")):
            raise ValueError(f"{raw[:40]} is past a float's range")
        return value

    def unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        # An object repeating a key is ambiguous (json keeps the last), and every file
        # cfgcore reads refuses one: so do its command-line inputs.
        out: dict[str, Any] = {}
        for key, value in pairs:
            if key in out:
                raise ValueError(f"duplicate key {key!r:.80} (JSON objects must not repeat a key)")
            out[key] = value
        return out

    try:
        if allow_nan:
            return json.loads(text, object_pairs_hook=unique)
        return json.loads(
            text, parse_constant=no_constant, parse_float=finite, object_pairs_hook=unique
        )
    except RecursionError:
        raise ValueError("not JSON: nested too deeply") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 (byte {exc.start})") from None
    except ValueError as exc:
        if "int_max_str_digits" in str(exc):  # Python's own message, naming its setting
            raise IntegerTooLong() from None
        raise ValueError(f"not JSON: {exc}") from None


class IntegerTooLong(ValueError):
    """``load_json``'s refusal of an integer literal of more digits than Python converts
    (``sys.get_int_max_str_digits()``, 4,300 by default)."""

    def __init__(self) -> None:
        limit = sys.get_int_max_str_digits() if hasattr(sys, "get_int_max_str_digits") else 0
        super().__init__(f"an integer literal longer than {limit:,} digits")
        self.limit = limit


class HugeInt:
    """Where :func:`load_json_marking_huge_ints` read an integer literal past the limit."""

    __slots__ = ("digits",)

    def __init__(self, digits: int) -> None:
        self.digits = digits

    def __repr__(self) -> str:
        return f"<an integer of {self.digits:,} digits>"


def load_json_marking_huge_ints(text: str | bytes) -> Any:
    """``json.loads`` with each integer literal past Python's digit limit read as a
    :class:`HugeInt`, so the caller can say which field holds it."""
    import json

    def parse_int(raw: str) -> Any:
        try:
            return int(raw)
        except ValueError:
            return HugeInt(len(raw.lstrip("-")))

    return json.loads(text, parse_int=parse_int)


_EPILOG = """\
exit status: 0 success, 1 error or a negative answer (diff found differences, validate
found errors), 2 usage error, 3 nothing to do (experiment ingest: already ingested).

environment (README.md has the full table):
  CONFIG_ENVIRONMENT / CFGCORE_ENVIRONMENT   environment to load (default: development)
  CONFIG_PROFILE / CFGCORE_PROFILE           deployment profile
  CFGCORE_CONFIG_DIR                         configuration directory (default: ./config if it
                                             holds a base or environment file, else the bundled set)
  CFGCORE_STATE_DIR                          dynamic flags, A/B tests, exposures, metrics
                                             (default: $XDG_STATE_HOME/cfgcore)
  CFGCORE_ENV_FILE                           .env file read before ${VAR} substitution
  CFGCORE__SECTION__KEY=value                override one configuration key
"""


def _version() -> str:
    from cfgcore import __version__, _frozen  # noqa: F401  (the tree's compiled part)
    from cfgcore._compat import IMPLEMENTATION
    from cfgcore._env import MISSING_EXTENSIONS
    from cfgcore.runtime import atomicio  # noqa: F401  (the atomic write's)

    py = ".".join(map(str, sys.version_info[:3]))
    # A compiled evaluator beside a missing compiled module (an in-place build older
    # than the module): say which runs its Python steps (a build with none says "py").
    lost = f"; not compiled: {', '.join(sorted(MISSING_EXTENSIONS))}" if (
        IMPLEMENTATION == "c" and MISSING_EXTENSIONS) else ""  # fmt: skip
    return f"cfgcore {__version__} (evaluator: {IMPLEMENTATION}, Python {py}{lost})"


def _add_output_options(parser: argparse.ArgumentParser, *, top: bool) -> None:
    # On the top-level parser the defaults are real; on subcommands they are SUPPRESS, so
    # `cfgcore -v get x` and `cfgcore get x -v` both work without one resetting the other.
    default = (lambda value: value) if top else (lambda _value: argparse.SUPPRESS)
    group = parser.add_argument_group("output")
    group.add_argument(
        "-v", "--verbose", action="count", default=default(0), help="more log output (-vv: debug)"
    )
    group.add_argument(
        "-q", "--quiet", action="count", default=default(0), help="only errors on stderr"
    )
    group.add_argument(
        "--log-level",
        type=str.upper,
        choices=_LEVELS,
        default=default(None),
        metavar="LEVEL",
        help="log level: DEBUG, INFO, WARNING (default), ERROR or CRITICAL",
    )


def _subparsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):
                found.append(sub)
                found.extend(_subparsers(sub))
    return found


_INVALID_CHOICE = re.compile(r"invalid choice: '([^']*)' \(choose from (.*)\)$")


class _Unbroken:
    """Help text wrapped at spaces only: argparse's wrapping also breaks at hyphens,
    which cut option names and key paths in two (``--metric-`` / ``type``) where a
    reader copies them from."""

    def _split_lines(self, text: str, width: int) -> list[str]:
        text = self._whitespace_matcher.sub(" ", text).strip()  # type: ignore[attr-defined]
        return textwrap.wrap(text, width, break_on_hyphens=False)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        text = self._whitespace_matcher.sub(" ", text).strip()  # type: ignore[attr-defined]
        return textwrap.fill(
            text, width, initial_indent=indent, subsequent_indent=indent, break_on_hyphens=False
        )


class HelpFormatter(_Unbroken, argparse.HelpFormatter):
    """cfgcore's default help formatter (see :class:`_Unbroken`)."""


class RawDescriptionHelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions and epilogs printed as written; option help wrapped at spaces only."""

    _split_lines = _Unbroken._split_lines


class _Parser(argparse.ArgumentParser):
    """An argument parser whose "invalid choice" error says which choice was probably
    meant (``cfgcore shwo``: did you mean 'show'?), as unknown keys and flags do.
    Subcommand parsers are of this class too (argparse creates them with the parent's
    class), and all wrap help at spaces only (:class:`_Unbroken`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        given = kwargs.get("formatter_class", argparse.HelpFormatter)
        if given is argparse.HelpFormatter:
            kwargs["formatter_class"] = HelpFormatter
        elif given is argparse.RawDescriptionHelpFormatter:
            kwargs["formatter_class"] = RawDescriptionHelpFormatter
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        found = _INVALID_CHOICE.search(message)
        if found is not None and "did you mean" not in message:
            choices = re.findall(r"'([^']*)'", found.group(2))
            close = difflib.get_close_matches(found.group(1), choices, n=1, cutoff=0.6)
            if not close:  # 'prod' for 'production'
                given = found.group(1).lower()
                close = [c for c in choices if given and c.lower().startswith(given)][:2]
                close = close if len(close) == 1 else []
            if close:
                message += f" (did you mean {close[0]!r}?)"
        super().error(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="cfgcore",
        description="cfgcore configuration, feature flags and experiments",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=_version())
    _add_output_options(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMAND_MODULES:
        try:
            module = import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:  # a real import error inside the module: surface it
                raise
            continue
        module.register(sub)
    for p in _subparsers(parser):
        _add_output_options(p, top=False)
        # The innermost subcommand's parser ends up in the namespace: main() reports an
        # unrecognized option with that subcommand's usage, not the top-level one.
        p.set_defaults(_cfgcore_parser=p)
    return parser


def _log_level(args: argparse.Namespace) -> int:
    if args.log_level:
        return int(getattr(logging, args.log_level))
    if args.verbose:
        return logging.DEBUG if args.verbose > 1 else logging.INFO
    if args.quiet:
        return logging.ERROR
    return logging.WARNING


class _MaskingFormatter(logging.Formatter):
    """Log lines (the ``-vv`` traceback included) masked as error lines are: the
    loggers' own mask is installed only once cfgcore.runtime.secrets is imported, which
    a command that fails early may never do."""

    def format(self, record: logging.LogRecord) -> str:
        from cfgcore.runtime.redaction import redact_text

        return redact_text(super().format(record))


def _setup_logging(level: int) -> Callable[[], None]:
    """Send cfgcore's log records to stderr at ``level``; returns the undo (main() is
    also called in-process, by tests and embedding tools, and must leave logging as it
    found it)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_MaskingFormatter("cfgcore: %(levelname)s: %(name)s: %(message)s"))
    root = logging.getLogger("cfgcore")
    saved_handlers, saved_level, saved_propagate = root.handlers[:], root.level, root.propagate
    for other in saved_handlers:
        root.removeHandler(other)
    root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False

    def restore() -> None:
        # Through the logging API: setLevel clears the loggers' cache of enabled levels
        # (assigned directly, a child that logged during the command stayed closed to
        # what the restored level lets through), and a handler added meanwhile (another
        # thread's) stays.
        root.removeHandler(handler)
        for other in saved_handlers:
            root.addHandler(other)
        root.setLevel(saved_level)
        root.propagate = saved_propagate

    return restore


def _error(*lines: str) -> None:
    """Print each of ``lines`` as one ``cfgcore: error:`` line: the one place the
    command line prints an error. A line break inside one is escaped, never printed:
    an argument echoed back (``cfgcore get $'x\\nFORGED'``) made two error lines, the
    second forged. Several problems are several ``lines`` (a ConfigError's rendering,
    a CommandError's own lines)."""
    # Masked as a cfgcore log line is (resolved secrets; URL passwords, secret query
    # parameters and webhook tokens): a command's error often quotes a URL or a value.
    from cfgcore.errors import printable
    from cfgcore.runtime.redaction import redact_text

    # Each line as printable text: an argument echoed back (a key, a flag name) may
    # hold an escape sequence that would drive the terminal.
    for line in lines or ("",):
        print(f"cfgcore: error: {printable(redact_text(str(line)))}", file=sys.stderr)


# An optional dependency's top-level module -> the extra that installs it (README's
# table of extras): a command reaching a feature without it names the extra.
_EXTRAS = {
    "redis": "redis",
    "scipy": "stats",
    "matplotlib": "plot",
    "cryptography": "secrets",
    "openfeature": "openfeature",
    "prometheus_client": "prometheus",
}


def _missing_extra(exc: BaseException) -> str | None:
    """The one-line error for an optional dependency that is not installed, or None."""
    if not isinstance(exc, ModuleNotFoundError):
        return None
    module = (exc.name or "").partition(".")[0]
    extra = _EXTRAS.get(module)
    if extra is None:
        return None
    return f"this needs the {module} package: pip install 'cfgcore[{extra}]' ({exc})"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        # `cfgcore health --nope` printed the top-level usage ("cfgcore [-h] ...
        # COMMAND"), which lists none of the options `health` takes.
        owner: argparse.ArgumentParser = getattr(args, "_cfgcore_parser", parser)
        owner.error(f"unrecognized arguments: {' '.join(extra)}")
    level = _log_level(args)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return 2
    restore = _setup_logging(level)
    unpatch = _printable_streams()
    before = _open_managers()
    try:
        return _run(func, args, level)
    finally:
        _close_managers_since(before)
        unpatch()
        restore()


# The modules whose managers a command may open (each keeps a registry of its own).
_MANAGER_MODULES = ("cfgcore.config.manager", "cfgcore.experiments.dynamic")


def _open_managers() -> dict[int, Any]:
    """The configuration and dynamic-config managers alive now, by identity."""
    found: dict[int, Any] = {}
    for name in _MANAGER_MODULES:
        module = sys.modules.get(name)
        if module is not None:
            found.update((id(m), m) for m in list(module._MANAGERS))
    return found


def _close_managers_since(before: dict[int, Any]) -> None:
    """Close the managers the command opened and left open (``cfgcore eval`` on a
    ``redis://`` store follows it in a thread): run in-process (``main([...])`` from a
    script or a test), a command leaves no thread behind following a store, watching
    files or reconnecting. The process-wide managers (``get_config_manager()``,
    ``get_dynamic_config_manager()``) are the caller's, and stay open."""
    keep = set(before)
    for name in _MANAGER_MODULES:
        module = sys.modules.get(name)
        if module is not None:
            shared = module._default if name.endswith(".manager") else module._MANAGER
            if shared is not None:
                keep.add(id(shared))
    for key, manager in _open_managers().items():
        if key not in keep and not getattr(manager, "closed", False):
            try:
                manager.close()
            except Exception:  # (the command's answer stands; say why in the log)
                logging.getLogger("cfgcore.cli").warning(
                    "closing a manager after the command failed", exc_info=True
                )


def _printable_streams() -> Callable[[], None]:
    """Under a non-UTF-8 locale (``LC_ALL=C`` without Python's locale coercion, or
    ``PYTHONIOENCODING=ascii``) a character the terminal cannot encode (the ``µs`` of
    ``cfgcore health``, a non-ASCII configuration value) made the whole command fail
    with "'ascii' codec can't encode". Such characters are printed as backslash
    escapes instead; the streams are put back as they were afterwards."""
    changed: list[tuple[Any, str | None]] = []
    for stream in (sys.stdout, sys.stderr):
        if not isinstance(stream, io.TextIOWrapper):
            continue
        encoding = (stream.encoding or "").lower().replace("_", "-")
        if encoding in ("utf-8", "utf8") or stream.errors in ("backslashreplace", "replace"):
            continue
        try:
            errors = stream.errors
            stream.reconfigure(errors="backslashreplace")
        except (AttributeError, ValueError, OSError):
            continue
        changed.append((stream, errors))

    def undo() -> None:
        for stream, errors in changed:
            with contextlib.suppress(AttributeError, ValueError, OSError):
                stream.reconfigure(errors=errors)

    return undo


def _run(func: Callable[[argparse.Namespace], Any], args: argparse.Namespace, level: int) -> int:
    try:
        return int(func(args) or 0)
    except UsageError as exc:
        _error(str(exc))
        return 2
    except ConfigError as exc:
        # One line per problem, each escaped where the problem is rendered (Problem).
        _error(*str(exc).splitlines())
        return 1
    except CommandError as exc:
        _error(*exc.lines)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `cfgcore show | head`: the reader left; say nothing more, like other Unix tools.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except (OSError, ValueError) as exc:
        # Bad input that reached a library check (a file that cannot be read, a value out
        # of range): the message is the library's, the exit status an error's.
        if level <= logging.DEBUG:
            logging.getLogger("cfgcore.cli").exception("details")
        _error(f"{exc}")
        return 1
    except Exception as exc:  # never a traceback on the terminal of a script
        if level <= logging.DEBUG:
            logging.getLogger("cfgcore.cli").exception("details")
        missing = _missing_extra(exc)
        if missing is not None:
            _error(missing)
            return 1
        hint = "" if level <= logging.DEBUG else " (run with -vv for the traceback)"
        _error(f"internal error: {type(exc).__name__}: {exc}{hint}")
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
