"""A MessagePack flag document (a `.msgpack`/`.mpk` file, a Redis store's document) that
repeats a key in a map is refused naming the file and the key path, as YAML and JSON
documents are. msgspec kept the last of the two without a word, where another reader
may keep the first: a writer's bug or a hostile writer made two readers serve different
flags.

Keys repeat when they decode equal: one text under str headers of different widths,
``1``, ``1.0`` and ``True``. ``msgpack_duplicate_at`` (the compiled scan in
``_eval_scan.pxi``, the reference in ``_eval_py``) finds the first one; both must give
the same answer for any bytes, checked here over hand-made maps (against what msgspec
itself decodes), random documents and random or truncated bytes."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import platform
import struct
import subprocess
import sys

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore import Engine, load_snapshot
from cfgcore.errors import ConfigError, SnapshotError
from cfgcore.snapshot import decode_snapshot, encode_snapshot, snapshot_from_dict
from tests.conftest import IMPLS, IN_CI
from tests.fuzz import examples
from tests.waiting import wait_for

enc = msgspec.msgpack.encode


def _scanners():
    if "c" not in IMPLS and IN_CI:
        pytest.fail("the compiled extension cfgcore._eval is not built (CI=true)")
    return [mod.msgpack_scan for mod in IMPLS.values()]


def _scanned(data) -> tuple[int, int]:
    """``msgpack_scan``'s answer of every built implementation, which must agree, and
    agree with ``msgpack_duplicate_at``'s."""
    answers = {scan(data) for scan in _scanners()}
    assert len(answers) == 1, answers
    answer = answers.pop()
    assert {mod.msgpack_duplicate_at(data) for mod in IMPLS.values()} == {answer[0]}
    return answer


def _agreed(data) -> int:
    """The duplicate's offset every built implementation answers, which must agree."""
    return _scanned(data)[0]


