"""Experiment statistics at the edges a data scientist relies on, eighth review: the
sample-ratio check on splits and counts of any size (weights near 1e308, counts past
2**63, a weight that is infinite or negative), the tests of means on values whose
squares overflow, counts that are no whole number, and the interval of a difference of
two rates at 0 % and 100 % (Newcombe's, against statsmodels)."""

from __future__ import annotations

import math
import warnings

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from cfgcore.experiments import stats as S
from cfgcore.experiments.analysis import analyze
from cfgcore.experiments.exposures import Exposure
from cfgcore.experiments.metrics import MetricsStore
from tests.conftest import IN_CI
from tests.fuzz import examples

scipy_stats = pytest.importorskip("scipy.stats")
try:
    from statsmodels.stats import proportion
except ImportError:  # the dev extra installs it; CI must not skip the comparison
    if IN_CI:
        raise
    proportion = None


# ------------------------------------------------------------------ sample-ratio check


@settings(max_examples=examples(80), deadline=None)
@given(
    counts=st.lists(st.integers(0, 10**6), min_size=2, max_size=6),
    weights=st.lists(st.integers(1, 100), min_size=6, max_size=6),
    exponent=st.integers(-300, 306),
)
def test_srm_depends_on_the_split_shares_not_on_the_weights_scale(counts, weights, exponent):
    """A split is shares: weights of 1e306 (or 1e-300) each give the p-value of the same
    shares in percent. Their sum overflowed to infinity (expected counts NaN, p NaN,
    and ``NaN < threshold`` reported no mismatch)."""
    names = [f"v{i}" for i in range(len(counts))]
    observed = dict(zip(names, counts, strict=True))
    split = {n: float(w) for n, w in zip(names, weights, strict=False)}
    scaled = {n: w * 10.0**exponent for n, w in split.items()}
    assume(all(w > 0 and math.isfinite(w) for w in scaled.values()))
    want = S.sample_ratio_mismatch(observed, split)
    got = S.sample_ratio_mismatch(observed, scaled)
    assert 0.0 <= got.p_value <= 1.0
    assert got.p_value == pytest.approx(want.p_value, rel=1e-9, abs=1e-300)
    assert got.mismatch == want.mismatch
    if sum(counts):
        ref = scipy_stats.chisquare(counts, [sum(counts) * w / sum(weights[: len(counts)])
                                             for w in weights[: len(counts)]])  # fmt: skip
        assert got.chi2 == pytest.approx(float(ref.statistic), rel=1e-9, abs=1e-9)


@pytest.mark.parametrize(
    "split", [{"a": math.inf, "b": 50.0}, {"a": 50.0, "b": -math.inf}, {"a": -1.0, "b": 101.0}]
)
def test_srm_refuses_a_split_no_flag_can_serve(split):
    """An infinite weight gave p NaN and ``mismatch=False`` (a broken test reported
    as fine); a negative one was left out as if it were 0."""
    with pytest.raises(ValueError, match="weight"):
        S.sample_ratio_mismatch({"a": 10, "b": 10}, split)


@pytest.mark.parametrize("count", [-1, 2.5, math.nan, math.inf])
def test_srm_refuses_counts_that_are_no_number_of_users(count):
    with pytest.raises(ValueError, match="count"):
        S.sample_ratio_mismatch({"a": count, "b": 10}, {"a": 50, "b": 50})


@settings(max_examples=examples(40), deadline=None)
@given(st.integers(63, 400), st.integers(0, 10**6))
def test_srm_takes_counts_past_int64(bits, extra):
    """Counts past 2**63 (a NumPy object array) raised TypeError from SciPy."""
    big = 2**bits
    r = S.sample_ratio_mismatch({"a": big, "b": big + extra}, {"a": 50, "b": 50})
    assert 0.0 <= r.p_value <= 1.0 and not r.mismatch  # shares equal to 1e-13


# ------------------------------------------------------------------- tests of means


def _scaled(xs, factor):
    return [x * factor for x in xs]


values = st.lists(st.floats(-1e3, 1e3, allow_nan=False).filter(lambda x: abs(x) > 1e-3 or x == 0),
                  min_size=2, max_size=20)  # fmt: skip


