"""OpenFeature ``track()`` passes the application's event id: the ``"event_id"``
attribute of the tracking event's details, so a retried ``client.track(...)`` counts
once in every report, through the real openfeature-sdk client.

Before, the provider gave ``track_metric`` no id: each call got one of its own, and a
retried call counted twice.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import re
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta, timezone
from types import MappingProxyType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fuzz import examples

api = pytest.importorskip("openfeature.api", reason="openfeature-sdk is not installed")

from openfeature.evaluation_context import EvaluationContext  # noqa: E402
from openfeature.track import TrackingEventDetails  # noqa: E402

from cfgcore.dynamic_config import (  # noqa: E402
    ABTestConfiguration,
    DynamicConfigurationManager,
)
from cfgcore.engine import engine_class  # noqa: E402
from cfgcore.experiments.dynamic import state_paths  # noqa: E402
from cfgcore.experiments.event_ids import MAX_EVENT_ID  # noqa: E402
from cfgcore.experiments.exposures import read_exposures  # noqa: E402
from cfgcore.experiments.metrics import MetricsStore  # noqa: E402
from cfgcore.openfeature import EVENT_ID_ATTRIBUTE, CfgcoreProvider  # noqa: E402
from tests.texts import any_text  # noqa: E402

_domains = itertools.count()
NOW = datetime.now(timezone.utc)
GENERATED = re.compile(r"[0-9a-f]{16}-[0-9a-f]+")  # cfgcore's own ids (IdSource)


def _test(name):
    return ABTestConfiguration(
        name, "", NOW - timedelta(days=1), NOW + timedelta(days=9),
        {"control": 50.0, "b": 50.0}, {"control": {"x": 1}, "b": {"x": 2}}, ["buy"],
    )  # fmt: skip


@contextlib.contextmanager
def serving(state_dir, impl, *tests):
    """A manager on ``impl`` serving the A/B ``tests`` (each measuring ``buy``), and an
    OpenFeature client of its provider (``experiments=`` the manager)."""
    manager = DynamicConfigurationManager(
        state_dir=state_dir, engine=engine_class(impl)(), record_usage=False
    )
    try:
        for name in tests:
            assert manager.create_ab_test(_test(name))
        provider = CfgcoreProvider(manager.engine, experiments=manager)
        domain = f"cfgcore-of-track-id-{next(_domains)}"
        api.set_provider_and_wait(provider, domain=domain)
        try:
            yield manager, api.get_client(domain)
        finally:
            provider.shutdown()
    finally:
        manager.close()


@pytest.fixture
def served(tmp_path, impl):
    with serving(tmp_path, impl, "checkout", "pricing") as pair:
        yield pair


def _expose(client, user, tests=("checkout", "pricing")):
    """Serve ``user`` each test's variant through the provider (its exposure), and
    return the variants."""
    return {t: client.get_object_details(t, {}, EvaluationContext(user)).variant for t in tests}


def _track(client, user, value=1.0, attributes=None, context_attributes=None):
    client.track(
        "buy",
        EvaluationContext(user, context_attributes or {}),
        TrackingEventDetails(value, attributes),
    )


def _lines(manager):
    manager.exposures.flush()
    manager.metrics.flush()
    path = state_paths(manager.flags_file)["metrics"]
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def _report(manager):
    """What ``cfgcore experiment report`` reads: both logs, every process's records."""
    manager.exposures.flush()
    manager.metrics.flush()
    paths = state_paths(manager.flags_file)
    return MetricsStore.load(paths["metrics"], paths["exposures"])


def test_a_retried_track_with_one_event_id_counts_once_in_every_test_measuring_it(served):
    manager, client = served
    variants = _expose(client, "u1")
    for _ in range(3):  # the application's retries of one purchase
        _track(client, "u1", 42.0, {EVENT_ID_ATTRIBUTE: "order-8812", "sku": "x"})
    lines = _lines(manager)
    # One line per test measuring "buy", each with the application's id.
    assert sorted((r["test"], r["event_id"], r["value"]) for r in lines) == [
        ("checkout", "order-8812", 42.0),
        ("pricing", "order-8812", 42.0),
    ]
    assert manager.metrics.duplicates == {"checkout": 2, "pricing": 2}
    for store in (manager.metrics, _report(manager)):
        for test, v in variants.items():
            assert store.event_count(test, v, "buy") == 1
            assert store.summary(test, v, "buy").mean == 42.0


