"""An int user id and its decimal text are one user of the exposure log, one entry.

Before, both evaluators' ``SeedAPI`` put an exact int id into its test's dedup shard
as the int, and the exposure writer then added the id's text too (so that ``42`` and
``"42"`` were logged once): every int user took two entries. A million int users
held two million entries, and a shard reached its share of ``dedup_limit`` after half
as many users, after which its users were all logged again.

Now a first exposure looks its id's other form up (an int's text; the int of a str
that is an int's canonical decimal text) and is not logged again when found; the
writer files an int's record as its text without adding it, and the logger's own
``log``/``expose`` look a text's int form up on a miss. Each user takes one entry and
is logged once, the same on both evaluators."""

from __future__ import annotations

import sys
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfgcore._layout import DEDUP_SHARDS
from cfgcore.details import user_id_text
from cfgcore.dynamic_config import ABTestConfiguration, DynamicConfigurationManager
from cfgcore.engine import engine_class
from cfgcore.experiments.exposures import ExposureLogger, read_exposures
from tests.conftest import IMPLS, IN_CI
from tests.fuzz import examples


def _ab_test() -> ABTestConfiguration:
    now = datetime.now(timezone.utc)
    return ABTestConfiguration(
        "t", "id forms", now - timedelta(days=1), now + timedelta(days=1),
        {"control": 50.0, "b": 50.0}, {"control": {}, "b": {}}, ["buy"],
    )  # fmt: skip


def _manager(state_dir, impl):
    engine = engine_class(impl).from_snapshot({"flags": {}})
    m = DynamicConfigurationManager(state_dir=state_dir, engine=engine, record_usage=False)
    assert m.create_ab_test(_ab_test())
    return m


def _entries(m):
    return sorted((type(u).__name__, str(u)) for s in m.exposures.seen_shards("t") for u in s)


def _logged(m):
    assert m.exposures.flush(10)
    return [(e.test, e.variant, e.user) for e in read_exposures(m.exposures.sinks[0].path)]


@pytest.fixture
def manager(tmp_path, impl):
    m = _manager(tmp_path, impl)
    yield m
    m.close()


def test_int_ids_take_one_entry_each(manager):
    for i in range(1000):
        assert manager.get_ab_test_variant("t", {"user_id": i}) is not None
    logged = _logged(manager)
    assert sum(len(s) for s in manager.exposures.seen_shards("t")) == 1000
    assert sorted(u for _, _, u in logged) == sorted(str(i) for i in range(1000))


@pytest.mark.parametrize("first", ["int", "str"])
def test_an_int_and_its_text_are_logged_once(manager, first):
    forms = [(i, str(i)) for i in (0, 7, -7, 42, 10**30, -(10**30))]
    for a, b in forms:
        one, two = (a, b) if first == "int" else (b, a)
        v = manager.get_ab_test_variant("t", {"user_id": one})
        assert manager.get_ab_test_variant("t", {"user_id": two}) == v
        assert manager.get_ab_test_variant("t", {"user_id": one}) == v
    logged = _logged(manager)
    assert sorted(u for _, _, u in logged) == sorted(b for _, b in forms)
    assert len(_entries(manager)) == len(forms)


def test_the_loggers_own_paths_find_a_user_logged_as_an_int(manager):
    # The SeedAPI logs 42 and 7 as ints; then the same users come through the logger's
    # log (another path's call), expose (a context without user_id) and the manager's
    # own method body (what a subclass overriding get_ab_test_variant calls).
    v42 = manager.get_ab_test_variant("t", {"user_id": 42})
    v7 = manager.get_ab_test_variant("t", {"user_id": 7})
    manager.exposures.log("t", v42, "42")
    manager.exposures.log("t", v42, 42)
    manager.exposures.expose("t", v7, {"targeting_key": "7"})
    body = DynamicConfigurationManager.get_ab_test_variant.__get__(manager)
    assert body("t", {"user_id": "42"}) == v42
    assert body("t", {"user_id": 7}) == v7
    assert sorted(_logged(manager)) == sorted([("t", v42, "42"), ("t", v7, "7")])
    assert len(_entries(manager)) == 2


