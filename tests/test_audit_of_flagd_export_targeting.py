"""flagd export audit: the OpenFeature targeting key. cfgcore's provider hands the
targeting key to a native snapshot as the attribute ``targeting_key``; flagd's name for
it is ``targetingKey``. An exported flag must answer in flagd's own evaluator
(``FlagdCore``) what cfgcore's provider answers, for the same OpenFeature context."""

from __future__ import annotations

import copy
import logging

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfgcore.interop import InteropError, flagd
from cfgcore.snapshot import snapshot_from_dict
from tests.fuzz import examples

core_mod = pytest.importorskip("openfeature.contrib.tools.flagd.core")
from openfeature.evaluation_context import EvaluationContext  # noqa: E402

from cfgcore.openfeature import CfgcoreProvider  # noqa: E402


@pytest.fixture(autouse=True)
def _quiet():
    logging.getLogger("openfeature").setLevel(logging.CRITICAL)


KEYS = ["user-1", "user-2", "admin-7", "x"]

NATIVE = {
    "segments": {"staff": {"attr": "targeting_key", "starts_with": "admin-"}},
    "flags": {
        "f": {
            "variants": {"a": "A", "b": "B", "c": "C", "d": "D", "e": "E"},
            "default": "a",
            "rules": [
                {"when": {"attr": "targeting_key", "eq": "user-1"}, "serve": "b"},
                {"when": {"segment": "staff"}, "serve": "c"},
                {
                    "when": {
                        "all": [
                            {"attr": "targeting_key", "in": ["user-2", "x"]},
                            {"attr": "plan", "eq": "pro"},
                        ]
                    },
                    "serve": "d",
                },
                {"when": {"attr": "targeting_key", "ends_with": "-2"}, "serve": "e"},
            ],
        }
    },
}


def test_a_condition_on_the_targeting_key_reads_flagds_targetingKey():
    doc = flagd.from_snapshot(snapshot_from_dict(NATIVE))
    text = repr(doc)
    assert "'targetingKey'" in text and "'targeting_key'" not in text


@pytest.fixture(scope="module")
def exported():
    doc = flagd.from_snapshot(snapshot_from_dict(NATIVE))
    core = core_mod.FlagdCore()
    core.set_flags(copy.deepcopy(doc))
    return core


_contexts = st.builds(
    EvaluationContext,
    st.one_of(st.none(), st.sampled_from(KEYS)),
    st.dictionaries(
        st.sampled_from(["plan", "targeting_key", "region"]),
        st.one_of(st.sampled_from(["pro", "free", "user-1", "admin-9"]), st.integers(0, 3)),
        max_size=3,
    ),
)


@settings(max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ctx=_contexts)
def test_flagd_answers_the_export_as_cfgcores_provider_does(make_py_and_c, exported, ctx):
    want = exported.resolve_string_value("f", "FALLBACK", ctx).value
    for build in make_py_and_c:
        provider = CfgcoreProvider(build(NATIVE))
        assert provider.resolve_string_details("f", "FALLBACK", ctx).value == want, ctx


@pytest.mark.parametrize("attr", ["targetingKey", "$flagd"])
def test_a_native_condition_on_a_name_flagd_fills_itself_is_refused(attr):
    """In flagd these read the targeting key and flagd's own object, over any context
    attribute of that name; in cfgcore's provider they are ordinary attributes."""
    flag = {"default": "off", "rules": [{"when": {"attr": attr, "eq": "k"}, "serve": "on"}]}
    with pytest.raises(InteropError) as err:
        flagd.from_snapshot(snapshot_from_dict({"flags": {"g": flag}}))
    assert "flags.g" in str(err.value) and repr(attr) in str(err.value)


def test_a_flag_imported_from_flagd_keeps_flagds_names():
    doc = {
        "flags": {
            "g": {
                "state": "ENABLED",
                "variants": {"on": True, "off": False},
                "defaultVariant": "off",
                "targeting": {"if": [{"===": [{"var": "targetingKey"}, "k"]}, "on", "off"]},
            }
        }
    }
    out = flagd.from_snapshot(flagd.to_snapshot(doc))
    assert out["flags"]["g"]["targeting"]["if"][0] == {"===": [{"var": "targetingKey"}, "k"]}
