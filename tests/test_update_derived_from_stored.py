"""What ``cfgcore experiment update`` derives from the test is derived from the stored
test the update is written on.

``update NAME --days N`` sets the end date N days after the test's start, and a
variant ``--split`` adds gets the default configuration ``{"variant": NAME}`` unless
the test has one for it. Both used to be decided on the test this process serves,
while the write is judged and made on the newest stored document under the store's
lock: when another process had changed the stored test's start date or variants (or
the stored document was one this process refused), the window was counted from the
wrong start and a variant's stored configuration was overwritten by the default, or
a new variant had none and the update was refused. Both are now derived, inside the
locked change, from the stored test (``update_ab_test(..., derive=...)``). Real
files, a real Redis (tests/redis_server.py), real managers (one in another process),
the real command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta, timezone

import msgspec
import pytest

from cfgcore.dynamic_config import DynamicConfigurationManager
from cfgcore.snapshot import Schedule
from tests.conftest import run_cli
from tests.redis_server import wait_for
from tests.test_audit5_flags2_served_tests import ab
from tests.test_experiments import _simulate
from tests.test_fix10_exp_guardrail_hold import HARMFUL, TEST, _guarded_test
from tests.test_fix12_experiments_fleet_hold import _manager, _publish
from tests.test_fix13_fleet_stop_register import _host

#: The start the other process moves the stored test to.
MOVED = datetime(2031, 6, 1, 12, 0, tzinfo=timezone.utc)
DAYS = 10


@pytest.fixture(autouse=True)
def _quiet_state(tmp_path, monkeypatch):
    for name in ("CFGCORE_CONFIG_DIR", "CFGCORE_FLAG_STORE", "CFGCORE_ACCESS_POLICY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("CFGCORE_USAGE", "0")
    monkeypatch.chdir(tmp_path)


def _stored(flags, name="checkout"):
    with open(flags, encoding="utf-8") as fh:
        doc = json.load(fh)
    variants = {k: v for k, v in doc["flags"][name]["variants"].items() if k != "__none__"}
    return doc["experiments"][name], variants


def _instant(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _other_process(flags, changes):
    """``update_ab_test("checkout", changes)`` by a manager in another process."""
    script = textwrap.dedent(
        f"""
        import json, sys
        from cfgcore.dynamic_config import DynamicConfigurationManager
        m = DynamicConfigurationManager({str(flags)!r}, record_usage=False)
        ok = m.update_ab_test("checkout", json.loads(sys.argv[1]))
        m.close()
        sys.exit(0 if ok else str(m.last_error))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script, json.dumps(changes)],
        env=dict(os.environ), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def test_the_api_derives_the_window_from_the_stored_start(tmp_path):
    """A manager that has not read the other process's change (a new start date, a
    third variant) derives the end date from the stored start."""
    flags = tmp_path / "flags.json"
    m = DynamicConfigurationManager(str(flags), record_usage=False)
    try:
        assert m.create_ab_test(ab(), start=False), m.last_error
        served_start = m.get_ab_test("checkout").start_date
        _other_process(
            flags,
            {
                "start_date": MOVED.isoformat(),
                "end_date": (MOVED + timedelta(days=30)).isoformat(),
                "traffic_split": {"control": 40, "green": 40, "blue": 20},
                "configurations": {"blue": {"v": "navy"}},
            },
        )
        assert m.get_ab_test("checkout").start_date == served_start  # not reloaded
        seen = []

        def window(stored):
            seen.append(stored)
            return {"end_date": stored.start_date + timedelta(days=DAYS)}

        assert m.update_ab_test("checkout", {}, derive=window), m.last_error
        record, variants = _stored(flags)
        assert _instant(record["start_date"]) == MOVED
        assert _instant(record["end_date"]) == MOVED + timedelta(days=DAYS)
        assert variants["blue"] == {"v": "navy"}
        assert seen and seen[-1].traffic_split == {"control": 40, "green": 40, "blue": 20}
        assert m.last_changed == ("end_date",)
    finally:
        m.close()


def test_a_derived_field_is_checked_as_a_given_one(tmp_path):
    flags = tmp_path / "flags.json"
    m = DynamicConfigurationManager(str(flags), record_usage=False)
    try:
        assert m.create_ab_test(ab(), start=False), m.last_error
        before = flags.read_bytes()
        assert not m.update_ab_test("checkout", {}, derive=lambda t: {"test_name": "x"})
        assert "'test_name': not a field update changes" in str(m.last_error)
        assert not m.update_ab_test("checkout", {}, derive=lambda t: None)
        assert "derive" in str(m.last_error)
        assert not m.update_ab_test("checkout", {}, derive=lambda t: {"success_metrics": None})
        assert "null is no value here" in str(m.last_error)
        assert flags.read_bytes() == before
    finally:
        m.close()