@settings(max_examples=examples(120), deadline=None)
@given(a=values, b=values, exponent=st.integers(0, 308),
       alternative=st.sampled_from(["two-sided", "larger", "smaller"]))  # fmt: skip
def test_welch_is_scale_free_or_refuses(a, b, exponent, alternative):
    """Welch's t and p do not depend on the unit. Where the values' squares overflow a
    double (past about 1e154) the test cannot be computed and says so (ValueError); it
    returned t = 0 with p NaN for a difference of 3e299, or NaN everywhere."""
    assume(S.Summary.of(a).variance + S.Summary.of(b).variance > 1e-6)
    want = S.welch_ttest(a, b, alternative)
    factor = 10.0**exponent
    try:
        got = S.welch_ttest(_scaled(a, factor), _scaled(b, factor), alternative)
    except ValueError as exc:
        assert "too large" in str(exc)
        assert exponent > 140  # values up to 1e143 always work
        return
    assert got.p_value == pytest.approx(want.p_value, rel=1e-6, abs=1e-12)
    assert got.statistic == pytest.approx(want.statistic, rel=1e-6, abs=1e-9)
    assert all(math.isfinite(x) for x in got.ci)


@settings(max_examples=examples(80), deadline=None)
@given(a=values, b=values, exponent=st.integers(0, 308),
       alternative=st.sampled_from(["two-sided", "larger", "smaller"]))  # fmt: skip
def test_msprt_means_is_scale_free_or_refuses(a, b, exponent, alternative):
    """The guardrails' test of means: p NaN for values past 1e154 (and NaN <= level is
    False: a harmful variant never rolled back); now a ValueError."""
    assume(S.Summary.of(a).variance > 1e-6 and S.Summary.of(b).variance > 1e-6)
    want = S.msprt_means(a, b, alternative)
    factor = 10.0**exponent
    try:
        got = S.msprt_means(_scaled(a, factor), _scaled(b, factor), alternative)
    except ValueError as exc:
        assert "too large" in str(exc) and exponent > 140
        return
    assert got.p_value == pytest.approx(want.p_value, rel=1e-6, abs=1e-12)


@pytest.mark.parametrize(
    "data", [[1e308, -1e308], [1e300, -1e300, 1e300], [1.0, math.nan, 2.0], [1.0, math.inf]]
)
def test_mean_interval_of_values_past_the_doubles_refuses(data):
    """It raised 'math domain error', or gave a NaN interval."""
    with pytest.raises(ValueError, match="too large|not finite"):
        S.mean_ci(data)
    with pytest.raises(ValueError, match="too large|not finite"):
        S.welch_ttest(data, [1.0, 2.0])


def test_constant_groups_a_whole_double_range_apart_refuse():
    """Means 1e308 and -1e308: the difference overflows (it was -inf, certain)."""
    with pytest.raises(ValueError, match="too large"):
        S.welch_ttest([1e308] * 3, [-1e308] * 3)


# -------------------------------------------------------------- counts of proportions


@pytest.mark.parametrize(
    "args",
    [(1, math.inf, 1, 3), (1, 3, 1, math.nan), (1, 2.5, 1, 3), (math.nan, 3, 1, 3)],
)
def test_proportions_refuse_counts_that_are_no_number_of_users(args):
    """An infinite n gave z = inf and p = 0 whatever the alternative; NaN raised an
    error about converting NaN."""
    for fn in (S.two_proportion_ztest, S.msprt_proportions):
        with pytest.raises(ValueError, match="whole number"):
            fn(*args)


# --------------------------------------------------- the interval of a difference of rates


counts = st.integers(1, 400).flatmap(
    lambda n: st.tuples(st.one_of(st.just(0), st.just(n), st.integers(0, n)), st.just(n))
)


