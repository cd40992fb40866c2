"""Reference evaluator in pure Python.

Same public names and the same semantics as the compiled ``cfgcore._eval``; the
test suite runs every behavioural test on both and a differential test checks that
they agree on every field. It is the specification in executable form, so it is
written for clarity first. It is used when the extension is unavailable or
``CFGCORE_NO_EXTENSIONS=1``.

Semantics in brief (README "Flag semantics" has the full text):

* A context value binds once per snapshot: strings, numbers (int/float, not bool,
  not NaN) and booleans are usable; None or a missing key is *missing*; anything
  else is *present but unusable*. Every operator except ``exists`` is false on a
  missing or unusable value, and on a value of another type than its constants
  (``ne``/``not_in`` included: ``ne: "x"`` does not match the number 3).
* An array (a list, tuple, set or frozenset, subclasses by their stored elements) in
  a slot ``has_any`` reads binds its elements too: each as a scalar would, nested
  arrays unusable. ``has_any`` holds where one element's id is among its constants'.
* Bucketing (scheme ``murmur3``): the first of the flag's ``bucket_by`` attributes
  holding a string or an int (as decimal) is hashed:
  ``murmur3_x86_32(utf8(f"{salt}:{value}"), 0) % 100000``.

Evaluation counts: every public entry point adds one to its snapshot's
:class:`Counters` per (served variant, reason) and per error code, as the compiled
evaluator does (its module docstring says what racing increments can lose). Here a
cell is a Python int in a list: a thread switch inside another thread's ``+=`` can lose
an increment even with the GIL.
"""

from __future__ import annotations

import math
import re
import struct
import threading
import time
from array import array
from bisect import bisect_left
from collections.abc import Callable, Generator, Iterable, Mapping
from typing import Any, TypeVar, final

from cfgcore import _layout as L
from cfgcore import compiler as C
from cfgcore._automaton import needles as _ac_needles
from cfgcore._clock import epoch_seconds
from cfgcore.details import (
    ERROR_CODES,
    REASONS,
    ErrorCode,
    EvaluationDetails,
    Reason,
    bucketable_id,
    context_value,
    exact_array,
    exact_name,
    int_id_sized,
    int_text,
    key_text,
    metric_event_parts,
    serves_variant,
)
from cfgcore.details import ID_FORM_CHARS as _ID_FORM_CHARS

IMPLEMENTATION = "py"

# (kind, id, ci_id, number, utf8, folded utf8, bucket utf8, semver key, str, elements):
# see _bind_value
_MISSING_BINDING = (L.K_MISSING, -1, -1, 0.0, b"", b"", None, None, None, None)
_OTHER_BINDING = (L.K_OTHER, -1, -1, 0.0, b"", b"", None, None, None, None)

# reason codes (index into details.REASONS), from the shared layout
_STATIC, _DEFAULT, _MATCH = L.REASON_STATIC, L.REASON_DEFAULT, L.REASON_MATCH
_SPLIT, _DISABLED, _PREREQ = L.REASON_SPLIT, L.REASON_DISABLED, L.REASON_PREREQ
_NR = L.N_REASONS


_T = TypeVar("_T", bound=type)


def _final(cls: _T) -> _T:
    """Refuse subclasses, as the compiled twin (a final ``cdef class``) does: a subclass
    that works here would fail with the compiled evaluator, so both refuse it alike."""
    name = f"{cls.__module__}.{cls.__qualname__}"

    def refuse(sub: type, **kwargs: Any) -> None:
        raise TypeError(f"type '{name}' is not an acceptable base type")

    setattr(cls, "__init_subclass__", classmethod(refuse))  # noqa: B010 (mypy: no assignment to a method)
    return cls


def murmur3_32(data: bytes, seed: int = 0) -> int:
    """MurmurHash3 x86_32 of ``data`` (bytes-like; unsigned), as in Austin Appleby's
    reference. ``seed`` is an int in 0..2**32-1: TypeError for another type,
    OverflowError out of range, as the compiled one (a C ``uint32_t``) refuses them."""
    if not isinstance(seed, int):
        raise TypeError(f"seed must be an int, not {type(seed).__name__}")
    if not 0 <= seed <= 0xFFFFFFFF:
        raise OverflowError(f"seed out of range for a uint32: {seed}")
    if data is None or isinstance(data, str):
        raise TypeError(f"a bytes-like object is required, not {type(data).__name__!r}")
    return _murmur3(_byte_buffer(data), int(seed))


def _byte_buffer(data: Any) -> bytes:
    """The bytes of a one-dimensional buffer of unsigned bytes (what the compiled
    ``const unsigned char[::1]`` takes): TypeError for no buffer, ValueError for another
    item type, BufferError for a strided one."""
    view = memoryview(data)
    if view.ndim != 1 or view.format not in ("B", "c"):
        raise ValueError(f"Buffer dtype mismatch: expected unsigned bytes, got {view.format!r}")
    if not view.c_contiguous:
        raise BufferError("the buffer is not contiguous")
    return view.tobytes()


def _murmur3(data: bytes, seed: int = 0) -> int:
    """:func:`murmur3_32` without its checks (the evaluator's own calls; a seed from the
    tables is taken modulo 2**32, as C's conversion to ``uint32_t`` takes it)."""
    c1, c2, mask = 0xCC9E2D51, 0x1B873593, 0xFFFFFFFF
    h = seed & mask
    n = len(data)
    end = n - (n % 4)
    # The 4-byte blocks read by one C iterator, the rotations of 32-bit words written
    # with one mask each (rotl(x, r) of x below 2**32 is (x & (2**(32-r) - 1)) << r
    # | x >> (32 - r)): a third faster on a long id, the same hash.
    for (k,) in struct.iter_unpack("<I", memoryview(data)[:end]):
        k *= c1
        h ^= (((k & 0x1FFFF) << 15 | (k & mask) >> 17) * c2) & mask
        h = (((h & 0x7FFFF) << 13 | h >> 19) * 5 + 0xE6546B64) & mask
    tail = n % 4
    if tail:
        k = 0
        if tail >= 3:
            k ^= data[end + 2] << 16
        if tail >= 2:
            k ^= data[end + 1] << 8
        k ^= data[end]
        k = (k * c1) & mask
        k = ((k << 15) | (k >> 17)) & mask
        k = (k * c2) & mask
        h ^= k
    h ^= n
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & mask
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & mask
    h ^= h >> 16
    return h


_HEX = re.compile(rb"(?:[0-9a-fA-F]{2})+")


def _cbor_head(major: int, n: int) -> bytes:
    # RFC 8949 section 4.2.1: the shortest head that holds n
    if n < 24:
        return bytes([(major << 5) | n])
    for extra, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if n < 1 << (8 * size):
            return bytes([(major << 5) | extra]) + n.to_bytes(size, "big")
    raise OverflowError(n)  # pragma: no cover - ints are bound only within 64 bits


def _cbor_scalar(is_str: bool, bk: bytes) -> bytes:
    if is_str:
        return _cbor_head(3, len(bk)) + bk
    if len(bk) > 21:  # past 2**64 - 1 (and int() may refuse that many digits)
        raise OverflowError(len(bk))  # no CBOR integer holds it: the caller treats it as no value
    n = int(bk)  # an int binds as its decimal text
    if not -(2**64) < n < 2**64:
        raise OverflowError(n)  # no CBOR integer holds it: the caller treats it as no value
    return _cbor_head(0, n) if n >= 0 else _cbor_head(1, -1 - n)


def _fnv1a32_utf16(data: bytes) -> int:
    # FNV-1a over UTF-16 code units: GrowthBook hashes JavaScript strings
    h = 0x811C9DC5
    units = data.decode("utf-8", "surrogatepass").encode("utf-16-le", "surrogatepass")
    for i in range(0, len(units), 2):
        h = ((h ^ (units[i] | (units[i + 1] << 8))) * 0x01000193) & 0xFFFFFFFF
    return h


def scheme_bucket(
    scheme: int, seed: int, salt: bytes, suffix: bytes, space: int, is_str: bool, bk: bytes
) -> int:
    """The bucket (0..space-1) of a bound value under an imported flag's scheme
    (see :class:`cfgcore.snapshot.Hashing`). ``bk`` is the value's bucket text (UTF-8,
    or an int's decimal digits) and ``is_str`` tells which; -1 when there is nothing to
    hash (an int no CBOR integer holds, text that is not hex for ``flagd_v3_cbor``).

    ``space`` is 1..2**31-1, as the compiler writes it (snapshot.Hashing): ValueError
    below, OverflowError above (the compiled one's C ``int``)."""
    if space < 1:
        raise ValueError(f"space must be within 1..2147483647, got {space}")
    if space > 0x7FFFFFFF:
        raise OverflowError(f"space out of range for a C int: {space}")
    try:
        return _scheme_bucket(scheme, seed, salt, suffix, space, is_str, bk)
    except OverflowError:
        return -1


def _scheme_bucket(
    scheme: int, seed: int, salt: bytes, suffix: bytes, space: int, is_str: bool, bk: bytes
) -> int:
    if scheme == L.SCHEME_MURMUR3:
        return _murmur3(salt + bk + suffix, seed) % space
    if scheme == L.SCHEME_FLAGD_V2:
        return (_murmur3(salt + bk + suffix, seed) * space) >> 32
    if scheme == L.SCHEME_FLAGD_V3:
        if salt or suffix:
            text = salt + bk + suffix
            data = _cbor_head(3, len(text)) + text
        else:
            data = _cbor_scalar(is_str, bk)
        return (_murmur3(data, seed) * space) >> 32
    if scheme == L.SCHEME_FLAGD_V3_CBOR:
        data = bytes.fromhex(bk.decode()) if is_str and _HEX.fullmatch(bk) else b""
        if not data:
            return -1  # not the hex text of an encoding: no value to hash
        return (_murmur3(data, seed) * space) >> 32
    if scheme == L.SCHEME_FLAGD_V3_PAIR:
        data = b"\x82" + _cbor_head(3, len(salt)) + salt + _cbor_scalar(is_str, bk)
        return (_murmur3(data, seed) * space) >> 32
    if scheme == L.SCHEME_GROWTHBOOK_V1:
        return _fnv1a32_utf16(salt + bk + suffix) % space
    if scheme == L.SCHEME_GROWTHBOOK_V2:
        inner = _fnv1a32_utf16(salt + bk + suffix)
        return _fnv1a32_utf16(str(inner).encode()) % space
    return -1  # pragma: no cover - the compiler writes known schemes only


def _in_sorted(pool: list[int], start: int, count: int, x: int) -> bool:
    """Whether ``x`` is among ``pool[start : start + count]``, a sorted run of ids (as the
    compiler writes every ``in``/``not_in``/``has_any`` list): a binary search, as the
    compiled evaluator's, not a copy and scan of the run (a 200,000-id list was 2.2 ms a
    check here, 128 ns compiled)."""
    i = bisect_left(pool, x, start, start + count)
    return i < start + count and pool[i] == x


def bucket_of(salt: str, value: str) -> int:
    """The bucket (0..99999) of ``value`` for a flag salted with ``salt``; both exact
    str (TypeError otherwise, a str subclass such as a StrEnum member included, as the
    compiled one's typed arguments refuse it: formatted here, a subclass's own
    ``__str__`` chose the text hashed)."""
    if type(salt) is not str or type(value) is not str:
        bad = salt if type(salt) is not str else value
        raise TypeError(f"salt and value must be str, not {type(bad).__name__}")
    return _murmur3(f"{salt}:{value}".encode()) % L.BUCKETS


# -- the MessagePack duplicate-key scan -----------------------------------------------
# (compiled: _eval_scan.pxi). msgspec keeps the last of two equal keys in a map without
# a word; flag documents that repeat one are refused (cfgcore.snapshot), as YAML and
# JSON ones are. A key is compared as the value msgspec decodes it to: a token whose
# equality is Python's (("n", 1), ("n", 1.0) and ("n", True) are one key).

MP_SCAN_DEPTH = 1000  # open containers followed; deeper bytes are not walked (-1)

