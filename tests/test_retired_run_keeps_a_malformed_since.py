"""A retirement never makes a ``since`` that is no time into one.

A flag document whose A/B test record holds a ``since`` that is no time (a typo such as
``since: oops``) is refused by every process, naming ``experiments.NAME.since``. Where
the document's metadata also recorded the test's name as retired, the run derived from
the retirement (``retired_runs``) used to stand in for the typo on the change path: any
later write through cfgcore (an unrelated flag) wrote the refused document live with
``since`` set to the retirement, and with it whatever else the hand edit held, such as a
split that moves the test's enrolled users. The writing process served it, every other
running process refused it (users moved): the fleet split. Now such a ``since`` stays as
written, and the write is refused naming it, as it is for a test no retirement names.
Real files, real managers (two processes' engines), both evaluators, the real CLI.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from cfgcore.dynamic_config import ABTestConfiguration, DynamicConfigurationManager
from cfgcore.engine import engine_class
from cfgcore.errors import ConfigError
from cfgcore.snapshot import load_snapshot
from tests.conftest import run_cli

NOW = datetime.now(timezone.utc)


def _test(split: dict[str, float]) -> ABTestConfiguration:
    return ABTestConfiguration(
        "t", "", NOW - timedelta(days=1), NOW + timedelta(days=9), split,
        {k: {"v": k} for k in split}, ["buy"],
    )  # fmt: skip


def _manager(tmp_path, impl) -> DynamicConfigurationManager:
    return DynamicConfigurationManager(
        state_dir=tmp_path, record_usage=False, engine=engine_class(impl)()
    )


def _edit(path, edit) -> None:
    with open(path) as f:
        doc = json.load(f)
    edit(doc)
    with open(f"{path}.edit", "w") as f:
        json.dump(doc, f)
    os.replace(f"{path}.edit", path)


def _typo_and_moved_split(doc: dict[str, Any]) -> None:
    doc["experiments"]["t"]["since"] = "oops"
    doc["experiments"]["t"]["traffic_split"] = {"control": 10.0, "c": 90.0}
    doc["flags"]["t"]["rules"][0]["split"] = {"control": 10.0, "c": 90.0}


def test_a_write_does_not_turn_a_refused_since_into_the_retirement(tmp_path, impl, capsys):
    flags = tmp_path / "flags.json"
    first, other = _manager(tmp_path, impl), None
    try:
        # A second run of t (created again after a delete: since = its retirement),
        # served, then a hand edit: a typo in since, and a split that moves its users.
        assert first.create_ab_test(_test({"control": 50.0, "c": 50.0}))
        assert first.delete_ab_test("t")
        assert first.create_ab_test(_test({"control": 50.0, "c": 50.0}))
        other = _manager(tmp_path, impl)
        for m in (first, other):
            assert m.get_ab_test_variant("t", {"user_id": "u"}) is not None
        _edit(flags, _typo_and_moved_split)
        for m in (first, other):
            assert not m.reload()  # refused: the since is no time
        # An unrelated write through cfgcore on the stored (refused) document.
        try:
            first.set_feature_flag("unrelated_switch", True)
        except ConfigError as exc:
            assert "experiments.t.since" in str(exc)
        stored = load_snapshot(flags).experiments["t"]
        assert stored["since"] == "oops", "the refused document was written live"
        assert stored["traffic_split"] == {"control": 10.0, "c": 90.0}
        # Both processes serve the same test: the split every user was enrolled by.
        other.reload()
        splits = [m.list_ab_tests()["t"]["traffic_split"] for m in (first, other)]
        assert splits == [{"control": 50.0, "c": 50.0}] * 2
        # The command line's report reads the stored document, and refuses it too.
        code, _out, err = run_cli(
            capsys, "experiment", "report", "t", "--state-dir", str(tmp_path), "--json"
        )
        assert code != 0 and "experiments.t.since" in err
    finally:
        first.close()
        if other is not None:
            other.close()


@pytest.mark.parametrize("since", ["oops", True, -1, 1e300, [1]])
def test_retired_runs_leaves_a_since_that_is_no_time(since):
    from cfgcore.experiments.abtest import RETIRED, retired_runs
    from cfgcore.snapshot import Snapshot

    snap = Snapshot(experiments={"t": {"since": since}}, metadata={RETIRED: {"t": 1.0e9}})
    assert retired_runs(snap, "flags.json").experiments["t"]["since"] == since
    for absent in ({}, {"since": None}):
        snap = Snapshot(experiments={"t": absent}, metadata={RETIRED: {"t": 1.0e9}})
        assert retired_runs(snap, "flags.json").experiments["t"]["since"] == 1.0e9
