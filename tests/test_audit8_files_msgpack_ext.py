"""A MessagePack flag document holding an extension value (a type other than the
timestamp) in its free-form parts (document or flag metadata, experiment records) is
refused with the file and key path. Decoded as a msgspec Ext object it compiled and
served, and then the document could not be written as JSON or YAML (a JSON store's
write, a guardrail stop in the store's format): a bare TypeError."""

from __future__ import annotations

import datetime

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore import Engine, load_snapshot
from cfgcore.errors import SnapshotError
from cfgcore.snapshot import decode_snapshot, encode_snapshot
from tests.fuzz import examples

Ext = msgspec.msgpack.Ext
FLAGS = {"f": {"default": "on"}}


@pytest.mark.parametrize(
    ("doc", "path"),
    [
        ({"flags": FLAGS, "metadata": {"owner": [1, Ext(5, b"xx")]}}, "metadata.owner[1]"),
        ({"flags": FLAGS, "experiments": {"t": {"since": Ext(1, b"")}}}, "experiments.t.since"),
        ({"flags": {"f": {"default": "on", "metadata": {"k": Ext(-5, b"z")}}}},
         "flags.f.metadata.k"),
    ],
)  # fmt: skip
def test_an_extension_value_is_refused_with_its_path(tmp_path, doc, path):
    flags = tmp_path / "flags.msgpack"
    flags.write_bytes(msgspec.msgpack.encode(doc))
    with pytest.raises(SnapshotError) as err:
        load_snapshot(flags)
    [problem] = err.value.problems
    assert problem.path == path and problem.file == str(flags)
    assert "MessagePack extension value" in problem.message


def test_timestamps_and_bytes_stay_accepted_and_writable():
    when = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
    doc = {"flags": FLAGS, "metadata": {"at": when, "raw": b"\x00\x01"}}
    engine = Engine.from_bytes(msgspec.msgpack.encode(doc), format="msgpack")
    assert engine.is_enabled("f", {}) is True
    snapshot = decode_snapshot(msgspec.msgpack.encode(doc), "msgpack")
    for fmt in ("json", "yaml", "msgpack"):
        assert encode_snapshot(snapshot, fmt)


@settings(max_examples=examples(40), deadline=None)
@given(
    code=st.integers(-128, 127).filter(lambda c: c != -1),
    data=st.binary(max_size=8),
    where=st.sampled_from(["metadata", "experiments", "flag"]),
)
def test_any_extension_type_anywhere_free_form_is_refused(code, data, where):
    value = {"x": [Ext(code, data)]}
    if where == "metadata":
        doc = {"flags": FLAGS, "metadata": value}
    elif where == "experiments":
        doc = {"flags": FLAGS, "experiments": {"t": value}}
    else:
        doc = {"flags": {"f": {"default": "on", "metadata": value}}}
    with pytest.raises(SnapshotError, match="extension value"):
        Engine.from_bytes(msgspec.msgpack.encode(doc), format="msgpack")
