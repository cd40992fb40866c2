"""The flag snapshot model and its decoders (YAML, JSON, MessagePack).

A snapshot file looks like this (YAML shown; JSON and MessagePack carry the same
structure)::

    version: 1
    segments:
      premium_eu:
        all:
          - {attr: user_segment, eq: premium}
          - {attr: region, in: [EU, UK]}
    flags:
      enhanced_anomaly_detection:          # boolean flag: variants default to on/off
        default: "off"
        rules:
          - when: {segment: premium_eu}
            serve: "on"
      experimental_ml_models:
        default: "off"
        rules:
          - rollout: 10                     # 10% of users by bucket; the rest fall through
            serve: "on"
      recommendation_algorithm_v2:
        variants:
          control: {algorithm: matrix_factorization}
          variant_a: {algorithm: deep_neural_network}
          variant_b: {algorithm: hybrid_ensemble}
        default: control
        rules:
          - split: {control: 50, variant_a: 30, variant_b: 20}
        schedule: {start: 2026-01-01T00:00:00Z, end: 2026-02-01T00:00:00Z}

Decoding is typed (msgspec), so a wrong type is reported with its path, e.g.
``flags.checkout_v2.rules[1].when.in: expected array, got str``, and in a YAML or JSON
file with its line too (:func:`problem_lines`). Unknown fields in
flags, rules and conditions are errors (a typo like ``rollot`` must not be ignored).
A syntax error names its line and the key path of where it is, in YAML and JSON alike
(``flags.json:3: flags.a.rules.0: invalid JSON: Expecting ',' delimiter (column 24)``).
``experiments`` and ``metadata`` are free-form: the core does not read them.

The Structs are frozen: compiled tables (and incremental recompiles, which reuse
the tables of every flag whose Struct did not change) rely on a decoded snapshot not
changing in place. Derive a new one with ``msgspec.structs.replace``.
"""

from __future__ import annotations

import base64
import bisect
import gc
import hashlib
import json
import math
import numbers
import os
import pickle
import re
import sys
import weakref
from array import array
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any, Literal

import msgspec

from cfgcore._encoding import decode_text, utf8_encodable
from cfgcore._frozen import untrack
from cfgcore._json_errors import json_error_path, json_syntax_problem
from cfgcore._msgspec_errors import NO_DATA, msgspec_problem
from cfgcore._numbers import shown
from cfgcore.errors import (
    ConfigError,
    Problem,
    SnapshotError,
    child_key_path,
    key_segment,
    parse_key_path,
    python_key,
)
from cfgcore.runtime.atomicio import read_regular
from cfgcore.yamlio import EMITTER, dump_yaml, load_yaml

Scalar = str | int | float | bool


class Condition(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True, frozen=True):
    """One test over the context, or a combination of tests.

    Exactly one operator per condition. Attribute operators need ``attr``:
    ``eq``, ``ne``, ``in``, ``not_in``, ``has_any`` (the attribute is an array: a
    list, tuple, set or frozenset holding an element ``in`` would match; ``ignore_case``
    applies to these five and to the string operators), ``lt``/``le``/``gt``/``ge``
    (numbers), ``semver_eq``/``semver_lt``/``semver_gt``, ``starts_with``/
    ``ends_with``/``contains``, ``matches`` (regular expression, searched),
    ``exists``. Combinators: ``all``,
    ``any``, ``not``; ``segment`` references a named segment.

    ``prerequisite`` reads another flag instead of an attribute: it holds where that
    flag, evaluated for the same context, serves what the :class:`Prerequisite` asks
    (a flag key alone: the flag is on). A flag-level prerequisite switches the whole
    flag off; this one decides only the condition it is in, e.g. one rule. Both share
    the limits: no cycles, chains of at most 32 flags, at most 1,000 flag evaluations
    per check.
    """

    attr: str | None = None
    eq: Scalar | None = None
    ne: Scalar | None = None
    in_: list[Scalar] | None = msgspec.field(default=None, name="in")
    not_in: list[Scalar] | None = None
    has_any: list[Scalar] | None = None
    lt: int | float | None = None
    le: int | float | None = None
    gt: int | float | None = None
    ge: int | float | None = None
    semver_eq: str | None = None
    semver_lt: str | None = None
    semver_gt: str | None = None
    starts_with: str | None = None
    ends_with: str | None = None
    contains: str | None = None
    matches: str | None = None
    exists: bool | None = None
    ignore_case: bool = False
    all: list[Condition] | None = None
    any: list[Condition] | None = None
    not_: Condition | None = msgspec.field(default=None, name="not")
    segment: str | None = None
    prerequisite: str | Prerequisite | None = None


HashScheme = Literal[
    "murmur3",
    "flagd_v2",
    "flagd_v3",
    "flagd_v3_pair",
    "flagd_v3_cbor",
    "growthbook_v1",
    "growthbook_v2",
]


class Hashing(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True, frozen=True):
    """A rule's own bucketing, as another flag system computes it (imported flags).

    As for a flag's ``bucket_by``, the first of ``by`` holding a string (hashed as it
    is) or an int (as decimal) is hashed; with none, the rule (or the gate) does not
    apply. The bucket is in ``0 .. space-1``:

    * ``murmur3``: ``murmur3_x86_32(salt + value + suffix, seed) % space`` (Unleash:
      salt ``"groupId:"``, seed 0 and space 100 for rollouts, seed 86028157 and the
      total weight for variants);
    * ``flagd_v2``: ``(murmur3_x86_32(salt + value + suffix, seed) * space) >> 32``
      (flagd: seed 0);
    * ``flagd_v3``: as v2 over the deterministic CBOR of the value (of the text
      ``salt + value + suffix`` when salt or suffix is set); ``flagd_v3_pair`` over
      the CBOR array ``[salt, value]``; ``flagd_v3_cbor`` over the bytes whose hex
      text the value is (``cfgcore.interop.flagd.context`` adds ``<key>#cbor`` for any
      JSON value, so booleans, floats, objects and arrays bucket as flagd does);
    * ``growthbook_v1``: ``fnv1a32(salt + value + suffix) % space``; ``growthbook_v2``:
      ``fnv1a32(str(fnv1a32(salt + value + suffix))) % space`` (FNV-1a over UTF-16
      code units, as GrowthBook hashes JavaScript strings).
    """

    scheme: HashScheme
    by: list[str]
    salt: str = ""
    suffix: str = ""
    seed: int = 0
    space: int = 100


class Gate(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True, frozen=True):
    """A bucket range a rule also requires: the rule applies only when ``lo <= bucket < hi``
    under ``hash`` (an Unleash rollout before its variant choice, a GrowthBook
    namespace or filter); a user without a value to hash falls through."""

    hash: Hashing
    hi: int
    lo: int = 0


class Rule(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True, frozen=True):
    """A targeting rule: when ``when`` matches (or is absent), serve a variant.

    * ``serve: V`` serves variant V.
    * ``serve: V`` with ``rollout: P`` serves V to P percent of the bucket space;
      users outside it fall through to the next rule.
    * ``split: {A: 50, B: 30, C: 20}`` assigns a variant by bucket (weights in
      percent, summing to 100, up to three decimals: buckets are 0.001% wide). Finer
      weights (``33.3333``) are rounded at each cumulative end, so the ranges still
      cover exactly 100%, and the compiler logs a warning naming the rule
      (``cfgcore.compiler``); a finer ``rollout`` likewise.
    * ``hash`` with ``buckets: [[V, width], [null, width], ...]`` assigns by the
      rule's own :class:`Hashing`: consecutive widths cover buckets ``0..space-1``;
      a ``null`` entry (or a bucket past the last width) falls through to the next rule.
    * ``gates`` (with either form): every gate's bucket range must hold first.
    """

    when: Condition | None = None
    serve: str | None = None
    rollout: int | float | None = None
    split: dict[str, int | float] | None = None
    bucket_by: str | list[str] | None = None
    name: str | None = None
    hash: Hashing | None = None
    buckets: list[tuple[str | None, int]] | None = None
    gates: list[Gate] = []


class Prerequisite(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True, frozen=True):
    """Serve this flag only if ``flag`` evaluates to ``true`` (or to ``variant``, or to
    one of ``variants``; with ``off: true``, only if it is *not* on)."""

    flag: str
    variant: str | None = None
    variants: list[str] | None = None
    off: bool = False


def flag_references(flag: Any, segments: Any = None) -> set[str]:
    """The flags ``flag`` reads: its ``prerequisites`` and the ``prerequisite``
    conditions of its rules, those of the segments they use included (the flags whose
    change can change its answers). Tolerant of a Snapshot built in Python: what is not
    a rule, condition or prerequisite is skipped (the compiler reports it)."""
    out: set[str] = set()
    for pre in getattr(flag, "prerequisites", None) or ():
        name = pre if isinstance(pre, str) else getattr(pre, "flag", None)
        if isinstance(name, str):
            out.add(str.__str__(name))
    rules = getattr(flag, "rules", None)
    stack = [getattr(r, "when", None) for r in rules] if isinstance(rules, list) else []
    seen: set[str] = set()
    while stack:
        c = stack.pop()
        if not isinstance(c, Condition):
            continue
        pre = c.prerequisite
        if pre is not None:
            name = pre if isinstance(pre, str) else getattr(pre, "flag", None)
            if isinstance(name, str):
                out.add(str.__str__(name))
        if isinstance(c.segment, str) and c.segment not in seen and segments:
            seen.add(c.segment)
            stack.append(segments.get(c.segment))
        stack.extend(c.all or ())
        stack.extend(c.any or ())
        stack.append(c.not_)
    return out


def _api_time(value: Any, where: str) -> Any:
    """A schedule time given through the Python API as an aware datetime: a naive one
    (``datetime.now() + timedelta(hours=1)``, or RFC 3339 text without an offset) is this
    machine's local time, as Python treats naive datetimes, resolved here to its UTC
    instant. Anything else is left for the compiler to check as a document's value."""
    if isinstance(value, str):
        try:
            value = msgspec.convert(value, datetime)
        except msgspec.ValidationError:
            return value  # refused by the compiler, with its path
    if not isinstance(value, datetime) or value.tzinfo is not None:
        return value
    try:
        # astimezone reads a naive datetime as local time (what datetime.now() returns).
        return value.astimezone(timezone.utc)
    except (OverflowError, OSError, ValueError):
        raise SnapshotError(
            [Problem(path=where, message=f"{value.isoformat()} is out of range in UTC")]
        ) from None


class _ApiTimes(msgspec.StructMeta):
    """Structs built in Python (``Schedule(start=...)``, ``Flag(schedule={...})``) take a
    naive schedule time as local time; decoders and ``msgspec.convert`` do not call the
    class, so a document's naive time stays UTC (see :class:`Schedule`)."""

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        # Subclasses too (an application's struct adding its own fields): built in
        # Python all the same. Their own fields come after the base's.
        if issubclass(cls, Schedule):
            names = ("start", "end")
            args = tuple(
                _api_time(v, f"schedule.{names[i]}") if i < 2 else v for i, v in enumerate(args)
            )
            for name in names:
                if name in kwargs:
                    kwargs[name] = _api_time(kwargs[name], f"schedule.{name}")
        elif issubclass(cls, Flag):
            at = _FLAG_SCHEDULE_AT
            if len(args) > at and isinstance(args[at], dict):
                args = (*args[:at], _api_schedule(args[at]), *args[at + 1 :])
            elif isinstance(kwargs.get("schedule"), dict):
                kwargs["schedule"] = _api_schedule(kwargs["schedule"])
        return super().__call__(*args, **kwargs)


