"""The experiment statistics on degenerate inputs, against SciPy (and statsmodels and
Fisher's exact test where SciPy has no pooled z-test): groups that do not vary (one or
both, equal or different means), n of 1, 2 and 1e9, all or no conversions, values near
the metric cap (1e100), tiny differences and identical groups.

Where a test is undefined (Welch's t with no variance in either group: SciPy's t is
NaN or infinite and its df NaN), cfgcore says so (``undefined``) instead of a p-value,
and the report, ``analyze()`` and the guardrails say the same."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import warnings
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from cfgcore.experiments import stats as S
from cfgcore.experiments.analysis import analyze, guardrail_violations
from cfgcore.experiments.exposures import Exposure
from cfgcore.experiments.metrics import MAX_METRIC_VALUE, MetricsStore
from tests.conftest import run_cli
from tests.fuzz import examples

ALTERNATIVES = {"two-sided": "two-sided", "larger": "greater", "smaller": "less"}
alternatives = st.sampled_from(list(ALTERNATIVES))


def quietly(fn, *args, **kwargs):
    """A reference value without SciPy's degenerate-data warnings (filterwarnings=error)."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        return fn(*args, **kwargs)


# A group: a base value plus small whole steps times a scale, so that constant groups
# (every step 0), one-step groups, tiny and huge scales and bases up to the metric cap
# all come up often.
bases = st.one_of(
    st.sampled_from([0.0, 1.0, -3.5, 1e6, MAX_METRIC_VALUE / 2, -MAX_METRIC_VALUE / 2]),
    st.floats(-1e6, 1e6, allow_nan=False, allow_subnormal=False),
)
scales = st.sampled_from([0.0, 1e-9, 1e-3, 1.0, 1e3, 1e40, MAX_METRIC_VALUE / 8])


@st.composite
def group(draw, base=None):
    b = draw(bases) if base is None else base
    scale = draw(scales)
    steps = draw(st.lists(st.integers(-3, 3), min_size=2, max_size=12))
    if draw(st.booleans()):
        steps = [0] * len(steps)  # constant
    return [b + scale * k for k in steps]


def _constant(xs) -> bool:
    return len(set(xs)) == 1


# --------------------------------------------------------------------------- Welch


def _exact_welch(a, b, alternative):
    """SciPy's Welch test on moments computed exactly (fractions), scaled by a power of
    two into SciPy's range (t, p and df are scale-free): SciPy on the raw values is
    itself off where cfgcore is asked to be right, near the metric cap (squaring
    variances past 1e154 made its df 1 for 4) and at spreads of a few ulps of the mean
    (two passes, 1.2 %), and it gives a t of 1.5e16 for ten copies of 5e99."""
    fa, fb = [Fraction(x) for x in a], [Fraction(x) for x in b]
    ma, mb = sum(fa) / len(fa), sum(fb) / len(fb)
    va = sum((x - ma) ** 2 for x in fa) / (len(fa) - 1)
    vb = sum((x - mb) ** 2 for x in fb) / (len(fb) - 1)
    top = max(map(abs, [*fa, *fb])) or Fraction(1)
    k = Fraction(2) ** -math.frexp(float(top))[1]  # values to within 1
    sa, sb = va / len(fa), vb / len(fb)
    df = (sa + sb) ** 2 / (sa * sa / (len(fa) - 1) + sb * sb / (len(fb) - 1))
    # How far t can move when each mean is rounded to a double (as SciPy's are here, and
    # cfgcore's): half an ulp of each, in either. Nothing where the means are far apart;
    # where the treatment is drawn a few ulps from the control, t is known no better.
    slack = (math.ulp(float(ma)) + math.ulp(float(mb))) / math.sqrt(float(sa + sb))
    return float(df), slack, quietly(
        sps.ttest_ind_from_stats, float(mb * k), math.sqrt(float(vb * k * k)), len(b),
        float(ma * k), math.sqrt(float(va * k * k)), len(a), equal_var=False,
        alternative=ALTERNATIVES[alternative],
    )  # fmt: skip


