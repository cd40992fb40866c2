"""MessagePack map keys that msgspec decodes to equal values of a kind that is not a
scalar: a timestamp (type -1 extension) written in its 32, 64 or 96-bit form is one
datetime, and an array key is a tuple whose items compare as they decode ([1] and
[1.0], [true] and [1], a fixarray and an array 16). msgspec keeps the last of two such
keys without a word, as of two equal strings, so the duplicate scans (compiled and
reference) must find them too; and a tuple holding a NaN equals no key (a new float
each time), whatever its bytes."""

from __future__ import annotations

import struct

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore import Engine
from cfgcore.errors import SnapshotError
from tests.conftest import IMPLS

NAN = b"\xcb" + struct.pack(">d", float("nan"))


def ts32(seconds: int) -> bytes:
    return b"\xd6\xff" + seconds.to_bytes(4, "big")


def ts64(seconds: int, nanos: int = 0) -> bytes:
    return b"\xd7\xff" + ((nanos << 34) | seconds).to_bytes(8, "big")


def ts96(seconds: int, nanos: int = 0, *, ext8: bool = True) -> bytes:
    payload = nanos.to_bytes(4, "big") + seconds.to_bytes(8, "big", signed=True)
    return (b"\xc7\x0c\xff" if ext8 else b"\xc8\x00\x0c\xff") + payload


def one(form: str) -> bytes:
    """The number one, as msgspec decodes it equal: 1, 1.0, True."""
    return {
        "fix": b"\x01",
        "uint8": b"\xcc\x01",
        "int64": b"\xd3" + (1).to_bytes(8, "big"),
        "float32": b"\xca" + struct.pack(">f", 1.0),
        "float64": b"\xcb" + struct.pack(">d", 1.0),
        "true": b"\xc3",
    }[form]


def array(items: list[bytes], wide: bool = False) -> bytes:
    head = b"\xdc" + len(items).to_bytes(2, "big") if wide else bytes([0x90 | len(items)])
    return head + b"".join(items)


def two_keys(first: bytes, again: bytes) -> bytes:
    return b"\x82" + first + b"\x01" + again + b"\x02"


SAME = {
    "ts32-ts64": (ts32(5), ts64(5)),
    "ts32-ts96": (ts32(5), ts96(5)),
    "ts64-ts96-ext16": (ts64(5, 7000), ts96(5, 7000, ext8=False)),
    "same-microsecond": (ts64(5, 1), ts64(5, 499)),  # datetime keeps microseconds
    "rounded-up": (ts32(6), ts96(5, 999_999_500)),
    "negative-seconds": (ts32(0), ts96(-1, 999_999_999)),
    "tuple-int-float": (array([one("fix")]), array([one("float64")])),
    "tuple-int-true": (array([one("uint8")]), array([one("true")])),
    "tuple-array16": (array([one("fix"), b"\xa1a"]), array([one("int64"), b"\xd9\x01a"], True)),
    "empty-tuples": (b"\x90", b"\xdc\x00\x00"),
    "nested-tuples": (array([array([one("fix")])]), array([array([one("float32")], True)])),
}


@pytest.mark.parametrize(("first", "again"), list(SAME.values()), ids=list(SAME))
def test_keys_decoded_equal_repeat(impl, first, again):
    data = two_keys(first, again)
    assert len(msgspec.msgpack.decode(data)) == 1  # msgspec folds them
    assert impl.msgpack_duplicate_at(data) == 1 + len(first) + 1


@pytest.mark.parametrize(
    ("first", "again"),
    [
        (ts32(5), ts32(6)),
        (ts64(5, 499), ts64(5, 500)),
        (array([one("fix")]), array([b"\x02"])),
        (array([NAN]), array([NAN])),  # two NaNs: two keys, whatever the bytes
    ],
    ids=["other-second", "other-microsecond", "other-tuple", "nan-tuples"],
)
def test_keys_decoded_different_do_not(impl, first, again):
    data = two_keys(first, again)
    assert len(msgspec.msgpack.decode(data)) == 2
    assert impl.msgpack_duplicate_at(data) == -1


def _key(draw_spelling: int, value: tuple) -> bytes:
    kind, x = value
    if kind == "ts":
        seconds, nanos = x
        forms = [ts96(seconds, nanos), ts96(seconds, nanos, ext8=False)]
        if nanos == 0 and seconds < 2**32:
            forms.append(ts32(seconds))
        if seconds < 2**34:
            forms.append(ts64(seconds, nanos))
        return forms[draw_spelling % len(forms)]
    forms_of_item = ["fix", "uint8", "int64", "float32", "float64", "true"]
    items = [
        one(forms_of_item[(draw_spelling + i) % len(forms_of_item)]) if item else b"\x02"
        for i, item in enumerate(x)
    ]
    return array(items, wide=bool(draw_spelling & 1))


keys = st.one_of(
    st.tuples(
        st.just("ts"), st.tuples(st.integers(0, 2**35), st.sampled_from([0, 1, 999_999_999]))
    ),
    st.tuples(st.just("tuple"), st.lists(st.booleans(), max_size=3).map(tuple)),
)


@settings(max_examples=300)
@given(values=st.lists(st.tuples(st.integers(0, 7), keys), min_size=1, max_size=12))
def test_the_scans_fold_keys_as_msgspec_does(values):
    encoded = [_key(spelling, value) for spelling, value in values]
    data = bytes([0x80 | len(encoded)]) + b"".join(k + b"\xc0" for k in encoded)
    expected, seen, offset = -1, set(), 1
    for k in encoded:
        key = msgspec.msgpack.decode(k)
        if isinstance(key, list):
            key = tuple(key)
        if key in seen:
            expected = offset
            break
        seen.add(key)
        offset += len(k) + 1
    if expected < 0:
        assert len(msgspec.msgpack.decode(data)) == len(encoded)
    answers = {name: mod.msgpack_duplicate_at(data) for name, mod in IMPLS.items()}
    assert set(answers.values()) == {expected}, answers


def test_a_flag_document_repeating_a_timestamp_key_is_refused_naming_it(tmp_path):
    head = msgspec.msgpack.encode({"flags": {"a": {"default": "on", "variants": {"on": "X"}}}})
    data = head[:-2] + two_keys(ts32(0), ts64(0))  # variants.on = {1970-01-01: 1, again: 2}
    path = tmp_path / "flags.msgpack"
    path.write_bytes(data)
    with pytest.raises(SnapshotError) as err:
        Engine.from_file(path)
    [problem] = err.value.problems
    assert problem.file == str(path)
    assert problem.path.startswith("flags.a.variants.on.")
    assert problem.message.startswith("duplicate key (at byte ")
