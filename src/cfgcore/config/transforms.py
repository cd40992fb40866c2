"""Configuration transformations (the seed's ConfigurationUtils).

:class:`ConfigurationTransformer` runs named steps over a configuration tree, in the
order given, and returns a new tree (the input is not modified):

``env_var_substitution``
    ``${VAR}``, ``${VAR:-default}`` (default when unset or empty), ``${VAR-default}``
    (default only when unset), ``${VAR:?message}`` (error when unset or empty) and
    ``$${`` for a literal ``${``. References may sit inside longer strings. A missing
    variable without a default is an error naming the key path and the variable; so is
    any other ``${`` (``${ VAR }``, ``${}``, a default holding a reference), which
    would otherwise be served as written. ``${file:...}`` is left for the secrets step.
``type_conversion``
    Strings that spell a YAML 1.2 scalar become that scalar: ``"8080"`` -> 8080,
    ``"0.5"`` -> 0.5, ``"true"`` -> True, ``"null"`` -> None. Numbers with leading
    zeros (``"0755"``, zip codes) and ``on``/``off``/``yes``/``no`` stay strings.
``duration_parsing``
    ``"250ms"``, ``"30s"``, ``"5m"``, ``"1h30m"``, ``"2d"`` -> seconds as ``float``.
    Units: ``us``, ``ms``, ``s``, ``m``, ``h``, ``d``, ``w``; components may repeat
    in any order and have fractions (``"1.5h"``).
``size_parsing``
    ``"2GB"`` -> 2_000_000_000 and ``"512MiB"`` -> 536_870_912 (bytes, ``int``). SI units
    (``kB``/``KB``, ``MB``, ``GB``, ``TB``, ``PB``) are powers of 1000; IEC units (``KiB``,
    ``MiB``, ``GiB``, ``TiB``, ``PiB``) are powers of 1024. ``B`` is bytes. Units are
    case-insensitive except that the ``i`` marks IEC. Bits are not supported.

Every problem found in one pass is reported at once in a :class:`TransformError`, a
step that raises on a value included.

>>> ConfigurationTransformer().transform({"t": "1h30m", "s": "1KiB"},
...     ["duration_parsing", "size_parsing"])
{'t': 5400.0, 's': 1024}
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from cfgcore.config.files import MAX_DEPTH, MAX_EXPANDED, _expanded_size
from cfgcore.config.tree import did_you_mean, format_path
from cfgcore.errors import Problem, TransformError, format_key_path
from cfgcore.runtime.secrets import is_resolved_secret, mask_text, note_variable

__all__ = [
    "ConfigurationTransformer",
    "parse_duration",
    "parse_size",
    "substitute_env",
]

StepFunc = Callable[[Any, tuple[Any, ...], "_Run"], Any]

_REF = re.compile(
    r"\$\$\{|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:-|-|:\?|\?)(?P<arg>[^}]*))?\}"
    # Any other "${" is a malformed reference (``${ DB_PASSWORD }``, ``${}``, an
    # unclosed one), except ``${file:...}``, which the secrets step resolves later.
    r"|(?P<bad>\$\{(?!file:))"
)
# cfgcore's own key material: configuration may not reference it, or a served value
# (a section handed to a front end, a debug dump) would carry the encryption or audit
# keys to whoever reads it.
KEY_MATERIAL = frozenset({"CFGCORE_SECRET_KEYS", "CFGCORE_AUDIT_KEY", "CFGCORE_FLEET_SIGNING_KEY"})
# What substitution may add to the values of one transform() run (one file), all
# references together: 64 MiB is a 1 KB variable referenced 65,000 times, past any real
# configuration, while a file of ${BIGVAR} references could otherwise ask for gigabytes.
MAX_EXPANSION = 64 * 1024 * 1024
# Digits are ASCII (re.ASCII): Python's \d also matches other scripts' digits, which
# float() reads, so "１.５" (fullwidth) became 1.5 and "３GB" 3 GB; YAML 1.2, JSON and
# TOML read them as text, and so do these steps.
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?|\.\d+)(us|ms|s|m|h|d|w)", re.ASCII)
_DURATION = re.compile(r"^(?:(?:\d+(?:\.\d+)?|\.\d+)(?:us|ms|s|m|h|d|w))+$", re.ASCII)
_DURATION_UNITS = {
    "us": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "w": 604800.0,
}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kKmMgGtTpP]i?[bB]|[bB])\s*$", re.ASCII)
_SIZE_POWER = {"b": 0, "k": 1, "m": 2, "g": 3, "t": 4, "p": 5}
_INT = re.compile(r"^[-+]?(0|[1-9][0-9]*)$")
_FLOAT = re.compile(r"^[-+]?(\d+\.\d*|\.\d+|\d+(\.\d*)?[eE][-+]?\d+)$", re.ASCII)


class _Run:
    """State of one transform() call: where we are and what went wrong."""

    def __init__(self, env: Mapping[str, str], file: str | None) -> None:
        self.env = env
        self.file = file
        self.problems: list[Problem] = []
        self.budget = [MAX_EXPANSION]  # bytes substitution may still add in this run
        # The containers walked so far (by id: all live, held by ``root``) and whether
        # the value's expanded size was bounded (done once, when one is met again).
        self.root: Any = None
        self.seen: set[int] = set()
        self.sized = False

    def problem(self, path: tuple[Any, ...], message: str) -> None:
        self.problems.append(Problem(path=format_path(path), message=message, file=self.file))


def substitute_env(
    text: str,
    env: Mapping[str, str],
    on_error: Callable[[str], None],
    budget: list[int] | None = None,
) -> str:
    """Expand ``${...}`` references in ``text`` from ``env``; report problems via ``on_error``.

    A resolved secret is never expanded (a password may well hold ``${``): expanding
    would change it, and an error would name a piece of it. ``budget`` (a one-item
    list, shared by the values of one transform() run) bounds the bytes the references may add:
    past it, a reference is an error (:data:`MAX_EXPANSION`). :data:`KEY_MATERIAL`
    cannot be referenced."""
    if "$" not in text or is_resolved_secret(text) or mask_text(text) != text:
        return text  # a secret, or a text holding one

    def repl(m: re.Match[str]) -> str:
        out = _expand(m)
        if budget is not None:
            budget[0] -= len(out)
            if budget[0] < 0:
                if budget[0] + len(out) >= 0:  # said once, for the reference past it
                    on_error(
                        f"environment references expand to more than "
                        f"{MAX_EXPANSION // (1024 * 1024)} MiB in this file: "
                        f"refused (a variable referenced far more often than intended?)"
                    )
                return ""
        return out

    def _expand(m: re.Match[str]) -> str:
        if m.group(0) == "$${":
            if text.startswith("file:", m.end()):
                # The secrets step runs after substitution and cannot tell the literal
                # from a reference: it would read the file into this key.
                on_error(
                    "$${file:...}: a literal ${file: cannot be written (the secrets step "
                    "would read it as a secret file reference); refused"
                )
                return "$${"
            return "${"
        if m.group("bad"):
            # Served as written, a typo would silently become the value (a password
            # of "${ DB_PASSWORD }"): refuse it.
            on_error(
                f"malformed reference {_snippet(text, m.start())}: expected ${{NAME}}, "
                f"${{NAME:-default}}, ${{NAME-default}} or ${{NAME:?message}} "
                f"(write $${{ for a literal ${{)"
            )
            return m.group(0)
        name, op = m.group("name"), m.group("op")
        arg: str = m.group("arg") or ""  # "" without an operator (then unused)
        if name in KEY_MATERIAL:
            on_error(
                f"${{{name}}}: cfgcore's own key material cannot be referenced by "
                f"configuration (a served value would hold the keys)"
            )
            return ""
        if "${" in arg:
            # The default ends at the first "}": "${A:-${B}}" would serve the text "${B}".
            on_error(
                f"${{{name}{op}...}}: a default cannot hold another reference "
                f"(nested references are not supported)"
            )
            return ""
        value = env.get(name)
        if value is not None and type(value) is not str:
            # A caller's environ= mapping: a str subclass is read as the text it holds
            # (its own methods may say anything); anything else is no variable's value.
            if not isinstance(value, str):
                on_error(f"environment variable {name} holds {type(value).__name__!r}, not text")
                return ""
            value = str.__str__(value)
        # A secret variable's value is masked on every surface, whatever key it lands in.
        note_variable(name, value, env)
        if op == ":-":
            return value if value else arg
        if op == "-":
            return value if value is not None else arg
        if op in (":?", "?"):
            if value is None or (op == ":?" and not value):
                on_error(f"environment variable {name} is required: {arg or 'not set'}")
                return ""
            return value
        if value is None:
            why = env.why_unset(name) if hasattr(env, "why_unset") else ""
            on_error(f"environment variable {name} is not set and ${{{name}}} has no default{why}")
            return ""
        return value

    return _REF.sub(repl, text)


def _snippet(text: str, start: int) -> str:
    """The malformed reference at ``start``, up to its closing brace, for an error.
    Never a long stretch of the value: it may be part of a secret."""
    end = text.find("}", start)
    piece = text[start : end + 1] if 0 <= end < start + 40 else text[start : start + 20] + "..."
    return repr(piece)


def parse_duration(text: str) -> float:
    """``"1h30m"`` -> 5400.0 seconds; raises ``ValueError`` if it is not a duration, and
    ``OverflowError`` for one no float can hold (``"1e400"`` digits of seconds)."""
    compact = text.strip()
    if not _DURATION.match(compact):
        raise ValueError(f"not a duration: {text!r}")
    seconds = sum(float(n) * _DURATION_UNITS[u] for n, u in _DURATION_PART.findall(compact))
    if not math.isfinite(seconds):
        raise OverflowError(f"duration {_shown(text)} is out of range")
    return seconds


def parse_size(text: str) -> int:
    """``"2GB"`` -> 2_000_000_000, ``"512MiB"`` -> 536_870_912; ``ValueError`` if it is
    not a size, ``OverflowError`` for one over ``2**63 - 1`` bytes (no configuration
    integer holds it)."""
    m = _SIZE.match(text)
    if not m:
        raise ValueError(f"not a size: {text!r}")
    number, unit = m.groups()
    base = 1024 if len(unit) == 3 else 1000
    size = float(number) * base ** _SIZE_POWER[unit[0].lower()]
    if not size < 2**63:
        raise OverflowError(f"size {_shown(text)} is out of range (over 2**63 - 1 bytes)")
    return round(size)


def _shown(text: str) -> str:
    return repr(text) if len(text) <= 40 else repr(text[:37] + "...")


def _convert_scalar(text: str) -> Any:
    stripped = text.strip()
    if stripped in ("true", "True", "TRUE"):
        return True
    if stripped in ("false", "False", "FALSE"):
        return False
    if stripped in ("null", "Null", "NULL", "~"):
        return None
    if _INT.match(stripped):
        try:
            return int(stripped)
        except ValueError:  # past sys.get_int_max_str_digits() digits: int() refuses it
            raise OverflowError(
                f"integer {_shown(stripped)} is out of range "
                "(configuration integers must fit in 64 bits)"
            ) from None
    if _FLOAT.match(stripped) and not re.match(r"^[-+]?0\d", stripped):
        number = float(stripped)
        # "1e999" is a float no configuration may hold (inf): it stays text, which
        # validation then judges where a number is expected.
        return number if math.isfinite(number) else text
    return text


def _step_env(value: Any, path: tuple[Any, ...], run: _Run) -> Any:
    if isinstance(value, str):
        return substitute_env(value, run.env, lambda msg: run.problem(path, msg), run.budget)
    return value


def _step_types(value: Any, path: tuple[Any, ...], run: _Run) -> Any:
    return _convert_scalar(value) if isinstance(value, str) else value


def _step_duration(value: Any, path: tuple[Any, ...], run: _Run) -> Any:
    if isinstance(value, str) and value and value[-1] in "smhdw" and value[0] in "0123456789.":
        try:
            return parse_duration(value)
        except ValueError:
            return value
    return value


def _step_size(value: Any, path: tuple[Any, ...], run: _Run) -> Any:
    if isinstance(value, str) and value[-1:] in ("B", "b"):
        try:
            return parse_size(value)
        except ValueError:
            return value
    return value


class ConfigurationTransformer:
    """Run named transformation steps over configuration trees.

    Steps apply to every leaf string (keys are left alone). Register more with
    :meth:`register_step`; a step is ``f(value, path, run) -> new_value`` where
    ``run.problem(path, message)`` records an error without stopping the pass.

    ``env`` (default ``os.environ`` at call time) is what ``env_var_substitution`` reads.
    """

    STEPS: dict[str, StepFunc] = {
        "env_var_substitution": _step_env,
        "type_conversion": _step_types,
        "duration_parsing": _step_duration,
        "size_parsing": _step_size,
    }

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self.env = env
        self._steps: dict[str, StepFunc] = dict(self.STEPS)

    def register_step(self, name: str, func: StepFunc) -> None:
        """Add (or replace) a named step."""
        self._steps[name] = func

    @property
    def step_names(self) -> list[str]:
        """Names accepted by :meth:`transform`, built-ins first."""
        return list(self._steps)

    def transform(
        self,
        config: Any,
        steps: Sequence[str] | Iterable[str] = ("env_var_substitution",),
        *,
        file: str | None = None,
    ) -> Any:
        """Return a new tree with ``steps`` applied in order; ``config`` is untouched.

        Raises :class:`TransformError` for an unknown step name (before doing anything)
        or listing every value a step could not transform (file = ``file``).
        """
        # One name is one step (it was iterated: 'type_conversion' gave 15 unknown
        # one-letter steps).
        names = [steps] if isinstance(steps, str) else list(steps)
        unknown = [n for n in names if not isinstance(n, str) or n not in self._steps]
        if unknown:
            hints = "".join(
                did_you_mean(n, list(self._steps), n=1) for n in unknown if isinstance(n, str)
            )
            raise TransformError(
                f"unknown transformation step(s) {', '.join(map(repr, unknown))}{hints}; "
                f"known: {', '.join(self._steps)}",
                file=file,
            )
        funcs = [self._steps[n] for n in names]
        run = _Run(os.environ if self.env is None else self.env, file)
        run.root = config
        try:
            out = _walk(config, (), funcs, run)
        except _Shared as shared:
            # One dict or list held in many places (YAML aliases of aliases, or one
            # object referenced at both keys of each of 60 levels: 2**60 key paths).
            # Each place is transformed as a copy, as a file spelling it out would be,
            # up to the bound update_config, profiles and YAML aliases obey.
            raise TransformError(
                [
                    Problem(
                        format_path(shared.path),
                        f"a {shared.kind} repeated in so many places (one object, each "
                        f"place a copy) that the value expands to more than "
                        f"{MAX_EXPANDED:,} values",
                        file=file,
                    )
                ]
            ) from None
        if run.problems:
            raise TransformError(run.problems)
        return out


class _Shared(Exception):
    """A container met again where copying each place expands past MAX_EXPANDED."""

    def __init__(self, path: tuple[Any, ...], kind: str) -> None:
        super().__init__(path)
        self.path = path
        self.kind = kind


def _met(node: Any, path: tuple[Any, ...], run: _Run) -> None:
    """Note the container ``node``; the first time one is met again, bound what the
    whole value expands to (raises :class:`_Shared` past :data:`MAX_EXPANDED`)."""
    key = id(node)
    if key not in run.seen:
        run.seen.add(key)
    elif not run.sized:
        run.sized = True
        if _expanded_size(run.root) > MAX_EXPANDED:
            raise _Shared(path, type(node).__name__)


def _walk(node: Any, path: tuple[Any, ...], funcs: list[StepFunc], run: _Run) -> Any:
    if len(path) >= MAX_DEPTH and isinstance(node, dict | list | tuple):
        # The limit every configuration tree obeys (files.tree_problem). A tree handed
        # to transform() directly may be deeper, or contain itself: this walk recursed
        # into a RecursionError instead of a TransformError naming where.
        shown = format_key_path(path[:6]) + ".…"
        run.problems.append(
            Problem(shown, f"nested more than {MAX_DEPTH} levels deep", file=run.file)
        )
        return node
    if isinstance(node, dict):
        _met(node, path, run)
        return {k: _walk(v, (*path, k), funcs, run) for k, v in node.items()}
    if isinstance(node, list | tuple):
        _met(node, path, run)
        return [_walk(v, (*path, i), funcs, run) for i, v in enumerate(node)]
    for func in funcs:
        try:
            node = func(node, path, run)
        except Exception as exc:  # one bad value: report it with its path, check the rest
            run.problem(path, f"cannot transform: {type(exc).__name__}: {exc}")
            break
    return node