def _decoded_items(value) -> int:
    """The items (containers, keys, values, elements) of a decoded value."""
    if isinstance(value, dict):
        return 1 + sum(_decoded_items(k) + _decoded_items(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return 1 + sum(_decoded_items(v) for v in value)
    return 1


# -- MessagePack written by hand: one value, several spellings --------------------------


def text(s: str | bytes, width: int | None = None) -> bytes:
    """A str: fixstr (width None, short text), or str 8/16/32 (width 1, 2, 4)."""
    raw = s.encode() if isinstance(s, str) else s
    if width is None:
        assert len(raw) < 32
        return bytes([0xA0 | len(raw)]) + raw
    head = {1: 0xD9, 2: 0xDA, 4: 0xDB}[width]
    return bytes([head]) + len(raw).to_bytes(width, "big") + raw


def binary(raw: bytes, width: int = 1) -> bytes:
    return bytes([{1: 0xC4, 2: 0xC5, 4: 0xC6}[width]]) + len(raw).to_bytes(width, "big") + raw


INT_FORMS = {  # head byte, struct format
    "uint8": (0xCC, ">B"), "uint16": (0xCD, ">H"), "uint32": (0xCE, ">I"), "uint64": (0xCF, ">Q"),
    "int8": (0xD0, ">b"), "int16": (0xD1, ">h"), "int32": (0xD2, ">i"), "int64": (0xD3, ">q"),
}  # fmt: skip


def integer(v: int, form: str = "fix") -> bytes:
    if form == "fix":
        assert -32 <= v <= 127
        return struct.pack(">b" if v < 0 else ">B", v)
    head, fmt = INT_FORMS[form]
    return bytes([head]) + struct.pack(fmt, v)


def int_forms(v: int) -> list[str]:
    """Every MessagePack spelling of the int ``v``."""
    out = ["fix"] if -32 <= v <= 127 else []
    for form, (_head, fmt) in INT_FORMS.items():
        try:
            struct.pack(fmt, v)
        except struct.error:
            continue
        out.append(form)
    return out


def real(x: float, single: bool = False) -> bytes:
    return b"\xca" + struct.pack(">f", x) if single else b"\xcb" + struct.pack(">d", x)


def mapping(pairs: list[tuple[bytes, bytes]], width: int | None = None) -> bytes:
    """A map of already encoded keys and values: fixmap (width None), map 16 or 32."""
    n = len(pairs)
    if width is None:
        assert n < 16
        head = bytes([0x80 | n])
    else:
        head = bytes([0xDE if width == 2 else 0xDF]) + n.to_bytes(width, "big")
    return head + b"".join(k + v for k, v in pairs)


def array(items: list[bytes]) -> bytes:
    assert len(items) < 16
    return bytes([0x90 | len(items)]) + b"".join(items)


ONE = b"\x01"


def second_key(first: bytes, again: bytes) -> tuple[bytes, int]:
    """{first: 1, again: 1}, and where ``again`` starts."""
    return mapping([(first, ONE), (again, ONE)]), 1 + len(first) + 1


# -- the scan: cases --------------------------------------------------------------------

SAME_KEYS = [
    *[(f"str {a} / {b}", text("on", a), text("on", b))
      for a in (None, 1, 2, 4) for b in (None, 1, 2, 4)],
    *[(f"1 {a} / {b}", integer(1, a), integer(1, b))
      for a in int_forms(1) for b in int_forms(1)],
    *[(f"-1 {a} / {b}", integer(-1, a), integer(-1, b)) for a in ("fix", "int8", "int64")
      for b in ("fix", "int16", "int32")],
    ("1 / 1.0", integer(1), real(1.0)),
    ("1.0 / 1 float32", real(1.0), real(1.0, single=True)),
    ("True / 1", b"\xc3", integer(1)),
    ("False / 0", b"\xc2", integer(0, "uint32")),
    ("0 / -0.0", integer(0), real(-0.0)),
    ("-1 / -1.0", integer(-1, "int16"), real(-1.0, single=True)),
    ("2**64-1 uint64 twice", integer(2**64 - 1, "uint64"), integer(2**64 - 1, "uint64")),
    ("-2**63 / -2.0**63", integer(-(2**63), "int64"), real(-(2.0**63))),
    ("2**53 / 2.0**53", integer(2**53, "uint64"), real(2.0**53)),
    ("1.5 / 1.5 float32", real(1.5), real(1.5, single=True)),
    ("inf / inf", real(math.inf), real(math.inf, single=True)),
    ("nil twice", b"\xc0", b"\xc0"),
    ("bin 8 / bin 16", binary(b"on"), binary(b"on", 2)),
    ("array twice", array([ONE, text("a")]), array([ONE, text("a")])),
    ("empty array twice", b"\x90", b"\x90"),
    ("ext twice", b"\xd4\x05\x00", b"\xd4\x05\x00"),
    ("timestamp twice", b"\xd6\xff\x00\x00\x00\x01", b"\xd6\xff\x00\x00\x00\x01"),
]  # fmt: skip

OTHER_KEYS = [
    ("str / bin of the same bytes", text("on"), binary(b"on")),
    ("on / off", text("on"), text("off")),
    ("prefix", text("on"), text("on!", 2)),
    ("1 / -1", integer(1), integer(-1)),
    ("2**64-1 / 2.0**64", integer(2**64 - 1, "uint64"), real(2.0**64)),
    ("2**63 / -2**63", integer(2**63, "uint64"), integer(-(2**63), "int64")),
    ("NaN twice", real(math.nan), real(math.nan)),
    ("1.5 / 1.25", real(1.5), real(1.25)),
    ("inf / -inf", real(math.inf), real(-math.inf)),
    ("nil / False", b"\xc0", b"\xc2"),
    ("str 1 / int 1", text("1"), integer(1)),
    ("True / 2", b"\xc3", integer(2)),
    ("two arrays", array([ONE]), array([integer(2)])),
    ("two ext types", b"\xd4\x05\x00", b"\xd4\x06\x00"),
]


@pytest.mark.parametrize(
    ("first", "again"), [c[1:] for c in SAME_KEYS], ids=[c[0] for c in SAME_KEYS]
)
def test_keys_that_decode_equal_repeat(impl, first, again):
    data, at = second_key(first, again)
    assert impl.msgpack_duplicate_at(data) == at
    assert _keys_decoded(data) in (1, None)  # what msgspec made of it: one key


@pytest.mark.parametrize(
    ("first", "again"), [c[1:] for c in OTHER_KEYS], ids=[c[0] for c in OTHER_KEYS]
)
def test_keys_that_decode_different_do_not(impl, first, again):
    data, _at = second_key(first, again)
    assert impl.msgpack_duplicate_at(data) == -1
    assert _keys_decoded(data) in (2, None)


def _keys_decoded(data: bytes) -> int | None:
    """How many keys msgspec's map holds; None where it refuses the keys (an extension
    value other than a timestamp is no dict key)."""
    try:
        return len(msgspec.msgpack.decode(data))
    except msgspec.DecodeError:
        return None


def test_keys_are_compared_within_their_map(impl):
    inner = mapping([(text("a"), ONE), (text("b"), ONE)])
    doc = mapping([(text("a"), inner), (text("b"), array([inner, inner]))])
    assert impl.msgpack_duplicate_at(doc) == -1
    assert impl.msgpack_duplicate_at(enc([{"a": 1}, {"a": 1}, {"a": {"a": {"a": 1}}}])) == -1


def test_the_first_repeated_key_in_document_order_is_named(impl):
    # a repeat in a nested map (at 7) comes before the outer map's repeat (at 13)
    nested = mapping([(text("x"), ONE), (text("x"), ONE)])
    doc = mapping([(text("a"), nested), (text("b"), ONE), (text("a", 1), ONE)])
    assert doc[7:9] == b"\xa1x" and doc[13:16] == b"\xd9\x01a"
    assert impl.msgpack_duplicate_at(doc) == 7
    # a key that is an array is read after what it holds: the repeat inside its first
    # copy (at 6) is named, not the second copy (at 10)
    key = array([mapping([(text("k"), ONE), (text("k"), ONE)])])
    doc = mapping([(key, ONE), (key, ONE)])
    assert impl.msgpack_duplicate_at(doc) == 6
    assert impl.msgpack_duplicate_at(mapping([(array([ONE]), ONE), (array([ONE]), ONE)])) == 4


@pytest.mark.parametrize("at", [1, 16, 17, 18, 300, 4999])
@pytest.mark.parametrize("width", [None, 1, 2, 4])
def test_a_repeat_in_a_large_map(impl, at, width):
    """Past 16 keys a map's keys are found through a hash table (compiled scan)."""
    names = [f"flag_{i}" for i in range(5000)]
    names.insert(at, names[at // 2 if at > 1 else 0])
    pairs = [(text(name, width), ONE) for name in names]
    pairs[at] = (text(names[at], 2), ONE)  # another width than the first spelling
    data = mapping(pairs, 2)
    offset = 3 + sum(len(k) + 1 for k, _v in pairs[:at])
    assert impl.msgpack_duplicate_at(data) == offset
    del pairs[at]
    assert impl.msgpack_duplicate_at(mapping(pairs, 4)) == -1


def test_a_million_keys(impl):
    """A hostile map of a million keys costs linear time: every key distinct, then the
    same key a million times (the reference takes a few seconds; no time is asserted)."""
    n = 1_000_000 if impl.IMPLEMENTATION == "c" else 200_000
    distinct = b"".join(text(f"k{i}") + b"\x00" for i in range(n))
    head = b"\xdf" + n.to_bytes(4, "big")
    assert impl.msgpack_duplicate_at(head + distinct) == -1
    last = len(head) + len(distinct) - len(text(f"k{n - 1}")) - 1
    again = head + distinct[: last - len(head)] + text("k0", 4) + b"\x00"
    assert impl.msgpack_duplicate_at(again) == last
    assert impl.msgpack_duplicate_at(head + (text("same") + b"\x00") * n) == 1 + 4 + 6


_PEAK_PROBE = """
from cfgcore._eval import msgpack_duplicate_at
n = 31 << 16  # keys: fixstr of 3 bytes, each with a nil value (just under 2**21)
data = bytearray(5 * n)
data[0::5] = b"\\xa3" * n
data[1::5] = bytes(a for a in range(n >> 16) for _ in range(1 << 16))
data[2::5] = bytes(b for b in range(256) for _ in range(256)) * (n >> 16)
data[3::5] = bytes(range(256)) * (n >> 8)
data[4::5] = b"\\xc0" * n
data[0:5] = b"\\xdf" + n.to_bytes(4, "big")  # a map 32 head over the first key
data += b"\\xa3\\x00\\x00\\x00\\xc0"  # ... which moves to the end
def status(field):  # KiB; VmHWM: this process's peak (ru_maxrss keeps the parent's past exec)
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field))
before = status("VmRSS")
assert msgpack_duplicate_at(data) == -1
print((status("VmHWM") - before) * 1024 / len(data))
"""


@pytest.mark.skipif(
    "c" not in IMPLS
    or sys.platform != "linux"
    or platform.libc_ver()[0] != "glibc"
    or "asan" in os.environ.get("LD_PRELOAD", ""),
    reason="the compiled scan's memory, as glibc's allocator on Linux lays it out",
)
def test_a_hostile_map_of_distinct_keys_costs_less_than_8_5_times_its_bytes():
    """A map of 2 million distinct 3-byte keys (9.7 MiB, 5 bytes a key): the compiled scan
    keeps each key in 16 bytes and indexes it in a table of 8-byte slots at most half
    full, about 7x the document at its peak. Keys took 32 bytes (about 9.9x here; a 64 MiB
    map of such keys cost 667 MiB, now 514 MiB). Measured in a process of its own."""
    out = subprocess.run([sys.executable, "-c", _PEAK_PROBE], capture_output=True, text=True,
                         timeout=300, check=True)  # fmt: skip
    assert float(out.stdout) < 8.5, out.stdout


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xc1",  # never used
        b"\x82\xa1a\x01\xd9\x01a",  # a repeat, then cut off before its value
        b"\x81\xa1a\x01\x00",  # a whole value, then a byte more
        b"\x82\xa1a\x01\xa1a\x01\x00",  # a repeat, then a byte more
        b"\xdf\xff\xff\xff\xff\xa1a",  # four billion pairs claimed
        b"\xdb\xff\xff\xff\xff",  # a str of 4 GiB claimed
        b"\xc7\x05",  # ext without its type
        b"\xcb\x00\x00",  # a float cut off
        b"\x91",  # an array without its item
    ],
)
def test_bytes_that_are_not_one_whole_value_answer_no(impl, data):
    assert impl.msgpack_duplicate_at(data) == -1


def test_nesting_up_to_the_bound_is_scanned_and_past_it_not(impl):
    repeat = mapping([(text("a"), ONE), (text("a"), ONE)])

    def nested(depth: int) -> bytes:  # `depth` maps, the innermost repeating a key
        return b"\x81\xa1x" * (depth - 1) + repeat

    assert impl.msgpack_duplicate_at(nested(1000)) == 3 * 999 + 4
    assert impl.msgpack_duplicate_at(nested(1001)) == -1
    assert impl.msgpack_duplicate_at(b"\x91" * 5000 + b"\x90") == -1


def test_buffers_are_taken_and_text_is_not(impl):
    data, at = second_key(text("a"), text("a", 4))
    for buf in (data, bytearray(data), memoryview(data)):
        assert impl.msgpack_duplicate_at(buf) == at
    for bad in (None, "\x82\xa1a"):
        with pytest.raises(TypeError):
            impl.msgpack_duplicate_at(bad)


# -- property tests: both implementations, against msgspec's own decoding ---------------


@st.composite
def spelled_keys(draw):
    """A scalar map key, as (its bytes in one of its spellings)."""
    kind = draw(st.sampled_from(["str", "int", "float", "bool", "nil", "bin"]))
    if kind == "str":
        value = draw(st.sampled_from(["a", "on", "flag", "é", "a" * 40]))
        width = draw(st.sampled_from([None, 1, 2, 4] if len(value.encode()) < 32 else [1, 2, 4]))
        return text(value, width)
    if kind == "int":
        value = draw(st.sampled_from([0, 1, -1, 2, 127, 128, -32, -33, 255, 2**63 - 1, 2**64 - 1,
                                      -(2**63)]))  # fmt: skip
        return integer(value, draw(st.sampled_from(int_forms(value))))
    if kind == "float":
        value = draw(st.sampled_from([0.0, -0.0, 1.0, 1.5, -1.0, 2.0, math.nan, math.inf,
                                      2.0**63, 2.0**64, -(2.0**63), 0.1]))  # fmt: skip
        exact = struct.unpack(">f", struct.pack(">f", value))[0]
        single = draw(st.booleans()) and (exact == value or math.isnan(value))
        return real(value, single)
    if kind == "bool":
        return draw(st.sampled_from([b"\xc2", b"\xc3"]))
    if kind == "nil":
        return b"\xc0"
    return binary(draw(st.sampled_from([b"a", b"on"])), draw(st.sampled_from([1, 2, 4])))


values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats() | st.text()
    | st.binary(max_size=8),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(max_size=4) | st.integers(-5, 5), inner, max_size=4),
    max_leaves=20,
)  # fmt: skip


