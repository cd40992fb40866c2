"""Reading legacy configuration files for :mod:`cfgcore.config.migration`: INI (``.ini``,
``.cfg``, ``.conf``), Java ``.properties``, ``.env`` files and flat JSON/YAML with dotted
keys, each into a list of :class:`LegacyEntry` (dotted key, raw value, file and line).

Bad input raises :class:`cfgcore.ConfigError` naming the file and line: binary or
non-UTF-8 content, files over ``max_bytes``, duplicate keys and lines that cannot be
parsed (every problem of the file at once).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from cfgcore._encoding import decode_text
from cfgcore.config.files import _DEEP_SCAN_CHARS, MAX_DEPTH, _cut_deep
from cfgcore.errors import ConfigError, Problem, format_key_path

#: File extensions and the legacy format each one is read as.
LEGACY_FORMATS = {
    ".ini": "ini",
    ".cfg": "ini",
    ".conf": "ini",
    ".properties": "properties",
    ".env": "env",
    ".json": "json",
    ".yaml": "yaml",
    ".yml": "yaml",
}

DEFAULT_MAX_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class LegacyEntry:
    """One key of a legacy file: its flat dotted key, value and where it was."""

    key: str
    value: Any
    line: int | None
    raw_key: str  # the key as written (before lower-casing / ``__`` -> ``.``)


# ----------------------------------------------------------------------------- readers


def _format_for(path: str) -> str:
    base = os.path.basename(path).lower()
    if base == ".env" or base.startswith(".env.") or base.endswith(".env"):
        return "env"
    fmt = LEGACY_FORMATS.get(os.path.splitext(base)[1])
    if fmt is None:
        raise ConfigError(
            "unknown legacy format (use .ini/.cfg/.conf, .properties, .env, .json, .yaml)",
            file=path,
        )
    return fmt


def _read_text(path: str, max_bytes: int) -> str:
    import errno

    from cfgcore.runtime.atomicio import read_regular

    try:
        size = os.path.getsize(path)
        if size > max_bytes:
            raise ConfigError(
                f"file is {size:,} bytes, over the {max_bytes:,}-byte limit for a legacy "
                "configuration (pass max_bytes= to raise it)",
                file=path,
            )
        # A regular file only: a FIFO's open would block, /dev/zero never ends.
        raw = read_regular(path, max_bytes)
    except OSError as exc:
        if exc.errno == errno.EFBIG:  # grew while we looked
            raise ConfigError(f"file is over the {max_bytes:,}-byte limit", file=path) from None
        raise ConfigError(f"cannot read: {exc.strerror or exc}", file=path) from None
    return decode_text(raw, path)


def _check_duplicates(entries: list[LegacyEntry], path: str, problems: list[Problem]) -> None:
    first: dict[str, LegacyEntry] = {}
    for e in entries:
        seen = first.get(e.key)
        if seen is None:
            first[e.key] = e
        else:
            problems.append(
                Problem(
                    e.key,
                    f"duplicate key (first set on line {seen.line})",
                    file=path,
                    line=e.line,
                )
            )


_INI_INLINE_COMMENT = re.compile(r"\s[;#]")


# Sections and keys are split with string methods, not regular expressions: the
# patterns this replaces (``^\[\s*([^\]]*?)\s*\]`` and ``^([^=:\s][^=:]*?)\s*[=:]``) let
# a run of spaces be divided between two or three quantifiers, so one hostile line
# ("[" and 5,000 spaces) took 37 s to refuse and a 16 MiB one would never finish.
def _ini_section(stripped: str) -> str | None:
    """The section name of a ``[name]`` line (comments may follow), else None."""
    if not stripped.startswith("["):
        return None
    close = stripped.find("]")
    if close < 0:
        return None
    rest = stripped[close + 1 :].lstrip()
    if rest and rest[0] not in ";#":
        return None
    return stripped[1:close].strip()


def _ini_key(stripped: str) -> tuple[str, str] | None:
    """``(key, value)`` of a ``key = value`` / ``key: value`` line, else None.

    The key ends at the first ``=`` or ``:``; one whitespace character after it is
    dropped (so ``key = ;x`` keeps ``;x``, as configparser does)."""
    cut = min((i for i in (stripped.find("="), stripped.find(":")) if i >= 0), default=-1)
    if cut <= 0 or stripped[0].isspace():
        return None
    value = stripped[cut + 1 :]
    if value[:1].isspace():
        value = value[1:]
    return stripped[:cut], value


def _parse_ini(text: str, path: str, problems: list[Problem]) -> list[LegacyEntry]:
    """INI as configparser reads it (keys lower-cased, ``=`` or ``:``, ``;``/``#``
    comments, indented continuation lines), plus inline comments after whitespace, but
    strict: duplicate sections and keys are errors with their line instead of a silent
    last-wins."""
    section = ""
    sections: dict[str, int] = {}
    # [key, value lines, line, raw] of the entry being continued: its lines are joined
    # once (a string extended by each continuation line made a value continued over
    # 80,000 lines take 14 s to read, quadratic in its length).
    last: list[Any] | None = None
    pending: list[list[Any]] = []
    for n, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped[0] in "#;":
            continue
        if line[0] in " \t" and last is not None:
            last[1].append(stripped)
            continue
        name = _ini_section(stripped)
        if name is not None:
            key = name.lower()
            if not name:
                problems.append(Problem("", "empty section name", file=path, line=n))
            elif key in sections:
                problems.append(
                    Problem(
                        name,
                        f"duplicate section (first on line {sections[key]})",
                        file=path,
                        line=n,
                    )
                )
            sections.setdefault(key, n)
            section = "" if key == "default" else key
            last = None
            continue
        pair = _ini_key(stripped)
        if pair is None:
            problems.append(
                Problem(section, f"cannot parse line: {_excerpt(stripped)}", file=path, line=n)
            )
            last = None
            continue
        raw = pair[0].strip()
        dotted = f"{section}.{raw.lower()}" if section else raw.lower()
        # An inline comment needs whitespace before its ';' or '#' ("a#b" is a value).
        value = _INI_INLINE_COMMENT.split(pair[1], maxsplit=1)[0].strip()
        last = [dotted, [value], n, raw]
        pending.append(last)
    return [LegacyEntry(k, "\n".join(v), ln, raw) for k, v, ln, raw in pending]


_PROP_ESCAPES = {"t": "\t", "n": "\n", "r": "\r", "f": "\f"}


# An escape: a backslash and the character after it (``\\uXXXX`` with its 4 hex digits).
_PROP_ESCAPE = re.compile(r"\\(?:u[0-9a-fA-F]{4}|u|[\s\S])")


def _unescape_properties(s: str, path: str, n: int, problems: list[Problem]) -> str:
    if "\\" not in s:
        text = s  # (most keys and values: no escape to read)
    else:

        def unescape(m: re.Match[str]) -> str:
            escape = m.group()
            if escape[1] != "u":
                return _PROP_ESCAPES.get(escape[1], escape[1])
            if len(escape) == 6:
                return chr(int(escape[2:], 16))
            # (one problem per such escape; the "\\u" alone is dropped)
            problems.append(Problem("", f"malformed \\u escape: {_excerpt(s)}", file=path, line=n))
            return ""

        # A final backslash escapes nothing and stays.
        text = _PROP_ESCAPE.sub(unescape, s)
    if text.isascii():
        return text
    # Java writes a character beyond U+FFFF as two escapes, a UTF-16 surrogate pair
    # ("\ud83d\ude00"): join them into the one character. Each was kept on its own,
    # and the migrated file held text no reader accepts; half a pair is refused here.
    try:
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le")
    except UnicodeDecodeError:
        message = f"\\u escape of half a character (a lone UTF-16 surrogate): {_excerpt(s)}"
        problems.append(Problem("", message, file=path, line=n))
        return text


# A key: characters up to the first unescaped '=', ':' or whitespace, an escaped one
# (a backslash and the character after it) included; a final backslash ends it.
_PROP_KEY = re.compile(r"(?:\\[\s\S]?|[^=: \t\f\\])*")


def _parse_properties(text: str, path: str, problems: list[Problem]) -> list[LegacyEntry]:
    """Java ``.properties`` (java.util.Properties.load): ``key=value``, ``key: value`` or
    ``key value``; ``#``/``!`` comments; a trailing backslash continues the line;
    ``\\uXXXX`` and the usual escapes. Keys are kept as written (case matters)."""
    entries: list[LegacyEntry] = []
    lines = text.splitlines()
    n = 0
    while n < len(lines):
        start = n + 1
        line = lines[n].lstrip()
        n += 1
        if not line or line[0] in "#!":
            continue
        # Join continuation lines: an odd number of trailing backslashes continues.
        # The pieces are joined once (cutting and extending one growing string made a
        # file of many continued lines quadratic).
        pieces = [line]
        while (len(pieces[-1]) - len(pieces[-1].rstrip("\\"))) % 2 == 1:
            pieces[-1] = pieces[-1][:-1]
            if n >= len(lines):
                break
            pieces.append(lines[n].lstrip())
            n += 1
        line = "".join(pieces)
        # The key ends at the first unescaped '=', ':' or whitespace.
        raw_key = _PROP_KEY.match(line).group()  # type: ignore[union-attr]  # (matches "")
        rest = line[len(raw_key) :].lstrip(" \t\f")
        if rest[:1] in ("=", ":"):
            rest = rest[1:].lstrip(" \t\f")
        key = _unescape_properties(raw_key, path, start, problems)
        if not key:
            problems.append(
                Problem("", f"cannot parse line: {_excerpt(line)}", file=path, line=start)
            )
            continue
        value = _unescape_properties(rest, path, start, problems)
        entries.append(LegacyEntry(key, value, start, raw_key))
    return entries


_ENV_LINE = re.compile(r"^(?:export\s+)?([A-Za-z_][A-Za-z0-9_.\-]*)\s*=\s*(.*)$")
_DQ_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "$": "$"}


def _parse_env(text: str, path: str, problems: list[Problem]) -> list[LegacyEntry]:
    """``.env`` files as docker compose and python-dotenv read them: ``KEY=value``,
    optional ``export``, single quotes (literal), double quotes (escapes, may span
    lines), and ``#`` comments (after whitespace in an unquoted value)."""
    entries: list[LegacyEntry] = []
    lines = text.splitlines()
    n = 0
    while n < len(lines):
        start = n + 1
        stripped = lines[n].strip()
        n += 1
        if not stripped or stripped.startswith("#"):
            continue
        m = _ENV_LINE.match(stripped)
        if not m:
            problems.append(
                Problem("", f"cannot parse line: {_excerpt(stripped)}", file=path, line=start)
            )
            continue
        name, rest = m.group(1), m.group(2)
        if rest[:1] in ("'", '"'):
            quote = rest[0]
            parts = [rest[1:]]
            # A double-quoted value may continue over several lines until its close.
            # The scan resumes where it stopped: rescanning the whole value for each
            # added line made an unterminated quote before 10,000 lines take 6 s.
            end, pos, offset = -1, 0, 0
            while True:
                end, pos = _closing_quote(parts[-1], quote, pos)
                if end >= 0 or quote == "'" or n >= len(lines):
                    break
                # The newline between the lines is neither a quote nor a backslash (a
                # final backslash escapes it): the next line is scanned from its start.
                offset += len(parts[-1]) + 1
                pos = 0
                parts.append(lines[n])
                n += 1
            body = "\n".join(parts)
            if end >= 0:
                end += offset
            if end < 0:
                problems.append(Problem(name, f"unterminated {quote} quote", file=path, line=start))
                continue
            tail = body[end + 1 :].strip()
            if tail and not tail.startswith("#"):
                problems.append(
                    Problem(
                        name,
                        f"text after the closing quote: {_excerpt(tail)}",
                        file=path,
                        line=start,
                    )
                )
                continue
            value = body[:end]
            if quote == '"':
                value = re.sub(
                    r"\\(.)", lambda mm: _DQ_ESCAPES.get(mm.group(1), mm.group(0)), value
                )
        else:
            value = re.split(r"\s+#", rest, maxsplit=1)[0].strip()
        key = name.lower().replace("__", ".")
        entries.append(LegacyEntry(key, value, start, name))
    return entries


