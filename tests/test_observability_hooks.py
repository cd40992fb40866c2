"""Hooks (OpenFeature's shape), exposure callbacks and debug mode on an Engine.

Every test runs on both evaluators (the ``make`` fixture); tests/test_core_differential.py
checks that the observed path gives the same answers, details, buckets and units on both.
"""

from __future__ import annotations

import logging

import pytest

import cfgcore
from cfgcore.details import EvaluationDetails
from cfgcore.engine import engine_class
from cfgcore.observability import debug, hooks
from cfgcore.observability.hooks import EvaluationError, Hook, HookContext

FLAGS = {
    "flags": {
        "plain": {"default": "on"},
        "tenant_only": {
            "default": "off",
            "rules": [{"when": {"attr": "tenant", "eq": "acme"}, "serve": "on"}],
        },
        "colour": {
            "variants": {"red": "r", "blue": "b", "green": "g"},
            "default": "red",
            "rules": [{"split": {"red": 34, "blue": 33, "green": 33}}],
        },
        "by_account": {
            "default": "off",
            "bucket_by": ["account", "user_id"],
            "rules": [{"rollout": 100, "serve": "on"}],
        },
        "half": {"default": "off", "rules": [{"rollout": 50, "serve": "on"}]},
    }
}
USERS = [f"user-{i}" for i in range(200)]


class Recorder(Hook):
    """Records every stage it sees, tagged with its name."""

    def __init__(self, name: str, log: list, extra: dict | None = None) -> None:
        self.name, self.log, self.extra = name, log, extra

    def before(self, hook_context, hints):
        hints.setdefault("order", []).append(self.name)
        self.log.append((self.name, "before", dict(hook_context.attrs)))
        return self.extra

    def after(self, hook_context, details, hints):
        self.log.append((self.name, "after", details.variant, details.reason))

    def error(self, hook_context, exception, hints):
        self.log.append((self.name, "error", exception))

    def finally_after(self, hook_context, details, hints):
        self.log.append((self.name, "finally", details, tuple(hints["order"])))


def test_no_hook_means_the_plain_path(make):
    e = make(FLAGS)
    assert e._observer is None
    remove = e.add_hook(Hook())
    assert e._observer is not None
    remove()
    assert e._observer is None
    off = e.on_exposure(lambda *a: None)
    assert e._observer is not None
    off()
    assert e._observer is None


def test_stages_run_in_openfeature_order_and_see_the_evaluation(make):
    e = make(FLAGS)
    seen: list = []
    e.add_hook(Recorder("a", seen))
    e.add_hook(Recorder("b", seen))
    assert e.variant("colour", {"user_id": "u1", "secret": "s"}) in ("red", "blue", "green")
    names = [(entry[0], entry[1]) for entry in seen]
    assert names == [("a", "before"), ("b", "before"), ("b", "after"), ("a", "after"),
                     ("b", "finally"), ("a", "finally")]  # fmt: skip
    assert seen[0][2] == {"user_id": "u1", "secret": "s"}
    assert seen[2][3] == "SPLIT"
    details = seen[4][2]
    assert isinstance(details, EvaluationDetails) and details.flag_key == "colour"
    assert seen[4][3] == ("a", "b")  # the hints are shared by every stage


def test_hook_context_describes_the_call(make):
    e = make(FLAGS)
    got: list[HookContext] = []

    class Grab(Hook):
        def before(self, hook_context, hints):
            got.append(hook_context)

    e.add_hook(Grab())
    ctx = e.context({"user_id": "u1"})
    e.value("colour", ctx, default="z")
    e.is_enabled("plain")
    assert (got[0].flag_key, got[0].default_value, got[0].attrs, got[0].method) == (
        "colour", "z", {"user_id": "u1"}, "value",
    )  # fmt: skip
    assert got[0].snapshot_version == e.version
    assert (got[1].default_value, got[1].attrs, got[1].method) == (False, {}, "is_enabled")


def test_before_hooks_merge_attributes_over_the_context(make):
    e = make(FLAGS)
    seen: list = []
    e.add_hook(Recorder("a", seen, extra={"tenant": "acme"}))
    e.add_hook(Recorder("b", seen))
    ctx = {"user_id": "u1"}
    assert e.is_enabled("tenant_only", ctx) is True
    assert ctx == {"user_id": "u1"}  # the caller's dict is not touched
    assert seen[1][2] == {"user_id": "u1", "tenant": "acme"}  # later hooks see it
    assert e.is_enabled("tenant_only", e.context({"user_id": "u2"})) is True


