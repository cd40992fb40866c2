"""A MessagePack flag document is split into its flags and segments by where its scan
found their members (``msgpack_spans``, in ``_eval_scan.pxi`` and ``_eval_py``), a run
of members at a time, instead of by one msgspec call over the whole document that held
the GIL (17 ms for 25,000 flags); the scan itself lets other threads run.

Checked here over MessagePack written with every head width (fixmap, map 16 and 32;
fixstr, str 8, 16 and 32; ints of every width; bin, ext, floats): both scans give the
same answers; the spans are the bytes msgspec's own ``Raw`` split gives; and
``decode_snapshot`` (and a Redis store's decoding) gives the same Snapshot, or the same
error word for word, split or not."""

from __future__ import annotations

import struct
import threading
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cfgcore.snapshot as snapshot_module
from cfgcore._compat import IMPLEMENTATION
from cfgcore.errors import SnapshotError
from cfgcore.runtime.redis_store import RedisFlagStore
from cfgcore.snapshot import Flag, Snapshot, decode_snapshot, encode_snapshot
from tests.conftest import IMPLS, IN_CI
from tests.fuzz import examples

Raw = msgspec.Raw


def _impls():
    if "c" not in IMPLS and IN_CI:
        pytest.fail("the compiled extension cfgcore._eval is not built (CI=true)")
    return list(IMPLS.values())


def _spans(data):
    """``msgpack_spans``'s answer, which every built implementation must give alike,
    and whose first two parts are ``msgpack_scan``'s."""
    answers = [mod.msgpack_spans(data) for mod in _impls()]
    assert all(a == answers[0] for a in answers), answers
    answer = answers[0]
    assert {mod.msgpack_scan(data) for mod in _impls()} == {answer[:2]}
    return answer


# -- MessagePack written by hand, every head width --------------------------------------


def head(kind: str, n: int, width: int | None) -> bytes:
    """The head of a map, array, str or bin of ``n`` items (bytes): the fix form (width
    None), or the 8-, 16- or 32-bit one (width 1, 2, 4)."""
    fix = {"map": (0x80, 16), "array": (0x90, 16), "str": (0xA0, 32)}
    wide = {"map": {2: 0xDE, 4: 0xDF}, "array": {2: 0xDC, 4: 0xDD},
            "str": {1: 0xD9, 2: 0xDA, 4: 0xDB}, "bin": {1: 0xC4, 2: 0xC5, 4: 0xC6}}  # fmt: skip
    if width is None and kind in fix and n < fix[kind][1]:
        return bytes([fix[kind][0] | n])
    widths = wide[kind]
    if width not in widths or n >= 1 << (8 * width):
        width = next(w for w in sorted(widths) if n < 1 << (8 * w))
    return bytes([widths[width]]) + n.to_bytes(width, "big")


widths = st.sampled_from([None, 1, 2, 4])


# text (surrogates can be written, not read: a few strings are made invalid below)
chars = st.characters(blacklist_categories=("Cs",))


@st.composite
def text(draw, value=None) -> bytes:
    raw = (draw(st.text(chars, max_size=6)) if value is None else value).encode()
    if draw(st.integers(0, 300)) == 150:  # (rare: hypothesis draws the bounds often)
        raw += b"\xff"  # not UTF-8
    return head("str", len(raw), draw(widths)) + raw


def _int(v: int, fmt: str, first: int) -> bytes:
    return bytes([first]) + struct.pack(fmt, v)


INTS = [(">B", 0xCC, 0, 2**8 - 1), (">H", 0xCD, 0, 2**16 - 1), (">I", 0xCE, 0, 2**32 - 1),
        (">Q", 0xCF, 0, 2**64 - 1), (">b", 0xD0, -(2**7), 2**7 - 1),
        (">h", 0xD1, -(2**15), 2**15 - 1), (">i", 0xD2, -(2**31), 2**31 - 1),
        (">q", 0xD3, -(2**63), 2**63 - 1)]  # fmt: skip

