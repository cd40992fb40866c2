"""Every statistic cfgcore reports, checked against independent references: SciPy on
the raw data (always installed with the test extra), statsmodels where installed, and
the closed forms; on open-ended inputs with hypothesis, and at the edges (n = 0, 1, 2,
zero variance, counts of 1e9, tiny p-values, variants that should get no traffic)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy import integrate
from scipy import stats as sps

from cfgcore.experiments import stats as S
from cfgcore.experiments.analysis import analyze
from cfgcore.experiments.exposures import Exposure
from cfgcore.experiments.metrics import MetricsStore
from tests.conftest import IN_CI
from tests.fuzz import examples

close = pytest.approx

finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False, allow_subnormal=False)
samples = st.lists(finite, min_size=2, max_size=40)
ALTERNATIVES = {"two-sided": "two-sided", "larger": "greater", "smaller": "less"}


def scipy_quietly(fn, *args, **kwargs):
    """A SciPy reference value, without its precision warnings (filterwarnings=error):
    the comparison itself judges precision."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        return fn(*args, **kwargs)


# ----------------------------------------------------------------- Welch and the moments


@settings(max_examples=examples(80), deadline=None)
@given(samples, samples, st.sampled_from(list(ALTERNATIVES)))
def test_welch_matches_scipy_on_the_raw_data(a, b, alternative):
    assume(np.var(a) > 1e-6 or np.var(b) > 1e-6)  # both constant: see the next test
    r = S.welch_ttest(a, b, alternative)
    ref = scipy_quietly(sps.ttest_ind, b, a, equal_var=False,
                        alternative=ALTERNATIVES[alternative])  # fmt: skip
    assert r.statistic == close(float(ref.statistic), rel=1e-6, abs=1e-9)
    assert r.p_value == close(float(ref.pvalue), rel=1e-6, abs=1e-12)
    assert r.df == close(float(ref.df), rel=1e-6)
    ci = scipy_quietly(lambda: sps.ttest_ind(b, a, equal_var=False).confidence_interval(0.95))
    assert r.ci == (close(float(ci.low), rel=1e-6, abs=1e-6), close(float(ci.high), rel=1e-6,
                                                                      abs=1e-6))  # fmt: skip
    assert r.difference == close(np.mean(b) - np.mean(a), rel=1e-9, abs=1e-6)


@pytest.mark.parametrize("a, b", [([5, 5], [5, 5]), ([5, 5, 5], [6, 6]), ([0.0, 0.0], [0.0] * 3)])
def test_welch_of_two_constant_groups_is_undefined(a, b):
    """SciPy: t NaN or infinite, df NaN. cfgcore says why, with no p-value (it said
    p = 0 for [5, 5, 5] against [6, 6])."""
    r = S.welch_ttest(a, b)
    assert r.undefined == S.NO_VARIANCE and math.isnan(r.p_value) and math.isnan(r.df)
    assert r.difference == b[0] - a[0]


@pytest.mark.parametrize("n", [0, 1])
def test_welch_needs_two_values_per_group(n):
    with pytest.raises(ValueError, match="two observations"):
        S.welch_ttest([1.0] * n, [1.0, 2.0])


def test_welch_from_summaries_of_a_billion_values_each():
    # Moments of 1e9 users (what the metrics store keeps): no raw data to hand SciPy.
    a = S.Summary(10**9, 10.0, 4.0 * (10**9 - 1))  # sd 2
    b = S.Summary(10**9, 10.001, 9.0 * (10**9 - 1))  # sd 3
    r = S.welch_ttest(a, b)
    ref = sps.ttest_ind_from_stats(10.001, 3.0, 10**9, 10.0, 2.0, 10**9, equal_var=False)
    assert r.statistic == close(float(ref.statistic), rel=1e-9)
    assert r.p_value == close(float(ref.pvalue), rel=1e-6)
    se = math.sqrt(4 / 1e9 + 9 / 1e9)
    assert r.ci == (close(0.001 - 1.959964 * se, rel=1e-5), close(0.001 + 1.959964 * se, rel=1e-5))


