"""A dynamic-config manager's views of its flag document (the flags its checks serve,
its A/B tests, their exposure dedup and run tags, ``get_feature_flags_status``,
``snapshot``) change in one assignment, with the compiled snapshot they were made
from. The engine swaps first; a request that reads the manager in between sees one
document whole, never the new flags with the old tests. Both evaluators, real
managers and files."""

from __future__ import annotations

import copy
import gc
import json
import types
import weakref
from typing import Any

import pytest

from cfgcore import _reclaim
from cfgcore._layout import DEDUP_SHARDS
from cfgcore.dynamic_config import DynamicConfigurationManager
from cfgcore.engine import engine_class
from cfgcore.experiments.dynamic import state_paths
from cfgcore.experiments.exposures import UNTAGGED, ExposureLogger, read_exposures
from tests.races import readers_racing
from tests.test_exp_event_ids import _ab

DOC = {"flags": {"base": {"default": "on"}}}


@pytest.fixture
def manager(tmp_path, impl):
    engine = engine_class(impl).from_snapshot(DOC)
    m = DynamicConfigurationManager(state_dir=tmp_path / "state", engine=engine)
    yield m
    m.close()


def _in_the_window(manager, probe):
    """Call ``probe()`` right after each engine swap, before the manager hears of it:
    the moment its views and the engine differ. Returns what each call gave."""
    seen = []
    manager.engine.add_swap_listener(lambda old, new: seen.append(probe()))
    return seen


def test_a_new_flag_and_its_status_go_live_together(manager):
    seen = _in_the_window(
        manager,
        lambda: (
            manager.engine.is_enabled("fresh"),  # the engine: the new document already
            manager.is_feature_enabled("fresh"),
            "fresh" in manager.get_feature_flags_status(),
            "fresh" in manager.snapshot.flags,
        ),
    )
    manager.set_feature_flag("fresh", True)
    # In the window the manager answered from the earlier document, all of it.
    assert seen == [(True, False, False, False)]
    assert manager.is_feature_enabled("fresh")
    assert "fresh" in manager.get_feature_flags_status() and "fresh" in manager.snapshot.flags


def _treated_user(manager) -> dict:
    for i in range(500):
        ctx = {"user_id": f"user-{i}"}
        if manager.engine.variant("exp", ctx) == "treatment":
            return ctx
    raise AssertionError("no user in treatment among 500")


def test_a_stopped_test_stops_with_its_metric_recording(manager, tmp_path):
    assert manager.create_ab_test(_ab())
    ctx = _treated_user(manager)
    assert manager.get_ab_test_variant("exp", ctx) == "treatment"
    seen = _in_the_window(
        manager,
        lambda: (
            manager.engine.variant("exp", ctx),
            manager.get_ab_test_variant("exp", ctx),
            manager.record_metric("exp", "ctr", 1.0, user_context=ctx),
        ),
    )
    manager.stop_ab_test("exp", "guardrail")
    # The engine serves control to everyone at once; the manager, until its views
    # change, serves the running test whole: the user's own variant, and the event
    # recorded under it. Before, its check came from the new document and its metric
    # recording from the old: the event went to control, a variant the user never saw.
    assert seen == [("control", "treatment", True)]
    assert manager.get_ab_test_variant("exp", ctx) == "control"
    assert manager.record_metric("exp", "ctr", 1.0, user_context=ctx) is False
    assert manager.metrics.flush(10)
    with open(state_paths(manager.flags_file)["metrics"], encoding="utf-8") as f:
        events = [json.loads(line) for line in f]
    assert [(e["variant"], e["user"]) for e in events] == [("treatment", ctx["user_id"])]


def test_a_new_test_serves_and_logs_from_one_document(manager):
    ctx = {"user_id": "user-7"}
    seen = _in_the_window(
        manager,
        lambda: (
            manager.engine.variant("exp", ctx) is not None,
            manager.get_ab_test_variant("exp", ctx),
            "exp" in manager.list_ab_tests(),
        ),
    )
    assert manager.create_ab_test(_ab())
    assert seen == [(True, None, False)]
    variant = manager.get_ab_test_variant("exp", ctx)
    assert variant in ("control", "treatment")
    assert manager.exposures.flush(10)
    logged = read_exposures(state_paths(manager.flags_file)["exposures"])
    assert [(e.test, e.variant, e.user) for e in logged] == [("exp", variant, "user-7")]


