"""The per-user metric kind answered from running sums (O(1) per call) gives what a pass
over the variant's slots gives, and what NumPy and SciPy give on the per-user totals.

Hypothesis drives random sequences of exposures and events through a real
:class:`MetricsStore`: tracked (``exposed_only``) events held until the exposure,
refunds, huge values that make the store rebase its columns, events without a user id,
``max_users``, and summaries asked for in between (a summary may recount the sums).
Each summary is checked against the pass the store used before (``_per_user_pass``,
kept as the oracle) and, without ``max_users``, against the totals computed here from
the operations (``tests.test_exp_per_user_metric._reference``) and SciPy's Welch test.

The tolerance is the store's stated precision: a value is kept to 2**-27 of itself
(``metrics._REBASE_RATIO``), so a user's total may be off by 2**-27 of the sum of its
values' magnitudes; twice that is allowed (``_margins``), plus 2**-30 of the variance
for the running sums' own rounding (``metrics._ROUNDED_BITS`` keeps it to 2**-33).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from scipy import stats as sst

from cfgcore.experiments import metrics
from cfgcore.experiments.exposures import Exposure
from cfgcore.experiments.metrics import MetricsStore
from cfgcore.experiments.stats import Summary, welch_ttest
from tests.fuzz import examples
from tests.test_exp_per_user_metric import _reference

TEST = "checkout"
VARIANTS = ("control", "treatment")
USERS = st.sampled_from([f"u{i}" for i in range(40)])
VALUES = st.one_of(
    st.integers(-4000, 4000).map(lambda c: c / 4),  # exact: totals exact, zero variance exact
    st.floats(-1e4, 1e4, allow_nan=False),
    st.floats(1e8, 1e40).flatmap(lambda x: st.sampled_from([x, -x])),  # rebases the shift
)
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("expose"), st.sampled_from(VARIANTS), USERS),
        # (variant, user or None, value, tracked: exposed_only)
        st.tuples(
            st.just("event"), st.sampled_from(VARIANTS), st.one_of(st.none(), USERS), VALUES,
            st.booleans(),
        ),
        # a value and its refund (the total back where it was)
        st.tuples(
            st.just("refund"), st.sampled_from(VARIANTS), USERS, VALUES, st.booleans()
        ),
        st.tuples(st.just("check")),
    ),
    min_size=10,
    max_size=150,
)  # fmt: skip


def _expanded(ops: list[tuple]) -> list[tuple]:
    """Refunds as their two events; a tracked event needs a user (the store refuses one
    without, so the reference must not count it)."""
    out: list[tuple] = []
    for op in ops:
        if op[0] == "refund":
            _, v, u, x, tracked = op
            out += [("event", v, u, x, tracked), ("event", v, u, -x, tracked)]
        elif op[0] == "event" and op[2] is None and op[4]:
            out.append((*op[:4], False))
        else:
            out.append(op)
    return out


def _margins(ops: list[tuple], v: str) -> tuple[np.ndarray, np.ndarray]:
    """The exposed users of ``v`` (sorted, as ``_reference``): their totals and the
    bound on each total's error, 2 * 2**-27 of the sum of its values' magnitudes."""
    exposed = sorted({op[2] for op in ops if op[0] == "expose" and op[1] == v})
    sizes = {u: 0.0 for u in exposed}
    for op in ops:
        if op[0] == "event" and op[1] == v and op[2] in sizes:
            sizes[op[2]] += abs(op[3])
    magnitudes = np.array([sizes[u] for u in exposed])
    return magnitudes, 2.0**-26 * magnitudes


def _close(got: Summary, want: Summary, totals: np.ndarray, err: np.ndarray) -> None:
    """``got`` within the stated precision of ``want`` (``totals``: the exact ones)."""
    assert got.n == want.n
    if not got.n:
        return
    mean_tol = float(err.sum()) / got.n + 2.0**-45 * float(np.abs(totals).sum()) + 1e-300
    assert got.mean == pytest.approx(want.mean, rel=0, abs=2 * mean_tol)
    dev = np.abs(totals - totals.mean())
    m2_tol = float((2 * dev * err + err * err).sum()) + 2.0**-30 * want.m2 + 1e-300
    assert got.m2 == pytest.approx(want.m2, rel=0, abs=2 * m2_tol)


def _same_table(got: Summary, want: Summary, sizes: float) -> None:
    """The running sums against the pass over the same columns: only the sums' own
    rounding between them (``sizes``: the magnitudes of the variant's values summed,
    at least those of its exposed users' totals)."""
    assert got.n == want.n
    if not got.n:
        return
    assert got.mean == pytest.approx(want.mean, rel=0, abs=2.0**-40 * sizes / got.n)
    assert got.m2 == pytest.approx(want.m2, rel=2.0**-28, abs=2.0**-80 * sizes**2)


def _run(ops: list[tuple], max_users: int | None, checks: list) -> MetricsStore:
    store = MetricsStore(max_users=max_users)
    done: list[tuple] = []
    for op in ops:
        if op[0] == "expose":
            store.write([Exposure(TEST, op[1], op[2], 0.0)])
        elif op[0] == "event":
            assert store.record(TEST, op[1], "revenue", op[3], op[2], exposed_only=op[4])
        else:
            checks.append((list(done), {v: _both(store, v) for v in VARIANTS}))
            continue
        done.append(op)
    checks.append((list(done), {v: _both(store, v) for v in VARIANTS}))
    return store


def _both(store: MetricsStore, v: str) -> tuple[metrics.PerUser, metrics.PerUser]:
    """The running sums' answer, then the pass's over the same table."""
    fast = store.per_user(TEST, v, "revenue")
    with store._lock:
        users = store._data.get((TEST, v))
        slow = (
            metrics._per_user_pass(users, users.metrics.get("revenue"))
            if users is not None
            else metrics.PerUser(Summary(), 0, 0)
        )
    return fast, slow


@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=OPS, max_users=st.one_of(st.none(), st.integers(1, 45)))
@example(  # a huge first value refunded, then small ones: the rebase recounts the sums
    ops=[("expose", "control", "u0"), ("expose", "control", "u1"),
         ("refund", "control", "u0", 1e17, False), ("event", "control", "u1", 0.245, False),
         ("check",), ("event", "control", "u0", 0.5, True)],
    max_users=None,
)  # fmt: skip
@example(  # totals far from 0 and close together: the summary recentres its sums
    ops=[("expose", "control", f"u{i}") for i in range(6)]
    + [("event", "control", f"u{i}", 1e9 + i / 100, False) for i in range(6)]
    + [("check",), ("event", "control", "u0", 1e9, False)],
    max_users=None,
)
@example(  # the table grows (16 slots, then 32, 64) under a metric and held events
    ops=[("event", "control", f"u{i}", 1.5, i % 3 == 0) for i in range(30)]
    + [("expose", "control", f"u{i}") for i in range(0, 40, 2)]
    + [("event", "control", None, 2.0, False)] * 5,
    max_users=None,
)
@example(  # a total far larger than the others', refunded while they are counted
    ops=[("expose", "control", f"u{i}") for i in range(4)]
    + [("event", "control", f"u{i}", i / 10, False) for i in range(4)]
    + [("refund", "control", "u1", 1.2345678e9, False), ("check",)],
    max_users=None,
)
@example(  # held events merged when their user's exposure arrives
    ops=[("expose", "treatment", f"u{i}") for i in range(10)]
    + [("event", "treatment", f"u{i}", float(i), False) for i in range(10)]
    + [("check",), ("event", "treatment", "u10", 0.5, True),
       ("event", "treatment", "u10", 2.0, True), ("expose", "treatment", "u10")],
    max_users=None,
)  # fmt: skip
@example(  # recounted (centred on the mean), then a user without events exposed
    ops=[("expose", "control", "u0"), ("expose", "control", "u1"),
         ("event", "control", "u0", 5.0, False), ("event", "control", "u1", 7.0, False),
         ("refund", "control", "u0", 3.21e9, False), ("check",),
         ("expose", "control", "u2"), ("check",), ("event", "control", "u2", 1.0, True)],
    max_users=None,
)  # fmt: skip
def test_running_sums_give_the_pass_and_scipy(ops, max_users):
    ops = _expanded(ops)
    checks: list = []
    _run(ops, max_users, checks)
    for done, answers in checks:
        ref = _reference(done) if max_users is None else None
        for v in VARIANTS:
            fast, slow = answers[v]
            assert (fast.events, fast.unexposed) == (slow.events, slow.unexposed)
            every = sum(abs(op[3]) for op in done if op[0] == "event" and op[1] == v)
            _same_table(fast.summary, slow.summary, every)
            sizes, err = _margins(done, v)
            totals = ref[v][0] if ref is not None else None
            if totals is None:
                # max_users: which users count is the pass's to say; each total's error
                # bounded by that of every value of the variant
                n = fast.summary.n
                _close(fast.summary, slow.summary, np.zeros(n), np.full(n, 2.0**-26 * every))
                continue
            _close(fast.summary, slow.summary, totals, err)
            assert (fast.summary.n, fast.events, fast.unexposed) == (len(totals), *ref[v][1:])
            if len(totals):
                exact = Summary(len(totals), float(totals.mean()),
                                float(np.square(totals - totals.mean()).sum()))  # fmt: skip
                _close(fast.summary, exact, totals, err)
        if ref is not None:
            _check_welch(answers, ref, done)