integers = st.one_of(
    st.integers(0, 127).map(lambda v: bytes([v])),
    st.integers(-32, -1).map(lambda v: struct.pack(">b", v)),
    st.sampled_from(INTS).flatmap(
        lambda t: st.integers(t[2], t[3]).map(lambda v: _int(v, t[0], t[1]))
    ),
)
floats = st.one_of(
    st.floats(width=32).map(lambda x: b"\xca" + struct.pack(">f", x)),
    st.floats().map(lambda x: b"\xcb" + struct.pack(">d", x)),
)
binaries = st.builds(
    lambda raw, w: head("bin", len(raw), w or 1) + raw, st.binary(max_size=6), widths
)
extensions = st.one_of(
    st.builds(
        lambda t, size, fill: bytes([0xD4 + size, t & 0xFF]) + fill * (1 << size),
        st.integers(-128, 127), st.integers(0, 4), st.sampled_from([b"\x00", b"\x07"]),
    ),
    st.builds(
        lambda t, raw, w: bytes([{1: 0xC7, 2: 0xC8, 4: 0xC9}[w]])
        + len(raw).to_bytes(w, "big") + bytes([t & 0xFF]) + raw,
        st.integers(-128, 127), st.binary(max_size=6), st.sampled_from([1, 2, 4]),
    ),
    st.just(b"\xd6\xff\x00\x00\x00\x01"),  # a timestamp
)  # fmt: skip
scalars = st.one_of(
    text(), integers, floats, binaries, extensions, st.sampled_from([b"\xc0", b"\xc2", b"\xc3"])
)


def _map(pairs: list[tuple[bytes, bytes]], width) -> bytes:
    return head("map", len(pairs), width) + b"".join(k + v for k, v in pairs)


keys = st.one_of(text(), text(), text(), integers, binaries, st.sampled_from([b"\xc0", b"\xc3"]))
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.builds(lambda items, w: head("array", len(items), w) + b"".join(items),
                  st.lists(inner, max_size=4), widths),
        st.builds(_map, st.lists(st.tuples(keys, inner), max_size=4), widths),
    ),
    max_leaves=12,
)  # fmt: skip

# Flags that decode, in several spellings: msgspec's own, and one with wider heads.
GOOD_FLAGS = [
    msgspec.msgpack.encode({"default": "off"}),
    msgspec.msgpack.encode({"variants": {"a": 1, "b": [1, 2]}, "default": "a"}),
    _map([(head("str", 7, 2) + b"default", head("str", 2, 4) + b"on")], 4),
    msgspec.msgpack.encode({"default": "on", "rules": [{"when": {"attr": "x", "eq": 1}}]}),
    msgspec.msgpack.encode({"default": "on", "rules": [{"when": {"segment": "s"}}]}),
]
GOOD_SEGMENTS = [
    msgspec.msgpack.encode({"attr": "country", "in": ["DE", "FR"]}),
    _map([(head("str", 4, 1) + b"attr", head("str", 1, 2) + b"x"), (b"\xa2eq", b"\x05")], 2),
]


def _mostly(good: list[bytes]) -> st.SearchStrategy[bytes]:
    return st.integers(0, 49).flatmap(lambda i: values if i == 25 else st.sampled_from(good))


flag_values = _mostly(GOOD_FLAGS)
segment_values = _mostly(GOOD_SEGMENTS)


@st.composite
def section(draw, good) -> bytes:
    """A "flags" or "segments" value: mostly a map (str keys, some of another type)."""
    if draw(st.integers(0, 9)) == 5:
        return draw(values)  # not a map, mostly
    names = draw(st.lists(st.text(chars, min_size=1, max_size=4), max_size=20, unique=True))
    pairs = [(draw(text(name)), draw(good)) for name in names]
    if pairs and draw(st.integers(0, 15)) == 7:
        pairs.insert(draw(st.integers(0, len(pairs))), (draw(keys), draw(good)))
    return _map(pairs, draw(widths))