def test_evaluation_errors_run_error_hooks_not_after(make):
    e = make(FLAGS)
    seen: list = []
    e.add_hook(Recorder("a", seen))
    assert e.variant("nope") is None
    assert e.value("colour", None, default=3) == 3
    assert e.is_enabled("colour") is False
    stages = [s[1] for s in seen]
    assert stages == ["before", "error", "finally"] * 3
    errors = [s[2] for s in seen if s[1] == "error"]
    assert all(isinstance(x, EvaluationError) for x in errors)
    assert [x.error_code for x in errors] == ["FLAG_NOT_FOUND", "TYPE_MISMATCH", "TYPE_MISMATCH"]
    assert seen[2][2].error_code == "FLAG_NOT_FOUND"  # finally gets the details


@pytest.mark.parametrize("stage", ["before", "after"])
def test_a_failing_hook_gives_the_default_and_never_raises(make, stage, caplog):
    e = make(FLAGS)
    seen: list = []

    class Broken(Hook):
        def before(self, hook_context, hints):
            if stage == "before":
                raise RuntimeError("boom")

        def after(self, hook_context, details, hints):
            raise RuntimeError("boom")

    e.add_hook(Recorder("outer", seen))
    e.add_hook(Broken())
    with caplog.at_level(logging.ERROR, logger="cfgcore.hooks"):
        assert e.is_enabled("plain") is False
        assert e.variant("colour", {"user_id": "u"}) is None
        assert e.value("colour", {"user_id": "u"}, default="dflt") == "dflt"
        details = e.evaluate("plain", None, default=True)
    assert (details.value, details.reason, details.error_code) == (True, "ERROR", "GENERAL")
    assert e.hook_errors == 4
    assert "hook failed" in caplog.text and "boom" in caplog.text
    errors = [s[2] for s in seen if s[1] == "error"]
    assert len(errors) == 4 and all(isinstance(x, RuntimeError) for x in errors)
    assert [s[1] for s in seen].count("finally") == 4


def test_failing_error_and_finally_stages_are_logged_only(make, caplog):
    e = make(FLAGS)

    class Noisy(Hook):
        def error(self, hook_context, exception, hints):
            raise ValueError("in error")

        def finally_after(self, hook_context, details, hints):
            raise ValueError("in finally")

    e.add_hook(Noisy())
    with caplog.at_level(logging.ERROR, logger="cfgcore.hooks"):
        assert e.is_enabled("plain") is True
        assert e.variant("nope") is None
    assert e.hook_errors == 3  # finally twice, error once
    assert "finally_after stage" in caplog.text


def test_a_hook_object_with_only_some_stages_works(make):
    e = make(FLAGS)
    calls = []

    class OnlyAfter:
        def after(self, hook_context, details, hints):
            calls.append(details.value)

    e.add_hook(OnlyAfter())
    assert e.is_enabled("plain") is True
    assert calls == [True]


def test_hooks_do_not_change_answers_or_counts(make):
    plain, hooked = make(FLAGS), make(FLAGS)
    hooked.add_hook(Hook())
    hooked.on_exposure(lambda *a: None)
    calls = [("is_enabled", k, {"user_id": u}, None) for k in FLAGS["flags"] for u in USERS[:20]]
    calls += [("variant", "colour", {"user_id": u}, None) for u in USERS[:20]]
    calls += [("value", "colour", {"user_id": "u"}, 5), ("value", "colour", None, "s"),
              ("evaluate", "half", {"user_id": "u"}, None), ("evaluate", "nope", None, 1),
              ("is_enabled", "plain", 42, None), ("variant", 3, None, None)]  # fmt: skip
    for method, key, ctx, default in calls:
        args = (key, ctx) if default is None else (key, ctx, default)
        assert getattr(plain, method)(*args) == getattr(hooked, method)(*args), (method, key)
    assert plain.evaluate_all({"user_id": "u"}) == hooked.evaluate_all({"user_id": "u"})
    assert plain.take_evaluation_counts() == hooked.take_evaluation_counts()


