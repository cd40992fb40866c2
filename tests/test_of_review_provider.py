"""OpenFeature provider review: answers through the real openfeature-sdk client where a
caller's own value comes back, and failures whose text cannot be made.

- A null variant (an imported flag without a default variant, a switched-off flagd
  flag) answers with the caller's default. The SDK checks a float resolution's value
  with ``isinstance(value, float)``, so ``get_float_details(key, 1, ctx)`` came back as
  reason ERROR, ``TYPE_MISMATCH``, where flagd's own Python evaluator (FlagdCore)
  answers ``1.0`` with reason DEFAULT (DISABLED).
- ``resolve=`` (an importer's answers) wrote the flag key into its error message with an
  f-string, so a key whose ``__str__`` raises turned ``FLAG_NOT_FOUND`` into ``GENERAL``.
- ``track()`` logged a failure with ``%r`` of the event name: a name whose ``repr``
  raises broke the log record (the logging module printed its own traceback instead).
"""

from __future__ import annotations

import itertools
import logging
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fuzz import examples

api = pytest.importorskip("openfeature.api", reason="openfeature-sdk is not installed")

from openfeature.evaluation_context import EvaluationContext  # noqa: E402
from openfeature.exception import ErrorCode  # noqa: E402

from cfgcore.openfeature import CfgcoreProvider  # noqa: E402

_domains = itertools.count()
CTX = EvaluationContext("user-1", {"plan": "gold"})

FLAGS = {
    "flags": {
        "unset": {"variants": {"none": None, "some": 0.5}, "default": "none"},
        "killed": {
            "variants": {"on": 0.5, "none": None},
            "default": "on",
            "enabled": False,
            "off_variant": "none",
        },
        "ratio": {"variants": {"a": 0.25}, "default": "a"},
    }
}

# flagd's flag definitions: one without a default variant, one switched off.
FLAGD = {
    "flags": {
        "no-default": {"state": "ENABLED", "variants": {"a": 1.5, "b": 2.5}},
        "off": {"state": "DISABLED", "variants": {"a": 1.5}, "defaultVariant": "a"},
    }
}


def _client(provider):
    domain = f"cfgcore-of-review-{next(_domains)}"
    api.set_provider_and_wait(provider, domain=domain)
    return api.get_client(domain)


def _flagd_provider(make):
    from cfgcore.interop import flagd

    engine = make(flagd.to_snapshot(FLAGD))
    return CfgcoreProvider(engine, context=flagd.context, resolve=flagd.resolve)


@pytest.mark.parametrize(("key", "reason"), [("unset", "DEFAULT"), ("killed", "DISABLED")])
def test_a_float_resolution_returns_an_int_default_as_a_float(make, key, reason):
    provider = CfgcoreProvider(make(FLAGS))
    client = _client(provider)
    try:
        d = client.get_float_details(key, 1, CTX)
        assert (d.value, d.reason, d.error_code, d.variant) == (1.0, reason, None, None)
        assert type(d.value) is float
        assert client.get_float_value(key, -3, CTX) == -3.0
        # A served value is unchanged by this; a float default stays the same object.
        assert client.get_float_details("ratio", 1, CTX).value == 0.25
        default = 2.5
        assert provider.resolve_float_details(key, default, CTX).value is default
        # Only float resolutions convert: an integer resolution keeps its int default.
        d = client.get_integer_details(key, 7, CTX)
        assert (d.value, d.reason, d.error_code) == (7, reason, None)
        assert type(d.value) is int
    finally:
        provider.shutdown()


def test_a_bool_default_is_no_number(make):
    """cfgcore never serves a bool as a number: a float resolution returns a bool
    default as it is (the SDK then reports its type), not as 1.0."""
    provider = CfgcoreProvider(make(FLAGS))
    d = provider.resolve_float_details("unset", True, CTX)
    assert d.value is True and d.reason == "DEFAULT"
    # An int past a float's range cannot be a float: returned as it is, no error.
    d = provider.resolve_float_details("unset", 10**400, CTX)
    assert d.value == 10**400 and d.error_code is None


@pytest.mark.parametrize(("key", "reason"), [("no-default", "DEFAULT"), ("off", "DISABLED")])
def test_the_flagd_recipe_answers_an_int_default_as_flagd_does(make, key, reason):
    provider = _flagd_provider(make)
    client = _client(provider)
    try:
        d = client.get_float_details(key, 1, CTX)
        assert (d.value, d.reason, d.error_code) == (1.0, reason, None)
        assert type(d.value) is float
    finally:
        provider.shutdown()