def test_welch_reports_tiny_p_values_not_zero():
    a, b = list(np.linspace(0, 1, 500)), list(np.linspace(0.5, 1.5, 500))
    r = S.welch_ttest(a, b)
    ref = sps.ttest_ind(b, a, equal_var=False)
    assert 0 < r.p_value < 1e-100
    assert r.p_value == close(float(ref.pvalue), rel=1e-6)


@settings(max_examples=examples(100), deadline=None)
@given(st.lists(finite, min_size=0, max_size=60), st.integers(1, 7))
def test_running_moments_match_numpy_however_the_batches_fall(values, batch):
    store = MetricsStore(None)
    events = [("t", "v", "m", x, f"u{i}", 0.0) for i, x in enumerate(values)]
    for i in range(0, len(events), batch):
        store._apply(events[i : i + batch])
    s = store.summary("t", "v", "m")
    assert s.n == len(values)
    if values:
        assert s.mean == close(float(np.mean(values)), rel=1e-9, abs=1e-6)
        assert s.variance == close(float(np.var(values, ddof=1)) if len(values) > 1 else 0.0,
                                   rel=1e-7, abs=1e-3)  # fmt: skip
    assert S.Summary.of(values).n == len(values)


# ----------------------------------------------------------------------- intervals


@settings(max_examples=examples(80), deadline=None)
@given(st.integers(1, 10**9), st.floats(0, 1), st.sampled_from([0.8, 0.9, 0.95, 0.99]))
def test_wilson_interval_matches_its_closed_form(n, frac, conf):
    x = round(frac * n)
    r = S.proportion_ci(x, n, conf)
    z = sps.norm.ppf(0.5 + conf / 2)
    p = x / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    assert r.low == close(max(0.0, centre - half), rel=1e-6, abs=1e-12)
    assert r.high == close(min(1.0, centre + half), rel=1e-6, abs=1e-12)
    assert r.low <= p <= r.high


@pytest.mark.parametrize(
    "x, n", [(0, 1), (1, 1), (0, 2), (1, 2), (5, 83), (1, 10**9), (10**9, 10**9)]
)
def test_exact_interval_is_clopper_pearson(x, n):
    r = S.proportion_ci(x, n, 0.95, method="exact")
    low = 0.0 if x == 0 else sps.beta.ppf(0.025, x, n - x + 1)
    high = 1.0 if x == n else sps.beta.ppf(0.975, x + 1, n - x)
    assert r.low == close(low, rel=1e-6, abs=1e-15) and r.high == close(high, rel=1e-6)


def test_proportion_interval_of_no_users_is_undefined():
    r = S.proportion_ci(0, 0)
    assert math.isnan(r.estimate) and math.isnan(r.low) and math.isnan(r.high)


@settings(max_examples=examples(100), deadline=None)
@given(samples, st.sampled_from([0.9, 0.95, 0.99]))
def test_mean_interval_matches_scipy_t_interval(values, conf):
    assume(np.var(values) > 1e-6)
    r = S.mean_ci(values, conf)
    low, high = scipy_quietly(sps.t.interval, conf, len(values) - 1, loc=np.mean(values),
                              scale=sps.sem(values))  # fmt: skip
    assert r.low == close(low, rel=1e-6, abs=1e-6) and r.high == close(high, rel=1e-6, abs=1e-6)


# ------------------------------------------------------------------- two proportions


@settings(max_examples=examples(80), deadline=None)
@given(
    st.integers(1, 10**9), st.floats(0, 1), st.integers(1, 10**9), st.floats(0, 1),
    st.sampled_from(list(ALTERNATIVES)),
)  # fmt: skip
def test_two_proportion_ztest_matches_its_closed_form(n1, f1, n2, f2, alternative):
    x1, x2 = round(f1 * n1), round(f2 * n2)
    r = S.two_proportion_ztest(x1, n1, x2, n2, alternative)
    p1, p2 = x1 / n1, x2 / n2
    pooled = (x1 + x2) / (n1 + n2)
    se0 = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se0 == 0:
        # nobody or everybody converted in both: z = 0, as for any z of 0
        assert r.statistic == 0 and r.p_value == (1.0 if alternative == "two-sided" else 0.5)
        return
    z = (p2 - p1) / se0
    assert r.statistic == close(z, rel=1e-9, abs=1e-9)
    sf = {"two-sided": 2 * sps.norm.sf(abs(z)), "larger": sps.norm.sf(z),
          "smaller": sps.norm.cdf(z)}[alternative]  # fmt: skip
    assert r.p_value == close(float(sf), rel=1e-6, abs=1e-300)
    # The interval of the difference: Newcombe's, from the two Wilson intervals.
    zc = sps.norm.ppf(0.975)

    def wilson(x, n):
        p, k = x / n, zc * zc / n
        mid, half = (p + k / 2) / (1 + k), zc * math.sqrt(p * (1 - p) / n + k / n / 4) / (1 + k)
        return mid - half, mid + half

    (l1, u1), (l2, u2) = wilson(x1, n1), wilson(x2, n2)
    low = p2 - p1 - math.hypot(p2 - l2, u1 - p1)
    high = p2 - p1 + math.hypot(u2 - p2, p1 - l1)
    assert r.ci == (close(low, abs=1e-9), close(high, abs=1e-9))