def _api_schedule(schedule: dict[Any, Any]) -> Any:
    """A schedule given to ``Flag`` as a dict: the Schedule it stands for (its naive
    times local), or, with other keys, the dict for the compiler to refuse by path."""
    if set(schedule) <= {"start", "end"}:
        return Schedule(**schedule)
    return {
        k: _api_time(v, f"schedule.{k}") if k in ("start", "end") else v
        for k, v in schedule.items()
    }


class Schedule(
    msgspec.Struct,
    forbid_unknown_fields=True,
    omit_defaults=True,
    frozen=True,
    metaclass=_ApiTimes,
):
    """A window [start, end) in which the flag is live; outside it serves its off variant.

    Times without a UTC offset follow cfgcore's one rule (see
    :mod:`cfgcore.experiments.abtest`): in a stored document (a flags file, a Redis
    document, ``snapshot_from_dict`` of decoded data) they are UTC for every reader; given
    through the Python API (``Schedule(start=datetime.now() + timedelta(hours=1))``,
    ``Flag(schedule={"start": ...})``) they are this machine's local time, resolved at
    once. Either way the Schedule holds aware datetimes, so a schedule means the same
    instant on every host, copied, pickled or encoded (with its offset).
    (``msgspec.structs.replace`` does not call the class: a naive time given to it is
    read as a document's, UTC.)
    """

    start: datetime | None = None
    end: datetime | None = None

    def __post_init__(self) -> None:
        # Decoded (or converted) from a document: a naive time is UTC.
        for name in ("start", "end"):
            value = getattr(self, name)
            if isinstance(value, datetime) and value.tzinfo is None:
                msgspec.structs.force_setattr(self, name, value.replace(tzinfo=timezone.utc))


class Flag(
    msgspec.Struct,
    forbid_unknown_fields=True,
    omit_defaults=True,
    frozen=True,
    metaclass=_ApiTimes,
):
    """One flag. Without ``variants`` it is boolean: ``{"on": true, "off": false}``
    and ``off_variant`` defaults to ``"off"``. ``default`` is required (write it last:
    a definition cut off before it is then refused instead of served differently).

    ``on_variants`` names the variants that count as on for ``is_enabled`` (and for a
    prerequisite on this flag) when the values are not plain booleans, e.g. an
    imported Unleash flag whose variants carry payloads.
    """

    variants: dict[str, Any] | None = None
    default: str | None = None
    off_variant: str | None = None
    enabled: bool = True
    rules: list[Rule] = []
    prerequisites: list[str | Prerequisite] = []
    bucket_by: str | list[str] | None = None
    salt: str | None = None
    bucketing: Literal["murmur3"] = "murmur3"
    schedule: Schedule | None = None
    description: str = ""
    tags: list[str] = []
    metadata: dict[str, Any] = {}
    on_variants: list[str] | None = None


_FLAG_SCHEDULE_AT = Flag.__struct_fields__.index("schedule")


class Snapshot(
    msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True, frozen=True, weakref=True
):
    """A whole flag set: the unit that is compiled and swapped atomically.

    A Snapshot built in Python is not type-checked (msgspec Structs are not validated on
    construction): the compiler checks each flag it compiles from one as the decoders
    would (see :func:`is_decoded`)."""

    version: int = 1
    flags: dict[str, Flag] = {}
    segments: dict[str, Condition] = {}
    experiments: dict[str, Any] = {}
    metadata: dict[str, Any] = {}


Format = Literal["yaml", "json", "msgpack"]

_EXTENSIONS: dict[str, Format] = {
    ".yaml": "yaml",
    ".yml": "yaml",
    ".json": "json",
    ".msgpack": "msgpack",
    ".mpk": "msgpack",
}


_PAIRS_CHUNK = 4096


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    if len(pairs) <= _PAIRS_CHUNK:
        out = dict(pairs)  # C speed; the Python loop below runs only when a key repeats
    else:
        # A document's flags: built a chunk at a time, so that other threads get the
        # GIL between chunks (one dict() call of 43,000 flags held it for 10-15 ms).
        out = {}
        for start in range(0, len(pairs), _PAIRS_CHUNK):
            out.update(pairs[start : start + _PAIRS_CHUNK])
    if len(out) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _JsonDuplicate(key)
            seen.add(key)
    return out


def _release_flags(flags: Any) -> None:
    """Empty a decoding stage's dict of a document's flags one flag at a time (the
    checking pass's parsed copy, the split's slices): freed in one piece, a 43,000-flag
    document's took 40 ms in one C call, during which no other thread ran."""
    if type(flags) is dict:
        while flags:
            flags.popitem()


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while building a large acyclic structure.

    Decoding and compiling a snapshot allocates hundreds of thousands of objects
    and no cycles; letting the collector run over them repeatedly costs more than
    the decoding itself (3x for a 10,000-flag JSON snapshot).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class _JsonDuplicate(Exception):
    pass


class _JsonConstant(Exception):
    pass


def _reject_constant(name: str) -> Any:
    raise _JsonConstant(name)


def format_for(path: str | os.PathLike[str]) -> Format:
    """The snapshot format implied by a file name's extension."""
    ext = os.path.splitext(os.fspath(path))[1].lower()
    try:
        return _EXTENSIONS[ext]
    except KeyError:
        raise SnapshotError(
            f"unknown flag file extension {ext!r} (use .yaml, .yml, .json or .msgpack)",
            file=os.fspath(path),
        ) from None


class _RawSnapshot(msgspec.Struct, forbid_unknown_fields=True):
    """First decoding stage: flags and segments stay undecoded so that each one is
    decoded on its own, its key named in any error and every bad flag reported."""

    version: int = 1
    flags: dict[str, msgspec.Raw] = {}
    segments: dict[str, msgspec.Raw] = {}
    experiments: dict[str, Any] = {}
    metadata: dict[str, Any] = {}


class _ObjSnapshot(msgspec.Struct, forbid_unknown_fields=True):
    version: int = 1
    flags: dict[str, Any] = {}
    segments: dict[str, Any] = {}
    experiments: dict[str, Any] = {}
    metadata: dict[str, Any] = {}


# Snapshots the decoders made (each flag and segment type-checked), by id: a Snapshot
# hashes its fields, and its dicts are unhashable, so no WeakSet can hold it.
_DECODED: dict[int, weakref.ref[Snapshot]] = {}

_JSON_FLAG = msgspec.json.Decoder(Flag)
_JSON_COND = msgspec.json.Decoder(Condition)
_MP_FLAG = msgspec.msgpack.Decoder(Flag)
_MP_COND = msgspec.msgpack.Decoder(Condition)


#: What splits a JSON document into its flags and segments for _decode: "auto", the
#: compiled ``cfgcore._eval.json_sections`` where it is built (the reference's walk in
#: Python takes seconds for a large document); None, one msgspec call over the whole
#: document; or a ``json_sections`` function (the tests compare them).
_JSON_SPLITTER: Any = "auto"
_JSON_KEY = msgspec.json.Decoder(str)
_UTF8_BOM = b"\xef\xbb\xbf"


def _json_sections(original: Any, text: str) -> _RawSnapshot:
    """The first decoding stage of a JSON document (``text``, decoded from ``original``).

    msgspec splitting a whole document held the GIL for 37 ms at 43,000 flags, stopping
    every other thread while a reload ran on the watcher's. The compiled
    ``json_sections`` finds each member's bytes without the GIL, and the sections are
    built from them here, a flag at a time. Anything it does not answer for, and any
    error on the way, leaves the document to msgspec: its errors are the ones reported."""
    split = _JSON_SPLITTER
    if split == "auto":
        from cfgcore._compat import IMPLEMENTATION, impl  # here: cfgcore._eval imports this

        split = impl.json_sections if IMPLEMENTATION == "c" else None
    if split is not None:
        try:
            top = _split_sections(split, original, text)
        except Exception:  # noqa: BLE001 - msgspec reads the document and names the error
            top = None
        if top is not None:
            return top
    return msgspec.json.decode(text, type=_RawSnapshot)  # type: ignore[no-any-return]


def _split_sections(split: Any, original: Any, text: str) -> _RawSnapshot | None:
    """:func:`_json_sections` by ``split`` (a ``json_sections``), or None where it does
    not answer for the document."""
    if isinstance(original, str):
        buf = text.encode("utf-8")  # (a lone surrogate raises: msgspec names it)
    else:
        buf = bytes(original)  # the bytes decode_text read: UTF-8
        if buf.startswith(_UTF8_BOM):
            buf = buf[len(_UTF8_BOM) :]
    found = split(buf)
    if found is None:
        return None
    members, flag_spans, segment_spans = found
    sections: dict[str, Any] = {"flags": flag_spans, "segments": segment_spans}
    rest = []  # the other members, as written
    for ks, ke, _vs, ve in _quads(members):
        key = _json_key(buf, ks, ke)
        if key in sections:
            # Split where written as "flags" or "segments", once, holding an object.
            if sections[key] is None or buf[ks:ke] != key.encode():
                return None
        else:
            rest.append(buf[ks - 1 : ve])
    top = msgspec.json.decode(b"{" + b",".join(rest) + b"}", type=_RawSnapshot)
    for name, spans in sections.items():
        if spans is not None:
            setattr(top, name, _raw_members(buf, spans))
    return top


def _raw_members(buf: bytes, spans: Any) -> dict[str, msgspec.Raw]:
    """The members at ``spans`` (``json_sections``') of ``buf``, each value undecoded
    (a view of its bytes in ``buf``)."""
    view = memoryview(buf)
    raws = {buf[ks:ke].decode(): msgspec.Raw(view[vs:ve]) for ks, ke, vs, ve in _quads(spans)}
    if any("\\" in key for key in raws):  # a key written with an escape: read as JSON
        raws = {
            _json_key(buf, ks, ke): msgspec.Raw(view[vs:ve]) for ks, ke, vs, ve in _quads(spans)
        }
    return raws


def _quads(spans: Any) -> Iterator[tuple[int, int, int, int]]:
    """``json_sections``' spans, a member's four at a time."""
    it = iter(spans)
    return zip(it, it, it, it, strict=True)


def _json_key(buf: bytes, start: int, end: int) -> str:
    """The key whose text (between its quotes) is ``buf[start:end]``."""
    key = buf[start:end]
    if b"\\" in key:
        return _JSON_KEY.decode(buf[start - 1 : end + 1])  # type: ignore[no-any-return]
    return key.decode()


def _plain(raw: Any) -> Any:
    """A flag or segment as plain data, for naming a problem's keys: Python data as it
    is; a JSON or MessagePack ``msgspec.Raw`` decoded (NO_DATA where it does not)."""
    if not isinstance(raw, msgspec.Raw):
        return raw
    for decode in (msgspec.json.decode, msgspec.msgpack.decode):
        try:
            return decode(raw)
        except Exception:  # the other format, or not decodable as a whole
            continue
    return NO_DATA