def test_evaluate_all_runs_no_hook(make):
    e = make(FLAGS)
    seen: list = []
    e.add_hook(Recorder("a", seen))
    assert len(e.evaluate_all({"user_id": "u"})) == len(FLAGS["flags"])
    assert seen == []


# -- exposures ------------------------------------------------------------------------


def test_exposures_once_per_unit_flag_and_variant(make):
    e = make(FLAGS)
    got: list = []
    e.on_exposure(lambda flag, variant, ctx: got.append((flag, variant, ctx["user_id"])))
    served = {u: e.variant("colour", {"user_id": u}) for u in USERS}
    for u in USERS:  # again, and through a bound context: already reported
        e.variant("colour", e.context({"user_id": u}))
    assert sorted(got) == sorted(("colour", v, u) for u, v in served.items())
    e.is_enabled("plain", {"user_id": "u"})  # not a split: no exposure
    e.value("colour", {"user_id": "new"}, default=1)  # type mismatch: the default served
    assert len(got) == len(USERS)


def test_the_unit_is_the_attribute_the_flag_buckets_by(make):
    e = make(FLAGS)
    got: list = []
    e.on_exposure(lambda flag, variant, ctx: got.append((flag, variant)))
    # the same account from different users: one unit, one exposure
    for u in USERS[:10]:
        assert e.is_enabled("by_account", {"account": 7, "user_id": u}) is True
    assert e.is_enabled("by_account", {"account": "7"}) is True  # 7 buckets as "7"
    assert got == [("by_account", "on")]
    # no account: the next attribute in bucket_by is the unit
    e.is_enabled("by_account", {"user_id": "u1"})
    e.is_enabled("by_account", {"user_id": "u2"})
    assert len(got) == 3


def test_rollout_misses_are_not_exposures(make):
    e = make(FLAGS)
    got: list = []
    e.on_exposure(lambda flag, variant, ctx: got.append(variant))
    answers = [e.is_enabled("half", {"user_id": u}) for u in USERS]
    assert got == ["on"] * sum(answers) and 0 < sum(answers) < len(USERS)


def test_exposure_callback_failures_are_swallowed_and_counted(make, caplog):
    e = make(FLAGS)
    good: list = []

    def bad(flag, variant, ctx):
        raise RuntimeError("sink down")

    e.on_exposure(bad)
    e.on_exposure(lambda *a: good.append(a))
    with caplog.at_level(logging.ERROR, logger="cfgcore.hooks"):
        for u in USERS[:5]:
            assert e.variant("colour", {"user_id": u}) is not None
    assert e.exposure_errors == 5 and len(good) == 5
    logged = [r for r in caplog.records if r.name == "cfgcore.hooks"]
    assert len(logged) == 1 and "sink down" in caplog.text  # the first is logged, all counted


def test_exposure_dedup_memory_is_bounded(make, monkeypatch):
    monkeypatch.setattr(hooks, "EXPOSURE_DEDUP_LIMIT", 10)
    e = make(FLAGS)
    got: list = []
    e.on_exposure(lambda *a: got.append(a))
    for u in USERS[:30]:
        e.variant("colour", {"user_id": u})
    assert len(e._obs._seen) <= 10
    e.variant("colour", {"user_id": USERS[0]})  # forgotten when the set started over
    assert len(got) == 31


def test_seed_api_calls_are_observed(impl, tmp_path):
    from datetime import datetime, timedelta, timezone

    from cfgcore.experiments.abtest import ABTestConfiguration
    from cfgcore.experiments.dynamic import DynamicConfigurationManager
    from cfgcore.experiments.exposures import MemorySink

    engine = engine_class(impl)()
    sink = MemorySink()
    manager = DynamicConfigurationManager(state_dir=tmp_path, engine=engine, exposure_sinks=[sink])
    try:
        now = datetime.now(timezone.utc)
        assert manager.create_ab_test(
            ABTestConfiguration(
                test_name="checkout_v2",
                description="observed",
                start_date=now - timedelta(days=1),
                end_date=now + timedelta(days=14),
                traffic_split={"control": 50.0, "treatment": 50.0},
                configurations={"control": {"v": 1}, "treatment": {"v": 2}},
                success_metrics=["conversion"],
            )
        )
        seen: list = []
        exposed: list = []
        engine.add_hook(Recorder("a", seen))
        engine.on_exposure(lambda flag, variant, ctx: exposed.append((flag, variant)))
        user = {"user_id": "12345", "user_segment": "premium", "region": "EU"}
        want = engine.snapshot().is_enabled("enhanced_anomaly_detection", user)
        assert manager.is_feature_enabled("enhanced_anomaly_detection", user) is want
        assert [s[1] for s in seen] == ["before", "after", "finally"]
        variant = manager.get_ab_test_variant("checkout_v2", user)
        assert variant in ("control", "treatment")
        assert seen[4][1:] == ("after", variant, "SPLIT")
        assert exposed == [("checkout_v2", variant)]
        manager.exposures.flush()  # the manager's own exposure log still gets it
        assert [(x.test, x.variant, x.user) for x in sink.exposures] == [
            ("checkout_v2", variant, "12345")
        ]
    finally:
        manager.close()


