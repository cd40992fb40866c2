"""``murmur3_32``, ``bucket_of`` and ``SeedAPI.log_to`` take and refuse the same
arguments on both evaluators (the same names, the same semantics).

Found by differential fuzzing: the reference masked any seed into 32 bits where the
compiled one raised OverflowError (and truncated a float seed the reference refused
nowhere); the compiled one hashed a strided memoryview's first bytes instead of its
items, and None as empty; the reference formatted a non-str ``bucket_of`` argument the
compiled one refused; ``log_to`` took any ``forms`` in the reference only.
"""

from __future__ import annotations

import array

import mmh3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore import _eval_py
from tests.fuzz import examples
from tests.texts import any_text

_eval = pytest.importorskip("cfgcore._eval", reason="the compiled evaluator is not built")
BOTH = [_eval, _eval_py]


def _outcome(fn, *args):
    try:
        return fn(*args)
    except Exception as exc:  # the kind of refusal is part of the contract
        return type(exc)


@settings(max_examples=examples(300), deadline=None)
@given(st.binary(max_size=64), st.integers(0, 2**32 - 1))
def test_both_hash_as_mmh3_for_every_valid_seed(data, seed):
    want = mmh3.hash(data, seed, signed=False)
    for mod in BOTH:
        assert mod.murmur3_32(data, seed) == want
        assert mod.murmur3_32(bytearray(data), seed) == want
        assert mod.murmur3_32(memoryview(data), seed) == want


_SEEDS = st.one_of(st.integers(-(2**70), 2**70), st.floats(), st.none(), any_text(max_size=3))


@settings(max_examples=examples(200), deadline=None)
@given(_SEEDS)
def test_seeds_are_refused_alike(seed):
    outcomes = [_outcome(mod.murmur3_32, b"abc", seed) for mod in BOTH]
    assert outcomes[0] == outcomes[1]
    if isinstance(seed, int) and 0 <= seed < 2**32:
        assert outcomes[0] == mmh3.hash(b"abc", seed, signed=False)
    elif isinstance(seed, int):
        assert outcomes[0] is OverflowError
    else:
        assert outcomes[0] is TypeError  # a float is no seed (it was truncated)


@pytest.mark.parametrize(
    ("data", "want"),
    [
        (None, TypeError),
        ("abc", TypeError),
        (5, TypeError),
        (memoryview(b"abcd")[::2], BufferError),  # hashed b"ab" compiled, not its items
        (array.array("i", [1, 2]), ValueError),
        (array.array("b", b"xy"), ValueError),
        (array.array("B", b"xy"), mmh3.hash(b"xy", 0, signed=False)),
        (memoryview(b"abcd")[1:3], mmh3.hash(b"bc", 0, signed=False)),
    ],
)
def test_data_is_one_contiguous_run_of_bytes_on_both(data, want):
    assert [_outcome(mod.murmur3_32, data, 0) for mod in BOTH] == [want, want]


class _Str(str):
    pass


class _Lying(str):
    def __str__(self):
        return "other"

    __format__ = lambda self, spec: "other"  # noqa: E731


@pytest.mark.parametrize(
    "args",
    [(None, "x"), ("s", None), (1, "x"), ("s", 5), (b"s", "x"), (_Str("s"), "x"),
     ("s", _Str("x")), (_Lying("s"), "x"), ("s", _Lying("x"))],
)  # fmt: skip
def test_bucket_of_takes_only_text_on_both(args):
    """Exact str only: the compiled one's typed arguments refuse a str subclass, and the
    reference took one (hashing the text its own ``__format__`` chose)."""
    assert [_outcome(mod.bucket_of, *args) for mod in BOTH] == [TypeError, TypeError]


@settings(max_examples=examples(50), deadline=None)
@given(any_text(max_size=8), any_text(max_size=8), st.sampled_from([_Str, _Lying]), st.booleans())
def test_bucket_of_refuses_str_subclasses_alike(salt, value, cls, first):
    args = (cls(salt), value) if first else (salt, cls(value))
    assert [_outcome(mod.bucket_of, *args) for mod in BOTH] == [TypeError, TypeError]


@settings(max_examples=examples(100), deadline=None)
@given(any_text(max_size=20), any_text(max_size=20))
def test_bucket_of_agrees_on_text(salt, value):
    try:
        data = f"{salt}:{value}".encode()
    except UnicodeEncodeError:  # a lone surrogate: no UTF-8, refused alike
        assert [_outcome(mod.bucket_of, salt, value) for mod in BOTH] == [UnicodeEncodeError] * 2
        return
    want = mmh3.hash(data, 0, signed=False) % 100_000
    assert [mod.bucket_of(salt, value) for mod in BOTH] == [want, want]


@pytest.mark.parametrize("forms", [b"\x00\x00", [0, 0], "ab", 3])
def test_log_to_refuses_forms_that_are_not_a_bytearray_on_both(forms):
    from cfgcore.engine import engine_class

    for mod in BOTH:
        engine = engine_class(mod).from_snapshot({"flags": {}})
        seed = mod.SeedAPI(engine, {}, lambda *a: None)
        with pytest.raises(TypeError, match="bytearray"):
            seed.log_to(None, None, 10, forms)
        seed.log_to(None, None, 10, bytearray(2))  # the type it takes
        seed.log_to(None, None, 10, None)