# str, bin and ext heads: (width of the length, kind); ext adds a type byte
_MP_LENGTH = {0xC4: (1, "b"), 0xC5: (2, "b"), 0xC6: (4, "b"), 0xC7: (1, "x"), 0xC8: (2, "x"),
              0xC9: (4, "x"), 0xD9: (1, "s"), 0xDA: (2, "s"), 0xDB: (4, "s")}  # fmt: skip
_MP_NUMBER = {0xCA: ">f", 0xCB: ">d", 0xCC: ">B", 0xCD: ">H", 0xCE: ">I", 0xCF: ">Q",
              0xD0: ">b", 0xD1: ">h", 0xD2: ">i", 0xD3: ">q"}  # fmt: skip


def msgpack_duplicate_at(data: Any) -> int:
    """The byte offset of the first map key in MessagePack ``data`` (bytes-like) that
    repeats a key before it in the same map, in document order; -1 when no key repeats,
    or when ``data`` is not one whole MessagePack value (the decoder names what is
    wrong), or nests more than 1,000 containers deep.

    Keys repeat when they decode to equal Python keys: text by its UTF-8 bytes whatever
    the str header's width (fixstr, str 8, 16 and 32 spell one text four ways), bytes by
    their bytes, numbers by value (``1``, ``1.0`` and ``True`` are one key, a NaN is
    none), nil; an array or extension key by its encoded bytes.

    >>> msgpack_duplicate_at(bytes.fromhex("82a161 01 d90161 02"))
    4
    """
    return msgpack_scan(data)[0]


def msgpack_scan(data: Any) -> tuple[int, int]:
    """(:func:`msgpack_duplicate_at`'s answer, the number of items in ``data``): every
    container, map key, value and array element counts one (what decoding it makes
    objects of), or -1 where ``data`` is not one whole MessagePack value the scan
    follows. One pass: a reader bounds what a document may make it build before
    decoding it.

    >>> msgpack_scan(bytes.fromhex("82a161 01 d90161 02"))
    (4, 5)
    """
    found, walked = _mp_walk(data)
    return (-1 if found is None else found[0]), walked


MP_SPAN_DEPTH = 256  # spans are given for documents nested at most this deep


def msgpack_spans(data: Any) -> tuple[int, int, Spans | None]:
    """:func:`msgpack_scan`'s two answers and the spans of a flag document's members,
    found in the same pass: ``(duplicate, items, spans)``.

    The spans are given where ``data`` is one map, with no repeated key, that the scan
    follows to its end and that nests at most 256 containers deep, and whose "flags"
    and "segments" members (where it has them) are maps; else None. They are
    ``(others, flags, segments)``: for each member, in document order, four byte
    offsets in an ``array('q')`` (key start, key end, value start, value end), of the
    top-level map's members but "flags" and "segments" (keys of any type), and of the
    members of its "flags" and "segments" maps (None where it has no such member; the
    two are str keys, of any header width).

    >>> msgpack_spans(bytes.fromhex("82a5666c616773 81a161 c0 a161 01"))
    (-1, 7, (array('q', [11, 13, 13, 14]), array('q', [8, 10, 10, 11]), None))
    """
    duplicate, walked = msgpack_scan(data)
    buf = _byte_buffer(data)
    if duplicate >= 0 or walked < 0 or _mp_head(buf, 0)[2] != "map":
        return duplicate, walked, None
    if _mp_depth(buf) > MP_SPAN_DEPTH:
        return duplicate, walked, None
    others: array[int] = array("q")
    sections: dict[bytes, array[int]] = {}  # "flags" and "segments" by their text
    for key_start, value_start, end in _mp_members(buf, 0):
        payload, _, kind, _ = _mp_head(buf, key_start)
        name = bytes(buf[payload:value_start]) if kind == "str" else b""
        if name not in (b"flags", b"segments"):
            others.extend((key_start, value_start, value_start, end))
            continue
        if _mp_head(buf, value_start)[2] != "map":
            return duplicate, walked, None  # (the decoder names what is wrong)
        members = sections[name] = array("q")
        for inner in _mp_members(buf, value_start):
            members.extend((inner[0], inner[1], inner[1], inner[2]))
    return duplicate, walked, (others, sections.get(b"flags"), sections.get(b"segments"))


#: msgpack_spans' spans: others, flags, segments.
Spans = tuple["array[int]", "array[int] | None", "array[int] | None"]


def _mp_head(buf: Any, pos: int) -> tuple[int, int, str, int]:
    """The head of the item at ``pos`` of a whole value: (where its payload starts, how
    many bytes the payload takes, its kind: "str", "map", "array" or "other", the
    items a container holds: a map's keys and values both count)."""
    b = buf[pos]
    if b <= 0x7F or b >= 0xE0 or 0xC0 <= b <= 0xC3:
        return pos + 1, 0, "other", 0
    if b <= 0x8F:
        return pos + 1, 0, "map", 2 * (b & 0x0F)
    if b <= 0x9F:
        return pos + 1, 0, "array", b & 0x0F
    if b <= 0xBF:
        return pos + 1, b & 0x1F, "str", 0
    if b in _MP_LENGTH:
        width, kind = _MP_LENGTH[b]
        size = int.from_bytes(buf[pos + 1 : pos + 1 + width], "big")
        at = pos + 1 + width + (kind == "x")
        return at, size, "str" if kind == "s" else "other", 0
    if b in _MP_NUMBER:
        return pos + 1, struct.calcsize(_MP_NUMBER[b]), "other", 0
    if b <= 0xD8:  # fixext: a type byte, then the data
        return pos + 1, 1 + (1 << (b - 0xD4)), "other", 0
    width = 2 if b in (0xDC, 0xDE) else 4
    count = int.from_bytes(buf[pos + 1 : pos + 1 + width], "big")
    if b >= 0xDE:
        return pos + 1 + width, 0, "map", 2 * count
    return pos + 1 + width, 0, "array", count


def _mp_end(buf: Any, pos: int) -> int:
    """Where the whole value at ``pos`` ends."""
    left = 1  # items still to skip
    while left:
        at, size, _, items = _mp_head(buf, pos)
        pos = at + size
        left += items - 1
    return pos


