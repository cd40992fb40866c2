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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

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
]


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
    """Running moments of one metric in one variant (no raw data kept)."""

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
        """Summarise a sequence of numbers."""
        s = cls()
        for v in values:
            s = s.add(float(v))
        return s


def _summary(data: Summary | Sequence[float]) -> Summary:
    return data if isinstance(data, Summary) else Summary.of(data)


def proportion_ci(
    successes: int, n: int, confidence: float = 0.95, method: str = "wilson"
) -> Interval:
    """Confidence interval of a conversion rate ``successes / n``.

    ``method`` is ``"wilson"`` (score interval, good at small counts and near 0/1),
    ``"exact"`` (Clopper-Pearson) or ``"wald"`` (normal approximation); SciPy's
    ``binomtest`` computes the first two.
    """
    if n <= 0:
        return Interval(math.nan, math.nan, math.nan, confidence)
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be within 0..n, got {successes} of {n}")
    st = _scipy_stats()
    p = successes / n
    if method == "wald":
        z = st.norm.ppf(0.5 + confidence / 2)
        half = z * math.sqrt(p * (1 - p) / n)
        return Interval(p, max(0.0, p - half), min(1.0, p + half), confidence)
    ci = st.binomtest(int(successes), int(n)).proportion_ci(confidence, method=method)
    return Interval(p, float(ci.low), float(ci.high), confidence)


def mean_ci(data: Summary | Sequence[float], confidence: float = 0.95) -> Interval:
    """Mean with a Student-t confidence interval (NaN bounds for fewer than 2 values)."""
    s = _summary(data)
    if s.n < 2:
        return Interval(s.mean if s.n else math.nan, math.nan, math.nan, confidence)
    st = _scipy_stats()
    half = st.t.ppf(0.5 + confidence / 2, s.n - 1) * math.sqrt(s.variance / s.n)
    return Interval(s.mean, s.mean - half, s.mean + half, confidence)


def _p_value(st: Any, dist: Any, stat: float, alternative: str) -> float:
    if alternative == "two-sided":
        return float(2 * dist.sf(abs(stat)))
    if alternative == "larger":
        return float(dist.sf(stat))
    return float(dist.cdf(stat))


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
    treatment > control. The interval of the difference uses the unpooled standard
    error (Wald), as the usual textbook pairing does.
    """
    _check_alternative(alternative)
    if n_control <= 0 or n_treatment <= 0:
        raise ValueError("both groups need at least one observation")
    st = _scipy_stats()
    p1, p2 = x_control / n_control, x_treatment / n_treatment
    pooled = (x_control + x_treatment) / (n_control + n_treatment)
    se0 = math.sqrt(pooled * (1 - pooled) * (1 / n_control + 1 / n_treatment))
    diff = p2 - p1
    z = diff / se0 if se0 > 0 else (0.0 if diff == 0 else math.copysign(math.inf, diff))
    se1 = math.sqrt(p1 * (1 - p1) / n_control + p2 * (1 - p2) / n_treatment)
    zc = st.norm.ppf(0.5 + confidence / 2)
    return TestResult(
        statistic=float(z),
        p_value=_p_value(st, st.norm, z, alternative) if math.isfinite(z) else 0.0,
        difference=diff,
        ci=(diff - zc * se1, diff + zc * se1),
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
    """
    _check_alternative(alternative)
    a, b = _summary(control), _summary(treatment)
    if a.n < 2 or b.n < 2:
        raise ValueError("Welch's t-test needs at least two observations per group")
    st = _scipy_stats()
    r = st.ttest_ind_from_stats(
        b.mean, math.sqrt(b.variance), b.n, a.mean, math.sqrt(a.variance), a.n,
        equal_var=False, alternative={"two-sided": "two-sided", "larger": "greater",
                                      "smaller": "less"}[alternative],
    )  # fmt: skip
    va, vb = a.variance / a.n, b.variance / b.n
    se = math.sqrt(va + vb)
    denom = va * va / (a.n - 1) + vb * vb / (b.n - 1)
    df = (va + vb) ** 2 / denom if denom > 0 else float(a.n + b.n - 2)
    diff = b.mean - a.mean
    half = st.t.ppf(0.5 + confidence / 2, df) * se
    return TestResult(
        statistic=float(r.statistic),
        p_value=float(r.pvalue),
        difference=diff,
        ci=(diff - half, diff + half),
        df=float(df),
        method="Welch's t-test",
    )


# p-value below which the sample-ratio check reports a mismatch (see below).
SRM_THRESHOLD = 0.001


def sample_ratio_mismatch(
    observed: Mapping[str, int], split: Mapping[str, float], threshold: float = SRM_THRESHOLD
) -> SRMResult:
    """Chi-square test of assignment counts against the configured split (percent).

    A p-value below ``threshold`` (0.001 by default, the usual choice because the check
    is run often) flags a mismatch: the assignment or the exposure logging is broken
    and the test's results should not be trusted.
    """
    names = [k for k in split if split[k] > 0]
    counts = [int(observed.get(k, 0)) for k in names]
    total = sum(counts)
    weight = sum(float(split[k]) for k in names)
    expected = {k: total * float(split[k]) / weight for k in names}
    if total == 0 or len(names) < 2:
        return SRMResult(0.0, 1.0, expected, dict(zip(names, counts, strict=True)), False)
    st = _scipy_stats()
    r = st.chisquare(counts, [expected[k] for k in names])
    p = float(r.pvalue)
    return SRMResult(
        float(r.statistic), p, expected, dict(zip(names, counts, strict=True)), p < threshold
    )


def _z(st: Any, alpha: float, power: float, two_sided: bool) -> tuple[float, float]:
    if not (0 < alpha < 1 and 0 < power < 1):
        raise ValueError("alpha and power must be within (0, 1)")
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
    p1 = baseline
    p2 = baseline * (1 + mde) if relative else baseline + mde
    if not (0 < p1 < 1 and 0 < p2 < 1) or p1 == p2:
        raise ValueError(f"rates must be within (0, 1) and differ: {p1} -> {p2}")
    st = _scipy_stats()
    za, zb = _z(st, alpha, power, two_sided)
    pbar = (p1 + p2) / 2
    num = za * math.sqrt(2 * pbar * (1 - pbar)) + zb * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))
    return math.ceil(num * num / (p2 - p1) ** 2)


def sample_size_means(
    sd: float, mde: float, *, alpha: float = 0.05, power: float = 0.8, two_sided: bool = True
) -> int:
    """Observations needed per variant to detect a shift ``mde`` in a mean with
    standard deviation ``sd``: ``2 (z_a + z_b)^2 sd^2 / mde^2`` (about ``16 sd^2 / mde^2``
    at alpha 0.05 and power 0.8, Kohavi's rule of thumb)."""
    if sd <= 0 or mde == 0:
        raise ValueError("sd must be > 0 and mde non-zero")
    st = _scipy_stats()
    za, zb = _z(st, alpha, power, two_sided)
    return math.ceil(2 * (za + zb) ** 2 * sd * sd / (mde * mde))
