"""Flag and flag-set metadata read the same from every stored format.

A YAML flags file's ``since: 2024-05-01`` decoded to a date on processes reading the
file and to the text "2024-05-01" everywhere the document travels as JSON or MessagePack
(Redis followers, cache files, ``publish --flags``); OpenFeature's flag metadata then
served it on some processes and dropped it on others. Metadata now reads as stored.
"""

from __future__ import annotations

import msgspec

from cfgcore.snapshot import decode_snapshot, encode_snapshot

YAML = b"""\
metadata:
  owner: team-a
  reviewed: 2024-05-02T10:00:00Z
  window: {start: 2024-05-01, at: [2024-05-03, 12:30:00]}
flags:
  f:
    default: "off"
    metadata: {since: 2024-05-01, audit: {at: 2024-05-01T10:00:00+02:00}, n: 3, ok: true}
  g:
    default: "on"
"""


def _views(snapshot):
    return msgspec.to_builtins(snapshot.metadata), {
        k: msgspec.to_builtins(f.metadata) for k, f in snapshot.flags.items()
    }


def test_yaml_metadata_reads_as_json_and_msgpack_carry_it():
    from_yaml = decode_snapshot(YAML, "yaml")
    for fmt in ("json", "msgpack", "yaml"):
        again = decode_snapshot(encode_snapshot(from_yaml, fmt), fmt)
        assert _views(again) == _views(from_yaml), fmt
        assert again.flags["f"].metadata == from_yaml.flags["f"].metadata, fmt
        assert again.metadata == from_yaml.metadata, fmt
    assert from_yaml.flags["f"].metadata["since"] == "2024-05-01"
    assert from_yaml.flags["f"].metadata["audit"]["at"] == "2024-05-01T10:00:00+02:00"
    assert from_yaml.metadata["window"]["start"] == "2024-05-01"
    assert from_yaml.flags["f"].metadata["n"] == 3 and from_yaml.flags["f"].metadata["ok"] is True