def _mp_members(buf: Any, pos: int) -> list[tuple[int, int, int]]:
    """(key start, value start, value end) of each member of the map at ``pos``."""
    at, _, _, items = _mp_head(buf, pos)
    members = []
    for _ in range(items // 2):
        value = _mp_end(buf, at)
        end = _mp_end(buf, value)
        members.append((at, value, end))
        at = end
    return members


def _mp_depth(buf: Any) -> int:
    """How many containers holding an item the whole value in ``buf`` nests, at most."""
    open_: list[int] = []  # items left in each open container
    pos = deepest = 0
    while True:
        pos, size, _, items = _mp_head(buf, pos)
        pos += size
        if open_:
            open_[-1] -= 1
        if items:
            open_.append(items)
            deepest = max(deepest, len(open_))
        while open_ and open_[-1] == 0:
            open_.pop()
        if not open_:
            return deepest


def msgpack_duplicate(data: Any) -> tuple[int, int, str] | None:
    """:func:`msgpack_duplicate_at`'s key, with the offset of the key it repeats and its
    key path (``flags.f.variants.on``), for the error that names it; None where that
    answers -1."""
    return _mp_walk(data)[0]


def _mp_walk(data: Any) -> tuple[tuple[int, int, str] | None, int]:
    """(:func:`msgpack_duplicate`, the items of a whole value or -1): one pass."""
    if data is None or isinstance(data, str):  # as the compiled one's typed buffer
        raise TypeError(f"a bytes-like object is required, not {type(data).__name__!r}")
    buf = _byte_buffer(data)
    n = len(buf)
    # open containers: [start, items left, items in all, seen keys (maps), current key]
    stack: list[list[Any]] = []
    found: tuple[int, int, str] | None = None
    pos = walked = 0
    while True:
        if pos >= n:
            return None, -1  # truncated
        start = pos
        b = buf[pos]
        pos += 1
        walked += 1
        token: Any = None  # the key this item is, as a dict key
        items = -1  # a container's items (a map's keys and values both count)
        if b <= 0x7F:
            token = ("n", b)
        elif b >= 0xE0:
            token = ("n", b - 256)
        elif b <= 0x9F:
            items = (b & 0x0F) * (2 if b <= 0x8F else 1)
        elif b <= 0xBF:
            size = b & 0x1F
            if size > n - pos:
                return None, -1
            token = ("s", buf[pos : pos + size])
            pos += size
        elif b == 0xC0:
            token = ("z", None)
        elif b == 0xC1:
            return None, -1  # never used: not MessagePack
        elif b <= 0xC3:
            token = ("n", b == 0xC3)
        elif b in _MP_LENGTH:
            width, kind = _MP_LENGTH[b]
            if n - pos < width:
                return None, -1
            size = int.from_bytes(buf[pos : pos + width], "big")
            pos += width + (kind == "x")
            if pos > n or size > n - pos:
                return None, -1
            pos += size
            token = ("r", buf[start:pos]) if kind == "x" else (kind, buf[pos - size : pos])
        elif b in _MP_NUMBER:
            fmt = _MP_NUMBER[b]
            width = struct.calcsize(fmt)
            if n - pos < width:
                return None, -1
            (number,) = struct.unpack(fmt, buf[pos : pos + width])
            pos += width
            token = ("n", number) if number == number else None  # a NaN equals no key
        elif b <= 0xD8:  # fixext 1, 2, 4, 8, 16: a type byte, then the data
            size = 1 + (1 << (b - 0xD4))
            if size > n - pos:
                return None, -1
            pos += size
            token = ("r", buf[start:pos])
        else:  # 0xDC..0xDF: array 16/32, map 16/32
            width = 2 if b in (0xDC, 0xDE) else 4
            if n - pos < width:
                return None, -1
            count = int.from_bytes(buf[pos : pos + width], "big")
            pos += width
            if count > n - pos:
                return None, -1  # every item takes a byte at least
            items = count * (2 if b >= 0xDE else 1)
        if items >= 0:
            if items > n - pos:
                return None, -1
            if items:
                if len(stack) >= MP_SCAN_DEPTH:
                    return None, -1  # deeper than the scan follows
                is_map = b <= 0x8F or b >= 0xDE
                stack.append([start, items, items, {} if is_map else None, None])
                continue
            token = ("r", buf[start:pos])
        # an item is complete: buf[start:pos]. Step the containers it completes.
        while stack:
            top = stack[-1]
            seen = top[3]
            if seen is not None and top[1] % 2 == 0:  # the item was a key
                top[4] = token
                if token is not None:
                    first = seen.get(token)
                    if first is None:
                        seen[token] = start
                    elif found is None or start < found[0]:
                        found = (start, first, _mp_key_path(stack))
            top[1] -= 1
            if top[1] > 0:
                break
            stack.pop()  # the container is complete: it is the item now
            start = top[0]
            token = ("r", buf[start:pos])
        if not stack:
            # bytes after the value: not one document
            return (found, walked) if pos == n else (None, -1)


def _mp_key_path(stack: list[list[Any]]) -> str:
    """The key path of the key just read in the innermost map of ``stack``."""
    path = ""
    for i, (_start, left, total, seen, token) in enumerate(stack):
        if seen is None:
            path += f"[{total - left}]"
            continue
        inner = i == len(stack) - 1
        # the key being read (the innermost map's), or the one whose value holds the rest
        name = _mp_key_text(token) if inner or left % 2 else "(a key)"
        path = f"{path}.{name}" if path else name
    return path


def _mp_key_text(token: Any) -> str:
    if token is None:
        return "nan"
    kind, value = token
    if kind == "s":
        return bytes(value).decode("utf-8", "replace")
    if kind == "r":
        import msgspec

        try:
            return str(msgspec.msgpack.decode(value))
        except (msgspec.DecodeError, TypeError, ValueError, RecursionError):
            return value.hex()
    return repr(value) if kind == "b" else str(value)


# The JSON section split (compiled: _eval_split.pxi). A JSON flag document's flags and
# segments are decoded one at a time (cfgcore.snapshot); json_sections finds where each
# one's bytes are. It checks the JSON syntax as msgspec does (string escapes, UTF-16
# surrogate pairs, numbers, literals) and answers None for anything else, leaving the
# document to msgspec, whose errors are the ones reported.
_JS_WS = re.compile(rb"[ \t\n\r]*")
# A string: no control character unescaped; bytes from 0x80 up taken as they are.
_JS_STRING = re.compile(rb'"(?:[^"\\\x00-\x1f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*"')
_JS_ESCAPE = re.compile(rb"\\(?:u([0-9a-fA-F]{4})|.)", re.DOTALL)
_JS_SCALAR = re.compile(rb"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?|true|false|null")
_JS_SECTIONS = (b"flags", b"segments")


class _JsMalformed(Exception):
    """Not a document json_sections answers for."""


def json_sections(data: Any) -> tuple[array[int], array[int] | None, array[int] | None] | None:
    """The byte spans of a JSON flag document's members: ``(top, flags, segments)``, each
    an ``array('q')`` of (key start, key end, value start, value end) per member in
    document order, or None where ``data`` (bytes-like: UTF-8 JSON) is not one JSON
    object with whitespace around it, or names "flags" or "segments" twice. (The bytes
    of its strings are not checked to be UTF-8: a flag document is decoded first.)

    ``top`` holds the document's own members; ``flags`` and ``segments`` those of its
    "flags" and "segments" members where they are objects (None where the member is
    absent or another value; a name written with an escape is not recognised). A key span
    is the text between its quotes; a value span the bytes a ``msgspec.Raw`` of the value
    holds, first to last, without the whitespace around. The scan holds no GIL.

    >>> json_sections(b'{"flags": {"a": [1]}}')
    (array('q', [2, 7, 10, 20]), array('q', [12, 13, 16, 19]), None)
    """
    if data is None or isinstance(data, str):  # as the compiled one's typed buffer
        raise TypeError(f"a bytes-like object is required, not {type(data).__name__!r}")
    buf = _byte_buffer(data)
    top: array[int] = array("q")
    sections: dict[bytes, array[int] | None] = {}
    try:
        start = _js_ws(buf, 0)
        if buf[start : start + 1] != b"{":
            raise _JsMalformed
        if _js_ws(buf, _js_members(buf, start, top, sections)) != len(buf):
            raise _JsMalformed  # bytes after the object
    except _JsMalformed:
        return None
    return top, sections.get(b"flags"), sections.get(b"segments")


def _js_ws(buf: bytes, i: int) -> int:
    """The offset of the first byte at or after ``i`` that is no JSON whitespace."""
    return _JS_WS.match(buf, i).end()  # type: ignore[union-attr]  # (matches nothing)


def _js_string(buf: bytes, i: int) -> int:
    """``i`` at a string's opening quote: the offset just past its closing one."""
    m = _JS_STRING.match(buf, i)
    if m is None:
        raise _JsMalformed
    # A \u escape of a UTF-16 surrogate is half of a pair: the high half, then at once
    # the low one (msgspec refuses anything else; Python's json takes it).
    high_end = -1  # where the escape of a high half ends, until its low half is read
    for e in _JS_ESCAPE.finditer(buf, i + 1, m.end() - 1):
        code = int(e.group(1), 16) if e.group(1) else -1
        low = 0xDC00 <= code <= 0xDFFF
        if high_end >= 0:
            if e.start() != high_end or not low:
                raise _JsMalformed
            high_end = -1
        elif low:
            raise _JsMalformed
        elif 0xD800 <= code <= 0xDBFF:
            high_end = e.end()
    if high_end >= 0:
        raise _JsMalformed
    return m.end()


def _js_key(buf: bytes, i: int) -> int:
    """``i`` at a member's key: the offset of its value's first byte."""
    if buf[i : i + 1] != b'"':
        raise _JsMalformed
    i = _js_ws(buf, _js_string(buf, i))
    if buf[i : i + 1] != b":":
        raise _JsMalformed
    return _js_ws(buf, i + 1)


def _js_value(buf: bytes, i: int) -> int:
    """``i`` at a value's first byte: the offset just past its last byte."""
    closing: list[bytes] = []  # the closing bytes of the open containers, innermost last
    while True:
        # a value starts at i
        c = buf[i : i + 1]
        if c in (b"{", b"["):
            close = b"}" if c == b"{" else b"]"
            i = _js_ws(buf, i + 1)
            if buf[i : i + 1] == close:
                i += 1  # empty: a whole value
            else:
                closing.append(close)
                if c == b"{":
                    i = _js_key(buf, i)
                continue
        elif c == b'"':
            i = _js_string(buf, i)
        else:
            m = _JS_SCALAR.match(buf, i)
            if m is None:
                raise _JsMalformed
            i = m.end()
        # a value ended at i: close the containers it ends
        while closing:
            i = _js_ws(buf, i)
            c = buf[i : i + 1]
            if c == b",":
                i = _js_ws(buf, i + 1)
                if closing[-1] == b"}":
                    i = _js_key(buf, i)
                break
            if c != closing.pop():
                raise _JsMalformed
            i += 1
        else:
            return i


def _js_members(
    buf: bytes, i: int, out: array[int], sections: dict[bytes, array[int] | None] | None
) -> int:
    """``i`` at an object's ``{``: each member's spans appended to ``out`` (with
    ``sections``, the document's own: those of its "flags" and "segments" objects'
    members go there); the offset just past its ``}``."""
    i = _js_ws(buf, i + 1)
    if buf[i : i + 1] == b"}":
        return i + 1
    while True:
        if buf[i : i + 1] != b'"':
            raise _JsMalformed
        key_start = i + 1
        key_end = _js_string(buf, i) - 1
        i = _js_ws(buf, key_end + 1)
        if buf[i : i + 1] != b":":
            raise _JsMalformed
        value_start = _js_ws(buf, i + 1)
        name = buf[key_start:key_end]
        if sections is not None and name in _JS_SECTIONS:
            if name in sections:
                raise _JsMalformed  # written twice: not a document this split answers for
            if buf[value_start : value_start + 1] == b"{":
                members = sections[name] = array("q")
                value_end = _js_members(buf, value_start, members, None)
            else:
                sections[name] = None
                value_end = _js_value(buf, value_start)
        else:
            value_end = _js_value(buf, value_start)
        out.extend((key_start, key_end, value_start, value_end))
        i = _js_ws(buf, value_end)
        c = buf[i : i + 1]
        if c == b",":
            i = _js_ws(buf, i + 1)
        elif c == b"}":
            return i + 1
        else:
            raise _JsMalformed


def _bind_value(t: C.Tables, slot: int, v: Any) -> tuple:
    """(kind, id, ci_id, number, utf8, folded utf8, bucket utf8, semver key, str,
    elements): elements is None but for an array in a ``has_any`` slot (_bind_array)."""
    if v is None:
        return _MISSING_BINDING
    if t.array_slots[slot]:
        items = exact_array(v)
        if items is not None:
            return _bind_array(t, slot, items) if len(items) <= L.MAX_ARRAY else _OTHER_BINDING
    return _bind_scalar(t, slot, v)


def _bind_array(t: C.Tables, slot: int, items: Any) -> tuple:
    """An array: unusable to every operator but ``has_any`` and ``exists``; its elements
    bound one by one as scalars (an element that fails to bind, or is itself an array,
    matches nothing), kept as (ids, case-folded ids).

    The elements are read from a copy taken first, as the compiled evaluator reads them:
    binding an element may run code of the caller's (a ``Fraction`` whose denominator
    compares by its own ``__eq__``), which may change the list or set itself; read
    live, a list grew an element the compiled one never saw, and a set that changed
    size made the whole value unusable."""
    ids: set[int] = set()
    ci_ids: set[int] = set()
    for e in tuple(items):
        if e is None:
            continue
        try:
            b = _bind_scalar(t, slot, e, False)
        except Exception:
            continue
        if b[1] >= 0:
            ids.add(b[1])
        if b[2] >= 0:
            ci_ids.add(b[2])
    return (L.K_OTHER, -1, -1, 0.0, b"", b"", None, None, None, (ids, ci_ids))


def _bind_scalar(t: C.Tables, slot: int, v: Any, whole: bool = True) -> tuple:
    """_bind_value of a value that is not None, read as a scalar. ``whole``: the
    attribute's value itself, not an element of an array (only a whole value is ever
    hashed, so only it gets an int's bucket text)."""
    tv = type(v)
    if tv is not str and tv is not int and tv is not float and tv is not bool:
        v = context_value(v)  # by the value it holds (may raise: unusable)
        tv = type(v)
    if tv is bool:
        return (L.K_BOOL, t.bool_ids.get(v, -1), -1, 0.0, b"", b"", None, None, None, None)
    # By the exact type, not isinstance(): an object faking its __class__ (a str, int
    # or float in isinstance's eyes only) is unusable, as the compiled evaluator reads
    # it, and its own methods (__hash__, __eq__, encode, __float__) are never called.
    if tv is str:
        try:
            raw = v.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates: not a usable string
            return _OTHER_BINDING
        ci_id, folded = -1, b""
        if t.ci_slots[slot]:
            f = v.casefold()
            ci_id = t.ci_ids.get(f, -1)
            folded = f.encode("utf-8")
        sv = C.semver_key(v) if t.semver_slots[slot] else None
        return (L.K_STR, t.str_ids.get(v, -1), ci_id, 0.0, raw, folded, raw, sv, v, None)
    if tv is int:
        # An int's bucket text (its decimal digits) only where some flag or rule buckets
        # by this attribute, and never for an array's element, as the compiled evaluator
        # makes it: the text of an int past a double costs time superlinear in its size
        # (3.8 s for 3.5 million digits), so a huge int in an attribute only compared, or
        # 20,000 4,000-digit ints in a has_any array, took seconds a check here.
        bucket = whole and t.bucket_slots[slot]
        try:
            num = float(v)
        except OverflowError:
            # Past a double: no number to compare, but it buckets as its decimal text
            # does (an int id and its text are one user), up to ID_FORM_CHARS
            # characters: a longer int is no id (details.bucketable_id).
            text = int_text(v).encode() if bucket and int_id_sized(v) else None
            return (L.K_OTHER, -1, -1, 0.0, b"", b"", text, None, None, None)
        # Look the int itself up: 5 finds the constant 5.0, but 2**53 + 1 does not
        # find 2.0**53 (exact equality, as Python compares them).
        text = str(v).encode() if bucket else None
        return (L.K_NUM, t.num_ids.get(v, -1), -1, num, b"", b"", text, None, None, None)
    if tv is float:
        if math.isnan(v):
            return _OTHER_BINDING
        return (L.K_NUM, t.num_ids.get(v, -1), -1, v, b"", b"", None, None, None, None)
    return _OTHER_BINDING


def _read_and_bind(t: C.Tables, attrs: Any, s: int) -> tuple:
    """Read attribute slot ``s`` from the mapping ``attrs`` and bind it."""
    try:
        v = attrs.get(t.slots[s])
    except Exception:  # a hostile mapping must not break evaluation
        return _MISSING_BINDING
    if v is None:
        return _MISSING_BINDING
    try:
        return _bind_value(t, s, v)
    except Exception:  # e.g. a str subclass whose casefold() or __hash__ fails
        return _OTHER_BINDING


def _bind(t: C.Tables, attrs: Any, slots: Any, mapping: bool | None = None) -> list:
    """Bind ``slots`` of ``attrs`` (all missing unless it is a mapping). ``mapping``:
    whether it is one, when the caller has asked already: each call asks once, as the
    compiled evaluator does (isinstance() reads ``__class__``, which may be a property
    that answers otherwise the next time)."""
    binding: list = [_MISSING_BINDING] * len(t.slots)
    if not (_is_mapping(attrs) if mapping is None else mapping):
        return binding
    for s in slots:
        binding[s] = _read_and_bind(t, attrs, s)
    return binding


@final
@_final
class Context:
    """Attributes of one request, bound to a snapshot's slots once and reused.

    Create it with ``engine.context({...})`` once per request; if the engine swaps
    snapshots meanwhile, the context re-binds itself to the new one on first use.
    Each attribute is read from ``attrs`` and bound on the first check that needs it
    (as the compiled Context does): a dict is copied, so later changes to it are not
    seen; another mapping is read as it is when each attribute is first needed.
    """

    __slots__ = ("attrs", "_bound")

    def __new__(cls, *args: Any, **kwargs: Any) -> Context:
        # Made without __init__ (Context.__new__(Context): an object pool, copy
        # machinery), it is what the compiled Context is then: attributes
        # None (read as none: every attribute missing) and no binding, so a check
        # answers instead of raising AttributeError on an unset slot.
        self = super().__new__(cls)
        self.attrs = None
        self._bound = None
        return self

    def __init__(self, attrs: Mapping[str, Any] | None = None) -> None:
        # As the compiled Context (its _context_attrs): a copy of an exact dict (of a
        # Context's own attributes), any other mapping itself, read through its get()
        # as a check with it would; a dict whose copy raises itself too; {} otherwise.
        if type(attrs) is Context:
            attrs = attrs.attrs
        if type(attrs) is dict:
            try:
                attrs = attrs.copy()
            except Exception:  # colliding keys with a raising __eq__: read it as is
                pass
        elif not _is_mapping(attrs):
            attrs = {}
        self.attrs: Any = attrs
        self._bound: tuple[Any, list] | None = None

    def _binding_for(self, snap: CompiledSnapshot, slots: Any = None) -> list:
        """The binding to ``snap`` with ``slots`` (every slot when None) bound; a slot
        not needed yet is None."""
        bound = self._bound
        if bound is None or bound[0] is not snap:
            bound = (snap, [None] * len(snap.tables.slots))
            self._bound = bound  # one assignment: another thread sees old or new
        # Read once, after the binding is taken (as the compiled Context reads them): a
        # context re-initialised meanwhile (by a mapping's get(), another thread)
        # answers this check from the attributes it started with, never from a mix of
        # the two, and its next check from the new ones (__init__ drops the binding).
        attrs = self.attrs
        binding = bound[1]
        for s in range(len(binding)) if slots is None else slots:
            if binding[s] is None:
                b = _read_and_bind(snap.tables, attrs, s)
                if binding[s] is None:  # the first writer wins (get() may switch threads)
                    binding[s] = b
        return binding

    # A read-only mapping of the attributes, so code that reads ctx["user_id"] works on
    # a bound context as on the dict it came from.
    def __getitem__(self, key: str) -> Any:
        return self.attrs[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.attrs.get(key, default)

    def __contains__(self, key: object) -> bool:
        return key in self.attrs

    def __iter__(self) -> Any:
        return iter(self.attrs)

    def __len__(self) -> int:
        return len(self.attrs)

    def keys(self) -> Any:
        return self.attrs.keys()

    def items(self) -> Any:
        return self.attrs.items()

    def values(self) -> Any:
        return self.attrs.values()

    def __repr__(self) -> str:
        return f"Context({self.attrs!r})"

    # Copied or pickled as the attributes it reads, unbound (as the compiled Context):
    # its binding belongs to one snapshot, which a copy must not carry along.
    def __reduce__(self) -> tuple[Any, tuple[Any]]:
        return Context, (self.attrs,)


Mapping.register(Context)

ContextArg = Context | Mapping[str, Any] | None
"""What evaluation methods take as ``ctx``: a bound :class:`Context` (fastest), any
mapping of attribute names to values, or None (no attributes)."""


def _is_mapping(obj: Any) -> bool:
    try:
        return isinstance(obj, Mapping)
    except Exception:  # an object faking its __class__
        return False


COUNTERS_NOT_PICKLED = (
    "cfgcore evaluation counters cannot be pickled or copied: they are this process's "
    "live tallies; pickle the counts instead (counters.take(), or the engine's "
    "take_evaluation_counts())"
)


@final
@_final
class Counters:
    """Evaluation counts of one compiled snapshot (the compiled ``Counters``' twin).

    ``cells[variant * N_REASONS + reason]`` counts the top-level evaluations that served
    a (global) variant for a reason, ``errors[code]`` the calls per error code.
    """

    __slots__ = ("cells", "errors", "_keys", "_names", "_var_flag", "version")

    def __reduce__(self) -> Any:
        # This process's live tallies, not a value: refused, as the compiled Counters
        # refuses it (a copy would count and harvest nothing).
        raise TypeError(COUNTERS_NOT_PICKLED)

    def __init__(self, tables: C.Tables) -> None:
        n_vars = len(tables.variant_names)
        self.cells = [0] * (n_vars * _NR)
        self.errors = [0] * L.N_ERRORS
        self._keys = tuple(tables.keys)
        self._names = tuple(tables.variant_names)
        self._var_flag = [-1] * n_vars  # the flag owning each global variant
        f = tables.flags
        for fi in range(len(tables.keys)):
            base = f[fi * L.FW + L.F_VAR_BASE]
            for v in range(base, base + f[fi * L.FW + L.F_VAR_COUNT]):
                self._var_flag[v] = fi
        self.version = 0

    def take(self) -> tuple[dict[tuple[str, str, str], int], dict[str, int]]:
        """Read and reset every counter: ``({(flag, variant, reason): n}, {code: n})``."""
        cells, errs = self.cells, self.errors
        found = [(i, n) for i, n in enumerate(cells) if n]
        evaluations = {}
        for i, n in found:
            cells[i] -= n  # not `= 0`: an increment made meanwhile is kept for next time
            var, reason = divmod(i, _NR)
            evaluations[(self._keys[self._var_flag[var]], self._names[var], REASONS[reason])] = n
        errors = {}
        for code, n in enumerate(list(errs)):
            if n:
                errs[code] -= n
                errors[ERROR_CODES[code]] = n
        return evaluations, errors


Steps = Generator[Any, Any, Any]
"""One evaluation written as steps: it yields another evaluation's steps when it needs
that result, and is sent the result back (see :func:`_run_steps`)."""


def _run_steps(steps: Steps) -> Any:
    """Run ``steps`` to its result, and every evaluation it yields on the way.

    Prerequisites and conditions nest: a flag's prerequisite is a flag, a condition's
    child a condition, and a ``prerequisite`` condition a flag again (32 flags deep, each
    with conditions 32 levels deep). Written as calls, each level would be a Python
    frame: a check made near the recursion limit (from a deeply recursive caller) raised
    RecursionError where the compiled evaluator, whose levels are C calls, answered. The
    levels wait here on a list instead, so a check takes the same few frames at any
    depth; each level keeps the shape of the recursive code it replaces."""
    waiting: list[Steps] = []
    result = None
    while True:
        try:
            inner = steps.send(result)
        except StopIteration as done:
            if not waiting:
                return done.value
            steps = waiting.pop()
            result = done.value
        else:
            waiting.append(steps)
            steps, result = inner, None


@final
@_final
class CompiledSnapshot:
    """One compiled, immutable flag set with the evaluation API.

    ``engine.snapshot()`` returns one of these to pin a version for a whole request.
    """

    def __init__(self, tables: C.Tables, version: int = 0, clock: Any = None) -> None:
        self.tables = tables
        self.version = version
        self.clock = clock
        self._flags = tables.flags
        self._index = tables.index
        self.counters = Counters(tables)
        self.counting = True
        self._ac_consts: dict[int, tuple[bytes, ...]] = {}  # automaton offset -> needles

    @property
    def keys(self) -> list[str]:
        return list(self.tables.keys)

    def __len__(self) -> int:
        return len(self.tables.keys)

    def __contains__(self, key: object) -> bool:
        return self._lookup(key) >= 0

    def __reduce__(self) -> tuple[Any, tuple[Any, int, Any]]:
        # Pickled (and copied) as its tables, version and clock, as the compiled
        # snapshot is: the copy answers exactly as this one does; its evaluation
        # counters start at zero (not the counts of this one, which its engine reads).
        return (CompiledSnapshot, (self.tables, self.version, self.clock))

    # -- binding -----------------------------------------------------------------------
    def _flag_slots(self, fi: int) -> list[int]:
        """The slots flag ``fi`` reads (its prerequisites' included)."""
        t = self.tables
        start = t.flags[fi * L.FW + L.F_SLOTS_START]
        return t.ipool[start : start + t.flags[fi * L.FW + L.F_SLOTS_COUNT]]

    def _binding(self, ctx: Any, fi: int) -> list:
        if issubclass(type(ctx), Context):
            if fi < 0:
                return ctx._binding_for(self, None)
            slots = self._flag_slots(fi)
            if not slots:
                # The flag (and its prerequisites) reads no attribute: no binding is
                # made, so the context keeps the one it holds (as the compiled Context
                # does), and a mapping it reads is not read again for it.
                return [_MISSING_BINDING] * len(self.tables.slots)
            return ctx._binding_for(self, slots)
        mapping = ctx is not None and _is_mapping(ctx)  # asked once (see _bind)
        if ctx is not None and not mapping:
            self._error(L.ERR_INVALID_CONTEXT)  # not a context: evaluated with no attributes
        t = self.tables
        return _bind(t, ctx, range(len(t.slots)) if fi < 0 else self._flag_slots(fi), mapping)

    def _lookup(self, key: Any) -> int:
        # Only strings name flags; a str subclass by its exact value (its __hash__ and
        # __eq__ are never called), anything else is not found.
        if type(key) is not str:
            if not issubclass(type(key), str):  # type(): a faked __class__ is not consulted
                return -1
            try:
                key = str.__str__(key)
            except Exception:
                return -1
        return self._index.get(key, -1)

    # -- evaluation --------------------------------------------------------------------
    def _now(self) -> float:
        clock = self.clock
        if clock is None:
            return time.time()
        try:
            return epoch_seconds(clock())
        except Exception:
            self._error(L.ERR_GENERAL)
            return math.nan  # a broken clock: schedules treat the flag as out of window

    # -- counting ----------------------------------------------------------------------
    def _count(self, var: int, reason: int) -> None:
        if self.counting:
            self.counters.cells[var * _NR + reason] += 1

    def _error(self, code: int) -> None:
        if self.counting:
            self.counters.errors[code] += 1

    def _mismatch(self, var: int) -> None:
        # TYPE_MISMATCH: the flag served ``var``, the caller got its default
        self._count(var, L.REASON_ERROR)
        self._error(L.ERR_TYPE_MISMATCH)

    def _eval_flag(self, fi: int, b: list, now: list) -> tuple[int, int, int]:
        """(variant, reason, rule index or -1) of flag ``fi`` for binding ``b``."""
        return _run_steps(self._flag_steps(fi, b, now))

    def _wanted(self, got: int, want: int) -> bool:
        """Whether served variant ``got`` is what a prerequisite's want code asks."""
        t = self.tables
        if want >= 0:
            return got == want
        if want == L.P_ON:
            return bool(t.is_true[got])
        if want == L.P_OFF:
            return not t.is_true[got]
        k = L.P_SET - want  # P_SET - k: one of a counted list of variants in the pool
        return got in t.ipool[k + 1 : k + 1 + t.ipool[k]]

    def _flag_steps(self, fi: int, b: list, now: list) -> Steps:
        """Flag ``fi``'s evaluation as steps (see :func:`_run_steps`): each prerequisite
        flag and each condition that needs more than a test of one attribute is yielded
        as its own steps, and this resumes with its result."""
        t = self.tables
        f = t.flags
        base = fi * L.FW
        if not f[base + L.F_ENABLED]:
            return f[base + L.F_OFF], _DISABLED, -1
        if f[base + L.F_SCHED]:
            if now[0] is None:
                now[0] = self._now()
            if not (t.sched_start[fi] <= now[0] < t.sched_end[fi]):
                return f[base + L.F_OFF], _DISABLED, -1
        pstart = f[base + L.F_PRE_START]
        for p in range(pstart, pstart + f[base + L.F_PRE_COUNT]):
            target, want = t.prereqs[p * L.PW], t.prereqs[p * L.PW + 1]
            got = (yield self._flag_steps(target, b, now))[0]
            if not self._wanted(got, want):
                return f[base + L.F_OFF], _PREREQ, -1
        rstart = f[base + L.F_RULE_START]
        rcount = f[base + L.F_RULE_COUNT]
        # Buckets hashed by this evaluation, by what they hash: rules of one flag mostly
        # hash the same text (the flag's salt and bucketing attribute; an imported
        # rollout's group id), and each hash walks the whole value: 1,000 rollout rules
        # over a 100 KB user_id took 22 s a check here. The compiled evaluator hashes
        # per rule in C (37 ms there).
        hashed: dict[Any, int] = {}
        for r in range(rcount):
            rb = (rstart + r) * L.RW
            rr = t.rules
            cond = rr[rb + L.R_COND]
            if cond >= 0:
                if t.nodes[cond * L.NW] > L.OP_FLAG:  # one attribute's test
                    if not self._test(cond, b):
                        continue
                elif not (yield self._node_steps(cond, b, now)):
                    continue
            thr = rr[rb + L.R_ROLLOUT]
            nsplit = rr[rb + L.R_SPLIT_COUNT]
            gcount = rr[rb + L.R_GATE_COUNT]
            if gcount:
                g0 = rr[rb + L.R_GATE_START]
                if not all(self._in_gate(g, b, hashed) for g in range(g0, g0 + gcount)):
                    continue  # outside a gate (or nothing to hash): the rule cannot apply
            h = rr[rb + L.R_HASH]
            if h >= 0:
                bucket = self._hashed(h, b, hashed)
                if bucket < 0:
                    continue
                sp = rr[rb + L.R_SPLIT_START]
                for j in range(sp, sp + nsplit):
                    if bucket < t.splits[j * 2]:
                        var = t.splits[j * 2 + 1]
                        if var < 0:
                            break  # a gap: fall through to the next rule
                        return var, _SPLIT, r
                continue
            if thr < 0 and nsplit == 0:
                return rr[rb + L.R_SERVE], (_SPLIT if gcount else _MATCH), r
            if rr[rb + L.R_BUCKET_COUNT]:
                bstart, bcount = rr[rb + L.R_BUCKET_START], rr[rb + L.R_BUCKET_COUNT]
            else:
                bstart, bcount = f[base + L.F_BUCKET_START], f[base + L.F_BUCKET_COUNT]
            bucket = hashed.get((bstart, bcount), -2)
            if bucket == -2:
                bucket = hashed[(bstart, bcount)] = self._bucket(base, b, bstart, bcount)
            if bucket < 0:
                continue  # no attribute to bucket by: the rule cannot apply
            if nsplit == 0:
                if bucket < thr:
                    return rr[rb + L.R_SERVE], _SPLIT, r
                continue
            sp = rr[rb + L.R_SPLIT_START]
            for j in range(sp, sp + nsplit):
                if bucket < t.splits[j * 2]:
                    return t.splits[j * 2 + 1], _SPLIT, r
            continue  # pragma: no cover - the last threshold is always BUCKETS
        return f[base + L.F_DEFAULT], (_STATIC if rcount == 0 else _DEFAULT), -1

    def _bucket(self, base: int, b: list, bstart: int, bcount: int) -> int:
        t = self.tables
        for s in t.ipool[bstart : bstart + bcount]:
            raw = b[s][6]
            if raw is None:
                continue  # absent, or not a str/int (a float, a bool, a list): try the next
            off = t.flags[base + L.F_SALT_OFF]
            salt = bytes(t.sbytes[off : off + t.flags[base + L.F_SALT_LEN]])
            # scheme 0 (murmur3) is the only one so far: F_SCHEME selects others later
            return _murmur3(salt + raw) % L.BUCKETS
        return -1

    def _in_gate(self, g: int, b: list, memo: dict[Any, int] | None = None) -> bool:
        hs = self.tables.hashes
        bucket = self._hashed(g, b, memo)
        return hs[g * L.HW + L.H_LO] <= bucket < hs[g * L.HW + L.H_HI]

    def _hashed(self, h: int, b: list, memo: dict[Any, int] | None = None) -> int:
        """Bucket of hashing record ``h`` (an imported flag's own scheme); -1 if no value.
        ``memo``: the buckets this flag evaluation hashed, by what they hash."""
        t = self.tables
        o = h * L.HW
        hs = t.hashes
        start = hs[o + L.H_BY_START]
        for s in t.ipool[start : start + hs[o + L.H_BY_COUNT]]:
            bk = b[s][6]
            if bk is None:
                continue  # as for flags: absent, or not a str/int: try the next
            so, sl = hs[o + L.H_SALT_OFF], hs[o + L.H_SALT_LEN]
            xo, xl = hs[o + L.H_SUFFIX_OFF], hs[o + L.H_SUFFIX_LEN]
            scheme, seed, space = (
                hs[o + L.H_SCHEME],
                hs[o + L.H_SEED] & 0xFFFFFFFF,
                hs[o + L.H_SPACE],
            )
            salt, suffix = bytes(t.sbytes[so : so + sl]), bytes(t.sbytes[xo : xo + xl])
            if memo is None:
                return scheme_bucket(scheme, seed, salt, suffix, space, b[s][0] == L.K_STR, bk)
            key = (scheme, seed, salt, suffix, space, s)
            found = memo.get(key)
            if found is None:
                found = memo[key] = scheme_bucket(
                    scheme, seed, salt, suffix, space, b[s][0] == L.K_STR, bk
                )
            return found
        return -1

    def _node_steps(self, i: int, b: list, now: list) -> Steps:
        """Condition node ``i`` (a combinator, a call or a flag's answer: opcodes up to
        OP_FLAG) as steps; its children that are tests of one attribute are run here."""
        t = self.tables
        n = t.nodes
        o = i * L.NW
        op = n[o]
        if op == L.OP_ALL or op == L.OP_ANY:
            want = op == L.OP_ANY
            child = i + 1
            for _ in range(n[o + 2]):
                if n[child * L.NW] > L.OP_FLAG:
                    got = self._test(child, b)
                else:
                    got = yield self._node_steps(child, b, now)
                if got == want:
                    return want
                child = n[child * L.NW + 5]
            return not want
        if op == L.OP_NOT:
            if n[(i + 1) * L.NW] > L.OP_FLAG:
                return not self._test(i + 1, b)
            return not (yield self._node_steps(i + 1, b, now))
        if op == L.OP_CALL:
            # a shared subtree, emitted before this node (no cycle); the compiler
            # counts the call as a level of the depth limit
            return (yield self._node_steps(n[o + 2], b, now))
        if op == L.OP_FLAG:
            # another flag's answer for the same context (the compiler refused cycles)
            got = (yield self._flag_steps(n[o + 2], b, now))[0]
            return self._wanted(got, n[o + 3])
        return False  # OP_FALSE

    def _test(self, i: int, b: list) -> bool:
        """Condition node ``i``: a test of one attribute (an opcode above OP_FLAG)."""
        t = self.tables
        n = t.nodes
        o = i * L.NW
        op = n[o]
        kind, vid, ci_id, num, raw, folded, _bk, sv, text, elems = b[n[o + 1]]
        a, bb, c = n[o + 2], n[o + 3], n[o + 4]
        if op == L.OP_EXISTS:
            return kind != L.K_MISSING
        if op == L.OP_HAS_ANY or op == L.OP_HAS_ANY_CI:
            if elems is None:
                return False
            have = elems[0] if op == L.OP_HAS_ANY else elems[1]
            if len(have) * 16 < bb:  # few elements, a long list: search the list per element
                pool = t.ipool
                return any(_in_sorted(pool, a, bb, x) for x in have)
            return not have.isdisjoint(t.ipool[a : a + bb])
        if op == L.OP_EQ:
            return vid == a and vid >= 0
        if op == L.OP_NE:
            return bool(kind & bb) and vid != a
        if op == L.OP_IN:
            return vid >= 0 and _in_sorted(t.ipool, a, bb, vid)
        if op == L.OP_NOT_IN:
            return bool(kind & c) and not _in_sorted(t.ipool, a, bb, vid)
        if kind == L.K_NUM:
            x = t.nums[a] if L.OP_LT <= op <= L.OP_GE else 0.0
            if op == L.OP_LT:
                return num < x
            if op == L.OP_LE:
                return num <= x
            if op == L.OP_GT:
                return num > x
            if op == L.OP_GE:
                return num >= x
            return False
        if kind != L.K_STR:
            return False
        if op == L.OP_EQ_CI:
            return ci_id == a and ci_id >= 0
        if op == L.OP_NE_CI:
            return ci_id != a
        if op == L.OP_IN_CI:
            return ci_id >= 0 and _in_sorted(t.ipool, a, bb, ci_id)
        if op == L.OP_NOT_IN_CI:
            return not _in_sorted(t.ipool, a, bb, ci_id)
        if op == L.OP_CONTAINS_ANY or op == L.OP_CONTAINS_ANY_CI:
            # an any of contains tests: the constants its automaton holds, read back
            # once per snapshot (the compiled evaluator walks the automaton itself)
            consts = self._ac_consts.get(a)
            if consts is None:
                consts = self._ac_consts[a] = _ac_needles(t.acpool, a, bb)
            hay = raw if op == L.OP_CONTAINS_ANY else folded
            return any(c in hay for c in consts)
        if L.OP_STARTS <= op <= L.OP_CONTAINS_CI:
            needle = bytes(t.sbytes[a : a + bb])
            hay = folded if op >= L.OP_STARTS_CI else raw
            base_op = op - (L.OP_STARTS_CI - L.OP_STARTS) if op >= L.OP_STARTS_CI else op
            if base_op == L.OP_STARTS:
                return hay.startswith(needle)
            if base_op == L.OP_ENDS:
                return hay.endswith(needle)
            return needle in hay
        if op == L.OP_REGEX:
            if len(text) > C.MAX_REGEX_INPUT:
                return False
            try:
                return t.objs[a].search(text) is not None
            except Exception:
                return False
        if op in (L.OP_SEMVER_EQ, L.OP_SEMVER_LT, L.OP_SEMVER_GT):
            if sv is None:
                return False
            key = t.objs[a]
            if op == L.OP_SEMVER_EQ:
                return sv == key
            return sv < key if op == L.OP_SEMVER_LT else sv > key
        return False  # pragma: no cover - every opcode is handled above

    # -- public API --------------------------------------------------------------------
    def is_enabled(self, key: str, ctx: ContextArg = None) -> bool:
        """Whether the boolean flag ``key`` is on for ``ctx``.

        False when the flag is unknown, not boolean (its variants are not exactly
        true/false), off, or serves its ``off`` variant. Never raises.
        """
        fi = self._lookup(key)
        if fi < 0:
            self._error(L.ERR_FLAG_NOT_FOUND)
            return False
        var, reason, _ = self._eval_flag(fi, self._binding(ctx, fi), [None])
        if not self._flags[fi * L.FW + L.F_BOOL]:
            self._mismatch(var)
            return False
        self._count(var, reason)
        return self.tables.is_true[var]

    def variant(self, key: str, ctx: ContextArg = None) -> str | None:
        """The name of the variant ``key`` serves for ``ctx`` (e.g. ``"control"``).

        None when the flag is unknown. Never raises.
        """
        fi = self._lookup(key)
        if fi < 0:
            self._error(L.ERR_FLAG_NOT_FOUND)
            return None
        var, reason, _ = self._eval_flag(fi, self._binding(ctx, fi), [None])
        self._count(var, reason)
        return self.tables.variant_names[var]

    def value(self, key: str, ctx: ContextArg = None, default: Any = None) -> Any:
        """The value ``key`` serves for ``ctx`` (objects and arrays read-only).

        Returns ``default`` when the flag is unknown, or when ``default`` is not
        None and the served value is of another type (bool, str, number, object,
        array; a default is a number by ``cfgcore._numbers``' rule, a NumPy scalar or a
        ``Decimal`` too, and an object when it is any mapping). Never raises.
        """
        fi = self._lookup(key)
        if fi < 0:
            self._error(L.ERR_FLAG_NOT_FOUND)
            return default
        var, reason, _ = self._eval_flag(fi, self._binding(ctx, fi), [None])
        if default is not None and C.value_kind(default) != self.tables.value_kinds[var]:
            self._mismatch(var)
            return default
        self._count(var, reason)
        return self.tables.values[var]

    def evaluate(self, key: str, ctx: ContextArg = None, default: Any = None) -> EvaluationDetails:
        """Full resolution details for ``key`` and ``ctx``.

        :class:`~cfgcore.details.EvaluationDetails` with the value, the variant,
        the reason (STATIC, DEFAULT, TARGETING_MATCH, SPLIT, DISABLED,
        PREREQUISITE_FAILED or ERROR), the index of the deciding rule, and for
        ERROR the error code (FLAG_NOT_FOUND, TYPE_MISMATCH) with ``default`` as
        the value. Never raises.
        """
        fi = self._lookup(key)
        if fi < 0:
            self._error(L.ERR_FLAG_NOT_FOUND)
            return EvaluationDetails(
                flag_key=key_text(key),
                value=default,
                variant=None,
                reason=Reason.ERROR,
                error_code=ErrorCode.FLAG_NOT_FOUND,
                error_message="flag not found",
                snapshot_version=self.version,
            )
        var, reason, rule = self._eval_flag(fi, self._binding(ctx, fi), [None])
        t = self.tables
        if default is not None and C.value_kind(default) != t.value_kinds[var]:
            self._mismatch(var)
            return EvaluationDetails(
                flag_key=t.keys[fi],
                value=default,
                variant=None,
                reason=Reason.ERROR,
                error_code=ErrorCode.TYPE_MISMATCH,
                error_message="served value's type differs from the default's",
                snapshot_version=self.version,
            )
        self._count(var, reason)
        return EvaluationDetails(
            flag_key=t.keys[fi],
            value=t.values[var],
            variant=t.variant_names[var],
            reason=REASONS[reason],
            rule_index=rule if rule >= 0 else None,
            snapshot_version=self.version,
        )

    def evaluate_all(self, ctx: ContextArg = None) -> dict[str, Any]:
        """Every flag's value for ``ctx`` in one call: ``{flag_key: value}``.

        The context is bound once for all flags; one clock reading serves every
        schedule. Never raises.
        """
        b = self._binding(ctx, -1)
        now: list = [None]
        t = self.tables
        out = {}
        for i, k in enumerate(t.keys):
            var, reason, _ = self._eval_flag(i, b, now)
            self._count(var, reason)
            out[k] = t.values[var]
        return out

    # -- the observed path (hooks, exposures, debug mode) ------------------------------
    def _observe(
        self, kind: int, key: Any, ctx: ContextArg = None, default: Any = None
    ) -> tuple[Any, EvaluationDetails, int | None, str | None]:
        """One evaluation for an engine with hooks, exposure callbacks or debug mode:
        ``(answer, details, bucket, unit)``.

        ``answer`` and the counts are what ``is_enabled`` (kind 0), ``variant`` (1),
        ``value`` (2) or ``evaluate`` (3) give; ``details`` explains the answer (for
        kind 0 its value is the boolean answer); ``bucket`` and ``unit`` (the bucketed
        attribute's value as text) are set when a rollout or split decided. Never raises.
        """
        fi = self._lookup(key)
        if fi < 0:
            self._error(L.ERR_FLAG_NOT_FOUND)
            details = EvaluationDetails(
                flag_key=key_text(key),
                value=False if kind == 0 else default,
                variant=None,
                reason=Reason.ERROR,
                error_code=ErrorCode.FLAG_NOT_FOUND,
                error_message="flag not found",
                snapshot_version=self.version,
            )
            return (details.value if kind != 3 else details), details, None, None
        var, reason, rule = self._eval_flag(fi, self._binding(ctx, fi), [None])
        t = self.tables
        if kind == 0:
            mismatch = not self._flags[fi * L.FW + L.F_BOOL]
        else:
            mismatch = (
                kind != 1 and default is not None and C.value_kind(default) != t.value_kinds[var]
            )
        if mismatch:
            self._mismatch(var)
            details = EvaluationDetails(
                flag_key=t.keys[fi],
                value=False if kind == 0 else default,
                variant=None,
                reason=Reason.ERROR,
                error_code=ErrorCode.TYPE_MISMATCH,
                error_message="flag is not boolean"
                if kind == 0
                else "served value's type differs from the default's",
                snapshot_version=self.version,
            )
            return (details.value if kind != 3 else details), details, None, None
        self._count(var, reason)
        details = EvaluationDetails(
            flag_key=t.keys[fi],
            value=bool(t.is_true[var]) if kind == 0 else t.values[var],
            variant=t.variant_names[var],
            reason=REASONS[reason],
            rule_index=rule if rule >= 0 else None,
            snapshot_version=self.version,
        )
        answer = details if kind == 3 else details.variant if kind == 1 else details.value
        if reason != _SPLIT or rule < 0:
            return answer, details, None, None
        return (answer, details, *self._split_unit(fi, rule, ctx))

    def _split_unit(self, fi: int, rule: int, ctx: Any) -> tuple[int | None, str | None]:
        """(bucket, unit text) of the rollout, split or gate that decided rule ``rule``."""
        t = self.tables
        base = fi * L.FW
        rb = (t.flags[base + L.F_RULE_START] + rule) * L.RW
        rr = t.rules
        if issubclass(type(ctx), Context):
            b = ctx._binding_for(self, self._flag_slots(fi))
        else:  # not _binding: a context that is not a mapping was counted already
            b = _bind(t, ctx, range(len(t.slots)))
        h = rr[rb + L.R_HASH]
        if h < 0 and rr[rb + L.R_ROLLOUT] < 0 and rr[rb + L.R_SPLIT_COUNT] == 0:
            h = rr[rb + L.R_GATE_START]  # a rule served by its gates alone
        if h >= 0:
            start, count = t.hashes[h * L.HW + L.H_BY_START], t.hashes[h * L.HW + L.H_BY_COUNT]
            bucket = self._hashed(h, b)
        else:
            if rr[rb + L.R_BUCKET_COUNT]:
                start, count = rr[rb + L.R_BUCKET_START], rr[rb + L.R_BUCKET_COUNT]
            else:
                start, count = t.flags[base + L.F_BUCKET_START], t.flags[base + L.F_BUCKET_COUNT]
            bucket = self._bucket(base, b, start, count)
        for s in t.ipool[start : start + count]:
            raw = b[s][6]
            if raw is not None:  # the first attribute with a value to hash, as _bucket reads
                return bucket, raw.decode("utf-8")
        return bucket, None


class EngineCore:
    """Holds the live compiled snapshot; every read goes through one reference.

    ``swap()`` replaces it in one assignment, so a reader sees the old tables or the
    new ones, never a mix. The configuration layers build on :class:`cfgcore.Engine`,
    which adds loading and compiling to this core.
    """

    def __init__(self, compiled: CompiledSnapshot | None = None) -> None:
        self._clock: Any = None
        self._version = 0
        # None unless hooks, exposure callbacks or debug mode are on (cfgcore.Engine sets
        # it): the only test the evaluation methods add.
        self._observer: Any = None
        self._snap = (
            compiled if compiled is not None else CompiledSnapshot(C.compile_snapshot(_EMPTY))
        )

    @property
    def version(self) -> int:
        """Version number of the live snapshot (increments on every swap)."""
        return self._snap.version

    def snapshot(self) -> CompiledSnapshot:
        """Pin the live snapshot: evaluate a whole request against one version."""
        return self._snap

    def _install(self, compiled: CompiledSnapshot) -> CompiledSnapshot:
        if not isinstance(compiled, CompiledSnapshot):
            raise TypeError("swap() takes a CompiledSnapshot of the same implementation")
        self._version += 1
        compiled.version = self._version
        compiled.clock = self._clock
        old = self._snap
        self._snap = compiled  # the swap: one reference assignment
        # A set_clock() that ran since the clock was read above (another thread, or code
        # run by releasing compiled's previous clock) set the old snapshot's clock: the
        # live one takes the engine's clock until the two agree.
        while compiled.clock is not self._clock:
            compiled.clock = self._clock
        return old

    def set_clock(self, clock: Callable[[], float] | None) -> None:
        """Use ``clock() -> epoch seconds`` for schedules (None: the system clock)."""
        self._clock = clock
        self._snap.clock = clock

    def context(self, attrs: Mapping[str, Any] | None = None) -> Context:
        """Bind request attributes once; pass the result to every check of the request."""
        return Context(attrs)  # each attribute is bound on the first check that reads it

    def is_enabled(self, key: str, ctx: ContextArg = None) -> bool:
        """Whether the boolean flag ``key`` is on for ``ctx``.

        False when the flag is unknown, not boolean (its variants are not exactly
        true/false), off, or serves its ``off`` variant. Never raises.
        """
        if self._observer is not None:
            return self._observer.evaluate(self._snap, 0, key, ctx, None)  # type: ignore[no-any-return]
        return self._snap.is_enabled(key, ctx)

    def variant(self, key: str, ctx: ContextArg = None) -> str | None:
        """The name of the variant ``key`` serves for ``ctx`` (e.g. ``"control"``).

        None when the flag is unknown. Never raises.
        """
        if self._observer is not None:
            return self._observer.evaluate(self._snap, 1, key, ctx, None)  # type: ignore[no-any-return]
        return self._snap.variant(key, ctx)

    def value(self, key: str, ctx: ContextArg = None, default: Any = None) -> Any:
        """The value ``key`` serves for ``ctx`` (objects and arrays read-only).

        Returns ``default`` when the flag is unknown, or when ``default`` is not
        None and the served value is of another type (bool, str, number, object,
        array; a default is a number by ``cfgcore._numbers``' rule, a NumPy scalar or a
        ``Decimal`` too, and an object when it is any mapping). Never raises.
        """
        if self._observer is not None:
            return self._observer.evaluate(self._snap, 2, key, ctx, default)
        return self._snap.value(key, ctx, default)

    def evaluate(self, key: str, ctx: ContextArg = None, default: Any = None) -> EvaluationDetails:
        """Full resolution details for ``key`` and ``ctx``.

        :class:`~cfgcore.details.EvaluationDetails` with the value, the variant,
        the reason (STATIC, DEFAULT, TARGETING_MATCH, SPLIT, DISABLED,
        PREREQUISITE_FAILED or ERROR), the index of the deciding rule, and for
        ERROR the error code (FLAG_NOT_FOUND, TYPE_MISMATCH) with ``default`` as
        the value. Never raises.
        """
        if self._observer is not None:
            return self._observer.evaluate(self._snap, 3, key, ctx, default)  # type: ignore[no-any-return]
        return self._snap.evaluate(key, ctx, default)

    def evaluate_all(self, ctx: ContextArg = None) -> dict[str, Any]:
        """Every flag's value for ``ctx`` in one call: ``{flag_key: value}``.

        The context is bound once for all flags; one clock reading serves every
        schedule. Never raises.
        """
        if self._observer is not None:
            return self._observer.evaluate_all(self._snap, ctx)  # type: ignore[no-any-return]
        return self._snap.evaluate_all(ctx)


from cfgcore.snapshot import Snapshot as _Snapshot  # noqa: E402

_EMPTY = _Snapshot()


#: Ids of at most this many characters are looked up in their other form (42 / "42")
#: on a first exposure: ``details.ID_FORM_CHARS``, the longest int that is an id.
ID_FORM_CHARS = _ID_FORM_CHARS
#: The forms of ids a logger's dedup shards ever held (its bytearray ``forms``): an
#: int's canonical decimal text; an exact int (only a SeedAPI adds one).
FORM_TEXT, FORM_INT = 0, 1


def _decimal_text(uid: str) -> bool:
    """Whether ``uid`` is an int's canonical decimal text (``"42"``, ``"-7"``; not
    ``"042"``, ``"+42"``, ``"-0"``, ``" 42"``, non-ASCII digits) of at most
    ``ID_FORM_CHARS`` characters."""
    if not 0 < len(uid) <= ID_FORM_CHARS:
        return False
    digits = uid[1:] if uid[0] == "-" else uid
    return digits.isascii() and digits.isdigit() and (digits[0] != "0" or len(uid) == 1)


def _other_id_form(uid: Any) -> Any:
    """The same user's id in its other form, as the exposure log counts both as one
    user: an exact int's text; the int of an exact str that is an int's canonical
    decimal text; else None (also past ``ID_FORM_CHARS`` characters or the
    interpreter's conversion limit)."""
    if type(uid) is int:
        try:
            text = str(uid)
        except ValueError:  # past sys.get_int_max_str_digits
            return None
        return text if len(text) <= ID_FORM_CHARS else None
    if not _decimal_text(uid):
        return None
    try:
        return int(uid)
    except ValueError:  # past sys.get_int_max_str_digits
        return None


def _seen_as_other(seen: tuple[Any, ...], uid: Any, forms: bytearray) -> bool:
    """Whether ``uid`` (an exact str or int, not in its shard) is in its dedup shards
    in its other form; marks its own form in ``forms``. Looked up only when the
    shards ever held the other form: a service whose ids are all ints, or all text,
    pays a flag read, not a second probe of a large set (a likely cache miss)."""
    if type(uid) is int:
        forms[FORM_INT] = 1
        if not forms[FORM_TEXT]:
            return False
    else:
        if not _decimal_text(uid):
            return False
        forms[FORM_TEXT] = 1
        if not forms[FORM_INT]:
            return False
    other = _other_id_form(uid)
    if other is None:
        return False
    shard = seen[hash(other) & (L.DEDUP_SHARDS - 1)]
    try:
        return type(shard) is set and other in shard
    except Exception:  # a logged str subclass id whose __eq__ raised: not known
        return False


SEED_API_COPY = (
    "a SeedAPI cannot be deep-copied or pickled: it is a live engine's request path and "
    "shares its exposure log's dedup shards; copy.copy() gives another one over the same "
    "engine, tests and writers"
)


@final
@_final
class SeedAPI:
    """The seed API's per-request calls, for one engine (reference twin of the
    compiled ``SeedAPI``).

    ``DynamicConfigurationManager`` serves ``is_feature_enabled``,
    ``get_ab_test_variant`` and ``record_metric`` through one of these. ``tests`` maps
    each A/B test's name to its exposure dedup shards (a tuple of ``DEDUP_SHARDS`` sets,
    a user in the one ``hash(id) & (DEDUP_SHARDS - 1)`` picks; False: exposure logging
    off); ``expose(test, variant, ctx)`` is called when a user not in its shard is
    served a variant, or ``expose(test, variant, ctx, seen=shards, runs=runs)`` when
    its ``takes_views`` attribute is True (``ExposureLogger.expose``): the dedup shards
    of the test and the run tags of the views the request was served from. Never raises
    on bad data.

    With ``log_to(append, clock, shard_limit)`` the first exposure of a user whose id is
    an exact ``str`` or ``int`` is recorded here instead: the id joins its shard
    (cleared when it holds ``shard_limit`` users) and
    ``append((test, variant, user_id, time))`` queues the record, tagged with the
    test's run when ``runs`` (test -> run, one dict per flag document) names one:
    ``append((test, variant, user_id, time, run))``. Other ids still go to
    ``expose``. An int id and its decimal text (``42`` and ``"42"``) are one user: a
    first exposure whose id is logged in its other form is not logged again, and each
    user takes one entry in the shards (``joins_id_forms``, read by the exposure
    logger: its writer files the int's record as its text without adding the text).

    ``views`` holds what a call reads, as one tuple set in one assignment: ``(snapshot,
    tests, metas, runs, ...)``. ``snapshot`` is the compiled snapshot the three maps were
    made from, which every call evaluates on (None: the engine's live one), so a
    manager that swaps its views after the engine's swap serves one document's flags
    with that document's tests, never the new flags with the old tests; items past the
    fourth are the owner's (a manager keeps its other views of the document there).
    ``tests``, ``metas`` and ``runs`` read and set one item of it (a dict each).

    A copy (``copy.copy``) is another SeedAPI for the same engine that shares all this
    one serves with: ``tests`` and their dedup shards, ``expose``, the exposure writer
    and id forms (``log_to``), the metric writer (``metrics_to``), ``metas`` and
    ``runs``, so a user exposed through either is logged once. ``copy.deepcopy`` and
    pickling raise TypeError: a SeedAPI is a live engine's request path, and
    independent shards would log users twice.
    """

    joins_id_forms = True

    __slots__ = (
        "engine", "_views", "_exposer", "_append", "_clock", "_shard_limit", "_forms",
        "_queue", "_record", "_counted", "_event_id_text", "_untagged",
    )  # fmt: skip

    def __init__(self, engine: EngineCore, tests: dict[str, Any], expose: Callable[..., Any]):
        self.engine = engine
        if not isinstance(tests, dict):  # as the compiled one's typed argument
            raise TypeError(f"tests must be a dict, not {type(tests).__name__}")
        # (snapshot or None, tests, metas, runs, the owner's items...): see the
        # docstring. runs is {test: run tag} (a float, or None for a test never created
        # again), one dict per flag document: each record queued carries its test's.
        self._views: tuple[Any, ...] = (None, tests, {}, {})
        # (expose, whether it takes the views): one item, set in one assignment
        self._exposer: tuple[Callable[..., Any], bool] = (expose, _takes_views(expose))
        self._append: Callable[[Any], Any] | None = None
        self._clock: Callable[[], float] | None = None
        self._shard_limit = 1
        self._forms = bytearray(2)  # the id forms the shards ever held
        self._queue: Callable[[Any], Any] | None = None
        self._record: Callable[..., Any] | None = None
        self._counted: Callable[[], Any] | None = None
        self._event_id_text: Callable[[Any], str | None] | None = None
        self._untagged: Any = None

    def __copy__(self) -> SeedAPI:
        out = SeedAPI(self.engine, {}, self.expose)
        out._views, out._exposer = self._views, self._exposer
        out._append, out._clock = self._append, self._clock
        out._shard_limit, out._forms = self._shard_limit, self._forms
        out._queue, out._record, out._counted = self._queue, self._record, self._counted
        out._event_id_text, out._untagged = self._event_id_text, self._untagged
        return out

    def __deepcopy__(self, memo: Any) -> SeedAPI:
        raise TypeError(SEED_API_COPY)

    def __reduce_ex__(self, protocol: Any) -> Any:
        raise TypeError(SEED_API_COPY)

    @property
    def expose(self) -> Callable[..., Any]:
        """What a first exposure this SeedAPI does not record itself goes to (see the
        class docstring); the call's shape is read from it when it is set."""
        return self._exposer[0]

    @expose.setter
    def expose(self, value: Callable[..., Any]) -> None:
        self._exposer = (value, _takes_views(value))

    @property
    def views(self) -> tuple[Any, ...]:
        """``(snapshot, tests, metas, runs, ...)``: what every call reads (see the class
        docstring)."""
        return self._views

    @views.setter
    def views(self, value: tuple[Any, ...]) -> None:
        self._views = _checked_views(value)

    @property
    def tests(self) -> dict[str, Any]:
        """``views[1]``: each A/B test's exposure dedup shards (False: not logged)."""
        return self._views[1]  # type: ignore[no-any-return]

    @tests.setter
    def tests(self, value: dict[str, Any]) -> None:
        self._views = _checked_views(_views_with(self._views, 1, value))

    @property
    def metas(self) -> dict[str, Any]:
        """``views[2]``: the metadata of each test that records metric events."""
        return self._views[2]  # type: ignore[no-any-return]

    @metas.setter
    def metas(self, value: dict[str, Any]) -> None:
        self._views = _checked_views(_views_with(self._views, 2, value))

    @property
    def runs(self) -> dict[str, Any]:
        """``views[3]``: each test's run tag."""
        return self._views[3]  # type: ignore[no-any-return]

    @runs.setter
    def runs(self, value: dict[str, Any]) -> None:
        self._views = _checked_views(_views_with(self._views, 3, value))

    def log_to(
        self,
        append: Callable[[Any], Any] | None,
        clock: Callable[[], float] | None = None,
        shard_limit: int = 15_625,
        forms: bytearray | None = None,
    ) -> None:
        """Record first exposures here: ``append(record)`` queues one, ``clock()`` (None:
        the system clock) stamps it; ``None`` for ``append`` sends them all to ``expose``.
        ``forms`` (2 bytes, shared with the logger that owns the shards): whether they
        ever held an int's decimal text ([0]) or an int ([1]); None: a new one."""
        self._append = append
        self._clock = clock
        self._shard_limit = shard_limit if shard_limit > 0 else 1
        if forms is not None and not isinstance(forms, bytearray):  # as the compiled one
            raise TypeError(f"forms must be a bytearray or None, not {type(forms).__name__}")
        self._forms = forms if forms is not None and len(forms) >= 2 else bytearray(2)

    def metrics_to(
        self,
        queue: Callable[[Any], Any] | None,
        record: Callable[..., Any],
        counted: Callable[[], Any] | None = None,
        event_id_text: Callable[[Any], str | None] | None = None,
        untagged: Any = None,
    ) -> None:
        """Serve :meth:`record_metric`: ``queue(event)`` takes an event tuple (test,
        variant, metric, float value, user, time), and then False (not a tracking
        event) and the test's run when ``runs`` names one; without one (None) events go to
        ``record(test, variant, metric, value, user)``. ``counted()`` returns a
        ``(test, meta)`` callback (or None), called for tests with guardrail metrics.
        ``metas`` maps each test to its metadata: tests not in it record nothing.

        ``event_id_text(value)`` reads a caller's ``event_id`` (its text, or None when
        it is no id; without it every ``event_id`` is refused): an event with one is
        queued with nine items, the run slot ``untagged`` when ``runs`` names none, and
        recorded as ``record(..., event_id=text)``."""
        self._queue = queue
        self._record = record
        self._counted = counted
        self._event_id_text = event_id_text
        self._untagged = untagged

    def record_metric(
        self,
        test_name: Any,
        metric: str,
        value: Any = 1.0,
        *,
        user_context: ContextArg = None,
        user_id: Any = None,
        variant: Any = None,
        event_id: Any = None,
    ) -> bool:
        """``DynamicConfigurationManager.record_metric``: one observation of ``metric``
        for this user's variant of ``test_name``; False when the user is not in it."""
        parts = metric_event_parts(test_name, metric, value, user_context, user_id)
        if parts is None:
            return False
        if event_id is not None:
            if self._event_id_text is None:
                return False
            try:
                event_id = self._event_id_text(event_id)
            except Exception:  # (an int past the conversion limit, a hostile subclass)
                return False
            if event_id is None:
                return False  # no id: refused before the lookup, as a bad value is
        ctx, user_id, name, metric_name, number = parts
        # One read of the views: the variant, the test's metadata and its run all come
        # from the one document they were made from.
        views = self._views
        given = variant is not None
        if variant is None:
            variant = self._variant(views, name, ctx)
            if variant is None:
                return False
        else:
            variant = exact_name(variant)
            if variant is None:
                return False
        meta = dict.get(views[2], name)  # (a subclass's get() unread, as the compiled one)
        if meta is None or self._record is None:
            return False
        if given and not serves_variant(meta, variant):
            return False  # a variant the test does not have (a typo): no report counts it
        # Not recorded (the writer's backlog full, closed, or the value refused): False,
        # and not counted toward the next guardrail check.
        if self._queue is not None:
            run = _runs_get(views[3], name)
            event: tuple[Any, ...]
            if event_id is not None:  # nine items: the run slot, then the id
                tag = self._untagged if run is _NO_RUN else run
                event = (name, variant, metric_name, number, user_id, time.time(), False, tag,
                         event_id)  # fmt: skip
            elif run is _NO_RUN:
                event = (name, variant, metric_name, number, user_id, time.time())
            else:  # tagged with its run (not a tracking event: False)
                event = (name, variant, metric_name, number, user_id, time.time(), False, run)
            if self._queue(event) is False:
                return False
        elif event_id is not None:
            if (
                self._record(name, variant, metric_name, number, user_id, event_id=event_id)
                is False
            ):
                return False
        elif self._record(name, variant, metric_name, number, user_id) is False:
            return False
        if meta.get("guardrail_metrics") and self._counted is not None:
            counted = self._counted()
            if counted is not None:
                counted(name, meta)
        return True

    def is_feature_enabled(self, flag: Any, user_context: ContextArg = None) -> bool:
        """Whether ``flag`` (a flag name, or an Enum member whose value is one) is on."""
        if type(flag) is not str:
            try:
                flag = getattr(flag, "_value_", flag)
            except Exception:
                return False
        snap = _served_snapshot(self._views, self.engine)
        if self.engine._observer is not None:  # hooks, exposure callbacks, debug mode
            return self.engine._observer.evaluate(snap, 0, flag, user_context, None)  # type: ignore[no-any-return]
        return snap.is_enabled(flag, user_context)

    def get_ab_test_variant(self, test_name: Any, user_context: ContextArg = None) -> str | None:
        """The variant of A/B test ``test_name`` for this user, or None; the first one
        per user goes to the exposure log."""
        if type(test_name) is not str or not test_name.isascii():
            test_name = exact_name(test_name)  # a str subclass by its exact value
            if test_name is None:
                return None
        return self._variant(self._views, test_name, user_context)

    def _variant(
        self, views: tuple[Any, ...], test_name: str, user_context: ContextArg
    ) -> str | None:
        # (a subclass's get() unread, and an entry of None a test with no dedup shards,
        # served and its exposure handed to expose, as the compiled one reads them)
        seen = dict.get(views[1], test_name, _ABSENT)
        if seen is _ABSENT:
            return None
        snap = _served_snapshot(views, self.engine)
        if self.engine._observer is None:
            v = snap.variant(test_name, user_context)
        else:  # hooks, exposure callbacks, debug mode
            v = self.engine._observer.evaluate(snap, 1, test_name, user_context, None)
        if v is None or v == "__none__":
            return None
        if seen is False:
            return v
        if type(user_context) is dict:
            attrs: Any = user_context
        elif type(user_context) is Context:
            attrs = user_context.attrs
        else:
            attrs = None
        if attrs is not None:
            try:
                uid = attrs.get("user_id")
            except Exception:  # a colliding key whose __eq__ raises: read as missing
                uid = None
            # An int past ID_FORM_CHARS characters, or a str that is not text (a lone
            # surrogate), is no id: expose files it under the targeting key.
            if (
                (
                    (type(uid) is str and (uid.isascii() or bucketable_id(uid)))
                    or (type(uid) is int and int_id_sized(uid))
                )
                and type(seen) is tuple
                and len(seen) == L.DEDUP_SHARDS
            ):
                shard = seen[hash(uid) & (L.DEDUP_SHARDS - 1)]
                if type(shard) is set:
                    try:
                        known = uid in shard
                    except Exception:  # a logged str subclass id whose __eq__ raised
                        known = None  # cannot tell: expose decides
                    if known:
                        return v
                    if known is not None and self._append is not None:
                        if _seen_as_other(seen, uid, self._forms):
                            return v  # logged as its other form (42 / "42"): one user
                        self._log(views[3], test_name, v, uid, shard)
                        return v
        expose, takes_views = self._exposer
        try:
            if takes_views:
                # The views' dedup shards and run tags: the exposure is deduplicated
                # and tagged as the document this request was served from.
                expose(test_name, v, user_context, seen=seen, runs=views[3])
            else:
                expose(test_name, v, user_context)
        except Exception:  # the exposure log must never break the request
            pass
        return v

    def _log(self, runs: dict[str, Any], test: str, v: str, uid: Any, seen: set[Any]) -> None:
        try:
            if len(seen) >= self._shard_limit:
                seen.clear()  # the logger's own shard: its holders stay in sync
            seen.add(uid)
            ts = time.time() if self._clock is None else self._clock()
            # The run of the document this request was served from, resolved once per
            # document (runs): the record keeps it however late it is written.
            run = _runs_get(runs, test)
            record = (test, v, uid, ts) if run is _NO_RUN else (test, v, uid, ts, run)
            if self._append(record) is False:  # type: ignore[misc]
                # Dropped (the writer's backlog full, or closed): not logged, so not
                # deduplicated either; the user's next evaluation tries again.
                seen.discard(uid)
        except Exception:  # a failing clock or writer must never break the request
            pass


_NO_RUN: Any = object()  # a test ``SeedAPI.runs`` does not name: its records carry no run
_ABSENT: Any = object()  # a test ``SeedAPI.tests`` does not name: no such test


def _takes_views(expose: Any) -> bool:
    """Whether ``expose`` takes the views' shards and run tags (``seen=``, ``runs=``):
    its ``takes_views`` attribute is True. Read once, when it is set (reading it raised
    an Exception: False)."""
    try:
        return getattr(expose, "takes_views", False) is True
    except Exception:  # a hostile __getattr__: the three-argument call
        return False


def _checked_views(value: Any) -> tuple[Any, ...]:
    """``value`` as a SeedAPI's views: a tuple of at least four items, a compiled
    snapshot (or None) then three dicts; TypeError otherwise (as the compiled one)."""
    if type(value) is not tuple or len(value) < 4:
        raise TypeError("views must be a tuple (snapshot, tests, metas, runs, ...)")
    if value[0] is not None and not isinstance(value[0], CompiledSnapshot):
        raise TypeError(
            f"views[0] must be a CompiledSnapshot or None, not {type(value[0]).__name__}"
        )
    for i in range(1, 4):
        if not isinstance(value[i], dict):
            raise TypeError(f"views[{i}] must be a dict, not {type(value[i]).__name__}")
    return value  # type: ignore[no-any-return]


def _views_with(views: tuple[Any, ...], i: int, value: Any) -> tuple[Any, ...]:
    """``views`` with item ``i`` replaced: one new tuple, set in one assignment."""
    items = list(views)
    items[i] = value
    return tuple(items)


def _served_snapshot(views: tuple[Any, ...], engine: EngineCore) -> CompiledSnapshot:
    """The snapshot ``views`` were made from, else the engine's live one."""
    snap = views[0]
    return engine._snap if snap is None else snap  # type: ignore[no-any-return]


def _runs_get(runs: Any, test: str) -> Any:
    """``runs[test]``, or ``_NO_RUN`` (also for a ``runs`` that is not a dict), as the
    compiled SeedAPI's ``PyDict_GetItemWithError``."""
    if not isinstance(runs, dict):
        return _NO_RUN
    return dict.get(runs, test, _NO_RUN)


#: RecordQueue's max_bytes when none is given, and its ceiling (1 EiB: no bound; the
#: compiled queue's sums stay far from long long's range).
MAX_QUEUE_BYTES = 1 << 60


def _text_at(record: tuple[Any, ...], i: int) -> int:
    """The length of ``record[i]`` when it is an exact str, else 0 (out of range too)."""
    if -len(record) <= i < len(record):
        x = record[i]
        if type(x) is str:
            return len(x)
    return 0


@final
@_final
class RecordQueue:
    """The request thread's side of a :class:`cfgcore.experiments.writer.BackgroundWriter`
    (reference twin of the compiled ``RecordQueue``).

    ``append(record)`` queues one record on the writer's deque: False, and one more in
    ``dropped``, when the queue is closed or ``max_pending`` records wait. ``start()``
    is called by an append while ``started`` is False (the writer sets it).

    The byte bound: ``sized`` names at most two fields whose text a request gives a
    record (a user id, a metric's name); ``text_size(record)`` is the characters of
    those that are exact str in a tuple record (anything else counts 0). A record whose
    text is at most ``short_text`` (its ``share`` of ``max_bytes`` less
    ``RECORD_BYTES``) costs that one check while no long record waits: the count bound
    covers it. A longer one counts as its size (text + ``RECORD_BYTES``): its ``share``,
    counted with every record waiting, and its excess over that, added to
    ``long_added`` before it is queued; the writer adds what it takes to
    ``long_taken``. While the estimate (``share`` per record waiting, plus the long
    ones' excess) would pass ``max_bytes``, records are refused and counted in
    ``byte_dropped`` (a closed queue counts its refusals in ``dropped``).

    Thread safety, without relying on the GIL (a free-threaded CPython runs threads
    between any two steps of Python code): ``append`` may be called from any number of
    threads at once, while the writer takes records off the deque. Each append decides
    and queues under the queue's lock: its checks (closed, the count and byte bounds),
    the addition to ``long_added``, the deque append and the count in ``appended`` (or
    ``dropped``, ``byte_dropped``) are one step to other appends, as the compiled queue's
    are under the GIL. So no count is lost (``appended`` is exactly the records queued,
    in the deque's order: a :meth:`~cfgcore.experiments.writer.BackgroundWriter.flush`
    that waits for ``appended`` records waits for every one accepted before it), and
    the bounds hold exactly however many threads append. ``start()`` and ``late()`` are
    called outside the lock. The writer's side takes no lock: it pops from the deque
    (thread-safe), and it alone assigns ``long_taken``, ``started`` and ``closed``
    (single assignments).

    ``closed`` is set without the lock, so a ``close`` can still come between an
    append's closed check and its deque append (in the compiled queue, with no Python
    code between them, it cannot), and the record arrive after the writer stopped
    writing. So an append that finds the queue closed once its record is queued asks
    ``late(record)`` (the writer sets it) whether the record stays (it will be written)
    or was taken back (False, counted in ``dropped``). The request path pays one lock
    and one attribute read for this (``reset``, in a forked child, gives the queue a
    new lock: one held by another thread at the fork would never be released there).
    """

    __slots__ = ("pending", "_push", "max_pending", "appended", "dropped", "closed",
                 "started", "start", "max_bytes", "long_added", "long_taken",
                 "byte_dropped", "share", "short_text", "sized", "late",
                 "_lock")  # fmt: skip

    def __init__(
        self,
        pending: Any,
        max_pending: int,
        start: Callable[[], Any],
        max_bytes: int = MAX_QUEUE_BYTES,
        sized: Iterable[int] = (),
    ) -> None:
        sized = tuple(sized)
        if len(sized) > 2 or not all(type(i) is int and abs(i) < 1 << 31 for i in sized):
            raise ValueError(f"sized must name at most 2 field indices, not {sized!r}")
        if type(max_bytes) is not int or max_bytes < 1:
            raise ValueError(f"max_bytes must be a positive integer, not {max_bytes!r}")
        self._lock = threading.Lock()
        self.pending = pending
        self._push = pending.append
        self.max_pending = max_pending
        self.start = start
        self.appended = self.dropped = self.byte_dropped = 0
        self.long_added = self.long_taken = 0
        self.closed = self.started = False
        self.max_bytes = min(max_bytes, MAX_QUEUE_BYTES)
        self.share = max(L.RECORD_BYTES, self.max_bytes // max(1, max_pending))
        self.short_text = self.share - L.RECORD_BYTES
        self.sized = sized
        self.late: Callable[[Any], bool] | None = None

    def reset(self, pending: Any) -> None:
        """A new (empty) deque, nothing appended, not started, no long record's bytes
        waiting, a new lock (a forked child)."""
        self._lock = threading.Lock()
        self.pending = pending
        self._push = pending.append
        self.appended = 0
        self.long_added = self.long_taken = 0
        self.started = False

    def text_size(self, record: Any) -> int:
        """The characters of the exact-str fields ``sized`` names in the tuple ``record``."""
        if not self.sized or type(record) is not tuple:
            return 0
        return sum(_text_at(record, i) for i in self.sized)

    def append(self, record: Any) -> bool:
        """Queue ``record`` (no wait but for other appends' short step). False if dropped."""
        n = self.text_size(record)
        lock = self._lock
        lock.acquire()  # (acquire/release: half the cost of a `with` block here)
        try:
            if n <= self.short_text and self.long_added == self.long_taken:
                if self.closed or len(self.pending) >= self.max_pending:
                    self.dropped += 1
                    return False
                self._push(record)
                self.appended += 1
                excess = 0
            else:
                excess = self._queue_long(record, n)
                if excess < 0:
                    return False
        finally:
            lock.release()
        if self.closed and self.late is not None and not self.late(record):
            with self._lock:  # closed between the check and the append: taken back
                self.dropped += 1
                self.long_added -= excess
            return False
        if not self.started:
            self.start()
        return True

    def _queue_long(self, record: Any, n: int) -> int:
        """``append``'s step (under the lock) for a record of ``n`` characters of text
        past ``short_text``, or any record while long ones wait: judged by the byte
        bound too. Its excess over its share (added to ``long_added``), or -1: refused."""
        share = self.share
        size = max(n + L.RECORD_BYTES, share)
        waiting = len(self.pending) * share + max(0, self.long_added - self.long_taken)
        if waiting + size > self.max_bytes and not self.closed:
            self.byte_dropped += 1
            return -1
        if self.closed or len(self.pending) >= self.max_pending:
            self.dropped += 1
            return -1
        # Its share is counted with the records waiting: only the excess is added
        # (before the record is queued: the writer may take it at once, and must never
        # take off more than was added).
        self.long_added += size - share
        self._push(record)
        self.appended += 1
        return size - share