def _assemble(
    top: Any,
    decode_flag: Any,
    decode_cond: Any,
    file: str | None,
    owned: bool = False,
    keep: set[int] | None = None,
) -> Snapshot:
    """The Snapshot of ``top``'s sections, each flag and segment decoded on its own.

    ``owned``: the decoder built every object of ``top`` and nobody else holds one
    (bytes or text decoded here, not a caller's mapping). Each flag is then taken out
    of the cyclic garbage collector as soon as it is decoded (:func:`untrack`, a C walk:
    the whole snapshot at once would stop other threads for 50 ms at 43,000 flags),
    and the collector never walks the snapshot again. ``keep`` (a caller's mapping:
    :func:`_held_by_caller`): the same, but the caller's own objects the Snapshot holds
    stay tracked."""
    problems: list[Problem] = []
    flags: dict[str, Flag] = {}
    segments: dict[str, Condition] = {}
    for section, items, decode, out, typ in (
        ("segments", top.segments, decode_cond, segments, Condition),
        ("flags", top.flags, decode_flag, flags, Flag),
    ):
        for key, raw in items.items():
            try:
                out[key] = item = decode(raw)
                if owned or keep is not None:
                    untrack(item, msgspec.Struct, keep)
            except (msgspec.ValidationError, msgspec.DecodeError) as exc:
                where = child_key_path(section, key)
                problem = msgspec_problem(exc, file, prefix=where, data=_plain(raw), type_=typ)
                problems.append(problem)
            except UnicodeEncodeError:  # (from Python data) text holding a lone surrogate
                problems.append(_surrogate_problem(raw, child_key_path(section, key), file))
            except RecursionError:  # bytes input nested beyond the decoder's stack
                problems.append(
                    Problem(
                        path=child_key_path(section, key), message="nested too deeply", file=file
                    )
                )
    if problems:
        raise SnapshotError(problems)
    snapshot = Snapshot(
        version=top.version,
        flags=flags,
        segments=segments,
        experiments=top.experiments,
        metadata=top.metadata,
    )
    if owned or keep is not None:
        untrack(snapshot, msgspec.Struct, keep)  # the sections, experiments and metadata
    return mark_decoded(snapshot)


def mark_decoded(snapshot: Snapshot) -> Snapshot:
    """Record that ``snapshot`` holds only flags and segments a decoder typed (the
    decoders here call it; so may a store assembling a Snapshot from their output), so
    the compiler need not check their types again (see :func:`is_decoded`)."""
    key = id(snapshot)

    def forget(_ref: Any, pop: Any = _DECODED.pop) -> None:
        pop(key, None)  # as the snapshot is freed, before its id can be reused

    _DECODED[key] = weakref.ref(snapshot, forget)
    return snapshot


def is_decoded(snapshot: Any) -> bool:
    """Whether ``snapshot`` came from a decoder (:func:`decode_snapshot`,
    :func:`snapshot_from_dict`), so every flag and segment in it has its declared types.
    One derived with ``msgspec.structs.replace`` or built in Python has not."""
    ref = _DECODED.get(id(snapshot))
    return ref is not None and ref() is snapshot


#: The most items (containers, map keys, values, array elements) a MessagePack flag
#: document (or published configuration) may hold unless its reader is given another
#: bound (``max_items=``: a flag store's URL parameter, :func:`decode_snapshot`'s
#: argument): 7 times a 10,000-flag document of simple flags (134,000), about 30,000
#: flags of two conditions and a rollout. It bounds the objects decoding one builds: a
#: document of nothing but empty arrays, one byte each, takes about 210 MB and 4 s to
#: decode and serve at this bound (and 1 GB at 4 MB past it):
#: ``benchmarks/msgpack_items.py``.
MAX_MSGPACK_ITEMS = 1_000_000
#: The lowest item bound a reader may be given (``max_items=``): the smallest flag
#: documents hold tens of items, and a bound below this one is a typo, not a setting.
MIN_MSGPACK_ITEMS_BOUND = 1_000
#: The highest item bound a reader may be given: what a hostile writer's document of one
#: byte per item costs every reader grows with it, about 210 MB and 4 s per million
#: items (2.1 GB and 40 s of each process at this bound). Real flags take about 5 bytes
#: an item (a 10,000-flag document: 674,028 bytes, 134,003 items), so the 64 MiB
#: document limit holds about 13 million of theirs: a flag set near this bound is
#: better split into namespaces of its own.
MAX_MSGPACK_ITEMS_BOUND = 10_000_000


def decode_snapshot(
    data: bytes | str,
    format: Format = "yaml",
    *,
    file: str | None = None,
    max_items: int = MAX_MSGPACK_ITEMS,
) -> Snapshot:
    """Decode snapshot bytes into a typed :class:`Snapshot`; raise SnapshotError with paths.

    Every bad flag and segment is reported, each with its key path. A document that
    repeats a key in one mapping is refused in every format (YAML, JSON, MessagePack:
    see :func:`refuse_msgpack_duplicates`), naming the key path. A MessagePack document
    of more than ``max_items`` items is refused before it is decoded (the caller's
    bound, checked with :func:`msgpack_items_bound`; :data:`MAX_MSGPACK_ITEMS` by
    default).
    """
    with problem_lines(data, format, file), gc_paused():  # lines found with the collector on
        return _decode(data, format, file, max_items)


@contextmanager
def problem_lines(data: bytes | str, format: str, file: str | None) -> Iterator[None]:
    """Give each problem that a :class:`ConfigError` raised in the block names in
    ``file`` by a key path, without a line, the line where that path (or the nearest
    part of it written there) is in ``data``, that file's YAML or JSON text:
    ``flags.yaml:7: flags.a.rules[0].serve: unknown variant 'b'``, as a configuration
    file's errors read. Decoding and compiling find these problems in the document,
    where no line is kept; the lines are found only on this error path (composing the
    text again), never for a document that loads. MessagePack has no lines, and a
    document with no file (a Redis store's) is left as it is.

    Engine.from_file and load_file, a flag store's file (a manager's flags file) and
    the command line's checks of a flag file decode and compile inside it.
    """
    try:
        yield
    except ConfigError as exc:
        if file is not None and format in ("yaml", "json"):
            _locate(exc, data, format, file)
        raise


def _locate(exc: ConfigError, data: bytes | str, format: str, file: str) -> None:
    if getattr(exc, "_lines_of", None) == file:  # an inner block looked already
        return
    exc._lines_of = file  # type: ignore[attr-defined]
    located = located_problems(exc.problems, data, format, file)
    if located is not exc.problems:
        exc.relocate(located)


def located_problems(
    problems: list[Problem], data: bytes | str, format: str, file: str
) -> list[Problem]:
    """``problems`` with a line given to each that names ``file`` by a key path and has
    none: the line where that path (or the nearest part of it written there) is in
    ``data``, that file's YAML or JSON text (:func:`problem_lines` does this for an
    error raised; a caller listing problems it does not raise, such as the flags
    ``cfgcore import`` refuses, calls it). ``problems`` itself where none is given one."""
    wanted = [p.file == file and p.line is None and bool(p.path) for p in problems]
    if format not in ("yaml", "json") or not any(wanted):
        return problems
    from cfgcore.config.files import _line_index  # key path -> line (YAML, JSON)

    try:
        index = _line_index(decode_text(data, file), format)
    except Exception:  # noqa: BLE001 - a line is a courtesy: the problems stay as they were
        return problems
    located = []
    for problem, want in zip(problems, wanted, strict=True):
        if want:
            segs = parse_key_path(problem.path)
            line = next(
                (n for end in range(len(segs), 0, -1) if (n := index.get(segs[:end]))), None
            )
            if line is not None:
                problem = replace(problem, line=line)
        located.append(problem)
    return located


def _decode(
    data: bytes | str, format: Format, file: str | None, max_items: int = MAX_MSGPACK_ITEMS
) -> Snapshot:
    try:
        if format == "msgpack":
            if isinstance(data, str):
                raise SnapshotError("MessagePack input must be bytes", file=file)
            top = _split_msgpack(data, _scan_msgpack(data, file, max_items))
            return _refuse_deep_values(
                _assemble(top, _MP_FLAG.decode, _MP_COND.decode, file, owned=True), file
            )
        if format == "json":
            original = data
            data = decode_text(data, file)  # UTF-8, as every text file cfgcore reads
            try:
                parsed = json.loads(
                    data,
                    object_pairs_hook=_reject_duplicate_keys,
                    parse_constant=_reject_constant,
                )
            except _JsonDuplicate as dup:
                raise SnapshotError([_json_duplicate(data, str(dup.args[0]), file)]) from None
            except _JsonConstant as const:
                raise SnapshotError([_json_constant(data, str(const.args[0]), file)]) from None
            except json.JSONDecodeError as exc:
                # file:line: key path: invalid JSON: ... (column N), as a config file's
                raise SnapshotError([json_syntax_problem(exc, file)]) from None
            except ValueError as exc:
                if "integer string conversion" in str(exc):
                    # int() refuses a literal past sys.get_int_max_str_digits() digits
                    # while json.loads runs: named, as a number no double holds is.
                    found = _json_scan(data, file, constants=False, numbers=True)
                    if found is not None:
                        raise SnapshotError([found]) from None
                raise SnapshotError(f"invalid JSON: {exc}", file=file) from None
            _require_flags_key(parsed, file)
            if _deeper_than(parsed, MAX_VALUE_DEPTH):  # as snapshot_from_dict refuses it
                raise _deep_error(_too_deep(parsed), file)
            try:
                top = _json_sections(original, data)
                snapshot = _assemble(top, _JSON_FLAG.decode, _JSON_COND.decode, file, owned=True)
                _release_flags(parsed.get("flags") if type(parsed) is dict else None)
                _release_flags(top.flags)
                return snapshot
            except (msgspec.ValidationError, SnapshotError) as exc:
                named = _json_out_of_range(exc, data, file)
                if named is None:
                    raise
                raise named from None
            except msgspec.DecodeError:
                # json.loads takes a lone surrogate escape ("\ud800"), msgspec calls
                # the file truncated or malformed at a byte: name the text's path.
                where = _lone_surrogate(parsed)
                if where is None:
                    raise
                message = (
                    "text is not valid Unicode (a lone surrogate such as \\ud800: half "
                    "of a JSON \\u escape pair)"
                )
                raise SnapshotError([Problem(path=where, message=message, file=file)]) from None
        if format == "yaml":
            obj = load_yaml(data, file=file, text_keys=True)
            if obj is None:
                # An empty document is what a truncated or half-written file looks like;
                # serving "no flags" from it would switch every flag off. A flag set
                # with no flags says so: `flags: {}`.
                raise SnapshotError("empty flag file (write `flags: {}` for no flags)", file=file)
            _require_flags_key(obj, file)
            return _from_dict(obj, file, owned=True)  # a document load_yaml built
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        problem = msgspec_problem(exc, file, type_=_RawSnapshot)
        if format == "json" and isinstance(exc, msgspec.DecodeError):
            problem = _at_json_byte(problem, data)
        raise SnapshotError([problem]) from None
    except SnapshotError:
        raise
    except RecursionError:
        # Nested past the decoders' stack (JSON's duplicate-key pass and msgspec's
        # MessagePack reader stop near 1,000 levels on CPython 3.11, 1,500 on 3.12 and
        # 10,000 on 3.13, before any flag is decoded on its own): find where with a scan
        # that keeps no stack frames, to name the flag and key path as YAML's reader does.
        where = deep_path(data, format)
        if where is None:
            raise SnapshotError(f"cannot decode {format}: nested too deeply", file=file) from None
        raise SnapshotError(
            [Problem(path=where, message=f"nested deeper than {MAX_VALUE_DEPTH} levels", file=file)]
        ) from None
    except Exception as exc:  # a yamlio ConfigError or anything the decoders raise
        problems = getattr(exc, "problems", None)
        if problems:
            raise SnapshotError(problems) from None
        raise SnapshotError(f"cannot decode {format}: {exc}", file=file) from None
    raise SnapshotError(f"unknown snapshot format {format!r}", file=file)