def _closing_quote(body: str, quote: str, start: int = 0) -> tuple[int, int]:
    """``(index of the closing quote or -1, where to resume)``; a resume point past
    the end means the last character was a backslash escaping what follows."""
    i = start
    while i < len(body):
        if body[i] == "\\" and quote == '"':
            i += 2
            continue
        if body[i] == quote:
            return i, i
        i += 1
    return -1, i


def _flatten(
    tree: Any, prefix: str, lines: Mapping[tuple[str, ...], int], parts: tuple[str, ...]
) -> Iterator[LegacyEntry]:
    for k, v in tree.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        p = (*parts, str(k))
        if isinstance(v, dict) and v:
            yield from _flatten(v, key, lines, p)
        else:
            yield LegacyEntry(key, v, lines.get(p), str(k))


def _parse_structured(text: str, fmt: str, path: str, problems: list[Problem]) -> list[LegacyEntry]:
    """Flat JSON/YAML with dotted keys (nested mappings are flattened too)."""
    from cfgcore.config.files import _huge_int_problem, _line_index  # key path -> line

    if fmt == "json":
        dupes: list[str] = []

        def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
            out: dict[str, Any] = {}
            for k, v in items:
                if k in out:
                    dupes.append(k)
                out[k] = v
            return out

        try:
            data = json.loads(text, object_pairs_hook=pairs) if text.strip() else {}
        except json.JSONDecodeError as exc:
            from cfgcore._json_errors import json_syntax_problem  # file:line: key path: ...

            problems.append(json_syntax_problem(exc, path))
            return []
        except ValueError as exc:
            # int() refuses literals of more than sys.get_int_max_str_digits() digits
            # (4,300 by default) while the parser runs: named as configuration files do.
            if "digits" not in str(exc):
                raise
            problems.append(_huge_int_problem(text, fmt, path))
            return []
        except RecursionError:
            # Past the parser's recursion: the containers too deep cut out, the rest
            # names where (as a configuration file's refusal does), else the file only.
            where = ""
            cut = None if len(text) > _DEEP_SCAN_CHARS else _cut_deep(text, "json", MAX_DEPTH + 1)
            if cut is not None:
                with contextlib.suppress(ValueError, RecursionError):
                    where = _too_deep_at(json.loads(cut)) or ""
            problems.append(Problem(where, _TOO_DEEP, file=path))
            return []
        if dupes:
            # One pass over the text finds every repeated key with both lines (a pass
            # per key made 10,000 duplicates take seconds and a large file hours).
            for k, first, again in _json_duplicates(text):
                problems.append(
                    Problem(k, f"duplicate key (first set on line {first})", file=path, line=again)
                )
    else:
        from cfgcore.yamlio import load_yaml

        try:
            # Keys are text, as in a configuration file; an integer key written in
            # decimal (a list-like "1: x") is its digits, "1", the same key as a quoted
            # "1" beside it (refused as a duplicate). Any other key that is not text
            # (null:, true:, 1.5:, 0x1F:, a list) is refused naming its line, never
            # migrated as Python's text for it ("None", "True").
            data = load_yaml(text, file=path, text_keys=True, decimal_keys=True)
        except ConfigError as exc:
            problems.extend(exc.problems)
            return []
        if data is None:
            data = {}
    if not isinstance(data, dict):
        problems.append(
            Problem("", f"the top level must be a mapping, got {type(data).__name__}", file=path)
        )
        return []
    # Flattening and the line index recurse: refuse what configuration files refuse
    # (deeper than MAX_DEPTH) first, instead of a RecursionError traceback.
    deep = _too_deep_at(data)
    if deep is not None:
        problems.append(Problem(deep, _TOO_DEEP, file=path))
        return []
    lines = _line_index(text, fmt)
    return list(_flatten(data, "", lines, ()))