def test_a_user_the_logger_logged_as_text_is_found_from_its_int(manager):
    # The logger's own paths log the text first; the SeedAPI then serves the int.
    manager.exposures.log("t", manager.get_ab_test_variant("t", {"user_id": "u"}), "42")
    manager.exposures.expose("t", "b", {"targeting_key": "7"})
    manager.get_ab_test_variant("t", {"user_id": 42})
    manager.get_ab_test_variant("t", {"user_id": 7})
    assert sorted(u for _, _, u in _logged(manager)) == ["42", "7", "u"]
    assert len(_entries(manager)) == 3


@pytest.mark.parametrize("text", ["042", "-0", "+42", "٤٢", " 42", "42 ", "--42", "-", "4_2"])
def test_text_that_is_not_an_ints_canonical_form_is_its_own_user(manager, text):
    # "042" buckets as "042", not as 42's "42": another user, logged on its own.
    manager.get_ab_test_variant("t", {"user_id": 42})
    manager.get_ab_test_variant("t", {"user_id": 0})
    manager.get_ab_test_variant("t", {"user_id": text})
    assert sorted(u for _, _, u in _logged(manager)) == sorted(["42", "0", text])


def test_ids_past_the_conversion_limit_never_break_a_request(manager):
    # Under a lowered sys.get_int_max_str_digits, the int form of a 700-digit text
    # cannot be made (int() raises): that user is logged under its text, once; and a
    # text past ID_FORM_CHARS (4300) is never converted.
    limit = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(640)
    try:
        for uid in ("1" * 700, "1" * 4301, "1" * 700, 10**50, str(10**50)):
            assert manager.get_ab_test_variant("t", {"user_id": uid}) is not None
        manager.exposures.log("t", "b", "2" * 700)
        logged = [u for _, _, u in _logged(manager)]
    finally:
        sys.set_int_max_str_digits(limit)
    assert sorted(logged) == sorted(["1" * 700, "1" * 4301, str(10**50), "2" * 700])


def test_a_logger_not_told_the_forms_are_joined_keeps_both_forms(tmp_path):
    # A SeedAPI without joins_id_forms (an older build) logs the int without looking
    # its text up: the writer then adds the text too, and drops a duplicate.
    records = []

    class OldAPI:
        def log_to(self, append, clock, shard_limit):
            records.append(append)

    logger = ExposureLogger([])
    try:
        logger.attach(OldAPI())
        assert logger._joined is False
        logger.log("t", "b", "42")
        (append,) = records
        logger.seen_shards("t")[hash(42) & (DEDUP_SHARDS - 1)].add(42)
        append(("t", "b", 42, 0.0))
        assert logger.flush(10)
        assert logger.written == 1  # the int's record was the text's duplicate
    finally:
        logger.close()


_ids = st.one_of(
    st.integers(min_value=-(10**20), max_value=10**20),
    st.integers(min_value=-30, max_value=30).map(str),
    st.sampled_from(["042", "-0", "+7", "٣", "7 ", "u1", "", "-", "00"]),
)


@pytest.fixture
def both():
    if "c" not in IMPLS:
        if IN_CI:
            pytest.fail("the compiled extension cfgcore._eval is not built (CI=true)")
        pytest.skip("the compiled extension cfgcore._eval is not built here")


@settings(
    max_examples=examples(25),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(ids=st.lists(st.one_of(_ids, st.integers(min_value=-30, max_value=30)), max_size=40))
def test_both_evaluators_log_the_same_users_and_keep_the_same_entries(both, tmp_path_factory, ids):
    out = {}
    for name in ("c", "py"):
        m = _manager(tmp_path_factory.mktemp(name), IMPLS[name])
        try:
            served = [m.get_ab_test_variant("t", {"user_id": u}) for u in ids]
            out[name] = (served, _logged(m), _entries(m))
        finally:
            m.close()
    assert out["c"] == out["py"]
    served, logged, entries = out["py"]
    users = {user_id_text(u) for u in ids}
    assert sorted(u for _, _, u in logged) == sorted(users)  # each user once
    assert len(entries) == len(users)  # one entry each