_AT_BYTE = re.compile(r"\(byte (\d+)\)$")


def _at_json_byte(problem: Problem, data: bytes | str) -> Problem:
    """msgspec's JSON syntax error ("JSON is malformed: ... (byte 42)") with the line
    and key path of that byte (where it names one and the problem names no path)."""
    m = _AT_BYTE.search(problem.message)
    if m is None or problem.path:
        return problem
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else bytes(data)
    at = int(m.group(1))
    if at > len(raw):
        return problem
    path = json_error_path(raw, at)
    line = raw.count(b"\n", 0, at) + 1
    return Problem(path=path, message=problem.message, file=problem.file, line=line)


def msgpack_items_bound(
    value: Any, *, name: str = "max_items", file: str | None = None, text: bool = False
) -> int:
    """``value`` as a MessagePack item bound (``max_items=``): a whole number from
    :data:`MIN_MSGPACK_ITEMS_BOUND` to :data:`MAX_MSGPACK_ITEMS_BOUND` (an int; with
    ``text``, the ASCII digits of a URL parameter, ``_`` between groups allowed), else
    :class:`~cfgcore.errors.ConfigError` naming ``name`` and the value.

    >>> msgpack_items_bound("2_000_000", text=True)
    2000000
    """
    number: int | None = None
    if isinstance(value, str):  # (text only where a URL gives it: an argument is a number)
        if text and len(value) <= 40 and re.fullmatch(r"[0-9]+(?:_[0-9]+)*", value, re.ASCII):
            number = int(value)
    elif isinstance(value, numbers.Integral) and not isinstance(value, bool):
        number = int(value)
    if number is None or not MIN_MSGPACK_ITEMS_BOUND <= number <= MAX_MSGPACK_ITEMS_BOUND:
        given = shown(value[:60] if isinstance(value, str) else value)
        raise ConfigError(
            f"{name}: expected a whole number of MessagePack items from "
            f"{MIN_MSGPACK_ITEMS_BOUND:,} to {MAX_MSGPACK_ITEMS_BOUND:,} (the default is "
            f"{MAX_MSGPACK_ITEMS:,}; each million costs a reader up to about 210 MB), "
            f"got {given}",
            file=file,
        )
    return number


def refuse_msgpack_duplicates(
    data: bytes, file: str | None, max_items: int = MAX_MSGPACK_ITEMS
) -> None:
    """Refuse a MessagePack document with a map that repeats a key, naming the key path.

    msgspec keeps the last of two equal keys without a word, where another reader may
    keep the first: a writer's bug or a hostile writer (a Redis store's document, a
    ``.msgpack`` file) would make two readers serve different flags, and YAML and JSON
    documents are refused for it. Keys are equal when they decode equal: one text under
    str headers of different widths, ``1`` and ``1.0`` (see
    ``cfgcore._eval.msgpack_duplicate_at``, a scan in C: about 1 ms for 10,000 flags).
    Bytes that are not one whole MessagePack value pass, for the decoder to name.

    A document of more than ``max_items`` items (:data:`MAX_MSGPACK_ITEMS` unless the
    reader was given another bound: a store's ``max_items=``) is refused too, before
    decoding: each item is a Python object once decoded, and a hostile writer (an
    unsigned Redis store's) packs one into a byte (4 MB of empty arrays decoded to
    almost 1 GB), which would stop every process that reads the document."""
    from cfgcore._compat import impl  # here: cfgcore._eval imports this module

    duplicate, items = impl.msgpack_scan(data)
    _refuse_scanned(data, file, duplicate, items, max_items)


def _scan_msgpack(data: bytes, file: str | None, max_items: int = MAX_MSGPACK_ITEMS) -> Any:
    """:func:`refuse_msgpack_duplicates` (``max_items``: its bound), and where the
    document's members are, for :func:`_split_msgpack`: the spans
    ``cfgcore._eval.msgpack_spans`` finds in the same pass, or None. (Without the
    compiled evaluator, none: the reference's spans would make its scan, Python code,
    take over twice as long, and the document is decoded whole, as before.)"""
    from cfgcore._compat import IMPLEMENTATION, impl

    if IMPLEMENTATION != "c":
        duplicate, items = impl.msgpack_scan(data)
        spans = None
    else:
        duplicate, items, spans = impl.msgpack_spans(data)
    _refuse_scanned(data, file, duplicate, items, max_items)
    return spans


def msgpack_items(data: bytes) -> int:
    """The items of MessagePack ``data`` (maps, arrays, keys and values, as the readers'
    bound counts them), or -1 when it is not one whole value the scan follows: what a
    writer measures before it writes a document (see :func:`too_many_items`)."""
    from cfgcore._compat import impl

    return int(impl.msgpack_scan(data)[1])


#: Where a reader's item bound is raised, as a refusal of a document over it says.
RAISED_WHERE = "the flag store URL (redis://...?max_items=N, file:///PATH.msgpack?max_items=N)"


def too_many_items(items: int, max_items: int, where: str = RAISED_WHERE) -> str:
    """The part of a message that says a document of ``items`` items is over the bound
    ``max_items``, and how the bound of every reader is raised: ``max_items=`` in
    ``where`` (a store's URL), up to :data:`MAX_MSGPACK_ITEMS_BOUND`."""
    bound = (
        "the default"
        if max_items == MAX_MSGPACK_ITEMS
        else f"max_items={max_items}; the default is {MAX_MSGPACK_ITEMS:,}"
    )
    if items > MAX_MSGPACK_ITEMS_BOUND:
        how = (
            f"no reader may be given a bound above {MAX_MSGPACK_ITEMS_BOUND:,}: split the "
            "flags into namespaces (stores) of their own"
        )
    else:
        how = (
            f"raise the bound with max_items= in {where} of every process that reads "
            f"it (at most {MAX_MSGPACK_ITEMS_BOUND:,})"
        )
    return (
        f"{items:,} items (maps, arrays, keys and values), more than the bound of "
        f"{max_items:,} ({bound}): {how}"
    )


def _refuse_scanned(
    data: bytes, file: str | None, duplicate: int, items: int, max_items: int = MAX_MSGPACK_ITEMS
) -> None:
    if items < 0 and len(data) > max_items:
        # Not one whole value the scan counts (truncated, an invalid byte or bytes
        # after it, nested past the scan's 1,000 levels), and long enough to hold more
        # items than the bound: the decoder would build every item before the one it
        # stops at. Its skip over the bytes builds none and names what is wrong.
        _refuse_msgpack_unscanned(data, file)
    if items > max_items:
        raise SnapshotError(
            f"the MessagePack document holds {too_many_items(items, max_items)}", file=file
        )
    if duplicate < 0:
        return
    from cfgcore._eval_py import msgpack_duplicate  # the slow path: the key path

    found = msgpack_duplicate(data)
    if found is None:  # pragma: no cover - the evaluators agree (tests)
        raise SnapshotError("duplicate key in a MessagePack map", file=file)
    at, first, path = found
    message = f"duplicate key (at byte {at}; first at byte {first})"
    raise SnapshotError([Problem(path=path, message=message, file=file)])


#: Whether a MessagePack flag document is split into its flags and segments by the
#: spans its scan found (:func:`_split_msgpack`); False: by one decode of the whole.
MSGPACK_SPLIT = True
#: The most members, and bytes, of a section one call of the split decodes (about
#: 0.3 ms at 1,024 members of 190 bytes).
SPLIT_MEMBERS = 1024
SPLIT_BYTES = 512 * 1024

_RAW_MEMBERS = msgspec.msgpack.Decoder(dict[str, msgspec.Raw])


def _map_head(count: int) -> bytes:
    """The head of a MessagePack map of ``count`` members."""
    if count < 16:
        return bytes([0x80 | count])
    if count < 0x10000:
        return b"\xde" + count.to_bytes(2, "big")
    return b"\xdf" + count.to_bytes(4, "big")


def _split_msgpack(data: bytes, spans: Any) -> _RawSnapshot:
    """``msgspec.msgpack.decode(data, type=_RawSnapshot)``, with the flags and segments
    split by ``spans`` (:func:`_scan_msgpack`'s) a run of members at a time: other
    threads run between any two runs, where one msgspec call over the whole document
    held the GIL for as long as it took (17 ms for 25,000 flags). Each run is decoded by
    msgspec as a map of its own bytes, as are the other top-level members together, so
    keys and values are what decoding the whole gives. Anything unexpected (a key that
    is not text, a member msgspec refuses) decodes the whole document as before: its
    error is msgspec's, word for word."""
    if spans is not None and MSGPACK_SPLIT and type(data) is bytes:
        try:
            return _split_by_spans(data, spans)
        except Exception:  # noqa: BLE001 - decoded whole below, which names it
            pass
    top: _RawSnapshot = msgspec.msgpack.decode(data, type=_RawSnapshot)
    return top


def _split_by_spans(data: bytes, spans: Any) -> _RawSnapshot:
    others, flags, segments = spans
    parts = [data[others[i] : others[i + 3]] for i in range(0, len(others), 4)]
    rest = _map_head(len(parts)) + b"".join(parts)
    top: _RawSnapshot = msgspec.msgpack.decode(rest, type=_RawSnapshot)
    if flags is not None:
        top.flags = _msgpack_members(data, flags)
    if segments is not None:
        top.segments = _msgpack_members(data, segments)
    return top