_TOO_DEEP = f"nested more than {MAX_DEPTH} levels deep"


def _too_deep_at(tree: Any) -> str | None:
    """The key path (first levels, :func:`~cfgcore.errors.format_key_path`: a key holding
    a dot quoted) of a value nested deeper than MAX_DEPTH in the parsed file, else None;
    iterative, so it cannot overflow the stack itself."""
    stack: list[tuple[Any, tuple[str, ...]]] = [(tree, ())]
    while stack:
        node, path = stack.pop()
        if isinstance(node, dict | list):
            if len(path) >= MAX_DEPTH:
                return format_key_path(path[:6]) + (".…" if len(path) > 6 else "")
            items = node.items() if isinstance(node, dict) else enumerate(node)
            stack += [(v, (*path, str(k))) for k, v in items]
    return None


_JSON_TOKEN = re.compile(r'"((?:[^"\\]|\\.)*)"(\s*:)?|[{}\[\]]')


def _json_duplicates(text: str) -> list[tuple[str, int, int]]:
    """``(key, first line, repeated line)`` for each key repeated in one object of a
    valid JSON text, in file order. Every string is matched from its opening quote, so
    keys are told from values and braces inside strings are skipped."""
    out: list[tuple[str, int, int]] = []
    objects: list[dict[str, int] | None] = []  # per open bracket: its keys (None: array)
    line, last = 1, 0
    for m in _JSON_TOKEN.finditer(text):
        token = m.group(0)
        if token in "{[":
            objects.append({} if token == "{" else None)
        elif token in "}]":
            if objects:
                objects.pop()
        elif m.group(2) is not None and objects and objects[-1] is not None:
            line += text.count("\n", last, m.start())
            last = m.start()
            key = json.loads(f'"{m.group(1)}"')
            seen = objects[-1]
            if key in seen:
                out.append((key, seen[key], line))
            else:
                seen[key] = line
    return out


