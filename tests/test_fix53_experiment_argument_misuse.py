"""A wrong command line of ``cfgcore experiment`` is a usage error: exit status 2.

``experiment update --metric ""`` exited 1 (an error's status) while ``--clear-metrics
--metric x`` and ``--split control`` exited 2, and so did every option value argparse
checks itself (``--confidence abc``): a script could not tell a typo on its own command
line from a test the store refused. Every option value the command line alone judges
(malformed, empty, out of range, or options excluding each other) is now refused with
exit status 2 and one ``cfgcore: error:`` line naming the option, nothing written;
what the stored test decides (an unknown test, a refused change) stays exit status 1.
Real CLI, real flag files."""

from __future__ import annotations

import pytest

from tests.conftest import run_cli
from tests.test_experiment_cli_update import (
    _cli,
    _error_line,
    _full,
    _quiet_state,  # noqa: F401  (autouse: no stray state from the environment)
)

#: (options, the option the error line must name), each misused on create and update.
FIELD_MISUSE = [
    (("--metric", ""), "--metric"),
    (("--metric", "   "), "--metric"),
    (("--guardrail", ""), "--guardrail"),
    (("--guardrail", "errors=sideways"), "--guardrail"),
    (("--guardrail", "errors"), "--guardrail"),
    (("--metric-type", ""), "--metric-type"),
    (("--metric-type", "ctr=ratio"), "--metric-type"),
    (("--layer", " "), "--layer"),
    (("--layer", "l", "--layer-percentage", "0"), "--layer-percentage"),
    (("--layer", "l", "--layer-percentage", "abc"), "--layer-percentage"),
    (("--layer", "l", "--layer-percentage", "150"), "--layer-percentage"),
    (("--days", "0"), "--days"),
    (("--days", "soon"), "--days"),
    (("--days", "nan"), "--days"),
    (("--start-date", "yesterday"), "--start-date"),
    (("--end-date", "2027-02-30"), "--end-date"),
    (("--start-date", "9999-12-30T00:00:00Z", "--days", "5"), "--days"),
    (("--targeting", "{not json"), "--targeting"),
    (("--targeting", "[1, 2]"), "--targeting"),
    (("--targeting", '{"attr": "region", "nope": 1}'), "--targeting"),
    (("--config", "control"), "--config"),
    (("--config", "control={bad"), "--config"),
    (("--config", "control=NaN"), "--config"),
    (("--split", "control=x,green=50"), "--split"),
    (("--split", "control"), "--split"),
]


def _ids(cases):
    return [" ".join(a) or "-" for a, *_ in cases]


@pytest.mark.parametrize(("argv", "option"), FIELD_MISUSE, ids=_ids(FIELD_MISUSE))
def test_update_refuses_a_misused_option_with_exit_status_2(tmp_path, capsys, argv, option):
    flags = tmp_path / "flags.json"
    before = _full(capsys, flags, "--start")
    code, _, err = _cli(capsys, flags, "update", "checkout", *argv)
    line = _error_line(err)
    assert code == 2, err
    assert option in line and "internal error" not in line
    assert flags.read_bytes() == before


@pytest.mark.parametrize(("argv", "option"), FIELD_MISUSE, ids=_ids(FIELD_MISUSE))
def test_create_refuses_a_misused_option_with_exit_status_2(tmp_path, capsys, argv, option):
    flags = tmp_path / "flags.json"
    split = () if argv[0] == "--split" else ("--split", "control=50,green=50")
    code, _, err = _cli(capsys, flags, "create", "t", *split, *argv)
    line = _error_line(err)
    assert code == 2, err
    assert option in line
    assert not flags.exists()


def test_the_empty_metric_names_the_option_that_clears_them(tmp_path, capsys):
    flags = tmp_path / "flags.json"
    before = _full(capsys, flags, "--start")
    code, _, err = _cli(capsys, flags, "update", "checkout", "--metric", "")
    assert code == 2
    assert _error_line(err) == (
        "cfgcore: error: --metric '': expected a metric name, got an empty one "
        "(--clear-metrics removes them all)"
    )
    assert flags.read_bytes() == before


@pytest.mark.parametrize(
    ("argv", "option"),
    [
        (("--confidence", "1.5"), "--confidence"),
        (("--confidence", "0"), "--confidence"),
        (("--mde", "0"), "--mde"),
        (("--max-users", "0"), "--max-users"),
        (("--relative",), "--relative"),
    ],
)
def test_report_refuses_a_misused_option_with_exit_status_2(tmp_path, capsys, argv, option):
    flags = tmp_path / "flags.json"
    _full(capsys, flags, "--start")
    code, _, err = _cli(capsys, flags, "report", "checkout", *argv)
    assert code == 2, err
    assert option in _error_line(err)


def test_what_the_store_decides_stays_exit_status_1(tmp_path, capsys):
    """Not the command line's fault: an unknown test, a change the test refuses."""
    flags = tmp_path / "flags.json"
    before = _full(capsys, flags, "--start")
    code, _, err = _cli(capsys, flags, "update", "nope", "--description", "x")
    assert code == 1 and "nope" in _error_line(err)
    # Moving users of a running test: refused by the test, not by the command line.
    code, _, err = _cli(capsys, flags, "update", "checkout", "--split", "control=90,green=10")
    assert code == 1 and "cfgcore: error:" in err
    assert flags.read_bytes() == before
    for sub in ("start", "stop", "delete"):
        code, _, err = _cli(capsys, flags, sub, "nope")
        assert code == 1, (sub, err)
    code, _, err = _cli(capsys, flags, "report", "nope")
    assert code == 1


def test_flags_stale_as_of_shares_the_rule(tmp_path, capsys):
    """``--as-of`` is read by the same parser as ``--start-date``, and ``--days`` out
    of range is the same class of mistake as ``experiment create --days 0``."""
    where = ("--state-dir", str(tmp_path / "state"))
    code, _, err = run_cli(capsys, "flags", "stale", *where, "--as-of", "soon")
    assert code == 2 and "--as-of 'soon'" in err
    code, _, err = run_cli(capsys, "flags", "stale", *where, "--days", "0")
    assert code == 2 and "--days" in err