def _map_of(inner: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    return st.builds(_map, st.lists(st.tuples(text(), inner), max_size=4), widths)


EXTRA = [("version", st.one_of(st.just(b"\x01"), st.just(b"\xcd\x00\x01"), integers, text())),
         ("metadata", st.one_of(_map_of(values), values)),
         ("experiments", st.one_of(st.just(b"\x80"), values)),
         ("owner", values)]  # fmt: skip


@st.composite
def documents(draw) -> bytes:
    """A flag document (or not quite one), written with heads of every width."""
    if draw(st.integers(0, 19)) == 10:
        return draw(values)  # not a map, mostly
    members = []
    if draw(st.booleans()) or draw(st.booleans()):
        members.append((draw(text("flags")), draw(section(flag_values))))
    if draw(st.booleans()):
        members.append((draw(text("segments")), draw(section(segment_values))))
    for name, value in EXTRA:
        if draw(st.integers(0, 3 if name != "owner" else 15)) == 2:
            members.append((draw(text(name)), draw(value)))
    if draw(st.integers(0, 15)) == 7:
        members.append((draw(keys), draw(values)))  # any key
    order = draw(st.permutations(range(len(members))))
    doc = _map([members[i] for i in order], draw(widths))
    if draw(st.integers(0, 15)) == 7:  # cut short, or followed by a byte
        doc = doc[: draw(st.integers(0, len(doc)))] if draw(st.booleans()) else doc + b"\x00"
    return doc


# -- the spans: both scans, and msgspec's own split --------------------------------------


def _members(data: bytes, spans) -> list[tuple[bytes, bytes]]:
    out = []
    for i in range(0, len(spans), 4):
        key_start, key_end, value_start, value_end = spans[i : i + 4]
        assert key_end == value_start
        out.append((data[key_start:key_end], data[value_start:value_end]))
    return out


def _msgspec_split(data: bytes) -> list[tuple[object, bytes]] | None:
    """The members of the map ``data`` as msgspec splits them (key decoded, value's
    bytes), or None where msgspec does not (a key it cannot hold)."""
    try:
        decoded = msgspec.msgpack.decode(data, type=dict[Any, Raw])
    except (msgspec.DecodeError, msgspec.ValidationError, TypeError, ValueError):
        return None
    return [(key, bytes(raw)) for key, raw in decoded.items()]


def _same_members(expected: list[tuple[object, bytes]], members: list[tuple[bytes, bytes]]) -> None:
    """``members`` (key bytes, value bytes) are msgspec's split ``expected``."""
    assert len(expected) == len(members)
    for (key, value), (key_bytes, value_bytes) in zip(expected, members, strict=True):
        assert value_bytes == value
        got = msgspec.msgpack.decode(key_bytes)
        assert got == key or (got != got and key != key)  # (a NaN key)


def _section_name(key_bytes: bytes) -> bytes | None:
    """The text of a str key (b"flags"), or None for a key of another type."""
    first = key_bytes[0]
    size = 1 if 0xA0 <= first <= 0xBF else {0xD9: 2, 0xDA: 3, 0xDB: 5}.get(first)
    return None if size is None else key_bytes[size:]


def _is_map(value: bytes) -> bool:
    return value[0] in (0xDE, 0xDF) or 0x80 <= value[0] <= 0x8F


@settings(max_examples=examples(400), suppress_health_check=[HealthCheck.too_slow])
@given(documents())
def test_both_scans_agree_and_the_spans_are_msgspecs_split(doc):
    duplicate, items, spans = _spans(doc)
    if spans is None:
        return
    assert duplicate == -1 and items > 0 and _is_map(doc)
    others, flags, segments = spans
    kept = _members(doc, others)
    assert all(_section_name(key) not in (b"flags", b"segments") for key, _ in kept)
    top = _msgspec_split(doc)
    if top is None:
        return  # a key msgspec cannot hold
    sections = {key: value for key, value in top if key in ("flags", "segments")}
    # the others: the top-level members but these two, in order
    _same_members([(k, v) for k, v in top if k not in sections], kept)
    for name, found in (("flags", flags), ("segments", segments)):
        assert (found is not None) == (name in sections)
        if found is not None:
            assert _is_map(sections[name])
            inner = _msgspec_split(sections[name])
            if inner is not None:
                _same_members(inner, _members(doc, found))


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        # {"flags": {"a": nil}, "a": 1}
        (bytes.fromhex("82 a5666c616773 81a161c0 a161 01"),
         ([11, 13, 13, 14], [8, 10, 10, 11], None)),
        # str 16 "segments", map 16 of one member, str 8 key
        (b"\x81\xda\x00\x08segments\xde\x00\x01\xd9\x01s\x90", ([], None, [15, 18, 18, 19])),
        (b"\x80", ([], None, None)),  # no members
        (b"\x81\xa5flags\x80", ([], [], None)),  # no flags
        (b"\x81\xc4\x05flags\x80", ([1, 8, 8, 9], None, None)),  # bytes, not the str
    ],
)  # fmt: skip
def test_spans_by_hand(impl, doc, expected):
    duplicate, _items, spans = impl.msgpack_spans(doc)
    assert duplicate == -1
    got = tuple(None if part is None else list(part) for part in spans)
    assert got == expected


@pytest.mark.parametrize(
    "doc",
    [
        b"\x91\x80",  # an array
        b"\x81\xa5flags\x90",  # flags not a map
        b"\x81\xa5flags\xc0",
        b"\x82\xa5flags\x80\xd9\x05flags\x80",  # flags twice (one text, two widths)
        b"\x81\xa5flags\x81\xa1a",  # cut short
        b"\x81\xa5flags\x80\x00",  # a byte after it
        b"\xc1",
    ],
)
def test_no_spans_for_anything_unexpected(impl, doc):
    assert impl.msgpack_spans(doc)[2] is None


