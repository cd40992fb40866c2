"""OpenFeature ``track()`` and the tests it reaches: an event counts for a test only for
users exposed to that test, and tracking never exposes anybody.

Before, ``track("buy")`` with two running tests measuring ``buy`` called
``record_metric`` for both, which looked the user's variant up through
``get_ab_test_variant`` and so logged an exposure to a test the user never saw: that
test's exposure counts, sample-ratio check and conversion numbers took in every user
of the other test.
"""

from __future__ import annotations

import contextlib
import itertools
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta, timezone

import pytest

api = pytest.importorskip("openfeature.api", reason="openfeature-sdk is not installed")

from openfeature.evaluation_context import EvaluationContext  # noqa: E402
from openfeature.track import TrackingEventDetails  # noqa: E402

from cfgcore.dynamic_config import (  # noqa: E402
    ABTestConfiguration,
    DynamicConfigurationManager,
)
from cfgcore.engine import engine_class  # noqa: E402
from cfgcore.experiments.dynamic import state_paths  # noqa: E402
from cfgcore.experiments.exposures import read_exposures  # noqa: E402
from cfgcore.experiments.metrics import MetricsStore, read_metrics  # noqa: E402
from cfgcore.openfeature import CfgcoreProvider  # noqa: E402

_domains = itertools.count()
NOW = datetime.now(timezone.utc)
USERS = [f"user-{i}" for i in range(40)]


def _test(name):
    return ABTestConfiguration(
        name, "", NOW - timedelta(days=1), NOW + timedelta(days=9),
        {"control": 50.0, "b": 50.0}, {"control": {"x": 1}, "b": {"x": 2}}, ["buy"],
    )  # fmt: skip


@contextlib.contextmanager
def serving(tmp_path, impl, *tests):
    """A manager on ``impl`` serving the A/B ``tests`` (see ``_test``), and an OpenFeature
    client of its provider (``experiments=`` the manager), in a domain of its own."""
    manager = DynamicConfigurationManager(
        state_dir=tmp_path, engine=engine_class(impl)(), record_usage=False
    )
    try:
        for name in tests:
            assert manager.create_ab_test(_test(name))
        provider = CfgcoreProvider(manager.engine, experiments=manager)
        domain = f"cfgcore-fix6-exp-{next(_domains)}"
        api.set_provider_and_wait(provider, domain=domain)
        try:
            yield manager, api.get_client(domain)
        finally:
            provider.shutdown()
    finally:
        manager.close()


@pytest.fixture
def served(tmp_path, impl):
    with serving(tmp_path, impl, "seen", "unseen") as pair:
        yield pair


def _flush(manager):
    manager.exposures.flush()
    manager.metrics.flush()


def _logs(manager):
    return state_paths(manager.flags_file)


def _cli_store(manager):
    """What ``cfgcore experiment report`` reads: both logs, every process's records."""
    _flush(manager)
    paths = _logs(manager)
    return MetricsStore.load(paths["metrics"], paths["exposures"])


def _track_all(client, users):
    for u in users:
        client.track("buy", EvaluationContext(u), TrackingEventDetails(value=1.0))


def test_tracking_exposes_nobody_and_counts_only_for_the_test_the_user_saw(served):
    manager, client = served
    variant = {u: client.get_object_details("seen", {}, EvaluationContext(u)).variant
               for u in USERS}  # fmt: skip
    _track_all(client, USERS)
    _flush(manager)
    logged = read_exposures(_logs(manager)["exposures"])
    assert {e.test for e in logged} == {"seen"}
    assert len(logged) == len(USERS)
    for store in (manager.metrics, _cli_store(manager)):
        assert store.exposures("unseen") == {}
        for v in ("control", "b"):
            assert store.users("unseen", v) == 0
            assert store.event_count("unseen", v, "buy") == 0
            assert store.conversions("unseen", v, "buy") == 0
            want = sum(x == v for x in variant.values())
            assert store.users("seen", v) == store.conversions("seen", v, "buy") == want
            assert store.event_count("seen", v, "buy") == want
    # The events are kept, marked: a report counts them once an exposure joins them.
    events = read_metrics(_logs(manager)["metrics"])
    assert len(events) == 2 * len(USERS)
    assert all(e["exposed_only"] for e in events)