def _msgpack_members(data: bytes, spans: Any) -> dict[str, msgspec.Raw]:
    """The members at ``spans`` (four offsets each, in order: a sorted array) as
    ``dict[str, msgspec.Raw]`` decodes them, in runs of at most SPLIT_MEMBERS members
    and SPLIT_BYTES bytes (a single larger member is a run of its own)."""
    out: dict[str, msgspec.Raw] = {}
    n = len(spans) // 4
    i = 0
    while i < n:
        j = min(n, i + SPLIT_MEMBERS)  # the run: members i .. j-1
        start, limit = spans[4 * i], spans[4 * i] + SPLIT_BYTES
        if spans[4 * j - 1] > limit:  # the members that end by the limit
            j = max(i + 1, bisect.bisect_right(spans, limit, 4 * i, 4 * j) // 4)
        out.update(_RAW_MEMBERS.decode(_map_head(j - i) + data[start : spans[4 * j - 1]]))
        i = j
    if len(out) != n:
        raise _NotSplit  # a key repeated (the scan refuses that first: never)
    return out


class _NotSplit(Exception):
    """The split does not take a member: the whole document is decoded instead."""


def _refuse_msgpack_unscanned(data: bytes, file: str | None) -> None:
    """Refuse ``data``, which the item scan could not follow to its end, before decoding
    builds any object: the decoder's error where it does not skip as one whole value, else
    (nested deeper than the scan follows) the nesting, as decoding refuses it."""
    try:
        msgspec.msgpack.decode(data, type=msgspec.Raw)
    except msgspec.DecodeError as exc:
        raise SnapshotError([msgspec_problem(exc, file)]) from None
    except RecursionError:
        pass
    where = deep_path(data, "msgpack")
    if where is None:  # pragma: no cover - the scan stops short of a whole value only so
        raise SnapshotError("cannot decode msgpack: nested too deeply", file=file)
    raise _deep_error(where, file)


def _require_flags_key(obj: Any, file: str | None) -> None:
    """A flag file written by a person names its flags, even none (``flags: {}``): a
    document that stops before ``flags`` (segments only, or a header) is what a
    truncated or half-written file looks like, and must not switch every flag off."""
    if isinstance(obj, dict) and "flags" not in obj:
        raise SnapshotError(
            [Problem(path="flags", message="missing (write `flags: {}` for no flags)", file=file)]
        )


def load_snapshot(
    path: str | os.PathLike[str],
    format: Format | None = None,
    *,
    max_items: int = MAX_MSGPACK_ITEMS,
) -> Snapshot:
    """Read and decode a snapshot file; the format follows the extension unless given.
    ``max_items``: a MessagePack file's item bound (see :func:`decode_snapshot`)."""
    name = os.fspath(path)
    data, fmt = read_snapshot_file(name, format)
    return decode_snapshot(data, fmt, file=name, max_items=max_items)


def read_snapshot_file(path: str, format: Format | None = None) -> tuple[bytes, Format]:
    """The bytes of the snapshot file at ``path`` and their format (the extension's
    unless given), for a caller that decodes and compiles them within
    :func:`problem_lines`; SnapshotError naming the file when it cannot be read."""
    fmt = format or format_for(path)
    try:
        return read_regular(path), fmt
    except OSError as exc:
        raise SnapshotError(f"cannot read flag file: {exc.strerror or exc}", file=path) from None


MAX_VALUE_DEPTH = 100  # nested containers; real flag sets stay far below (conditions: 32)


def _too_deep(obj: Any, limit: int = MAX_VALUE_DEPTH) -> str | None:
    """The path of the first container nested deeper than ``limit``, or None.

    Iterative, so a 10,000-deep value is refused with a path instead of raising
    RecursionError in the decoders or the compiler.
    """
    stack: list[tuple[Any, str, int]] = [(obj, "", 0)]
    while stack:
        value, path, depth = stack.pop()
        # By the base types' own methods: a dict or list subclass of a document built in
        # Python may answer items() or iteration with its own (raising) methods.
        kind = type(value)
        if issubclass(kind, dict):
            items: Any = ((child_key_path(path, k), v) for k, v in dict.items(value))
        elif issubclass(kind, list):
            items = ((f"{path}[{i}]", v) for i, v in enumerate(list.__iter__(value)))
        elif issubclass(kind, tuple):
            items = ((f"{path}[{i}]", v) for i, v in enumerate(tuple.__iter__(value)))
        else:
            continue
        if depth >= limit:
            return path
        for child_path, child in items:
            if issubclass(type(child), (dict, list, tuple)):
                stack.append((child, child_path, depth + 1))
    return None


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether a dict or list in ``value`` (``value`` itself at depth 0) is at depth
    ``limit`` or more: _too_deep's test without building a path for every item."""
    level = [value] if isinstance(value, (dict, list, tuple)) else []
    depth = 0
    while level:
        if depth >= limit:
            return True
        below = []
        for container in level:
            for child in container.values() if isinstance(container, dict) else container:
                if isinstance(child, (dict, list, tuple)):
                    below.append(child)
        level = below
        depth += 1
    return False


def _deep_error(path: str | None, file: str | None) -> SnapshotError:
    message = f"nested deeper than {MAX_VALUE_DEPTH} levels"
    return SnapshotError([Problem(path=path or "", message=message, file=file)])


# Documents are held to MAX_VALUE_DEPTH in every format, counted from the document's
# top: YAML's and those built in Python by snapshot_from_dict, JSON's as parsed for the
# duplicate-key check (_decode), MessagePack's free-form values once decoded here (its
# typed parts have their own bound: conditions, the compiler's 32 levels). The JSON and
# MessagePack decoders alone stopped only at their stack's limit (about 1,000 levels on
# CPython 3.11, 1,500 on 3.12, 10,000 on 3.13); code that walks a document's values
# recursively before the compiler (the secret-reference check of a flag store's
# document) then raised RecursionError out of opening a manager.
def _refuse_deep_values(
    snapshot: Snapshot, file: str | None, fresh: Iterable[str] | None = None
) -> Snapshot:
    """``snapshot`` (decoded from MessagePack), unless its free-form values (variants,
    flag and document metadata, experiments) nest deeper than MAX_VALUE_DEPTH.
    ``fresh``: the flags to check (default all; a fleet store's follower checks those
    it decoded, not those it reused from the document it checked before)."""
    deep = None
    if _deeper_than(snapshot.metadata, MAX_VALUE_DEPTH - 1) or _deeper_than(
        snapshot.experiments, MAX_VALUE_DEPTH - 1
    ):
        deep = _too_deep({"metadata": snapshot.metadata, "experiments": snapshot.experiments})
    flags = snapshot.flags
    for key in flags if fresh is None else fresh:
        if deep is not None:
            break
        flag = flags[key]
        if _deeper_than(flag.variants, MAX_VALUE_DEPTH - 3) or _deeper_than(
            flag.metadata, MAX_VALUE_DEPTH - 3
        ):
            free = {"variants": flag.variants, "metadata": flag.metadata}
            deep = _too_deep({"flags": {key: free}})
    if deep is not None:
        raise _deep_error(deep, file)
    # A MessagePack extension value (a type other than the timestamp) in the free-form
    # parts: decoded as an Ext object, it compiled, and then the document could not be
    # written as JSON or YAML (a guardrail stop, a refused file set aside): a bare
    # TypeError. Variants are judged by the compiler ("cannot be served").
    found = _first_ext(snapshot.metadata, "metadata") or _first_ext(
        snapshot.experiments, "experiments"
    )
    for key in flags if fresh is None else fresh:
        if found is not None:
            break
        found = _first_ext(flags[key].metadata, child_key_path("flags", key) + ".metadata")
    if found is not None:
        message = (
            "a MessagePack extension value (type "
            f"{found[1]}) is not a flag document's value; it cannot be written as JSON or YAML"
        )
        raise SnapshotError([Problem(path=found[0], message=message, file=file)])
    return snapshot


def _first_ext(value: Any, path: str) -> tuple[str, int] | None:
    """The path and code of the first MessagePack extension value in ``value``."""
    if not value:
        return None
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        node, at = stack.pop()
        if isinstance(node, dict):
            stack += reversed([(v, child_key_path(at, k)) for k, v in node.items()])
        elif isinstance(node, (list, tuple)):
            stack += reversed([(v, f"{at}[{i}]") for i, v in enumerate(node)])
        elif isinstance(node, msgspec.msgpack.Ext):
            return at, node.code
    return None


def _child_path(top: list[Any] | None) -> str:
    """The path of the value about to be read in container ``top`` (see deep_path)."""
    if top is None:
        return ""
    kind, path, key, index = top[0], top[1], top[2], top[3]
    if kind == "[":
        return f"{path}[{index}]"
    return child_key_path(path, key)


_JSON_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"?|[{}\[\],:]')


def _json_deep_path(text: str, limit: int) -> str | None:
    # stack entries: [kind, path, current key, current index, expecting a key]
    stack: list[list[Any]] = []
    for m in _JSON_TOKEN.finditer(text):
        tok = m.group()
        top = stack[-1] if stack else None
        if tok[0] == '"':
            if top is not None and top[0] == "{" and top[4]:
                try:
                    top[2] = json.loads(tok)
                except ValueError:
                    top[2] = tok[1:-1]
                top[4] = False
        elif tok in "{[":
            path = _child_path(top)
            if len(stack) >= limit:
                return path
            stack.append([tok, path, None, 0, tok == "{"])
        elif tok in "}]":
            if stack:
                stack.pop()
        elif tok == "," and top is not None:
            if top[0] == "{":
                top[4] = True
            else:
                top[3] += 1
    return None


_JSON_SCAN = re.compile(r'"(?:[^"\\]|\\.)*"?|[{}\[\],:]|-?Infinity|NaN|-?[0-9][0-9.eE+-]*')


def _json_duplicate(data: bytes | str, key: str, file: str | None) -> Problem:
    """The duplicate key ``json.loads`` found, as YAML's reader reports one: its key path
    (``flags.f.variants.a``, not just ``a``), its line and the line of its first
    definition. A scan of the tokens (no recursion); ``key`` alone if it finds none."""
    found = _json_scan(data, file, constants=False)
    return found if found is not None else Problem(path=key, message="duplicate key", file=file)


def _json_constant(data: bytes | str, name: str, file: str | None) -> Problem:
    """Where ``json.loads`` read ``NaN`` or ``Infinity`` (Python's json.dump writes them;
    no JSON number is either, and msgspec would call the file malformed at a byte)."""
    found = _json_scan(data, file, constants=True)
    if found is not None:
        return found
    return Problem(path="", message=f"{name} is not a JSON number", file=file)


def _json_scan(
    data: bytes | str, file: str | None, constants: bool, numbers: bool = False
) -> Problem | None:
    """The first duplicate key (or, with ``constants``, the first NaN/Infinity; with
    ``numbers``, the first number no float holds) of JSON text, with its key path and
    line."""
    text = data if isinstance(data, str) else bytes(data).decode("utf-8", "replace")
    # stack entries: [kind, path, current key, current index, expecting a key, seen keys]
    stack: list[list[Any]] = []
    line, counted = 1, 0
    for m in _JSON_SCAN.finditer(text):
        tok = m.group()
        top = stack[-1] if stack else None
        if tok[0] == '"':
            if top is not None and top[0] == "{" and top[4]:
                try:
                    name = json.loads(tok)
                except ValueError:
                    name = tok[1:-1]
                line += text.count("\n", counted, m.start())
                counted = m.start()
                first = top[5].get(name)
                if first is not None and not constants and not numbers:
                    path = child_key_path(top[1], name)
                    message = f"duplicate key (first defined on line {first})"
                    return Problem(path=path, message=message, file=file, line=line)
                top[5][name] = line
                top[2] = name
                top[4] = False
        elif tok in ("NaN", "Infinity", "-Infinity"):
            if constants:
                line += text.count("\n", counted, m.start())
                message = f"{tok} is not a JSON number: write a finite number or null"
                return Problem(path=_child_path(top), message=message, file=file, line=line)
        elif tok[0] == "-" or tok[0].isdigit():
            if numbers and _beyond_float(tok):
                line += text.count("\n", counted, m.start())
                message = f"number out of range ({tok:.40}): write one within about ±1.8e308"
                return Problem(path=_child_path(top), message=message, file=file, line=line)
        elif tok in "{[":
            stack.append([tok, _child_path(top), None, 0, tok == "{", {}])
        elif tok in "}]":
            if stack:
                stack.pop()
        elif tok == "," and top is not None:
            if top[0] == "{":
                top[4] = True
            else:
                top[3] += 1
    return None


def _beyond_float(token: str) -> bool:
    try:
        return math.isinf(float(token))
    except ValueError:  # not a number after all: not this scan's business
        return False


def _json_out_of_range(
    exc: msgspec.ValidationError | SnapshotError, data: bytes | str, file: str | None
) -> SnapshotError | None:
    """msgspec refuses a number past a float's range (``1e400``) as "number out of
    range" at a path such as ``flags.f.variants[...][...]``: the keys of a variant value
    are not named, nor the line. The first such problem named by its key path and line
    (as a NaN or a duplicate key is), or None when there is none."""
    problems = exc.problems if isinstance(exc, SnapshotError) else [msgspec_problem(exc, file)]
    at = next((i for i, p in enumerate(problems) if p.message == "number out of range"), None)
    if at is None:
        return None
    found = _json_scan(data, file, constants=False, numbers=True)
    if found is None:
        return None
    return SnapshotError([*problems[:at], found, *problems[at + 1 :]])


# MessagePack heads (msgpack spec): bytes after the type byte for scalars, and the
# width of the length field for str/bin/ext (ext: plus its type byte) and arrays/maps
_MP_FIXED = {0xC0: 0, 0xC2: 0, 0xC3: 0, 0xCA: 4, 0xCB: 8, 0xCC: 1, 0xCD: 2, 0xCE: 4,
             0xCF: 8, 0xD0: 1, 0xD1: 2, 0xD2: 4, 0xD3: 8, 0xD4: 2, 0xD5: 3, 0xD6: 5,
             0xD7: 9, 0xD8: 17}  # fmt: skip
_MP_SIZED = {0xC4: (1, 0), 0xC5: (2, 0), 0xC6: (4, 0), 0xC7: (1, 1), 0xC8: (2, 1), 0xC9: (4, 1),
             0xD9: (1, 0), 0xDA: (2, 0), 0xDB: (4, 0)}  # fmt: skip
_MP_STR = {0xD9, 0xDA, 0xDB}
_MP_CONTAINER = {0xDC: ("[", 2), 0xDD: ("[", 4), 0xDE: ("{", 2), 0xDF: ("{", 4)}


def _msgpack_deep_path(data: bytes, limit: int) -> str | None:
    # stack entries: [kind, path, current key, current index, expecting a key, items left]
    stack: list[list[Any]] = []
    pos, n = 0, len(data)
    while pos < n:
        b = data[pos]
        pos += 1
        value: Any = None
        opened: tuple[str, int] | None = None
        if b <= 0x7F or b >= 0xE0:
            value = b
        elif b <= 0x8F:
            opened = ("{", b & 0x0F)
        elif b <= 0x9F:
            opened = ("[", b & 0x0F)
        elif b <= 0xBF:
            size = b & 0x1F
            value = data[pos : pos + size].decode("utf-8", "replace")
            pos += size
        elif b in _MP_FIXED:
            pos += _MP_FIXED[b]
        elif b in _MP_SIZED:
            width, extra = _MP_SIZED[b]
            size = int.from_bytes(data[pos : pos + width], "big")
            pos += width + extra
            if b in _MP_STR:
                value = data[pos : pos + size].decode("utf-8", "replace")
            pos += size
        elif b in _MP_CONTAINER:
            kind, width = _MP_CONTAINER[b]
            opened = (kind, int.from_bytes(data[pos : pos + width], "big"))
            pos += width
        else:
            return None  # 0xC1: not MessagePack
        if opened is not None:
            path = _child_path(stack[-1] if stack else None)
            if len(stack) >= limit:
                return path
            if opened[1]:
                stack.append([opened[0], path, None, 0, opened[0] == "{", opened[1]])
                continue
            value = None  # an empty container: a complete value
        while stack:  # a value is complete: step its container, close finished ones
            top = stack[-1]
            if top[0] == "{" and top[4]:
                top[2], top[4] = value, False
                break
            top[3] += 1
            top[4] = True
            top[5] -= 1
            if top[5] > 0:
                break
            stack.pop()
            value = None
    return None


def deep_path(data: bytes | str, format: Format, limit: int = MAX_VALUE_DEPTH) -> str | None:
    """The key path (``flags.x.variants.on.a.a...``) of the first container of a JSON or
    MessagePack document nested deeper than ``limit``, or None. A scan without recursion,
    for documents the decoders cannot read at all; best effort on malformed input."""
    if format == "json":
        text = data if isinstance(data, str) else bytes(data).decode("utf-8", "replace")
        return _json_deep_path(text, limit)
    if format == "msgpack" and not isinstance(data, str):
        return _msgpack_deep_path(bytes(data), limit)
    return None


def snapshot_from_dict(obj: Any, *, file: str | None = None) -> Snapshot:
    """Build a typed Snapshot from plain Python data (as decoded from any format).

    The Snapshot's own objects leave the cyclic garbage collector, as a decoded
    document's do; the caller's objects it holds as they are (values) stay in it."""
    return _from_dict(obj, file, owned=False)


def _from_dict(obj: Any, file: str | None, owned: bool) -> Snapshot:
    deep = _too_deep(obj)
    if deep is not None:
        raise SnapshotError(
            [Problem(path=deep, message=f"nested deeper than {MAX_VALUE_DEPTH} levels", file=file)]
        )
    if isinstance(obj, dict) and obj.get("metadata"):
        obj = {**obj, "metadata": _as_stored_metadata(obj["metadata"])}
    try:
        top = msgspec.convert(obj, type=_ObjSnapshot)
    except msgspec.ValidationError as exc:
        raise SnapshotError([msgspec_problem(exc, file, data=obj, type_=_ObjSnapshot)]) from None
    except UnicodeEncodeError:  # msgspec reads text where another type is due as UTF-8
        raise SnapshotError([_surrogate_problem(obj, "", file)]) from None
    except RecursionError:
        raise
    except Exception as exc:  # a str subclass key whose own __hash__ or __eq__ raises
        message = f"not a flag document's value: reading it raised {type(exc).__name__}: {exc}"
        raise SnapshotError([Problem(path=_odd_key(obj), message=message, file=file)]) from None
    keep = None if owned else _held_by_caller(obj)
    return _assemble(top, _convert_flag, _convert_condition, file, owned, keep)


def _held_by_caller(obj: Any) -> set[int]:
    """The ``id()`` of every container and Struct in a caller's document ``obj`` (dicts,
    lists, tuples, sets, their subclasses, msgspec Structs): a Snapshot built from it
    holds some of them as they are (values msgspec passes through), and those must stay
    in the cyclic garbage collector, since the caller may hold or change them; the
    Snapshot's own objects, built here, may leave it (:func:`_assemble`). Iterative:
    the document is bounded in depth (``_too_deep``), not in size. Runs none of the
    caller's code: types by ``type()``, items by the base classes' own iterators (a
    subclass's ``__iter__``, ``__class__`` or field property is never called)."""
    seen: set[int] = set()
    stack = [obj]
    while stack:
        item = stack.pop()
        if id(item) in seen:
            continue
        kind = type(item)
        if issubclass(kind, dict):
            stack.extend(dict.values(item))
        elif issubclass(kind, list):
            stack.extend(list.__iter__(item))
        elif issubclass(kind, tuple):
            stack.extend(tuple.__iter__(item))
        elif issubclass(kind, (set, frozenset)):
            stack.extend(set.__iter__(item) if issubclass(kind, set) else frozenset.__iter__(item))
        elif issubclass(kind, msgspec.Struct):
            stack.extend(msgspec.structs.astuple(item))
        else:
            continue
        seen.add(id(item))
    return seen


def _odd_key(obj: Any) -> str:
    """The key path of the first key of a document's top level, or of its flags,
    segments, experiments or metadata, that is a str subclass (one whose own methods
    may raise); "" when there is none."""
    if not isinstance(obj, dict):
        return ""
    for key in dict.keys(obj):
        if type(key) is not str and isinstance(key, str):
            return str.__str__(key)
    for section in ("flags", "segments", "experiments", "metadata"):
        inner = dict.get(obj, section)
        if isinstance(inner, dict):
            for key in dict.keys(inner):
                if type(key) is not str and isinstance(key, str):
                    return child_key_path(section, str.__str__(key))
    return ""


def _convert_condition(raw: Any) -> Condition:
    return _convert_exact(raw, Condition)  # type: ignore[no-any-return]


def _convert_exact(raw: Any, typ: type) -> Any:
    """``msgspec.convert(raw, type=typ)``, or where that refuses a float subclass
    (msgspec takes str and int subclasses where those types go, not float's), the same
    with each one as the float it holds; else the first refusal."""
    try:
        return _convert(raw, typ)
    except msgspec.ValidationError:
        try:
            exact = exact_floats(raw)
        except Exception:  # a key whose own hash raises: the refusal stands
            exact = raw
        if exact is raw:
            raise
        return _convert(exact, typ)


def _convert(raw: Any, typ: type) -> Any:
    """``msgspec.convert(raw, type=typ)``, whose reading of an object where a flag, rule
    or condition goes through the object's own ``__getitem__`` (a NumPy scalar or array:
    ``IndexError``) is refused as a wrong type at its key path."""
    try:
        return msgspec.convert(raw, type=typ)
    except (msgspec.ValidationError, UnicodeEncodeError, RecursionError):
        raise  # refusals, and what _assemble names itself
    except Exception as exc:
        odd = _raising_key(raw)
        if odd is not None:  # a str subclass key whose own __hash__ raised
            at = f" - at `$.{odd[0]}`" if odd[0] else ""
            raise msgspec.ValidationError(
                f"not a flag document's value: reading key {odd[1]!r} raised "
                f"{type(exc).__name__}: {exc}{at}"
            ) from None
        path, name = _odd_object(raw)
        at = f" - at `$.{path}`" if path else ""
        raise msgspec.ValidationError(f"Expected `object`, got `{name}`{at}") from None


def _raising_key(raw: Any) -> tuple[str, str] | None:
    """The key path (msgspec's spelling) of the first object of a flag or condition in
    plain data that holds a str subclass key whose own ``__hash__`` raises, and that
    key's text; None when there is none."""
    stack: list[tuple[str, Any]] = [("", raw)]
    while stack:
        path, value = stack.pop()
        cls = type(value)
        children: list[tuple[str, Any]] = []
        if issubclass(cls, dict):
            for k, v in dict.items(value):
                if type(k) is not str and issubclass(type(k), str):
                    try:
                        hash(k)
                    except Exception:
                        return path, str.__str__(k)
                elif type(k) is str and _FIELD.fullmatch(k):
                    children.append((f"{path}.{k}" if path else k, v))
        elif issubclass(cls, list):
            children = [(f"{path}[{i}]", v) for i, v in enumerate(list.__iter__(value))]
        elif issubclass(cls, tuple):
            children = [(f"{path}[{i}]", v) for i, v in enumerate(tuple.__iter__(value))]
        stack.extend(reversed(children))
    return None


_FIELD = re.compile(r"[a-z_]+")
_FREE_FORM = frozenset({"variants", "metadata", "split"})  # their values are not Structs


def _odd_object(raw: Any) -> tuple[str, str]:
    """The key path (msgspec's spelling, ``rules[0].when``) and type name of the first
    value of a flag or condition in plain data that is none of a document's types, in
    document order; ("", its type) when none is found (``raw`` itself then)."""
    plain = (dict, list, tuple, str, int, float, bool, type(None), datetime)
    stack: list[tuple[str, Any]] = [("", raw)]
    while stack:
        path, value = stack.pop()
        cls = type(value)
        if not issubclass(cls, plain):
            name = cls.__qualname__
            return path, name if cls.__module__ == "builtins" else f"{cls.__module__}.{name}"
        children: list[tuple[str, Any]] = []
        if issubclass(cls, dict):
            for k, v in dict.items(value):
                if type(k) is str and _FIELD.fullmatch(k) and k not in _FREE_FORM:
                    children.append((f"{path}.{k}" if path else k, v))
        elif issubclass(cls, (list, tuple)):
            children = [(f"{path}[{i}]", v) for i, v in enumerate(value)]
        stack.extend(reversed(children))
    cls = type(raw)
    return (
        "",
        cls.__qualname__
        if cls.__module__ == "builtins"
        else f"{cls.__module__}.{cls.__qualname__}",
    )


def _convert_flag(raw: Any) -> Flag:
    where = unordered_field(raw)
    if where is not None:  # as msgspec words a wrong type, so the problem names its path
        raise msgspec.ValidationError(
            f"Expected `array` (the order of a set changes from one process to the next), "
            f"got `set` - at `$.{where}`"
        )
    if isinstance(raw, dict) and raw.get("metadata"):
        raw = {**raw, "metadata": _as_stored_metadata(raw["metadata"])}
    return _convert_exact(raw, Flag)  # type: ignore[no-any-return]


def exact_floats(value: Any) -> Any:
    """``value`` with each float subclass instance in its dicts, lists and tuples (a
    ``numpy.float64`` rollout, weight or bound of a document built in Python) replaced
    by the float it holds (never through its own ``__float__``), or ``value`` itself
    when it holds none. A subclass of str, int or float is its base type's value
    (README "Types are strict"); msgspec takes str and int subclasses where those
    types go, but refuses a float subclass. Only called once a document is refused, on
    data already checked to nest at most MAX_VALUE_DEPTH levels."""
    cls = type(value)
    if cls is not float and issubclass(cls, float):
        return float.__float__(value)
    if isinstance(value, dict):
        pairs = [(k, v, exact_floats(v)) for k, v in value.items()]
        if all(new is v for _, v, new in pairs):
            return value
        return {k: new for k, _, new in pairs}
    if isinstance(value, (list, tuple)):
        elements = [exact_floats(v) for v in value]
        if all(a is b for a, b in zip(elements, value, strict=True)):
            return value
        return elements if isinstance(value, list) else tuple(elements)
    return value


def _as_stored_metadata(value: Any) -> Any:
    """Free-form metadata as every stored format hands it back: JSON and MessagePack
    (the Redis store, caches, ``publish --flags``) carry a YAML date, datetime or time
    as its ISO text, so a process reading the YAML file gets that text too (it got a
    date object, which OpenFeature's metadata then dropped on that process only).
    Bytes stay bytes, as MessagePack keeps them."""
    try:
        return msgspec.to_builtins(value, builtin_types=(bytes, bytearray))
    except (TypeError, ValueError, OverflowError):
        return value  # not storable anyway: the encoders refuse it when written


def _field(obj: Any, name: str) -> Any:
    if isinstance(obj, dict):
        return obj.get(name)
    return getattr(obj, name, None) if isinstance(obj, msgspec.Struct) else None


def unordered_field(flag: Any) -> str | None:
    """The path (``rules[0].bucket_by``) of a set given for a field whose order decides an
    answer, in a flag built in Python (a dict or Structs), or None.

    ``bucket_by`` and ``hash.by`` hash the first attribute holding a value, a rule's
    ``buckets`` are consecutive ranges in the order written, and the first rule that
    matches serves (frozen ``Rule`` structs are hashable: a set of them is a set of
    rules in no particular order). A set iterates in an order
    that changes with each process's hash seed: converted to a list, it would bucket one
    user into different variants in different workers of one service. (Sets are fine
    where order is no answer: ``in``, ``on_variants``, ``prerequisites``.)"""
    unordered = (set, frozenset)
    if isinstance(_field(flag, "bucket_by"), unordered):
        return "bucket_by"
    rules = _field(flag, "rules")
    if isinstance(rules, unordered):
        return "rules"
    if not isinstance(rules, list | tuple):
        return None
    for i, rule in enumerate(rules):
        if isinstance(_field(rule, "bucket_by"), unordered):
            return f"rules[{i}].bucket_by"
        buckets = _field(rule, "buckets")
        if isinstance(buckets, unordered):
            return f"rules[{i}].buckets"
        for j, pair in enumerate(buckets if isinstance(buckets, list | tuple) else ()):
            if isinstance(pair, unordered):  # {"on", 50}: name and width in either order
                return f"rules[{i}].buckets[{j}]"
        if isinstance(_field(_field(rule, "hash"), "by"), unordered):
            return f"rules[{i}].hash.by"
        gates = _field(rule, "gates")
        for j, gate in enumerate(gates if isinstance(gates, list | tuple) else ()):
            if isinstance(_field(_field(gate, "hash"), "by"), unordered):
                return f"rules[{i}].gates[{j}].hash.by"
    return None


def same(a: Any, b: Any) -> bool:
    """Whether two flags, experiment records or metadata values are the same as stored:
    compared as encoded bytes, since ``==`` calls ``1``, ``1.0`` and ``True`` equal
    while a flag serving one or the other serves a different value (and type)."""
    if a is b:
        return True
    try:
        return _SAME.encode(a) == _SAME.encode(b)
    except (TypeError, ValueError, OverflowError):  # not encodable: equality is all there is
        return bool(a == b) and type(a) is type(b)


_SAME = msgspec.msgpack.Encoder()


class SameSet:
    """A multiset of values compared as :func:`same` compares them, each looked up in
    constant time by its encoded bytes (a value that cannot be encoded: by ``same``,
    one by one): a judge matching the rules of one document against another's stays
    linear in their number (a flag of thousands of rules, compared pairwise with
    ``same``, took seconds to tens of seconds on every swap)."""

    def __init__(self, values: Any = ()) -> None:
        self._counts: dict[bytes, int] = {}
        self._other: list[Any] = []
        for value in values:
            key = same_key(value)
            if key is None:
                self._other.append(value)
            else:
                self._counts[key] = self._counts.get(key, 0) + 1

    def __contains__(self, value: Any) -> bool:
        key = same_key(value)
        if key is not None and key in self._counts:
            return True
        return any(same(value, v) for v in self._other)

    def take(self, value: Any) -> bool:
        """Remove one value :func:`same` as ``value``: False when there is none."""
        key = same_key(value)
        left = self._counts.get(key, 0) if key is not None else 0
        if left:
            if left == 1:
                del self._counts[key]  # type: ignore[arg-type]
            else:
                self._counts[key] = left - 1  # type: ignore[index]
            return True
        for n, v in enumerate(self._other):
            if same(value, v):
                del self._other[n]
                return True
        return False


def same_key(value: Any) -> bytes | None:
    """``value`` as :func:`same` compares it (its encoded bytes), or None when it
    cannot be encoded (``same`` then compares by equality and type)."""
    try:
        return _SAME.encode(value)
    except (TypeError, ValueError, OverflowError):
        return None


def encode_msgpack(document: Any, *, file: str | None = None) -> bytes:
    """``document`` (a Snapshot, a published configuration) as MessagePack. An integer
    past its 64 bits (YAML and JSON files hold them, and the compiler takes condition
    constants up to 2**106, as the GrowthBook importer writes them) is refused with its
    key path, not a bare OverflowError out of a store's write or `cfgcore publish`."""
    try:
        return msgspec.msgpack.encode(document)
    except OverflowError:
        where = _beyond_msgpack(msgspec.to_builtins(document))
        message = (
            "integer out of range for MessagePack (64 bits): this flag document can be "
            "kept in a YAML or JSON flag file, not in a Redis store or a .msgpack file"
        )
        raise SnapshotError([Problem(path=where or "", message=message, file=file)]) from None


def _surrogate_problem(data: Any, prefix: str, file: str | None) -> Problem:
    """The problem of Python data holding text with a lone surrogate (msgspec refuses
    to read it), at that text's key path below ``prefix``."""
    where = _lone_surrogate(data) or ""
    path = f"{prefix}.{where}" if prefix and where and where[0] != "[" else prefix + where
    message = "text is not valid Unicode (a lone surrogate such as \\ud800): no document holds it"
    return Problem(path=path, message=message, file=file)


def non_text_key(value: Any, what: str = "metadata keys") -> tuple[str, str] | None:
    """``(path suffix, message)`` of the first key in ``value`` (a flag's or the
    document's metadata) that is not text, else None. Metadata is free-form, but a JSON
    document, ``cfgcore export`` and a YAML file hold text keys only: a ``1`` or ``None``
    key that MessagePack or Python carried in became ``"1"`` in a JSON store (the same
    key as a text ``"1"`` beside it) or stopped the document being written at all."""
    if _text_keys_only(value):  # the common case, without building a path per key
        return None
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack:
        node, path = stack.pop()
        if isinstance(node, dict):
            for k in node:
                if not issubclass(type(k), str):
                    return path + key_segment(k), (
                        f"key {python_key(k)} ({type(k).__name__}) is not a string "
                        f"({what} are text, as in a JSON document: quote it)"
                    )
            stack += reversed([(v, path + key_segment(k)) for k, v in node.items()])
        elif isinstance(node, list | tuple):
            stack += reversed([(v, f"{path}[{i}]") for i, v in enumerate(node)])
    return None


def _text_keys_only(value: Any) -> bool:
    """Whether every mapping key in ``value`` is text (what :func:`non_text_key` finds
    nothing in), checked without a key path."""
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for k, v in node.items():
                if not issubclass(type(k), str):
                    return False
                if isinstance(v, dict | list | tuple):
                    stack.append(v)
        elif isinstance(node, list | tuple):
            stack.extend(v for v in node if isinstance(v, dict | list | tuple))
    return True


def _first_non_text_key(data: Any) -> tuple[str, str] | None:
    """The key path and message of the first key that is not text in plain ``data``
    (a whole document: the path names the section it is in), else None."""
    bad = non_text_key(data, "a flag document's keys")
    if bad is None:
        return None
    return bad[0].lstrip("."), bad[1]


def _metadata_key_problem(snapshot: Snapshot, file: str | None) -> Problem | None:
    """The document's own ``metadata`` holding a key that is not text, as a Problem
    (``metadata.x[1]``), else None: refused as a flag's metadata is (the compiler)."""
    bad = non_text_key(snapshot.metadata) if snapshot.metadata else None
    if bad is None:
        return None
    return Problem(path="metadata" + bad[0], message=bad[1], file=file)


def _lone_surrogate(data: Any) -> str | None:
    """The key path of the first text (a key or a value, in document order) in plain
    data holding a lone surrogate, which no UTF-8 document can, else None."""
    stack: list[tuple[Any, str]] = [(data, "")]
    while stack:
        node, path = stack.pop()
        if isinstance(node, dict):
            children = []
            for k, v in node.items():
                at = child_key_path(path, k)
                children += [(k, at), (v, at)]  # the key (a str) first, then its value
            stack += reversed(children)
        elif isinstance(node, list):
            stack += reversed([(v, f"{path}[{i}]") for i, v in enumerate(node)])
        elif isinstance(node, str) and not utf8_encodable(node):
            return path.encode("utf-8", "backslashreplace").decode()
    return None


def _beyond_msgpack(data: Any) -> str | None:
    """The key path of the first integer in plain data that MessagePack cannot hold."""
    stack: list[tuple[Any, str]] = [(data, "")]
    while stack:
        node, path = stack.pop()
        if isinstance(node, dict):
            stack += [(v, child_key_path(path, k)) for k, v in node.items()]
        elif isinstance(node, list):
            stack += [(v, f"{path}[{i}]") for i, v in enumerate(node)]
        elif isinstance(node, int) and not -(2**63) <= node <= 2**64 - 1:
            return path
    return None


def _non_finite(data: Any) -> tuple[str, float] | None:
    """The key path and value of the first NaN or infinity in plain data, or None
    (iterative: the data may be nested as deep as a document allows)."""
    stack: list[tuple[Any, str]] = [(data, "")]
    while stack:
        value, path = stack.pop()
        if type(value) is float:
            if not math.isfinite(value):
                return path, value
        elif isinstance(value, dict):
            items = list(value.items())
            stack.extend((v, child_key_path(path, k)) for k, v in reversed(items))
        elif isinstance(value, list | tuple):
            stack.extend((v, f"{path}[{i}]") for i, v in reversed(list(enumerate(value))))
    return None


# A NaN or infinity is a float64 whose 11 exponent bits are all set: in MessagePack
# (which msgspec writes every Python float as: 0xcb and 8 big-endian bytes) the two
# bytes after 0xcb are 0x7f or 0xff, then 0xf0-0xff. Text holding those bytes can match
# too; it only costs the exact walk.
_NON_FINITE_FLOAT64 = re.compile(rb"\xcb[\x7f\xff][\xf0-\xff]")


def _may_hold_non_finite(data: Any) -> bool:
    """False when plain ``data`` certainly holds no NaN or infinity: one C encode and a
    byte scan instead of :func:`_non_finite`'s Python walk over every value (which cost
    most of a 1,000-flag JSON file's write)."""
    try:
        packed = _SAME.encode(data)
    except (TypeError, ValueError, OverflowError):
        return True  # not encodable here: let the walk (and the JSON encoder) judge
    return _NON_FINITE_FLOAT64.search(packed) is not None


_YAML_OPTIONS: dict[str, Any] = {"sort_keys": False, "allow_unicode": True}
_U32 = next(code for code in "IL" if array(code).itemsize == 4)  # an unsigned 32-bit array


class YamlEntries:
    """The YAML text of a snapshot's entries, kept from one encoding to the next: a
    change to one flag of 1,000 emits that flag's YAML, not the document's (PyYAML's
    emitter runs in Python, 0.1-0.2 ms a flag). The bytes are those one ``dump_yaml``
    of the whole document gives: in block style the text of a mapping is its entries'
    texts one after the other, each the same wherever it stands (no anchors: a snapshot's
    plain data shares no list or mapping; no document end marker: the root is a
    mapping). An entry is reused when its key and value are the same data (their
    MessagePack bytes: a value changed in place is emitted again); the texts kept are
    those of the last document only. Not thread-safe: its owner (a file store) encodes
    under its lock.

    The first write of a process has no texts yet: :meth:`record` describes the last
    document's texts (the emitter, a digest of the data they were emitted from, each
    part's length in bytes) for the file store to keep in its version sidecar, and
    :meth:`seed` takes them back from a file that record describes (see there).

    PyYAML's C emitter (libyaml) is not used: it writes other bytes for some text (an
    emoji as a ``\\U0001F600`` escape, an empty key without ``? ``), and a flag file's
    text must not change with whether libyaml is installed."""

    __slots__ = ("_texts", "_parts", "_digest")

    #: The most parts :meth:`record` describes (a sidecar of at most about 270 KB): a
    #: larger document's first write in a process emits every flag, as before.
    MAX_RECORDED_PARTS = 50_000

    def __init__(self) -> None:
        self._texts: dict[bytes, tuple[str, int]] = {}  # key -> (text, its UTF-8 length)
        self._parts: list[int] = []  # the last document's parts' lengths, in bytes
        self._digest = ""  # of the last document's data (its parts' keys)

    @property
    def empty(self) -> bool:
        """Whether no text is kept (nothing encoded yet, or an empty flag set)."""
        return not self._texts

    def dump(self, data: dict[str, Any]) -> str:
        flags = data.get("flags")
        if not isinstance(flags, dict) or not flags:
            self._texts, self._parts, self._digest = {}, [], ""
            return dump_yaml(data, **_YAML_OPTIONS)  # ("flags: {}": a flow mapping)
        old = self._texts
        new: dict[bytes, tuple[str, int]] = {}
        parts: list[str] = []
        sizes: list[int] = []
        keys = _entry_keys(data)
        at = 0
        for key, value in data.items():
            if key != "flags":
                entries: Any = [((key,), {key: value}, "")]
            else:
                parts.append("flags:\n")
                sizes.append(7)
                entries = (((key, name), flag, "flags:\n") for name, flag in value.items())
            for path, doc, head in entries:
                same = keys[at]
                at += 1
                found = old.get(same)
                if found is None:
                    if head:
                        doc = {"flags": {path[1]: doc}}
                    text = dump_yaml(doc, **_YAML_OPTIONS)[len(head) :]
                    found = (text, len(text.encode()))
                new[same] = found
                parts.append(found[0])
                sizes.append(found[1])
        self._texts, self._parts, self._digest = new, sizes, _digest(keys)
        return "".join(parts)

    def record(self) -> dict[str, Any] | None:
        """What :meth:`seed` needs to take the last document's texts back from the
        bytes :meth:`dump` returned (JSON-ready); None when there is nothing to keep."""
        if not self._texts or len(self._parts) > self.MAX_RECORDED_PARTS:
            return None
        # The lengths as little-endian 32-bit integers in base64: a list of numbers was
        # 0.5 ms of JSON a write at 1,000 flags (the sidecar is read at every change).
        sizes = array(_U32, self._parts)
        if sys.byteorder == "big":
            sizes.byteswap()
        parts = base64.b64encode(sizes.tobytes()).decode()
        return {"emitter": EMITTER, "data": self._digest, "parts": parts}

    def seed(self, data: dict[str, Any], text: bytes, record: Any) -> bool:
        """Keep the texts of ``text``, a YAML file :meth:`dump` wrote with ``record``
        (its :meth:`record`, read back from the file store's sidecar, whose checksum
        says ``text`` is the file written with it), for ``data``, the plain data of the
        document decoded from ``text`` (as :func:`encode_snapshot` gives it to
        :meth:`dump`). A process's first write then emits only what it changes
        (at 1,000 flags, 85 ms of CPU emitting every flag).

        The bytes the next :meth:`dump` returns are still those of one ``dump_yaml`` of
        the whole document: ``text`` is the concatenation of the texts the emitter
        ``record`` names gave each entry of some data, cut at the lengths it lists, and
        the digest of that data equals the digest of ``data`` (what was decoded is
        exactly what was emitted: no value read back as another). Under another emitter
        (another PyYAML, another cfgcore dumper), a record that does not describe
        ``text`` (lengths that do not add up, another count of entries, a cut that is no
        entry's start) or any other doubt, nothing is kept and False is returned: the
        next dump emits every entry, as before. The record is trusted as the sidecar's
        checksum is: whoever may rewrite the sidecar may rewrite the flag file."""
        try:
            if (
                not isinstance(record, dict)
                or record.get("emitter") != EMITTER
                or type(record.get("data")) is not str
                or type(record.get("parts")) is not str
            ):
                return False
            packed = array(_U32, base64.b64decode(record["parts"], validate=True))
            if sys.byteorder == "big":
                packed.byteswap()
            sizes = packed.tolist()
            if not all(n > 0 for n in sizes) or sum(sizes) != len(text):
                return False
            flags = data.get("flags")
            if not isinstance(flags, dict) or not flags:
                return False
            keys = _entry_keys(data)
            heads = [list(data).index("flags") if "flags" in data else -1]
            if heads[0] < 0 or len(keys) + 1 != len(sizes) or record["data"] != _digest(keys):
                return False
            # each keyed entry's part: the "flags:" line takes one before the flags
            entries = [(key, i if i < heads[0] else i + 1) for i, key in enumerate(keys)]
            offsets = [0]
            for n in sizes:
                offsets.append(offsets[-1] + n)
            if any(text[offsets[i] : offsets[i + 1]] != b"flags:\n" for i in heads):
                return False
            flag_parts = heads[0] + 1, heads[0] + 1 + len(flags)
            for i in range(len(sizes)):
                # each part a whole entry: whole lines, starting at its mapping's indent
                # (a flag's at two spaces, the root's at none) and not with a complex
                # key's value line
                start = offsets[i] + (2 if flag_parts[0] <= i < flag_parts[1] else 0)
                if (
                    text[offsets[i + 1] - 1] != 0x0A
                    or text[offsets[i] : start] != b"  "[: start - offsets[i]]
                    or text[start] in b" :\n"
                ):
                    return False
            texts = {
                key: (text[offsets[i] : offsets[i + 1]].decode(), sizes[i]) for key, i in entries
            }
        except Exception:  # not this record's document after all (a text cut mid-character)
            return False
        self._texts, self._parts, self._digest = texts, list(sizes), record["data"]
        return True


def _entry_keys(data: dict[str, Any]) -> list[bytes]:
    """The key of each entry of ``data`` (a document with flags), in the order of their
    texts: its data, exactly (an int is not a float nor a bool), and its path (one
    flag's text under another name is another text). A flag is keyed by its name and
    value, an entry of the root by its name and value inside a list (another length of
    array: no flag's key)."""
    encode = _SAME.encode
    keys: list[bytes] = []
    for key, value in data.items():
        if key != "flags":
            keys.append(_entry_key(((key, value),)))
            continue
        try:
            keys += [encode(item) for item in value.items()]
        except (OverflowError, TypeError, ValueError):  # one at a time: see _entry_key
            keys += [_entry_key(item) for item in value.items()]
    return keys


def _entry_key(item: tuple[Any, ...]) -> bytes:
    try:
        return _SAME.encode(item)
    except (OverflowError, TypeError, ValueError):  # an integer past 64 bits: pickle
        return b"p" + pickle.dumps(item, protocol=5)


def _digest(keys: list[bytes]) -> str:
    """A digest of a document's data, as its entries' keys (each one MessagePack array,
    or ``p`` and a pickle: each ends where it says, so their concatenation is one
    reading)."""
    return hashlib.sha256(b"".join(keys)).hexdigest()


def encode_snapshot(
    snapshot: Snapshot,
    format: Format = "yaml",
    *,
    file: str | None = None,
    entries: YamlEntries | None = None,
) -> bytes:
    """Encode a snapshot (the inverse of :func:`decode_snapshot`). ``file``, the file the
    bytes are for, is named by a refusal (a NaN or infinity has no JSON number).
    ``entries`` (YAML only) keeps the text of each flag for the next encoding with it:
    the same bytes, emitting only what changed (:class:`YamlEntries`)."""
    if format == "msgpack":
        return encode_msgpack(snapshot, file=file)
    # A key that is not text in the document's metadata (given in Python, or read from
    # MessagePack): JSON turned 1 into "1" (the same key as a text "1" beside it) and
    # None into a bare TypeError; a YAML file held 1 and null, which it then refused.
    # Refused as the compiler refuses it (a flag's metadata is refused by the compile
    # that comes before every write).
    problem = _metadata_key_problem(snapshot, file)
    if problem is not None:
        raise SnapshotError([problem])
    data = msgspec.to_builtins(snapshot)
    data.setdefault("flags", {})  # omitted when empty, yet the decoders require it
    if format == "json":
        bad = _non_finite(data) if _may_hold_non_finite(data) else None
        if bad is not None:  # msgspec would write null: the value read back would be None
            where, value = bad
            message = (
                f"{value!r} cannot be written in JSON (no JSON number holds it); "
                "write a finite number, or keep these flags in YAML or MessagePack"
            )
            raise SnapshotError([Problem(path=where, message=message, file=file)])
        try:
            encoded = msgspec.json.encode(data)
        except TypeError:
            # a key no JSON document holds (None, True) in a snapshot never compiled
            found = _first_non_text_key(data)
            if found is None:
                raise
            raise SnapshotError([Problem(path=found[0], message=found[1], file=file)]) from None
        return msgspec.json.format(encoded, indent=2) + b"\n"
    if format == "yaml":
        # (dump_yaml escapes the line breaks PyYAML wrote raw: NEL, U+2028, U+2029.)
        if entries is not None:
            return entries.dump(data).encode()
        return dump_yaml(data, **_YAML_OPTIONS).encode()
    raise SnapshotError(f"unknown snapshot format {format!r}")
