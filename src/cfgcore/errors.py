"""One exception hierarchy for cfgcore.

Every error raised for bad input is a :class:`ConfigError`. It carries a list of
:class:`Problem` records, each naming the file, the key path and (where known) the
line, so a caller can show all problems at once instead of fixing them one by one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

#: Why an input was refused, as a closed set (metrics label refusals with it):
#:
#: ``parse``       not valid YAML/JSON/TOML (syntax, duplicate keys, not UTF-8, the
#:                 top level not a mapping, an unsupported file type)
#: ``limits``      beyond the input limits (an empty file, nesting depth, integers
#:                 outside 64 bits, YAML alias expansion)
#: ``io``          a file that cannot be read, is missing or is ambiguous
#: ``incomplete``  an input caught while being replaced (disappeared, truncated, still
#:                 changing while read)
#: ``transform``   a transformation step failed (a missing ``${VAR}``, a bad duration)
#: ``secrets``     an ``ENC[...]`` value or secret file could not be resolved
#: ``profile``     an unknown or malformed profile
#: ``flags``       the flag document does not decode or compile
#: ``validation``  the validation gate blocked the configuration
#: ``denied``      the access policy refused the change (``PermissionError``)
#: ``other``       anything else
REASON_CLASSES = (
    "parse",
    "limits",
    "io",
    "incomplete",
    "transform",
    "secrets",
    "profile",
    "flags",
    "validation",
    "denied",
    "other",
)


# --------------------------------------------------------------------------- key paths
#
# A key path is shown dotted (``a.b.0.c``: list items by their index). A key may itself
# hold a dot (a logger ``uvicorn.access``, a hostname, a Java-style property name), and
# then the dotted form names another path, so such a segment is shown quoted in
# brackets: ``loggers["uvicorn.access"].level``. So is a segment holding ``[`` (which
# would read as the start of one) and the empty key. Inside the quotes ``"`` and ``\``
# are escaped with a backslash. This is the one rendering of key paths in messages,
# explain output, change events and the audit log; :func:`parse_key_path` reads it back.
# Flag documents name a list item as ``rules[0]`` (the form their errors have always
# shown): a bare ``[`` never starts a plain segment, so ``[0]`` reads back as item 0.


def plain_segment(seg: object) -> bool:
    """Whether a key path segment is shown as it is (not quoted: :func:`format_key_path`)."""
    if not issubclass(type(seg), str):
        return True
    text = str.__str__(seg)  # a str subclass by its text: its own __ne__ may raise
    return text != "" and "." not in text and "[" not in text


def format_key_path(path: Iterable[object]) -> str:
    """A key path's segments as text: ``("a", "b", 0)`` -> ``"a.b.0"``, and a segment
    the dotted form cannot show quoted: ``("loggers", "uvicorn.access", "level")`` ->
    ``'loggers["uvicorn.access"].level'``.

    >>> format_key_path(("a", "", "x.y", 'say "hi"'))
    'a[""]["x.y"].say "hi"'
    """
    out: list[str] = []
    for seg in path:
        if plain_segment(seg):
            # A str subclass by its text: its own __str__ may answer anything, or raise.
            text = str.__str__(seg) if issubclass(type(seg), str) else str(seg)
            out.append("." + text if out else text)
        else:
            text = str.__str__(seg)  # type: ignore[arg-type]  # a str (plain_segment)
            out.append('["' + text.replace("\\", "\\\\").replace('"', '\\"') + '"]')
    return "".join(out)


def child_key_path(parent: str, key: object) -> str:
    """The rendered key path ``parent`` (:func:`format_key_path`) and one key below it,
    quoted when the dotted form cannot show it: ``("flags", "a.b")`` ->
    ``'flags["a.b"]'``, ``("flags", "")`` -> ``'flags[""]'``. Every path into a
    flag document whose keys come from the document (flag keys, segment and variant
    names) is built with it, so ``flags["a.b"].enabled`` (flag ``a.b``) is never shown
    as ``flags.a.b.enabled`` (flag ``a``, field ``b.enabled``). A key that is not text
    (given in Python or MessagePack) is named in Python's spelling in brackets
    (:func:`python_key_segment`): ``flags.f.variants.a[None]``, never ``a.None``.

    >>> child_key_path("flags", "checkout")
    'flags.checkout'
    """
    if not issubclass(type(key), str):  # type(): an object's __class__ may raise
        return parent + python_key_segment(key)
    return parent + key_segment(key) if parent else format_key_path((key,))


def key_segment(key: object) -> str:
    """``key`` as it follows a key path (:func:`child_key_path`): ``.name``, or quoted
    ``["a.b"]`` where the dotted form cannot show it, ``[None]`` for a key that is not
    text (:func:`python_key_segment`).

    >>> key_segment("a.b")
    '["a.b"]'
    """
    if not issubclass(type(key), str):
        return python_key_segment(key)
    if plain_segment(key):
        return "." + (key if type(key) is str else str.__str__(key))
    return format_key_path((key,))


# A key given in Python that is not text is shown up to this many characters.
_PYTHON_KEY_SHOWN = 60


def python_key(key: object) -> str:
    """``key`` (a mapping key given in Python that is not text) as Python spells it,
    cut at 60 characters with "…", on one line; ``<type>`` where its ``repr`` raises
    (an integer past the digit limit, a caller's class): naming it never raises.

    >>> python_key(None), python_key(1.5)
    ('None', '1.5')
    """
    try:
        text = repr(key)
    except Exception:
        text = f"<{type(key).__name__}>"
    if type(text) is not str:  # a str subclass would answer len() and slicing itself
        text = f"<{type(key).__name__}>"
    if len(text) > _PYTHON_KEY_SHOWN:
        text = text[: _PYTHON_KEY_SHOWN - 1] + "…"
    return printable(text)  # a caller's repr may hold a newline or a lone surrogate


def python_key_segment(key: object) -> str:
    """``key`` (a mapping key given in Python that is not text) as it follows a key
    path: Python's spelling in brackets, ``a[None]``, ``a[1.5]``, ``a[True]``. It has no
    spelling in a file, and the caller wrote it in Python; the brackets keep it apart
    from the text key of the same letters, ``a.None`` (and ``a["1.5"]``, a text key
    holding a dot), as a quoted segment's ``["`` does.

    >>> "a" + python_key_segment(None)
    'a[None]'
    """
    return f"[{python_key(key)}]"


def join_key_paths(outer: str, inner: str) -> str:
    """The rendered key path ``inner`` (:func:`format_key_path`) below the rendered
    ``outer``: ``("a", "b[\"\"]")`` -> ``'a.b[""]'``, ``("a", '[""].c')`` ->
    ``'a[""].c'`` (a quoted segment takes no dot before it).

    >>> join_key_paths("prefs", '[""]')
    'prefs[""]'
    """
    if not outer or not inner:
        return outer or inner
    return outer + inner if inner.startswith("[") else f"{outer}.{inner}"


def parse_key_path(text: str) -> tuple[str, ...]:
    """The segments :func:`format_key_path` rendered ``text`` from (list indices as
    digit strings, as :func:`cfgcore.config.tree.split_path` gives them; ``rules[0]``
    too). A text that is not such a rendering is split on every dot, as a dotted key
    path is.

    >>> parse_key_path('loggers["uvicorn.access"].level')
    ('loggers', 'uvicorn.access', 'level')
    """
    segs = rendered_key_path(text) if "[" in text else None
    if segs is None:
        return tuple(text.split(".")) if text else ()
    return segs


def rendered_key_path(text: str) -> tuple[str, ...] | None:
    """The segments of ``text`` read as a rendering (names joined by dots, a quoted one
    as ``["..."]``, ``"`` and ``\\`` escaped), or None when it is not one."""
    segs: list[str] = []
    i, n = 0, len(text)
    while True:
        index = _INDEX.match(text, i)
        if index is not None:  # a list item in a flag document's path: rules[0]
            segs.append(index.group(1))
            i = index.end()
        elif text.startswith('["', i):
            j, buf = i + 2, []
            while j < n and text[j] != '"':
                if text[j] == "\\" and j + 1 < n:
                    j += 1
                buf.append(text[j])
                j += 1
            if not text.startswith('"]', j):
                return None
            segs.append("".join(buf))
            i = j + 2
        else:
            j = i
            while j < n and text[j] not in ".[":
                j += 1
            segs.append(text[i:j])
            i = j
        if i >= n:
            return tuple(segs)
        if text[i] == ".":
            i += 1
            if i >= n or text.startswith("[", i):  # "a." or 'a.["b"]': not a rendering
                return None
        elif not text.startswith('["', i) and _INDEX.match(text, i) is None:
            return None


_INDEX = re.compile(r"\[([0-9]+)\]")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input: where it is and what is wrong.

    ``kind`` is the problem's reason class (:data:`REASON_CLASSES`; ``""`` when the
    raiser did not say); it is not part of equality.
    """

    path: str
    message: str
    file: str | None = None
    line: int | None = None
    kind: str = field(default="", compare=False)

    def __str__(self) -> str:
        # ``file:line: path: message``. A problem that concerns no file (a value passed
        # in code, a profile or step name) is its key path and message: it used to read
        # ``<input>: ...``, which named nothing the reader could look up.
        parts = []
        if self.file:
            parts.append(self.file if self.line is None else f"{self.file}:{self.line}")
        elif self.line is not None:
            parts.append(f"line {self.line}")
        if self.path:
            parts.append(self.path)
        parts.append(self.message)
        # Masked first, then escaped (one problem, one line: ConfigError): a secret
        # holding a newline (a PEM key) is found by the mask only in its raw form.
        return printable(mask(": ".join(parts)))


# Control characters, the Unicode line separators and the bidirectional controls in a
# key path or a file name: keys come from the files (JSON "\n" or "\u001b", YAML "\e"),
# and written raw they split an error into lines a log reader takes for others, drive
# the terminal, or reorder the text shown after them (U+202E). A lone surrogate (a
# file name or argument that is not UTF-8, read with "surrogateescape") is escaped too:
# written raw it makes a UTF-8 stream or log file refuse the whole message.
_CONTROL = re.compile(
    "[\x00-\x1f\x7f-\x9f\u2028\u2029\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)


def printable(text: str) -> str:
    """``text`` with each control character, line separator, bidirectional control and
    lone surrogate as its backslash escape (``\\n``, ``\\u202e``, ``\\udcff``).

    Every other character stays as written (an accented key, an emoji sequence with its
    joiners): an error names the key as the file spells it. Names shown in log lines and
    reports use the stricter :func:`printable_name`."""
    if not isinstance(text, str) or _CONTROL.search(text) is None:
        return text
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def printable_name(text: Any) -> str:
    """``text`` (a name read from a document or a log: a test, a variant, a metric) for
    an operator's terminal: every character that is not printable (control characters,
    the escape that starts a terminal sequence, line separators, bidirectional
    overrides) as its backslash escape. A metric name holding "\\x1b[2J" or
    "\\nsample ratio check ... -> ok" cleared the terminal or forged a line of output.

    >>> printable_name("ctr\\x1b[2J")
    'ctr\\\\x1b[2J'
    """
    text = str(text)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def listed(names: Iterable[str]) -> str:
    """``names`` joined for a message as a sentence lists them: ``a``, ``a and b``,
    ``a, b and c``.

    >>> listed(["flags.yaml", "flags.json", "flags.msgpack"])
    'flags.yaml, flags.json and flags.msgpack'
    """
    names = list(names)
    if len(names) < 2:
        return "".join(names)
    return f"{', '.join(names[:-1])} and {names[-1]}"


def all_exist(names: Iterable[str]) -> str:
    """``names`` said to exist together: ``a and b both exist``, ``a, b and c all
    exist`` (two or more names: the ambiguity of a directory holding several files for
    one place)."""
    names = list(names)
    return f"{listed(names)} {'both' if len(names) == 2 else 'all'} exist"


def printable_lines(text: Any) -> str:
    """:func:`printable_name` line by line, for a log line that shows an error: a
    :class:`ConfigError` of several problems keeps its one line per problem (each
    already escaped by :func:`printable`), and whatever else is not printable in the
    text of an exception that is not a :class:`ConfigError` is escaped."""
    return "\n".join(printable_name(line) for line in str(text).split("\n"))


def _no_mask(text: str) -> str:
    return text


# Set by cfgcore.runtime.secrets (imported with any configuration): messages mask every
# resolved secret (decrypted values, secret files, secret variables).
mask = _no_mask


# The problems ``str(err)`` shows, one per line; the rest are counted. A file with a
# mistake repeated on 5,000 flags made a 300 KB message, logged (and audited, and
# reported by health) on every reload that refused it.
MAX_RENDERED_PROBLEMS = 100


class ConfigError(Exception):
    """Root of every cfgcore error about configuration or flag input.

    ``problems`` lists every problem found; ``str(err)`` shows them one per line (the
    first :data:`MAX_RENDERED_PROBLEMS`, then how many more).
    ``kind`` (a :data:`REASON_CLASSES` name) classifies the problems that do not say
    themselves; subclasses set their own (``ConfigValidationError``: ``validation``).
    """

    kind = "other"

    def __init__(
        self, problems: list[Problem] | str, *, file: str | None = None, kind: str | None = None
    ) -> None:
        if isinstance(problems, str):
            problems = [Problem(path="", message=problems, file=file)]
        kind = kind or (type(self).kind if type(self).kind != "other" else "")
        if kind:
            problems = [p if p.kind else replace(p, kind=kind) for p in problems]
        self.problems: list[Problem] = list(problems)
        super().__init__(self._render())

    @property
    def reason(self) -> str:
        """The reason class of this refusal (:data:`REASON_CLASSES`): the first problem's
        that names one, else ``other``. Problems keep their class when an error is
        re-raised with others (a build reports every bad file at once)."""
        for p in self.problems:
            if p.kind:
                return p.kind
        return "other"

    def relocate(self, problems: list[Problem]) -> None:
        """Replace :attr:`problems` in place (the same problems, each told one more fact,
        such as its line), so that ``str(err)`` shows them; the exception keeps its
        type, traceback and cause."""
        self.problems = list(problems)
        self.args = (self._render(),)

    def _render(self) -> str:
        if len(self.problems) == 1:
            return mask(str(self.problems[0]))
        lines = [f"{len(self.problems):,} problems:"]
        lines += [f"  - {p}" for p in self.problems[:MAX_RENDERED_PROBLEMS]]
        more = len(self.problems) - MAX_RENDERED_PROBLEMS
        if more > 0:  # every one stays in .problems (cfgcore validate lists them all)
            lines.append(f"  ... and {more:,} more")
        return mask("\n".join(lines))


class ConfigKeyError(ConfigError, KeyError):
    """A configuration key path that is not set (``manager.section("nope")``); also a
    ``KeyError``, so ``except KeyError`` keeps working. The message names the key path
    and the closest keys that are set."""

    kind = "other"
    __str__ = ConfigError.__str__  # KeyError would show the message quoted


class SnapshotError(ConfigError):
    """A flag snapshot failed to decode or compile; the engine keeps the previous one."""

    kind = "flags"


class StopRegisterError(ConfigError):
    """An entry of the fleet's guardrail stop register that a Redis flag store passed
    over (unsigned, tampered with, oversized, or a register it could not read): told to
    the store's error listeners as a refused document is, though the flag document and
    the live flags are untouched."""


class ConfigValidationError(ConfigError):
    """Validation blocked a configuration from becoming active."""

    kind = "validation"


class TransformError(ConfigError):
    """A configuration transformation step failed (missing variable, bad duration, ...)."""

    kind = "transform"
