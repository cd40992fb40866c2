"""served_at (review of the audit7 fix): a restarted run and clock skew between hosts.

* A test restarted as a new run (a later ``experiments.<test>.since``, its start date
  kept) and then postponed was given ``served_at`` = its start, which is before its
  since, so has_served set it aside: the run looked unserved, its split could change,
  and moving the start back served its users another variant. The refusal of a hand
  edit also told the operator to keep that useless value.
* Re-creating a served test with ``start_date=datetime.now()`` (the seed's example)
  wrote no served_at (its start was not after the writer's now), so a host whose clock
  is a few seconds behind refused the document as one making a served test look
  unserved, keeping the last one while the others served it.
"""

from __future__ import annotations

import json
import re
import time
from datetime import datetime, timedelta

import pytest

from cfgcore.dynamic_config import ABTestConfiguration, DynamicConfigurationManager
from cfgcore.engine import engine_class
from cfgcore.experiments.abtest import moved_users
from cfgcore.runtime.flags import derive
from cfgcore.snapshot import load_snapshot

NOW = datetime.now()
YESTERDAY, TOMORROW = NOW - timedelta(days=1), NOW + timedelta(days=1)
USERS = [{"user_id": f"u{i}"} for i in range(300)]


def _test(start, split, name="t"):
    return ABTestConfiguration(
        name, "", start, NOW + timedelta(days=10), split, {k: {} for k in split}, ["ctr"]
    )


@pytest.fixture
def manager(tmp_path, impl):
    engine = engine_class(impl).from_snapshot({"flags": {}})
    m = DynamicConfigurationManager(state_dir=tmp_path, engine=engine, record_usage=False)
    assert m.create_ab_test(_test(YESTERDAY, {"control": 50, "b": 50}))
    yield m
    m.close()


def _assigned(m):
    return [m.get_ab_test_variant("t", u) for u in USERS]


def _edit(path, change):
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))


def _restart(split):
    def change(doc):
        doc["experiments"]["t"]["since"] = int(time.time()) - 60
        doc["experiments"]["t"]["traffic_split"] = split
        doc["flags"]["t"]["rules"][0]["split"] = split

    return change


def test_a_restarted_run_postponed_through_the_api_keeps_its_users(manager, tmp_path):
    _edit(tmp_path / "flags.json", _restart({"control": 90.0, "b": 10.0}))
    assert manager.reload() is True  # a new run: free to change its split
    before = _assigned(manager)
    assert manager.create_ab_test(_test(TOMORROW, {"control": 90, "b": 10}))  # postponed
    # Still the served run: its split is sticky.
    assert manager.create_ab_test(_test(TOMORROW, {"control": 50, "b": 50})) is False
    assert manager.create_ab_test(_test(YESTERDAY, {"control": 90, "b": 10}))
    assert _assigned(manager) == before


def test_the_served_at_a_refusal_asks_for_works_for_a_restarted_run(manager, tmp_path, caplog):
    path = tmp_path / "flags.json"
    _edit(path, _restart({"control": 90.0, "b": 10.0}))
    assert manager.reload() is True
    later = TOMORROW.astimezone().isoformat()

    def postpone(doc):
        doc["experiments"]["t"]["start_date"] = later
        doc["flags"]["t"]["schedule"]["start"] = later

    _edit(path, postpone)
    assert manager.reload() is False
    asked = re.search(r"keep served_at: ([0-9.e+]+)", caplog.text)
    assert asked is not None, caplog.text

    def keep(doc):
        postpone(doc)
        doc["experiments"]["t"]["served_at"] = float(asked.group(1))

    _edit(path, keep)
    assert manager.reload() is True  # postponed as the operator was told

    def split(doc):
        doc["experiments"]["t"]["traffic_split"] = {"control": 50.0, "b": 50.0}
        doc["flags"]["t"]["rules"][0]["split"] = {"control": 50.0, "b": 50.0}

    _edit(path, split)
    assert manager.reload() is False  # still the served run: its split is sticky


def test_recreated_with_start_now_is_accepted_by_a_host_whose_clock_is_behind(manager, tmp_path):
    path = str(tmp_path / "flags.json")
    old = derive(load_snapshot(path))
    # The seed's example: start_date=datetime.now() (the configurations changed).
    t = _test(datetime.now(), {"control": 50, "b": 50})
    t.configurations = {"control": {"x": 1}, "b": {"x": 2}}
    assert manager.create_ab_test(t)
    new = derive(load_snapshot(path))
    # The writer's followers judge it with their own clocks; one 30 s behind:
    assert moved_users(old, new, time.time() - 30) == []
    assert moved_users(old, new, time.time()) == []
    # and the record says it served whatever the reader's clock says.
    assert "served_at" in new.experiments["t"]
