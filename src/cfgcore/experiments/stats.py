"""Statistics for A/B tests: intervals, significance tests, SRM and sample sizes.

Distributions come from SciPy (the ``stats`` extra: ``pip install cfgcore[stats]``),
imported on first use so that evaluating flags never loads it. The formulas that
combine the numbers are the textbook ones and are checked against published worked
examples in ``tests/test_stats.py``.

>>> r = two_proportion_ztest(5, 83, 12, 99)          # doctest: +SKIP
>>> round(r.p_value, 3)                               # doctest: +SKIP
0.159
"""

from __future__ import annotations

import math
import sys
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cfgcore._numbers import finite_number, real_number, shown, whole_number
from cfgcore.errors import ConfigError

__all__ = [
    "Interval",
    "TestResult",
    "SRMResult",
    "proportion_ci",
    "mean_ci",
    "two_proportion_ztest",
    "welch_ttest",
    "sample_ratio_mismatch",
    "sample_size_proportions",
    "sample_size_means",
    "Summary",
    "ratio_summary",
    "moments_summary",
    "SequentialResult",
    "msprt_proportions",
    "msprt_means",
    "MSPRT_EFFECT",
    "NO_VARIANCE",
]

# Why a test of means is undefined when neither group varies (TestResult.undefined,
# SequentialResult.undefined, the report's note).
NO_VARIANCE = "no variance in either group (every user has the same value)"


def _scipy_stats() -> Any:
    try:
        from scipy import stats
    except ImportError:  # pragma: no cover - depends on the installed extras
        raise ConfigError("experiment analysis needs SciPy: pip install 'cfgcore[stats]'") from None
    return stats


_ALTERNATIVES = ("two-sided", "larger", "smaller")


def _check_alternative(alternative: str) -> None:
    if alternative not in _ALTERNATIVES:
        raise ValueError(f"alternative must be one of {_ALTERNATIVES}, got {alternative!r}")


def _within_0_1(name: str, value: Any) -> float:
    """``value`` as a float within (0, 1), else ValueError naming ``name``: a number by
    its value, never a bool or text (:mod:`cfgcore._numbers`)."""
    number = real_number(value)
    if number is None or not 0 < number < 1:
        raise ValueError(f"{name} must be a number within (0, 1), got {shown(value)}")
    return number


def _check_effect(effect: Any) -> float:
    """The mixing scale of the sequential tests: a finite number > 0 (0 or NaN made
    every p-value 1 or NaN, whatever the data; True was 1, Decimal a TypeError)."""
    number = finite_number(effect)
    if number is None or not number > 0:
        raise ValueError(f"effect must be a finite number > 0, got {shown(effect)}")
    return number


def _check_confidence(confidence: Any) -> float:
    """A level within (0, 1): 1 gave infinite bounds (or a RuntimeWarning from SciPy),
    0 a point, 1.5 or NaN bounds of NaN, True the infinite ones."""
    number = real_number(confidence)
    if number is None or not 0 < number < 1:
        raise ValueError(f"confidence must be within (0, 1), got {shown(confidence)}")
    return number


@dataclass(frozen=True)
class Interval:
    """A point estimate with a confidence interval ``[low, high]``."""

    estimate: float
    low: float
    high: float
    confidence: float


@dataclass(frozen=True)
class TestResult:
    """Result of comparing a treatment with the control.

    ``difference`` is treatment minus control (proportions or means), ``statistic``
    the z or t value for that difference, ``df`` the degrees of freedom (None for z),
    ``ci`` the confidence interval of the difference.
    """

    __test__ = False  # not a pytest test class despite the name

    statistic: float
    p_value: float
    difference: float
    ci: tuple[float, float]
    df: float | None = None
    method: str = ""
    # Why the test is undefined ("" when it was computed): then ``statistic``,
    # ``p_value``, ``df`` and ``ci`` are NaN, as SciPy gives them, and only
    # ``difference`` is a number. Read it before comparing ``p_value`` with a level.
    undefined: str = ""


@dataclass(frozen=True)
class SRMResult:
    """Chi-square goodness-of-fit of observed assignment counts against the split."""

    chi2: float
    p_value: float
    expected: dict[str, float]
    observed: dict[str, int]
    mismatch: bool  # p_value below the threshold used


