"""Fifth audit, experiments through OpenFeature: a variant of an A/B test served by the
provider (given ``experiments=``) is an exposure, logged once per user as
``get_ab_test_variant`` logs it.

Before, only users who also sent a tracking event (``track`` looks the variant up
through ``record_metric``) were logged, so a binary metric's "users" were exactly its
converted users: every variant reported a conversion rate of 1.
"""

from __future__ import annotations

import itertools
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
from cfgcore.experiments.exposures import read_exposures  # noqa: E402
from cfgcore.openfeature import CfgcoreProvider  # noqa: E402

_domains = itertools.count()
NOW = datetime.now(timezone.utc)


def _test(name="t", metrics=("buy",)):
    return ABTestConfiguration(
        name, "", NOW - timedelta(days=1), NOW + timedelta(days=9),
        {"control": 50.0, "b": 50.0}, {"control": {"x": 1}, "b": {"x": 2}}, list(metrics),
    )  # fmt: skip


@pytest.fixture
def served(tmp_path, impl):
    manager = DynamicConfigurationManager(
        state_dir=tmp_path, engine=engine_class(impl)(), record_usage=False
    )
    assert manager.create_ab_test(_test())
    provider = CfgcoreProvider(manager.engine, experiments=manager)
    domain = f"cfgcore-audit5-exp-{next(_domains)}"
    api.set_provider_and_wait(provider, domain=domain)
    try:
        yield manager, api.get_client(domain)
    finally:
        provider.shutdown()
        manager.close()


def _logged(manager):
    manager.exposures.flush()
    return [(e.variant, e.user) for e in read_exposures(manager.exposures.sinks[0].path)]


def test_every_user_the_provider_assigns_is_exposed_once(served):
    manager, client = served
    users = [f"user-{i}" for i in range(60)]
    answers = {}
    for _ in range(3):  # evaluated again: still one exposure per user
        for u in users:
            details = client.get_object_details("t", {}, EvaluationContext(u))
            answers[u] = details.variant
    assert set(answers.values()) == {"control", "b"}
    logged = _logged(manager)
    assert sorted(logged) == sorted((v, u) for u, v in answers.items())
    # The same dedup as get_ab_test_variant: asking there logs nobody again.
    for u in users:
        assert manager.get_ab_test_variant("t", {"targeting_key": u}) == answers[u]
    assert len(_logged(manager)) == len(users)


def test_the_report_counts_users_who_did_not_convert(served):
    manager, client = served
    users = [f"user-{i}" for i in range(80)]
    variant = {u: client.get_object_details("t", {}, EvaluationContext(u)).variant for u in users}
    buyers = users[::4]
    for u in buyers:
        client.track("buy", EvaluationContext(u), TrackingEventDetails(value=1.0))
    manager.exposures.flush()
    report = manager.analyze("t")
    for v in ("control", "b"):
        row = next(r for r in report.for_metric("buy") if r.variant == v)
        assert report.exposures[v] == row.n == sum(x == v for x in variant.values())
        assert row.successes == sum(variant[u] == v for u in buyers)
        assert row.value < 1


def test_no_exposure_for_other_flags_stopped_tests_or_type_mismatches(served):
    manager, client = served
    assert manager.create_ab_test(_test("gone"))
    assert manager.stop_ab_test("gone")
    ctx = EvaluationContext("user-1")
    assert client.get_object_details("gone", {}, ctx).variant == "control"
    assert client.get_boolean_details("t", False, ctx).value is False  # TYPE_MISMATCH
    client.get_object_details("t", {}, EvaluationContext(None, {}))  # no user: no variant
    assert _logged(manager) == []


def test_a_provider_whose_experiments_lack_the_method_still_answers(tmp_path, impl):
    manager = DynamicConfigurationManager(
        state_dir=tmp_path, engine=engine_class(impl)(), record_usage=False
    )
    try:
        assert manager.create_ab_test(_test())

        class OnlyMetrics:  # a stand-in that only takes tracking events
            snapshot = manager.snapshot

            def record_metric(self, *a, **kw):
                return True

        provider = CfgcoreProvider(manager.engine, experiments=OnlyMetrics())
        details = provider.resolve_object_details("t", {}, EvaluationContext("user-1"))
        assert details.error_code is None and details.variant in ("control", "b")
    finally:
        manager.close()