def _p_of(t, df, alternative):
    """SciPy's p-value of Welch's ``t`` with ``df`` degrees of freedom."""
    dist = sps.t(df)
    if alternative == "larger":
        return float(dist.sf(t))
    if alternative == "smaller":
        return float(dist.cdf(t))
    return min(1.0, float(2 * dist.sf(abs(t))))


@settings(max_examples=examples(400), deadline=None)
@given(data=st.data(), alternative=alternatives)
def test_welch_agrees_with_scipy_or_says_it_is_undefined(data, alternative):
    a = data.draw(group())
    # the treatment near the control half the time: tiny and zero differences
    b = data.draw(group(base=a[0] if data.draw(st.booleans()) else None))
    r = S.welch_ttest(a, b, alternative)
    top = max(map(abs, a + b))  # (means of values 1e40 apart round at 1e24)
    assert r.difference == pytest.approx(np.mean(b) - np.mean(a), rel=1e-9, abs=1e-12 * top)
    if _constant(a) and _constant(b):
        # SciPy: t NaN (equal means) or +-inf with p 0 or 1 (different means): no
        # test either way, and never "p = 0"
        assert r.undefined == S.NO_VARIANCE
        assert math.isnan(r.p_value) and math.isnan(r.statistic) and math.isnan(r.df)
        assert all(math.isnan(x) for x in r.ci)
        return
    df, slack, ref = _exact_welch(a, b, alternative)
    assert r.undefined == ""
    # one group constant: Welch is defined (df = n - 1 of the other), as in SciPy; t and
    # p as SciPy's within the rounding of the means (see _exact_welch)
    t = float(ref.statistic)
    lo, hi = t - slack, t + slack
    assert lo - 1e-6 * abs(lo) - 1e-9 <= r.statistic <= hi + 1e-6 * abs(hi) + 1e-9, (t, slack)
    p_lo, p_hi = sorted(_p_of(x, df, alternative) for x in (lo, hi))
    if alternative == "two-sided" and lo < 0 < hi:
        p_hi = 1.0
    if slack == 0.0:
        p_lo = p_hi = float(ref.pvalue)
    assert p_lo * (1 - 1e-6) - 1e-12 <= r.p_value <= p_hi * (1 + 1e-6) + 1e-12, (p_lo, p_hi)
    assert r.df == pytest.approx(df, rel=1e-6)
    if _constant(a) or _constant(b):
        assert r.df == pytest.approx(len(b if _constant(a) else a) - 1, rel=1e-9)
    assert 0.0 <= r.p_value <= 1.0


def test_welch_where_the_means_are_under_an_ulp_of_each_apart():
    """The treatment a few ulps from a constant control (found by the test above): each
    mean is a double, so their difference, t's numerator (4e-10, three and a half ulps
    of 524289), is known to about an ulp. cfgcore (t -0.92) and SciPy on the rounded
    exact means (-1.23) are both within that of the exact t (-1.07), and no closer."""
    a = [524289.0, 524289.0]
    b = [524288.999999999, 524289.000000002, 524289.0, 524289.0] + [524288.999999999] * 4
    fa, fb = [Fraction(x) for x in a], [Fraction(x) for x in b]
    ma, mb = sum(fa) / len(fa), sum(fb) / len(fb)
    vb = sum((x - mb) ** 2 for x in fb) / (len(fb) - 1)
    exact = float(mb - ma) / math.sqrt(float(vb / len(fb)))
    df, slack, ref = _exact_welch(a, b, "two-sided")
    r = S.welch_ttest(a, b)
    assert abs(r.statistic - exact) <= slack and abs(float(ref.statistic) - exact) <= slack
    assert abs(r.statistic - exact) > 1e-6 * abs(exact)  # (the rounding shows)
    assert r.df == pytest.approx(df, rel=1e-9) == len(b) - 1


