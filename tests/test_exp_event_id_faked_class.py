"""An ``event_id`` whose ``__class__`` raises (or lies) is no id: ``track_metric``,
``record_metric`` and ``MetricsStore.record`` return False and never raise.

``event_id_text`` asked ``isinstance()``, which reads a value's ``__class__`` when its
real type is not the one asked about: an object whose ``__class__`` property raises
made ``track_metric`` (a request-path call that "never raises on bad data") and
``MetricsStore.record`` raise, while ``record_metric`` caught it. An id is now read by
its real type, as the engine reads a user id (``details.bucketable_id``): an object
only posing as a str or int is refused, whatever its ``__str__`` says.
"""

from __future__ import annotations

import pytest

from cfgcore.experiments.event_ids import event_id_text
from cfgcore.experiments.metrics import MetricsStore
from tests.test_core_hostile import FakeClass
from tests.test_exp_event_ids import _lines, _manager


class FakeClassStr(str):
    """A real str subclass whose ``__class__`` raises."""

    @property
    def __class__(self):
        raise RuntimeError("__class__")


class PosingAsStr:
    """Not a str, but ``isinstance(x, str)`` says it is (``__class__`` lies)."""

    __class__ = str  # type: ignore[assignment]

    def __str__(self):
        return "order-1"


HOSTILE_IDS = {  # made in each test: pytest's parametrize asks isinstance() of its values
    "raising": FakeClass,
    "raising-str": lambda: FakeClassStr("order-1"),
    "posing": PosingAsStr,
}


@pytest.mark.parametrize("kind", HOSTILE_IDS)
def test_event_id_text_reads_the_real_type(kind):
    eid = HOSTILE_IDS[kind]()
    expected = "order-1" if type(eid) is FakeClassStr else None  # a str subclass by its value
    assert event_id_text(eid) == expected


@pytest.mark.parametrize("kind", HOSTILE_IDS)
def test_track_and_record_metric_never_raise_on_an_event_id(tmp_path, impl, kind):
    eid = HOSTILE_IDS[kind]()
    m = _manager(impl, tmp_path / "state")
    try:
        ctx = {"user_id": "u1"}
        m.get_ab_test_variant("exp", ctx)  # exposed: a tracked event would count
        ok = type(eid) is FakeClassStr
        assert m.track_metric("exp", "ctr", 1.0, user_context=ctx, event_id=eid) is ok
        assert m.record_metric("exp", "revenue", 1.0, user_context=ctx, event_id=eid) is ok
        m.metrics.flush()
        lines = _lines(m.metrics.path) if ok else []
        assert [(r["metric"], r["event_id"]) for r in lines] == (
            [("ctr", "order-1"), ("revenue", "order-1")] if ok else []
        )
    finally:
        m.close()


@pytest.mark.parametrize("kind", HOSTILE_IDS)
def test_metrics_store_record_never_raises_on_an_event_id(tmp_path, kind):
    eid = HOSTILE_IDS[kind]()
    store = MetricsStore(tmp_path / "m.jsonl")
    try:
        ok = type(eid) is FakeClassStr
        assert store.record("exp", "control", "ctr", 1.0, "u1", event_id=eid) is ok
    finally:
        store.close()