# encoded values: scalars, containers (a map's keys are checked too: none repeats here)
VALUES = [ONE, b"\xc0", text("x"), text("x", 4), array([ONE, ONE]), b"\x80", b"\x90",
          mapping([(text("a"), ONE), (text("b"), ONE)]), binary(b"v", 2), real(0.5)]  # fmt: skip


@settings(max_examples=examples(400))
@given(
    keys=st.lists(spelled_keys(), max_size=40),
    vals=st.lists(st.sampled_from(VALUES), min_size=40, max_size=40),
    width=st.sampled_from([None, 2, 4]),
    prefix=st.sampled_from([b"", b"\x81\xa5flags", b"\x92\xc0"]),
)
def test_hand_made_maps_repeat_where_msgspec_loses_a_key(keys, vals, width, prefix):
    if width is None and len(keys) >= 16:
        width = 2
    pairs = list(zip(keys, vals, strict=False))
    data = prefix + mapping(pairs, width)
    # the first key msgspec would fold into an earlier one (Python's equality; a NaN
    # decodes to a new float each time and equals no key)
    expected, seen = -1, set()
    offset = len(data) - sum(len(k) + len(v) for k, v in pairs)
    for k, v in pairs:
        key = msgspec.msgpack.decode(k)
        if key in seen:
            expected = offset
            break
        seen.add(key)
        offset += len(k) + len(v)
    assert _agreed(data) == expected
    decoded = msgspec.msgpack.decode(data)
    inner = decoded if not prefix else (decoded["flags"] if prefix[0] == 0x81 else decoded[1])
    assert (len(inner) < len(pairs)) == (expected >= 0)


