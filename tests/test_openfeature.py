"""The OpenFeature provider, driven through the real openfeature-sdk client."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.errors import SnapshotError
from tests.fuzz import examples

api = pytest.importorskip("openfeature.api", reason="openfeature-sdk is not installed")

from openfeature.evaluation_context import EvaluationContext  # noqa: E402
from openfeature.event import ProviderEvent  # noqa: E402
from openfeature.exception import ErrorCode  # noqa: E402
from openfeature.hook import Hook  # noqa: E402

from cfgcore.openfeature import CfgcoreProvider  # noqa: E402
from tests.texts import any_text  # noqa: E402

FLAGS = {
    "version": 1,
    "metadata": {"team": "audio", "tier": 1, "nested": {"dropped": True}},
    "segments": {"premium": {"attr": "user_segment", "eq": "premium"}},
    "flags": {
        "lossless": {
            "default": "off",
            "rules": [{"when": {"segment": "premium"}, "serve": "on"}],
            "metadata": {"team": "streaming", "owner_id": 7, "weight": 0.5, "live": True},
        },
        "greeting": {"variants": {"hi": "hi", "bye": "bye"}, "default": "hi"},
        "max_streams": {"variants": {"few": 2, "many": 6}, "default": "few"},
        "ratio": {"variants": {"low": 0.25, "one": 1}, "default": "low"},
        "one_ratio": {"variants": {"one": 1}, "default": "one"},
        "algo": {
            "variants": {
                "mf": {"algorithm": "mf", "params": {"k": 8, "tags": ["a", "b"]}},
                "dnn": {"algorithm": "dnn", "params": {"k": 64, "tags": []}},
            },
            "default": "mf",
            "rules": [{"split": {"mf": 50, "dnn": 50}}],
        },
        "codecs": {"variants": {"std": ["aac", "mp3"]}, "default": "std"},
        "half": {"default": "off", "rules": [{"rollout": 50, "serve": "on"}]},
        "killed": {"enabled": False, "default": "on", "off_variant": "off"},
        "killed_null": {
            "variants": {"on": True, "none": None},
            "default": "on",
            "enabled": False,
            "off_variant": "none",
        },
        "unset": {"variants": {"none": None, "some": "x"}, "default": "none"},
    },
}

_domains = itertools.count()


@pytest.fixture
def client_for(make):
    """``client_for(snapshot)`` -> (engine, provider, client) in a fresh OpenFeature domain."""
    domains = []

    def build(snapshot=FLAGS, **kw):
        engine = make(snapshot)
        provider = CfgcoreProvider(engine, **kw)
        domain = f"cfgcore-test-{next(_domains)}"
        api.set_provider_and_wait(provider, domain=domain)
        domains.append(provider)
        return engine, provider, api.get_client(domain)

    yield build
    for provider in domains:
        provider.shutdown()


PREMIUM = EvaluationContext("user-1", {"user_segment": "premium"})
FREE = EvaluationContext("user-2", {"user_segment": "free"})


def test_boolean_resolution_with_targeting(client_for):
    _, _, client = client_for()
    d = client.get_boolean_details("lossless", False, PREMIUM)
    assert (d.value, d.variant, d.reason, d.error_code) == (True, "on", "TARGETING_MATCH", None)
    d = client.get_boolean_details("lossless", True, FREE)
    assert (d.value, d.variant, d.reason) == (False, "off", "DEFAULT")


def test_string_integer_float_resolution(client_for):
    _, _, client = client_for()
    d = client.get_string_details("greeting", "x", FREE)
    assert (d.value, d.variant, d.reason) == ("hi", "hi", "STATIC")
    d = client.get_integer_details("max_streams", 0, FREE)
    assert (d.value, d.variant) == (2, "few")
    assert type(d.value) is int
    d = client.get_float_details("ratio", 0.0, FREE)
    assert (d.value, d.variant) == (0.25, "low")
    # An integral value is a valid float: returned as a float.
    d = client.get_float_details("one_ratio", 0.0, FREE)
    assert d.value == 1.0 and type(d.value) is float and d.error_code is None


def test_object_values_are_plain_mutable_copies(client_for):
    _, _, client = client_for()
    d = client.get_object_details("algo", {}, PREMIUM)
    assert d.reason == "SPLIT" and d.variant in ("mf", "dnn")
    value = d.value
    assert type(value) is dict and type(value["params"]) is dict
    assert type(value["params"]["tags"]) is list
    value["params"]["k"] = -1
    value["params"]["tags"].append("mutated")
    again = client.get_object_details("algo", {}, PREMIUM).value
    assert again["params"]["k"] in (8, 64) and "mutated" not in again["params"]["tags"]
    arr = client.get_object_details("codecs", {}, FREE).value
    assert arr == ["aac", "mp3"] and type(arr) is list


@pytest.mark.parametrize(
    ("method", "key", "default"),
    [
        ("get_boolean_details", "greeting", False),  # str served for a boolean
        ("get_boolean_details", "max_streams", False),  # int served for a boolean
        ("get_string_details", "lossless", "x"),  # bool served for a string
        ("get_integer_details", "ratio", 1),  # float served for an integer
        ("get_integer_details", "lossless", 1),  # a bool is not an integer
        ("get_float_details", "lossless", 1.5),  # a bool is not a float
        ("get_float_details", "greeting", 1.5),
        ("get_object_details", "greeting", {"a": 1}),  # str served for an object
    ],
)
def test_type_mismatch_returns_the_default(client_for, method, key, default):
    _, _, client = client_for()
    d = getattr(client, method)(key, default, PREMIUM)
    assert d.value == default
    assert d.error_code == ErrorCode.TYPE_MISMATCH
    assert d.reason == "ERROR" and d.variant is None
    assert key in d.error_message


def test_unknown_flag(client_for):
    _, _, client = client_for()
    d = client.get_string_details("no_such_flag", "fallback", PREMIUM)
    assert (d.value, d.reason, d.error_code) == ("fallback", "ERROR", ErrorCode.FLAG_NOT_FOUND)


def test_disabled_flag_serves_its_off_variant(client_for):
    _, _, client = client_for()
    d = client.get_boolean_details("killed", True, PREMIUM)
    assert (d.value, d.variant, d.reason, d.error_code) == (False, "off", "DISABLED", None)


def test_null_variant_defers_to_the_callers_default(client_for):
    _, _, client = client_for()
    d = client.get_boolean_details("killed_null", True, PREMIUM)
    assert (d.value, d.variant, d.reason, d.error_code) == (True, None, "DISABLED", None)
    d = client.get_string_details("unset", "code-default", PREMIUM)
    assert (d.value, d.variant, d.reason, d.error_code) == ("code-default", None, "DEFAULT", None)


def test_targeting_key_is_the_bucketing_key(client_for):
    engine, _, client = client_for()
    served = set()
    for i in range(200):
        tk = f"user-{i}"
        d = client.get_boolean_details("half", False, EvaluationContext(tk))
        expected = engine.evaluate("half", {"targeting_key": tk})
        assert (d.value, d.variant, d.reason) == (
            expected.value,
            expected.variant,
            expected.reason,
        )
        served.add(d.value)
    assert served == {True, False}
    # The targeting key wins over an attribute spelled the same way.
    d = client.get_boolean_details(
        "half", False, EvaluationContext("user-3", {"targeting_key": "user-4"})
    )
    assert d.value == engine.is_enabled("half", {"targeting_key": "user-3"})


def test_no_context_is_fine(client_for):
    _, _, client = client_for()
    d = client.get_boolean_details("half", True)
    # Without a bucketing key the rollout rule does not apply: the default serves.
    assert (d.value, d.reason) == (False, "DEFAULT")


def test_flag_metadata_overlays_flag_set_metadata(client_for):
    _, _, client = client_for()
    d = client.get_boolean_details("lossless", False, PREMIUM)
    assert dict(d.flag_metadata) == {
        "team": "streaming",  # the flag's value wins over the flag set's
        "tier": 1,
        "owner_id": 7,
        "weight": 0.5,
        "live": True,
    }
    # Non-scalar metadata is not representable in OpenFeature and is left out.
    d = client.get_string_details("greeting", "x", PREMIUM)
    assert dict(d.flag_metadata) == {"team": "audio", "tier": 1}


def _wait_for(condition, timeout=10.0):
    """The SDK runs event handlers on its own thread pool: wait with a deadline."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met before the deadline")
        time.sleep(0.005)


