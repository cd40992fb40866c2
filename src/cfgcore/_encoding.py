"""The one text-encoding policy for every file cfgcore reads as text.

Configuration files (YAML, JSON, TOML, profiles, ``.env``), flag files (YAML, JSON),
legacy inputs of a migration, secret, key and password files, documents given to
``cfgcore import`` and the events given to ``cfgcore experiment ingest`` are all read
through :func:`decode_text` (the events a line at a time, their first line judged by
:func:`wide_encoding`). MessagePack is not text: its strings are UTF-8 by that format's
definition, and its decoder refuses any that are not.

The policy:

* **UTF-8 is read, with or without a UTF-8 byte-order mark.** Windows editors write the
  mark; it is not content (not part of a first key, a secret or a password).
* **UTF-16 and UTF-32 are refused, with or without their byte-order mark,** saying which
  it is and to save the file as UTF-8: Notepad's "Unicode" is UTF-16 and PowerShell's
  redirections write it, so a bare "not UTF-8 (byte 0)" or "character U+0000 is not
  allowed" would not tell the author what to do. Without a mark the file is recognised
  by the NUL bytes around its first (ASCII) characters, as the YAML specification's
  encoding detection (5.2) does; one that starts otherwise is refused for a NUL or for
  bytes that are not UTF-8 further on (UTF-16 of some text without a mark is valid
  UTF-8: no reader can tell it from the start). JSON must be UTF-8 (RFC 8259, 8.1);
  YAML 1.2 allows UTF-16 and UTF-32, but reading them for one format only would make a
  file loadable or not by its extension, and a configuration file and a flags file
  differently: one rule for every file is easier to state and to keep.
* **Bytes that are not UTF-8 are refused,** naming their byte offset and line.
* **A NUL character is refused** wherever it is: no text format cfgcore reads holds a
  raw one (YAML, JSON and TOML forbid it; no environment variable, secret or INI value
  can carry one intact), and one past the start is what a binary file, or UTF-16 whose
  first character is not ASCII, looks like.

Every refusal is a :class:`~cfgcore.errors.ConfigError` of kind ``parse`` naming the file
and, where it helps, the line and byte; for a secret (``secret=True``) neither the line
nor the byte is named, as they would tell something of the secret. A reload that meets
a refused file keeps the last good configuration or flags serving, as for any refusal.
"""

from __future__ import annotations

import re

from cfgcore.errors import ConfigError, Problem

__all__ = ["UTF8_BOM", "decode_text", "utf8_encodable", "wide_encoding"]

UTF8_BOM = b"\xef\xbb\xbf"

# How a UTF-16 or UTF-32 text starts (UTF-32's marks before UTF-16's: FF FE 00 00
# starts with FF FE): a byte-order mark, else NUL bytes around an ASCII first character.
# Without a mark, two characters are looked at (UTF-16 whose second character is not
# Latin-1, or a NUL in UTF-8 text, is refused for its NUL, whose message names both).
_WIDE = (
    (b"\xff\xfe\x00\x00", "UTF-32", "a UTF-32 byte-order mark"),
    (b"\x00\x00\xfe\xff", "UTF-32", "a UTF-32 byte-order mark"),
    (b"\xff\xfe", "UTF-16", "a UTF-16 byte-order mark"),
    (b"\xfe\xff", "UTF-16", "a UTF-16 byte-order mark"),
    (re.compile(rb"\0\0\0[^\0]|[^\0]\0\0\0"), "UTF-32", "NUL bytes around each character"),
    (re.compile(rb"\0[^\0]\0[^\0]|[^\0]\0[^\0]\0"), "UTF-16", "NUL bytes between its characters"),
)

_SAVE = "; save it as UTF-8"


def utf8_encodable(text: str) -> bool:
    """Whether ``text`` can be written as UTF-8: False when it holds a lone surrogate
    (half of a UTF-16 pair, ``"\\ud800"``: what Python gives a name or a JSON escape
    that is not valid Unicode), which no file, document or CBOR text holds. Uses str's
    own ``encode``, so a subclass overriding it does not decide."""
    try:
        str.encode(text, "utf-8")
    except UnicodeEncodeError:
        return False
    return True


def wide_encoding(head: bytes) -> str | None:
    """Why text starting with ``head`` (its first four bytes will do) is UTF-16 or
    UTF-32 (``"UTF-16 text (it starts with a UTF-16 byte-order mark); save it as
    UTF-8"``), or None.

    >>> wide_encoding("a: 1".encode("utf-16-le"))
    'UTF-16 text (it starts with NUL bytes between its characters); save it as UTF-8'
    >>> wide_encoding(b"a: 1") is None
    True
    """
    head = bytes(head[:4])
    for start, encoding, why in _WIDE:
        if head.startswith(start) if isinstance(start, bytes) else start.match(head):
            return f"{encoding} text (it starts with {why}){_SAVE}"
    return None


def decode_text(
    data: bytes | str, file: str | None, what: str = "", *, secret: bool = False
) -> str:
    """The text of a file cfgcore reads as text, by the policy above; ConfigError
    naming ``file`` (and the line, and the byte offset in the file) otherwise.
    ``what`` prefixes the message (``"cannot read the .env file: "``); ``secret``
    leaves out the line and byte. Text already decoded (``str``) only loses a leading
    byte-order mark.

    >>> decode_text(b"\\xef\\xbb\\xbfa: 1", "app.yaml")
    'a: 1'
    >>> decode_text(b"a: caf\\xe9", "app.yaml")
    Traceback (most recent call last):
    ...
    cfgcore.errors.ConfigError: app.yaml:1: not UTF-8 (byte 6); save it as UTF-8
    """
    if isinstance(data, str):
        return data.removeprefix("\ufeff")
    raw = bytes(data)
    wide = wide_encoding(raw)
    if wide is not None:
        raise _refused(f"{what}{wide}", file, None if secret else 1)
    nul = raw.find(b"\0")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad = exc.start
    else:
        bad = -1
    if bad >= 0 and not 0 <= nul < bad:  # (whichever comes first is named)
        at = "" if secret else f" (byte {bad})"
        raise _refused(f"{what}not UTF-8{at}{_SAVE}", file, _line(raw, bad, secret))
    if nul >= 0:
        at = "" if secret else f" (byte {nul})"
        message = (
            f"{what}a NUL character{at}, which text does not hold (a binary file, or one "
            f"saved as UTF-16 or UTF-32?){_SAVE}"
        )
        raise _refused(message, file, _line(raw, nul, secret))
    return text.removeprefix("\ufeff")


def _line(raw: bytes, at: int, secret: bool) -> int | None:
    return None if secret else raw.count(b"\n", 0, at) + 1


def _refused(message: str, file: str | None, line: int | None) -> ConfigError:
    return ConfigError([Problem("", message, file=file, line=line, kind="parse")])
