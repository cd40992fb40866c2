"""Where a JSON syntax error is: the key path of its place, for the message.

A JSON decoder says where it stopped as a character (``json``) or byte (``msgspec``)
offset; a long file of repeated blocks then leaves the reader counting braces.
:func:`json_error_path` reads the text before that offset again, a token at a time
(strings with their escapes, the structural characters, other runs of text as one
value), and names the collections open there and the key or item the error is at, as
YAML's syntax errors are named (:func:`cfgcore.yamlio._error_path`):

* ``{"db": {"port": @}}``: the value of a key being read, ``db.port``;
* ``{"db": {"replicas": [1, 2, @]}}``: the item whose place it is, ``db.replicas.2``;
* ``{"db": {"replicas": [1, 2 3]}}``: the item or value the error directly follows on
  its line, ``db.replicas.1``;
* ``{"db": {"port": 1,\\n @}}`` (at no key): the object, ``db``; the top level: none.

Only the error path pays for it: a document that decodes is never scanned. The work is
bounded (at most :data:`_ERROR_PATH_TOKENS` tokens, past them no path), at most
``_ERROR_PATH_SHOWN`` keys of at most ``_ERROR_KEY_SHOWN`` characters are shown (then
``…``), and anything the scan does not expect (text before the offset that is no JSON
prefix) gives no path: never a wrong one, never another exception.
"""

from __future__ import annotations

import json
import re
from itertools import islice
from typing import Any

from cfgcore.errors import Problem, format_key_path

__all__ = ["json_error_path", "json_syntax_problem", "json_value_error", "shown_path"]

# At most this many tokens are read again (several megabytes of JSON; past them the
# error names its file and line only), as YAML's error path reads at most 1,000,000
# parse events.
_ERROR_PATH_TOKENS = 1_000_000
# As YAML's: at most this many keys of at most this many characters, then "…".
_ERROR_PATH_SHOWN = 32
_ERROR_KEY_SHOWN = 200

# One token after any white space: a string (its closing quote left off where the text
# ends inside it), a structural character, or a run of anything else (a number, true,
# false, null: JSON has no other bare text). No token of a JSON text holds a line
# break (a string may not), so the text is read in pieces that end at one.
_TOKEN = re.compile(r'[ \t\n\r]*("[^"\\\n]*(?:\\.[^"\\\n]*)*"?|[{}\[\],:]|[^ \t\n\r"{}\[\],:]+)')
_STRING = re.compile(r'"[^"\\\n]*(?:\\.[^"\\\n]*)*"')
_PIECE = 1 << 16  # characters read at once (then to the next line break)

# What a collection expects next.
_KEY, _COLON, _VALUE, _AFTER = range(4)


def shown_path(segments: list[Any]) -> str:
    """``segments`` as a key path for an error message: at most ``_ERROR_PATH_SHOWN``
    of them, none longer than ``_ERROR_KEY_SHOWN`` characters (then ``.…``: a prefix
    of the path, never a shortened key)."""
    shown: list[Any] = []
    for segment in segments:
        if len(shown) == _ERROR_PATH_SHOWN or len(str(segment)) > _ERROR_KEY_SHOWN:
            return format_key_path(shown) + ".…" if shown else ""
        shown.append(segment)
    return format_key_path(shown)


def json_error_path(data: str | bytes, at: int) -> str:
    """The key path of where the JSON text ``data`` goes wrong at offset ``at``
    (characters of a str, bytes of bytes), "" where it cannot be told. Never raises."""
    try:
        return _error_path(data, at)
    except Exception:  # (never expected: this only words an error being reported)
        return ""


