"""Success-metric events per variant (:class:`MetricsStore`), appended to a JSON-lines
file so that ``cfgcore experiment report`` (another process) can read them, and
summarised in memory, per user, for reports and guardrail checks.

The unit of analysis is the user, not the event
-----------------------------------------------
A user who records a metric several times (a listener logs ``listen_completion_rate``
per track) gives correlated observations: treating each event as independent makes
the standard error too small and the false-positive rate far above alpha. So the
store aggregates per user first (as GrowthBook, Eppo and Statsig do) and compares
users across variants:

- a continuous metric is the mean per event, ``sum of values / number of events``,
  estimated as a ratio of per-user means with its variance from the delta method
  (:func:`cfgcore.experiments.stats.ratio_summary`); with one event per user it is
  exactly the ordinary mean and variance;
- a binary metric is the share of the variant's users (exposed, or with any metric
  event) who recorded a non-zero value at least once;
- a per-user metric (``metric_types={"revenue": "per_user"}``; never inferred) is the
  mean over the variant's *exposed* users of each user's total, ``sum of the user's
  values``, 0 for an exposed user who recorded none: revenue or listening minutes per
  exposed user (:meth:`MetricsStore.per_user`). It is what a variant earns per user it
  was shown to, so a variant where fewer users buy but each spends more is judged on
  both effects at once, where a continuous metric (the mean per event, over users with
  events only) sees the larger baskets and not the lost buyers. Its variance is the
  ordinary sample variance of the totals (the users are the independent units).

Events without a user id are each their own unit (as before: nothing ties them to
another event).

Who a per-user metric counts
----------------------------
Its users are the variant's exposed users, those whose exposure to that variant is
logged (by this process, or in the shared log a report reads), and only their events
count, so the mean is a total over a known population divided by its size:

- a user with events of the metric but no logged exposure (events ingested without
  their exposures, an exposure dropped because its backlog was full) is left out,
  events and all: counted in :attr:`PerUser.unexposed` (the report's
  ``unexposed_users`` and a NOTE), since counting them would add users who are there
  only because they converted;
- an event without a user id is its own unit and never exposed: left out the same way;
- a tracked event (``exposed_only``) counts once its user's exposure arrives, as for
  the other kinds; until then it is held, outside every sum;
- with ``max_users``, the users past the cap are not tracked at all: their exposures
  and events are left out together (:attr:`MetricsStore.untracked`), so the mean is
  that of the first ``max_users`` users; tracked events left out for want of a slot
  (:attr:`MetricsStore.unheld`) are lost for users exposed later, whose totals then
  miss them.
- a user exposed to several variants (a broken assignment) counts in each, with the
  events recorded in each.

Which events count for a test
-----------------------------
An event recorded for a test (``record_metric``: the application names the test, and
the user is assigned and exposed there) counts for it. A tracking event
(``track_metric``, OpenFeature's ``track``) is an event of the application that any
number of tests may measure: it counts for a test only for a user whose exposure to
that test is logged, as experiment platforms attribute events, so a user who never saw
a test adds nothing to it. Such an event is marked ``exposed_only`` in the log and,
until the user's exposure to that variant arrives, held aside in the user's slot
(outside every sum and count: no user of the variant yet); the exposure, read before
or after it, from this process or from the shared log every process appends to,
merges the held events in. A store with ``max_users`` gives held events no user's
place, and holds none for new users once the test is full; it holds events for at
most ``max_users`` users not exposed yet per test (their slots are memory too: a flood
of tracked events from users who never see the test stays bounded), and the tracked
events of further unexposed users are left out, counted in ``unheld`` (they lose
results only if those users are exposed later).

Memory per user
---------------
Each (test, variant) keeps its users in an open-addressing hash table of 64-bit keys
(the user id's ``hash()``, salted per process) in flat arrays, with no Python object
per user: 8 bytes of key and 1 of flags per slot, plus 17 bytes per slot for each
metric recorded in that variant (the user's running sum and event count as doubles,
a converted flag). The table stays between 1/3 and 2/3 full, so one user with one
metric costs 39 to 78 bytes (about 55 on average), each further metric 26 to 51 more.
Two users whose 64-bit hashes collide are merged: with ten million users in a variant
that happens with probability about 3e-6.

The bound on that memory: ``max_users``
---------------------------------------
Unbounded by default (a million users with three metrics is about 130 MB, kept once
for the manager's store and once more for the guardrails' view of the shared logs).
``MetricsStore(max_users=N)`` (``DynamicConfigurationManager(max_tracked_users=N)``)
tracks at most N users per test: the first N to appear (in any variant); exposures and
events of users who appear after that are left out, counted per test in
:attr:`MetricsStore.untracked`, logged once per test, and shown by every report
(:func:`~cfgcore.experiments.analysis.analyze`). The users already tracked keep every
event. The results are then exactly those of the test's first N users. Users appear
with their logged exposure (the default), whose time does not depend on the variant,
so the first N are a random sample of each variant's users and the comparison stays
unbiased (they are the test's early users: a novelty effect weighs more). Without
exposure logging a user appears with a first metric event, and a variant that hastens
it has a slightly larger share among the last users admitted.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import threading
import time
from array import array
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

import msgspec

from cfgcore._numbers import shown, whole_at_least, whole_number
from cfgcore.details import exact_name, metric_value
from cfgcore.errors import printable_name
from cfgcore.experiments.event_ids import (
    EVENT_ID_WINDOW,
    IDS,
    IdSource,
    IdWindow,
    event_id_text,
    event_key,
)
from cfgcore.experiments.stats import Summary, moments_summary

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no cross-process lock
    fcntl = None  # type: ignore[assignment]

from cfgcore.experiments.exposures import (
    MAX_METRIC_VALUE,
    UNTAGGED,
    Exposure,
    ExposureRecord,
    JsonLinesSink,
    LogTail,
    MetricRecord,
    SkippedLines,
    _floored_run,
    cut_logs,
    in_run,
    read_log,
    read_to_cut,
)
from cfgcore.experiments.writer import MAX_PENDING_BYTES, BackgroundWriter

__all__ = ["MAX_METRIC_VALUE", "MetricsStore", "PerUser", "read_metrics"]

log = logging.getLogger("cfgcore.experiments")

#: Seconds a metric writer waits for the exposures accepted before its batch to be
#: written (:meth:`MetricsStore.write_after`) before it writes the batch all the same.
EXPOSURES_FIRST_WAIT = 5.0

# ---------------------------------------------------------------------------- users

#: How many times larger than a new value the shift of a metric's columns may be
#: before the value becomes the shift (:meth:`_Metric.rebase`): ``value - shift`` then
#: keeps all but the last 26 of the value's 53 bits.
_REBASE_RATIO = float(2**26)

_EXPOSED = 1  # flag bit: the user's exposure to this variant was logged
_MEMBER = 2  # flag bit: a user of the variant (exposed, or with an event that counts)


class _Metric:
    """One metric's per-user columns in a :class:`_Users` table, and their running sums.

    Per user (slot): ``d`` the sum of ``value - shift`` over the user's events, ``n``
    the user's event count, ``nz`` whether any value was non-zero. ``shift`` is the
    first value seen (or a later one far smaller in magnitude: :meth:`rebase`): sums
    of shifted values keep the variance's subtraction small (no catastrophic
    cancellation when the mean is far from zero). The running sums
    are over users: ``sum_d`` = sum of d (= sum of shifted values), ``sum_dd`` = sum
    of d^2, ``sum_dn`` = sum of d*n, ``sum_nn`` = sum of n^2.

    For the per-user kind (:meth:`MetricsStore.per_user`), over the users *exposed*
    to the variant (``flags``, the table's flag bytes), each with its total ``t = d +
    shift * n`` (0 without events): ``t_sum`` the sum of ``t - t_mid`` and ``t_sq``
    the sum of ``(t - t_mid)^2``, where ``t_mid`` is their mean when last counted by a
    pass (:meth:`recount`; 0 before), so that the variance ``t_sq - t_sum^2 / n``
    does not cancel when the totals are far from 0 and close together; and over the
    users with events but no exposure, ``u_users`` and ``u_events``. Each event,
    exposure and merge moves them in O(1) (a user's ``t`` computed as a pass over the
    slots computes it); a rebase recounts them in its pass, as does a per-user summary
    that finds the totals drifted far from ``t_mid`` (:func:`_per_user`)."""

    __slots__ = ("d", "n", "nz", "flags", "shift", "users", "events", "converted", "binary",
                 "sum_d", "sum_dd", "sum_dn", "sum_nn", "t_mid", "t_sum", "t_sq",
                 "t_neg", "t_at", "u_users", "u_events")  # fmt: skip

    def __init__(self, capacity: int, shift: float, flags: bytearray) -> None:
        self.d = array("d", bytes(8 * capacity))
        self.n = array("d", bytes(8 * capacity))
        self.nz = bytearray(capacity)
        self.flags = flags  # the table's (_Users.flags): which slots are exposed
        self.shift = shift
        self.users = 0  # users with at least one event
        self.events = 0
        self.converted = 0  # users with a non-zero value
        self.binary = True  # every value was 0 or 1
        self.sum_d = self.sum_dd = self.sum_dn = self.sum_nn = 0.0
        self.t_mid = self.t_sum = self.t_sq = 0.0  # exposed users' totals less t_mid
        self.t_neg = 0.0  # the decreases of t_sq since the last recount, summed
        self.t_at = (-1, -1)  # (events, exposed users) at the last recount
        self.u_users = self.u_events = 0  # users with events, not exposed; their events

    def rebase(self, value: float) -> None:
        """Make ``value`` the shift when ``value - shift`` would lose most of
        ``value``'s digits: a first value far larger than the later ones (a stray 1e17,
        or one refunded) rounded each later small value to nothing, and with it the
        totals of every other user (a per-user metric's mean 0 instead of 0.245). The
        columns and sums are moved to the new shift through each user's total, which
        keeps what they held; this happens at most a few hundred times per metric (the
        shift's magnitude falls by 2**26 each time), and never for values on one scale."""
        if abs(value) * _REBASE_RATIO >= abs(self.shift):
            return  # (value - shift keeps value's digits; a 0 makes the shift 0 once)
        d, n, old = self.d, self.n, self.shift
        try:
            import numpy as np
        except ImportError:  # pragma: no cover - depends on the installed extras
            sum_d = sum_dd = sum_dn = 0.0
            for i in range(len(n)):
                count = n[i]
                if count:
                    di = (d[i] + old * count) - value * count  # through the user's total
                    d[i] = di
                    sum_d += di
                    sum_dd += di * di
                    sum_dn += di * count
        else:  # the same, a pass of array arithmetic (a table of a million users)
            dv, nv = np.frombuffer(d, dtype=np.float64), np.frombuffer(n, dtype=np.float64)
            dv[:] = (dv + old * nv) - value * nv  # (0 where a slot has no event)
            sum_d, sum_dd, sum_dn = float(dv.sum()), float(dv @ dv), float(dv @ nv)
        self.shift = value
        if self.events:  # (held events are outside every sum)
            self.sum_d, self.sum_dd, self.sum_dn = sum_d, sum_dd, sum_dn
            self.recount()

    def add(self, i: int, value: float) -> None:
        """One event of the user in slot ``i``."""
        if abs(value) * _REBASE_RATIO < abs(self.shift):  # (inline: the hot path)
            self.rebase(value)
        shift = self.shift
        dx = value - shift
        d0, n0 = self.d[i], self.n[i]
        d1 = d0 + dx
        n1 = n0 + 1.0
        self.d[i] = d1
        self.n[i] = n1
        if n0 == 0.0:
            self.users += 1
        self.events += 1
        self.sum_d += dx
        self.sum_dd += dx * (d0 + d1)  # d1^2 - d0^2
        self.sum_dn += dx * n0 + d1  # d1 (n0 + 1) - d0 n0
        self.sum_nn += 2.0 * n0 + 1.0  # (n0 + 1)^2 - n0^2
        if self.flags[i] & 1:  # (_EXPOSED) the user's total grows by value: t0 -> t0 + value
            t0 = d0 + shift * n0 - self.t_mid  # (as _per_user_pass computes it)
            self.t_sum += value
            q = value * (t0 + t0 + value)  # (t0 + value)^2 - t0^2
            self.t_sq += q
            if q < 0.0:
                self.t_neg -= q
        else:
            self.u_events += 1
            if n0 == 0.0:
                self.u_users += 1
        if value != 0.0:
            if not self.nz[i]:
                self.nz[i] = 1
                self.converted += 1
            if value != 1.0:
                self.binary = False

    def hold(self, i: int, value: float) -> None:
        """One event of the user in slot ``i`` kept aside, outside every sum: an event
        that counts only once the user's exposure arrives (:meth:`merge` adds them)."""
        self.rebase(value)
        self.d[i] += value - self.shift
        self.n[i] += 1.0
        flag = self.nz[i]
        if value != 0.0:
            flag |= 1 if value == 1.0 else 3  # 2: a value that is not 0 or 1
        self.nz[i] = flag

    def take(self, i: int) -> tuple[float, float, int]:
        """The events held for slot ``i`` as ``(sum of values, count, flags)``, emptied."""
        n = self.n[i]
        total = self.d[i] + self.shift * n
        flag = self.nz[i]
        self.d[i] = self.n[i] = 0.0
        self.nz[i] = 0
        return total, n, flag

    def merge(self, i: int, total: float, count: float, flag: int) -> None:
        """``count`` events summing to ``total`` of the user in slot ``i`` (events that
        were held, :meth:`take`); ``flag`` as :meth:`hold` keeps it. The same sums as
        that many :meth:`add` calls."""
        self.rebase(total / count)
        shift = self.shift
        dx = total - shift * count
        d0, n0 = self.d[i], self.n[i]
        d1, n1 = d0 + dx, n0 + count
        self.d[i] = d1
        self.n[i] = n1
        if n0 == 0.0:
            self.users += 1
        self.events += int(count)
        self.sum_d += dx
        self.sum_dd += d1 * d1 - d0 * d0
        self.sum_dn += d1 * n1 - d0 * n0
        self.sum_nn += n1 * n1 - n0 * n0
        if self.flags[i] & _EXPOSED:
            mid = self.t_mid
            t0, t1 = d0 + shift * n0 - mid, d1 + shift * n1 - mid
            self.t_sum += t1 - t0
            q = (t1 - t0) * (t1 + t0)
            self.t_sq += q
            if q < 0.0:
                self.t_neg -= q
        else:
            self.u_events += int(count)
            if n0 == 0.0:
                self.u_users += 1
        if flag & 1 and not self.nz[i]:
            self.nz[i] = 1
            self.converted += 1
        if flag & 2:
            self.binary = False

    def expose(self, i: int) -> None:
        """The user in slot ``i`` was just exposed (its flag set): its total so far
        joins the exposed users' sums."""
        n = self.n[i]
        t = self.d[i] + self.shift * n - self.t_mid  # (-t_mid for a user without events)
        self.t_sum += t
        self.t_sq += t * t
        if n:
            self.u_users -= 1
            self.u_events -= int(n)

    def recount(self) -> None:
        """Recompute ``t_mid``, ``t_sum`` and ``t_sq`` by a pass over the slots,
        centred on the exposed users' mean total."""
        try:
            import numpy as np
        except ImportError:  # pragma: no cover - depends on the installed extras
            d, n, shift = self.d, self.n, self.shift
            totals = [d[i] + shift * n[i] for i, f in enumerate(self.flags) if f & _EXPOSED]
            self.t_at = (self.events, len(totals))
            mid = math.fsum(totals) / len(totals) if totals else 0.0
            self.t_mid = mid
            self.t_sum = math.fsum(t - mid for t in totals)
            self.t_sq = math.fsum((t - mid) * (t - mid) for t in totals)
            self.t_neg = 0.0
            return
        mask = (np.frombuffer(self.flags, dtype=np.uint8) & _EXPOSED) != 0
        totals = np.frombuffer(self.d, dtype=np.float64)[mask]
        totals += self.shift * np.frombuffer(self.n, dtype=np.float64)[mask]
        self.t_at = (self.events, len(totals))
        mid = float(totals.mean()) if len(totals) else 0.0
        totals -= mid
        self.t_mid, self.t_sum = mid, float(totals.sum())
        self.t_sq, self.t_neg = float(totals @ totals), 0.0

    def summary(self) -> Summary:
        """The per-user summary (see :func:`~cfgcore.experiments.stats.moments_summary`)."""
        return moments_summary(
            self.users, self.events, self.shift, self.sum_d, self.sum_dd, self.sum_dn,
            self.sum_nn,
        )  # fmt: skip


class _Users:
    """The users of one variant of one test: an open-addressing table (linear probing)
    of 64-bit keys in an ``array('q')`` (0: an empty slot), a flag byte per slot, and
    the columns of each metric (:class:`_Metric`), aligned with the slots.

    ``held``: per metric, the events of users not exposed yet that count only once
    they are (tracked events, :meth:`MetricsStore.record` with ``exposed_only``),
    outside every sum. A slot holding only those is no user of the variant yet:
    ``members`` counts the users (exposed, or with an event that counts)."""

    __slots__ = ("keys", "flags", "mask", "used", "members", "exposed", "metrics", "held")

    def __init__(self, capacity: int = 16) -> None:
        self.keys = array("q", bytes(8 * capacity))
        self.flags = bytearray(capacity)
        self.mask = capacity - 1
        self.used = 0  # slots taken
        self.members = 0  # users: exposed, or with a metric event that counts
        self.exposed = 0
        self.metrics: dict[str, _Metric] = {}
        self.held: dict[str, _Metric] = {}

    def slot(self, key: int, admit: bool = True) -> int:
        """The slot of ``key`` (non-zero), taken if it is new (-1 for a new key when
        ``admit`` is false)."""
        keys, mask = self.keys, self.mask
        i = key & mask
        while True:
            k = keys[i]
            if k == key:
                return i
            if k == 0:
                break
            i = (i + 1) & mask
        if not admit:
            return -1
        if 3 * (self.used + 1) > 2 * (mask + 1):
            self._grow()
            return self.slot(key)
        keys[i] = key
        self.used += 1
        return i

    def _grow(self) -> None:
        """Double the table, moving every column along with its key (the running sums
        do not change: the same users, the same values)."""
        capacity = 2 * (self.mask + 1)
        mask = capacity - 1
        keys = array("q", bytes(8 * capacity))
        flags = bytearray(capacity)
        cols = [
            (m, array("d", bytes(8 * capacity)), array("d", bytes(8 * capacity)),
             bytearray(capacity))
            for m in [*self.metrics.values(), *self.held.values()]
        ]  # fmt: skip
        old_flags = self.flags
        for j, key in enumerate(self.keys):
            if key == 0:
                continue
            i = key & mask
            while keys[i] != 0:
                i = (i + 1) & mask
            keys[i] = key
            flags[i] = old_flags[j]
            for m, d, n, nz in cols:
                d[i], n[i], nz[i] = m.d[j], m.n[j], m.nz[j]
        for m, d, n, nz in cols:
            m.d, m.n, m.nz, m.flags = d, n, nz, flags
        self.keys, self.flags, self.mask = keys, flags, mask

    def metric(self, name: str, first: float) -> _Metric:
        m = self.metrics.get(name)
        if m is None:
            m = self.metrics[name] = _Metric(self.mask + 1, first, self.flags)
        return m

    def hold(self, name: str, i: int, value: float) -> None:
        """Keep an event of the (not yet exposed) user in slot ``i`` aside."""
        m = self.held.get(name)
        if m is None:
            m = self.held[name] = _Metric(self.mask + 1, value, self.flags)
        m.hold(i, value)

    def release(self, i: int) -> int:
        """The user in slot ``i`` was exposed: the events held for it count now; how
        many."""
        events = 0
        for name, held in self.held.items():
            if held.n[i]:
                total, count, flag = held.take(i)
                self.metric(name, total / count).merge(i, total, count, flag)
                events += int(count)
        return events


class PerUser(NamedTuple):
    """A per-user metric in one variant (:meth:`MetricsStore.per_user`): ``summary``
    the moments of the exposed users' totals (``n`` exposed users, ``mean`` the total
    per exposed user, 0 for those without an event), ``events`` the events of those
    users, ``unexposed`` the users (and anonymous events) with events of the metric in
    the variant but no logged exposure there, left out."""

    summary: Summary
    events: int
    unexposed: int


#: A per-user summary recounts its running sums (:meth:`_Metric.recount`, one pass
#: over the slots) first when its variance would otherwise keep fewer than about 33
#: of its 53 bits: when ``t_sq - t_sum^2 / n`` would cancel more than 16 of them (the
#: totals drifted 2**8 standard deviations from the sums' centre), or when the sums'
#: rounding, about ``2**-53`` of the sum of the sizes of the changes they added up
#: (``t_sq + 2 * t_neg``), may exceed 2**-33 of it (a user's total that grew 2**10
#: times the totals' spread and was refunded).
_CANCELLED_BITS = 2.0**16
_ROUNDED_BITS = 2.0**20


def _per_user(users: _Users, m: _Metric | None) -> PerUser:
    """The exposed users' totals of ``m`` in ``users`` summarised from the running sums
    ``m`` keeps (:class:`_Metric`): O(1) per call. The same numbers as
    :func:`_per_user_pass` to rounding: the sums are centred on ``m.t_mid``, and when
    they could no longer give the variance to about 2**-33 of itself (see
    ``_ROUNDED_BITS``), one pass over the slots recounts them first; that happens
    again only after the totals drift as far again, or another such refund."""
    exposed = users.exposed
    if m is None:  # no event of the metric in the variant: every exposed user has 0
        return PerUser(Summary(exposed, 0.0, 0.0) if exposed else Summary(), 0, 0)
    unexposed = m.u_users
    if not exposed:
        return PerUser(Summary(), 0, unexposed)
    events = m.events - m.u_events
    if exposed < 2:
        return PerUser(Summary(exposed, m.t_mid + m.t_sum, 0.0), events, unexposed)
    m2 = m.t_sq - m.t_sum * m.t_sum / exposed
    if (
        m2 * _CANCELLED_BITS < m.t_sq or m2 * _ROUNDED_BITS < m.t_sq + 2.0 * m.t_neg
    ) and m.t_at != (m.events, exposed):
        m.recount()  # (not again while nothing changes: totals all equal stay so)
        m2 = m.t_sq - m.t_sum * m.t_sum / exposed
    mean = m.t_mid + m.t_sum / exposed
    return PerUser(Summary(exposed, mean, max(0.0, m2)), events, unexposed)


def _per_user_pass(users: _Users, m: _Metric | None) -> PerUser:
    """:func:`_per_user` by one pass of array arithmetic over the variant's slots, two
    passes over the totals for the variance (as SciPy's t-test computes it): what the
    running sums are checked against (tests; it needs NumPy)."""
    import numpy as np

    exposed = users.exposed
    if m is None:
        return PerUser(Summary(exposed, 0.0, 0.0) if exposed else Summary(), 0, 0)
    mask = (np.frombuffer(users.flags, dtype=np.uint8) & _EXPOSED) != 0
    counts = np.frombuffer(m.n, dtype=np.float64)
    # A user's total from the shifted sum the table keeps: d + shift * n (0 for a user
    # without events, whose d and n are 0).
    totals = np.frombuffer(m.d, dtype=np.float64)[mask] + m.shift * counts[mask]
    events = int(counts[mask].sum())
    unexposed = int(np.count_nonzero(counts[~mask]))
    if not exposed:
        return PerUser(Summary(), 0, unexposed)
    mean = float(totals.mean())
    m2 = float(np.square(totals - mean).sum()) if exposed > 1 else 0.0
    return PerUser(Summary(exposed, mean, m2), events, unexposed)


def in_several(tables: list[_Users]) -> int:
    """How many keys are exposed in more than one of ``tables`` (the variants of one
    test: a table holds each key once): NumPy's when it is installed, else
    :func:`in_several_sets`."""
    try:
        import numpy as np
    except ImportError:  # pragma: no cover - depends on the installed extras
        return in_several_sets(tables)
    keys = np.concatenate([
        np.frombuffer(u.keys, dtype=np.int64)[
            (np.frombuffer(u.flags, dtype=np.uint8) & _EXPOSED) != 0
        ]
        for u in tables
    ])  # fmt: skip
    keys.sort()
    same = keys[1:] == keys[:-1]
    # A key exposed in c tables is a run of c - 1 equal neighbours: count the runs.
    return int(np.count_nonzero(same[1:] & ~same[:-1])) + int(same[:1].sum())


#: A flag byte -> its exposed bit (``bytes.translate`` makes a table's selector).
_EXPOSED_BITS = bytes(i & _EXPOSED for i in range(256))


def in_several_sets(tables: list[_Users]) -> int:
    """:func:`in_several` by set operations on the keys (without NumPy)."""
    seen: set[int] = set()
    several: set[int] = set()
    for u in tables:
        mine = set(itertools.compress(u.keys, u.flags.translate(_EXPOSED_BITS)))
        several |= seen & mine
        seen |= mine
    return len(several)


def _key(user: str) -> int:
    """A user's table key: its hash, never 0 (the empty slot)."""
    return hash(user) or 1


# ---------------------------------------------------------------------------- metrics


def _beyond_bound(value: Any) -> bool:
    """Whether ``value``, which :func:`metric_value` refused, is a finite number beyond
    ``MAX_METRIC_VALUE`` (counted in :attr:`MetricsStore.refused`), not a NaN, an
    infinity or no number at all."""
    try:
        return math.isfinite(float(value))
    except Exception:
        return False


class MetricsStore:
    """Success-metric events per test and variant, summarised per user.

    Every event is appended to ``path`` (JSON lines: ``test, variant, user, metric,
    value, ts``) when a path is given, and summarised in memory per user (see the
    module docstring): :meth:`summary` for continuous metrics, :meth:`conversions`
    and :meth:`users` for binary ones, :meth:`per_user` for per-user ones.
    :meth:`load` rebuilds the summaries from a file, which is what the CLI does.

    Values beyond ``MAX_METRIC_VALUE`` in magnitude (1e100: no real metric comes
    near, and their squares would overflow the variance) are refused: :meth:`record`
    returns False, and events queued by the request path are dropped by the writer
    and counted in :attr:`refused` (never written, never raising).

    ``max_pending`` and ``max_pending_bytes``: the backlog the request path appends to,
    in events and in bytes (an estimate: the characters of the metric's name and the
    user id, and 96 bytes each for the rest); an event past either is dropped, counted
    in :attr:`dropped`, and :meth:`record` returns False.

    ``max_users``: track at most that many users per test (see the module docstring);
    the exposures and events of later users are left out of the summaries (still
    written to the file) and counted per test in :attr:`untracked`.

    Each event's log line carries an ``event_id``: the caller's (:meth:`record`'s
    ``event_id``), else one this store's writer thread makes. An event whose test,
    user, metric and id match one summarised before (a caller's retry, a line read
    twice) is left out and counted per test in :attr:`duplicates`; each test remembers
    its last ``event_id_window`` to twice that many ids (see
    :mod:`cfgcore.experiments.event_ids` for the memory). Ids this store makes are
    unique: they take no place there.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        max_pending: int = 100_000,
        max_pending_bytes: int = MAX_PENDING_BYTES,
        max_users: int | None = None,
        create_dir: bool = True,
        event_id_window: int = EVENT_ID_WINDOW,
    ) -> None:
        # Whole numbers by their value (numpy.int64(5), 5.0), never a bool or text.
        users = None if max_users is None else whole_number(max_users)
        if max_users is not None and (users is None or users < 1):
            raise ValueError(
                f"max_users must be a positive integer or None, not {shown(max_users)}"
            )
        max_users = users
        window = whole_number(event_id_window)
        if window is None or window < 1:
            raise ValueError(
                f"event_id_window must be a positive integer, not {shown(event_id_window)}"
            )
        event_id_window = window
        max_pending = whole_at_least("max_pending", max_pending, 1, "events")
        max_pending_bytes = whole_at_least("max_pending_bytes", max_pending_bytes, 1, "bytes")
        self.event_id_window = event_id_window
        # Per test: the keys of its last events with ids, and the duplicates left out.
        self._ids: dict[str, IdWindow] = {}
        self.duplicates: dict[str, int] = {}
        self.max_users = max_users
        self._tracked: dict[str, int] = {}  # users tracked per test (with max_users)
        # Slots per test of users with held events only (with max_users; at most that).
        self._holding: dict[str, int] = {}
        # Exposures and metric events per test left out of the summaries because their
        # user appeared after the test had max_users users.
        self.untracked: dict[str, int] = {}
        # Tracked events (exposed_only) per test left out because max_users users not
        # exposed yet held events already: they count only if their user is exposed.
        self.unheld: dict[str, int] = {}
        self.path = os.fspath(path) if path is not None else None
        # create_dir=False: see JsonLinesSink (a deployment's directory, never created).
        self._sink = JsonLinesSink(self.path, create_dir=create_dir) if self.path else None
        self._data: dict[tuple[str, str], _Users] = {}
        self._anonymous = itertools.count(1)
        self._lock = threading.Lock()
        self.events = 0
        self.refused = 0  # events whose value was beyond MAX_METRIC_VALUE
        # Unusable lines of the files load() read (None: this store read no file).
        self.skipped: SkippedLines | None = None
        #: ``{log: (file, bytes)}``: where :meth:`load` read each log to (its current
        #: file at the cut and the size it had then; the files rotated before it were
        #: read whole). Empty for a store that read no file.
        self.read_to: dict[str, tuple[str, int]] = {}
        # record() only appends; summaries and the file are updated off the request
        # thread. Every reader flushes first, so it sees every event recorded before it.
        # The backlog: max_pending events, or max_pending_bytes of them (the metric's
        # name and the user id are the text a request gives an event: fields 2 and 4).
        self._writer = BackgroundWriter(
            self._deliver, name="cfgcore-metrics", max_pending=max_pending,
            max_bytes=max_pending_bytes, sized=(2, 4),
        )  # fmt: skip
        self._append = self._writer.append
        # The request path's shortcut to record(): queue(event) takes one event tuple
        # (test, variant, metric, float value, user, ts) for the writer thread; None
        # when this store has no file (call record()).
        self.queue: Any = self._append if self._sink is not None else None
        #: ``{test: lowest stamp}``: as :attr:`ExposureLogger.floors
        #: <cfgcore.experiments.exposures.ExposureLogger.floors>`, for metric events.
        self.floors: dict[str, float] = {}
        #: ``{test: run}``: the run tag of each test's events, as
        #: :attr:`ExposureLogger.runs <cfgcore.experiments.exposures.ExposureLogger.runs>`.
        self.runs: dict[str, float | None] = {}
        # The exposure writer whose records go to their log first (write_after), and
        # its `done` when waiting for it last gave up (-1: it did not).
        self._after: BackgroundWriter | None = None
        self._after_stuck = -1

    @property
    def dropped(self) -> int:
        """Events not recorded because the backlog was full (or after :meth:`close`)."""
        return self._writer.dropped

    def _after_fork_in_child(self) -> None:
        self._lock = threading.Lock()
        # The exposure writer's `done` starts over in the child: the parent's stuck mark
        # (its count when a wait gave up) matched it there, and the worker's metric
        # events were written without waiting for their exposures.
        self._after_stuck = -1
        if self._sink is not None:
            self._sink._after_fork_in_child()

    def _users(self, test: str, variant: str) -> _Users:
        users = self._data.get((test, variant))
        if users is None:
            users = self._data[(test, variant)] = _Users()
        return users

    def _slot(self, test: str, users: _Users, key: int, member: bool = True) -> int:
        """The slot of ``key`` in ``users`` (a variant of ``test``), the user made one
        of the variant's users (``member``: exposed, or with an event that counts) or
        only given a slot (for held events); -1 when it is a new user and ``test`` has
        ``max_users`` already (counted in :attr:`untracked`)."""
        cap = self.max_users
        if cap is None:
            i = users.slot(key)
            if member and not users.flags[i] & _MEMBER:
                users.flags[i] |= _MEMBER
                users.members += 1
            return i
        i = users.slot(key, False)
        if i >= 0 and (not member or users.flags[i] & _MEMBER):
            return i
        if not member:
            # A new user with held events only: no user's place, but a slot all the
            # same. At most max_users of them per test, or a flood of tracked events
            # from users who never see the test would grow the store without bound.
            holding = self._holding.get(test, 0)
            if holding >= cap:
                # Not in untracked: the test's results may still cover all its users
                # (these events count only if their users are ever exposed).
                left_out = self.unheld.get(test, 0)
                self.unheld[test] = left_out + 1
                if not left_out:
                    log.warning(
                        "A/B test %s: %d users hold tracked events without an exposure "
                        "(max_users); tracked events of further unexposed users are "
                        "left out, counted", printable_name(test), cap,
                    )  # fmt: skip
                return -1
            self._holding[test] = holding + 1
            return users.slot(key)
        tracked = self._tracked.get(test, 0)
        if tracked >= cap:
            left_out = self.untracked.get(test, 0)
            self.untracked[test] = left_out + 1
            if not left_out:
                log.warning(
                    "A/B test %s: %d users tracked (max_users); exposures and metric "
                    "events of later users are left out of its results, counted",
                    printable_name(test), cap,
                )  # fmt: skip
            return -1
        self._tracked[test] = tracked + 1
        if i < 0:
            i = users.slot(key)
        else:  # a user who held events only: one of the tracked users now
            self._holding[test] -= 1
        users.flags[i] |= _MEMBER
        users.members += 1
        return i

    def tracked(self, test: str) -> int:
        """Users of ``test`` tracked so far (summed over variants; only counted with
        ``max_users``)."""
        with self._lock:
            return self._tracked.get(test, 0)

    def write(self, batch: Iterable[Exposure]) -> None:
        """Exposure-sink interface: count distinct exposed users per test and variant."""
        with self._lock:
            for e in batch:
                users = self._users(e.test, e.variant)
                user = e.user if type(e.user) is str else str(e.user)
                i = self._slot(e.test, users, _key(user))
                if i < 0:
                    continue
                if not users.flags[i] & _EXPOSED:
                    users.flags[i] |= _EXPOSED
                    users.exposed += 1
                    for m in users.metrics.values():
                        m.expose(i)
                    if users.held:
                        self.events += users.release(i)

    def exposed(self, test: str, variant: str) -> int:
        """Distinct users exposed to ``variant`` of ``test``."""
        with self._lock:
            users = self._data.get((test, variant))
            return users.exposed if users else 0

    def exposures(self, test: str) -> dict[str, int]:
        """``{variant: distinct exposed users}`` of ``test``."""
        with self._lock:
            return {v: u.exposed for (t, v), u in self._data.items() if t == test and u.exposed}

    def exposed_in_several(self, test: str) -> int:
        """Distinct users of ``test`` whose exposures were logged in more than one of its
        variants (any variant, the split's or not). A user keeps one variant of a test
        (a stopped test logs none), so each is a broken assignment or exposure logging,
        or users who share an id: counted in every variant they were logged in, they
        blur the difference. 0 on a healthy test. One sort of the exposed users' keys
        (about 0.1 s per million users with NumPy; set operations without it)."""
        with self._lock:
            tables = [u for (t, _), u in self._data.items() if t == test and u.exposed]
            return in_several(tables) if len(tables) > 1 else 0

    def users(self, test: str, variant: str) -> int:
        """Distinct users of ``variant``: exposed, or with a metric event in it that
        counts (the denominator of a binary metric's rate)."""
        self.flush()
        with self._lock:
            users = self._data.get((test, variant))
            return users.members if users else 0

    def record(
        self,
        test: str,
        variant: str,
        metric: str,
        value: float = 1.0,
        user: str | None = None,
        ts: float | None = None,
        *,
        write: bool = True,
        exposed_only: bool = False,
        event_id: str | None = None,
    ) -> bool:
        """Add one observation of ``metric`` for a user in ``variant`` of ``test``.

        Returns at once: the event is summarised and appended to the file by a
        background thread (readers of this store flush first). False when the backlog
        is full and the event was dropped (counted in :attr:`dropped`), when ``value``
        is not a finite real number (a bool or text is none, :mod:`cfgcore._numbers`;
        NaN or an infinity would poison every running mean it joined) or is beyond
        ``MAX_METRIC_VALUE`` in magnitude, or when ``test``, ``variant`` or ``metric``
        is not a str (or holds a lone surrogate: no file holds it). A ``user`` that is
        not a str is filed as ``str(user)``.

        ``exposed_only``: the event counts only for a user whose exposure to this
        variant of the test is logged (in any process: reports join the logs), whenever
        that exposure arrives; until then it is held aside (see the module docstring).
        Such an event needs a user (False without one: nothing could join it).

        ``event_id``: the application's id of the event (an order number, a message
        id: a str or int of 1 to ``MAX_EVENT_ID`` characters, else False), so that a
        retried call is one event: an event whose test, user, metric and id were
        recorded before is left out, counted in :attr:`duplicates`. Without one, the
        writer gives the event an id of its own.
        """
        t, v, m = exact_name(test), exact_name(variant), exact_name(metric)
        number = metric_value(value)
        eid = None
        if event_id is not None:
            eid = event_id_text(event_id)
            if eid is None:
                return False
        if t is None or v is None or m is None or number is None:
            if number is None and _beyond_bound(value):
                with self._lock:
                    self.refused += 1
            return False  # one bad event must not cost its batch (an unhashable name would)
        if user is not None and type(user) is not str:
            try:
                user = str(user)
            except Exception:  # an id whose __str__ raises: no user
                user = None
        when = time.time() if ts is None else ts
        event: tuple[Any, ...]
        if exposed_only and user is None:
            return False
        run = self.runs.get(t, UNTAGGED)
        if eid is not None:
            event = (t, v, m, number, user, when, exposed_only, run, eid)
        elif run is not UNTAGGED:
            event = (t, v, m, number, user, when, exposed_only, run)
        elif exposed_only:
            event = (t, v, m, number, user, when, True)
        else:
            event = (t, v, m, number, user, when)
        if not write or self._sink is None:
            self._apply([event])
            return True
        return self._append(event)

    def _apply(self, events: list[tuple[Any, ...]]) -> list[int]:
        """Summarise events ``(test, variant, metric, value, user, ts)``; a seventh
        item, true, makes one count only for an exposed user (:meth:`record`); an
        eighth is the event's run tag (:attr:`runs`; written to the log, not judged
        here: readers of the logs choose the run's events before they apply them); a
        ninth, its event id (None: none), makes an event already summarised under the
        same test, user, metric and id a duplicate, left out (:attr:`duplicates`).
        Returns the indexes of the duplicates in ``events``."""
        duplicates: list[int] = []
        with self._lock:
            for n, event in enumerate(events):
                test, variant, metric, value, user = event[:5]
                if len(event) > 8 and event[8] is not None:
                    ids = self._ids.get(test)
                    if ids is None:
                        ids = self._ids[test] = IdWindow(self.event_id_window)
                    if ids.seen(event_key(user, metric, event[8])):
                        self.duplicates[test] = self.duplicates.get(test, 0) + 1
                        duplicates.append(n)
                        continue
                held = len(event) > 6 and event[6]
                users = self._users(test, variant)
                if held:
                    if user is None:
                        continue  # nothing joins it with an exposure
                    key = _key(user if type(user) is str else str(user))
                    i = self._slot(test, users, key, member=False)
                    if i < 0:
                        continue
                    if not users.flags[i] & _EXPOSED:
                        users.hold(metric, i, value)  # counts once the exposure arrives
                        continue
                else:
                    if user is None:  # nothing ties it to another event: its own unit
                        key = _key(f"\0anonymous\0{next(self._anonymous)}")
                    else:
                        key = _key(user if type(user) is str else str(user))
                    i = self._slot(test, users, key)
                    if i < 0:
                        continue
                users.metric(metric, value).add(i, value)
                self.events += 1
        return duplicates

    def write_after(self, exposures: Any) -> None:
        """Write each metric event to the log only once every exposure ``exposures``
        (an :class:`~cfgcore.experiments.exposures.ExposureLogger`) accepted before it
        is written: the metric writer wakes the exposure writer and waits for them, at
        most ``EXPOSURES_FIRST_WAIT`` seconds (an exposure sink that hangs holds the
        metric events back that long once, not for every batch).

        ``record_metric`` exposes the user (once per process) before it records the
        event, but the two logs have a writer thread each: without this the event could
        reach its log first, and a report cut between the two counted the event of a
        user whose exposure it did not have. The manager does this for its logs."""
        self._after = exposures._writer

    def _exposures_first(self) -> None:
        """Deliver the exposures accepted before this batch (see :meth:`write_after`)."""
        writer = self._after
        if writer is None:
            return
        target = writer.appended
        done = writer.done
        if done >= target:
            return  # written already (the usual case: one look at two counters)
        # Stuck since the last wait gave up: no wait again until it moves on (only
        # what can be written without waiting).
        wait = 0.0 if done == self._after_stuck else EXPOSURES_FIRST_WAIT
        if writer.delivered(target, wait):
            self._after_stuck = -1
            return
        stuck, self._after_stuck = self._after_stuck, writer.done
        if stuck >= 0:
            return  # (said when it first got stuck)
        log.warning(
            "%s: exposures not written within %g s (their sink is busy): metric events "
            "written before them", self.path, EXPOSURES_FIRST_WAIT,
        )  # fmt: skip

    def _deliver(self, events: list[tuple[Any, ...]]) -> None:
        if self._sink is not None:
            self._exposures_first()
        # Events queued by the request path (the compiled record_metric checks only
        # that the value is finite): absurd magnitudes are dropped here, counted.
        kept = [e for e in events if -MAX_METRIC_VALUE <= e[3] <= MAX_METRIC_VALUE]
        if len(kept) != len(events):
            with self._lock:
                self.refused += len(events) - len(kept)
            log.warning(
                "%s: %d metric event(s) with a value beyond +-%g left out",
                self.path, len(events) - len(kept), MAX_METRIC_VALUE,
            )  # fmt: skip
        floors = self.floors
        if floors:  # a run's events come after its since (ExposureLogger._deliver)
            kept = [_floored(e, floors) for e in kept]
        # Summarised first: an event whose caller's id was seen before is a duplicate,
        # not written either.
        duplicates = self._apply(kept)
        if duplicates:
            dropped = set(duplicates)
            kept = [e for n, e in enumerate(kept) if n not in dropped]
        if self._sink is not None and kept:
            try:
                self._sink.write([_line(e, IDS) for e in kept])
            except OSError as exc:  # a full disk: counted (lost) and logged by the writer
                self._writer.failed(len(kept), exc, self.path)

    def start(self) -> None:
        """Start the writer thread now (see :meth:`BackgroundWriter.start`)."""
        self._writer.start()

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every recorded event is summarised and written; False on timeout
        (``timeout``: a finite number of seconds >= 0, else ValueError)."""
        return self._writer.flush(timeout)

    def close(self, timeout: float = 5.0) -> bool:
        """Write every pending event and stop the writer thread; False when some were
        still waiting after ``timeout`` (a finite number of seconds >= 0, else
        ValueError and nothing is closed)."""
        return self._writer.close(timeout)

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        exposures: str | os.PathLike[str] | None = None,
        *,
        progress: Callable[[int], None] | None = None,
        max_users: int | None = None,
        since: Mapping[str, float] | None = None,
        runs: Mapping[str, float | None] | None = None,
        journal: str | os.PathLike[str] | None = None,
    ) -> MetricsStore:
        """A store summarising every event of a metrics file and, if given, the exposure
        counts of an exposure log (read-only use: the CLI). ``progress(n)`` is called
        with the running count of events read, exposures first. Lines that cannot be
        used (cut short, not JSON, a field missing or of the wrong type, a value beyond
        ``MAX_METRIC_VALUE``) are left out and counted in :attr:`skipped` with their
        file and line. ``max_users``: as for the constructor. ``since``: ``{test:
        time}``, the records of ``test`` stamped at or before ``time`` are left out (a
        deleted test's under the name of a new one:
        :func:`cfgcore.experiments.abtest.record_cutoffs`). ``runs``: ``{test: run}``
        (:func:`cfgcore.experiments.abtest.record_runs`), the run whose records to read:
        a record tagged with another run is left out, one without a tag is judged by
        the time rule (:func:`~cfgcore.experiments.exposures.in_run`); it takes the
        place of ``since``, which alone names the runs of the tests it lists.

        Logs that services are appending to are read as one cut: both logs as they
        were at one instant, taken under their locks before anything is read
        (:func:`~cfgcore.experiments.exposures.cut_logs`; the ends are in
        :attr:`read_to`), whatever is appended or rotated while they are read.
        ``journal``: the journal of ``cfgcore experiment ingest`` beside the logs (an
        unfinished ingest found at the cut is taken back first, never half read)."""
        store = cls(None, max_users=max_users)
        store.path = os.fspath(path)
        skipped = store.skipped = SkippedLines()
        cut: dict[str, float | None] = dict(runs if runs is not None else since or {})
        seen = 0
        metric_log = LogTail(path, MetricRecord)
        exposure_log = LogTail(exposures, ExposureRecord) if exposures is not None else None
        tails: list[LogTail[Any]] = [t for t in (exposure_log, metric_log) if t is not None]
        try:
            # Both ends at one instant: an exposure log read to its end and a metric
            # log read to a later one counted the metric events of users whose
            # exposures were written in between, without those exposures.
            cut_logs(tails, journal)
            store.read_to = {t.path: t.cut_at for t in tails if t.cut_at is not None}
            if exposure_log is not None:
                # In batches, as the events below: a list of every exposure of the log
                # took about 330 bytes each at its peak (10 GB for 30 million), where
                # the summaries keep about 55 per user.
                batch: list[Exposure] = []
                for e in read_to_cut(exposure_log, skipped):
                    seen += 1
                    if not cut or in_run(e.test, e.run, e.ts, cut):
                        batch.append(Exposure(e.test, e.variant, e.user, e.ts, e.run))
                    if len(batch) >= 4096:
                        store.write(batch)
                        batch = []
                store.write(batch)
                if progress is not None:
                    progress(seen)
            events = []
            for r in read_to_cut(metric_log, skipped):
                seen += 1
                if progress is not None:
                    progress(seen)
                if cut and not in_run(r.test, r.run, r.ts, cut):
                    continue
                # The decoder checked the types and that the value is a finite number
                # within MAX_METRIC_VALUE.
                events.append(
                    (r.test, r.variant, r.metric, r.value, r.user, r.ts or 0.0, r.exposed_only,
                     UNTAGGED, r.event_id)
                )  # fmt: skip
                if len(events) >= 4096:
                    store._apply(events)
                    events = []
            store._apply(events)
        finally:
            for tail in tails:
                tail.close()
        return store

    def metrics(self, test: str) -> list[str]:
        """Metric names seen for ``test``."""
        self.flush()
        with self._lock:
            return sorted({m for (t, _), u in self._data.items() if t == test for m in u.metrics})

    def _metric(self, test: str, variant: str, metric: str) -> _Metric | None:
        users = self._data.get((test, variant))
        return users.metrics.get(metric) if users else None

    def conversions(self, test: str, variant: str, metric: str) -> int:
        """Distinct users with a non-zero value of ``metric`` in ``variant``."""
        self.flush()
        with self._lock:
            m = self._metric(test, variant, metric)
            return m.converted if m else 0

    def summary(self, test: str, variant: str, metric: str) -> Summary:
        """``metric`` in ``variant`` per user: ``n`` the users with an event, ``mean``
        the mean per event, and the variance that makes ``variance / n`` the delta
        method's variance of that mean (the ordinary sample variance when each user
        has one event). See :func:`~cfgcore.experiments.stats.moments_summary`."""
        self.flush()
        with self._lock:
            m = self._metric(test, variant, metric)
            return m.summary() if m else Summary()

    def per_user(self, test: str, variant: str, metric: str) -> PerUser:
        """``metric`` in ``variant`` as a per-user metric: for each user exposed to
        ``variant`` the sum of the user's values (0 without an event), summarised over
        those users (:class:`PerUser`; see "Who a per-user metric counts" in the module
        docstring). Reads running sums over the variant's exposed users, kept as events
        and exposures arrive: O(1) per call, whatever the number of users.

        >>> store = MetricsStore()
        >>> store.write([Exposure("t", "v", u, 0.0) for u in ("a", "b", "c", "d")])
        >>> for user, value in [("a", 10.0), ("a", 5.0), ("b", 9.0)]:
        ...     _ = store.record("t", "v", "revenue", value, user)
        >>> store.per_user("t", "v", "revenue").summary.mean  # (15 + 9 + 0 + 0) / 4
        6.0
        """
        self.flush()
        with self._lock:
            users = self._data.get((test, variant))
            if users is None:
                return PerUser(Summary(), 0, 0)
            return _per_user(users, users.metrics.get(metric))

    def event_count(self, test: str, variant: str, metric: str) -> int:
        """Events of ``metric`` recorded in ``variant``."""
        self.flush()
        with self._lock:
            m = self._metric(test, variant, metric)
            return m.events if m else 0

    def stray_events(self, test: str, variants: Iterable[str]) -> dict[str, int]:
        """``{variant: metric events}`` of ``test`` recorded for variants not among
        ``variants`` (a caller's ``record_metric(..., variant=...)`` naming one the test
        does not have): no comparison counts them."""
        self.flush()
        known = set(variants)
        with self._lock:
            out = {
                v: sum(m.events for m in u.metrics.values())
                for (t, v), u in self._data.items()
                if t == test and v not in known
            }
        return {v: n for v, n in out.items() if n}

    def is_binary(self, test: str, metric: str) -> bool:
        """True if every recorded value of ``metric`` was 0 or 1."""
        self.flush()
        with self._lock:
            return all(
                u.metrics[metric].binary
                for (t, _), u in self._data.items()
                if t == test and metric in u.metrics
            )

    def forget(self, test: str) -> None:
        """Drop the in-memory summaries of ``test`` (the file is kept)."""
        self.flush()
        with self._lock:
            for key in [k for k in self._data if k[0] == test]:
                del self._data[key]
            self._tracked.pop(test, None)
            self._holding.pop(test, None)
            self.untracked.pop(test, None)
            self.unheld.pop(test, None)
            self._ids.pop(test, None)
            self.duplicates.pop(test, None)


def _floored(event: tuple[Any, ...], floors: Mapping[str, float]) -> tuple[Any, ...]:
    """``event`` stamped no earlier than its test's floor (:attr:`MetricsStore.floors`),
    unless it is tagged for another run than the floor's (it keeps its stamp)."""
    low = floors.get(event[0])
    ts = event[5]
    if low is None or (ts is not None and ts >= low):
        return event
    if len(event) > 7 and not _floored_run(event[7], low):
        return event
    return (*event[:5], low, *event[6:])


def _line(event: tuple[Any, ...], ids: IdSource) -> dict[str, Any]:
    """The metric log's record of an event (``exposed_only`` only when set, ``run``
    only when the event has a run tag), with its event id: the caller's, else a new
    one from ``ids``."""
    t, v, m, x, u, ts = event[:6]
    eid = event[8] if len(event) > 8 and event[8] is not None else ids.next()
    line = {"test": t, "variant": v, "user": u, "metric": m, "value": x, "event_id": eid}
    if len(event) > 7 and event[7] is not UNTAGGED:
        line["run"] = event[7]  # (before the time, which ends a line as it always did)
    line["ts"] = ts
    if len(event) > 6 and event[6]:
        line["exposed_only"] = True
    return line


def read_metrics(
    path: str | os.PathLike[str], skipped: SkippedLines | None = None
) -> list[dict[str, Any]]:
    """Every metric event of a metrics file and its rotated predecessors; unusable
    lines are counted in ``skipped`` (:func:`~cfgcore.experiments.exposures.read_log`)."""
    return [
        {
            k: v
            for k, v in msgspec.structs.asdict(r).items()
            if v is not UNTAGGED and (v is not None or k != "event_id")
        }
        for r in read_log(path, MetricRecord, skipped)
    ]
