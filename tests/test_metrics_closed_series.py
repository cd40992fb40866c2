"""Every series kind leaves the scrape with the object it describes, and a counter never
goes down while it is exported.

A process that opens and closes many managers, stores and engines (tests, one per
tenant, reloads) must not keep their series: a closed configuration manager's gauges,
a closed flag set's flag evaluation series (once idle), an experiment nobody serves any
more. And a store closed while another of the same URL stays open, or closed and
opened again, must neither count the same documents twice nor lose them (Prometheus
reads a counter going down as a reset and counts what follows in full). Read through
the real prometheus_client registry and its text exposition."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.config.manager import ConfigurationManager
from cfgcore.errors import ConfigError
from cfgcore.experiments.dynamic import DynamicConfigurationManager
from cfgcore.experiments.exposures import ExposureLogger, MemorySink
from cfgcore.observability import instruments
from cfgcore.observability.evaluations import evaluation_totals
from cfgcore.runtime.flags import LiveFlags
from cfgcore.runtime.flagstore import FileFlagStore, MemoryFlagStore
from cfgcore.runtime.redis_store import RedisFlagStore
from cfgcore.snapshot import Flag, Snapshot
from tests.conftest import copy_bundled_config
from tests.fuzz import examples

pytest.importorskip("prometheus_client")

from prometheus_client import CollectorRegistry, generate_latest  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from cfgcore.observability.prometheus import register  # noqa: E402


def _scrape() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of one scrape: (sample name, sorted labels) -> value."""
    reg = CollectorRegistry()
    register(reg)
    text = generate_latest(reg).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _with(scraped: dict, **labels: str) -> dict:
    return {k: v for k, v in scraped.items()
            if all((name, value) in k[1] for name, value in labels.items())}  # fmt: skip


@pytest.fixture
def retain():
    """Set the evaluation totals' retain seconds (which closed objects' counts and
    experiments follow too) for one test."""
    totals = evaluation_totals()
    before = totals.retain
    yield lambda seconds: setattr(totals, "retain", seconds)
    totals.retain = before


def _flag(n: int) -> Snapshot:
    return Snapshot(flags={"f": Flag(variants={"v": n}, default="v")})


def _good(live: LiveFlags, n: int) -> None:
    live.update(lambda s: _flag(n), source="t")


def _bad(live: LiveFlags) -> None:
    with pytest.raises(ConfigError):
        broken = Snapshot(flags={"f": Flag(variants={"v": 1}, default="x")})
        live.update(lambda s: broken, source="t")


# -- configuration managers ------------------------------------------------------------


def test_a_closed_configuration_manager_leaves_the_scrape_though_still_held(tmp_path):
    config_dir = str(copy_bundled_config(tmp_path / "tenant"))
    manager = ConfigurationManager(config_dir, environ={})
    manager.load_environment_config("staging")
    names = {k[0] for k in _with(_scrape(), config_dir=config_dir)}
    gauges = ("version", "snapshot_age_seconds", "reload_failing", "hot_reload_enabled")
    assert {f"cfgcore_config_{name}" for name in gauges} <= names
    manager.close()
    assert _with(_scrape(), config_dir=config_dir) == {}  # `manager` is still held here


# -- counters of flag sets and stores --------------------------------------------------


def test_one_of_two_sets_of_a_store_closing_does_not_lower_its_counters(tmp_path, retain):
    retain(3600)
    path = tmp_path / "flags.json"
    path.write_text('{"version": 1, "flags": {}}')
    url = "file://" + str(path)
    key = ("cfgcore_flag_documents_total", (("result", "ok"), ("store", url)))
    first, second = LiveFlags(FileFlagStore(path)), LiveFlags(FileFlagStore(path))
    try:
        _good(first, 1)
        _good(first, 2)
        _bad(first)
        assert _scrape()[key] == 4  # two first documents, two updates
        first.close()
        scraped = _scrape()
        assert scraped[key] == 4  # not 1: a decrease would be read as a reset
        assert scraped[key[0], (("result", "rejected"), ("store", url))] == 1
        _good(second, 3)
        assert _scrape()[key] == 5
    finally:
        first.close()
        second.close()
    assert _with(_scrape(), store=url) == {}
    # opened again (a reload) within retain: it goes on from 5, it does not start over
    # at 1, which Prometheus may never see as a reset (5 -> 6 would read as +1 of 6)
    again = LiveFlags(FileFlagStore(path))
    try:
        assert _scrape()[key] == 6
    finally:
        again.close()


def test_closed_stores_counts_are_forgotten_after_retain_and_past_the_limit(
    tmp_path, retain, monkeypatch
):
    retain(3600)
    monkeypatch.setattr(instruments._Closed, "limit", 3)
    paths = []
    for i in range(6):
        path = tmp_path / f"flags{i}.json"
        path.write_text('{"version": 1, "flags": {}}')
        paths.append(path)
        live = LiveFlags(FileFlagStore(path))
        _good(live, i)
        live.close()
        _scrape()  # each scrape keeps at most `limit` closed stores' counts

    def reopened_count(path) -> float:
        live = LiveFlags(FileFlagStore(path))
        try:
            url = "file://" + str(path)
            return _scrape()["cfgcore_flag_documents_total", (("result", "ok"), ("store", url))]
        finally:
            live.close()

    assert reopened_count(paths[0]) == 1  # forgotten: past the limit, oldest first
    assert reopened_count(paths[5]) == 3  # kept: two before, one now
    retain(0)
    _scrape()
    assert reopened_count(paths[5]) == 1  # forgotten once retain passed