@dataclass(frozen=True)
class Summary:
    """Moments of one metric in one variant (no raw data kept): ``n`` observations,
    their ``mean``, ``m2`` the sum of squared deviations, so that ``variance / n`` is
    the variance of the mean. The metrics store's summaries are per user (``n`` users,
    see :func:`ratio_summary`), and every test here takes them as they are."""

    n: int = 0
    mean: float = 0.0
    m2: float = 0.0  # sum of squared deviations (Welford)

    def add(self, x: float) -> Summary:
        """A new summary with ``x`` included (Welford's update, numerically stable)."""
        n = self.n + 1
        delta = x - self.mean
        mean = self.mean + delta / n
        return Summary(n, mean, self.m2 + delta * (x - mean))

    @property
    def variance(self) -> float:
        """Sample variance (n - 1 in the denominator); 0 for fewer than two values."""
        return self.m2 / (self.n - 1) if self.n > 1 else 0.0

    @classmethod
    def of(cls, values: Sequence[float]) -> Summary:
        """Summarise a sequence of numbers.

        The deviations are taken from the first value, as the metrics store does
        (:func:`moments_summary`): values close together far from 0 (1e6 and 1e6 +
        1e-9) then keep their variance to a few ulps, where rounding the running mean
        made it 11 % too large (and SciPy's two passes 1.2 %)."""
        xs = [float(v) for v in values]
        if not xs:
            return cls()
        shift = xs[0]
        s = cls()
        for v in xs:
            s = s.add(v - shift)
        return cls(s.n, s.mean + shift, s.m2)


def ratio_summary(sums: Sequence[float], counts: Sequence[float]) -> Summary:
    """The per-user :class:`Summary` of a metric from each user's sum of values and
    number of events: ``n`` users, ``mean`` the mean per event ``R = sum(sums) /
    sum(counts)``, and ``m2`` such that ``variance / n`` is the delta method's
    variance of ``R`` (a ratio of two per-user means):

        Var(R) ~ sum_u (S_u - R N_u)^2 / ((n - 1) n Nbar^2),  Nbar = sum(counts) / n

    (Deng, Knoblich & Lu, "Applying the Delta Method in Metric Analytics", KDD 2018;
    the per-user ratio metrics of GrowthBook and Eppo). Users are the independent
    units: events of one user may be correlated. With one event per user this is the
    ordinary mean and sample variance. Users with no event are left out."""
    pairs = [(float(s), float(c)) for s, c in zip(sums, counts, strict=True) if c > 0]
    n = len(pairs)
    if n == 0:
        return Summary()
    events = math.fsum(c for _, c in pairs)
    r = math.fsum(s for s, _ in pairs) / events
    if n < 2:
        return Summary(n, r, 0.0)
    nbar = events / n
    return Summary(n, r, math.fsum((s - r * c) ** 2 for s, c in pairs) / (nbar * nbar))


def moments_summary(
    users: int, events: float, shift: float, sum_d: float, sum_dd: float, sum_dn: float,
    sum_nn: float,
) -> Summary:  # fmt: skip
    """:func:`ratio_summary` from running sums over users instead of the raw values,
    what the metrics store keeps: with ``d_u = S_u - shift * N_u`` (the user's values
    less ``shift``, summed) and ``N_u`` their count, ``sum_d``, ``sum_dd``, ``sum_dn``
    and ``sum_nn`` are the sums over users of ``d``, ``d^2``, ``d N`` and ``N^2``, and
    ``events`` the sum of ``N``. Then ``R = shift + r`` with ``r = sum_d / events``,
    and ``sum (S_u - R N_u)^2 = sum (d_u - r N_u)^2 = sum_dd - 2 r sum_dn + r^2 sum_nn``.
    Shifting by a value of the data (the store takes the first one) keeps that
    subtraction from cancelling catastrophically when the mean is far from 0."""
    if users <= 0 or events <= 0:
        return Summary()
    r = sum_d / events
    mean = shift + r
    if users < 2:
        return Summary(users, mean, 0.0)
    ss = max(0.0, sum_dd - 2.0 * r * sum_dn + r * r * sum_nn)
    nbar = events / users
    return Summary(users, mean, ss / (nbar * nbar))


def _summary(data: Summary | Sequence[float]) -> Summary:
    """``data``'s moments, which must be finite: values that are NaN or infinite, or so
    large that their squared deviations overflow a double (past about 1e154; the
    metrics store refuses values beyond ``MAX_METRIC_VALUE``, 1e100), have no variance
    to test with, and gave NaN p-values or a t of 0 for a difference of 1e299."""
    s = data if isinstance(data, Summary) else Summary.of(data)
    if not (math.isfinite(s.mean) and math.isfinite(s.m2)):
        raise ValueError(
            "values not finite, or too large for their variance (beyond about 1e154): "
            f"mean {s.mean!r}, sum of squared deviations {s.m2!r}"
        )
    return s


