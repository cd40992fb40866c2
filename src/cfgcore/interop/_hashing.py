"""The peers' bucketing hashes in plain Python.

These are the reference definitions of the bucketing schemes that imported flags
use (``cfgcore.snapshot.Hashing``); both evaluators implement the same arithmetic
and the tests compare them with these functions and with the peers' own SDKs.
Every formula here is a documented fact of the source system, named at each
function; no peer code is copied.
"""

from __future__ import annotations

import math
import struct
from typing import Any

from cfgcore._eval_py import murmur3_32

__all__ = [
    "cbor_encode",
    "flagd_bucket_v2",
    "fnv1a32",
    "growthbook_hash",
    "murmur3_32",
    "unleash_normalized",
    "unleash_variant_target",
]

UNLEASH_VARIANT_SEED = 86028157


def unleash_normalized(group_id: str, value: str, seed: int = 0, modulus: int = 100) -> int:
    """Unleash's ``normalizedHash``: ``murmur3_x86_32(f"{groupId}:{value}", seed) % modulus + 1``.

    Source: Unleash client specification README ("Hashing rules"; conformance data in
    ../shared) and the unleash-api-client docs (docs.rs, ``normalised_hash`` /
    ``normalised_variant_hash``); rollouts use seed 0 and modulus 100, variant selection
    seed 86028157 and the total variant weight.
    """
    return murmur3_32(f"{group_id}:{value}".encode(), seed) % modulus + 1


def unleash_variant_target(group_id: str, value: str, total_weight: int) -> int:
    """The 1-based target an Unleash variant walk compares cumulative weights with."""
    return unleash_normalized(group_id, value, UNLEASH_VARIANT_SEED, total_weight)


def flagd_bucket_v2(data: bytes, total_weight: int) -> int:
    """flagd ``fractional`` (v2): ``(murmur3_x86_32(data, 0) * totalWeight) >> 32``.

    Source: flagd docs ("Fractional operation": MurmurHash3 x86_32, seed 0) and the
    flagd-testbed README (v2 integer arithmetic; conformance data in ../shared).
    """
    return (murmur3_32(data) * total_weight) >> 32


def fnv1a32(text: str) -> int:
    """32-bit FNV-1a over UTF-16 code units (GrowthBook hashes JavaScript strings).

    Source: GrowthBook SDK docs ("hashing: FNV-1a 32-bit"); for ASCII text a code
    unit is the byte.
    """
    h = 0x811C9DC5
    data = text.encode("utf-16-le", "surrogatepass")
    for i in range(0, len(data), 2):
        h = ((h ^ (data[i] | (data[i + 1] << 8))) * 0x01000193) & 0xFFFFFFFF
    return h


def growthbook_hash(seed: str, value: str, version: int) -> int:
    """GrowthBook's bucket as an integer: v1 ``fnv1a32(value + seed) % 1000`` (of 1000),
    v2 ``fnv1a32(str(fnv1a32(seed + value))) % 10000`` (of 10000).

    Source: GrowthBook SDK docs (e.g. hexdocs.pm/growthbook ``GrowthBook.Hash``: fnv32a,
    v1 over value + seed mod 1000, v2 over the decimal text of the first hash mod 10000);
    the SDKs divide by 1000 / 10000 to get a float in [0, 1).
    """
    if version == 2:
        return fnv1a32(str(fnv1a32(seed + value))) % 10000
    return fnv1a32(value + seed) % 1000


# -- deterministic CBOR (RFC 8949 section 4.2.1), as flagd fractional v3 hashes it --------
def _head(major: int, n: int) -> bytes:
    if n < 24:
        return bytes([(major << 5) | n])
    if n < 0x100:
        return bytes([(major << 5) | 24, n])
    if n < 0x10000:
        return bytes([(major << 5) | 25]) + n.to_bytes(2, "big")
    if n < 0x100000000:
        return bytes([(major << 5) | 26]) + n.to_bytes(4, "big")
    return bytes([(major << 5) | 27]) + n.to_bytes(8, "big")


def cbor_text_head(nbytes: int) -> bytes:
    """The CBOR head of a text string of ``nbytes`` UTF-8 bytes."""
    return _head(3, nbytes)


def _float(x: float) -> bytes:
    if math.isnan(x):
        return b"\xf9\x7e\x00"
    for fmt, tag in (("e", 0xF9), ("f", 0xFA)):
        try:
            packed = struct.pack(">" + fmt, x)
        except OverflowError:
            continue
        if struct.unpack(">" + fmt, packed)[0] == x:
            return bytes([tag]) + packed
    return b"\xfb" + struct.pack(">d", x)


def cbor_encode(value: Any) -> bytes:
    """Deterministic CBOR of a JSON value; integral numbers in [-2^63, 2^64-1] as integers,
    ints past 64 bits as bignums.

    Source: flagd ADR "fractional-non-string-rand-units" (RFC 8949 section 4.2.1
    core deterministic encoding: shortest heads, shortest exact float, map keys
    sorted by their encoded bytes). Text holding a lone surrogate raises
    UnicodeEncodeError (a ValueError), as flagd's cbor2 refuses it: flagd's
    ``fractional`` is then null (the default variant).
    """
    if value is None:
        return b"\xf6"
    if value is True:
        return b"\xf5"
    if value is False:
        return b"\xf4"
    if isinstance(value, str):
        data = value.encode("utf-8")
        return _head(3, len(data)) + data
    if isinstance(value, float) and value.is_integer() and -(2**63) <= value <= 2**64 - 1:
        value = int(value)
    if isinstance(value, int):
        n = value if value >= 0 else -1 - value
        if n < 2**64:
            return _head(0, n) if value >= 0 else _head(1, n)
        # past 64 bits: a bignum (RFC 8949 section 3.4.3, tag 2 or 3 over the big-endian
        # magnitude without leading zeros), as flagd's Python evaluator (cbor2) encodes it
        data = n.to_bytes((n.bit_length() + 7) // 8, "big")
        return (b"\xc2" if value >= 0 else b"\xc3") + _head(2, len(data)) + data
    if isinstance(value, float):
        return _float(value)
    if isinstance(value, (list, tuple)):
        return _head(4, len(value)) + b"".join(cbor_encode(v) for v in value)
    if isinstance(value, dict):
        items = sorted((cbor_encode(k), cbor_encode(v)) for k, v in value.items())
        return _head(5, len(items)) + b"".join(k + v for k, v in items)
    raise TypeError(f"cannot CBOR-encode {type(value).__name__}")
