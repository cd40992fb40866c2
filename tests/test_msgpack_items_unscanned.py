"""A MessagePack document the item scan cannot follow to its end (cut short, an invalid
byte, nested past the scan's 1,000 levels) is still held to MAX_MSGPACK_ITEMS: decoding
it would build every item before the one where the decoder stops."""

from __future__ import annotations

import sys
import tracemalloc

import msgspec
import pytest

from cfgcore import Engine
from cfgcore.errors import SnapshotError
from cfgcore.snapshot import MAX_MSGPACK_ITEMS, decode_snapshot

ITEMS = MAX_MSGPACK_ITEMS + 200_000  # empty arrays, one byte each: ~80 MB once decoded
BOMB = b"\xdd" + ITEMS.to_bytes(4, "big") + b"\x90" * ITEMS


def _document(tail: bytes, *, head: bytes = b"") -> bytes:
    """{"flags": {}, "metadata": {"x": [<head>, BOMB, <tail>]}}: the bomb, with what the
    scan stops at before or after it."""
    items = bytes([0x91 + bool(head) + bool(tail)])
    return b"\x82\xa5flags\x80\xa8metadata\x81\xa1x" + items + head + BOMB + tail


def _peak_mb(call) -> tuple[float, BaseException | None]:
    tracemalloc.start()
    try:
        call()
        raised = None
    except BaseException as exc:  # noqa: BLE001 - returned for the test to judge
        raised = exc
    finally:
        peak = tracemalloc.get_traced_memory()[1] / 1e6
        tracemalloc.stop()
    return peak, raised


@pytest.mark.parametrize(
    ("tail", "message"),
    [
        (b"\x91", "input data was truncated"),
        (b"\xc1", "invalid opcode"),
    ],
    ids=["cut-short", "invalid-byte"],
)
def test_a_broken_document_past_the_item_bound_is_refused_before_decoding(tmp_path, tail, message):
    path = tmp_path / "flags.msgpack"
    path.write_bytes(_document(tail))
    data = path.read_bytes()  # (a file read reserves its size limit a moment: not traced)
    peak, raised = _peak_mb(lambda: Engine.from_bytes(data, "msgpack", file=str(path)))
    assert isinstance(raised, SnapshotError)
    assert str(raised).startswith(f"{path}: ")
    assert message in str(raised)
    # decoding the bomb builds 1.2 million lists (~80 MB) before it meets the break
    assert peak < 30, f"{peak:.0f} MB traced"


def test_a_document_nested_past_the_scan_is_refused_before_decoding(tmp_path):
    # On CPython 3.12+ (or with a raised recursion limit) msgspec decodes nesting past
    # the 1,000 levels the scan follows.
    doc = _document(b"", head=b"\x91" * 1001 + b"\xc0")  # named at once, not after the bomb
    path = tmp_path / "flags.msgpack"
    path.write_bytes(doc)
    data = path.read_bytes()
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 5000))
    try:
        peak, raised = _peak_mb(lambda: Engine.from_bytes(data, "msgpack", file=str(path)))
    finally:
        sys.setrecursionlimit(limit)
    assert isinstance(raised, SnapshotError)
    [problem] = raised.problems
    assert problem.file == str(path)
    assert problem.path.startswith("metadata.x[0][0][0]")
    assert problem.message == "nested deeper than 100 levels"
    assert peak < 30, f"{peak:.0f} MB traced"


def test_a_broken_document_within_the_bound_is_named_by_the_decoder_as_before():
    small = b"\x82\xa5flags\x80\xa8metadata\x81\xa1x\x92\x90"
    with pytest.raises(SnapshotError, match="input data was truncated"):
        decode_snapshot(small, "msgpack", file="doc")
    whole = msgspec.msgpack.encode({"flags": {}, "metadata": {"x": [[]] * 10}})
    assert decode_snapshot(whole, "msgpack").metadata == {"x": [[]] * 10}
