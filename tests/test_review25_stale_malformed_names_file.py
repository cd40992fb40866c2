"""``cfgcore flags stale`` (``find_stale``) on a flag document holding an A/B test record
of the wrong shape: the refusal names the store, as every other refusal of that record
does (it named only the key path)."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest

from cfgcore.dynamic_config import ABTestConfiguration
from cfgcore.errors import ConfigError
from cfgcore.experiments.stale import Evidence, find_stale
from cfgcore.snapshot import Snapshot


def test_a_malformed_record_is_refused_naming_the_store():
    now = datetime.now(timezone.utc)
    split = {"control": 50.0, "treatment": 50.0}
    test = ABTestConfiguration(
        test_name="exp", description="", start_date=now - timedelta(days=1),
        end_date=now + timedelta(days=1), traffic_split=split,
        configurations={v: {} for v in split}, success_metrics=["ctr"],
    )  # fmt: skip
    record = {**test.to_metadata(), "traffic_split": "abc"}
    snap = Snapshot(flags={"exp": test.to_flag()}, experiments={"exp": record})
    with pytest.raises(ConfigError) as err:
        find_stale(snap, Evidence(), days=30, now=time.time(), store="/srv/flags.json")
    assert str(err.value).startswith("/srv/flags.json: experiments.exp.traffic_split"), err.value