def _difference(a: Summary, b: Summary) -> float:
    diff = b.mean - a.mean
    if not math.isfinite(diff):
        raise ValueError(f"means too large for their difference: {a.mean!r} and {b.mean!r}")
    return diff


def proportion_ci(
    successes: int, n: int, confidence: float = 0.95, method: str = "wilson"
) -> Interval:
    """Confidence interval of a conversion rate ``successes / n``.

    ``method`` is ``"wilson"`` (score interval, good at small counts and near 0/1),
    ``"exact"`` (Clopper-Pearson) or ``"wald"`` (normal approximation). Counts of any
    size (past 2**64 too) give an interval holding the rate.
    """
    confidence = _check_confidence(confidence)
    size, count = whole_number(n), whole_number(successes)
    if size is None:
        raise ValueError(f"n must be a whole number, got {shown(n)}")
    if size <= 0:
        return Interval(math.nan, math.nan, math.nan, confidence)
    if count is None or not 0 <= count <= size:
        raise ValueError(
            f"successes must be a whole number within 0..n, got {shown(successes)} of {size}"
        )
    successes, n = count, size
    st = _scipy_stats()
    p = successes / n
    if method == "wald":
        z = st.norm.ppf(0.5 + confidence / 2)
        half = z * math.sqrt(p * (1 - p) / n)
        return Interval(p, max(0.0, p - half), min(1.0, p + half), confidence)
    if method == "exact":
        # Clopper-Pearson from the beta quantiles: binomtest's proportion_ci finds them
        # by root-finding, which is 0.1 % off at a billion users (1 of 1e9: 2.5354e-11
        # for 2.5318e-11 = 1 - 0.975 ** 1e-9).
        tail = (1 - confidence) / 2
        low = 0.0 if successes == 0 else _beta_tail(st, tail, successes, n - successes + 1)
        high = (
            1.0
            if successes == n
            else _beta_tail(st, tail, successes + 1, n - successes, upper=True)
        )
        return Interval(p, *_holding(p, successes, n, low, high), confidence)
    if method != "wilson":  # ("wilsoncc", or binomtest's refusal naming the methods)
        ci = st.binomtest(int(successes), int(n)).proportion_ci(confidence, method=method)
        return Interval(p, float(ci.low), float(ci.high), confidence)
    # Wilson's score interval in closed form (what SciPy's binomtest computes, Newcombe
    # 1998 method 3), scaled by n: binomtest refused counts past 2**64 (a TypeError)
    # and the unscaled form overflows past 1e308.
    z = float(st.norm.ppf(0.5 + confidence / 2))
    q = (n - successes) / n
    zz = z * z / n
    center = (float(successes) + z * z / 2) / n / (1 + zz)
    # (k q + z^2 / 4 is n^2 / 4 times p q / n + z^2 / 4 n^2, which underflows past 1e154)
    half = z * math.sqrt(float(successes) * q + z * z / 4) / n / (1 + zz)
    return Interval(p, *_holding(p, successes, n, center - half, center + half), confidence)


def _holding(p: float, successes: int, n: int, low: float, high: float) -> tuple[float, float]:
    """The bounds ``low`` and ``high`` of an interval of the rate ``p = successes / n``,
    within [0, 1] (0 and 1 at no and all successes) and holding ``p``: at a billion
    billion users the bounds of a rate are a few ulps from it, and rounding put them
    on one side of it."""
    low = 0.0 if successes == 0 else min(max(low, 0.0), p)
    high = 1.0 if successes == n else max(min(high, 1.0), p)
    return low, high


# Both beta parameters from this size on, a beta quantile is its Cornish-Fisher expansion
# (see _beta_tail).
_LARGE_BETA = 1e12


