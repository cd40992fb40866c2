"""flagd export audit: an exported flag must answer in flagd's own evaluator
(``FlagdCore`` from openfeature-flagd-core) what cfgcore answers; what flagd cannot
express the same way is refused naming the flag and the construct.
"""

from __future__ import annotations

import copy
import logging

import pytest

from cfgcore.interop import InteropError, flagd
from cfgcore.snapshot import snapshot_from_dict

core_mod = pytest.importorskip("openfeature.contrib.tools.flagd.core")
from openfeature.evaluation_context import EvaluationContext  # noqa: E402


@pytest.fixture(autouse=True)
def _quiet():
    logging.getLogger("openfeature").setLevel(logging.CRITICAL)


def _flagd_value(doc, kind, default, attrs):
    core = core_mod.FlagdCore()
    core.set_flags(copy.deepcopy(doc))  # FlagdCore renames keys of the document it is given
    return getattr(core, f"resolve_{kind}_value")("f", default, EvaluationContext(None, attrs))


@pytest.mark.parametrize(
    "flag, kind, default",
    [
        ({"enabled": False, "default": "on"}, "boolean", True),  # a boolean switched off
        ({"enabled": False, "variants": {"a": "A", "b": "B"}, "default": "a"}, "string", "FB"),
        (
            {
                "enabled": False,
                "variants": {"a": "A", "b": "B"},
                "default": "a",
                "off_variant": "b",
            },
            "string",
            "FB",
        ),
    ],
)
def test_a_switched_off_flag_serves_its_off_variant_in_flagd_too(make, flag, kind, default):
    snap = snapshot_from_dict({"flags": {"f": flag}})
    want = make(snap).evaluate("f", {}).value
    assert want is not None and want != default  # the case can tell the two apart
    assert _flagd_value(flagd.from_snapshot(snap), kind, default, {}).value == want


def test_a_disabled_flag_imported_from_flagd_stays_disabled():
    doc = {"flags": {"f": {"state": "DISABLED", "variants": {"a": "A"}, "defaultVariant": "a"}}}
    out = flagd.from_snapshot(flagd.to_snapshot(doc))
    assert out["flags"]["f"]["state"] == "DISABLED"
    assert _flagd_value(out, "string", "FB", {}).value == "FB"


def test_an_attribute_name_with_a_dot_is_refused():
    # cfgcore reads the key "a.b"; JSONLogic's var reads the path a -> b
    flag = {"variants": {"a": "A", "b": "B"}, "default": "a",
            "rules": [{"when": {"attr": "a.b", "eq": "x"}, "serve": "b"}]}  # fmt: skip
    with pytest.raises(InteropError) as err:
        flagd.from_snapshot(snapshot_from_dict({"flags": {"g": flag}}))
    assert "flags.g" in str(err.value) and "'a.b'" in str(err.value)