def test_swap_reaches_client_handlers_as_configuration_changed(client_for):
    engine, _, client = client_for()
    events = []
    client.add_handler(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED, events.append)
    new = {**FLAGS, "flags": dict(FLAGS["flags"])}
    new["flags"]["greeting"] = {"variants": {"hi": "hi", "bye": "bye"}, "default": "bye"}
    del new["flags"]["codecs"]
    new["flags"]["fresh"] = {"default": "on"}
    engine.swap(new)
    _wait_for(lambda: len(events) == 1)
    assert events[0].flags_changed == ["codecs", "fresh", "greeting"]
    assert events[0].provider_name == "cfgcore"
    assert events[0].metadata == {"snapshot_version": engine.version}
    assert client.get_string_value("greeting", "x", FREE) == "bye"


def test_swap_events_emitted_by_the_provider(make):
    """The provider's own emissions, observed synchronously through attach()."""
    engine = make(FLAGS)
    provider = CfgcoreProvider(engine)
    emitted = []
    provider.attach(lambda prov, event, details: emitted.append((prov, event, details)))
    engine.swap({**FLAGS, "flags": {**FLAGS["flags"], "fresh": {"default": "on"}}})
    assert [(p, e, d.flags_changed) for p, e, d in emitted] == [
        (provider, ProviderEvent.PROVIDER_CONFIGURATION_CHANGED, ["fresh"])
    ]
    # A rejected snapshot changes nothing and announces nothing.
    with pytest.raises(SnapshotError):
        engine.swap({"flags": {"broken": {"default": "missing_variant"}}})
    assert len(emitted) == 1
    assert provider.resolve_boolean_details("fresh", False).value is True
    # After shutdown the provider no longer listens to the engine.
    provider.shutdown()
    engine.swap(FLAGS)
    assert len(emitted) == 1