def _nested(depth: int) -> bytes:
    """{"flags": {"f": {"variants": {"v": [[...[1]...]]}, "default": "v"}}}: ``depth``
    containers in all."""
    inner = b"\x01"
    for _ in range(depth - 4):
        inner = b"\x91" + inner
    flag = b"\x82\xa8variants\x81\xa1v" + inner + b"\xa7default\xa1v"
    return b"\x81\xa5flags\x81\xa1f" + flag


def test_spans_only_for_documents_nested_at_most_256_deep(impl):
    assert impl.msgpack_spans(_nested(256))[2] is not None
    assert impl.msgpack_spans(_nested(257))[2] is None
    assert impl.msgpack_spans(_nested(257))[:2] == impl.msgpack_scan(_nested(257))


def test_other_buffers_give_the_same_answers(impl):
    doc = encode_snapshot(
        Snapshot(flags={f"f{i}": Flag(default="on") for i in range(40)}), "msgpack"
    )
    answer = impl.msgpack_spans(doc)
    assert answer[2] is not None and len(answer[2][1]) == 4 * 40
    assert impl.msgpack_spans(bytearray(doc)) == answer
    assert impl.msgpack_spans(memoryview(doc)) == answer
    assert impl.msgpack_scan(memoryview(doc)) == answer[:2]


def test_scans_on_several_threads_at_once(impl):
    """The compiled scan of bytes runs with the GIL released, and its kept buffers serve
    one scan at a time: scans racing on threads (and one of a bytearray, the GIL held)
    each give their own document's answer."""
    docs = [
        encode_snapshot(Snapshot(flags={f"f{i}": Flag(default="on") for i in range(n)}), "msgpack")
        for n in (3, 300, 3000)
    ]
    docs.append(b"\x82\xa1a\x01\xa1a\x02")  # a repeated key
    expected = [impl.msgpack_spans(doc) for doc in docs]
    failures = []

    def run(k: int) -> None:
        for r in range(30):
            i = (k + r) % len(docs)
            data = docs[i] if (k + r) % 3 else bytearray(docs[i])
            if impl.msgpack_spans(data) != expected[i]:
                failures.append(i)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    assert expected[3][0] == 4 and expected[3][2] is None


# -- decoding: the same Snapshot or the same error, split or not --------------------------


def _outcome(decode, doc):
    try:
        return "ok", msgspec.msgpack.encode(decode(doc))  # (a NaN equal to itself)
    except SnapshotError as exc:
        return "error", (str(exc), [(p.path, p.message, p.file) for p in exc.problems])


def _both(monkeypatch, decode, doc):
    split = _outcome(decode, doc)
    monkeypatch.setattr(snapshot_module, "MSGPACK_SPLIT", False)
    try:
        whole = _outcome(decode, doc)
    finally:
        monkeypatch.setattr(snapshot_module, "MSGPACK_SPLIT", True)
    return split, whole


def _sections(top) -> bytes:
    return msgspec.msgpack.encode(top)  # (the dicts in order; a NaN equal to itself)


@settings(max_examples=examples(400), suppress_health_check=[HealthCheck.too_slow])
@given(documents(), st.sampled_from([(1024, 512 * 1024), (3, 1 << 20), (1000, 40)]))
def test_the_split_takes_what_the_whole_decode_takes(doc, runs):
    """Split by the spans (in runs of members and bytes), a document decodes, in the same
    order, to what msgspec's decode of the whole gives, and fails where that fails."""
    spans = _spans(doc)[2]
    if spans is None:
        return
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(snapshot_module, "SPLIT_MEMBERS", runs[0])
        mp.setattr(snapshot_module, "SPLIT_BYTES", runs[1])
        try:
            whole = msgspec.msgpack.decode(doc, type=snapshot_module._RawSnapshot)
        except (msgspec.DecodeError, msgspec.ValidationError):
            with pytest.raises(Exception):  # noqa: B017, PT011 - whichever: decoded whole then
                snapshot_module._split_by_spans(doc, spans)
            return
        split = snapshot_module._split_by_spans(doc, spans)
    assert _sections(split) == _sections(whole)


@settings(max_examples=examples(300), suppress_health_check=[HealthCheck.too_slow,
          HealthCheck.function_scoped_fixture])  # fmt: skip
@given(documents())
def test_decode_snapshot_is_the_same_split_or_not(monkeypatch, doc):
    split, whole = _both(
        monkeypatch, lambda d: decode_snapshot(d, "msgpack", file="f.msgpack"), doc
    )
    assert split == whole