def _beta_tail(st: Any, tail: float, a: int, b: int, *, upper: bool = False) -> float:
    """The point of Beta(a, b) with ``tail`` of its mass below it (``upper``: above
    it), the bounds of a Clopper-Pearson interval.

    SciPy's quantile (Boost's inverse incomplete beta) is taken only once the
    incomplete beta confirms it: it is wrong now and then at ordinary counts (SciPy
    1.17: 1,000 of a billion users gave a lower bound of 1.9e-6 for a rate of 1e-6, 1 of
    its mass below it), NaN for a parameter past about 1e300, and refused parameters
    past 2**64 (a TypeError). Otherwise the point is solved for on the incomplete beta
    itself (Brent's method). Once both parameters pass ``_LARGE_BETA`` the incomplete
    beta loses its accuracy too (at 1e18 users, a third converting, the upper bound was
    below the rate), while the distribution is normal to far below a double's
    resolution: the point is taken from its mean, standard deviation and skewness
    (Cornish-Fisher to the skewness term, off by about sd / min(a, b): under 1e-12 of
    the interval's half width)."""
    fa, fb = float(a), float(b)
    if min(fa, fb) >= _LARGE_BETA:
        total = fa + fb
        mean = fa / total
        sd = math.sqrt(mean * (fb / total) / (total + 1))
        skew = 2 * (fb - fa) / (total + 2) * math.sqrt((total + 1) / fa / fb)
        z = float(st.norm.isf(tail) if upper else st.norm.ppf(tail))
        return min(1.0, max(0.0, mean + sd * (z + (z * z - 1) * skew / 6)))
    from scipy import optimize, special

    def beyond(x: float) -> float:
        """The mass on the tail's side of ``x`` (from the other side's where that is
        NaN: SciPy's betainc past b of about 1e300)."""
        near, far = (
            (special.betaincc, special.betainc) if upper else (special.betainc, special.betaincc)
        )
        mass = float(near(fa, fb, x))
        return mass if math.isfinite(mass) else 1.0 - float(far(fa, fb, x))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        x = float(st.beta.isf(tail, fa, fb) if upper else st.beta.ppf(tail, fa, fb))
        if 0.0 <= x <= 1.0 and math.isclose(beyond(x), tail, rel_tol=1e-9):
            return x
        return float(
            optimize.brentq(
                lambda x: beyond(x) - tail, 0.0, 1.0, xtol=1e-320, rtol=4 * sys.float_info.epsilon,
                maxiter=4000,
            )
        )  # fmt: skip


def mean_ci(data: Summary | Sequence[float], confidence: float = 0.95) -> Interval:
    """Mean with a Student-t confidence interval (NaN bounds for fewer than 2 values)."""
    confidence = _check_confidence(confidence)
    s = _summary(data)
    if s.n < 2:
        return Interval(s.mean if s.n else math.nan, math.nan, math.nan, confidence)
    st = _scipy_stats()
    # (df as a float: SciPy refuses an int past 2**64, a Summary's n may be one)
    half = float(st.t.ppf(0.5 + confidence / 2, float(s.n - 1))) * math.sqrt(s.variance / s.n)
    return Interval(s.mean, s.mean - half, s.mean + half, confidence)


def _p_value(st: Any, dist: Any, stat: float, alternative: str) -> float:
    if alternative == "two-sided":
        return float(2 * dist.sf(abs(stat)))
    if alternative == "larger":
        return float(dist.sf(stat))
    return float(dist.cdf(stat))


def _p_value_infinite(stat: float, alternative: str) -> float:
    """p-value of a statistic that is 0 or infinite (a zero standard error)."""
    if stat == 0:
        return 1.0 if alternative == "two-sided" else 0.5
    if alternative == "two-sided":
        return 0.0
    return 0.0 if (stat > 0) == (alternative == "larger") else 1.0


def _check_counts(
    x_control: Any, n_control: Any, x_treatment: Any, n_treatment: Any
) -> tuple[int, int, int, int]:
    """The four counts as ints, else ValueError naming the one that is no whole number
    (an int, a NumPy integer, 3.0; not a bool or text, nor NaN or an infinity, which
    once passed as a group's size and gave p = 0 whatever the data)."""
    sizes = []
    for n, group in ((n_control, "control"), (n_treatment, "treatment")):
        whole = whole_number(n)
        if whole is None:
            raise ValueError(f"{group} size must be a whole number, got {shown(n)}")
        sizes.append(whole)
    if sizes[0] <= 0 or sizes[1] <= 0:
        raise ValueError("both groups need at least one observation")
    counts = []
    for x, n, group in ((x_control, sizes[0], "control"), (x_treatment, sizes[1], "treatment")):
        whole = whole_number(x)
        if whole is None or not 0 <= whole <= n:
            raise ValueError(
                f"{group} successes must be a whole number within 0..n, got {shown(x)} of {n}"
            )
        counts.append(whole)
    return counts[0], sizes[0], counts[1], sizes[1]