# -- debug mode -----------------------------------------------------------------------


@pytest.fixture
def debug_mode():
    cfgcore.enable_debug_mode()
    try:
        yield
    finally:
        cfgcore.disable_debug_mode()


def lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "cfgcore.evaluation"]


def test_debug_mode_explains_every_evaluation(make, caplog, debug_mode):
    e = make(FLAGS)
    caplog.set_level(logging.DEBUG, logger="cfgcore")
    variant = e.variant("colour", {"user_id": "u1"})
    e.is_enabled("tenant_only", {"tenant": "acme"})
    e.value("nope", None, default=1)
    e.evaluate_all({"user_id": "u1"})
    got = lines(caplog)
    assert len(got) == 4
    assert got[0].startswith(f"variant colour -> variant={variant} reason=SPLIT rule=0 bucket=")
    assert f"version={e.version}" in got[0] and "'user_id': 'u1'" in got[0]
    bucket = int(got[0].split("bucket=")[1].split()[0])
    assert 0 <= bucket < 100_000
    assert "is_enabled tenant_only -> variant=on reason=TARGETING_MATCH rule=0 " in got[1]
    assert "bucket=" not in got[1]
    assert "reason=ERROR" in got[2] and "error=FLAG_NOT_FOUND" in got[2]
    assert got[3].startswith(f"evaluate_all -> {len(FLAGS['flags'])} flags")


def test_debug_mode_never_logs_a_secret_value(make, caplog, debug_mode):
    e = make(FLAGS)
    caplog.set_level(logging.DEBUG, logger="cfgcore")
    ctx = {"user_id": "u1", "api_token": "tok-8c1f2a", "password": 918273,
           "note": "redis://bob:hunter2pw@cache:6379/0", "key": "sk_live_abcdef"}  # fmt: skip
    e.is_enabled("plain", ctx)
    e.variant("colour", e.context(ctx))
    e.evaluate_all(ctx)
    text = "\n".join(lines(caplog))
    assert len(lines(caplog)) == 3
    for secret in ("tok-8c1f2a", "918273", "hunter2pw", "sk_live_abcdef"):
        assert secret not in text
    assert "'user_id': 'u1'" in text and "***redacted***" in text


def test_debug_mode_is_off_by_default_and_switches_every_engine(make, caplog):
    before = logging.getLogger("cfgcore").level
    e = make(FLAGS)
    assert e._observer is None and not debug.enabled()
    cfgcore.enable_debug_mode()
    try:
        assert logging.getLogger("cfgcore").level == logging.DEBUG
        assert e._observer is not None  # an engine that existed before
        later = make(FLAGS)
        assert later._observer is not None  # and one created after
        caplog.set_level(logging.DEBUG, logger="cfgcore")
        later.is_enabled("plain")
        assert len(lines(caplog)) == 1
    finally:
        cfgcore.disable_debug_mode()
    assert e._observer is None and later._observer is None
    assert logging.getLogger("cfgcore").level == before
    caplog.clear()
    e.is_enabled("plain")
    assert lines(caplog) == []


def test_hooks_stay_when_debug_mode_goes(make, debug_mode):
    e = make(FLAGS)
    seen: list = []
    e.add_hook(Recorder("a", seen))
    cfgcore.disable_debug_mode()
    assert e._observer is not None
    e.is_enabled("plain")
    assert len(seen) == 3