def test_a_test_created_again_logs_its_users_afresh(manager):
    assert manager.create_ab_test(_ab())
    ctx = {"user_id": "user-3"}
    first = manager.get_ab_test_variant("exp", ctx)
    assert manager.delete_ab_test("exp")
    # A request served from the earlier document while the new run goes live marks its
    # user in the earlier run's dedup, not in the new run's.
    seen = _in_the_window(manager, lambda: manager.get_ab_test_variant("exp", ctx))
    assert manager.create_ab_test(_ab())
    assert seen == [None]  # (the deleted test: the document in between has none)
    again = manager.get_ab_test_variant("exp", ctx)
    assert first in ("control", "treatment") and again in ("control", "treatment")
    assert manager.exposures.flush(10)
    logged = read_exposures(state_paths(manager.flags_file)["exposures"])
    assert [(e.test, e.user) for e in logged] == [("exp", "user-3"), ("exp", "user-3")]
    assert logged[0].run != logged[1].run


def test_the_seed_api_evaluates_on_the_snapshot_its_views_were_made_from(impl):
    engine = engine_class(impl).from_snapshot({"flags": {"f": {"default": "on"}}})
    earlier = engine.snapshot()
    api = impl.SeedAPI(engine, {}, lambda *a: None)
    other = engine_class(impl).from_snapshot({"flags": {"f": {"default": "off"}}})
    engine.swap(other.snapshot().tables)  # the engine now serves f off
    assert api.is_feature_enabled("f") is False  # views[0] None: the engine's live one
    api.views = (earlier, {}, {}, {}, "the owner's")
    assert api.is_feature_enabled("f") is True  # the snapshot its views were made from
    assert api.views[4] == "the owner's"
    # tests/metas/runs each replace one item: a new tuple, the rest kept.
    views = api.views
    api.metas = {"t": {}}
    assert api.views is not views and api.views[0] is earlier and api.metas == {"t": {}}
    twin = copy.copy(api)
    assert twin.views is api.views and twin.is_feature_enabled("f") is True


@pytest.mark.parametrize(
    "views",
    [
        None,
        [None, {}, {}, {}],
        (None, {}, {}),
        ("snapshot", {}, {}, {}),
        (None, None, {}, {}),
        (None, {}, [], {}),
        (None, {}, {}, "runs"),
    ],
)
def test_views_that_are_not_views_are_refused_and_change_nothing(impl, views):
    engine = engine_class(impl).from_snapshot({"flags": {"f": {"default": "on"}}})
    api = impl.SeedAPI(engine, {}, lambda *a: None)
    before = api.views
    with pytest.raises(TypeError):
        api.views = views
    assert api.views is before
    for name in ("tests", "metas", "runs"):
        with pytest.raises(TypeError):
            setattr(api, name, None)
    assert api.views is before and api.is_feature_enabled("f") is True


def test_the_other_evaluators_snapshot_is_refused(impl):
    from cfgcore import _eval_py

    other = _eval_py if impl is not _eval_py else pytest.importorskip("cfgcore._eval")
    engine = engine_class(impl).from_snapshot({"flags": {}})
    foreign = engine_class(other).from_snapshot({"flags": {}}).snapshot()
    api = impl.SeedAPI(engine, {}, lambda *a: None)
    with pytest.raises(TypeError, match="CompiledSnapshot"):
        api.views = (foreign, {}, {}, {})


@pytest.mark.skipif(not _reclaim._EXACT_COUNTS, reason="reference counts are not exact here")
def test_a_reload_leaves_the_older_snapshot_to_the_reclaimer(tmp_path):
    # The manager's views move to the new snapshot before the older one is handed to
    # the reclaimer, so nothing of the manager's holds it there: it is taken apart.
    # (A document under LARGE_FLAGS flags is not handed over: freed whole, no thread.)
    path = tmp_path / "flags.json"
    flags = {f"f{i}": {"default": "on"} for i in range(_reclaim.LARGE_FLAGS)}
    path.write_text(json.dumps({"flags": flags}))
    m = DynamicConfigurationManager(flags_file=str(path), state_dir=tmp_path / "state")
    try:
        old = weakref.ref(m.engine.snapshot())
        assert m.is_feature_enabled("f1")
        assert _reclaim.drain()  # (what earlier tests of this process retired)
        before = dict(_reclaim.stats)
        path.write_text(json.dumps({"flags": {**flags, "f1": {"default": "off"}}}))
        assert m.reload()
        assert m._views[0] is m.engine.snapshot() is not old()
        assert _reclaim.drain()
        gc.collect()
        assert old() is None and _reclaim.stats["dropped_shared"] == before["dropped_shared"]
        assert _reclaim.stats["taken_apart"] > before["taken_apart"]
        assert m.is_feature_enabled("f1") is False
    finally:
        m.close()