def _error_path(data: str | bytes, at: int) -> str:
    if at < 0:
        return ""
    if isinstance(data, (bytes, bytearray, memoryview)):
        try:
            text = bytes(data[:at]).decode("utf-8")
        except UnicodeDecodeError:
            return ""
    else:
        text = data[:at]
    at = len(text)
    # Each string of a JSON text is followed by a structural character (":" after a key,
    # ",", "}" or "]" after a value), and its quotes are those no backslash escapes: at
    # least this many tokens are there to read, counted at C speed. A text surely past
    # the budget is not read at all.
    if text.count('"') - text.count('\\"') - 1 > _ERROR_PATH_TOKENS:
        return ""
    # One frame per open collection: [its segment in its parent, is an object, what it
    # expects next, the key read last (an object's) or the count of items begun (an
    # array's), the segment of the value read last (None: none yet)]. The root frame
    # holds the document; its segment is never shown.
    root: list[Any] = [None, False, _VALUE, 0, None]
    frames = [root]
    frame = root
    inside = False  # the text ends inside a string
    tokens = 0
    start = 0
    while start < at and not inside:
        stop = text.find("\n", start + _PIECE) + 1 or at
        # Tokens are read up to the white space the piece ends in: a run of white space
        # that no token follows failed _TOKEN from each of its characters in turn, in
        # time quadratic in its length (30 s for a text ending in 40,000 spaces).
        end = start + len(text[start:stop].rstrip(" \t\n\r"))
        if stop - start <= 4 * _PIECE:
            piece = _TOKEN.findall(text, start, end)
        else:  # a long line (minified JSON): read no more tokens than the budget's
            found = _TOKEN.finditer(text, start, end)
            piece = [m.group(1) for m in islice(found, _ERROR_PATH_TOKENS - tokens + 1)]
        start = stop
        tokens += len(piece)
        if tokens > _ERROR_PATH_TOKENS:
            return ""
        for token in piece:
            if inside:  # (a token after a string the text ends inside: no JSON prefix)
                return ""
            first = token[0]
            if first == '"':
                # (a quote after a backslash may close the string or be escaped)
                if (
                    len(token) < 2
                    or token[-1] != '"'
                    or (token[-2] == "\\" and not _STRING.fullmatch(token))
                ):
                    inside = True  # the text ends inside this string (if it is the last)
                    if frame[2] not in (_KEY, _VALUE):
                        return ""
                    continue
                if frame[1] and frame[2] == _KEY:
                    key = token[1:-1]
                    frame[3] = json.loads(token) if "\\" in key else key
                    frame[2] = _COLON
                    continue
            elif first == ":":
                if not (frame[1] and frame[2] == _COLON):
                    return ""
                frame[2] = _VALUE
                continue
            elif first == ",":
                if frame is root or frame[2] != _AFTER:
                    return ""
                frame[2] = _KEY if frame[1] else _VALUE
                continue
            elif first == "}" or first == "]":
                closing_object = first == "}"
                # an empty collection closes where its first key or item could start
                empty = frame[4] is None and frame[2] == (_KEY if closing_object else _VALUE)
                if frame is root or frame[1] != closing_object or not (frame[2] == _AFTER or empty):
                    return ""
                frames.pop()
                segment = frame[0]
                frame = frames[-1]
                frame[2], frame[4] = _AFTER, segment
                continue
            # A value starts here: a string, a collection or other text (a number, a literal).
            if frame[2] != _VALUE:
                return ""
            segment = frame[3]
            if not frame[1]:
                frame[3] += 1
            if first == "{":
                frame = [segment, True, _KEY, None, None]
                frames.append(frame)
            elif first == "[":
                frame = [segment, False, _VALUE, 0, None]
                frames.append(frame)
            else:
                frame[2], frame[4] = _AFTER, segment
    if frame is root:  # the top level: no path
        return ""
    segments: list[Any] = [f[0] for f in frames[2:]]  # (frames[1]: the document)
    expects = frame[2]
    if expects in (_COLON, _VALUE):
        # a key read, its value not yet (or inside it); the place of an item (or inside
        # it); inside a key, the object only (the key is not read yet)
        segments.append(frame[3])
    elif expects == _AFTER and not inside:
        # the value read last ends where the text's trailing white space starts
        tail = text[-201:]
        gap = tail[len(tail.rstrip(" \t\n\r")) :]
        if len(gap) <= 200 and gap.strip(" \t") == "":
            segments.append(frame[4])  # right after it on its line
    return shown_path(segments)


def json_value_error(exc: json.JSONDecodeError) -> tuple[str, str]:
    """The standard library decoder's error in JSON given as one value (an environment
    variable, a command-line option) rather than a file: ``(key path inside the value,
    "invalid JSON: <what> (column N)")``, ``(line L, column N)`` in a value of several
    lines; the path "" where it cannot be told. The value itself is never shown (an
    environment variable may carry a secret)."""
    message = exc.msg.removesuffix(" at")
    if not exc.doc:  # (raised by a hook, not at a place in the text)
        return "", f"invalid JSON: {message}"
    place = f"line {exc.lineno}, column {exc.colno}" if "\n" in exc.doc else f"column {exc.colno}"
    return json_error_path(exc.doc, exc.pos), f"invalid JSON: {message} ({place})"


def json_syntax_problem(exc: json.JSONDecodeError, file: str | None) -> Problem:
    """The standard library decoder's error as ``file:line: key path: invalid JSON:
    <what> (column N)``: its own text ends in " at" where its str() adds the place
    ("Invalid control character at"); the place is the line and the column here."""
    message = exc.msg.removesuffix(" at")
    if not exc.doc:  # (raised by a hook, not at a place in the text)
        return Problem(path="", message=f"invalid JSON: {message}", file=file)
    message += f" (column {exc.colno})"
    path = json_error_path(exc.doc, exc.pos)
    return Problem(path=path, message=f"invalid JSON: {message}", file=file, line=exc.lineno)