@settings(max_examples=examples(300))
@given(doc=values)
def test_documents_msgspec_writes_repeat_no_key(doc):
    assert _agreed(enc(doc)) == -1


@given(doc=values)
def test_the_scan_counts_the_items_decoding_makes(doc):
    raw = enc({"flags": doc, "again": [doc]})
    assert _scanned(raw) == (-1, _decoded_items(msgspec.msgpack.decode(raw)))
    assert _scanned(raw + b"\xc0") == (-1, -1)  # two values: no document
    assert _scanned(raw[:-1]) == (-1, -1)  # cut short


def test_a_document_nested_past_the_scan_is_not_counted():
    deep = b"\x91" * 1000 + b"\xc0"  # 1,000 open arrays: the scan follows
    assert _scanned(deep) == (-1, 1001)
    assert _scanned(b"\x91" + deep) == (-1, -1)  # 1,001: it does not


@settings(max_examples=examples(300))
@given(doc=values, data=st.data())
def test_cut_or_damaged_documents_agree_and_never_crash(doc, data):
    raw = enc({"flags": doc, "again": doc})
    cut = raw[: data.draw(st.integers(0, len(raw)))]
    at = data.draw(st.integers(0, max(len(raw) - 1, 0)))
    damaged = raw[:at] + bytes([data.draw(st.integers(0, 255))]) + raw[at + 1 :]
    for bytes_ in (cut, damaged, raw + raw[:1]):
        answer = _agreed(bytes_)
        assert answer == -1 or 0 < answer < len(bytes_)


