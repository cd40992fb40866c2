"""The imported flags' bucketing schemes: both evaluators' ``scheme_bucket`` against the
documented formulas (``cfgcore.interop._hashing``) and, for GrowthBook, the SDK's own
hash; then end to end through compiled rules."""

from __future__ import annotations

import cbor2
import pytest
from growthbook.core import gbhash
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore import _layout as L
from cfgcore.interop._hashing import (
    cbor_encode,
    flagd_bucket_v2,
    fnv1a32,
    growthbook_hash,
    murmur3_32,
)
from tests.conftest import IMPLS, IN_CI
from tests.fuzz import examples
from tests.texts import any_text, holds_lone_surrogate


def _impls():
    if "c" not in IMPLS and IN_CI:
        pytest.fail("the compiled extension cfgcore._eval is not built (CI=true)")
    return list(IMPLS.values())


spaces = st.sampled_from([1, 2, 7, 100, 1000, 10000, 2**31 - 1])


@settings(max_examples=examples(150), deadline=None)
@given(
    any_text(max_size=30),
    any_text(max_size=10),
    any_text(max_size=10),
    spaces,
    st.integers(0, 2**32 - 1),
)
def test_string_schemes_match_the_formulas(value, salt, suffix, space, seed):
    try:
        v, s, x = value.encode(), salt.encode(), suffix.encode()
    except UnicodeEncodeError:
        return  # lone surrogates never bind as strings
    for impl in _impls():
        _check_strings(impl.scheme_bucket, value, salt, suffix, space, seed, v, s, x)


def _check_strings(sb, value, salt, suffix, space, seed, v, s, x):
    assert sb(L.SCHEME_MURMUR3, seed, s, x, space, True, v) == murmur3_32(s + v + x, seed) % space
    assert sb(L.SCHEME_FLAGD_V2, 0, s, x, space, True, v) == flagd_bucket_v2(s + v + x, space)
    text = salt + value + suffix
    want_v3 = flagd_bucket_v2(cbor_encode(text if (salt or suffix) else value), space)
    assert sb(L.SCHEME_FLAGD_V3, 0, s, x, space, True, v) == want_v3
    pair = flagd_bucket_v2(cbor_encode([salt, value]), space)
    assert sb(L.SCHEME_FLAGD_V3_PAIR, 0, s, b"", space, True, v) == pair
    assert sb(L.SCHEME_GROWTHBOOK_V1, 0, s, x, space, True, v) == fnv1a32(text) % space
    v2 = fnv1a32(str(fnv1a32(text))) % space
    assert sb(L.SCHEME_GROWTHBOOK_V2, 0, s, x, space, True, v) == v2


@settings(max_examples=examples(100), deadline=None)
@given(st.integers(-(2**64) + 1, 2**64 - 1), spaces)
def test_ints_hash_as_cbor_integers(n, space):
    # an int binds as its decimal text; v3 hashes its CBOR integer
    want = flagd_bucket_v2(cbor2.dumps(n, canonical=True), space)
    for impl in _impls():
        got = impl.scheme_bucket(L.SCHEME_FLAGD_V3, 0, b"", b"", space, False, str(n).encode())
        assert got == want


def test_ints_past_64_bits_have_no_bucket(impl):
    for n in (2**64, -(2**64), 10**30):
        assert impl.scheme_bucket(L.SCHEME_FLAGD_V3, 0, b"", b"", 100, False, str(n).encode()) == -1


@settings(max_examples=examples(100), deadline=None)
@given(
    st.recursive(
        st.one_of(
            st.none(),
            st.booleans(),
            st.integers(-(2**63), 2**63),
            any_text(max_size=8),
            st.floats(allow_nan=False),
        ),
        lambda kids: st.one_of(
            st.lists(kids, max_size=3), st.dictionaries(any_text(max_size=4), kids, max_size=3)
        ),
        max_leaves=8,
    ),  # fmt: skip
    spaces,
)
def test_cbor_hex_scheme(value, space):
    if holds_lone_surrogate(value):
        # no CBOR text holds one: refused, as flagd's cbor2 refuses it (its fractional
        # is then null)
        with pytest.raises(UnicodeEncodeError):
            cbor2.dumps(value, canonical=True)
        with pytest.raises(UnicodeEncodeError):
            cbor_encode(value)
        return
    data = cbor_encode(value)
    # our deterministic encoding is RFC 8949's: cbor2 in canonical mode agrees
    if not isinstance(value, float) or value == value:
        assert cbor2.loads(data) == value or value != value
    for impl in _impls():
        sb = impl.scheme_bucket
        got = sb(L.SCHEME_FLAGD_V3_CBOR, 0, b"", b"", space, True, data.hex().encode())
        assert got == flagd_bucket_v2(data, space)
        assert sb(L.SCHEME_FLAGD_V3_CBOR, 0, b"", b"", space, True, b"xyz") == -1