def two_proportion_ztest(
    x_control: int,
    n_control: int,
    x_treatment: int,
    n_treatment: int,
    alternative: str = "two-sided",
    confidence: float = 0.95,
) -> TestResult:
    """Two-proportion z-test (pooled standard error under H0: equal rates).

    ``difference`` = treatment rate - control rate; ``alternative="larger"`` tests
    treatment > control. The interval of the difference is Newcombe's hybrid score
    interval (Newcombe, "Interval estimation for the difference between independent
    proportions", Statistics in Medicine 1998, method 10; statsmodels'
    ``confint_proportions_2indep(method="newcomb")``), built from the two rates' Wilson
    intervals: it stays within [-1, 1] and is no point at rates of 0 or 1, where the
    Wald interval of the unpooled standard error is (1 of 1 against 0 of 1 gave
    ``[+1, +1]`` beside p = 0.16).
    """
    _check_alternative(alternative)
    confidence = _check_confidence(confidence)
    x_control, n_control, x_treatment, n_treatment = _check_counts(
        x_control, n_control, x_treatment, n_treatment
    )
    st = _scipy_stats()
    p1, p2 = x_control / n_control, x_treatment / n_treatment
    pooled = (x_control + x_treatment) / (n_control + n_treatment)
    se0 = math.sqrt(pooled * (1 - pooled) * (1 / n_control + 1 / n_treatment))
    diff = p2 - p1
    z = diff / se0 if se0 > 0 else (0.0 if diff == 0 else math.copysign(math.inf, diff))
    c = proportion_ci(x_control, n_control, confidence)
    t = proportion_ci(x_treatment, n_treatment, confidence)
    low = diff - math.hypot(p2 - t.low, c.high - p1)
    high = diff + math.hypot(t.high - p2, p1 - c.low)
    return TestResult(
        statistic=float(z),
        p_value=(
            _p_value(st, st.norm, z, alternative)
            if math.isfinite(z)
            else _p_value_infinite(z, alternative)
        ),
        difference=diff,
        ci=(max(-1.0, low), min(1.0, high)),
        method="two-proportion z-test",
    )


def welch_ttest(
    control: Summary | Sequence[float],
    treatment: Summary | Sequence[float],
    alternative: str = "two-sided",
    confidence: float = 0.95,
) -> TestResult:
    """Welch's unequal-variance t-test of treatment mean minus control mean.

    Takes raw values or :class:`Summary` moments (what the metrics store keeps), so
    the same function serves tests and the running analysis.

    When neither group varies (a constant metric) the test is undefined: the
    estimated standard error is 0, t is 0/0 or d/0 and the Welch-Satterthwaite degrees
    of freedom 0/0. The result then has ``undefined`` set to :data:`NO_VARIANCE`,
    the observed ``difference``, and NaN for the statistic, p-value, df and interval
    (SciPy's ``ttest_ind`` gives NaN too for equal means). It is not p = 0: a sample
    variance of 0 is no proof that the metric cannot vary, and two users of 3 against
    two of 4 are no certain difference (an exact permutation test of those four values
    gives p = 1/3). One group varying is enough for the test.
    """
    _check_alternative(alternative)
    confidence = _check_confidence(confidence)
    a, b = _summary(control), _summary(treatment)
    if a.n < 2 or b.n < 2:
        raise ValueError("Welch's t-test needs at least two observations per group")
    st = _scipy_stats()
    diff = _difference(a, b)
    va, vb = a.variance / a.n, b.variance / b.n
    if va + vb <= 0:
        # Neither group varies (or so little that its variance underflows): see the
        # docstring. (It said t = +-inf and p = 0, "significant", for [3, 3] vs [4, 4].)
        return TestResult(
            statistic=math.nan,
            p_value=math.nan,
            difference=diff,
            ci=(math.nan, math.nan),
            df=math.nan,
            method="Welch's t-test",
            undefined=NO_VARIANCE,
        )
    # t = d / sqrt(va + vb) with the Welch-Satterthwaite degrees of freedom, what
    # SciPy's ttest_ind_from_stats computes, but with df from the variances scaled by
    # the larger one: df is scale-free, and squaring variances past 1e154 overflowed
    # (df NaN, the report's p "-").
    top = max(va, vb)
    ra, rb = va / top, vb / top
    se = math.sqrt(top) * math.sqrt(ra + rb)  # (va + vb overflows past 1e308)
    df = (ra + rb) ** 2 / (ra * ra / (a.n - 1) + rb * rb / (b.n - 1))
    t = diff / se
    dist = st.t(df)
    half = float(dist.ppf(0.5 + confidence / 2)) * se
    return TestResult(
        statistic=float(t),
        p_value=_p_value(st, dist, t, alternative),
        difference=diff,
        ci=(diff - half, diff + half),
        df=float(df),
        method="Welch's t-test",
    )


