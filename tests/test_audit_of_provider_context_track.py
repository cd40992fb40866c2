"""OpenFeature provider audit: hooks, evaluation-context merging and attribute types,
and tracking, through the real openfeature-sdk client."""

from __future__ import annotations

import contextvars
import itertools
from datetime import datetime, timedelta, timezone

import pytest

api = pytest.importorskip("openfeature.api", reason="openfeature-sdk is not installed")

from openfeature.evaluation_context import EvaluationContext  # noqa: E402
from openfeature.exception import ErrorCode  # noqa: E402
from openfeature.flag_evaluation import FlagEvaluationOptions, FlagType  # noqa: E402
from openfeature.hook import Hook  # noqa: E402
from openfeature.transaction_context import ContextVarsTransactionContextPropagator  # noqa: E402

from cfgcore.openfeature import CfgcoreProvider, default_context  # noqa: E402

_domains = itertools.count()

FLAGS = {
    "flags": {
        "eu_pro": {
            "default": "off",
            "rules": [
                {
                    "when": {
                        "all": [{"attr": "region", "eq": "EU"}, {"attr": "plan", "eq": "pro"}]
                    },
                    "serve": "on",
                }
            ],
        },
        "greeting": {"variants": {"hi": "hi"}, "default": "hi"},
        "half": {"default": "off", "rules": [{"rollout": 50, "serve": "on"}]},
        "by_key": {
            "default": "off",
            "rules": [{"when": {"attr": "targeting_key", "eq": "k-1"}, "serve": "on"}],
        },
    }
}


def _client(provider):
    domain = f"cfgcore-audit-of-ctx-{next(_domains)}"
    api.set_provider_and_wait(provider, domain=domain)
    return api.get_client(domain)


class Recorder(Hook):
    def __init__(self, name, calls, returns=None):
        self.name, self.calls, self.returns = name, calls, returns

    def before(self, hook_context, hints):
        c = hook_context
        self.calls.append(
            (self.name, "before", c.flag_key, c.flag_type, c.default_value,
             c.client_metadata.domain, c.provider_metadata.name, dict(hints))
        )  # fmt: skip
        return self.returns

    def after(self, hook_context, details, hints):
        self.calls.append((self.name, "after", details.value, details.variant))

    def error(self, hook_context, exception, hints):
        self.calls.append((self.name, "error", type(exception).__name__))

    def finally_after(self, hook_context, details, hints):
        self.calls.append((self.name, "finally", details.reason, details.error_code))


def test_hook_stages_order_context_and_hints_around_the_provider(make):
    provider = CfgcoreProvider(make(FLAGS), name="cfgcore-hooks")
    assert provider.get_provider_hooks() == []
    calls = []
    api.add_hooks([Recorder("api", calls)])
    try:
        client = _client(provider)
        domain = client.get_metadata().domain
        # A before hook's context reaches the provider (merged over the invocation's).
        client.add_hooks([Recorder("client", calls, EvaluationContext(None, {"plan": "pro"}))])
        opts = FlagEvaluationOptions(hooks=[Recorder("call", calls)], hook_hints={"h": 1})
        ctx = EvaluationContext("u", {"region": "EU", "plan": "free"})
        assert client.get_boolean_value("eu_pro", False, ctx, opts) is True
        before = ("eu_pro", FlagType.BOOLEAN, False, domain, "cfgcore-hooks", {"h": 1})
        assert calls == [
            ("api", "before", *before),
            ("client", "before", *before),
            ("call", "before", *before),
            ("call", "after", True, "on"),
            ("client", "after", True, "on"),
            ("api", "after", True, "on"),
            ("call", "finally", "TARGETING_MATCH", None),
            ("client", "finally", "TARGETING_MATCH", None),
            ("api", "finally", "TARGETING_MATCH", None),
        ]
        # The provider's error resolutions: error hooks instead of after, then finally.
        for key, method, default, code, exc in [
            ("missing", client.get_boolean_value, True, ErrorCode.FLAG_NOT_FOUND,
             "FlagNotFoundError"),
            ("greeting", client.get_integer_value, 3, ErrorCode.TYPE_MISMATCH,
             "TypeMismatchError"),
        ]:  # fmt: skip
            calls.clear()
            assert method(key, default, ctx, opts) == default
            stages = [c[:2] for c in calls]
            assert ("call", "after") not in stages
            assert [c for c in calls if c[1] == "error"] == [
                ("call", "error", exc),
                ("client", "error", exc),
                ("api", "error", exc),
            ]
            assert calls[-1] == ("api", "finally", "ERROR", code)
    finally:
        api.clear_hooks()


def test_contexts_merge_api_transaction_client_invocation(make):
    """The provider sees the SDK's merge: API < transaction < client < invocation (the
    targeting key from the most specific context that sets one)."""
    seen = []

    def mapper(targeting_key, attributes):
        seen.append((targeting_key, dict(attributes)))
        return default_context(targeting_key, attributes)

    provider = CfgcoreProvider(make(FLAGS), context=mapper)
    api.set_evaluation_context(EvaluationContext("api-key", {"a": "api", "region": "US"}))
    api.set_transaction_context_propagator(ContextVarsTransactionContextPropagator())
    try:

        def in_transaction():
            api.set_transaction_context(EvaluationContext(None, {"a": "tx", "plan": "pro"}))
            client = _client(provider)
            client.context = EvaluationContext(None, {"region": "EU", "b": "client"})
            assert client.get_boolean_value("eu_pro", False) is True
            assert seen[-1] == ("api-key", {"a": "tx", "region": "EU", "plan": "pro",
                                            "b": "client"})  # fmt: skip
            inv = EvaluationContext("k-1", {"plan": "free"})
            assert client.get_boolean_value("eu_pro", True, inv) is False
            assert client.get_boolean_value("by_key", False, inv) is True
            assert seen[-1][0] == "k-1"

        contextvars.copy_context().run(in_transaction)
    finally:
        api.clear_transaction_context_propagator()
        api.set_evaluation_context(EvaluationContext())