@pytest.mark.parametrize(("before", "after"), [(1, True), (1, 1.0), (0, False), ([1], [True])])
def test_a_value_changing_type_but_equal_in_python_is_a_change(make, before, after):
    """1 == True == 1.0 in Python, yet a flag serving one or the other serves another
    value and type: the swap lists the flag as changed."""

    def doc(v):
        return {"flags": {"n": {"variants": {"v": v}, "default": "v"}, "same": {"default": "on"}}}  # noqa: E731

    engine = make(doc(before))
    provider = CfgcoreProvider(engine)
    emitted = []
    provider.attach(lambda prov, event, details: emitted.append(details.flags_changed))
    engine.swap(doc(after))
    assert emitted == [["n"]]
    provider.detach()


def test_flag_set_metadata_change_lists_every_flag(make):
    engine = make(FLAGS)
    provider = CfgcoreProvider(engine)
    emitted = []
    provider.attach(lambda prov, event, details: emitted.append(details))
    engine.swap({**FLAGS, "metadata": {"team": "platform"}})
    assert emitted[0].flags_changed == sorted(FLAGS["flags"])
    assert provider.resolve_string_details("greeting", "x").flag_metadata["team"] == "platform"
    provider.detach()


class RecordingHook(Hook):
    def __init__(self):
        self.calls = []

    def before(self, hook_context, hints):
        self.calls.append(("before", hook_context.flag_key))

    def after(self, hook_context, details, hints):
        self.calls.append(("after", details.value, details.variant))

    def error(self, hook_context, exception, hints):
        self.calls.append(("error", type(exception).__name__))

    def finally_after(self, hook_context, details, hints):
        self.calls.append(("finally", details.reason))


