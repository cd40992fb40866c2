"""A user id the engine buckets by its base value is logged by that value (audit 8).

The evaluators bind a str or int subclass by its base type's value and never call its
own methods, so a ``(str, Enum)`` member, a ``UserId(str)`` whose ``__str__`` says
something else (or raises), and an int too long for ``str()`` are all bucketed. The
exposure and metric logs filed the same user by ``str()``: the enum member as
``"Plan.GOLD"`` (another user, whose variant, recomputed by ``experiment ingest``, is
not the one served), and the others not at all (an exposure served and never logged,
its metric events dropped)."""

from __future__ import annotations

import enum
import sys
from datetime import datetime, timedelta, timezone

import pytest

from cfgcore.details import ID_FORM_CHARS, int_text
from cfgcore.dynamic_config import ABTestConfiguration, DynamicConfigurationManager
from cfgcore.engine import engine_class
from cfgcore.experiments.exposures import read_exposures
from cfgcore.experiments.metrics import read_metrics


class Boom(Exception):
    pass


class Plan(str, enum.Enum):
    GOLD = "user-gold"


class UserId(str):
    def __str__(self):
        return "UserId(...)"


class Opaque(str):
    def __str__(self):
        raise Boom("__str__")


class Account(int):
    def __str__(self):
        raise Boom("__str__")

    __repr__ = __str__


# The longest int that is an id (details.ID_FORM_CHARS characters); str() refuses it
# in these tests, which lower the interpreter's conversion limit to its minimum.
BIG = 7 * 10 ** (ID_FORM_CHARS - 1) + 3


@pytest.fixture(autouse=True)
def _str_refuses_big():
    before = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(640)
    yield
    sys.set_int_max_str_digits(before)


# (the id given, the plain id it is bucketed as)
IDS = [
    (Plan.GOLD, "user-gold"),
    (UserId("user-17"), "user-17"),
    (Opaque("user-18"), "user-18"),
    (Account(1234), 1234),
    (BIG, BIG),
]


def _manager(state_dir, impl):
    now = datetime.now(timezone.utc)
    test = ABTestConfiguration(
        "t", "", now - timedelta(days=1), now + timedelta(days=1),
        {"control": 50.0, "b": 50.0}, {"control": {}, "b": {}}, ["buy"],
    )  # fmt: skip
    engine = engine_class(impl).from_snapshot({"flags": {}})
    m = DynamicConfigurationManager(state_dir=state_dir, engine=engine, record_usage=False)
    assert m.create_ab_test(test)
    return m


def _text(plain):
    return plain if isinstance(plain, str) else int_text(plain)


@pytest.mark.parametrize("given, plain", IDS, ids=["enum", "str-says", "str-raises", "int", "big"])
def test_an_id_is_logged_as_the_value_it_is_bucketed_by(tmp_path, impl, given, plain):
    m = _manager(tmp_path, impl)
    try:
        served = m.get_ab_test_variant("t", {"user_id": plain})
        assert m.get_ab_test_variant("t", {"user_id": given}) == served
        assert m.get_ab_test_variant("t", {"user_id": given}) == served
        assert m.record_metric("t", "buy", 1.0, user_context={"user_id": given})
        assert m.track_metric("t", "buy", 2.0, user_context={"user_id": given})
        assert m.exposures.flush(10) and m.metrics.flush(10)
        logged = [(e.variant, e.user) for e in read_exposures(m.exposures.sinks[0].path)]
        events = [(e["variant"], e["user"], e["value"]) for e in read_metrics(m.metrics.path)]
    finally:
        m.close()
    user = _text(plain)
    assert logged == [(served, user)]  # one user: the plain id and the subclass
    assert sorted(events) == [(served, user, 1.0), (served, user, 2.0)]


def test_the_method_body_logs_the_same_user(tmp_path, impl):
    # A subclass overriding get_ab_test_variant runs the method's body (the reference).
    m = _manager(tmp_path, impl)
    body = DynamicConfigurationManager.get_ab_test_variant.__get__(m)
    try:
        served = [body("t", {"user_id": given}) for given, _ in IDS]
        assert m.exposures.flush(10)
        logged = sorted((e.variant, e.user) for e in read_exposures(m.exposures.sinks[0].path))
    finally:
        m.close()
    assert None not in served
    assert logged == sorted(zip(served, (_text(plain) for _, plain in IDS), strict=True))