# ------------------------------------------------------------ always-valid sequential tests

# Standardised effect (in standard deviations of the metric) on which the mSPRT's
# mixing distribution is centred in scale: tau = MSPRT_EFFECT * sd. The test is most
# sensitive when (tau^2 / variance of the difference) is around 10-20, i.e. around
# 300-700 users per variant at 0.2: where a guardrail should catch a clear harm.
MSPRT_EFFECT = 0.2


@dataclass(frozen=True)
class SequentialResult:
    """An always-valid test of treatment minus control (:func:`msprt_means`,
    :func:`msprt_proportions`).

    ``p_value`` is ``min(1, 1 / likelihood ratio)``: under the null hypothesis the
    probability that it *ever* falls to ``alpha`` or below, however often and whenever
    it is looked at, is at most ``alpha``. ``statistic`` is the z value of the
    difference (the Welch t statistic for means) it is computed from.
    """

    __test__ = False

    statistic: float
    p_value: float
    difference: float
    information: float  # tau^2 / variance of the difference
    method: str = ""
    undefined: str = ""  # why the test is undefined (statistic and p_value NaN then)


def _normal_log_sf(x: float) -> float:
    """log(1 - Phi(x)), finite far into both tails."""
    if x < 30:
        return math.log(0.5 * math.erfc(x / math.sqrt(2)))
    # Mills ratio: 1 - Phi(x) ~ phi(x) / x for large x (erfc underflows near 38)
    return -x * x / 2 - math.log(x * math.sqrt(2 * math.pi))


def _msprt_p(z: float, information: float, alternative: str) -> float:
    """Always-valid p-value of a z statistic with a normal mixture over the effect.

    The difference D of the two means is approximately N(theta, V). Mixing the
    likelihood ratio of theta against 0 over theta ~ N(0, tau^2) gives (with
    z = D / sqrt(V), x = tau^2 / V)

        L = (1 + x) ** -0.5 * exp(z^2 x / (2 (1 + x)))

    (Robbins' normal mixture; Johari, Pekelis & Walsh, "Always valid inference",
    2017). For one side the mixture is over theta > 0 only (a half-normal prior,
    density 2 N(0, tau^2)), which multiplies L by 2 Phi(z sqrt(x / (1 + x))).
    Either is a non-negative martingale with mean 1 under theta = 0, so by Ville's
    inequality P(sup_n L_n >= 1/alpha) <= alpha: ``1 / L`` is a p-value that stays
    valid at every look. "smaller" tests theta < 0 by mirroring z.
    """
    if math.isinf(z):
        return _p_value_infinite(z, alternative)
    if information <= 0 or not math.isfinite(z):
        return 1.0
    x = information
    log_l = -0.5 * math.log1p(x) + z * z * x / (2 * (1 + x))
    if alternative != "two-sided":
        signed = z if alternative == "larger" else -z
        log_l += math.log(2.0) + _normal_log_sf(-signed * math.sqrt(x / (1 + x)))
    return 1.0 if log_l <= 0 else math.exp(-log_l)


def msprt_proportions(
    x_control: int,
    n_control: int,
    x_treatment: int,
    n_treatment: int,
    alternative: str = "two-sided",
    effect: float = MSPRT_EFFECT,
) -> SequentialResult:
    """Always-valid test of treatment rate minus control rate (mixture SPRT).

    The z statistic is the pooled two-proportion one of :func:`two_proportion_ztest`;
    the mixing scale is ``tau = effect * sqrt(p (1 - p))`` with ``p`` the pooled rate,
    so ``x = tau^2 / V = effect^2 / (1/n_control + 1/n_treatment)``. Valid at every
    look (see :func:`_msprt_p`), under the normal approximation of the difference.
    ``effect``: a finite number > 0, else ValueError.
    """
    _check_alternative(alternative)
    effect = _check_effect(effect)
    x_control, n_control, x_treatment, n_treatment = _check_counts(
        x_control, n_control, x_treatment, n_treatment
    )
    p1, p2 = x_control / n_control, x_treatment / n_treatment
    pooled = (x_control + x_treatment) / (n_control + n_treatment)
    var = pooled * (1 - pooled) * (1 / n_control + 1 / n_treatment)
    diff = p2 - p1
    z = diff / math.sqrt(var) if var > 0 else (0.0 if diff == 0 else math.copysign(math.inf, diff))
    info = effect * effect / (1 / n_control + 1 / n_treatment)
    return SequentialResult(z, _msprt_p(z, info, alternative), diff, info, "mSPRT (proportions)")


