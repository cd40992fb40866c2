"""Intervals of a conversion rate at large counts, tenth audit
(:func:`cfgcore.experiments.stats.proportion_ci`, and the z-test's Newcombe interval
built from it).

- ``method="exact"`` (Clopper-Pearson) took SciPy's beta quantiles as they came, and
  SciPy 1.17's inverse incomplete beta is wrong now and then at ordinary counts: 1,000
  conversions of a billion users gave ``[1.9e-6, 1.06e-6]`` for a rate of 1e-6, a lower
  bound above the rate and the upper one (statsmodels' ``proportion_confint(method=
  "beta")`` gives the same). Past about 1e15 users the upper bound fell below the rate;
  past 1e300 the bounds were NaN.
- Counts past 2**64 raised TypeError (SciPy's binomtest and beta quantiles refuse
  such ints) from ``proportion_ci`` and ``two_proportion_ztest``, where every function
  of the module raises ValueError for what it cannot take, and these counts it can.

The bounds are checked against the incomplete beta itself (the forward function,
accurate there: the bound must leave 2.5 % of the binomial mass beyond it), against
values computed with 50-digit arithmetic (the binomial sums), and against the normal
approximation where the counts make it exact to many digits."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.experiments import stats as S
from tests.fuzz import examples

special = pytest.importorskip("scipy.special")

Z975 = 1.959963984540054


def _short(n: int) -> str:
    return f"{n:.3g}"


def _normal_half_width(k: int, n: int) -> float:
    p = k / n
    return Z975 * math.sqrt(p * (1 - p) / n)


def test_exact_interval_of_a_thousand_in_a_billion_holds_the_rate():
    r = S.proportion_ci(1000, 10**9, method="exact")
    assert r.low <= r.estimate == 1e-6 <= r.high
    # P(Bin(1e9, low) >= 1000) = P(Bin(1e9, high) <= 1000) = 0.025, by the binomial sums
    # in 50-digit arithmetic (mpmath)
    assert r.low == pytest.approx(9.389730465895611e-07, rel=1e-12)
    assert r.high == pytest.approx(1.0639521019952884e-06, rel=1e-12)


@pytest.mark.parametrize(
    ("k", "n"),
    [(1000, 10**9), (1000, 10**10), (1000, 10**8), (500, 10**9), (5, 10**12), (10**6, 10**12)],
)
def test_exact_bounds_leave_the_tail_mass_beyond_them(k, n):
    r = S.proportion_ci(k, n, method="exact")
    assert r.low <= r.estimate <= r.high
    assert special.betainc(k, n - k + 1, r.low) == pytest.approx(0.025, rel=1e-9)
    assert special.betaincc(k + 1, n - k, r.high) == pytest.approx(0.025, rel=1e-9)


@pytest.mark.parametrize("n", [10**16, 10**18, 2**63, 2**64 + 5, 10**20, 10**100], ids=_short)
@pytest.mark.parametrize("method", ["wilson", "exact"])
def test_huge_counts_give_the_normal_interval(n, method):
    k = n // 3
    r = S.proportion_ci(k, n, method=method)
    assert r.low <= r.estimate <= r.high
    half = _normal_half_width(k, n)
    assert (r.high - r.low) / 2 == pytest.approx(half, rel=1e-6)
    assert r.estimate - r.low == pytest.approx(half, rel=1e-6)


@pytest.mark.parametrize("n", [2**64, 10**20, 10**300], ids=_short)
@pytest.mark.parametrize("k", [0, 1, 5, 1000])
def test_counts_past_64_bits_are_taken(n, k):
    for method in ("wilson", "exact"):
        for x in (k, n - k):
            r = S.proportion_ci(x, n, method=method)
            assert 0.0 <= r.low <= r.estimate <= r.high <= 1.0, (method, x, r)
            assert not math.isnan(r.low + r.high)
    small = S.proportion_ci(1, n)
    assert small.low < small.estimate < small.high  # (no bound rounded onto the rate)
    t = S.two_proportion_ztest(n // 4, n, n // 4 + 10**9, n)
    assert -1.0 <= t.ci[0] <= t.difference <= t.ci[1] <= 1.0


@settings(max_examples=examples(200), deadline=None)
@given(n=st.integers(1, 10**12), data=st.data(), confidence=st.sampled_from([0.8, 0.95, 0.99]))
def test_wilson_interval_is_scipys(n, data, confidence):
    """The closed form is SciPy's binomtest Wilson interval, to rounding."""
    stats = pytest.importorskip("scipy.stats")
    k = data.draw(st.integers(0, n))
    r = S.proportion_ci(k, n, confidence)
    ci = stats.binomtest(k, n).proportion_ci(confidence, method="wilson")
    assert r.low == pytest.approx(ci.low, rel=1e-11, abs=1e-300)
    assert r.high == pytest.approx(ci.high, rel=1e-11, abs=1e-300)


@pytest.mark.parametrize("n", [10**6, 2**64 + 1, 10**20], ids=_short)
def test_mean_interval_of_a_summary_of_any_size(n):
    """(a Summary past 2**64 observations raised SciPy's TypeError; the bounds were
    NumPy floats where every other interval gives floats)"""
    r = S.mean_ci(S.Summary(n, 1.0, float(n)))
    assert type(r.low) is float and type(r.high) is float
    assert r.low < 1.0 < r.high
    assert (r.high - r.low) / 2 == pytest.approx(Z975 * math.sqrt(1 / n), rel=1e-5)
