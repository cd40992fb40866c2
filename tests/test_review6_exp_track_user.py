"""Review of OpenFeature ``track()``: a tracked event counts once its user is exposed,
so it must be filed under the user the exposure log files. The engine buckets by a
``user_id`` that is a str or an int; any other ``user_id`` (a float, a bool, bytes) is
skipped for the targeting key, and so is it by the exposure log. ``track_metric`` filed
the event under ``str(user_id)`` ("3.5", "True") instead: held for a user no exposure
ever names, every tracked event of such contexts counted for nobody (before the
exposed-only change they all counted as one user "3.5")."""

from __future__ import annotations

import itertools

import pytest

api = pytest.importorskip("openfeature.api", reason="openfeature-sdk is not installed")

from openfeature.evaluation_context import EvaluationContext  # noqa: E402

from cfgcore.dynamic_config import (  # noqa: E402
    DynamicConfigurationManager,
)
from cfgcore.engine import engine_class  # noqa: E402
from cfgcore.experiments.dynamic import state_paths  # noqa: E402
from cfgcore.experiments.metrics import MetricsStore  # noqa: E402
from cfgcore.openfeature import CfgcoreProvider  # noqa: E402
from tests.test_fix6_exp_track_attribution import _test, serving  # noqa: E402

_domains = itertools.count()


@pytest.fixture
def served(tmp_path, impl):
    with serving(tmp_path, impl, "t") as pair:
        yield pair


@pytest.mark.parametrize("odd_id", [3.5, True, b"raw", 7.0])
def test_tracked_events_join_the_exposure_of_the_targeting_key(served, odd_id):
    # user_id holds something the engine does not bucket by (a float, a bool, bytes):
    # the engine and the exposure log both take the targeting key, so must the event.
    manager, client = served
    users = [f"user-{i}" for i in range(12)]
    for u in users:
        ctx = EvaluationContext(u, {"user_id": odd_id})
        client.get_object_details("t", {}, ctx)
        client.track("buy", ctx)
    manager.exposures.flush()
    manager.metrics.flush()
    assert sum(manager.metrics.exposures("t").values()) == len(users)
    events = sum(manager.metrics.event_count("t", v, "buy") for v in ("control", "b"))
    assert events == len(users)
    paths = state_paths(manager.flags_file)
    report = MetricsStore.load(paths["metrics"], paths["exposures"])
    assert sum(report.event_count("t", v, "buy") for v in ("control", "b")) == len(users)


def test_without_exposure_logging_tracked_events_count_at_once(tmp_path, impl):
    # log_exposures=False: no exposure is ever logged, so an event waiting for one was
    # held for ever (track_metric said True, every report counted nothing, and the held
    # events grew without bound). They count as record_metric's do.
    manager = DynamicConfigurationManager(
        state_dir=tmp_path, engine=engine_class(impl)(), record_usage=False,
        log_exposures=False,
    )  # fmt: skip
    provider = CfgcoreProvider(manager.engine, experiments=manager)
    domain = f"cfgcore-review6-exp-{next(_domains)}"
    api.set_provider_and_wait(provider, domain=domain)
    try:
        assert manager.create_ab_test(_test("t"))
        client = api.get_client(domain)
        users = [f"user-{i}" for i in range(16)]
        for u in users:
            client.track("buy", EvaluationContext(u))
        manager.metrics.flush()
        variants = ("control", "b")
        assert sum(manager.metrics.users("t", v) for v in variants) == len(users)
        report = manager.analyze("t")
        assert sum(r.n for r in report.for_metric("buy")) == len(users)
        paths = state_paths(manager.flags_file)
        store = MetricsStore.load(paths["metrics"])
        assert sum(store.event_count("t", v, "buy") for v in variants) == len(users)
    finally:
        provider.shutdown()
        manager.close()