def msprt_means(
    control: Summary | Sequence[float],
    treatment: Summary | Sequence[float],
    alternative: str = "two-sided",
    effect: float = MSPRT_EFFECT,
) -> SequentialResult:
    """Always-valid test of treatment mean minus control mean (mixture SPRT).

    z is Welch's statistic ``D / sqrt(s_c^2/n_c + s_t^2/n_t)``; the mixing scale is
    ``tau = effect * sd`` with ``sd^2`` the mean of the two sample variances. Neither
    group varying, the test is undefined, as :func:`welch_ttest` is: ``undefined``
    says so and the statistic and p-value are NaN (no p-value to fall below a level).
    Valid at every look (see :func:`_msprt_p`), under the normal approximation of the
    difference of means. ``effect``: a finite number > 0, else ValueError.
    """
    _check_alternative(alternative)
    effect = _check_effect(effect)
    a, b = _summary(control), _summary(treatment)
    if a.n < 2 or b.n < 2:
        raise ValueError("the sequential test needs at least two observations per group")
    diff = _difference(a, b)
    var = a.variance / a.n + b.variance / b.n
    if not math.isfinite(var):
        raise ValueError("values too large for the variance of their difference")
    if var <= 0:
        return SequentialResult(math.nan, math.nan, diff, 0.0, "mSPRT (means)", NO_VARIANCE)
    z = diff / math.sqrt(var)
    info = effect * effect * (a.variance / 2 + b.variance / 2) / var  # (no overflow)
    return SequentialResult(z, _msprt_p(z, info, alternative), diff, info, "mSPRT (means)")


# p-value below which the sample-ratio check reports a mismatch (see below).
SRM_THRESHOLD = 0.001


def sample_ratio_mismatch(
    observed: Mapping[str, int], split: Mapping[str, float], threshold: float = SRM_THRESHOLD
) -> SRMResult:
    """Chi-square test of assignment counts against the configured split (percent).

    ``observed`` may hold variants outside the split (or with weight 0): any user
    there is a mismatch (chi2 infinite, p = 0). A p-value below ``threshold`` (0.001
    by default, the usual choice because the check is run often) flags a mismatch:
    the assignment or the exposure logging is broken and the test's results should
    not be trusted.

    Only the shares of the split matter (weights of 50 and 50 or of 1e300 and 1e300
    are one split). ValueError for a weight that is negative or not finite, for a
    count that is no whole number of users, and for a ``threshold`` that is no number
    within (0, 1).
    """
    # (True compared as 1: every p-value a mismatch; NaN and 0: never one)
    threshold = _within_0_1("threshold", threshold)
    weights: dict[str, float] = {}
    for k, w in split.items():
        fw = finite_number(w)  # never a bool or text (cfgcore._numbers)
        if fw is None or fw < 0:
            raise ValueError(
                f"split weight of {k!r}: expected a finite number >= 0, got {shown(w)}"
            )
        weights[k] = fw
    whole: dict[str, int] = {}
    for k, v in observed.items():
        n = whole_number(v)
        if n is None or n < 0:
            raise ValueError(f"count of {k!r}: expected a whole number >= 0, got {shown(v)}")
        whole[k] = n
    observed, split = whole, weights
    names = [k for k in split if split[k] > 0]
    counts = [observed.get(k, 0) for k in names]
    total = sum(counts)
    # Shares of the largest weight: a sum of weights near 1e308 overflowed to infinity
    # (every expected count NaN, p NaN, and NaN < threshold is no mismatch).
    top = max((float(split[k]) for k in names), default=1.0)
    shares = {k: float(split[k]) / top for k in names}
    weight = sum(shares.values())
    expected = {k: total * shares[k] / weight for k in names}
    if total:
        # A share so small that its expected count underflows to 0 (a weight of 5e-324
        # beside one of 2) serves nobody, as a weight of 0 does: its 0 / 0 made the
        # chi-square NaN (a RuntimeWarning), and users there are a mismatch.
        names = [k for k in names if expected[k] > 0]
        expected = {k: expected[k] for k in names}
        counts = [int(observed.get(k, 0)) for k in names]
    # Users in a variant that gets no traffic (weight 0, or not in the split at all) can
    # only come from broken assignment or logging: a certain mismatch, whatever the
    # other counts (the chi-square of an expected count of 0 is infinite).
    stray = {k: int(v) for k, v in observed.items() if k not in expected and int(v) > 0}
    if stray:
        return SRMResult(
            math.inf, 0.0, {**expected, **dict.fromkeys(stray, 0.0)},
            {**dict(zip(names, counts, strict=True)), **stray}, True,
        )  # fmt: skip
    if total == 0 or len(names) < 2:
        return SRMResult(0.0, 1.0, expected, dict(zip(names, counts, strict=True)), False)
    st = _scipy_stats()
    import numpy as np

    # A weight so small its expected count is subnormal (a split of 1e-309 percent)
    # overflows (observed - expected)^2 / expected: chi2 infinite and p 0, a certain
    # mismatch as for a variant with no weight, not a RuntimeWarning.
    with np.errstate(over="ignore", divide="ignore"):
        # (as doubles: counts past 2**63 made an object array SciPy refuses)
        r = st.chisquare([float(c) for c in counts], [expected[k] for k in names])
    p = float(r.pvalue)
    return SRMResult(
        float(r.statistic), p, expected, dict(zip(names, counts, strict=True)), p < threshold
    )