def test_hooks_run_normally(client_for):
    _, _, client = client_for()
    hook = RecordingHook()
    client.add_hooks([hook])
    client.get_boolean_value("lossless", False, PREMIUM)
    assert hook.calls == [
        ("before", "lossless"),
        ("after", True, "on"),
        ("finally", "TARGETING_MATCH"),
    ]
    hook.calls.clear()
    assert client.get_boolean_value("no_such_flag", True, PREMIUM) is True
    assert hook.calls[0] == ("before", "no_such_flag")
    assert ("error", "FlagNotFoundError") in hook.calls
    assert hook.calls[-1] == ("finally", "ERROR")


def test_failing_context_mapper_is_a_general_error(client_for):
    def mapper(targeting_key, attributes):
        raise ValueError("no tenant")

    _, _, client = client_for(context=mapper)
    d = client.get_boolean_details("lossless", True, PREMIUM)
    assert (d.value, d.error_code) == (True, ErrorCode.GENERAL)
    assert "no tenant" in d.error_message


def test_custom_context_mapper(client_for):
    def mapper(targeting_key, attributes):
        return {"user_id": targeting_key, "user_segment": attributes.get("plan")}

    _, _, client = client_for(context=mapper)
    assert client.get_boolean_value("lossless", False, EvaluationContext("u", {"plan": "premium"}))


class _Answer:
    def __init__(self, value, variant, reason, error_code=None, metadata=None):
        self.value, self.variant, self.reason = value, variant, reason
        self.error_code, self.metadata = error_code, metadata or {}


def test_an_importers_resolve_replaces_the_engines_answer(client_for):
    """resolve= lets imported flags answer as their source system does."""

    def resolve(engine, key, ctx, default):
        if key == "broken":
            return _Answer(None, None, "ERROR", "PARSE_ERROR", {"origin": "x"})
        d = engine.evaluate(key, ctx)
        if d.error_code:
            return _Answer(None, None, "ERROR", d.error_code)
        reason = "TARGETING_MATCH" if d.reason == "SPLIT" else d.reason
        return _Answer(d.value, d.variant, reason, None, {"src": "peer", "nested": {"x": 1}})

    _, _, client = client_for(resolve=resolve)
    d = client.get_object_details("algo", {}, PREMIUM)
    assert d.reason == "TARGETING_MATCH" and type(d.value) is dict
    assert dict(d.flag_metadata) == {"src": "peer"}
    d = client.get_boolean_details("broken", True, PREMIUM)
    assert (d.value, d.error_code) == (True, ErrorCode.PARSE_ERROR)
    d = client.get_boolean_details("no_such_flag", True, PREMIUM)
    assert (d.value, d.error_code) == (True, ErrorCode.FLAG_NOT_FOUND)
    d = client.get_string_details("unset", "code", PREMIUM)  # a null value: caller's default
    assert (d.value, d.variant, d.reason) == ("code", None, "STATIC")
    d = client.get_integer_details("greeting", 7, PREMIUM)
    assert (d.value, d.error_code) == (7, ErrorCode.TYPE_MISMATCH)


def test_async_resolution(client_for):
    _, _, client = client_for()

    async def run():
        return await client.get_integer_details_async("max_streams", 0, FREE)

    d = asyncio.run(run())
    assert (d.value, d.variant) == (2, "few")


_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True),
    any_text(max_size=20),
    st.lists(st.integers(), max_size=3),
)


@settings(max_examples=examples(60), deadline=None)
@given(
    tk=st.one_of(st.none(), any_text(max_size=12)),
    attrs=st.dictionaries(st.sampled_from(["user_segment", "region", "x"]), _values),
)
def test_provider_agrees_with_the_engine_on_any_context(make_py_and_c, tk, attrs):
    """For any context, the provider answers exactly what the engine answers."""
    for factory in make_py_and_c:
        engine = factory(FLAGS)
        provider = CfgcoreProvider(engine)
        ctx = EvaluationContext(tk, attrs)
        mapped = dict(attrs)
        if tk is not None:
            mapped["targeting_key"] = tk
        for key in ("lossless", "half"):
            r = provider.resolve_boolean_details(key, False, ctx)
            e = engine.evaluate(key, mapped)
            assert (r.value, r.variant, r.reason, r.error_code) == (
                e.value,
                e.variant,
                e.reason,
                None,
            )
        r = provider.resolve_object_details("algo", {}, ctx)
        e = engine.evaluate("algo", mapped)
        assert r.variant == e.variant and r.value == dict(e.value) | {
            "params": {**e.value["params"], "tags": list(e.value["params"]["tags"])}
        }


