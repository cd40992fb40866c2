"""Experiment analysis: per-variant results, reports, plots and guardrail checks, on
:mod:`cfgcore.experiments.stats`.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no cross-process lock
    fcntl = None  # type: ignore[assignment]

from cfgcore._layout import BUCKETS
from cfgcore._numbers import finite_number, real_number, shown
from cfgcore._records import split_ends
from cfgcore.errors import printable_name as _shown
from cfgcore.experiments.abtest import METRIC_KINDS, status_of, stored_control
from cfgcore.experiments.metrics import MetricsStore
from cfgcore.experiments.stats import SRM_THRESHOLD
from cfgcore.runtime.atomicio import atomic_write

# --------------------------------------------------------------------------- analysis


@dataclass(frozen=True)
class MetricResult:
    """One metric in one variant, compared with the control.

    ``kind`` is ``"binary"`` (``value`` = conversion rate = ``successes / n``: ``n`` the
    variant's users, exposed or with a metric event that counts, ``successes`` those
    who recorded a non-zero value; a tracking event counts only for a user exposed to
    the test, see :mod:`cfgcore.experiments.metrics`), ``"continuous"`` (``value`` =
    mean per event, ``n`` the users who recorded it: users are the independent units,
    and the interval and tests use the delta method's variance, see
    :func:`cfgcore.experiments.stats.ratio_summary`) or ``"per_user"`` (``value`` = the
    mean over the variant's exposed users of each user's total, 0 for a user without
    an event; ``n`` the exposed users, ``events`` their events; a t interval and
    Welch's t-test on the totals; ``unexposed_users`` the users with events of the
    metric but no logged exposure in the variant, left out: see
    :meth:`cfgcore.experiments.metrics.MetricsStore.per_user`).
    ``difference``, ``statistic`` and ``p_value`` compare with the control (None for
    the control itself or when there is too little data). ``undefined`` says why a
    variant has no test against the control ("" for the control and when it has one):
    too few users in a group, or a continuous or per-user metric that varies in
    neither group (Welch's t-test is then undefined: :data:`cfgcore.experiments.stats.NO_VARIANCE`;
    ``difference`` is still given, its interval, statistic and p-value are None).
    """

    metric: str
    variant: str
    kind: str
    n: int
    value: float
    low: float
    high: float
    successes: int | None = None
    difference: float | None = None
    diff_low: float | None = None
    diff_high: float | None = None
    statistic: float | None = None
    p_value: float | None = None
    method: str = ""
    events: int = 0  # metric events recorded (n counts users)
    undefined: str = ""
    unexposed_users: int = 0  # per_user: users with events but no logged exposure, left out


@dataclass
class ExperimentReport:
    """Analysis of one A/B test (:func:`analyze`)."""

    test: str
    control: str
    variants: list[str]
    split: dict[str, float]
    exposures: dict[str, int]
    srm: Any
    results: list[MetricResult]
    status: str = "active"
    confidence: float = 0.95
    # Lines of the logs read that could not be used (left out): how many, and the
    # first few as "file:line: why".
    unusable_lines: int = 0
    unusable_examples: list[str] = field(default_factory=list)
    # The store's cap on tracked users per test (None: none) and the exposures and
    # metric events of later users it left out (see cfgcore.experiments.metrics).
    max_users: int | None = None
    untracked: int = 0
    # Tracked events (OpenFeature track) of users not exposed when they arrived, left
    # out because max_users such users held events already.
    unheld: int = 0
    # Metric events recorded for variants the test does not have, per variant: left
    # out of every comparison (a record_metric(..., variant=...) naming a wrong one).
    stray_events: dict[str, int] = field(default_factory=dict)
    # Users whose exposures were logged in more than one variant (counted in each):
    # the assignment or its logging is broken, or users share an id.
    exposed_in_several: int = 0
    # Exposures logged in variants the split does not have (the ratio check counts
    # them), per variant; set by analyze(): their users are exposed users of the test.
    other_exposures: dict[str, int] = field(default_factory=dict)
    # Metric events left out as copies of one counted before: the same test, user,
    # metric and event id (cfgcore.experiments.event_ids).
    duplicate_events: int = 0

    @property
    def exposed_users(self) -> int:
        """Distinct users exposed to the test (in any variant, the split's or not): each
        variant's exposed users, a user logged in two variants once. Exact unless some
        user was logged in three or more variants (then an upper bound)."""
        logged = sum(self.exposures.values()) + sum(self.other_exposures.values())
        return max(logged - self.exposed_in_several, 0)

    @property
    def exposed_in_several_share(self) -> float:
        """:attr:`exposed_in_several` as a share of :attr:`exposed_users` (0.0 without
        exposures; a lower bound when some user was logged in three or more variants)."""
        users = self.exposed_users
        return self.exposed_in_several / users if users else 0.0

    def for_metric(self, metric: str) -> list[MetricResult]:
        """The rows of one metric, in variant order."""
        return [r for r in self.results if r.metric == metric]

    def sample_size(self, metric: str, mde: float, *, relative: bool = False) -> int | None:
        """Users (observations) per variant needed to detect a change of ``mde`` in
        ``metric`` from the control's current rate (binary) or standard deviation
        (continuous: of the users' numbers; per_user: of the exposed users' totals, so
        the count is of exposed users), at alpha 0.05 two-sided and power 0.8. None
        when the control gives no baseline (:meth:`no_sample_size` says why); ValueError
        when ``mde`` is no finite non-zero number (a bool or text included:
        :mod:`cfgcore._numbers`)."""
        from cfgcore.experiments import stats

        change = finite_number(mde)  # never a bool or text (cfgcore._numbers)
        if change is None or change == 0:
            raise ValueError(f"mde must be a finite non-zero number, got {shown(mde)}")
        mde = change
        if self.no_sample_size(metric, relative=relative):
            return None
        control = self._control_row(metric)
        assert control is not None  # (no_sample_size says so otherwise)
        if control.kind == "binary":
            return stats.sample_size_proportions(control.value, mde, relative=relative)
        shift = mde * control.value if relative else mde
        if shift == 0:  # (mde * mean underflowed)
            return None
        return stats.sample_size_means(self._control_sd(control), shift)

    def no_sample_size(self, metric: str, *, relative: bool = False) -> str:
        """Why :meth:`sample_size` has no answer for ``metric`` whatever the change
        sought ("" when it has one): no control data, a single user there, a binary
        metric no control user converted on (or every one did: no rate to move from),
        a metric without variance in the control, or (``relative``) a control mean of 0.
        A control with users is never "no data"."""
        control = self._control_row(metric)
        if control is None or control.n == 0:
            return "no control data"
        if control.n < 2:
            return "one user in the control"
        if not math.isfinite(control.value):
            return "no control value"
        if control.kind == "binary":
            if control.value <= 0:
                return "no user converted in the control: a rate of 0 is no baseline"
            if control.value >= 1:
                return "every user converted in the control: a rate of 1 is no baseline"
            return ""
        sd = self._control_sd(control)
        if not (math.isfinite(sd) and sd > 0):
            return "no variance in the control: every user has the same value"
        if relative and control.value == 0:
            return "the control's mean is 0: no relative change of it"
        return ""

    def _control_row(self, metric: str) -> MetricResult | None:
        return next((r for r in self.for_metric(metric) if r.variant == self.control), None)

    def _control_sd(self, control: MetricResult) -> float:
        """The standard deviation of the control's users, given back by its t
        interval's half width."""
        sd = (control.high - control.low) / 2 / _t_quantile(self.confidence, control.n)
        return sd * math.sqrt(control.n)

    def to_text(self) -> str:
        """A plain-text table (what ``cfgcore experiment report`` prints)."""
        pct = round(self.confidence * 100)
        # Names are data (metric names come from the logs, where any text can be
        # written): shown with control and format characters escaped, never raw.
        test, status, control = _shown(self.test), _shown(self.status), _shown(self.control)
        lines = [f"A/B test {test} (status: {status}, control: {control})"]
        lines.append(f"{'variant':<16}{'split %':>9}{'exposed':>10}")
        for v in self.variants:
            shown = _shown(v)
            split = format(self.split.get(v, 0), "g")
            lines.append(_left(shown, 16) + _right(split, 9) + _right(self.exposures.get(v, 0), 10))
        srm = self.srm
        unchecked = _srm_not_made(srm)
        if unchecked:
            lines.append(f"sample ratio check: not made ({unchecked})")
        else:
            verdict = "MISMATCH: do not trust the results" if srm.mismatch else "ok"
            lines.append(
                f"sample ratio check (mismatch if p < {SRM_THRESHOLD:g}): "
                f"chi2={srm.chi2:.3f} p={srm.p_value:.3g} -> {verdict}"
            )
        if self.exposed_in_several:
            # Next to the ratio check, which cannot see them when they balance out.
            lines.append(
                f"WARNING: {self.exposed_in_several} user(s) exposed to more than one "
                f"variant ({_share(self.exposed_in_several_share)} of the "
                f"{self.exposed_users} exposed users), counted in each (a broken "
                "assignment or exposure logging, or users sharing an id): do not trust "
                'the results (docs/experiments.md, "Users in more than one variant")'
            )
        if self.unusable_lines:
            lines.append(
                f"WARNING: {self.unusable_lines} unusable log line(s) left out of these "
                "results, first: " + "; ".join(self.unusable_examples)
            )
        if self.stray_events:
            strays = ", ".join(f"{v!r}: {n}" for v, n in sorted(self.stray_events.items()))
            lines.append(
                f"WARNING: metric events recorded for variants this test does not have, "
                f"left out of these results ({strays})"
            )
        if self.duplicate_events:
            lines.append(
                f"NOTE: {self.duplicate_events} metric event(s) left out as copies of "
                "events counted already (the same user, metric and event id)"
            )
        if self.untracked:
            lines.append(
                f"NOTE: user cap reached: these results cover the test's first "
                f"{self.max_users} users; {self.untracked} exposure(s) and metric "
                "event(s) of later users are left out"
            )
        if self.unheld:
            lines.append(
                f"NOTE: {self.unheld} tracked event(s) of users not exposed yet were left "
                f"out: {self.max_users} such users held events already (max_users); they "
                "count only if those users are exposed"
            )
        metrics = list(dict.fromkeys(r.metric for r in self.results))
        rough = False  # some z-test's p-value rests on fewer than 5 (non-)conversions
        for m in metrics:
            rows = self.for_metric(m)
            base = next((r for r in rows if r.variant == self.control), None)
            lines.append("")
            lines.append(f"metric {_shown(m)} ({rows[0].kind})")
            head = _HEADS.get(rows[0].kind, "mean")
            lines.append(
                f"{'variant':<16}{'n':>8}{head:>10}{f'{pct}% CI':>22}{'diff':>10}"
                f"{f'{pct}% CI of diff':>24}{'p':>10}"
            )
            for r in rows:
                # Undefined numbers (no observations, one value's interval) print as
                # "-", never "nan".
                variant = _shown(r.variant)
                if r.n == 0:
                    lines.append(_left(variant, 16) + _right(r.n, 8) + f"{'-':>10}{'-':>22}")
                    continue
                ci = _interval(r.low, r.high, ".4g")
                diff = "" if r.difference is None else _number(r.difference, "+.4g")
                dci = "" if r.diff_low is None else _interval(r.diff_low, r.diff_high, "+.4g")
                p = "" if r.p_value is None else _number(r.p_value, ".3g")
                if r.undefined and r.difference is not None:
                    dci, p = "-", "-"  # a difference without a test: the note below says why
                if r.p_value is not None and _few_counts(base, r):
                    p, rough = p + "*", True
                value = _number(r.value, ".4g")
                lines.append(
                    _left(variant, 16) + _right(r.n, 8) + _right(value, 10) + _right(ci, 22)
                    + _right(diff, 10) + _right(dci, 24) + _right(p, 10)
                )  # fmt: skip
            for r in rows:
                if r.undefined and r.n:  # (a variant without users says so in its row)
                    lines.append(
                        f"  {_shown(r.variant)}: no test against the control: {r.undefined}"
                    )
            for r in rows:
                if r.unexposed_users:
                    lines.append(
                        f"  NOTE {_shown(r.variant)}: {r.unexposed_users} user(s) with events "
                        "but no logged exposure left out (a per_user metric counts exposed "
                        "users only)"
                    )
        if metrics:
            lines.append("")
            lines.append(
                "n counts users, the unit of analysis (continuous metrics: the mean per "
                "event, with intervals and tests over users by the delta method)."
            )
            if any(r.kind == "per_user" for r in self.results):
                lines.append(
                    "per_user metrics: n counts exposed users; the value is the mean of "
                    "each exposed user's total, 0 for users without an event."
                )
        if rough:
            lines.append(
                "* fewer than 5 users converted, or did not, in the variant or the control: "
                "the z-test's normal approximation is rough there (its p-value may be far "
                "too small; Fisher's exact test is the check)."
            )
        if len(self.variants) > 2 and metrics:
            lines.append(
                "p-values are per comparison with the control (no multiple-testing correction)."
            )
        return "\n".join(lines)

    def _user_cap(self) -> dict[str, Any]:
        cap: dict[str, Any] = {"max_users": self.max_users, "left_out": self.untracked}
        if self.unheld:  # only when some were: the key is new
            cap["tracked_unexposed_left_out"] = self.unheld
        return cap

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (``--json`` in the CLI): strict JSON, with None (null) for
        every number that is undefined or infinite (NaN and Infinity are not JSON):
        the rate, mean and interval of a variant without observations, the interval of
        one value, the infinite t of two groups that do not vary."""
        from dataclasses import asdict

        return _finite_or_none(
            {
                "test": self.test,
                "control": self.control,
                "status": self.status,
                "split": self.split,
                "exposures": self.exposures,
                "srm": {
                    "chi2": self.srm.chi2,
                    "p_value": self.srm.p_value,
                    "mismatch": self.srm.mismatch,
                    "threshold": SRM_THRESHOLD,
                    # False: nothing to compare (no exposures, or one variant served),
                    # whatever chi2 and p say
                    "checked": not _srm_not_made(self.srm),
                },
                "results": [asdict(r) for r in self.results],
                "user_cap": self._user_cap(),
                "stray_events": dict(self.stray_events),
                "exposed_in_several_variants": self.exposed_in_several,
                "exposed_in_several_variants_share": self.exposed_in_several_share,
                "exposed_users": self.exposed_users,
                "duplicate_events": self.duplicate_events,
                "unusable_lines": {
                    "count": self.unusable_lines,
                    "first": list(self.unusable_examples),
                },
            }
        )

    def plot(self, path: str | os.PathLike[str]) -> str:
        """Draw each metric per variant with its confidence interval into ``path`` (PNG,
        SVG or PDF by extension; PNG without one), written atomically; returns ``path``,
        exactly the file written. A directory is refused. Needs matplotlib
        (``pip install 'cfgcore[plot]'``)."""
        try:
            from matplotlib.backends.backend_agg import FigureCanvasAgg
            from matplotlib.figure import Figure
        except ImportError:  # pragma: no cover - depends on the installed extras
            from cfgcore.errors import ConfigError

            raise ConfigError("plotting needs matplotlib: pip install 'cfgcore[plot]'") from None
        metrics = list(dict.fromkeys(r.metric for r in self.results)) or ["(no metrics)"]
        # Figure + Agg canvas directly: no pyplot, so the caller's backend is untouched.
        fig = Figure(figsize=(max(4.0, 1.6 * len(self.variants) + 2), 3.2 * len(metrics)))
        FigureCanvasAgg(fig)
        for i, m in enumerate(metrics):
            ax = fig.add_subplot(len(metrics), 1, i + 1)
            rows = self.for_metric(m)
            xs = list(range(len(rows)))
            vals = [r.value for r in rows]
            lo = [max(0.0, r.value - r.low) if math.isfinite(r.low) else 0.0 for r in rows]
            hi = [max(0.0, r.high - r.value) if math.isfinite(r.high) else 0.0 for r in rows]
            colors = ["#555555" if r.variant == self.control else "#1f77b4" for r in rows]
            for x, v, a, b, c in zip(xs, vals, lo, hi, colors, strict=True):
                ax.errorbar([x], [v], yerr=[[a], [b]], fmt="o", capsize=6, color=c)
            # Each variant's difference from the control and its p-value, beside the point.
            for x, r in zip(xs, rows, strict=True):
                if r.variant == self.control or r.difference is None:
                    continue
                p = "-" if r.p_value is None else f"{r.p_value:.3g}"
                ax.annotate(
                    f"{r.difference:+.3g} vs {_plain(self.control)}\np={p}",
                    (x, r.value),
                    xytext=(10, 0),
                    textcoords="offset points",
                    va="center",
                    fontsize=8,
                )
            ax.set_xticks(xs, [_plain(r.variant) for r in rows])
            ax.margins(x=0.3)  # room for the annotations right of the last point
            kind = rows[0].kind if rows else ""
            label = _LABELS.get(kind, "mean")
            ax.set_ylabel(label)
            ax.set_title(f"{_plain(self.test)}: {_plain(m)} ({round(self.confidence * 100)}% CI)")
            if rows and rows[0].variant == self.control:
                ax.axhline(rows[0].value, color="#999999", linestyle="--", linewidth=0.8)
        fig.tight_layout()
        out = os.fspath(path)
        fmt = _plot_format(out, fig.canvas.get_supported_filetypes())
        buffer = io.BytesIO()
        fig.savefig(buffer, format=fmt)
        try:
            atomic_write(out, buffer.getvalue())
        except OSError as exc:  # no such directory, no permission
            from cfgcore.errors import ConfigError

            reason = exc.strerror or exc
            raise ConfigError(f"cannot write the plot: {reason}", file=out) from None
        return out


def _few_counts(control: MetricResult | None, row: MetricResult) -> bool:
    """Whether a binary comparison rests on fewer than 5 successes or failures in
    either group, where the usual rule (n p >= 5 and n (1 - p) >= 5) says the normal
    approximation of the z-test fails: 0 of 3 against 3 of 3 has a z-test p of 0.014
    and an exact (Fisher) p of 0.1."""
    if row.kind != "binary" or control is None:
        return False
    counts = [(r.successes or 0, r.n) for r in (control, row)]
    return min(min(x, n - x) for x, n in counts) < 5


def _plain(text: Any) -> str:
    """A name as matplotlib draws it literally: each ``$`` escaped (two of them made it
    TeX math, and a metric name such as ``rev $\\frac{$`` failed the whole plot)."""
    return _shown(text).replace("$", r"\$")


def _share(share: float) -> str:
    """A share as a percentage that never rounds a non-zero share to 0 % or a partial
    one to 100 %."""
    pct = share * 100
    if 0 < pct < 0.01:
        return "<0.01%"
    if 99.99 < pct < 100:
        return ">99.99%"
    return f"{pct:.3g}%"


def _srm_not_made(srm: Any) -> str | None:
    """Why the sample-ratio check compared nothing (its chi2 of 0 and p of 1 are then
    no evidence the assignment works: a report printed "ok" for a test that logged no
    exposure at all), or None when it was made."""
    if srm.mismatch:
        return None  # users where the split serves nobody: a certain mismatch
    if not sum(srm.observed.values()):
        return "no exposures logged"
    if len(srm.expected) < 2:
        return "the split serves one variant"
    return None


def _left(text: Any, width: int) -> str:
    """``text`` left-aligned in a column of ``width``, with at least one space after it:
    a long name or number ran into the next column (``3.333e+98[-2.535e+99, ...``)."""
    text = str(text)
    return f"{text:<{width}}" if len(text) < width else text + " "


def _right(text: Any, width: int) -> str:
    """``text`` right-aligned in a column of ``width``, with at least one space before it."""
    text = str(text)
    return f"{text:>{width}}" if len(text) < width else " " + text


def _number(x: float | None, spec: str) -> str:
    return format(x, spec) if x is not None and math.isfinite(x) else "-"


def _interval(low: float | None, high: float | None, spec: str) -> str:
    if low is None or high is None or not (math.isfinite(low) and math.isfinite(high)):
        return "-"
    return f"[{format(low, spec)}, {format(high, spec)}]"


def _finite_or_none(obj: Any) -> Any:
    """``obj`` with every non-finite float replaced by None, in dicts and lists."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite_or_none(v) for v in obj]
    return obj


def _plot_format(out: str, supported: Mapping[str, str]) -> str:
    """The format ``out``'s extension names (PNG without one: the file is written at
    exactly ``out``, where savefig would have appended ``.png``)."""
    from cfgcore.errors import ConfigError

    if out.endswith(("/", os.sep)) or os.path.isdir(out):
        raise ConfigError(
            "is a directory: give the plot's file name (e.g. DIR/report.png)", file=out
        )
    ext = os.path.splitext(out)[1][1:].lower()
    if ext and ext not in supported:
        known = ", ".join(f".{e}" for e in sorted(supported))
        raise ConfigError(f"cannot write the plot: unknown format .{ext} (use {known})", file=out)
    return ext or "png"


def _t_quantile(confidence: float, n: int) -> float:
    from scipy import stats as st

    return float(st.t.ppf(0.5 + confidence / 2, n - 1))


# The value column's head in the text report, and the plot's axis label, per kind.
_HEADS = {"binary": "rate", "continuous": "mean", "per_user": "per user"}
_LABELS = {"binary": "conversion rate", "continuous": "mean", "per_user": "per exposed user"}


def _kind(meta: Mapping[str, Any], store: MetricsStore, test: str, metric: str) -> str:
    """The kind declared in ``metric_types``, else inferred: binary when every value
    is 0 or 1, else continuous (per_user is never inferred: only declared)."""
    kind = (meta.get("metric_types") or {}).get(metric)
    if kind in METRIC_KINDS:
        return str(kind)
    return "binary" if store.is_binary(test, metric) else "continuous"


def _row(
    store: MetricsStore, test: str, variant: str, metric: str, kind: str, confidence: float
) -> tuple[MetricResult, Any]:
    from cfgcore.experiments import stats

    events = store.event_count(test, variant, metric)
    if kind == "binary":
        n, x = _users_converted(store, test, variant, metric)
        if n == 0:
            nothing = MetricResult(
                metric, variant, kind, 0, math.nan, math.nan, math.nan, 0, events=events
            )
            return nothing, (0, 0)
        ci = stats.proportion_ci(x, n, confidence)
        row = MetricResult(metric, variant, kind, n, ci.estimate, ci.low, ci.high, x, events=events)
        return row, (x, n)
    if kind == "per_user":
        pu = store.per_user(test, variant, metric)
        ci = stats.mean_ci(pu.summary, confidence)
        row = MetricResult(
            metric, variant, kind, pu.summary.n, ci.estimate, ci.low, ci.high,
            events=pu.events, unexposed_users=pu.unexposed,
        )  # fmt: skip
        return row, pu.summary
    s = store.summary(test, variant, metric)
    ci = stats.mean_ci(s, confidence)
    return MetricResult(metric, variant, kind, s.n, ci.estimate, ci.low, ci.high, events=events), s


def _users_converted(store: MetricsStore, test: str, variant: str, metric: str) -> tuple[int, int]:
    """A binary metric per user: ``(users, converted users)``, the users of the variant
    (exposed, or with a metric event in it that counts) and those with a non-zero
    value."""
    x = store.conversions(test, variant, metric)
    # Every converted user is one of the variant's users: x <= n by construction.
    return max(store.users(test, variant), x), x


def _observed(
    store: MetricsStore, test: str, variant: str, metric: str, kind: str
) -> tuple[int, float, Any]:
    """``(n, rate or mean, data)`` of one variant, the data as :func:`_row` gives it,
    without the intervals (the guardrail check needs none)."""
    if kind == "binary":
        n, x = _users_converted(store, test, variant, metric)
        return n, (x / n if n else math.nan), (x, n)
    if kind == "per_user":
        s = store.per_user(test, variant, metric).summary
    else:
        s = store.summary(test, variant, metric)
    return s.n, (s.mean if s.n else math.nan), s


def _compare(kind: str, c: Any, v: Any, alternative: str, confidence: float) -> Any:
    from cfgcore.experiments import stats

    if kind == "binary":
        (xc, nc), (xv, nv) = c, v
        if nc == 0 or nv == 0:
            return None
        return stats.two_proportion_ztest(xc, nc, xv, nv, alternative, confidence)
    if c.n < 2 or v.n < 2:
        return None
    return stats.welch_ttest(c, v, alternative, confidence)


def _too_few(kind: str) -> str:
    """Why :func:`_compare` made no test (it needs what it checks for)."""
    if kind == "binary":
        return "no users in the variant or the control"
    if kind == "per_user":
        return "fewer than two exposed users in the variant or the control"
    return "fewer than two users with the metric in the variant or the control"


def served_split(split: Mapping[str, float]) -> dict[str, float]:
    """The percentages the evaluator actually serves for ``split`` (as written, in its
    order): each variant's range of the bucket space, whose ends are the cumulative
    weights rounded to the 0.001 % grid (:func:`cfgcore._records.split_ends`). The
    sample-ratio check compares the exposures with these: a weight of 0.0015 serves
    0.002 %, and one of 0.0004 serves nobody, so the weights as written would make a
    correct assignment look like a mismatch once enough users are counted.

    >>> served_split({"control": 0.0015, "variant": 99.9985})
    {'control': 0.002, 'variant': 99.998}

    A split no flag could serve (weights that do not sum to 100, as the compiler
    requires; a record analysed on its own) is returned as written.
    """
    weights = [float(w) for w in split.values()]
    if not all(w >= 0 and math.isfinite(w) for w in weights) or abs(sum(weights) - 100) > 1e-6:
        return dict(zip(split, weights, strict=True))
    ends = split_ends(weights)
    per_percent = BUCKETS // 100
    served, start = {}, 0
    for name, end in zip(split, ends, strict=True):
        served[name] = (end - start) / per_percent
        start = end
    return served


def analyze(
    test: str, meta: Mapping[str, Any], store: MetricsStore, *, confidence: float = 0.95
) -> ExperimentReport:
    """Per-variant results of ``test`` from its stored record and a metrics store.

    Every metric is analysed per user, the independent unit (a user's events may be
    correlated). Binary metrics: the share of users who converted, with a Wilson
    interval and a two-proportion z-test against the control. Continuous metrics: the
    mean per event with users as the unit (delta method), with a t interval and
    Welch's t-test on the users' numbers. Per-user metrics (declared only): the mean
    over the variant's exposed users of each one's total (0 without an event), with a
    t interval and Welch's t-test on those totals.
    The exposure counts are checked against the split as served (sample ratio
    mismatch, chi-square; :func:`served_split`).
    """
    from cfgcore.experiments import stats

    level = real_number(confidence)  # NumPy scalars, a Decimal too; never a bool or text
    if level is None or not 0 < level < 1:
        # 0 and 1 gave point and infinite intervals, True the infinite ones; others
        # failed deep in SciPy or in arithmetic, naming neither the argument nor the test.
        raise ValueError(f"{test}: confidence must be within (0, 1), got {confidence!r:.60}")
    confidence = level
    split = {str(k): float(v) for k, v in (meta.get("traffic_split") or {}).items()}
    # (the variant a stop serves: the one the others are judged against)
    control = str(stored_control(meta))
    variants = [control, *[v for v in split if v != control]]
    exposures = {v: store.exposed(test, v) for v in variants}
    logged = store.exposures(test)
    metrics = list(
        dict.fromkeys(
            [*meta.get("success_metrics", []), *(meta.get("guardrail_metrics") or {}),
             *store.metrics(test)]
        )
    )  # fmt: skip
    results: list[MetricResult] = []
    skipped = getattr(store, "skipped", None)
    for m in metrics:
        kind = _kind(meta, store, test, m)
        base_row, base = _row(store, test, control, m, kind, confidence)
        results.append(base_row)
        for v in variants[1:]:
            row, data = _row(store, test, v, m, kind, confidence)
            cmp = _compare(kind, base, data, "two-sided", confidence)
            if cmp is None:
                row = MetricResult(**{**row.__dict__, "undefined": _too_few(kind)})
            elif cmp.undefined:
                # (None, not the test's NaN: the plot and callers read None as "none")
                row = MetricResult(
                    **{**row.__dict__, "difference": cmp.difference, "method": cmp.method,
                       "undefined": cmp.undefined}
                )  # fmt: skip
            else:
                row = MetricResult(
                    **{**row.__dict__, "difference": cmp.difference, "diff_low": cmp.ci[0],
                       "diff_high": cmp.ci[1], "statistic": cmp.statistic,
                       "p_value": cmp.p_value, "method": cmp.method}
                )  # fmt: skip
            results.append(row)
    return ExperimentReport(
        test=test,
        control=control,
        variants=variants,
        split=split,
        exposures=exposures,
        # Every variant with exposures: users in one the split does not serve are a
        # mismatch too.
        srm=stats.sample_ratio_mismatch({**logged, **exposures}, served_split(split)),
        results=results,
        status=status_of(meta),
        confidence=confidence,
        unusable_lines=skipped.count if skipped else 0,
        unusable_examples=list(skipped.first) if skipped else [],
        max_users=getattr(store, "max_users", None),
        untracked=getattr(store, "untracked", {}).get(test, 0),
        unheld=getattr(store, "unheld", {}).get(test, 0),
        stray_events=_stray_events(store, test, variants),
        exposed_in_several=_exposed_in_several(store, test),
        other_exposures={v: n for v, n in logged.items() if v not in exposures},
        duplicate_events=getattr(store, "duplicates", {}).get(test, 0),
    )


def _exposed_in_several(store: Any, test: str) -> int:
    several = getattr(store, "exposed_in_several", None)  # a store of another kind
    return int(several(test)) if callable(several) else 0


def _stray_events(store: Any, test: str, variants: list[str]) -> dict[str, int]:
    stray = getattr(store, "stray_events", None)  # a store of another kind has none
    return dict(stray(test, variants)) if callable(stray) else {}


def guardrail_violations(
    test: str,
    meta: Mapping[str, Any],
    store: MetricsStore,
    *,
    alpha: float = 0.01,
    min_samples: int = 100,
) -> list[str]:
    """Guardrail metrics that are significantly worse in some variant than in the
    control, once both have ``min_samples`` users (the unit of analysis).

    Each metric is judged by the statistic the report gives it (its declared or
    inferred kind): a per_user guardrail by the mean per exposed user of the users'
    totals, ``min_samples`` counting exposed users.

    Guardrails are checked again and again while the data grows (every
    ``guardrail_check_every`` events and on demand),
    and a fixed-level test repeated at every look rolls back a harmless variant far
    more often than its level says. So each (variant, metric) comparison is a one-sided
    *always-valid* test (a mixture sequential probability ratio test,
    :func:`cfgcore.experiments.stats.msprt_means` and
    :func:`~cfgcore.experiments.stats.msprt_proportions`), whose p-value falls below a
    level with at most that probability over all looks, however many and whenever
    they happen. Each of the ``K = (variants - 1) x guardrail metrics`` comparisons
    gets ``alpha / K`` (Bonferroni), so the probability that a test with no harmful
    variant is ever rolled back is at most ``alpha`` (under the normal approximation
    of the differences, which the ``min_samples`` floor supports).
    """
    from cfgcore.experiments import stats

    split = meta.get("traffic_split") or {}
    # The variant a rollback serves: a variant worse than it is the harmful one.
    control = str(stored_control(meta))
    guarded = dict(meta.get("guardrail_metrics") or {})
    others = [v for v in split if v != control]
    comparisons = len(others) * len(guarded)
    if comparisons == 0:
        return []
    level = alpha / comparisons
    floor = max(min_samples, 2)  # the test of means needs two values per group
    found = []
    for metric, direction in guarded.items():
        kind = _kind(meta, store, test, metric)
        # "worse" is an increase when lower is better, a decrease otherwise.
        alternative = "larger" if direction == "lower_is_better" else "smaller"
        c_n, c_value, c = _observed(store, test, control, metric, kind)
        if c_n < floor:
            continue
        for v in others:
            v_n, v_value, d = _observed(store, test, v, metric, kind)
            if v_n < floor:
                continue
            if kind == "binary":
                cmp = stats.msprt_proportions(c[0], c[1], d[0], d[1], alternative)
            else:
                cmp = stats.msprt_means(c, d, alternative)
            if cmp.undefined:
                # Neither group varies: no test, so no evidence of harm to roll back on
                # (it was p = 0, a rollback, for two users of 3 against two of 4).
                continue
            if cmp.p_value <= level:
                found.append(
                    f"{metric} worse in {v} ({v_value:.4g} vs {c_value:.4g} in "
                    f"{control}, always-valid p={cmp.p_value:.2g} <= {level:.2g})"
                )
    return found
