"""Seventh audit of the snapshot encoder: a value JSON cannot hold is refused, not
written as null.

``encode_snapshot(snapshot, "json")`` wrote a NaN or an infinity (a variant value such
as an A/B test configuration's ``{"threshold": float("inf")}``, metadata, an
experiment record) as ``null``: a JSON flag file's store update succeeded, and the flag
served None from then on. The encoder now refuses such a value with its key path and
the store keeps the file as it was; YAML and MessagePack, which hold it, still do.
"""

from __future__ import annotations

import math

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.errors import SnapshotError
from cfgcore.runtime.flagstore import FileFlagStore
from cfgcore.snapshot import Snapshot, decode_snapshot, encode_snapshot, snapshot_from_dict
from tests.fuzz import examples


def _with_value(value) -> Snapshot:
    return snapshot_from_dict(
        {"flags": {"f": {"variants": {"a": {"limits": [1, value]}, "b": 2}, "default": "a"}}}
    )


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
def test_a_json_flag_file_update_with_a_non_finite_value_is_refused_and_kept(tmp_path, value):
    path = tmp_path / "flags.json"
    path.write_text('{"flags": {"f": {"default": "on"}}}\n')
    store = FileFlagStore(path)
    before = path.read_bytes()
    with pytest.raises(SnapshotError) as info:
        store.update(lambda old: _with_value(value))
    (problem,) = info.value.problems
    assert problem.path == "flags.f.variants.a.limits[1]"
    assert problem.message.startswith(f"{value!r} cannot be written in JSON")
    assert path.read_bytes() == before  # nothing written: the old document stays
    assert store.read().snapshot.flags["f"].default == "on"


@pytest.mark.parametrize("fmt", ["yaml", "msgpack"])
def test_formats_that_hold_it_still_round_trip(fmt):
    snapshot = _with_value(math.inf)
    back = decode_snapshot(encode_snapshot(snapshot, fmt), fmt)
    assert back.flags["f"].variants["a"]["limits"][1] == math.inf


finite = st.floats(allow_nan=False, allow_infinity=False)
values = st.recursive(
    st.one_of(finite, st.integers(-(2**63), 2**63 - 1), st.text(max_size=3), st.none()),
    lambda kids: st.one_of(
        st.lists(kids, max_size=3), st.dictionaries(st.text(max_size=3), kids, max_size=3)
    ),
    max_leaves=10,
)


@settings(max_examples=examples(100), deadline=None)
@given(values, st.sampled_from([math.inf, -math.inf, math.nan]), st.data())
def test_any_non_finite_number_anywhere_is_named_and_finite_ones_round_trip(value, bad, data):
    """Finite documents read back equal; one non-finite number placed anywhere in a
    value is refused at its path (metadata and experiment records included)."""
    where = data.draw(st.sampled_from(["variants", "metadata", "experiments"]))

    def document(v):
        doc: dict = {"flags": {"f": {"default": "a", "variants": {"a": 1}}}}
        if where == "variants":
            doc["flags"]["f"]["variants"]["a"] = v
            return doc, "flags.f.variants.a"
        if where == "metadata":
            doc["flags"]["f"]["metadata"] = {"m": v}
            return doc, "flags.f.metadata.m"
        doc["experiments"] = {"t": v}
        return doc, "experiments.t"

    doc, _ = document(value)
    snapshot = snapshot_from_dict(doc)
    back = decode_snapshot(encode_snapshot(snapshot, "json"), "json")
    assert msgspec.json.encode(back) == msgspec.json.encode(snapshot)
    doc, path = document([value, bad])
    with pytest.raises(SnapshotError) as info:
        encode_snapshot(snapshot_from_dict(doc), "json")
    assert info.value.problems[0].path == f"{path}[1]"