def test_scipy_on_raw_values_is_no_reference_at_the_metric_cap():
    """Why the test above computes its reference moments exactly: SciPy on the raw
    values gives df 1 for two copies of a group of 3 near the cap (overflow) and a
    finite t for ten copies of 5e99 (rounding); cfgcore 4 and undefined."""
    a = [0.0, 0.0, 1.25e99]
    assert quietly(sps.ttest_ind, a, a, equal_var=False).df == 1.0
    assert S.welch_ttest(a, a).df == pytest.approx(4.0, rel=1e-12)
    assert math.isfinite(quietly(sps.ttest_ind, [5e99] * 10, [0.0, 0.0]).statistic)
    assert S.welch_ttest([0.0, 0.0], [5e99] * 10).undefined == S.NO_VARIANCE


def test_summary_of_close_values_far_from_zero_keeps_their_variance():
    """1e6 and 1e6 + 1e-9 (4 ulps apart): rounding the running mean made the
    variance 11 % too large, and Welch's t 5 % too small."""
    xs = [1000000.0, 1000000.000000001]
    exact = float((Fraction(xs[1]) - Fraction(xs[0])) ** 2 / 2)
    assert S.Summary.of(xs).variance == pytest.approx(exact, rel=1e-12, abs=0)


@pytest.mark.parametrize(
    "a, b",
    [([3.0, 3.0], [4.0, 4.0]), ([3.0] * 3, [4.0] * 3), ([4.0] * 5, [3.0] * 2),
     ([0.0] * 2, [MAX_METRIC_VALUE] * 2), ([5.0, 5.0], [5.0, 5.0, 5.0])],
)  # fmt: skip
@pytest.mark.parametrize("alternative", list(ALTERNATIVES))
def test_welch_of_two_constant_groups_is_undefined_not_p_zero(a, b, alternative):
    """It reported t = +-inf and p = 0 ("significant") for two users of 3 against two
    of 4, where an exact permutation test of the same four values gives p = 1/3."""
    r = S.welch_ttest(a, b, alternative)
    assert r.undefined == S.NO_VARIANCE
    assert math.isnan(r.p_value) and not r.p_value < 0.05
    if len(a) + len(b) == 4:  # the docstring's 1/3
        exact = sps.permutation_test(
            (b, a), lambda x, y: np.mean(x) - np.mean(y), permutation_type="independent",
            alternative=ALTERNATIVES[alternative],
        )  # fmt: skip
        if b[0] != a[0] and alternative == "two-sided":
            assert exact.pvalue == pytest.approx(1 / 3)
    assert r.difference == b[0] - a[0]
    summaries = S.welch_ttest(S.Summary.of(a), S.Summary.of(b), alternative)
    assert summaries.undefined == S.NO_VARIANCE and summaries.difference == r.difference


def test_welch_of_two_constant_groups_of_a_billion_users_each():
    """Moments as the metrics store keeps them: SciPy's t is inf (different means) or
    NaN (equal), its df NaN."""
    for mb in (10.0, 10.001):
        a, b = S.Summary(10**9, 10.0, 0.0), S.Summary(10**9, mb, 0.0)
        ref = quietly(sps.ttest_ind_from_stats, mb, 0.0, 10**9, 10.0, 0.0, 10**9, equal_var=False)
        r = S.welch_ttest(a, b)
        assert r.undefined == S.NO_VARIANCE and math.isnan(r.p_value)
        assert math.isnan(float(ref.pvalue)) or math.isinf(float(ref.statistic))


@settings(max_examples=examples(100), deadline=None)
@given(
    n=st.sampled_from([2, 3, 10, 10**6, 10**9]),
    m=st.sampled_from([2, 5, 10**9]),
    sd=st.sampled_from([1e-6, 1.0, 1e40]),
    shift=st.sampled_from([0.0, 1e-12, 1e-3, 1.0]),
    alternative=alternatives,
)
def test_welch_of_one_constant_group_of_any_size_matches_scipy(n, m, sd, shift, alternative):
    a = S.Summary(n, 10.0, 0.0)  # constant
    b = S.Summary(m, 10.0 + shift * sd, sd * sd * (m - 1))
    ref = quietly(
        sps.ttest_ind_from_stats, b.mean, sd, m, 10.0, 0.0, n, equal_var=False,
        alternative=ALTERNATIVES[alternative],
    )  # fmt: skip
    r = S.welch_ttest(a, b, alternative)
    assert r.undefined == "" and r.df == pytest.approx(m - 1, rel=1e-12)
    assert r.statistic == pytest.approx(float(ref.statistic), rel=1e-6, abs=1e-9)
    assert r.p_value == pytest.approx(float(ref.pvalue), rel=1e-6, abs=1e-300)


