"""A time without a UTC offset means one instant, whichever surface it comes through.

The rule (cfgcore.experiments.abtest's docstring): a naive time given to cfgcore (a
naive datetime or ISO string in the Python API, a date or time on the command line) is
the local time of the machine it is given on, resolved there and stored as a UTC
instant with its offset; a naive time written by hand into a stored document (flags
file, audit log) is UTC for every reader, whatever its time zone.

Before: the command line read naive text as UTC while the Python API read the same
value as local time; reading a test back from its document (``cfgcore experiment
start``) took a naive stored date as the reader's local time while the compiled
schedule took it as UTC; the audit history read a naive ``ts`` as local time; and a
date with an offset but no time (``2026-03-20-05:00``) lost its offset.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.cli import main
from cfgcore.dynamic_config import ABTestConfiguration, DynamicConfigurationManager
from cfgcore.experiments.history import FlagHistory
from tests.fuzz import examples
from tests.zones import local_zone

UTC = timezone.utc
ZONES = ["America/New_York", "Asia/Kolkata", "Asia/Tokyo", "Europe/Paris"]
SPLIT = {"control": 50.0, "b": 50.0}
CONFIGS = {"control": {"x": 1}, "b": {"x": 2}}


def cli(tz: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``cfgcore ARGS`` in a process whose local time zone is ``tz``."""
    env = {**os.environ, "TZ": tz}
    return subprocess.run(
        [sys.executable, "-m", "cfgcore", *args],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def stored(state_dir) -> dict:
    return json.loads((state_dir / "flags.json").read_text())


def test_the_cli_reads_naive_text_as_local_time_like_the_api(tmp_path):
    cli_dir, api_dir = tmp_path / "cli", tmp_path / "api"
    cli_dir.mkdir()
    api_dir.mkdir()
    run = cli("America/New_York", "experiment", "create", "t", "--split", "control=50,b=50",
              "--start-date", "2027-03-01T09:00", "--end-date", "2027-03-20",
              "--state-dir", str(cli_dir))  # fmt: skip
    assert run.returncode == 0, run.stderr
    # the operator sees what was stored: the instant with its offset, and in UTC
    assert "2027-03-01T09:00:00-05:00 (2027-03-01T14:00:00Z)" in run.stderr
    assert "2027-03-20T00:00:00-04:00 (2027-03-20T04:00:00Z)" in run.stderr  # after DST
    # started from another zone: the same instant, shown in that zone's local time
    run = cli("Asia/Tokyo", "experiment", "start", "t", "--state-dir", str(cli_dir))
    assert run.returncode == 0, run.stderr
    assert "window 2027-03-01T23:00:00+09:00 (2027-03-01T14:00:00Z)" in run.stderr

    with local_zone("America/New_York"):
        manager = DynamicConfigurationManager(state_dir=api_dir, record_usage=False)
        try:
            test = ABTestConfiguration("t", "", datetime(2027, 3, 1, 9), datetime(2027, 3, 20),
                                       SPLIT, CONFIGS)  # fmt: skip
            assert manager.create_ab_test(test), manager.last_error
        finally:
            manager.close()
    from_cli = stored(cli_dir)
    from_api = stored(api_dir)
    for key in ("start_date", "end_date"):
        assert from_cli["experiments"]["t"][key] == from_api["experiments"]["t"][key]
    assert from_cli["experiments"]["t"]["start_date"] == "2027-03-01T14:00:00+00:00"
    assert from_cli["flags"]["t"]["schedule"] == from_api["flags"]["t"]["schedule"]


def test_an_offset_on_the_command_line_is_kept_and_a_date_keeps_its_offset(tmp_path):
    run = cli("Asia/Tokyo", "experiment", "create", "t", "--split", "control=50,b=50",
              "--start-date", "2027-03-01T09:00Z", "--end-date", "2027-03-20+05:00",
              "--state-dir", str(tmp_path))  # fmt: skip
    assert run.returncode == 0, run.stderr
    meta = stored(tmp_path)["experiments"]["t"]
    assert meta["start_date"] == "2027-03-01T09:00:00+00:00"
    # "2027-03-20+05:00" is that day's midnight at +05:00, not 05:00 without an offset
    assert meta["end_date"] == "2027-03-19T19:00:00+00:00"


def test_a_date_out_of_range_in_local_time_is_a_clear_error(tmp_path):
    run = cli("Asia/Tokyo", "experiment", "create", "t", "--split", "control=50,b=50",
              "--start-date", "0001-01-01", "--state-dir", str(tmp_path))  # fmt: skip
    assert run.returncode == 2  # an option value: a usage error
    assert "--start-date '0001-01-01': out of range in local time" in run.stderr
    assert "Traceback" not in run.stderr


def test_flags_stale_as_of_is_local_time(tmp_path):
    run = cli("Asia/Kolkata", "flags", "stale", "--state-dir", str(tmp_path),
              "--as-of", "2027-04-01T05:30")  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "as of 2027-04-01T00:00:00+00:00" in run.stdout
    run = cli("Asia/Kolkata", "flags", "stale", "--state-dir", str(tmp_path),
              "--as-of", "2027-04-01T05:30Z")  # fmt: skip
    assert "as of 2027-04-01T05:30:00+00:00" in run.stdout


NAIVE = st.datetimes(min_value=datetime(1971, 1, 2), max_value=datetime(2100, 12, 30))


@pytest.mark.parametrize("zone", ZONES)
def test_the_same_naive_value_is_the_same_instant_on_every_surface(zone):
    from cfgcore.cli.experiment import parse_time

    @settings(max_examples=examples(100), deadline=None)
    @given(NAIVE)
    def check(naive):
        # ISO text has no fold: the naive value it names is the fold=0 one (a value with
        # fold=1 in a gap or a repeated hour is another instant: see the test below).
        naive = naive.replace(fold=0)
        end = naive + timedelta(days=1)
        as_value = ABTestConfiguration("t", "", naive, end, SPLIT, CONFIGS).to_metadata()
        as_text = ABTestConfiguration(
            "t", "", naive.isoformat(), end.isoformat(), SPLIT, CONFIGS
        ).to_metadata()
        on_cli = parse_time(naive.isoformat(), "--start-date", datetime.now(UTC))
        assert as_value["start_date"] == as_text["start_date"]
        assert datetime.fromisoformat(as_value["start_date"]) == on_cli
        assert on_cli.utcoffset() is not None

    with local_zone(zone):
        check()


def test_a_naive_value_keeps_its_fold_in_the_repeated_hour():
    # datetime.now() sets fold=1 during the second occurrence of a repeated hour; the API
    # reads such a value as that second instant, an hour after the first.
    with local_zone("Europe/Paris"):
        first = datetime(2027, 10, 31, 2, 30)
        second = first.replace(fold=1)
        start = [
            datetime.fromisoformat(
                ABTestConfiguration(
                    "t", "", d, d + timedelta(days=1), SPLIT, CONFIGS
                ).to_metadata()["start_date"]
            )
            for d in (first, second)
        ]
    assert start[0] == datetime(2027, 10, 31, 0, 30, tzinfo=UTC)  # 02:30 CEST
    assert start[1] - start[0] == timedelta(hours=1)  # 02:30 CET


def _hand_written_document(state_dir) -> None:
    """A test created through the API, then its dates rewritten by hand without offsets."""
    with local_zone("UTC"):
        manager = DynamicConfigurationManager(state_dir=state_dir, record_usage=False)
        try:
            test = ABTestConfiguration(
                "t", "", datetime(2027, 3, 1, 9, tzinfo=UTC), datetime(2027, 3, 20, tzinfo=UTC),
                SPLIT, CONFIGS,
            )  # fmt: skip
            assert manager.create_ab_test(test, start=False), manager.last_error
        finally:
            manager.close()
    doc = stored(state_dir)
    doc["experiments"]["t"]["start_date"] = "2027-03-01T09:00:00"
    doc["experiments"]["t"]["end_date"] = "2027-03-20T00:00:00"
    doc["flags"]["t"]["schedule"] = {"start": "2027-03-01T09:00:00", "end": "2027-03-20T00:00:00"}
    (state_dir / "flags.json").write_text(json.dumps(doc))


def test_a_naive_date_in_a_document_is_utc_for_every_reader(tmp_path):
    _hand_written_document(tmp_path)
    with local_zone("Asia/Tokyo"):
        manager = DynamicConfigurationManager(state_dir=tmp_path, record_usage=False)
        try:
            test = manager.get_ab_test("t")
            assert test is not None
            assert test.start_date == datetime(2027, 3, 1, 9, tzinfo=UTC)
            assert test.end_date == datetime(2027, 3, 20, tzinfo=UTC)
            # what `cfgcore experiment start` does: the window does not move
            assert manager.create_ab_test(test), manager.last_error
        finally:
            manager.close()
    doc = stored(tmp_path)
    assert doc["experiments"]["t"]["start_date"] == "2027-03-01T09:00:00+00:00"
    assert doc["flags"]["t"]["schedule"] == {
        "start": "2027-03-01T09:00:00Z",
        "end": "2027-03-20T00:00:00Z",
    }


def test_a_naive_audit_timestamp_is_utc(tmp_path):
    log = tmp_path / "flags.audit.jsonl"
    entry = {"ts": "2027-01-10T12:00:00", "kind": "change", "path": "flags.x",
             "old": None, "new": {"default": "on"}}  # fmt: skip
    log.write_text(json.dumps(entry) + "\n")
    with local_zone("Asia/Tokyo"):
        history = FlagHistory.from_logs([log])
    change = history.last("x")
    assert change is not None
    assert change.ts == datetime(2027, 1, 10, 12, tzinfo=UTC).timestamp()


def test_as_of_text_errors_still_name_the_option(tmp_path, capsys):
    assert main(["flags", "stale", "--state-dir", str(tmp_path), "--as-of", "soon"]) == 2
    assert "--as-of 'soon': expected an ISO date or date-time" in capsys.readouterr().err