def test_a_retry_that_reaches_another_process_counts_once_in_the_report(tmp_path, impl):
    with serving(tmp_path, impl, "checkout") as (manager, client):
        variant = _expose(client, "u1", ("checkout",))["checkout"]
        _track(client, "u1", 5.0, {EVENT_ID_ATTRIBUTE: "order-1"})
        _track(client, "u1", 5.0, {EVENT_ID_ATTRIBUTE: "order-2"})
        manager.metrics.flush()
        # Another worker of the service gets the retry of order-1 (and an event of
        # its own without an id), through its own OpenFeature client.
        script = textwrap.dedent(
            f"""
            from openfeature import api
            from openfeature.evaluation_context import EvaluationContext
            from openfeature.track import TrackingEventDetails
            from cfgcore.dynamic_config import DynamicConfigurationManager
            from cfgcore.openfeature import CfgcoreProvider
            m = DynamicConfigurationManager(state_dir={str(tmp_path)!r}, record_usage=False)
            api.set_provider_and_wait(CfgcoreProvider(m.engine, experiments=m))
            c, u1 = api.get_client(), EvaluationContext("u1")
            c.track("buy", u1, TrackingEventDetails(5.0, {{"event_id": "order-1"}}))
            c.track("buy", u1, TrackingEventDetails(5.0))
            m.close()
            """
        )
        subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
        ids = [r["event_id"] for r in _lines(manager)]
        assert sorted(ids[:3]) == ["order-1", "order-1", "order-2"]  # both processes' lines
        assert len(ids) == 4 and GENERATED.fullmatch(ids[3])
        store = _report(manager)
        assert store.event_count("checkout", variant, "buy") == 3  # order-1, order-2, one more
        assert store.summary("checkout", variant, "buy").mean == 5.0
        assert store.duplicates == {"checkout": 1}


def test_different_event_ids_count_as_different_events(served):
    manager, client = served
    variants = _expose(client, "u1")
    _track(client, "u1", 1.0, {EVENT_ID_ATTRIBUTE: "order-1"})
    _track(client, "u1", 3.0, {EVENT_ID_ATTRIBUTE: "order-2"})
    _track(client, "u1", 5.0, {EVENT_ID_ATTRIBUTE: 3})  # an integer id: its decimal text
    _track(client, "u2", 7.0, {EVENT_ID_ATTRIBUTE: "order-1"})  # another user's order-1
    assert sorted({r["event_id"] for r in _lines(manager)}) == ["3", "order-1", "order-2"]
    assert manager.metrics.duplicates == {}
    for store in (manager.metrics, _report(manager)):
        for test, v in variants.items():
            assert store.event_count(test, v, "buy") == 3
            assert store.summary(test, v, "buy").mean == 3.0


def test_events_without_an_id_get_one_of_their_own_beside_given_ones(served):
    manager, client = served
    variants = _expose(client, "u1")
    _track(client, "u1", 1.0)
    _track(client, "u1", 1.0, {"sku": "x"})
    _track(client, "u1", 1.0, {EVENT_ID_ATTRIBUTE: None})  # None: no id, as record_metric
    client.track("buy", EvaluationContext("u1"))  # no details at all
    _track(client, "u1", 1.0, {EVENT_ID_ATTRIBUTE: "order-1"})
    _track(client, "u1", 1.0, {EVENT_ID_ATTRIBUTE: "order-1"})
    lines = [r for r in _lines(manager) if r["test"] == "checkout"]
    assert len(lines) == 5
    own = [r["event_id"] for r in lines if r["event_id"] != "order-1"]
    assert len(own) == 4 and len(set(own)) == 4
    assert all(GENERATED.fullmatch(e) for e in own)
    for store in (manager.metrics, _report(manager)):
        for test, v in variants.items():
            assert store.event_count(test, v, "buy") == 5


def test_an_event_id_in_the_evaluation_context_is_not_the_events_id(served):
    # The SDK merges the global, transaction and client contexts into the one the
    # provider sees: an id there would be shared by every event of that scope.
    manager, client = served
    api.set_evaluation_context(EvaluationContext(attributes={EVENT_ID_ATTRIBUTE: "global"}))
    try:
        variants = _expose(client, "u1")
        for n in range(2):
            _track(client, "u1", 1.0, context_attributes={EVENT_ID_ATTRIBUTE: "ctx-1"})
            _track(client, "u1", 1.0, {EVENT_ID_ATTRIBUTE: f"d-{n}"}, {EVENT_ID_ATTRIBUTE: "ctx"})
    finally:
        api.set_evaluation_context(EvaluationContext())
    ids = [r["event_id"] for r in _lines(manager) if r["test"] == "checkout"]
    given_ids = sorted(i for i in ids if not GENERATED.fullmatch(i))
    assert len(ids) == 4 and given_ids == ["d-0", "d-1"]  # and two ids of cfgcore's own
    for test, v in variants.items():
        assert _report(manager).event_count(test, v, "buy") == 4


