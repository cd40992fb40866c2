"""Deleting the A/B test whose stored record is of the wrong shape is how the
experiment API repairs a flag document that no
process serves for it (every reload and follower refuses it). The change applies to
the stored document, and the check that it moves no served test's users derived that
document first, refusing the delete for the very record it removes. A change that
keeps the malformed record (stopping another test) is still refused, naming it.
Real files and a real redis-server.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import msgspec
import pytest

from cfgcore.dynamic_config import ABTestConfiguration, DynamicConfigurationManager
from cfgcore.errors import ConfigError
from cfgcore.runtime.atomicio import atomic_write
from tests.waiting import wait_for

NOW = datetime.now(timezone.utc)
USERS = [f"u{i}" for i in range(200)]


def _test(name: str) -> ABTestConfiguration:
    split = {"control": 50.0, "treatment": 50.0}
    return ABTestConfiguration(
        test_name=name, description="", start_date=NOW - timedelta(days=1),
        end_date=NOW + timedelta(days=1), traffic_split=split,
        configurations={v: {"v": v} for v in split}, success_metrics=["ctr"],
    )  # fmt: skip


def _break(path, name: str) -> None:
    with open(path, "rb") as fh:
        doc = json.load(fh)
    doc["experiments"][name]["control"] = ["control"]
    atomic_write(str(path), json.dumps(doc).encode())


def test_deleting_the_malformed_test_repairs_the_flag_file(tmp_path):
    m = DynamicConfigurationManager(state_dir=tmp_path, record_usage=False)
    try:
        assert m.create_ab_test(_test("a")) and m.create_ab_test(_test("b"))
        served = {u: m.get_ab_test_variant("a", {"user_id": u}) for u in USERS}
        _break(m.flags_file, "b")
        assert m.reload() is False and "experiments.b.control" in str(m._live.last_error)
        # Another change keeps the record: refused, naming it, nothing written.
        with pytest.raises(ConfigError, match=r"experiments\.b\.control"):
            m.stop_ab_test("a")
        assert m.delete_ab_test("b") is True
        assert "b" not in m.list_ab_tests() and m._live.last_error is None
        with open(m.flags_file, "rb") as fh:
            assert "b" not in json.load(fh)["experiments"]
        assert {u: m.get_ab_test_variant("a", {"user_id": u}) for u in USERS} == served
    finally:
        m.close()


def test_a_running_fleet_process_deletes_the_malformed_test(redis_server, stores, tmp_path):
    """On a Redis store the document came from another tool; this process's follower
    refused it and serves the last good one. Deleting the broken test repairs the
    namespace for every process."""
    url = redis_server.url + "?namespace=delbad&cache=off&poll=0.1"
    m = DynamicConfigurationManager(store=url, state_dir=tmp_path / "state", record_usage=False)
    try:
        assert m.create_ab_test(_test("a")) and m.create_ab_test(_test("b"))
        served = {u: m.get_ab_test_variant("a", {"user_id": u}) for u in USERS}

        def broken(snap):
            meta = {**snap.experiments["b"], "control": ["control"]}
            return msgspec.structs.replace(snap, experiments={**snap.experiments, "b": meta})

        stores(url).update(broken)  # another tool: no experiment checks
        assert wait_for(lambda: "experiments.b.control" in str(m._live.last_error))
        assert m.delete_ab_test("b") is True
        snap = stores(url).read().snapshot
        assert "b" not in snap.experiments and "a" in snap.experiments
        assert "b" not in m.list_ab_tests() and m._live.last_error is None
        assert {u: m.get_ab_test_variant("a", {"user_id": u}) for u in USERS} == served
    finally:
        m.close()