@settings(max_examples=examples(300))
@given(raw=st.binary(max_size=64))
def test_random_bytes_agree_and_never_crash(raw):
    answer = _agreed(raw)
    assert answer == -1 or 0 < answer < len(raw)


# -- flag documents ---------------------------------------------------------------------


def _checkout(off_key: bytes) -> bytes:
    """{"flags": {"checkout": {"variants": {"on": true, <off_key>: false}, "default": "off"}}}"""
    variants = mapping([(text("on"), b"\xc3"), (off_key, b"\xc2")])
    flag = mapping([(text("variants"), variants), (text("default"), text("off"))])
    return mapping([(text("flags"), mapping([(text("checkout"), flag)]))])


def test_a_repeated_variant_is_refused_with_the_file_and_key_path(tmp_path):
    good = _checkout(text("off"))
    assert decode_snapshot(good, "msgpack").flags["checkout"].variants == {"on": True, "off": False}
    path = tmp_path / "flags.msgpack"
    path.write_bytes(_checkout(text("on", 1)))  # msgspec read {"on": False}
    with pytest.raises(SnapshotError) as err:
        load_snapshot(path)
    [problem] = err.value.problems
    assert problem.file == str(path)
    assert problem.path == "flags.checkout.variants.on"
    assert problem.message.startswith("duplicate key (at byte ")
    assert str(err.value).startswith(f"{path}: flags.checkout.variants.on: duplicate key")
    with pytest.raises(SnapshotError, match="flags.checkout.variants.on: duplicate key"):
        Engine.from_file(path)