def test_memory_stores_opened_and_closed_keep_nothing_past_retain(retain):
    retain(0)
    urls = set()
    for _ in range(50):
        live = LiveFlags(MemoryFlagStore(Snapshot()))
        urls.add(live.store.url)
        _good(live, 1)
        live.close()
    _scrape()
    # (only these stores' entries: another test of this worker may still hold a store
    # open, whose closed counts rightly stay)
    kept = [labels for _kind, labels in instruments._CLOSED._counts if labels[0] in urls]
    assert not kept


def test_a_redis_store_closing_beside_another_of_its_url_keeps_its_counts(
    redis_server, tmp_path, retain
):
    retain(3600)
    url = redis_server.url + f"?namespace=twice&cache={tmp_path / 'c.msgpack'}"
    first, second = LiveFlags(RedisFlagStore(url)), LiveFlags(RedisFlagStore(url))
    try:
        labels = (("document", "flags"), ("store", first.store.url))
        _good(first, 1)
        _good(first, 2)
        assert _scrape()["cfgcore_flag_store_writes_total", labels] == 2
        first.close()
        assert _scrape()["cfgcore_flag_store_writes_total", labels] == 2
    finally:
        first.close()
        second.close()
    assert _with(_scrape(), store=first.store.url) == {}


# -- per-flag evaluation series --------------------------------------------------------


def test_a_closed_flag_set_still_held_gives_up_its_flags_evaluation_series(retain):
    retain(0)
    live = LiveFlags(MemoryFlagStore(Snapshot(flags={
        "closed_tenant_flag": Flag(variants={"on": True}, default="on"),
    })))  # fmt: skip
    other = LiveFlags(MemoryFlagStore(Snapshot(flags={
        "open_tenant_flag": Flag(variants={"on": True}, default="on"),
    })))  # fmt: skip
    try:
        assert live.engine.is_enabled("closed_tenant_flag", {}) is True
        assert other.engine.is_enabled("open_tenant_flag", {}) is True
        assert _with(_scrape(), flag="closed_tenant_flag")
        live.close()
        scraped = _scrape()
        # idle and served by no open set: gone, though `live` (and its engine) is held
        assert _with(scraped, flag="closed_tenant_flag") == {}
        # a flag an open set serves stays, however idle
        assert _with(scraped, flag="open_tenant_flag")
        # the closed set's engine still serves; evaluated again, it is counted again
        assert live.engine.is_enabled("closed_tenant_flag", {}) is True
        assert _with(_scrape(), flag="closed_tenant_flag")
    finally:
        live.close()
        other.close()


# -- experiments -----------------------------------------------------------------------


@settings(max_examples=examples(25), deadline=None)
@given(st.lists(st.text(min_size=1, max_size=20), min_size=1, max_size=5, unique=True))
def test_experiment_names_no_engine_serves_leave_the_scrape_once_idle(names):
    totals = evaluation_totals()
    before = totals.retain
    logger = ExposureLogger([MemorySink()])
    try:
        totals.retain = 3600
        for name in names:
            logger.log("hostile:" + name, "v", "u1")
        assert logger.flush()
        exposures = {k[1] for k in _scrape() if k[0] == "cfgcore_ab_exposures_total"}
        for name in names:
            assert (("experiment", "hostile:" + name), ("variant", "v")) in exposures
        totals.retain = 0
        left = {dict(k[1])["experiment"] for k in _scrape()
                if k[0] == "cfgcore_ab_exposures_total"}  # fmt: skip
        assert not any(e.startswith("hostile:") for e in left)
    finally:
        totals.retain = before
        logger.close()


def test_an_experiment_a_live_manager_serves_keeps_its_series_however_idle(tmp_path, retain):
    from cfgcore.dynamic_config import ABTestConfiguration

    now = datetime.now()
    test = ABTestConfiguration(
        "served_test", "kept", now - timedelta(days=1), now + timedelta(days=1),
        {"control": 50, "treatment": 50}, {"control": {"x": 1}, "treatment": {"x": 2}}, ["ctr"],
    )  # fmt: skip
    dyn = DynamicConfigurationManager(state_dir=tmp_path)
    try:
        assert dyn.create_ab_test(test) is True
        for i in range(20):
            dyn.get_ab_test_variant("served_test", {"user_id": f"u-{i}"})
        assert dyn.exposures.flush()
        retain(0)
        mine = _with(_scrape(), experiment="served_test")
        assert sum(mine.values()) == 20
        dyn.close()
        # closed: its engine is retired, and the idle experiment goes
        assert _with(_scrape(), experiment="served_test") == {}
    finally:
        dyn.close()