def _excerpt(s: str, limit: int = 60) -> str:
    s = s.replace("\n", "\\n")
    return repr(s if len(s) <= limit else s[:limit] + "...")


def refuse_blank(path: str | os.PathLike[str], max_bytes: int = DEFAULT_MAX_BYTES) -> None:
    """ConfigError if the legacy file is empty or whitespace only: what a truncated or
    unfinished copy looks like, which a migration would turn into an empty configuration
    and call a success. (A file of comments only is a legacy file with no keys.)"""
    name = os.fspath(path)
    if not _read_text(name, max_bytes).strip():
        raise ConfigError(
            "file is empty (a truncated or unfinished copy?): nothing to migrate",
            file=name,
            kind="limits",
        )


def read_legacy(
    path: str | os.PathLike[str], *, format: str | None = None, max_bytes: int = DEFAULT_MAX_BYTES
) -> list[LegacyEntry]:
    """The entries of a legacy file in file order, or ConfigError listing every problem
    (each with the file and line)."""
    name = os.fspath(path)
    fmt = format or _format_for(name)
    text = _read_text(name, max_bytes)
    problems: list[Problem] = []
    if fmt == "ini":
        entries = _parse_ini(text, name, problems)
    elif fmt == "properties":
        entries = _parse_properties(text, name, problems)
    elif fmt == "env":
        entries = _parse_env(text, name, problems)
    elif fmt in ("json", "yaml"):
        entries = _parse_structured(text, fmt, name, problems)
    else:
        raise ConfigError(f"unknown legacy format {format!r}", file=name)
    _check_duplicates(entries, name, problems)
    if problems:
        raise ConfigError(problems)
    return entries


# ----------------------------------------------------------------------------- the schema