class _Lying(dict):
    """A dict whose own lookups lie: the evaluators read views as dicts, never these."""

    def get(self, *args):
        return "lie"

    def __getitem__(self, key):
        return "lie"


def test_views_of_dict_subclasses_are_read_as_dicts_on_both_evaluators(impl):
    engine = engine_class(impl).from_snapshot({"flags": {"t": {"default": "on"}}})
    recorded = []
    api = impl.SeedAPI(engine, {}, lambda *a: None)
    api.metrics_to(None, lambda *a, **k: recorded.append(a))
    api.views = (None, _Lying({"t": False}), _Lying({"t": {}}), _Lying({"t": 2.5}))
    assert api.get_ab_test_variant("t", {"user_id": "u"}) == "on"
    assert api.get_ab_test_variant("absent", {"user_id": "u"}) is None
    assert api.record_metric("t", "m", 1.0, user_id="u") is True
    assert api.record_metric("absent", "m", 1.0, user_id="u") is False
    assert recorded == [("t", "on", "m", 1.0, "u")]


@pytest.mark.parametrize("entry", [None, (), "shards", 0])
def test_a_test_whose_entry_is_no_dedup_is_served_and_exposed_alike(impl, entry):
    # An entry that is neither False nor a tuple of shards: the test is served, and its
    # exposure goes to expose (which dedups by itself), on both evaluators.
    engine = engine_class(impl).from_snapshot({"flags": {"t": {"default": "on"}}})
    exposed = []
    api = impl.SeedAPI(engine, {"t": entry}, lambda *a: exposed.append(a[:2]))
    assert api.get_ab_test_variant("t", {"user_id": "u"}) == "on"
    assert exposed == [("t", "on")]


def test_readers_racing_changes_never_mix_two_documents(manager):
    # Real threads: a writer turns a flag on and off through the manager while readers
    # check it. When the manager's document is the same before and after the reads (no
    # change went live in between), the check and the status answer alike.
    manager.set_feature_flag("x", False)
    mixed: list = []
    checked = [0]

    def read() -> None:
        before = manager.snapshot
        on = manager.is_feature_enabled("x")
        listed = manager.get_feature_flags_status()["x"]["enabled"]
        if manager.snapshot is before:
            if on != listed:
                mixed.append((on, listed))
            checked[0] += 1

    with readers_racing(read):
        for i in range(30):
            manager.set_feature_flag("x", i % 2 == 0)
    assert checked[0] > 0 and mixed == []
    assert manager.is_feature_enabled("x") is False  # the last change: i = 29, off


# Ids the SeedAPI does not deduplicate itself (anything but an exact str or int
# user_id) go to the exposure logger's expose, which deduplicates and tags them as the
# views the request was served from said, as the SeedAPI does for its own.


class _Name(str):
    """A user id of a str subclass: deduplicated by expose, by its text."""


_BY_EXPOSE = [
    pytest.param(lambda engine: {"targeting_key": "tk-1"}, "tk-1", id="targeting_key"),
    pytest.param(lambda engine: {"user_id": _Name("u-1")}, "u-1", id="str-subclass"),
    pytest.param(
        lambda engine: engine.context(types.MappingProxyType({"targeting_key": "tk-2"})),
        "tk-2",
        id="context-over-a-mapping",
    ),
]


def _exposures(manager) -> list:
    assert manager.exposures.flush(10)
    return read_exposures(state_paths(manager.flags_file)["exposures"])


class _OwnVariant(DynamicConfigurationManager):
    """Serves get_ab_test_variant by the manager's own method body (an override)."""

    def get_ab_test_variant(self, test_name, user_context=None):
        return super().get_ab_test_variant(test_name, user_context)


@pytest.fixture(params=["seed-api", "method-body"])
def any_manager(request, tmp_path, impl):
    cls = DynamicConfigurationManager if request.param == "seed-api" else _OwnVariant
    m = cls(state_dir=tmp_path / "state", engine=engine_class(impl).from_snapshot(DOC))
    yield m
    m.close()