VALUES = [
    True, "EU", 0, 7, 2.5, float("nan"), 10**30,
    datetime(2024, 5, 1, 12, tzinfo=timezone.utc), datetime(2024, 5, 1),
    {"nested": {"x": [1, "y"]}}, [1, "EU", {"z": None}], [], {},
]  # fmt: skip


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_every_attribute_type_resolves_as_the_engine_answers(make, value):
    """Each value type OpenFeature allows (and a few it does not) resolves without an
    error, to what the engine answers for the provider's cfgcore context."""
    engine = make(FLAGS)
    client = _client(CfgcoreProvider(engine))
    ctx = EvaluationContext("u-1", {"region": value, "plan": value, "user_id": value})
    for key in ("eu_pro", "half"):
        d = client.get_boolean_details(key, False, ctx)
        want = engine.evaluate(key, default_context(ctx.targeting_key, ctx.attributes))
        assert d.error_code is None
        assert (d.value, d.variant, d.reason) == (want.value, want.variant, want.reason)


@pytest.mark.parametrize("key", [7, 7.5, True, ("k",), {"k": 1}], ids=repr)
def test_a_targeting_key_that_is_not_a_string(make, key):
    """OpenFeature types the targeting key as a string; the SDK does not check it. The
    provider neither raises nor errs: it answers as the engine does for the same id in
    ``targeting_key`` (an int buckets as its decimal, other types are skipped, as in
    cfgcore's own API)."""
    engine = make(FLAGS)
    provider = CfgcoreProvider(engine)
    ctx = EvaluationContext(key, {})
    for flag in ("half", "by_key", "greeting"):
        if flag == "greeting":
            d = provider.resolve_string_details(flag, "x", ctx)
        else:
            d = provider.resolve_boolean_details(flag, False, ctx)
        want = engine.evaluate(flag, {"targeting_key": key})
        assert d.error_code is None and (d.value, d.reason) == (want.value, want.reason)


# -- tracking ----------------------------------------------------------------------------


def test_track_records_the_metric_of_running_tests_for_the_users_variant(tmp_path, impl):
    from openfeature.track import TrackingEventDetails

    from cfgcore.dynamic_config import ABTestConfiguration, DynamicConfigurationManager
    from cfgcore.engine import engine_class

    manager = DynamicConfigurationManager(state_dir=tmp_path, engine=engine_class(impl)())
    try:
        now = datetime.now(timezone.utc)
        for name, metrics, guard in [("t", ["buy"], {}), ("u", [], {"buy": "higher_is_better"}),
                                     ("other", ["click"], {})]:  # fmt: skip
            assert manager.create_ab_test(
                ABTestConfiguration(
                    name, "", now - timedelta(days=1), now + timedelta(days=9),
                    {"control": 50.0, "b": 50.0}, {"control": {}, "b": {}}, metrics,
                    guardrail_metrics=guard,
                )
            )  # fmt: skip
        client = _client(CfgcoreProvider(manager.engine, experiments=manager))
        users = [f"user-{i}" for i in range(40)]
        for user in users:
            client.track("buy", EvaluationContext(user, {}), TrackingEventDetails(value=2.5))
        client.track("buy", EvaluationContext("user-0", {}))  # no value: a count of 1
        client.track("unmeasured", EvaluationContext("user-0", {}))
        client.track("buy", None)  # no user: nothing to credit, no error
        store = manager.metrics
        for test in ("t", "u"):
            # Tracking exposes nobody: its events count once the user's exposure to the
            # test is logged (here, get_ab_test_variant's, after the events).
            assert store.exposures(test) == {}
            variants = {u: manager.get_ab_test_variant(test, {"targeting_key": u}) for u in users}
            assert set(variants.values()) == {"control", "b"}
            manager.exposures.flush()
            counts = {v: store.event_count(test, v, "buy") for v in ("control", "b")}
            expected = {v: list(variants.values()).count(v) for v in ("control", "b")}
            expected[variants["user-0"]] += 1
            assert counts == expected
            total = sum(store.summary(test, v, "buy").mean * counts[v] for v in counts)
            assert total == pytest.approx(2.5 * 40 + 1.0)
        assert store.metrics("other") == []
        assert "unmeasured" not in store.metrics("t")
        # After stopping a test nothing more is recorded for it.
        manager.stop_ab_test("t")
        before = store.event_count("t", "control", "buy") + store.event_count("t", "b", "buy")
        client.track("buy", EvaluationContext("user-1", {}))
        after = store.event_count("t", "control", "buy") + store.event_count("t", "b", "buy")
        assert after == before
    finally:
        manager.close()


def test_track_without_experiments_is_a_no_op_and_never_raises(make):
    provider = CfgcoreProvider(make(FLAGS))
    _client(provider).track("buy", EvaluationContext("u", {}))

    class Broken:
        @property
        def snapshot(self):
            raise RuntimeError("manager closed")

    broken = CfgcoreProvider(make(FLAGS), experiments=Broken())
    _client(broken).track("buy", EvaluationContext("u", {}))  # logged, not raised