@settings(max_examples=examples(150), suppress_health_check=[HealthCheck.too_slow,
          HealthCheck.function_scoped_fixture])  # fmt: skip
@given(documents())
def test_a_redis_stores_decoding_is_the_same_split_or_not(monkeypatch, doc):
    def decode(data):
        store = RedisFlagStore.__new__(RedisFlagStore)  # only its decoding stage
        store._decoded = ({}, None)
        try:
            return store._decode(data, "redis://x")
        except SnapshotError:
            raise
        except Exception as exc:  # ConfigError and kin: as a SnapshotError's parts
            raise SnapshotError(f"{type(exc).__name__}: {exc}") from None

    split, whole = _both(monkeypatch, decode, doc)
    assert split == whole


def _good_document(n: int, **extra) -> Snapshot:
    flags = {
        f"flag_{i:04d}": Flag(variants={"on": True, "off": False}, default="on") for i in range(n)
    }
    return Snapshot(flags=flags, **extra)


@pytest.mark.parametrize("n", [0, 1, 15, 16, 1023, 1024, 1025, 5000])
def test_a_document_splits_into_runs_as_it_decodes_whole(monkeypatch, n):
    """Runs of members (SPLIT_MEMBERS, SPLIT_BYTES) split a document at their bounds
    as decoding it whole does, in its order."""
    monkeypatch.setattr(snapshot_module, "SPLIT_BYTES", 4000)  # a run by bytes too
    doc = encode_snapshot(_good_document(n, metadata={"owner": "x"}), "msgpack")
    spans = _spans(doc)[2]
    assert spans is not None
    split = snapshot_module._split_msgpack(doc, spans)
    whole = msgspec.msgpack.decode(doc, type=snapshot_module._RawSnapshot)
    assert list(split.flags) == list(whole.flags)
    assert [bytes(r) for r in split.flags.values()] == [bytes(r) for r in whole.flags.values()]
    assert (split.metadata, split.version) == (whole.metadata, whole.version) == ({"owner": "x"}, 1)
    split_, whole_ = _both(monkeypatch, lambda d: decode_snapshot(d, "msgpack"), doc)
    assert split_ == whole_ and split_[0] == "ok"
    assert len(decode_snapshot(doc, "msgpack").flags) == n


def test_a_bad_flag_in_a_later_run_is_named_as_before(monkeypatch):
    doc = encode_snapshot(_good_document(3000), "msgpack")
    bad = doc.replace(b"\xa9flag_2500", b"\xa9flag_25\xff0")  # not UTF-8
    split, whole = _both(monkeypatch, lambda d: decode_snapshot(d, "msgpack"), bad)
    assert split == whole and split[0] == "error" and "utf-8" in split[1][0].lower()
    keyed = doc.replace(b"\xa9flag_2500", b"\xc4\x09flag_2500")  # bytes for a key
    split, whole = _both(monkeypatch, lambda d: decode_snapshot(d, "msgpack"), keyed)
    assert split == whole and split[0] == "error" and "got bytes (a key)" in split[1][0]


def test_a_redis_store_still_reuses_unchanged_flags():
    store = RedisFlagStore.__new__(RedisFlagStore)  # only its decoding stage
    store._decoded = ({}, None)
    before = _good_document(2000)
    one = store._decode(encode_snapshot(before, "msgpack"), "x")
    flags = dict(before.flags)
    flags["flag_1500"] = Flag(default="off")
    two = store._decode(encode_snapshot(Snapshot(flags=flags), "msgpack"), "x")
    assert two.flags["flag_0003"] is one.flags["flag_0003"]
    assert two.flags["flag_1999"] is one.flags["flag_1999"]
    assert two.flags["flag_1500"] is not one.flags["flag_1500"]
    assert two.flags["flag_1500"].default == "off"
    assert list(two.flags) == list(flags)


@pytest.mark.skipif(IMPLEMENTATION != "c", reason="the reference's scan gives no spans")
def test_the_split_is_used():
    """A document the scan gives spans for is not decoded whole (the switch is not
    dead code): msgspec's whole decode is not called."""
    doc = encode_snapshot(_good_document(50), "msgpack")
    calls = []
    real = snapshot_module.msgspec.msgpack.decode

    def counting(data, *args, **kwargs):
        calls.append(len(data))
        return real(data, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(snapshot_module.msgspec.msgpack, "decode", counting)
        snap = decode_snapshot(doc, "msgpack")
    assert len(snap.flags) == 50 and len(doc) not in calls