ON, OFF = {"default": "on"}, {"default": "off"}
RULE = [("serve", "on"), ("serve", "off")]


@pytest.mark.parametrize(
    ("doc", "where"),
    [
        ([("flags", {"a": ON}), ("flags", {})], "flags"),
        ([("flags", {}), ("version", 1), ("version", 2)], "version"),
        ([("flags", [("a", ON), ("b", ON), ("a", OFF)])], "flags.a"),
        ([("flags", [("a", [("default", "on"), ("rules", [RULE])])])], "flags.a.rules[0].serve"),
        ([("flags", {}), ("metadata", [("owner", [("team", 1), ("team", 2)])])],
         "metadata.owner.team"),
        ([("flags", {}), ("segments", [("s", [("attr", "x"), ("attr", "y")])])], "segments.s.attr"),
    ],
)  # fmt: skip
def test_a_repeat_anywhere_in_a_document_names_its_path(doc, where):
    def build(node):
        if isinstance(node, list) and node and all(isinstance(p, tuple) for p in node):
            return mapping([(enc(k), build(v)) for k, v in node], 4)
        if isinstance(node, list):
            return bytes([0x90 | len(node)]) + b"".join(build(v) for v in node)
        return enc(node)

    with pytest.raises(SnapshotError) as err:
        decode_snapshot(build(doc), "msgpack", file="flags.mpk")
    [problem] = err.value.problems
    assert (problem.path, problem.file) == (where, "flags.mpk")
    assert "duplicate key" in problem.message


def test_the_same_document_in_json_and_msgpack_is_refused_at_the_same_path():
    json_text = '{"flags": {"checkout": {"variants": {"on": true, "on": false}, "default": "off"}}}'
    with pytest.raises(SnapshotError) as from_json:
        decode_snapshot(json_text, "json", file="f.json")
    with pytest.raises(SnapshotError) as from_msgpack:
        decode_snapshot(_checkout(text("on", 4)), "msgpack", file="f.msgpack")
    assert from_json.value.problems[0].path == from_msgpack.value.problems[0].path
    assert from_msgpack.value.problems[0].message.startswith("duplicate key")


def test_ten_thousand_flags_with_one_repeated(tmp_path):
    doc = {"flags": {f"flag_{i}": {"default": "on"} for i in range(10_000)}}
    data = encode_snapshot(snapshot_from_dict(doc), "msgpack")
    assert len(decode_snapshot(data, "msgpack").flags) == 10_000
    again = data.replace(b"\xa9flag_9999", b"\xd9\x09flag_4242", 1)
    with pytest.raises(SnapshotError) as err:
        decode_snapshot(again, "msgpack")
    assert err.value.problems[0].path == "flags.flag_4242"


