"""Nothing half-written goes live (issue 10, item 1).

A flag file cut off anywhere (a truncated copy, a write still in progress) is either
refused, or every flag it contains evaluates exactly as in the complete file. An
incomplete flag definition is a compile error, never a different flag.
"""

from __future__ import annotations

import itertools
import random
from pathlib import Path

import pytest

from cfgcore.engine import bundled_flags_path, engine_class
from cfgcore.errors import SnapshotError
from cfgcore.snapshot import decode_snapshot, encode_snapshot

FULL = Path(bundled_flags_path()).read_bytes()
_SEGMENTS = ["premium", "family", "student", "free", None]
CONTEXTS = [
    {"user_id": str(i), "user_segment": seg, "region": region}
    for i, (seg, region) in enumerate(list(itertools.product(_SEGMENTS, ["EU", "UK", "US"])) * 4)
]


def _cuts() -> list[int]:
    lines = [i + 1 for i, byte in enumerate(FULL) if byte == ord("\n")]
    sampled = random.Random(20261201).sample(range(1, len(FULL)), 400)
    return sorted({0, *lines, *sampled})


def test_every_truncation_is_refused_or_identical(impl):
    cls = engine_class(impl)
    full = cls.from_bytes(FULL)
    accepted = 0
    for cut in _cuts():
        try:
            engine = cls.from_bytes(FULL[:cut], file=f"flags.yaml[:{cut}]")
        except SnapshotError:
            continue
        accepted += 1
        for key in engine.snapshot().keys:
            for ctx in CONTEXTS:
                assert engine.evaluate(key, ctx) == full.evaluate(key, ctx), (cut, key, ctx)
    # cuts between two complete flags are accepted: the check above saw real files
    assert accepted >= len(full.snapshot().keys) - 1


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("flags:\n  f:\n", "flags.f: expected object, got null"),
        ("flags:\n  f: {}\n", "flags.f.default: missing"),
        ("flags:\n  f:\n    description: cut here\n", "flags.f.default: missing"),
        ("flags:\n  f:\n    default:\n", "flags.f.default: missing"),
        ("flags:\n  f:\n    variants: {a: 1}\n    default: b\n", "f.default: unknown variant"),
        ("flags:\n  f:\n    rules:\n      - when: {attr: x, eq: 1}\n    default: 'off'\n",
         "flags.f.rules[0].serve: missing variant name"),
        ("flags:\n  f:\n    rules:\n      - rollout: 25\n    default: 'off'\n",
         "flags.f.rules[0].serve: missing variant name"),
        ("flags:\n  f:\n    variants: {a: 1, b: 2}\n    rules:\n      - split: {a: 50}\n"
         "    default: a\n", "flags.f.rules[0].split: weights sum to 50"),
        ("version: 1\nsegments:\n  s: {attr: x, eq: 1}\n", "flags: missing"),
        ("version: 1\n", "flags: missing"),
        ("flags:\n", "flags: expected object, got null"),
    ],
)  # fmt: skip
def test_incomplete_definitions_are_compile_errors(impl, text, fragment):
    cls = engine_class(impl)
    with pytest.raises(SnapshotError) as err:
        cls.from_bytes(text, file="flags.yaml")
    assert fragment in str(err.value)
    assert "flags.yaml" in str(err.value)


def test_json_without_flags_key_is_refused_and_encoders_always_write_it():
    with pytest.raises(SnapshotError, match="flags: missing"):
        decode_snapshot(b'{"version": 1, "segments": {}}', "json", file="flags.json")
    empty = decode_snapshot(b"flags: {}\n", "yaml")
    for fmt in ("yaml", "json", "msgpack"):
        assert decode_snapshot(encode_snapshot(empty, fmt), fmt) == empty