def _fleet_put_back(redis_server, stores, tmp_path, impl, change, split=None):
    """Host B serves TEST stopped by its guardrail and ``checkout`` not started;
    another tool puts back the document from before the stop with ``checkout``
    changed by ``change(record, flag)`` (allowed: it has served nobody), which B
    refuses, so B serves its own ``checkout``. B, its store URL and state directory,
    and a reader of the store."""
    base = redis_server.url + "?namespace=ab&poll=0.1"
    url_b, state_b = _host(base, tmp_path, "b")
    reader = stores(redis_server.url + "?namespace=ab&cache=off")
    b = _manager(url_b, state_b, impl)
    try:
        assert b.create_ab_test(_guarded_test())
        assert b.create_ab_test(ab(split=split), start=False)
        before = reader.read().snapshot
        _simulate(b, TEST, HARMFUL, metric="playback_errors")
        assert b.check_guardrails(TEST)
        record, flag = change(dict(before.experiments["checkout"]), before.flags["checkout"])
        put_back = msgspec.structs.replace(
            before,
            experiments={**before.experiments, "checkout": record},
            flags={**before.flags, "checkout": flag},
        )
        rejected = b._live.documents["rejected"]
        _publish(stores, url_b, put_back)
        wait_for(lambda: b._live.documents["rejected"] > rejected)
    except BaseException:
        b.close()
        raise
    return b, ("--store", url_b, "--state-dir", str(state_b)), reader


def _update_on_b(capsys, where, *options):
    """``cfgcore experiment update checkout OPTIONS`` in B's process (the command
    joins B's flag set, which serves B's own ``checkout``)."""
    code, _out, err = run_cli(capsys, "experiment", "update", "checkout", *options, *where)
    assert code == 0, err
    return err


def test_the_command_line_counts_days_from_the_stored_start(
    redis_server, stores, tmp_path, impl, capsys
):
    def moved(record, flag):
        end = MOVED + timedelta(days=30)
        record.update(start_date=MOVED.isoformat(), end_date=end.isoformat())
        return record, msgspec.structs.replace(flag, schedule=Schedule(start=MOVED, end=end))

    b, where, reader = _fleet_put_back(redis_server, stores, tmp_path, impl, moved)
    try:
        assert b.get_ab_test("checkout").start_date != MOVED
        err = _update_on_b(capsys, where, "--days", str(DAYS))
        record = reader.read().snapshot.experiments["checkout"]
        assert _instant(record["start_date"]) == MOVED
        assert _instant(record["end_date"]) == MOVED + timedelta(days=DAYS)
        assert ": end_date (" in err
    finally:
        b.close()


def test_the_command_line_keeps_a_stored_variants_configuration(
    redis_server, stores, tmp_path, impl, capsys
):
    """The stored test has a variant B does not serve: ``--split`` naming it keeps
    its stored configuration (not the default)."""

    def added(record, flag):
        record["traffic_split"] = {"control": 40.0, "green": 40.0, "blue": 20.0}
        variants = {**flag.variants, "blue": {"v": "navy"}}
        return record, msgspec.structs.replace(flag, variants=variants)

    b, where, reader = _fleet_put_back(redis_server, stores, tmp_path, impl, added)
    try:
        assert "blue" not in b.get_ab_test("checkout").configurations
        _update_on_b(capsys, where, "--split", "control=30,green=40,blue=30")
        written = reader.read().snapshot
        split = {"control": 30.0, "green": 40.0, "blue": 30.0}
        assert written.experiments["checkout"]["traffic_split"] == split
        assert written.flags["checkout"].variants["blue"] == {"v": "navy"}
    finally:
        b.close()


def test_the_command_line_gives_a_variant_new_to_the_stored_test_its_default(
    redis_server, stores, tmp_path, impl, capsys
):
    """B serves a variant the stored test no longer has: ``--split`` adding it back
    gives it the default configuration, as for any new variant."""

    def removed(record, flag):
        record["traffic_split"] = {"control": 50.0, "green": 50.0}
        variants = {k: v for k, v in flag.variants.items() if k != "blue"}
        return record, msgspec.structs.replace(flag, variants=variants)

    three = {"control": 40, "green": 40, "blue": 20}
    b, where, reader = _fleet_put_back(redis_server, stores, tmp_path, impl, removed, three)
    try:
        assert b.get_ab_test("checkout").configurations["blue"] == {"v": "blue"}
        _update_on_b(capsys, where, "--split", "control=40,green=40,blue=20")
        written = reader.read().snapshot
        split = {"control": 40.0, "green": 40.0, "blue": 20.0}
        assert written.experiments["checkout"]["traffic_split"] == split
        assert written.flags["checkout"].variants["blue"] == {"variant": "blue"}
    finally:
        b.close()
