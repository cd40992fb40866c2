"""cfgcore.stats against published worked examples, plus properties with hypothesis."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.experiments import stats
from tests.fuzz import examples

# Welch's t-test, Wikipedia "Welch's t-test", section Examples (the data sets are the
# ones reproduced by the Rosetta Code task and by Kusto's welch_test() documentation,
# which gives p = 0.021 for example 1).
A1 = [27.5, 21.0, 19.0, 23.6, 17.0, 17.9, 16.9, 20.1, 21.9, 22.6, 23.1, 19.6, 19.0, 21.7, 21.4]
A2 = [27.1, 22.0, 20.8, 23.4, 23.4, 23.5, 25.8, 22.0, 24.8, 20.2, 21.9, 22.1, 22.9, 20.5, 24.4]
B1 = [17.2, 20.9, 22.6, 18.1, 21.7, 21.4, 23.5, 24.2, 14.7, 21.8]
B2 = [21.5, 22.8, 21.0, 23.0, 21.6, 23.6, 22.5, 20.7, 23.4, 21.8, 20.7, 21.7, 21.5, 22.5, 23.6,
      21.5, 22.5, 23.5, 21.5, 21.8]  # fmt: skip


def test_welch_wikipedia_example_1():
    # Published: t = -2.46, df = 24.99 (Welch-Satterthwaite), p = 0.021 for A1 - A2.
    r = stats.welch_ttest(A2, A1)  # control A2, treatment A1: difference A1 - A2
    assert r.statistic == pytest.approx(-2.46, abs=0.005)
    assert r.df == pytest.approx(24.99, abs=0.01)
    assert r.p_value == pytest.approx(0.021, abs=0.0005)
    assert r.difference == pytest.approx(sum(A1) / 15 - sum(A2) / 15)
    lo, hi = r.ci
    assert lo < r.difference < hi < 0  # significant at 5 %: the interval excludes 0


def test_welch_wikipedia_example_2_unequal_sizes():
    # Published: t = -1.57, df = 9.9, p = 0.149.
    r = stats.welch_ttest(B2, B1)
    assert r.statistic == pytest.approx(-1.57, abs=0.005)
    assert r.df == pytest.approx(9.9, abs=0.05)
    assert r.p_value == pytest.approx(0.149, abs=0.0005)
    assert r.ci[0] < 0 < r.ci[1]  # not significant: the interval covers 0


def test_welch_from_summaries_equals_raw():
    raw = stats.welch_ttest(A2, A1)
    summ = stats.welch_ttest(stats.Summary.of(A2), stats.Summary.of(A1))
    assert summ.statistic == pytest.approx(raw.statistic, rel=1e-12)
    assert summ.p_value == pytest.approx(raw.p_value, rel=1e-9)


def test_two_proportion_statsmodels_doc_example():
    # statsmodels' proportions_ztest documentation: count=[5, 12], nobs=[83, 99]
    # prints a two-sided p-value of 0.159.
    r = stats.two_proportion_ztest(5, 83, 12, 99)
    assert r.p_value == pytest.approx(0.159, abs=0.0005)
    # pooled z by hand: p = 17/182
    p = 17 / 182
    z = (12 / 99 - 5 / 83) / math.sqrt(p * (1 - p) * (1 / 83 + 1 / 99))
    assert r.statistic == pytest.approx(z, rel=1e-12)


def test_two_proportion_textbook_one_sided():
    # Worked example (x1=140 of 200 vs x2=255 of 340): pooled p = 0.7315,
    # SE = 0.03949, z = -1.266, one-sided p = 0.103.
    r = stats.two_proportion_ztest(255, 340, 140, 200, alternative="smaller")
    assert r.statistic == pytest.approx(-1.266, abs=0.0005)
    assert r.p_value == pytest.approx(0.103, abs=0.0005)


def test_srm_wikipedia_example():
    # Wikipedia "Sample ratio mismatch": 1000 users split 50/50, observed 600/400,
    # chi-square goodness of fit gives p = 2.54e-10.
    r = stats.sample_ratio_mismatch(
        {"control": 600, "treatment": 400}, {"control": 50, "treatment": 50}
    )
    assert r.chi2 == pytest.approx(40.0)
    assert r.p_value == pytest.approx(2.54e-10, rel=0.005)
    assert r.mismatch


def test_srm_kohavi_example():
    # Kohavi, Tang & Xu, "Trustworthy Online Controlled Experiments" (2020), ch. 21:
    # 821,588 vs 815,482 users on a 50/50 design, p-value 1.8e-6.
    r = stats.sample_ratio_mismatch({"c": 821_588, "t": 815_482}, {"c": 50, "t": 50})
    assert r.p_value == pytest.approx(1.8e-6, rel=0.02)
    assert r.mismatch


def test_srm_uneven_split_no_mismatch():
    r = stats.sample_ratio_mismatch({"a": 5010, "b": 2990, "c": 2000}, {"a": 50, "b": 30, "c": 20})
    assert r.expected == {"a": 5000.0, "b": 3000.0, "c": 2000.0}
    assert not r.mismatch and r.p_value > 0.5


def test_sample_size_proportions_formula():
    # 10 % -> 12 %, alpha 0.05 two-sided, power 0.8: the pooled/unpooled normal formula
    # (Fleiss et al., eq. 4.14 without continuity correction) gives 3,841 per group.
    assert stats.sample_size_proportions(0.10, 0.02) == 3841
    assert stats.sample_size_proportions(0.10, 0.2, relative=True) == 3841


def test_sample_size_means_rule_of_thumb():
    # Kohavi's rule of thumb n = 16 sigma^2 / delta^2 (alpha .05, power .8); the exact
    # constant is 2 (1.95996 + 0.84162)^2 = 15.70.
    n = stats.sample_size_means(1.0, 0.1)
    assert n == 1570
    assert abs(n - 16 / 0.01) / (16 / 0.01) < 0.02


def test_proportion_ci_wilson_known_value():
    # Wilson score interval for 8 of 10 at 95 %: [0.4902, 0.9433], the interval R's
    # prop.test(8, 10, correct=FALSE) reports; recomputed from the score formula below.
    ci = stats.proportion_ci(8, 10)
    assert ci.low == pytest.approx(0.4902, abs=5e-4)
    assert ci.high == pytest.approx(0.9433, abs=5e-4)
    z, p, n = 1.959963984540054, 0.8, 10
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    assert ci.low == pytest.approx(centre - half, rel=1e-9)


def test_mean_ci_matches_t_interval():
    ci = stats.mean_ci(A1)
    s = stats.Summary.of(A1)
    half = 2.1447866879169273 * math.sqrt(s.variance / 15)  # t(0.975, 14)
    assert ci.low == pytest.approx(s.mean - half, rel=1e-9)
    assert ci.high == pytest.approx(s.mean + half, rel=1e-9)


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="alternative"):
        stats.two_proportion_ztest(1, 10, 2, 10, alternative="bigger")
    with pytest.raises(ValueError, match="at least two"):
        stats.welch_ttest([1.0], [1.0, 2.0])
    with pytest.raises(ValueError):
        stats.sample_size_proportions(0.5, 0.6)


@settings(max_examples=examples(60), deadline=None)
@given(
    n=st.integers(1, 5000),
    frac=st.floats(0, 1),
    conf=st.sampled_from([0.8, 0.9, 0.95, 0.99]),
)
def test_proportion_ci_contains_estimate(n, frac, conf):
    x = round(n * frac)
    ci = stats.proportion_ci(x, n, conf)
    assert 0.0 <= ci.low <= ci.estimate <= ci.high <= 1.0
    wider = stats.proportion_ci(x, n, min(0.999, conf + 0.009))
    assert wider.low <= ci.low + 1e-12 and wider.high >= ci.high - 1e-12


@settings(max_examples=examples(60), deadline=None)
@given(
    x1=st.integers(0, 500), n1=st.integers(1, 500), x2=st.integers(0, 500), n2=st.integers(1, 500)
)
def test_ztest_antisymmetric(x1, n1, x2, n2):
    x1, x2 = min(x1, n1), min(x2, n2)
    a = stats.two_proportion_ztest(x1, n1, x2, n2)
    b = stats.two_proportion_ztest(x2, n2, x1, n1)
    assert a.difference == pytest.approx(-b.difference)
    if math.isfinite(a.statistic):
        assert a.statistic == pytest.approx(-b.statistic)
        assert a.p_value == pytest.approx(b.p_value)
    assert 0.0 <= a.p_value <= 1.0


@settings(max_examples=examples(40), deadline=None)
@given(
    base=st.floats(0.01, 0.5),
    mde=st.floats(0.005, 0.2),
)
def test_sample_size_shrinks_as_effect_grows(base, mde):
    n_small = stats.sample_size_proportions(base, mde / 2)
    n_big = stats.sample_size_proportions(base, mde)
    assert n_small > n_big >= 1
