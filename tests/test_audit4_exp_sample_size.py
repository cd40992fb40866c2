"""Sample sizes at the edges, fourth audit. ``sample_size_means`` and
``sample_size_proportions`` squared the change sought before dividing by it: a tiny
``--mde`` underflowed to a division by zero (ZeroDivisionError), a tiny change in a
rate or a huge standard deviation overflowed to infinity (OverflowError from
``ceil``), a NaN standard deviation raised a bare conversion error and a tiny ratio
gave 0 users. Now the ratio is squared after the division, a result that is not
finite is a ValueError saying why (the CLI's one-line error), and at least 1 user is
returned: the smallest number with the power asked for."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.experiments import stats
from tests.conftest import run_cli
from tests.fuzz import examples


@pytest.mark.parametrize(
    "call",
    [
        lambda: stats.sample_size_means(1.0, 1e-200),  # ZeroDivisionError before
        lambda: stats.sample_size_means(1e200, 1.0),  # OverflowError before
        lambda: stats.sample_size_means(math.nan, 1.0),  # "cannot convert float NaN"
        lambda: stats.sample_size_means(1.0, math.inf),
        lambda: stats.sample_size_proportions(5e-324, 5e-324),  # OverflowError
    ],
)
def test_an_impossible_sample_size_is_a_value_error(call):
    with pytest.raises(ValueError, match="too small for any sample size|finite"):
        call()


def test_a_sample_size_is_at_least_one_user():
    assert stats.sample_size_means(1e-300, 1e300) == 1  # 0 before


def test_a_tiny_rate_needs_a_huge_but_finite_sample():
    # 1e-300 -> 2e-300: about 1.5e301 users (ZeroDivisionError before)
    n = stats.sample_size_proportions(1e-300, 1e-300)
    assert 1e301 < n < 1e302


@settings(max_examples=examples(200), deadline=None)
@given(
    sd=st.floats(1e-3, 1e3),
    mde=st.floats(1e-3, 1e3) | st.floats(-1e3, -1e-3),
)
def test_sample_size_means_is_the_smallest_with_the_power(sd, mde):
    from scipy.stats import norm

    n = stats.sample_size_means(sd, mde)
    za = norm.ppf(0.975)

    def power(k):  # the normal approximation's power with k users per variant
        return norm.cdf(abs(mde) / (sd * math.sqrt(2 / k)) - za)

    assert power(n) >= 0.8 - 1e-9
    assert n == 1 or power(n - 1) < 0.8 + 1e-9


def test_the_cli_says_an_impossible_mde_in_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    code, _, err = run_cli(capsys, "-q", "experiment", "create", "t", "--split",
                           "control=50,b=50", "--start")  # fmt: skip
    assert code == 0, err
    lines = []
    for i in range(40):
        lines.append({"test": "t", "user": f"u{i}", "variant": "control" if i % 2 else "b"})
        lines.append({"test": "t", "user": f"u{i}", "metric": "seconds", "value": i * 1.5})
    events = tmp_path / "events.jsonl"
    events.write_text("".join(json.dumps(e) + "\n" for e in lines))
    code, _, err = run_cli(capsys, "-q", "experiment", "ingest", str(events))
    assert code == 0, err
    code, out, err = run_cli(capsys, "experiment", "report", "t", "--mde", "1e-200")
    assert code == 1 and out == ""
    assert err.startswith("cfgcore: error: --mde 1e-200 for seconds: the change sought is too")
    assert len(err.splitlines()) == 1
