"""Context values of NumPy's scalar types, ``Decimal``, ``Fraction`` and ``uuid.UUID``.

A recommendation service builds its contexts from a pandas row or a model's output, so
an age arrives as ``numpy.int64``, a score as ``numpy.float32`` and a flag as
``numpy.bool_``; a database driver gives a NUMERIC column as ``Decimal``. Both
evaluators read such values as unusable, silently: ``ge: 18`` did not match
``np.int64(20)``, a rollout bucketed by a ``np.int64`` user id served nobody, while the
same values as Python numbers matched. They now bind as the Python value they hold (a
Decimal or Fraction as the nearest float), never through the value's own overridable
methods; a NumPy integer user id is the same user as the int, for bucketing, exposures
and metric events alike. A ``uuid.UUID`` id (an ORM's) is its canonical text.
"""

from __future__ import annotations

import json
import math
import uuid
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore import DynamicConfigurationManager
from cfgcore.details import (
    bucketable_id,
    context_value,
    exact_value,
    metric_user_id,
    user_id_text,
)
from cfgcore.engine import engine_class
from cfgcore.experiments.exposures import exposure_user
from tests.fuzz import examples
from tests.test_request_path import _ab

CONSTANTS = [-3, 0, 1, 18, 20, 2**40, 0.5, 2.5, 1e300, -0.0]
FLAGS = {
    f"{op}": {
        "default": "off",
        "rules": [{"when": {"attr": "a", op: const}, "serve": "on"}],
    }
    for op, const in [
        ("eq", 20), ("ne", 20), ("lt", 18), ("le", 18), ("gt", 2.5), ("ge", 18),
        ("in", CONSTANTS), ("not_in", CONSTANTS), ("has_any", CONSTANTS),
    ]
}  # fmt: skip
for key, op in (("is_true", "eq"), ("is_false", "ne")):
    FLAGS[key] = {"default": "off", "rules": [{"when": {"attr": "a", op: True}, "serve": "on"}]}
FLAGS["split"] = {
    "variants": {"a": 1, "b": 2, "c": 3},
    "default": "a",
    "rules": [{"split": {"a": 30, "b": 30, "c": 40}}],
    "bucket_by": ["a", "fallback"],
}
DOC = {"flags": FLAGS}

INT_TYPES = [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64]
FLOAT_TYPES = [np.float16, np.float32, np.float64, np.longdouble]


@pytest.fixture(scope="module")
def engines():
    from tests.conftest import IMPLS

    return [engine_class(mod).from_snapshot(DOC) for mod in IMPLS.values()]


def _answers(engine, value):
    ctx = {"a": value, "fallback": "f"}
    arr = {"a": [value], "fallback": "f"}
    out = []
    for key in FLAGS:
        d = engine.evaluate(key, arr if key == "has_any" else ctx)
        out.append((key, d.variant, d.reason, d.error_code))
    return out


def _numpy_ints():
    def make(t):
        info = np.iinfo(t)
        return st.integers(int(info.min), int(info.max)).map(lambda i: (t(i), i))

    return st.sampled_from(INT_TYPES).flatmap(make)


def _numpy_floats():
    def make(t):
        width = min(np.finfo(t).bits, 64)
        floats = st.floats(allow_nan=False, width=width if width in (16, 32, 64) else 64)
        return floats.map(lambda x: (t(x), float(t(x))))

    return st.sampled_from(FLOAT_TYPES).flatmap(make)


def _decimal_number(d: Decimal) -> int | float:
    """What a Decimal reads as: the int it equals, with at most 20 digits, else the
    nearest float."""
    if d.is_finite() and abs(d) < 10**20 and d == round(d):
        return round(d)
    return float(d)


def _fraction_number(f: Fraction) -> int | float:
    return f.numerator if f.denominator == 1 and abs(f) < 10**20 else float(f)


WRAPPED = st.one_of(
    _numpy_ints(),
    _numpy_floats(),
    st.booleans().map(lambda b: (np.bool_(b), b)),
    st.decimals(allow_nan=False).map(lambda d: (d, _decimal_number(d))),
    st.integers(-(10**21), 10**21).map(  # NUMERIC(24, 2): an int of up to 20 digits, or a float
        lambda i: (Decimal(i).quantize(Decimal("0.01")), _decimal_number(Decimal(i)))
    ),
    st.fractions(max_denominator=10**6).map(lambda f: (f, _fraction_number(f))),
    st.sampled_from([18, 20, 0, -3]).map(lambda i: (np.int64(i), i)),  # constants' values
    st.sampled_from([0.5, 2.5, 18.0]).map(lambda x: (np.float32(x), x)),
)


@settings(max_examples=examples(150))
@given(pair=WRAPPED)
def test_a_numeric_value_of_another_type_answers_as_the_python_value_it_holds(engines, pair):
    value, plain = pair
    want = _answers(engines[0], plain)
    for engine in engines:
        assert _answers(engine, value) == want, (type(value), value)
        bound = engine.context({"a": value, "fallback": "f"})
        assert [engine.evaluate(k, bound).variant for k in FLAGS if k != "has_any"] == [
            v for k, v, _, _ in want if k != "has_any"
        ]