def test_the_pure_python_build_refuses_the_same_way(tmp_path):
    path = tmp_path / "flags.msgpack"
    path.write_bytes(_checkout(text("on", 2)))
    probe = (
        "import sys, cfgcore; from cfgcore import load_snapshot\n"
        "assert cfgcore.IMPLEMENTATION == 'py', cfgcore.IMPLEMENTATION\n"
        "try:\n    load_snapshot(sys.argv[1])\nexcept cfgcore.ConfigError as e:\n    print(e)\n"
    )
    env = {**os.environ, "CFGCORE_NO_EXTENSIONS": "1"}
    out = subprocess.run([sys.executable, "-c", probe, str(path)], env=env, capture_output=True,
                         text=True, timeout=120, check=True)  # fmt: skip
    assert out.stdout.startswith(f"{path}: flags.checkout.variants.on: duplicate key (at byte ")


# -- the Redis fleet store --------------------------------------------------------------


@pytest.fixture
def _quiet_fleet():
    logging.getLogger("cfgcore.fleet").setLevel(logging.CRITICAL)
    yield
    logging.getLogger("cfgcore.fleet").setLevel(logging.NOTSET)


@pytest.mark.usefixtures("_quiet_fleet")
def test_a_fleet_document_repeating_a_key_is_refused_and_the_last_good_one_serves(
    redis_server, stores
):
    url = redis_server.url + "?namespace=dup&poll=0.1&cache=off"
    writer = stores(url)
    writer.update(lambda s: snapshot_from_dict({"flags": {"checkout": {"default": "off"}}}))
    follower = stores(url)
    got: list = []
    errors: list = []
    assert follower.read().snapshot.flags["checkout"].default == "off"
    follower.watch(got.append, on_error=errors.append)
    assert wait_for(lambda: follower.connected)
    # another writer's document: "checkout" twice, the second one serving "on"
    flag_off = enc({"default": "off"})
    flag_on = enc({"variants": {"on": True, "off": False}, "default": "on"})
    data = mapping([(text("flags"), mapping([(text("checkout"), flag_off),
                                             (text("checkout", 1), flag_on)]))])  # fmt: skip
    assert msgspec.msgpack.decode(data)["flags"]["checkout"]["default"] == "on"
    r = redis_server.client()
    r.hset("{dup}:flags", mapping={"version": 2, "data": data,
                                   "checksum": hashlib.sha256(data).hexdigest()})  # fmt: skip
    r.publish("{dup}:flags:changes", "2 x")
    assert wait_for(lambda: errors)
    assert "flags.checkout: duplicate key" in str(errors[0])
    assert wait_for(lambda: follower.stats["rejected"] == 1)
    assert follower.version == 1 and got == []
    with pytest.raises(ConfigError, match=r"flags\.checkout: duplicate key"):
        stores(url).read()
    # the repair: a whole document again, which the follower takes
    writer.update(lambda s: snapshot_from_dict({"flags": {"checkout": {"default": "off"}}}),
                  force=True)  # fmt: skip
    assert wait_for(lambda: got)
    assert json.loads(json.dumps(got[-1].snapshot.flags["checkout"].default)) == "off"


def test_a_published_configuration_repeating_a_key_is_refused(redis_server):
    from cfgcore.runtime.redis_store import PublishedConfig, RedisConfigStore

    url = redis_server.url + "?namespace=dupcfg&cache=off"
    with RedisConfigStore(url, "prod") as store:
        store.update(lambda _: PublishedConfig(environment="prod", config={"db": {"host": "a"}}))
        assert store.read().snapshot.config == {"db": {"host": "a"}}
        # another writer's document: db.host twice, the second one "evil"
        db = mapping([(text("host"), enc("a")), (text("host", 1), enc("evil"))])
        data = mapping([(text("environment"), enc("prod")),
                        (text("config"), mapping([(text("db"), db)]))])  # fmt: skip
        assert msgspec.msgpack.decode(data)["config"]["db"]["host"] == "evil"
        key = next(k for k in redis_server.client().keys("{dupcfg}:*") if k.endswith(b"prod"))
        redis_server.client().hset(key, mapping={"version": 2, "data": data,
                                   "checksum": hashlib.sha256(data).hexdigest()})  # fmt: skip
    with RedisConfigStore(url, "prod") as again:
        with pytest.raises(ConfigError, match=r"config\.db\.host: duplicate key"):
            again.read()
