"""``flags stale --days`` past the dates a datetime holds is refused naming the option
(audit 8).

``--days inf`` (or ``1e300``) ended the report with ``internal error: OverflowError:
timestamp out of range for platform time_t``, and ``--days 1e7`` with ``year 29405 is
out of range``: the report names the date from which a window is judged (when usage will
have been recorded for it), and no datetime holds it."""

from __future__ import annotations

import time

import pytest

from cfgcore.cli import main
from cfgcore.errors import ConfigError
from cfgcore.experiments.stale import MAX_DAYS, Evidence, find_stale
from cfgcore.snapshot import decode_snapshot

FLAGS = "flags:\n  checkout:\n    default: on\n"


@pytest.mark.parametrize("days", ["inf", "nan", "1e300", "1e7", str(MAX_DAYS + 1)])
def test_a_window_too_long_for_its_dates_is_refused_naming_the_option(tmp_path, capsys, days):
    flags = tmp_path / "flags.yaml"
    flags.write_text(FLAGS)
    args = ["flags", "stale", "--store", str(flags), "--state-dir", str(tmp_path / "state")]
    assert main([*args, "--days", days]) == 2  # a usage error
    err = capsys.readouterr().err
    assert err.startswith(
        "cfgcore: error: --days: must be a positive number of days up to 1,000,000, got "
    )
    assert "internal error" not in err and "out of range" not in err
    assert main([*args, "--days", str(MAX_DAYS)]) == 0  # the longest window still reports
    assert "(window 1e+06 days)" in capsys.readouterr().out


def test_find_stale_refuses_the_same_windows():
    snapshot = decode_snapshot(FLAGS)
    with pytest.raises(ConfigError, match=r"days: must be a positive number up to 1,000,000"):
        find_stale(snapshot, Evidence(), days=1e7, now=time.time())
