"""A/B test numbers past a float (an integer of 400 digits, which JSON and MessagePack
carry) in a flag document: refused naming the file and key path, as every other
malformed record is. ``derive`` raised ``OverflowError: int too large to convert to
float`` from the judge of records (a split weight) and from the layer/holdout
derivation (``layer_percentage``, ``holdout_percentage``): a reload raised instead of
keeping the live flags, and a start failed naming nothing.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cfgcore.dynamic_config import ABTestConfiguration, DynamicConfigurationManager
from cfgcore.errors import ConfigError
from cfgcore.runtime.atomicio import atomic_write
from cfgcore.runtime.flags import derive
from cfgcore.snapshot import decode_snapshot

NOW = datetime.now(timezone.utc)
HUGE = "1" + "0" * 400


def _document(record: str, metadata: str = "{}") -> str:
    return (
        '{"flags": {"exp": {"variants": {"control": 1, "t": 2}, "default": "control"}}, '
        f'"experiments": {{"exp": {{{record}}}}}, "metadata": {metadata}}}'
    )


@pytest.mark.parametrize(
    ("record", "metadata", "where"),
    [
        (f'"traffic_split": {{"control": {HUGE}, "t": 50}}', "{}",
         "experiments.exp.traffic_split.control"),
        (f'"traffic_split": {{"control": 50, "t": 50}}, "layer": "L", "layer_percentage": {HUGE}',
         "{}", "experiments"),
        ('"traffic_split": {"control": 50, "t": 50}', f'{{"holdout_percentage": {HUGE}}}',
         "experiments"),
    ],
)  # fmt: skip
def test_derive_refuses_a_number_past_a_float_naming_file_and_path(record, metadata, where):
    snap = decode_snapshot(_document(record, metadata), "json", file="flags.json")
    with pytest.raises(ConfigError) as err:
        derive(snap, "flags.json")
    assert str(err.value).startswith(f"flags.json: {where}"), err.value


@given(st.integers(min_value=2**1024))
def test_a_split_weight_past_a_float_is_a_problem_not_an_exception(weight):
    from cfgcore.experiments.abtest import record_problems

    problems = record_problems("exp", {"traffic_split": {"control": weight, "t": 50}}, "f")
    assert [p.path for p in problems] == ["experiments.exp.traffic_split.control"]


def test_a_reload_keeps_serving_and_a_start_names_the_file(tmp_path):
    split = {"control": 50.0, "treatment": 50.0}
    test = ABTestConfiguration(
        test_name="exp", description="", start_date=NOW - timedelta(days=1),
        end_date=NOW + timedelta(days=1), traffic_split=split,
        configurations={v: {"v": v} for v in split}, success_metrics=["ctr"],
    )  # fmt: skip
    m = DynamicConfigurationManager(state_dir=tmp_path, record_usage=False)
    try:
        assert m.create_ab_test(test)
        with open(m.flags_file) as fh:
            doc = json.load(fh)
        doc["experiments"]["exp"]["traffic_split"]["control"] = "HUGE"
        atomic_write(m.flags_file, json.dumps(doc).replace('"HUGE"', HUGE).encode())
        assert m.reload() is False
        assert "experiments.exp.traffic_split.control" in str(m._live.last_error)
        assert m.get_ab_test_variant("exp", {"user_id": "u1"}) in split
    finally:
        m.close()
    with pytest.raises(ConfigError) as err:
        DynamicConfigurationManager(state_dir=tmp_path, record_usage=False)
    assert f"{m.flags_file}:1: experiments.exp.traffic_split.control" in str(err.value)