@settings(max_examples=examples(60), deadline=None)
@given(
    key=st.sampled_from(["no-default", "off"]),
    default=st.one_of(
        st.integers(-(2**60), 2**60), st.floats(allow_nan=False, allow_infinity=False)
    ),
)
def test_float_defaults_agree_with_flagd_core(make_py_and_c, key, default):
    """FlagdCore (flagd's Python evaluator, the in-process provider's engine) is the
    peer: for any number default, both answer the same value, of the same type."""
    core_module = pytest.importorskip("openfeature.contrib.tools.flagd.core")
    from cfgcore.interop import flagd

    core = core_module.FlagdCore()
    core.set_flags(FLAGD)
    expected = core.resolve_float_value(key, default, CTX)
    for factory in make_py_and_c:
        engine = factory(flagd.to_snapshot(FLAGD))
        provider = CfgcoreProvider(engine, context=flagd.context, resolve=flagd.resolve)
        d = provider.resolve_float_details(key, default, CTX)
        assert (d.value, type(d.value), d.reason, d.error_code) == (
            expected.value,
            type(expected.value),
            expected.reason,
            None,
        )


class NoText:
    """A flag key or event name whose text cannot be made (hashable, so a dict lookup
    by it simply misses)."""

    def __str__(self):
        raise RuntimeError("no text")

    __repr__ = __format__ = __str__

    def __hash__(self):
        return 1


def test_an_importers_not_found_stays_not_found_for_a_key_without_text(make):
    plain = CfgcoreProvider(make(FLAGS)).resolve_boolean_details(NoText(), True, CTX)
    imported = _flagd_provider(make).resolve_boolean_details(NoText(), True, CTX)
    for d in (plain, imported):
        assert (d.value, d.error_code) == (True, ErrorCode.FLAG_NOT_FOUND)
        assert d.error_message.startswith("<unrepresentable NoText>: ")


def test_track_logs_a_failure_for_an_event_name_without_text(tmp_path, impl, caplog):
    from cfgcore.dynamic_config import ABTestConfiguration, DynamicConfigurationManager
    from cfgcore.engine import engine_class

    now = datetime.now(timezone.utc)
    manager = DynamicConfigurationManager(
        state_dir=tmp_path, engine=engine_class(impl)(), record_usage=False
    )
    try:
        assert manager.create_ab_test(
            ABTestConfiguration(
                "t", "", now - timedelta(days=1), now + timedelta(days=9),
                {"control": 50.0, "b": 50.0}, {"control": {"x": 1}, "b": {"x": 2}}, ["buy"],
            )
        )  # fmt: skip
        provider = CfgcoreProvider(manager.engine, experiments=manager)

        class Name(NoText):
            def __eq__(self, other):  # compared with the tests' metric names
                raise RuntimeError("no comparison")

            __hash__ = NoText.__hash__

        with caplog.at_level(logging.ERROR, logger="cfgcore.openfeature"):
            provider.track(Name(), CTX)  # never raises
        records = [r for r in caplog.records if r.name == "cfgcore.openfeature"]
        assert len(records) == 1
        assert (
            records[0]
            .getMessage()
            .startswith("tracking event <unrepresentable Name> not recorded (")
        )
    finally:
        manager.close()


def test_a_refusal_announced_before_the_sdks_ready_is_announced_again(tmp_path, impl):
    """The SDK registers a provider in two steps: attach(), then initialize() and
    READY (on a thread with set_provider). A document refused between them was
    announced STALE and then overridden by the SDK's READY, and since the provider had
    announced it, nothing told it again: READY for good while the last good flags
    served. A refusal arriving in that window is made deterministic here by refusing
    the document from within initialize(), before the provider's own."""
    import json
    from pathlib import Path

    from openfeature.provider import ProviderStatus

    from cfgcore.dynamic_config import DynamicConfigurationManager
    from cfgcore.engine import engine_class
    from tests.waiting import wait_for

    path = Path(tmp_path) / "flags.json"
    path.write_text(json.dumps({"flags": {"a": {"default": "on"}}}))
    manager = DynamicConfigurationManager(flags_file=path, engine=engine_class(impl)())

    class RefusedMeanwhile(CfgcoreProvider):
        def initialize(self, evaluation_context):
            path.write_text("{broken")
            assert manager.reload() is False  # announced STALE now, before READY
            super().initialize(evaluation_context)

    provider = RefusedMeanwhile(manager.engine)
    try:
        client = _client(provider)
        assert client.get_boolean_value("a", False) is True  # the last good flags
        assert wait_for(lambda: client.get_provider_status() == ProviderStatus.STALE)
    finally:
        provider.shutdown()
        manager.close()