@pytest.mark.skipif(proportion is None, reason="statsmodels is not installed")
@settings(max_examples=examples(150), deadline=None)
@given(control=counts, treatment=counts, confidence=st.sampled_from([0.8, 0.9, 0.95, 0.99]))
def test_difference_interval_is_newcombes_as_statsmodels_computes_it(
    control, treatment, confidence
):
    """Newcombe's hybrid score interval (statsmodels' ``method="newcomb"``). The Wald
    interval it replaces is a point when both rates are 0 or 1: 1 of 1 against 0 of 1
    read ``+1 [+1, +1]`` beside p = 0.16."""
    (xc, nc), (xt, nt) = control, treatment
    r = S.two_proportion_ztest(xc, nc, xt, nt, confidence=confidence)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lo, hi = proportion.confint_proportions_2indep(
            xt, nt, xc, nc, method="newcomb", compare="diff", alpha=1 - confidence
        )
    assert r.ci[0] == pytest.approx(float(lo), rel=1e-9, abs=1e-12)
    assert r.ci[1] == pytest.approx(float(hi), rel=1e-9, abs=1e-12)
    assert -1.0 <= r.ci[0] <= r.difference <= r.ci[1] <= 1.0


@pytest.mark.parametrize("xc, nc, xt, nt", [(0, 1, 1, 1), (0, 5, 5, 5), (3, 3, 3, 3), (0, 9, 0, 9)])
def test_difference_interval_at_zero_and_all_conversions_is_not_a_point(xc, nc, xt, nt):
    r = S.two_proportion_ztest(xc, nc, xt, nt)
    assert r.ci[0] < r.ci[1]
    assert r.ci[0] <= r.difference <= r.ci[1]


def test_the_report_shows_the_newcombe_interval():
    store = MetricsStore(None)
    store.write([Exposure("t", "control", "c0", 0.0), Exposure("t", "b", "b0", 0.0)])
    store.record("t", "control", "m", 0.0, "c0", 0.0, write=False)
    store.record("t", "b", "m", 1.0, "b0", 0.0, write=False)
    meta = {"traffic_split": {"control": 50, "b": 50}, "control": "control",
            "metric_types": {"m": "binary"}}  # fmt: skip
    row = analyze("t", meta, store).for_metric("m")[1]
    assert row.difference == 1.0 and row.diff_high == 1.0
    assert row.diff_low < 0 < row.p_value - 0.05  # not significant, and the interval says so


# ------------------------------------------------------------------ confidence levels


@settings(max_examples=examples(60), deadline=None)
@given(
    st.one_of(
        st.floats().filter(lambda c: not 0 < c < 1),
        st.sampled_from([True, False, 0, 1, 2, "0.95", None]),
    )
)
def test_every_interval_refuses_a_level_outside_zero_and_one(confidence):
    """analyze() checked its level; the functions it calls did not: 1 gave infinite
    bounds or a RuntimeWarning from SciPy, 1.5 and NaN bounds of NaN."""
    calls = [
        lambda: S.proportion_ci(3, 10, confidence),
        lambda: S.mean_ci([1.0, 2.0, 4.0], confidence),
        lambda: S.two_proportion_ztest(3, 10, 5, 10, confidence=confidence),
        lambda: S.welch_ttest([1.0, 2.0, 4.0], [2.0, 3.0], confidence=confidence),
    ]
    for call in calls:
        with pytest.raises(ValueError, match="confidence must be within"):
            call()


@pytest.mark.parametrize(
    "observed, split, p",
    [
        ({"a": 1}, {"a": 2.0, "b": 5e-324}, 1.0),
        ({"a": 1, "b": 0}, {"a": 1.0, "b": 1.0, "c": 5e-324}, 0.31731050786291115),
        ({"a": 5, "b": 5, "c": 1}, {"a": 1.0, "b": 1.0, "c": 5e-324}, 0.0),
    ],
)
def test_a_share_whose_expected_count_underflows_serves_nobody(observed, split, p):
    """5e-324 beside 2: the expected count is 0, and 0 / 0 raised a RuntimeWarning from
    the chi-square (NaN without -W error); users there are a certain mismatch."""
    r = S.sample_ratio_mismatch(observed, split)
    assert r.p_value == pytest.approx(p, rel=1e-9) and not math.isnan(r.chi2)
    assert r.mismatch is (p == 0.0)
