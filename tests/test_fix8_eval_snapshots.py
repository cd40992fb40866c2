"""Compiled snapshots pickle on both evaluators, and each engine owns its own.

* ``pickle`` (and ``copy``) of ``engine.snapshot()`` works on the compiled
  evaluator as on the pure-Python one: as its tables, version and clock; the loaded
  copy answers exactly as the original, and its counters start at zero.
* A compiled snapshot swapped into a second engine is installed there as a private
  copy compiled from the same tables: the engines no longer share a version, a
  clock or counters.
"""

from __future__ import annotations

import copy
import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.engine import engine_class
from tests.fuzz import examples
from tests.texts import any_text

DOC = {
    "flags": {
        "new_ui": {
            "default": "off",
            "variants": {"on": True, "off": False},
            "rules": [
                {"when": {"attr": "email", "matches": r"@example\.com$"}, "serve": "on"},
                {"when": {"attr": "version", "semver_gt": "2.0.0"}, "serve": "on"},
                {"serve": "on", "rollout": 30},
            ],
        },
        "banner": {
            "default": "a",
            "variants": {"a": "A", "b": "B", "c": {"text": "C"}},
            "rules": [
                {"when": {"attr": "plan", "in": ["pro", "team"]}, "split": {"b": 50, "c": 50}}
            ],
        },
        "sale": {
            "default": "off",
            "variants": {"on": True, "off": False},
            "schedule": {"start": "2030-01-01T00:00:00Z"},
            "rules": [{"serve": "on"}],
        },
    }
}
KEYS = ["new_ui", "banner", "sale", "missing"]


def _answers(snap, ctx):
    out = []
    for key in KEYS:
        d = snap.evaluate(key, ctx)
        out.append((d.value, d.variant, d.reason, d.error_code, d.snapshot_version))
    return out, snap.evaluate_all(ctx)


@pytest.mark.parametrize("how", ["pickle", "copy", "deepcopy"])
def test_a_snapshot_pickles_and_answers_as_the_original(make, how):
    engine = make(DOC)
    engine.set_clock(None)
    snap = engine.snapshot()
    loaded = {
        "pickle": lambda s: pickle.loads(pickle.dumps(s)),
        "copy": copy.copy,
        "deepcopy": copy.deepcopy,
    }[how](snap)
    assert type(loaded) is type(snap) and loaded is not snap
    assert loaded.version == snap.version
    for ctx in [
        {"email": "ann@example.com"},
        {"email": "bob@example.org", "user_id": "u1", "plan": "pro"},
        {"version": "2.1.0", "user_id": "u2", "plan": "team"},
        {"user_id": "u3"},
        None,
    ]:
        assert _answers(loaded, ctx) == _answers(snap, ctx)


@settings(max_examples=examples(40), deadline=None)
@given(user=any_text(max_size=12), plan=st.sampled_from(["pro", "team", "free", None]))
def test_a_pickled_snapshot_buckets_every_user_alike(make_py_and_c, user, plan):
    for build in make_py_and_c:
        snap = build(DOC).snapshot()
        loaded = pickle.loads(pickle.dumps(snap))
        ctx = {"user_id": user, "plan": plan}
        assert _answers(loaded, ctx) == _answers(snap, ctx)


def test_a_loaded_snapshots_counters_start_at_zero(make):
    engine = make(DOC)
    snap = engine.snapshot()
    for _ in range(3):
        snap.is_enabled("new_ui", {"email": "ann@example.com"})
    loaded = pickle.loads(pickle.dumps(snap))
    assert loaded.counters.take() == ({}, {})
    evaluations, _ = snap.counters.take()
    assert sum(evaluations.values()) == 3


def test_a_snapshot_with_a_clock_keeps_it(make):
    engine = make(DOC)
    engine.set_clock(_after_2030)
    loaded = pickle.loads(pickle.dumps(engine.snapshot()))
    assert loaded.clock is _after_2030
    assert loaded.is_enabled("sale") is True


def _after_2030() -> float:
    return 1_900_000_000.0  # 2030-03-17


def test_one_snapshot_swapped_into_two_engines_is_owned_by_each(make):
    first, second = make(DOC), make(DOC)
    first.set_clock(_after_2030)
    shared = first.snapshot()
    version, clock = first.version, shared.clock
    for _ in range(3):
        second.swap(shared)
    # the first engine's snapshot is untouched: its version and clock are its own
    assert first.snapshot() is shared
    assert first.version == version and shared.version == version
    assert shared.clock is clock
    assert first.is_enabled("sale") is True  # its clock: after the start
    # the second serves a private copy of the same tables
    mine = second.snapshot()
    assert mine is not shared and mine.tables is shared.tables
    assert second.version == 4 and mine.clock is None
    assert second.is_enabled("sale") is False  # the system clock: before the start
    assert second.is_enabled("new_ui", {"email": "ann@example.com"}) is True


def test_counters_of_two_engines_sharing_tables_are_their_own(make):
    first, second = make(DOC), make(DOC)
    first.set_counting(True)
    second.set_counting(True)
    second.swap(first.snapshot())
    first.take_evaluation_counts()
    second.take_evaluation_counts()
    first.is_enabled("new_ui", {"email": "ann@example.com"})
    for _ in range(2):
        second.is_enabled("new_ui", {"email": "ann@example.com"})
    assert sum(first.take_evaluation_counts().evaluations.values()) == 1
    assert sum(second.take_evaluation_counts().evaluations.values()) == 2


def test_a_new_engine_built_on_anothers_snapshot_owns_a_copy(make):
    first = make(DOC)
    cls = type(first)
    shared = first.snapshot()
    version = first.version
    second = cls(shared)
    second.swap(DOC)
    second.swap(second.snapshot())
    assert first.snapshot() is shared and shared.version == version
    assert second.snapshot() is not shared


def test_the_same_engine_may_install_its_own_snapshot_again(make):
    engine = make(DOC)
    old = engine.snapshot()
    engine.swap(DOC)
    engine.swap(old)  # a rollback: its own object, not a copy
    assert engine.snapshot() is old and old.version == engine.version == 3


def test_a_snapshot_of_a_dead_engine_is_taken_as_it_is(make):
    import gc

    first = make(DOC)
    shared = first.snapshot()
    del first
    gc.collect()
    second = make(DOC)
    second.swap(shared)
    assert second.snapshot() is shared


def test_both_evaluators_pickle(impl):
    engine = engine_class(impl).from_snapshot(DOC)
    assert pickle.loads(pickle.dumps(engine.snapshot())).variant("banner") == "a"