def test_the_cases_a_service_meets(engines):
    for engine in engines:
        assert engine.variant("ge", {"a": np.int64(20)}) == "on"
        assert engine.variant("gt", {"a": np.float32(3.5)}) == "on"
        assert engine.variant("is_true", {"a": np.bool_(True)}) == "on"
        assert engine.variant("in", {"a": Decimal("0.5")}) == "on"
        assert engine.variant("in", {"a": Fraction(1, 2)}) == "on"
        assert engine.variant("has_any", {"a": [np.int64(18)]}) == "on"
        # a NumPy integer user id buckets as the int (and as its decimal text)
        for uid in (7, 123456789, 2**63 - 1):
            want = engine.variant("split", {"a": uid})
            assert engine.variant("split", {"a": np.int64(uid)}) == want
            assert engine.variant("split", {"a": str(uid)}) == want
        assert engine.variant("split", {"a": np.uint64(2**64 - 1)}) == engine.variant(
            "split", {"a": 2**64 - 1}
        )


class _LyingInt(np.int64):
    def item(self, *args):
        raise RuntimeError("item")

    def __int__(self):
        return 99

    def __index__(self):
        return 99

    def __float__(self):
        return 99.0

    def __str__(self):
        return "99"


class _NumpyNamedInt(np.int32):
    """A subclass that says it is NumPy's own type: still read by its stored value."""

    __module__ = "numpy"

    def __int__(self):
        return 99

    def item(self, *args):
        return 99


class _Duration(np.timedelta64):
    pass


class _LyingDecimal(Decimal):
    def __float__(self):
        raise RuntimeError("float")


class _LyingFraction(Fraction):
    @property
    def numerator(self):
        raise RuntimeError("numerator")


@pytest.mark.parametrize(
    ("value", "want"),
    [
        (_LyingInt(20), 20),  # its stored value, none of its own methods
        (_NumpyNamedInt(20), 20),
        (_LyingDecimal("20"), 20),
        (_LyingDecimal("20.5"), 20.5),
        (np.float64("nan"), None),
        (Decimal("NaN"), None),
        (Decimal("sNaN"), None),
        (_LyingFraction(20), None),  # a subclass's numerator may lie: unusable
        (Fraction(10**400, 1), None),  # past a double
        (np.datetime64("2020-01-01", "ns"), None),  # a time, not a number
        (np.timedelta64(20, "s"), None),  # an integer to NumPy, a duration here
        (_Duration(20, "s"), None),
        (np.complex128(20), None),
        (np.array(20), None),
        (np.bytes_(b"20"), None),
    ],
)
def test_hostile_and_non_numeric_values_never_raise(engines, value, want):
    for engine in engines:
        got = engine.evaluate("ge", {"a": value})
        assert got.error_code is None
        if want is None:  # unusable: every operator false, ne included
            assert got.variant == "off"
            assert engine.variant("ne", {"a": value}) == "off"
        else:
            assert got.variant == ("on" if want >= 18 else "off")
            assert engine.variant("eq", {"a": value}) == ("on" if want == 20 else "off")


def test_numpy_integers_are_ids_as_the_int_they_hold():
    for t in INT_TYPES:
        uid = t(7)
        assert bucketable_id(uid) and context_value(uid) == 7 and type(context_value(uid)) is int
        assert user_id_text(uid) == "7"
        assert exposure_user({"user_id": uid}) == "7"
        assert metric_user_id({"user_id": uid, "targeting_key": "t"}) == "7"
    assert user_id_text(_LyingInt(5)) == "5"  # its stored value, not its __str__
    not_ids = (np.bool_(True), np.float64(7.0), Decimal("7.5"), np.datetime64(7, "s"))
    for not_an_id in (*not_ids, np.timedelta64(7, "s"), _Duration(7, "s")):
        assert not bucketable_id(not_an_id)
        assert exposure_user({"user_id": not_an_id, "targeting_key": "t"}) == "t"


def _uuid(i: int) -> uuid.UUID:
    return uuid.UUID(int=i)