def test_an_exposure_logged_later_or_by_another_process_makes_the_events_count(served, tmp_path):
    manager, client = served
    _track_all(client, USERS)  # nobody exposed to either test yet
    _flush(manager)
    assert _cli_store(manager).exposures("unseen") == {}
    # Another process (a pre-fork worker) serves "unseen" to half the users, after
    # their events were recorded here.
    later = USERS[::2]
    script = textwrap.dedent(
        f"""
        from cfgcore.dynamic_config import DynamicConfigurationManager
        m = DynamicConfigurationManager(state_dir={str(tmp_path)!r}, record_usage=False)
        for u in {later!r}:
            assert m.get_ab_test_variant("unseen", {{"user_id": u}}) is not None
        m.close()
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    store = _cli_store(manager)
    variant = {u: manager.engine.variant("unseen", {"user_id": u}) for u in later}
    for v in ("control", "b"):
        want = sum(x == v for x in variant.values())
        assert store.exposed("unseen", v) == store.users("unseen", v) == want
        assert store.event_count("unseen", v, "buy") == store.conversions("unseen", v, "buy")
        assert store.conversions("unseen", v, "buy") == want
    # This process's own summaries take the events in when its exposure arrives,
    # whichever of the two writer threads runs first.
    for u in later:
        manager.get_ab_test_variant("unseen", {"user_id": u})
    _flush(manager)
    assert sum(manager.metrics.event_count("unseen", v, "buy") for v in ("control", "b")) == len(
        later
    )


def test_held_events_merge_into_the_same_numbers_as_events_after_the_exposure(tmp_path):
    # Continuous values, several per user, some before and some after the exposure.
    held, direct = MetricsStore(None), MetricsStore(None)
    from cfgcore.experiments.exposures import Exposure

    values = {f"u{i}": [1.5 * i, 2.0, -0.25 * i] for i in range(20)}
    for store, before in ((held, True), (direct, False)):
        if not before:
            store.write([Exposure("t", "b", u, 0.0) for u in values])
        for u, xs in values.items():
            for x in xs[:2]:
                assert store.record("t", "b", "m", x, u, write=False, exposed_only=True)
        if before:
            store.write([Exposure("t", "b", u, 0.0) for u in values])
        for u, xs in values.items():
            assert store.record("t", "b", "m", xs[2], u, write=False, exposed_only=True)
    a, b = held.summary("t", "b", "m"), direct.summary("t", "b", "m")
    assert (a.n, held.event_count("t", "b", "m")) == (b.n, direct.event_count("t", "b", "m"))
    assert a.mean == pytest.approx(b.mean) and a.variance == pytest.approx(b.variance)
    assert held.is_binary("t", "m") is False
    # No user, nothing to join: refused. A user never exposed: held, counted nowhere.
    assert held.record("t", "b", "m", 1.0, None, write=False, exposed_only=True) is False
    assert held.record("t", "control", "m", 1.0, "u0", write=False, exposed_only=True)
    assert held.users("t", "control") == 0 and held.metrics("t") == ["m"]
    assert held.event_count("t", "control", "m") == 0


def test_a_capped_store_gives_no_place_to_users_who_only_tracked(tmp_path):
    from cfgcore.experiments.exposures import Exposure

    store = MetricsStore(None, max_users=3)
    for i in range(10):  # other tests' users: events held, no place taken
        store.record("t", "b", "m", 1.0, f"other-{i}", write=False, exposed_only=True)
    store.write([Exposure("t", "b", f"u{i}", 0.0) for i in range(3)])
    assert store.tracked("t") == 3 and store.users("t", "b") == 3


def test_record_metric_naming_the_test_still_assigns_and_exposes(served):
    # The application names the test: the user takes part in it (the documented
    # contract, as get_ab_test_variant).
    manager, _client = served
    assert manager.record_metric("unseen", "buy", user_context={"user_id": "user-1"})
    _flush(manager)
    assert [(e.test, e.user) for e in read_exposures(_logs(manager)["exposures"])] == [
        ("unseen", "user-1")
    ]


def test_track_metric_refuses_what_cannot_be_attributed(served):
    manager, _client = served
    assert manager.track_metric("unseen", "buy", user_context={}) is False  # no user
    assert manager.track_metric("nope", "buy", user_id="u") is False
    assert manager.track_metric("unseen", "buy", float("nan"), user_id="u") is False
    assert manager.stop_ab_test("unseen")
    assert manager.track_metric("unseen", "buy", user_id="u") is False
    assert manager.track_metric("seen", "buy", user_id="u") is True
    _flush(manager)
    assert read_exposures(_logs(manager)["exposures"]) == []


def test_the_managers_report_over_the_shared_logs_leaves_unexposed_users_out(served):
    manager, client = served
    for u in USERS:
        client.get_object_details("seen", {}, EvaluationContext(u))
    _track_all(client, USERS)
    _flush(manager)
    report = manager.analyze("unseen")
    assert report.exposures == {"control": 0, "b": 0}
    assert all(r.n == 0 for r in report.for_metric("buy"))


def test_cfgcore_experiment_report_counts_tracked_events_of_exposed_users_only(
    served, tmp_path, capsys
):
    import json

    from tests.conftest import run_cli

    manager, client = served
    seen = USERS[:10]
    for u in seen:
        client.get_object_details("unseen", {}, EvaluationContext(u))
    _track_all(client, USERS)
    _flush(manager)
    code, out, _err = run_cli(capsys, "experiment", "report", "unseen", "--json",
                              "--state-dir", str(tmp_path))  # fmt: skip
    assert code == 0
    report = json.loads(out)
    assert sum(report["exposures"].values()) == len(seen)
    rows = [r for r in report["results"] if r["metric"] == "buy"]
    assert sum(r["n"] for r in rows) == sum(r["successes"] for r in rows) == len(seen)
    assert sum(r["events"] for r in rows) == len(seen)