def test_attributes_of_any_mapping_give_the_id_and_others_none(served):
    # TrackingEventDetails takes its attributes as given: a read-only mapping gives
    # its id; attributes that are no mapping give no id, and the event is recorded.
    manager, client = served
    variants = _expose(client, "u1")
    for attributes in (MappingProxyType({EVENT_ID_ATTRIBUTE: "order-1"}), ["event_id"]):
        details = TrackingEventDetails(2.0)
        details.attributes = attributes  # type: ignore[assignment]
        for _ in range(2):
            client.track("buy", EvaluationContext("u1"), details)
    ids = [r["event_id"] for r in _lines(manager) if r["test"] == "checkout"]
    assert len(ids) == 3 and ids[0] == "order-1"
    assert GENERATED.fullmatch(ids[1]) and GENERATED.fullmatch(ids[2])
    for test, v in variants.items():
        assert _report(manager).event_count(test, v, "buy") == 3


BAD_IDS = ["", "x" * (MAX_EVENT_ID + 1), True, 1.5, ["a"], {"a": 1}, "\ud800", 10**400]


@pytest.mark.parametrize("bad", BAD_IDS, ids=lambda b: type(b).__name__)
def test_an_event_id_that_is_no_id_records_nothing_as_record_metric_does(served, bad, caplog):
    manager, client = served
    variants = _expose(client, "u1")
    # record_metric refuses it (False: nothing recorded) ...
    assert manager.record_metric("checkout", "probe", user_context={"user_id": "u1"},
                                 event_id=bad) is False  # fmt: skip
    # ... and so does track, which returns nothing and never raises: a warning, once.
    with caplog.at_level(logging.WARNING, logger="cfgcore.openfeature"):
        _track(client, "u1", 1.0, {EVENT_ID_ATTRIBUTE: bad})
        _track(client, "u1", 1.0, {EVENT_ID_ATTRIBUTE: bad})
    warned = [r for r in caplog.records if r.name == "cfgcore.openfeature"]
    assert len(warned) == 1 and warned[0].levelno == logging.WARNING
    assert "not recorded" in warned[0].getMessage() and "event_id" in warned[0].getMessage()
    assert not any(r.exc_info for r in caplog.records)  # refused, not failed
    _track(client, "u1", 2.0, {EVENT_ID_ATTRIBUTE: "ok-1"})  # the provider still tracks
    assert sorted((r["test"], r["metric"], r["event_id"]) for r in _lines(manager)) == [
        ("checkout", "buy", "ok-1"),
        ("pricing", "buy", "ok-1"),
    ]
    for test, v in variants.items():
        assert _report(manager).event_count(test, v, "buy") == 1


def test_a_refused_event_id_exposes_nobody(served):
    manager, client = served
    _track(client, "never-exposed", 1.0, {EVENT_ID_ATTRIBUTE: ""})
    manager.exposures.flush()
    path = state_paths(manager.flags_file)["exposures"]
    assert not os.path.exists(path) or read_exposures(path) == []
    assert _lines(manager) == []


_ids = st.one_of(
    any_text(max_size=MAX_EVENT_ID + 2),
    st.integers(-(10**300), 10**300),
    st.booleans(),
    st.floats(allow_nan=False),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(any_text(max_size=2), st.integers(), max_size=1),
)


def test_track_takes_exactly_the_event_ids_record_metric_takes(tmp_path, impl):
    users = itertools.count()
    with serving(tmp_path, impl, "checkout") as (manager, client):

        @settings(max_examples=examples(60), deadline=None)
        @given(_ids)
        def check(eid):
            user = f"user-{next(users)}"
            _expose(client, user, ("checkout",))
            taken = manager.record_metric(
                "checkout", "probe", user_context={"user_id": user}, event_id=eid
            )
            _track(client, user, 1.0, {EVENT_ID_ATTRIBUTE: eid})
            mine = [r for r in _lines(manager) if r["user"] == user]
            assert [r["metric"] for r in mine] == (["probe", "buy"] if taken else [])
            if taken:  # the same id, as record_metric wrote it
                assert mine[0]["event_id"] == mine[1]["event_id"]

        check()


class _Unhashable(str):
    """An event name that fails whatever compares or hashes it."""

    def __eq__(self, other):
        raise RuntimeError("no comparing me")

    __hash__ = None  # type: ignore[assignment]


def test_a_track_failing_on_every_event_logs_its_traceback_once_then_counts(served, caplog):
    from cfgcore.openfeature import TRACK_FAILURES_SAID_EVERY

    _manager, client = served
    with caplog.at_level(logging.ERROR, logger="cfgcore.openfeature"):
        for _ in range(2 * TRACK_FAILURES_SAID_EVERY + 5):  # never raises
            client.provider.track(_Unhashable("buy"), EvaluationContext("u1"))
    said = [r for r in caplog.records if r.name == "cfgcore.openfeature"]
    # it wrote a traceback per call: 2,005 of them
    assert [bool(r.exc_info) for r in said] == [True, False, False], [r.getMessage() for r in said]
    assert "further RuntimeError failures are counted" in said[0].getMessage()
    assert said[1].getMessage().startswith(f"{TRACK_FAILURES_SAID_EVERY} tracking events not")
    assert said[2].getMessage().startswith(f"{2 * TRACK_FAILURES_SAID_EVERY} tracking events")