def test_welch_of_identical_groups_is_t_zero_p_one():
    xs = [1.0, 2.0, 7.5, -3.0]
    r = S.welch_ttest(xs, list(xs))
    ref = sps.ttest_ind(xs, xs, equal_var=False)
    assert (r.statistic, r.p_value, float(ref.pvalue)) == (0.0, 1.0, 1.0)


# ------------------------------------------------------------- the sequential test


@pytest.mark.parametrize("alternative", list(ALTERNATIVES))
def test_msprt_of_two_constant_groups_is_undefined(alternative):
    """It gave p = 0 (a guardrail rollback) for two constant groups of two users."""
    r = S.msprt_means([3.0, 3.0], [4.0, 4.0], alternative)
    assert r.undefined == S.NO_VARIANCE and math.isnan(r.p_value)
    assert r.difference == 1.0
    assert S.msprt_means([3.0, 3.0], [4.0, 5.0], alternative).undefined == ""


def _store(values: dict[str, list[float]], metric: str = "latency") -> MetricsStore:
    store = MetricsStore(None)
    for v, xs in values.items():
        users = [f"{v}{i}" for i in range(len(xs))]
        store.write([Exposure("t", v, u, 0) for u in users])
        for u, x in zip(users, xs, strict=True):
            store.record("t", v, metric, x, u, write=False)
    return store


def test_guardrail_does_not_roll_back_on_an_undefined_test():
    meta = {
        "traffic_split": {"control": 50, "b": 50},
        "control": "control",
        "guardrail_metrics": {"latency": "lower_is_better"},
        "metric_types": {"latency": "continuous"},
    }
    constant = _store({"control": [3.0, 3.0], "b": [4.0, 4.0]})
    assert guardrail_violations("t", meta, constant, min_samples=2) == []
    # the same check finds a clear harm when the data vary
    rng = np.random.default_rng(3)
    varying = _store({"control": list(rng.normal(3, 0.1, 400)), "b": list(rng.normal(4, 0.1, 400))})
    assert [x.split()[0] for x in guardrail_violations("t", meta, varying)] == ["latency"]


# ------------------------------------------------------------------- proportions


counts = st.sampled_from([1, 2, 3, 10, 10**9])


@settings(max_examples=examples(300), deadline=None)
@given(data=st.data(), alternative=alternatives)
def test_proportions_agree_with_statsmodels_or_fisher_at_all_or_none(data, alternative):
    from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

    nc, nt = data.draw(counts), data.draw(counts)
    edge = st.sampled_from
    xc = data.draw(st.one_of(edge([0, nc, min(1, nc), nc - 1]), st.integers(0, nc)))
    xt = data.draw(st.one_of(edge([0, nt, min(1, nt), nt - 1, xc if xc <= nt else 0]),
                             st.integers(0, nt)))  # fmt: skip
    r = S.two_proportion_ztest(xc, nc, xt, nt, alternative)
    sm_alt = {"two-sided": "two-sided", "larger": "larger", "smaller": "smaller"}[alternative]
    z, p = quietly(proportions_ztest, [xt, xc], [nt, nc], alternative=sm_alt)
    low, high = quietly(confint_proportions_2indep, xt, nt, xc, nc, method="newcomb")
    assert r.ci == (pytest.approx(low, rel=1e-6, abs=1e-12), pytest.approx(high, rel=1e-6,
                                                                          abs=1e-12))  # fmt: skip
    if math.isnan(z):
        # Every user converted, or none, in both groups: the pooled rate is 0 or 1, so
        # under the null hypothesis the difference is 0 with certainty; statsmodels'
        # 0/0 is NaN, Fisher's exact test gives p = 1 as cfgcore does (two-sided).
        assert {xc / nc, xt / nt} <= {0.0, 1.0} and xc / nc == xt / nt
        assert r.difference == 0.0 and r.statistic == 0.0
        fisher = sps.fisher_exact([[xt, nt - xt], [xc, nc - xc]]).pvalue
        assert fisher == 1.0
        assert r.p_value == (1.0 if alternative == "two-sided" else 0.5)
        return
    assert r.statistic == pytest.approx(z, rel=1e-6, abs=1e-9)
    assert r.p_value == pytest.approx(p, rel=1e-6, abs=1e-300)


