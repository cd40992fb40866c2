"""Review of the seventh audit: a number past a float's range in a JSON flag file is named
by its key path and line, as bf39022 names a NaN and fa075b3 a duplicate key.

msgspec refuses ``1e400`` as "number out of range" at a path where the keys of an object
are left out: ``flags.json: flags.f.variants[...][...][1]: number out of range`` named
neither the variant nor the key, nor the line, in a file where bf39022 now names
``Infinity`` exactly. The token scan names it.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.errors import SnapshotError
from cfgcore.snapshot import decode_snapshot
from tests.fuzz import examples

CASES = {
    b'{"flags": {"f": {"default": "a",\n "variants": {"a": {"x": [1, 1e400]}}}}}': (
        "flags.json:2: flags.f.variants.a.x[1]: number out of range (1e400)"
    ),
    b'{"flags": {"f": {"default": "a",\n\n "metadata": {"a": -1E+400}}}}': (
        "flags.json:3: flags.f.metadata.a: number out of range (-1E+400)"
    ),
    b'{"flags": {"f": {"default": "a", "rules": [{"serve": "a", "split": {"a": 1e400}}]}}}': (
        "flags.json:1: flags.f.rules[0].split.a: number out of range (1e400)"
    ),
    b'{"flags": {"f": {"default": "a", "variants": {"a": 1}},\n'
    b' "g": {"default": "x", "variants": {"x": [1e999]}}}}': (
        "flags.json:2: flags.g.variants.x[0]: number out of range (1e999)"
    ),
}


@pytest.mark.parametrize("data", sorted(CASES))
def test_an_out_of_range_number_is_named_by_its_key_path_and_line(data):
    with pytest.raises(SnapshotError) as info:
        decode_snapshot(data, "json", file="flags.json")
    assert str(info.value) == CASES[data] + ": write one within about ±1.8e308"


def test_other_problems_are_kept_beside_it():
    data = b'{"flags": {"f": {"default": 3}, "g": {"default": "a", "variants": {"a": 1e400}}}}'
    with pytest.raises(SnapshotError) as info:
        decode_snapshot(data, "json", file="flags.json")
    text = str(info.value)
    assert "flags.f.default: expected str" in text
    assert "flags.g.variants.a: number out of range (1e400)" in text


@settings(max_examples=examples(60), deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_finite_numbers_still_read_as_written(x):
    data = f'{{"flags": {{"f": {{"default": "a", "variants": {{"a": {x!r}}}}}}}}}'.encode()
    assert decode_snapshot(data, "json").flags["f"].variants == {"a": x}