@pytest.mark.parametrize(
    "args",
    [(-1, 10, 1, 10), (11, 10, 1, 10), (1, 10, 12, 10), (1, 10, -2, 10), (1.5, 10, 1, 10)],
)
def test_counts_outside_zero_to_n_are_refused_clearly(args):
    # before: 11 of 10 gave a "math domain error", -1 of 10 a z of nonsense
    with pytest.raises(ValueError, match="successes"):
        S.two_proportion_ztest(*args)
    with pytest.raises(ValueError, match="successes"):
        S.msprt_proportions(*args)


def test_statsmodels_agrees_where_installed():
    if not IN_CI:  # the dev extra installs it; CI must not skip the comparison
        pytest.importorskip("statsmodels")
    from statsmodels.stats import power
    from statsmodels.stats import proportion as sm

    for x, n in [(0, 1), (1, 2), (5, 83), (999_999_999, 10**9)]:
        for ours, theirs in [("wilson", "wilson"), ("exact", "beta"), ("wald", "normal")]:
            r = S.proportion_ci(x, n, method=ours)
            low, high = sm.proportion_confint(x, n, method=theirs)
            assert (r.low, r.high) == (close(low, abs=1e-12), close(high, abs=1e-12))
    z, p = sm.proportions_ztest([12, 5], [99, 83])
    r = S.two_proportion_ztest(5, 83, 12, 99)
    assert (r.statistic, r.p_value) == (close(z), close(p))
    # Sample sizes: the n returned reaches the power, one user fewer does not.
    for base, mde in [(0.1, 0.02), (0.5, 0.01), (0.9, -0.05)]:
        n = S.sample_size_proportions(base, mde)
        assert sm.power_proportions_2indep(mde, base, n).power >= 0.8
        assert sm.power_proportions_2indep(mde, base, n - 1).power < 0.8
    n = S.sample_size_means(1.0, 0.1)
    assert n == math.ceil(power.NormalIndPower().solve_power(0.1, alpha=0.05, power=0.8))


# -------------------------------------------------------------------- sample ratio


@settings(max_examples=examples(80), deadline=None)
@given(st.lists(st.tuples(st.integers(0, 10**9), st.floats(0.5, 100)), min_size=2, max_size=60))
def test_srm_matches_scipy_chisquare(cells):
    observed = {f"v{i}": n for i, (n, _) in enumerate(cells)}
    split = {f"v{i}": w for i, (_, w) in enumerate(cells)}
    r = S.sample_ratio_mismatch(observed, split)
    total = sum(observed.values())
    if total == 0:
        assert (r.p_value, r.mismatch) == (1.0, False)
        return
    weight = sum(split.values())
    ref = scipy_quietly(sps.chisquare, list(observed.values()),
                        [total * w / weight for w in split.values()])  # fmt: skip
    assert r.chi2 == close(float(ref.statistic), rel=1e-6, abs=1e-9)
    assert r.p_value == close(float(ref.pvalue), rel=1e-6, abs=1e-300)
    assert r.mismatch == (r.p_value < S.SRM_THRESHOLD)