@settings(max_examples=examples(200), deadline=None)
@given(
    n=counts,
    data=st.data(),
    method=st.sampled_from(["wilson", "exact", "wald"]),
    confidence=st.sampled_from([0.8, 0.95, 0.999]),
)
def test_proportion_interval_agrees_with_statsmodels_at_the_edges(n, data, method, confidence):
    from statsmodels.stats.proportion import proportion_confint

    x = data.draw(st.one_of(st.sampled_from([0, n, min(1, n), n - 1]), st.integers(0, n)))
    r = S.proportion_ci(x, n, confidence, method)
    sm = {"wilson": "wilson", "exact": "beta", "wald": "normal"}[method]
    low, high = proportion_confint(x, n, alpha=1 - confidence, method=sm)
    assert 0.0 <= r.low <= r.estimate <= r.high <= 1.0
    assert (r.low, r.high) == (pytest.approx(max(0.0, low), rel=1e-6, abs=1e-12),
                               pytest.approx(min(1.0, high), rel=1e-6, abs=1e-12))  # fmt: skip


# -------------------------------------------------------- SRM and the mean interval


@settings(max_examples=examples(200), deadline=None)
@given(
    a=st.sampled_from([0, 1, 2, 10**9]),
    b=st.sampled_from([0, 1, 2, 10**9, 10**9 + 10**5]),
    wa=st.sampled_from([50.0, 10.0, 0.001]),
)
def test_srm_agrees_with_scipy_chisquare(a, b, wa):
    r = S.sample_ratio_mismatch({"a": a, "b": b}, {"a": wa, "b": 100 - wa})
    if a + b == 0:
        assert (r.chi2, r.p_value, r.mismatch) == (0.0, 1.0, False)
        return
    expected = [(a + b) * wa / 100, (a + b) * (100 - wa) / 100]
    ref = sps.chisquare([a, b], expected)
    assert r.chi2 == pytest.approx(float(ref.statistic), rel=1e-6, abs=1e-9)
    assert r.p_value == pytest.approx(float(ref.pvalue), rel=1e-6, abs=1e-300)


@settings(max_examples=examples(200), deadline=None)
@given(data=st.data(), confidence=st.sampled_from([0.9, 0.95, 0.99]))
def test_mean_interval_agrees_with_scipy_or_is_a_point_for_a_constant_group(data, confidence):
    xs = data.draw(group())
    r = S.mean_ci(xs, confidence)
    if _constant(xs):
        # s = 0 with n - 1 degrees of freedom: the t interval's width is 0 (SciPy's
        # t.interval refuses scale 0 and gives NaN)
        assert r.low == r.high == r.estimate == xs[0]
        return
    low, high = sps.t.interval(confidence, len(xs) - 1, loc=np.mean(xs), scale=sps.sem(xs))
    tol = 1e-9 * abs(float(np.mean(xs)))
    assert r.low == pytest.approx(low, rel=1e-6, abs=tol)
    assert r.high == pytest.approx(high, rel=1e-6, abs=tol)


# ------------------------------------------------------ the report and the analysis


def _meta():
    return {
        "traffic_split": {"control": 50, "b": 50},
        "control": "control",
        "success_metrics": ["plays"],
        "metric_types": {"plays": "continuous"},
    }