@settings(max_examples=examples(100), deadline=None)
@given(any_text(max_size=20), any_text(max_size=8), st.sampled_from([1, 2]))
def test_growthbook_hash_matches_the_sdk(value, seed, version):
    space = 10000 if version == 2 else 1000
    assert growthbook_hash(seed, value, version) / space == gbhash(seed, value, version)


@pytest.mark.parametrize("n", [0, 1, 23, 24, 255, 256, 65535, 65536, 2**32, 2**63])
def test_cbor_heads_at_the_boundaries(n):
    assert cbor_encode(n) == cbor2.dumps(n, canonical=True)
    assert cbor_encode(-n - 1) == cbor2.dumps(-n - 1, canonical=True)
    assert cbor_encode("x" * (n % 70000)) == cbor2.dumps("x" * (n % 70000), canonical=True)


@pytest.mark.parametrize("value", [252182210429815586816, -(2**70), 7, "x"])
def test_text_schemes_take_any_int_as_decimal(make, value):
    # flagd v3 with a prefix or suffix hashes the CBOR *text* salt + value + suffix, so
    # an int past 64 bits still has a bucket there; a hypothesis soak found the spec
    # interpreter refusing it (tests/spec_interpreter.py)
    from cfgcore.snapshot import snapshot_from_dict
    from tests.spec_interpreter import Interpreter, comparable

    snap = {
        "flags": {
            "f": {
                "default": "on",
                "rules": [
                    {
                        "hash": {"scheme": "flagd_v3", "by": ["v"], "space": 100, "suffix": "€"},
                        "buckets": [[None, 6], ["on", 6], ["off", 88]],
                    }
                ],
            }
        }
    }
    ctx = {"v": value}
    text = f"{value}€"
    want = flagd_bucket_v2(cbor_encode(text), 100)
    got = make(snap).evaluate("f", ctx)
    # buckets 0-5 are a gap (falls through to the default), 6-11 "on", the rest "off"
    assert got.variant == ("off" if want >= 12 else "on")
    assert got.reason == ("DEFAULT" if want < 6 else "SPLIT")
    spec = Interpreter(snapshot_from_dict(snap))
    assert comparable(got) == comparable(spec.evaluate("f", ctx, None))


_SCHEMES = [L.SCHEME_MURMUR3, L.SCHEME_FLAGD_V2, L.SCHEME_FLAGD_V3, L.SCHEME_FLAGD_V3_PAIR,
            L.SCHEME_GROWTHBOOK_V1, L.SCHEME_GROWTHBOOK_V2]  # fmt: skip


@settings(max_examples=examples(30), deadline=None)
@given(st.sampled_from(_SCHEMES), st.integers(-(2**31), 0), st.binary(max_size=8))
def test_a_space_below_one_is_refused_by_the_reference(scheme, space, text):
    """The compiler writes spaces of 1..2**31-1 (snapshot.Hashing); the reference refuses
    a smaller one, where it divided by zero or answered ``x % -1`` (0) for a bucket."""
    from cfgcore import _eval_py

    with pytest.raises(ValueError, match="space must be within"):
        _eval_py.scheme_bucket(scheme, 0, b"", b"", space, True, text)


@pytest.mark.parametrize("space", [0, -1])
def test_the_compiled_scheme_bucket_refuses_a_space_below_one(space):
    """As the reference: 0 was a C division by zero (SIGFPE killed the process), a
    negative space a garbage bucket. Run in a child process, so a regression fails this
    test instead of killing the test worker."""
    import subprocess
    import sys

    if "c" not in IMPLS:
        pytest.skip("the compiled extension is not built")
    code = (
        "import cfgcore._eval as e\n"
        "try:\n"
        f"    e.scheme_bucket(0, 0, b'', b'', {space}, True, b'x')\n"
        "except ValueError:\n"
        "    raise SystemExit(0)\n"
        "raise SystemExit(3)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert done.returncode == 0, done