@pytest.mark.parametrize(
    "observed, split",
    [
        ({"control": 500, "b": 500, "paused": 40}, {"control": 50, "b": 50, "paused": 0}),
        ({"control": 500, "b": 500, "gone": 1}, {"control": 50, "b": 50}),
    ],
)
def test_users_in_a_variant_that_gets_no_traffic_are_a_mismatch(observed, split):
    # before: weight-0 and unknown variants were left out, and 500/500 passed as "ok"
    r = S.sample_ratio_mismatch(observed, split)
    assert r.mismatch and r.p_value == 0.0 and r.chi2 == math.inf
    stray = next(k for k in observed if k not in ("control", "b"))
    assert r.observed[stray] == observed[stray] and r.expected[stray] == 0.0


def test_an_empty_zero_weight_variant_is_no_mismatch():
    r = S.sample_ratio_mismatch({"control": 500, "b": 500, "paused": 0},
                                {"control": 50, "b": 50, "paused": 0})  # fmt: skip
    assert not r.mismatch and r.p_value == 1.0


def test_report_flags_exposures_in_a_variant_the_split_does_not_serve():
    store = MetricsStore(None)
    store.write([Exposure("t", "control", f"c{i}", 0) for i in range(300)])
    store.write([Exposure("t", "b", f"b{i}", 0) for i in range(300)])
    store.write([Exposure("t", "old", f"o{i}", 0) for i in range(5)])
    meta = {"traffic_split": {"control": 50.0, "b": 50.0}, "control": "control"}
    report = analyze("t", meta, store)
    assert report.srm.mismatch
    assert "MISMATCH" in report.to_text()
    assert report.to_dict()["srm"]["chi2"] is None  # infinite: null in strict JSON


# ------------------------------------------------------------- sequential (guardrails)


def _mixture_p(z: float, x: float, alternative: str) -> float:
    """1 / (likelihood ratio integrated over the mixing prior), numerically."""
    tau = math.sqrt(x)  # z is in units of the difference's sd, so tau^2 = x

    def ratio(theta):
        return math.exp(theta * z - theta * theta / 2) * sps.norm.pdf(theta, 0, tau)

    if alternative == "two-sided":
        lr = integrate.quad(ratio, -np.inf, np.inf)[0]
    elif alternative == "larger":
        lr = 2 * integrate.quad(ratio, 0, np.inf)[0]
    else:
        lr = 2 * integrate.quad(ratio, -np.inf, 0)[0]
    return min(1.0, 1.0 / lr)


@pytest.mark.parametrize("z", [-3.0, -1.0, 0.0, 0.5, 2.0, 3.5])
@pytest.mark.parametrize("x", [0.3, 4.0, 40.0])
@pytest.mark.parametrize("alternative", list(ALTERNATIVES))
def test_msprt_p_value_is_the_integrated_mixture(z, x, alternative):
    assert S._msprt_p(z, x, alternative) == close(_mixture_p(z, x, alternative), rel=1e-6)


def test_msprt_stays_finite_far_in_the_tail():
    p = S.msprt_proportions(10**9 // 2, 10**9, 10**9 // 2 + 10**6, 10**9, "larger")
    assert 0 <= p.p_value < 1e-300
    assert S.msprt_proportions(0, 1, 0, 1).p_value == 1.0


# ---------------------------------------------------------------------- many variants


def test_many_variants_each_compared_with_the_control():
    store = MetricsStore(None)
    variants = [f"v{i}" for i in range(40)]
    split = {"control": 100 - 2 * 39, **{v: 2.0 for v in variants[1:]}}
    rng = np.random.default_rng(7)
    for v in ["control", *variants[1:]]:
        users = [f"{v}-{i}" for i in range(200)]
        store.write([Exposure("t", v, u, 0) for u in users])
        rate = 0.3 if v != "v7" else 0.6
        for u in users:
            if rng.random() < rate:
                store.record("t", v, "conv", 1.0, u, write=False)
    meta = {"traffic_split": split, "control": "control", "success_metrics": ["conv"]}
    report = analyze("t", meta, store)
    rows = report.for_metric("conv")
    assert [r.variant for r in rows] == ["control", *variants[1:]]
    control = rows[0]
    for r in rows[1:]:
        ref = S.two_proportion_ztest(control.successes, control.n, r.successes, r.n)
        assert r.p_value == ref.p_value
    assert min(rows[1:], key=lambda r: r.p_value).variant == "v7"
    assert "no multiple-testing correction" in report.to_text()
