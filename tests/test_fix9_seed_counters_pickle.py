"""A snapshot's evaluation counters refuse to be pickled or copied, on both evaluators.

Before, ``pickle.dumps(engine.snapshot().counters)`` worked on the reference
evaluator (a copy of the tallies that counted and harvested nothing) and raised
Cython's generic error on the compiled one. Counters are this process's live
tallies, not a value: both now raise a TypeError saying what to pickle instead (the
counts ``take()`` returns). A snapshot still pickles, its copy's counters at zero."""

from __future__ import annotations

import copy
import pickle

import pytest

from cfgcore.engine import engine_class

FLAGS = {"flags": {"f": {"default": "on"}}}


@pytest.fixture
def engine(impl):
    return engine_class(impl).from_snapshot(FLAGS)


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_counters_refuse_pickling_with_a_clear_error(engine, protocol):
    snap = engine.snapshot()
    snap.is_enabled("f")
    with pytest.raises(TypeError, match="live tallies; pickle the counts instead"):
        pickle.dumps(snap.counters, protocol)


@pytest.mark.parametrize("how", [copy.copy, copy.deepcopy])
def test_counters_refuse_copying(engine, how):
    with pytest.raises(TypeError, match="cannot be pickled or copied"):
        how(engine.snapshot().counters)


def test_what_they_counted_pickles_and_the_snapshot_still_does(engine):
    snap = engine.snapshot()
    assert snap.is_enabled("f") is True
    counts = snap.counters.take()
    assert pickle.loads(pickle.dumps(counts)) == counts
    assert counts[0] == {("f", "on", "STATIC"): 1}
    again = pickle.loads(pickle.dumps(snap))
    assert again.is_enabled("f") is True
    assert again.counters.take()[0] == {("f", "on", "STATIC"): 1}  # from zero