def _readme_block(heading: str, index: int = 0) -> str:
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = text[text.index(heading) :]
    section = section[: section.index("\n## ", 1)]
    return re.findall(r"```python\n(.*?)```", section, re.S)[index]


def test_readme_openfeature_example_runs(tmp_path, monkeypatch):
    import shutil

    from openfeature.provider.no_op_provider import NoOpProvider

    from cfgcore.engine import bundled_flags_path

    shutil.copy(bundled_flags_path(), tmp_path / "flags.yaml")
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    try:
        exec(compile(_readme_block("## OpenFeature"), "README-openfeature", "exec"), scope)
        d = scope["details"]
        assert (d.value, d.variant, d.reason) == (
            {"algorithm": "matrix_factorization"},
            "control",
            "SPLIT",
        )
        assert type(d.value) is dict
    finally:
        api.set_provider(NoOpProvider())  # the README bound the default provider: unbind it


def test_readme_flagd_example_runs():
    # The README's flagd block continues its first OpenFeature block (api, client and
    # EvaluationContext come from there) and brings its own flagd document.
    pytest.importorskip("cfgcore.interop.flagd", reason="the flagd importer is absent")
    from openfeature.provider.no_op_provider import NoOpProvider

    import cfgcore
    from cfgcore.interop import flagd

    scope = {
        "cfgcore": cfgcore,
        "CfgcoreProvider": CfgcoreProvider,
        "EvaluationContext": EvaluationContext,
        "api": api,
        "client": api.get_client(),
    }
    try:
        exec(compile(_readme_block("## OpenFeature", 1), "README-flagd", "exec"), scope)
        provider = scope["provider"]
        d = provider.resolve_boolean_details(
            "new-welcome-banner", False, EvaluationContext("u", {"email": "a@example.com"})
        )
        assert (d.value, d.variant, d.reason) == (True, "on", "TARGETING_MATCH")
        assert (
            scope["client"].get_boolean_value(
                "new-welcome-banner", True, EvaluationContext("u", {"email": "a@elsewhere.org"})
            )
            is False
        )
    finally:
        api.set_provider(NoOpProvider())  # the README bound the default provider: unbind it
    # The same recipe answers as flagd for a flag without a default variant: the
    # caller's default, reason DEFAULT, no error.
    doc = {"flags": {"no-default": {"state": "ENABLED", "variants": {"a": 1, "b": 2}}}}
    engine = cfgcore.Engine.from_snapshot(flagd.to_snapshot(doc))
    provider = CfgcoreProvider(engine, context=flagd.context, resolve=flagd.resolve)
    d = provider.resolve_integer_details("no-default", 7, EvaluationContext("u"))
    assert (d.value, d.variant, d.reason, d.error_code) == (7, None, "DEFAULT", None)


def test_changes_through_the_dynamic_manager_reach_the_provider(tmp_path, impl):
    """The managers swap their engine (one live flag set per store): a provider on that
    engine announces set_feature_flag and answers with the new flags at once."""
    from cfgcore.dynamic_config import DynamicConfigurationManager
    from cfgcore.engine import engine_class

    manager = DynamicConfigurationManager(state_dir=tmp_path, engine=engine_class(impl)())
    try:
        provider = CfgcoreProvider(manager.engine)
        emitted = []
        provider.attach(lambda prov, event, details: emitted.append((event, details)))
        ctx = EvaluationContext("12345", {"user_segment": "premium", "region": "EU"})
        key = "enhanced_anomaly_detection"
        assert provider.resolve_boolean_details(key, False, ctx).value is True
        manager.set_feature_flag(key, False)
        assert [(e, d.flags_changed) for e, d in emitted] == [
            (ProviderEvent.PROVIDER_CONFIGURATION_CHANGED, [key])
        ]
        d = provider.resolve_boolean_details(key, True, ctx)
        assert (d.value, d.reason) == (False, "DISABLED")
        provider.shutdown()
    finally:
        manager.close()