def test_analysis_and_report_say_the_test_of_constant_groups_is_undefined():
    report = analyze("t", _meta(), _store({"control": [3.0, 3.0], "b": [4.0, 4.0]}, "plays"))
    b = report.for_metric("plays")[1]
    assert b.undefined == S.NO_VARIANCE and b.difference == 1.0
    assert (b.p_value, b.statistic, b.diff_low, b.diff_high) == (None, None, None, None)
    text = report.to_text()
    row = [x for x in text.splitlines() if x.startswith("b ")][-1]  # (not the split's)
    assert row.split()[-3:] == ["+1", "-", "-"]  # diff, its interval, p
    assert f"b: no test against the control: {S.NO_VARIANCE}" in text
    data = report.to_dict()
    json.dumps(data, allow_nan=False)
    assert data["results"][1]["undefined"] == S.NO_VARIANCE
    assert data["results"][1]["p_value"] is None


def test_analysis_names_too_little_data_and_no_reason_where_tested():
    report = analyze("t", _meta(), _store({"control": [3.0], "b": [4.0, 5.0]}, "plays"))
    b = report.for_metric("plays")[1]
    assert b.p_value is None and "fewer than two users" in b.undefined
    assert "b: no test against the control: fewer than two users" in report.to_text()
    report = analyze("t", _meta(), _store({"control": [3.0, 3.0], "b": [4.0, 5.0]}, "plays"))
    b = report.for_metric("plays")[1]
    assert b.undefined == "" and b.p_value == S.welch_ttest([3.0, 3.0], [4.0, 5.0]).p_value
    assert "no test against" not in report.to_text()


def test_cli_report_says_what_analyze_says(tmp_path, capsys):
    state = str(tmp_path)
    for argv in (
        ("experiment", "create", "t", "--split", "control=50,b=50", "--metric", "plays",
         "--days", "14"),
        ("experiment", "start", "t"),
    ):  # fmt: skip
        code, _, err = run_cli(capsys, "-q", *argv, "--state-dir", state)
        assert code == 0, err
    lines = [
        {"test": "t", "user": u, "variant": v, "ts": 1764547200}
        for v, users in (("control", "ab"), ("b", "cd"))
        for u in users
    ]
    lines += [
        {"test": "t", "user": u, "variant": v, "metric": "plays", "value": x}
        for u, v, x in (("a", "control", 3), ("b", "control", 3), ("c", "b", 4), ("d", "b", 4))
    ]
    events = tmp_path / "ev.jsonl"
    events.write_text("".join(json.dumps(x) + "\n" for x in lines))
    code, _, err = run_cli(capsys, "experiment", "ingest", str(events), "--state-dir", state)
    assert code == 0, err
    code, out, err = run_cli(capsys, "experiment", "report", "t", "--json", "--state-dir", state)
    assert code == 0, err
    row = json.loads(out)["results"][1]
    assert (row["variant"], row["difference"], row["p_value"]) == ("b", 1.0, None)
    assert row["undefined"] == S.NO_VARIANCE
    code, out, err = run_cli(capsys, "experiment", "report", "t", "--state-dir", state)
    assert code == 0, err
    assert f"b: no test against the control: {S.NO_VARIANCE}" in out


# --------------------------------------------------------------------- without SciPy


def test_without_scipy_the_sequential_tests_run_and_the_others_say_what_to_install():
    """There is no fallback for SciPy's distributions: the fixed-level tests and
    intervals refuse with the extra to install. The guardrails' always-valid tests use
    none and keep working."""
    code = """
import sys
sys.modules["scipy"] = None  # an environment without the stats extra
from cfgcore.errors import ConfigError
from cfgcore.experiments import stats as S
r = S.msprt_means([1.0, 2.0, 3.0], [2.0, 3.0, 4.5], "larger")
print(round(r.p_value, 12))
try:
    S.welch_ttest([1.0, 2.0], [2.0, 3.0])
except ConfigError as exc:
    print(exc)
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    want = S.msprt_means([1.0, 2.0, 3.0], [2.0, 3.0, 4.5], "larger").p_value
    assert float(out[0]) == pytest.approx(want, rel=1e-9)
    assert "pip install 'cfgcore[stats]'" in out[1]
