"""Review of the seventh audit: the JSON encoder's refusal of a NaN or infinity (4247f5e)
can name the file it was writing.

A FileFlagStore update of a JSON flag file holding ``inf`` was refused as
``flags.g.variants.a.t: inf cannot be written in JSON ...``: the key path, but not which
file, unlike every other refusal of a flag document. ``encode_snapshot`` takes the file
the bytes are for (``file=``) and names it; without it the message is as before.
"""

from __future__ import annotations

import pytest

from cfgcore.errors import SnapshotError
from cfgcore.snapshot import Flag, Snapshot, encode_snapshot

SNAPSHOT = Snapshot(flags={"g": Flag(variants={"a": {"t": float("inf")}}, default="a")})
MESSAGE = (
    "flags.g.variants.a.t: inf cannot be written in JSON (no JSON number holds it); "
    "write a finite number, or keep these flags in YAML or MessagePack"
)


def test_the_refusal_names_the_file_given():
    with pytest.raises(SnapshotError) as info:
        encode_snapshot(SNAPSHOT, "json", file="/srv/flags.json")
    assert str(info.value) == f"/srv/flags.json: {MESSAGE}"
    assert [p.file for p in info.value.problems] == ["/srv/flags.json"]


def test_without_a_file_the_refusal_is_unchanged():
    with pytest.raises(SnapshotError) as info:
        encode_snapshot(SNAPSHOT, "json")
    assert str(info.value) == MESSAGE


@pytest.mark.parametrize("fmt", ["yaml", "msgpack"])
def test_formats_holding_the_number_take_the_file_and_encode(fmt):
    assert encode_snapshot(SNAPSHOT, fmt, file="flags." + fmt)