@pytest.mark.parametrize(
    ("plain_id", "other_id"),
    [
        (int, np.int64),
        (int, np.uint32),
        (int, lambda i: Decimal(i).quantize(Decimal("0.01"))),  # NUMERIC(10, 2)
        (int, Fraction),
        (lambda i: str(uuid.UUID(int=i)), lambda i: uuid.UUID(int=i)),
    ],
    ids=["int64", "uint32", "decimal", "fraction", "uuid"],
)
def test_another_type_of_user_id_is_the_same_user_in_an_ab_test(tmp_path, impl, plain_id, other_id):
    m = DynamicConfigurationManager(
        state_dir=tmp_path, engine=engine_class(impl).from_snapshot({"flags": {}})
    )
    try:
        assert m.create_ab_test(_ab())
        ids = list(range(40))
        plain = [m.get_ab_test_variant("exp", {"user_id": plain_id(i)}) for i in ids]
        other = [m.get_ab_test_variant("exp", {"user_id": other_id(i)}) for i in ids]
        assert other == plain and set(plain) == {"control", "treatment"}
        for i in ids:
            assert m.record_metric("exp", "ctr", 1.0, user_context={"user_id": other_id(i)})
        assert m.exposures is not None and m.exposures.flush(10) and m.metrics.flush(10)
        with open(m.exposures.sinks[0].path, encoding="utf-8") as f:
            exposed = [json.loads(line)["user"] for line in f]
        with open(m.metrics.path, encoding="utf-8") as f:
            events = [json.loads(line) for line in f]
        # each user exposed once, under the text of the plain id (one user, two types)
        texts = [str(plain_id(i)) for i in ids]
        assert sorted(exposed) == sorted(texts)
        assert sorted(e["user"] for e in events) == sorted(texts)
        by_user = dict(zip(texts, plain, strict=True))
        assert all(e["variant"] == by_user[e["user"]] for e in events)
    finally:
        m.close()


def test_a_uuid_is_its_canonical_text(engines):
    u = uuid.UUID("12345678-1234-5678-1234-567812345678")
    doc = {
        "flags": {
            "listed": {
                "default": "off",
                "rules": [{"when": {"attr": "user_id", "in": [str(u)]}, "serve": "on"}],
            },
            "prefix": {
                "default": "off",
                "rules": [{"when": {"attr": "user_id", "starts_with": "1234"}, "serve": "on"}],
            },
        }
    }

    class _LyingUUID(uuid.UUID):
        def __str__(self):
            return "x"

    for engine in engines:
        e = type(engine).from_snapshot(doc)
        assert e.variant("listed", {"user_id": u}) == "on"
        assert e.variant("prefix", {"user_id": u}) == "on"
        assert e.variant("listed", {"user_id": uuid.UUID(int=1)}) == "off"
        assert e.variant("listed", {"user_id": _LyingUUID(str(u))}) == "off"  # unusable
        assert e.variant("listed", {"user_id": [u]}) == "off"  # an array, not an id
    assert (
        bucketable_id(u) and user_id_text(u) == str(u) and exposure_user({"user_id": u}) == str(u)
    )
    assert not bucketable_id(_LyingUUID(int=3))


def test_a_numpy_bool_default_asks_for_a_bool(engines):
    flags = {"flags": {"ads": {"variants": {"on": True, "off": False}, "default": "on"}}}
    for engine in engines:
        e = type(engine).from_snapshot(flags)
        d = e.evaluate("ads", {}, np.bool_(False))
        assert (d.value, d.error_code) == (True, None)
        assert e.evaluate("ads", {}, np.float64(1.0)).error_code == "TYPE_MISMATCH"


def test_floats_keep_their_value_exactly():
    assert context_value(np.float32(0.1)) == float(np.float32(0.1)) != 0.1
    assert context_value(np.longdouble(1.5)) == 1.5
    assert type(context_value(np.longdouble(1.5))) is float
    assert context_value(Decimal("0.1")) == 0.1
    assert math.isinf(context_value(Decimal("1e400")))


def test_an_integral_decimal_or_fraction_is_the_int_it_equals():
    # A NUMERIC id column: exactly, where the nearest double would be another number.
    big = 12345678901234567891  # 20 digits, past 2**63, within a uint64
    for value in (Decimal(big), Decimal(f"{big}.000"), Fraction(big)):
        assert context_value(value) == big and type(context_value(value)) is int
        assert bucketable_id(value) and user_id_text(value) == str(big)
        assert exposure_user({"user_id": value, "targeting_key": "t"}) == str(big)
    assert context_value(Decimal("1E+5")) == 100000 and context_value(Decimal("-0")) == 0
    # 21 digits or a fraction: the nearest float, as before, and no id
    for value in (Decimal(10**20), Decimal("7.5"), Fraction(15, 2), Fraction(10**20)):
        assert type(context_value(value)) is float
        assert not bucketable_id(value)
        assert exposure_user({"user_id": value, "targeting_key": "t"}) == "t"
    # a huge exponent costs no huge int: it is a float (inf) or zero
    assert context_value(Decimal("1e999999999")) == math.inf
    assert context_value(Decimal("0e999999999")) == 0
    assert context_value(Decimal("1e-999999999")) == 0.0


def test_keys_and_names_are_not_converted():
    # exact_value reads keys and names (a flag key, a mapping's keys): only subclasses
    # of str/int/float become their base value; a Decimal("sNaN") key must not raise.
    odd = [Decimal("sNaN"), Decimal("1"), np.int64(1), uuid.UUID(int=1), Fraction(1, 2)]
    for value in odd:
        assert exact_value(value) is value