def _users_needed(root: float, factor: float = 1.0) -> int:
    """``ceil(factor * root^2)`` users (at least 1), ``root`` the ratio of the z values'
    spread to the change sought: squared after the division, so a tiny change or a
    huge standard deviation neither underflows to a division by zero nor overflows
    silently. ValueError when the number is not finite (the change is too small, or
    the spread too large, for any sample)."""
    root = float(root)  # a NumPy scalar would warn on overflow instead of giving inf
    n = factor * root * root
    if not math.isfinite(n):
        raise ValueError("the change sought is too small for any sample size (overflow)")
    return max(1, math.ceil(n))


def _z(st: Any, alpha: Any, power: Any, two_sided: bool) -> tuple[float, float]:
    alpha, power = _within_0_1("alpha", alpha), _within_0_1("power", power)
    za = st.norm.ppf(1 - alpha / 2) if two_sided else st.norm.ppf(1 - alpha)
    return float(za), float(st.norm.ppf(power))


def sample_size_proportions(
    baseline: float,
    mde: float,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    relative: bool = False,
    two_sided: bool = True,
) -> int:
    """Users needed per variant to detect a change of ``mde`` in a conversion rate.

    ``mde`` is absolute (0.02 = two percentage points) unless ``relative`` (0.1 = +10 %).
    Normal approximation with the pooled variance under H0 and the unpooled one under
    H1 (Fleiss, Levin & Paik, *Statistical Methods for Rates and Proportions*, eq. 4.14,
    without continuity correction).
    """
    p1 = _within_0_1("baseline", baseline)
    change = finite_number(mde)
    if change is None:
        raise ValueError(f"mde must be a finite number, got {shown(mde)}")
    p2 = p1 * (1 + change) if relative else p1 + change
    if not (0 < p2 < 1) or p1 == p2:
        raise ValueError(f"rates must be within (0, 1) and differ: {p1} -> {p2} (mde {shown(mde)})")
    st = _scipy_stats()
    za, zb = _z(st, alpha, power, two_sided)
    pbar = (p1 + p2) / 2
    num = za * math.sqrt(2 * pbar * (1 - pbar)) + zb * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))
    return _users_needed(num / (p2 - p1))


def sample_size_means(
    sd: float, mde: float, *, alpha: float = 0.05, power: float = 0.8, two_sided: bool = True
) -> int:
    """Observations needed per variant to detect a shift ``mde`` in a mean with
    standard deviation ``sd``: ``2 (z_a + z_b)^2 sd^2 / mde^2`` (about ``16 sd^2 / mde^2``
    at alpha 0.05 and power 0.8, Kohavi's rule of thumb)."""
    # As floats: NumPy scalars (a report's) warn on overflow. Never a bool or text.
    spread, shift = finite_number(sd), finite_number(mde)
    if spread is None or shift is None or not spread > 0 or shift == 0:
        raise ValueError(
            "sd must be a finite number > 0 and mde finite and non-zero, got "
            f"sd={shown(sd)}, mde={shown(mde)}"
        )
    sd, mde = spread, shift
    st = _scipy_stats()
    za, zb = _z(st, alpha, power, two_sided)
    return _users_needed((za + zb) * sd / mde, 2.0)
