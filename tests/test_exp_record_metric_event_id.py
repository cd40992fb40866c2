"""``record_metric(..., event_id=)``: the seed API's per-request call takes the
application's event id, on both evaluators' SeedAPI (the compiled one serves the
manager's ``record_metric``), so a retried call is one event."""

from __future__ import annotations

import json
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore._layout import DEDUP_SHARDS
from cfgcore.dynamic_config import DynamicConfigurationManager
from cfgcore.engine import engine_class
from cfgcore.experiments.dynamic import state_paths
from cfgcore.experiments.event_ids import MAX_EVENT_ID, event_id_text
from cfgcore.experiments.exposures import UNTAGGED
from cfgcore.experiments.metrics import MetricsStore
from tests.fuzz import examples
from tests.test_exp_event_ids import _ab
from tests.texts import any_text


@pytest.fixture
def manager(tmp_path, impl):
    engine = engine_class(impl).from_snapshot({"flags": {}})
    m = DynamicConfigurationManager(state_dir=tmp_path / "state", engine=engine)
    assert m.create_ab_test(_ab())
    yield m
    m.close()


def _lines(path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def test_the_seed_api_serves_record_metric_with_an_event_id(manager, impl):
    if impl.IMPLEMENTATION == "c":  # the call a request makes is the compiled one
        assert type(manager.record_metric).__name__ == "builtin_function_or_method"
    ctx = {"user_id": "u1"}
    for _ in range(3):  # a client's retries of one purchase
        assert manager.record_metric("exp", "ctr", 1.0, user_context=ctx, event_id="order-1")
    assert manager.record_metric("exp", "ctr", 1.0, user_context=ctx, event_id=42)
    assert manager.record_metric("exp", "revenue", 5.0, user_context=ctx, event_id="order-1")
    assert manager.record_metric("exp", "ctr", 1.0, user_context=ctx)  # an id of its own
    manager.metrics.flush()
    lines = _lines(manager.metrics.path)
    assert [(r["metric"], r["event_id"]) for r in lines[:3]] == [
        ("ctr", "order-1"),
        ("ctr", "42"),
        ("revenue", "order-1"),
    ]
    assert len(lines) == 4 and lines[3]["event_id"] not in ("order-1", "42")
    assert len({r.get("run") for r in lines}) == 1  # with an id or without: one run tag
    assert manager.metrics.duplicates == {"exp": 2}
    variant = manager.get_ab_test_variant("exp", ctx)
    store = MetricsStore.load(manager.metrics.path)
    assert store.event_count("exp", variant, "ctr") == 3


@pytest.mark.parametrize(
    "bad", ["", "x" * (MAX_EVENT_ID + 1), True, 1.5, ["a"], {"a": 1}, "\ud800"]
)
def test_an_event_id_that_is_no_id_records_nothing_and_exposes_nobody(manager, bad):
    ctx = {"user_id": "never-exposed"}
    assert manager.record_metric("exp", "ctr", 1.0, user_context=ctx, event_id=bad) is False
    manager.metrics.flush()
    manager.exposures.flush()
    assert not os.path.exists(manager.metrics.path) or _lines(manager.metrics.path) == []
    path = state_paths(manager.flags_file)["exposures"]
    exposed = _lines(path) if os.path.exists(path) else []
    assert [r for r in exposed if r.get("user") == "never-exposed"] == []


def test_a_test_created_again_tags_events_with_ids_with_its_run(manager):
    assert manager.delete_ab_test("exp")
    assert manager.create_ab_test(_ab())
    ctx = {"user_id": "u2"}
    assert manager.record_metric("exp", "ctr", 1.0, user_context=ctx, event_id="e-1")
    assert manager.record_metric("exp", "ctr", 1.0, user_context=ctx)
    manager.metrics.flush()
    runs = {r["event_id"]: r.get("run") for r in _lines(manager.metrics.path)}
    assert runs["e-1"] is not None
    assert set(runs.values()) == {runs["e-1"]}  # with and without an id: the same run


@pytest.fixture(scope="module")
def both_impls():
    from tests.conftest import IMPLS, IN_CI

    if "c" not in IMPLS:
        if IN_CI:
            pytest.fail("the compiled extension cfgcore._eval is not built (CI=true)")
        pytest.skip("the compiled extension cfgcore._eval is not built here")
    return [IMPLS["py"], IMPLS["c"]]


SNAPSHOT = {"flags": {"exp": {"variants": {"a": "A", "b": "B"}, "default": "b"}}}


def _seed(impl, queue):
    engine = engine_class(impl).from_snapshot(SNAPSHOT)
    seed = impl.SeedAPI(engine, {"exp": tuple(set() for _ in range(DEDUP_SHARDS))}, lambda *a: None)
    records: list = []

    def record(*args, **kwargs):
        records.append((args, kwargs))
        return True

    seed.metrics_to(queue, record, None, event_id_text, UNTAGGED)
    seed.metas = {"exp": {}}
    return seed, records


@settings(max_examples=examples(60), deadline=None)
@given(
    st.one_of(
        st.none(),
        any_text(max_size=MAX_EVENT_ID + 2),
        st.integers(-(10**300), 10**300),
        st.booleans(),
        st.floats(),
        st.lists(st.integers(), max_size=2),
    ),
    st.booleans(),
)
def test_both_seed_apis_read_an_event_id_alike(both_impls, eid, queued):
    """The compiled SeedAPI and the reference agree on every event id: what they queue
    or record, and whether the call counts."""
    out = []
    for impl in both_impls:
        queue: list = []
        seed, records = _seed(impl, queue.append if queued else None)
        answer = seed.record_metric("exp", "m", 2.0, user_context={"user_id": "u"}, event_id=eid)
        events = [e[:5] + e[6:] for e in queue]  # (without the time)
        out.append((answer, events, records))
    assert out[0] == out[1]
    answer, events, records = out[0]
    text = None if eid is None else event_id_text(eid)
    assert answer is (eid is None or text is not None)
    if answer and queued:
        assert events == (
            [("exp", "b", "m", 2.0, "u", False, UNTAGGED, text)]
            if text
            else [("exp", "b", "m", 2.0, "u")]
        )
    if answer and not queued:
        expected_kwargs = {"event_id": text} if text else {}
        assert records == [(("exp", "b", "m", 2.0, "u"), expected_kwargs)]


def test_a_seed_api_without_an_id_reader_refuses_every_event_id(impl):
    seed, records = _seed(impl, None)
    seed.metrics_to(None, lambda *a, **k: records.append(a))  # (an older caller's wiring)
    assert seed.record_metric("exp", "m", 1.0, user_context={"user_id": "u"}, event_id="x") is False
    assert seed.record_metric("exp", "m", 1.0, user_context={"user_id": "u"}) is True
    assert len(records) == 1


def test_an_untagged_event_with_an_id_is_written_without_a_run(tmp_path, impl):
    """A test no run tag names (``runs`` without it): the id's event carries the
    ``untagged`` slot, which the store writes as no ``run`` at all."""
    store = MetricsStore(tmp_path / "m.jsonl")
    try:
        seed, _records = _seed(impl, store.queue)
        seed.metrics_to(store.queue, store.record, None, event_id_text, UNTAGGED)
        assert seed.runs == {}
        assert seed.record_metric("exp", "m", 1.0, user_context={"user_id": "u"}, event_id="e1")
        assert seed.record_metric("exp", "m", 1.0, user_context={"user_id": "u"}, event_id="e1")
        store.flush()
    finally:
        store.close()
    (line,) = _lines(tmp_path / "m.jsonl")
    assert line["event_id"] == "e1" and "run" not in line
    assert line["test"] == "exp" and line["user"] == "u"