@pytest.mark.parametrize(("make_ctx", "user"), _BY_EXPOSE)
def test_an_exposure_in_flight_while_its_test_is_created_again_is_its_own_runs(
    any_manager, make_ctx, user
):
    manager = any_manager
    # A request reads the views, then (an engine hook, before its exposure is logged)
    # the test is deleted and created again: a new run, with new dedup shards and run
    # tag, goes live. The request was served by the earlier run: its exposure is that
    # run's, marked in that run's shards, and the new run logs the user afresh. Before,
    # it went to the logger's current shards and run: filed under the new run (whose
    # shards then held the user, so its own first request logged nothing) and missing
    # from the run that served it.
    assert manager.create_ab_test(_ab())
    ctx = make_ctx(manager.engine)
    earlier_seen, earlier_run = manager._views[1]["exp"], manager._views[3]["exp"]
    changed: list = []

    class CreateAgain:
        def after(self, hook_context, details, hints):
            if not changed:
                changed.append(True)
                assert manager.delete_ab_test("exp") and manager.create_ab_test(_ab())

    remove = manager.engine.add_hook(CreateAgain())
    served = manager.get_ab_test_variant("exp", ctx)
    remove()
    assert changed and served in ("control", "treatment")
    new_run = manager._views[3]["exp"]
    new_seen = manager.exposures.seen_shards("exp")
    assert new_run != earlier_run and new_seen is not earlier_seen
    shard = hash(user) & (DEDUP_SHARDS - 1)
    assert user in earlier_seen[shard] and user not in new_seen[shard]
    assert [(e.user, e.run) for e in _exposures(manager)] == [(user, earlier_run)]
    # The new run's first request for the user logs it, once.
    again = manager.get_ab_test_variant("exp", ctx)
    assert manager.get_ab_test_variant("exp", ctx) == again
    assert user in new_seen[shard]
    logged = [(e.user, e.variant, e.run) for e in _exposures(manager)]
    assert logged == [(user, served, earlier_run), (user, again, new_run)]


def _when_the_logger_hears(logger, probe):
    """Call ``probe()`` when the manager tells ``logger`` the new document's runs: its
    views have moved, the logger's own run tags not yet. Returns what each call gave."""
    seen: list = []

    class Probing(type(logger)):  # type: ignore[misc]
        def __setattr__(self, name, value):
            if name == "runs":
                seen.append(probe())
            super().__setattr__(name, value)

    logger.__class__ = Probing
    return seen


@pytest.mark.parametrize(("make_ctx", "user"), _BY_EXPOSE)
def test_an_exposure_served_by_new_views_is_tagged_with_their_run(manager, make_ctx, user):
    # Between the views moving and the logger's run tags moving, a request the new
    # document serves files its exposure under the new run (the views'), not under the
    # logger's earlier tags (none: the test had been deleted).
    assert manager.create_ab_test(_ab())
    assert manager.delete_ab_test("exp")
    ctx = make_ctx(manager.engine)
    seen = _when_the_logger_hears(
        manager.exposures, lambda: manager.get_ab_test_variant("exp", ctx)
    )
    assert manager.create_ab_test(_ab())
    assert seen[-1] in ("control", "treatment")
    run = manager._views[3]["exp"]
    assert manager.exposures.runs["exp"] == run
    assert [(e.user, e.variant, e.run) for e in _exposures(manager)] == [(user, seen[-1], run)]
    assert manager.get_ab_test_variant("exp", ctx) == seen[-1]
    assert len(_exposures(manager)) == 1  # deduplicated in the new run's shards


class _TakesViews:
    takes_views = True

    def __init__(self):
        self.calls: list = []

    def __call__(self, *args, **kwargs):
        self.calls.append((args[:2], kwargs))


class _HostileAttrs:
    def __init__(self):
        self.calls: list = []

    def __getattr__(self, name):
        raise RuntimeError("no attributes")

    def __call__(self, *args, **kwargs):
        self.calls.append((args[:2], kwargs))


def test_the_seed_api_calls_expose_in_the_shape_it_declares(impl):
    engine = engine_class(impl).from_snapshot({"flags": {"t": {"default": "on"}}})
    plain: list = []
    api = impl.SeedAPI(engine, {}, lambda *a, **k: plain.append((a[:2], k)))
    shards = tuple(set() for _ in range(DEDUP_SHARDS))
    runs = {"t": 2.5}
    api.views = (None, {"t": shards}, {}, runs)
    ctx = {"targeting_key": "k"}
    # A plain callable: the three arguments, as always.
    assert api.get_ab_test_variant("t", ctx) == "on"
    assert plain == [(("t", "on"), {})]
    # One whose takes_views is True: the views' shards of the test and their runs too.
    views_aware = _TakesViews()
    api.expose = views_aware
    assert api.expose is views_aware
    assert api.get_ab_test_variant("t", ctx) == "on"
    assert views_aware.calls == [(("t", "on"), {"seen": shards, "runs": runs})]
    assert copy.copy(api).get_ab_test_variant("t", ctx) == "on"  # a copy calls it alike
    assert views_aware.calls[1] == (("t", "on"), {"seen": shards, "runs": runs})
    # Read when set: an attribute that is truthy but not True, or reading it raises, is
    # the three-argument call (and never an error).
    truthy = _TakesViews()
    truthy.takes_views = 1  # type: ignore[assignment]
    api.expose = truthy
    assert api.get_ab_test_variant("t", ctx) == "on"
    assert truthy.calls == [(("t", "on"), {})]
    hostile = _HostileAttrs()
    api.expose = hostile
    assert api.get_ab_test_variant("t", ctx) == "on"
    assert hostile.calls == [(("t", "on"), {})]
    # The logger's own expose takes them.
    assert getattr(ExposureLogger([]).expose, "takes_views", None) is True


