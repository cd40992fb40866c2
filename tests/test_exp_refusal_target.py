"""An A/B test change refused names what the manager works on, once, alike for create,
update and delete: the flags store it writes (``flags_file``), or, for a manager that
keeps its changes in this process (``persist=False``), no file at all (it writes none:
its refusals name the test's key path, as a problem about a value passed in code does).
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone

import pytest

from cfgcore.dynamic_config import ABTestConfiguration, DynamicConfigurationManager
from cfgcore.engine import engine_class

BAD_SPLIT = {"control": 50.0, "treatment": 60.0}


def _ab(**fields) -> ABTestConfiguration:
    now = datetime.now(timezone.utc)
    values = dict(
        test_name="t", description="t", start_date=now - timedelta(days=1),
        end_date=now + timedelta(days=1), traffic_split={"control": 50.0, "treatment": 50.0},
        configurations={"control": {}, "treatment": {}}, success_metrics=["ctr"],
    )  # fmt: skip
    return ABTestConfiguration(**{**values, **fields})


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("CFGCORE_FLAG_STORE", raising=False)
    return tmp_path


@pytest.mark.parametrize("persist", [True, False])
def test_create_update_and_delete_refusals_name_the_store_once(home, impl, persist):
    m = DynamicConfigurationManager(persist=persist, engine=engine_class(impl)(),
                                    record_usage=False)  # fmt: skip
    where = f"{m.flags_file}: " if persist else ""
    file = m.flags_file if persist else None
    try:
        assert m.create_ab_test(_ab(traffic_split=BAD_SPLIT)) is False
        assert m.last_error == f"{where}t: traffic_split: weights sum to 110, not 100"
        assert [p.file for p in m.last_problems] == [file]

        assert m.create_ab_test(_ab()) is True and m.last_error is None
        assert m.update_ab_test("t", {"traffic_split": BAD_SPLIT, "layer_percentage": 30}) is False
        problems = ["t: traffic_split: weights sum to 110, not 100",
                    "t: layer_percentage: 30 takes effect only within a layer"]  # fmt: skip
        assert m.last_error.startswith(f"{where}{problems[0]}; {problems[1]}")
        assert [p.file for p in m.last_problems] == [file, file]
        assert [p.message for p in m.last_problems][0] == problems[0]
        assert [str(p) for p in m.last_problems][0] == f"{where}{problems[0]}"

        assert m.update_ab_test("nope", {"layer_percentage": 20}) is False
        assert m.last_error == f"{where}nope: no such A/B test"

        # A delete refused says so too, not what the call before it was refused for.
        assert m.create_ab_test(_ab(traffic_split=BAD_SPLIT)) is False
        assert m.delete_ab_test("nope") is False
        assert m.last_error == f"{where}nope: no such A/B test"
        assert [(p.file, p.message) for p in m.last_problems] == [(file, "nope: no such A/B test")]
        assert m.delete_ab_test("t") is True and m.last_error is None
        if not persist:
            # Nothing was written where the refusals would have pointed.
            assert not os.path.exists(m.flags_file)
    finally:
        m.close()