def _check_welch(answers, ref, done) -> None:
    """Welch's test on the running sums' summaries against SciPy's on the totals, where
    the stated precision leaves the statistic meaningful (each group's variance far
    above its error bound)."""
    a, b = answers["control"][0].summary, answers["treatment"][0].summary
    ta, tb = ref["control"][0], ref["treatment"][0]
    if len(ta) < 2 or len(tb) < 2:
        return
    for s, totals, v in ((a, ta, "control"), (b, tb, "treatment")):
        _, err = _margins(done, v)
        dev = np.abs(totals - totals.mean())
        bound = float((2 * dev * err + err * err).sum()) + 2.0**-30 * s.m2
        if not s.m2 > 1e6 * bound + 1e-200:
            return
    got = welch_ttest(a, b)
    want = sst.ttest_ind(tb, ta, equal_var=False)
    assert got.statistic == pytest.approx(float(want.statistic), rel=1e-4, abs=1e-9)
    assert got.p_value == pytest.approx(float(want.pvalue), rel=1e-3, abs=1e-9)


def test_the_summary_reads_the_running_sums_not_the_columns():
    """The sums, not a pass, answer: a table's columns changed behind the store's back
    (no event, no exposure) leave the answer as it was; the pass sees them."""
    store = MetricsStore()
    users = [f"u{i}" for i in range(2000)]
    store.write([Exposure(TEST, "control", u, 0.0) for u in users])
    for i, u in enumerate(users):
        store.record(TEST, "control", "revenue", float(i % 7), u)
    before = store.per_user(TEST, "control", "revenue")
    table = store._data[(TEST, "control")]
    m = table.metrics["revenue"]
    slot = table.slot(metrics._key("u3"), admit=False)
    m.d[slot] += 1000.0  # only the column: what a pass would read
    assert store.per_user(TEST, "control", "revenue") == before
    assert metrics._per_user_pass(table, m).summary.mean == pytest.approx(
        before.summary.mean + 1000.0 / len(users)
    )
    # and a new event moves the sums by exactly that event
    store.record(TEST, "control", "revenue", 7.0, "u5")
    after = store.per_user(TEST, "control", "revenue").summary
    assert after.mean == pytest.approx(before.summary.mean + 7.0 / len(users), rel=1e-12)
    assert math.isfinite(after.m2)