def test_the_logger_dedups_and_tags_in_the_shards_and_runs_it_is_given():
    logger = ExposureLogger([], clock=lambda: 100.0)
    records: list = []
    logger._append = records.append
    logger.runs = {"t": 1.0}
    earlier = tuple(set() for _ in range(DEDUP_SHARDS))
    shard = hash("k") & (DEDUP_SHARDS - 1)
    logger.expose("t", "a", {"targeting_key": "k"}, seen=earlier, runs={"t": 0.5})
    assert records == [("t", "a", "k", 100.0, 0.5)]
    assert "k" in earlier[shard] and "k" not in logger.seen_shards("t")[shard]
    logger.expose("t", "a", {"targeting_key": "k"}, seen=earlier, runs={"t": 0.5})
    assert len(records) == 1  # deduplicated in the shards given
    # Runs that do not name the test: untagged, as the SeedAPI's own records.
    logger.expose("t", "a", {"targeting_key": "k2"}, seen=earlier, runs={})
    assert records[-1] == ("t", "a", "k2", 100.0, UNTAGGED)
    # A dict subclass's own get() is not read (as the SeedAPI reads its views).
    logger.expose("t", "a", {"targeting_key": "k3"}, seen=earlier, runs=_Lying({"t": 0.5}))
    assert records[-1] == ("t", "a", "k3", 100.0, 0.5)
    # Without them (or with no shards): the logger's current shards and runs.
    logger.expose("t", "a", {"targeting_key": "k"})
    assert records[-1] == ("t", "a", "k", 100.0, 1.0)
    assert "k" in logger.seen_shards("t")[shard]
    for i, not_shards in enumerate((None, (), "shards", 0, (set(),))):
        logger.expose("t", "a", {"targeting_key": "k"}, seen=not_shards)  # logged there
        logger.expose("t", "a", {"targeting_key": f"n{i}"}, seen=not_shards, runs=None)
        assert records[-1] == ("t", "a", f"n{i}", 100.0, 1.0)
        assert f"n{i}" in logger.seen_shards("t")[hash(f"n{i}") & (DEDUP_SHARDS - 1)]
    assert len(records) == 9
    # Shards made by hand holding something else: not logged, never an error.
    odd = tuple([] for _ in range(DEDUP_SHARDS))
    logger.expose("t", "a", {"targeting_key": "k4"}, seen=odd, runs={"t": 0.5})
    assert len(records) == 9 and odd[hash("k4") & (DEDUP_SHARDS - 1)] == []
    # A test name that cannot be looked up: nothing, no raise.
    name: Any = ["t"]
    logger.expose(name, "a", {"targeting_key": "k5"}, seen=earlier, runs={"t": 0.5})
    assert len(records) == 9
    logger.close()


def test_readers_racing_a_test_created_again_log_the_user_for_each_run_that_served_it(manager):
    # Real threads: readers ask for a variant by targeting_key (an exposure expose
    # logs) while the test is deleted and created again, run after run. Every run that
    # served the user (the manager's views the same before and after the call) has the
    # user's exposure filed under it: none was marked in another run's shards or filed
    # under another run.
    assert manager.create_ab_test(_ab())
    ctx = {"targeting_key": "tk-race"}
    served_by: set = set()

    def read() -> None:
        before = manager._views
        if manager.get_ab_test_variant("exp", ctx) is not None and manager._views is before:
            served_by.add(before[3]["exp"])

    with readers_racing(read):
        for _ in range(40):
            assert manager.delete_ab_test("exp") and manager.create_ab_test(_ab())
    logged = {e.run for e in _exposures(manager) if e.user == "tk-race"}
    assert len(served_by) > 1 and served_by <= logged
