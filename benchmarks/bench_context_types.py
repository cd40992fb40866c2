"""A check whose context value is of another type than str/int/float/bool.

A context built from a pandas row or a model's output holds NumPy scalars, a database
driver gives NUMERIC as ``Decimal``, an ORM gives ids as ``uuid.UUID``: each is read as
the value it holds (README "Types are strict"). Exact Python values take the fast
path; these convert at every check with a plain dict, once per snapshot with a bound
``engine.context()``. The ``int`` and ``str`` rows are the floors in the same run.

Run::

    python -m pytest benchmarks/bench_context_types.py --benchmark-enable \\
        --benchmark-json=types.json -q
    python benchmarks/report.py types.json
"""

from __future__ import annotations

import uuid
from decimal import Decimal

import numpy as np
import pytest

from cfgcore.engine import Engine

BATCH = 1000
SNAPSHOT = {
    "flags": {
        "adult": {"default": "off", "rules": [{"when": {"attr": "age", "ge": 18}, "serve": "on"}]},
        "split": {
            "variants": {"a": 1, "b": 2},
            "default": "a",
            "rules": [{"split": {"a": 50, "b": 50}}],
            "bucket_by": ["user_id"],
        },
    }
}
AGES = {
    "int": 20,
    "numpy.int64": np.int64(20),
    "numpy.float32": np.float32(20.5),
    "Decimal": Decimal("20"),  # integral: the int 20
    "Decimal 20.5": Decimal("20.5"),  # the nearest double
}
USER = uuid.UUID(int=12345)
# each id and the plain id it is the same user as
USER_IDS = {
    "str": (str(USER), str(USER)),
    "uuid.UUID": (USER, str(USER)),
    "int": (12345, 12345),
    "Decimal": (Decimal("12345.00"), 12345),  # a NUMERIC(10, 2) id column
}


@pytest.fixture(scope="module")
def engine():
    return Engine.from_snapshot(SNAPSHOT)


def _repeat(call, *args):
    r = range(BATCH)

    def run():
        for _ in r:
            call(*args)

    return run


@pytest.mark.parametrize("kind", list(AGES))
def test_numeric_value_plain_dict(benchmark, engine, kind):
    ctx = {"age": AGES[kind]}
    assert engine.is_enabled("adult", ctx) is True
    benchmark.group = "context-type-number"
    benchmark.extra_info["calls"] = BATCH
    benchmark(_repeat(engine.is_enabled, "adult", ctx))


@pytest.mark.parametrize("bound", [False, True], ids=["dict", "bound"])
@pytest.mark.parametrize("kind", list(USER_IDS))
def test_user_id_split(benchmark, engine, kind, bound):
    value, plain = USER_IDS[kind]
    attrs = {"user_id": value}
    ctx = engine.context(attrs) if bound else attrs
    # the UUID is the same user as its text, the Decimal as its int
    assert engine.variant("split", ctx) == engine.variant("split", {"user_id": plain})
    assert engine.evaluate("split", ctx).reason == "SPLIT"
    benchmark.group = "context-type-id"
    benchmark.extra_info["calls"] = BATCH
    benchmark(_repeat(engine.variant, "split", ctx))
