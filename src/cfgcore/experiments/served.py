"""What a flag can serve: a static reading of the compiled tables.

:func:`what_it_serves` walks a flag's compiled records (the tables both evaluators
read, :mod:`cfgcore.compiler`) the way the evaluators do, but over every context at
once: it collects the variants some context could get, now and later without a change
to the flags. A flag that can serve only its on variants is fully rolled out; one that
can serve only off variants is dead; one with a single variant is a constant. This is
what ``cfgcore flags stale`` reports, decided by the flag's semantics, not by its text:
a flag whose rules all serve what its default serves, a 100% or 0% rollout, a
condition the compiler folded to false, a prerequisite that can never hold, a
schedule that has ended.

Conditions are not solved: a rule with a condition may or may not apply (except
conditions that are constant, such as ``all: []``). Bucketing is judged two ways,
because a rollout or split needs a value to bucket by (``user_id`` by default):

* ``identified``: contexts that have a usable value for every bucketing attribute;
  a 100% rollout serves them all. Some imported hash schemes cannot hash every bound
  value (``flagd_v3_cbor`` only hex text, ``flagd_v3`` without salt or suffix and
  ``flagd_v3_pair`` no int outside +-2**64): the evaluators treat such a value as none,
  so those contexts are judged with the ``anyone`` ones, and :attr:`Served.unhashable`
  says which values they are;
* ``anyone``: every context, including those without one (they fall through a
  rollout to the next rule or the default).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone

from cfgcore import _layout as L
from cfgcore.compiler import Tables

__all__ = ["Served", "what_it_serves"]


@dataclass(frozen=True)
class Served:
    """The variants flag ``key`` can serve, and what that makes it.

    ``state`` (judged for ``identified`` contexts): ``"on"`` (every variant it can
    serve is on), ``"off"`` (none is), ``"constant"`` (one variant, not a boolean
    flag) or ``"varies"``. ``variants``: the names it can serve to identified
    contexts; ``for_everyone``: contexts without a bucketing attribute get the same
    state too; ``others``: what only such contexts can get. ``why``: the cause when
    the flag is switched off as a whole (disabled, schedule ended, prerequisite never
    met), else None. ``since``: epoch seconds from which that holds (a schedule's
    end), else None. ``unhashable``: the bound values the flag's hash schemes (its own
    rules' and its prerequisites') cannot hash, which count as no bucketing attribute
    (``"for flagd_v3_cbor, a value that is not hex text"``), else empty.
    """

    key: str
    state: str
    variants: tuple[str, ...]
    for_everyone: bool
    others: tuple[str, ...] = ()
    why: str | None = None
    since: float | None = None
    unhashable: tuple[str, ...] = ()

    def describe(self) -> str:
        """One line: what the flag serves and why."""
        names = ", ".join(repr(v) for v in self.variants)
        if self.why is not None:
            text = f"{self.why}: serves {names} to everyone"
        elif self.state == "on":
            text = f"on for everyone: every path serves {names}"
        elif self.state == "off":
            text = f"off for everyone: every path serves {names}"
        elif self.state == "constant":
            text = f"serves {names} to everyone"
        else:
            text = f"serves {names} depending on the context"
        if self.state != "varies" and not self.for_everyone:
            other = ", ".join(repr(v) for v in self.others)
            if self.unhashable:
                who = "every user with a bucketing attribute its hash scheme can hash"
                also = "; ".join(self.unhashable)
                text = text.replace("everyone", who)
                text += f" (users without one get {other}: no bucketing attribute, or {also})"
            else:
                text = text.replace("everyone", "every user with a bucketing attribute")
                text += f" (users without one get {other})"
        return text


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat(timespec="seconds")


class _Walker:
    """One table set at one moment; memoised per (flag, identified)."""

    def __init__(self, tables: Tables, now: float) -> None:
        self.t = tables
        self.now = now
        self.memo: dict[tuple[int, bool], frozenset[int]] = {}
        self.why: dict[int, tuple[str, float | None]] = {}
        # per flag: the bound values its hash schemes cannot hash (no bucket: the rule
        # or gate does not apply, as without a bucketing attribute)
        self.unhashable: dict[int, set[str]] = {}

    def reach(self, fi: int, ident: bool) -> frozenset[int]:
        found = self.memo.get((fi, ident))
        if found is None:
            found = self.memo[(fi, ident)] = frozenset(self._reach(fi, ident))
        return found

    def _reach(self, fi: int, ident: bool) -> set[int]:
        t = self.t
        base = fi * L.FW
        off = t.flags[base + L.F_OFF]
        if not t.flags[base + L.F_ENABLED]:
            self.why[fi] = ("disabled (enabled: false)", None)
            return {off}
        out: set[int] = set()
        if t.flags[base + L.F_SCHED]:
            start, end = t.sched_start[fi], t.sched_end[fi]
            if self.now >= end:
                self.why[fi] = (f"its schedule ended at {_iso(end)}", end)
                return {off}
            if start > self.now or math.isfinite(end):
                out.add(off)  # off before the window opens or once it closes
        pstart = t.flags[base + L.F_PRE_START]
        for p in range(pstart, pstart + t.flags[base + L.F_PRE_COUNT]):
            target, want = t.prereqs[p * L.PW], t.prereqs[p * L.PW + 1]
            got = self.reach(target, ident)
            self._note(fi, self.unhashable.get(target, ()))
            ok = {v for v in got if self._satisfies(v, want)}
            if not ok:
                self.why[fi] = (f"its prerequisite {t.keys[target]!r} is never met", None)
                return {off}
            if ok != got:
                out.add(off)
        return out | self._rules(fi, ident)

    def _note(self, fi: int, what: Iterable[str]) -> None:
        if what:
            self.unhashable.setdefault(fi, set()).update(what)

    def _satisfies(self, variant: int, want: int) -> bool:
        t = self.t
        if want >= 0:
            return variant == want
        if want == L.P_ON:
            return bool(t.is_true[variant])
        if want == L.P_OFF:
            return not t.is_true[variant]
        k = L.P_SET - want
        return variant in t.ipool[k + 1 : k + 1 + t.ipool[k]]

    def _rules(self, fi: int, ident: bool) -> set[int]:
        """The variants the rules and the default can serve."""
        t = self.t
        base = fi * L.FW
        out: set[int] = set()
        start = t.flags[base + L.F_RULE_START]
        for r in range(start, start + t.flags[base + L.F_RULE_COUNT]):
            rb = r * L.RW
            cond = t.rules[rb + L.R_COND]
            applies = True if cond < 0 else self._constant(cond)
            if applies is False:
                continue
            certain = applies is True
            g0 = t.rules[rb + L.R_GATE_START]
            gcount = t.rules[rb + L.R_GATE_COUNT]
            for h in (*range(g0, g0 + gcount), t.rules[rb + L.R_HASH]):
                if h >= 0:
                    self._note(fi, _cannot_hash(t, h))
            gates = [self._gate(g, ident) for g in range(g0, g0 + gcount)]
            if False in gates:
                continue
            certain = certain and None not in gates
            served, falls = self._rule(rb, ident)
            out |= served
            if certain and not falls:
                return out  # no context gets past this rule
        out.add(t.flags[base + L.F_DEFAULT])
        return out

    def _rule(self, rb: int, ident: bool) -> tuple[set[int], bool]:
        """(variants a matching context can get, whether one can fall through)."""
        t = self.t
        rr = t.rules
        nsplit = rr[rb + L.R_SPLIT_COUNT]
        sp = rr[rb + L.R_SPLIT_START]
        h = rr[rb + L.R_HASH]
        if h >= 0:
            space = t.hashes[h * L.HW + L.H_SPACE]
            served, falls, prev = set(), not ident, 0
            for j in range(sp, sp + nsplit):
                thr, var = t.splits[j * 2], t.splits[j * 2 + 1]
                if min(thr, space) > prev:
                    if var < 0:
                        falls = True  # a gap in the buckets
                    else:
                        served.add(var)
                prev = max(prev, thr)
            return served, falls or prev < space
        thr = rr[rb + L.R_ROLLOUT]
        if thr < 0 and nsplit == 0:
            return {rr[rb + L.R_SERVE]}, False
        falls = not ident  # no value to bucket by: the rule does not apply
        if nsplit == 0:
            if thr <= 0:
                return set(), True
            return {rr[rb + L.R_SERVE]}, falls or thr < L.BUCKETS
        served, prev = set(), 0
        for j in range(sp, sp + nsplit):
            if t.splits[j * 2] > prev:
                served.add(t.splits[j * 2 + 1])
            prev = max(prev, t.splits[j * 2])
        return served, falls

    def _gate(self, g: int, ident: bool) -> bool | None:
        """True: every context passes; False: none does; None: it depends."""
        hs = self.t.hashes
        lo, hi, space = hs[g * L.HW + L.H_LO], hs[g * L.HW + L.H_HI], hs[g * L.HW + L.H_SPACE]
        if hi <= max(lo, 0) or lo >= space:
            return False
        return True if ident and lo <= 0 and hi >= space else None

    def _constant(self, i: int) -> bool | None:
        """A condition's value when it is the same for every context, else None."""
        n = self.t.nodes
        op = n[i * L.NW]
        if op == L.OP_FALSE:
            return False
        if op == L.OP_NOT:
            inner = self._constant(i + 1)
            return None if inner is None else not inner
        if op == L.OP_CALL:  # a shared subtree, stored once
            return self._constant(n[i * L.NW + 2])
        if op not in (L.OP_ALL, L.OP_ANY):
            return None
        decisive = op == L.OP_ANY  # any: one true child decides; all: one false child
        values = []
        child = i + 1
        for _ in range(n[i * L.NW + 2]):
            values.append(self._constant(child))
            child = n[child * L.NW + 5]
        if decisive in values:
            return decisive
        return None if None in values else not decisive


def _cannot_hash(t: Tables, h: int) -> tuple[str, ...]:
    """The bound values hashing record ``h``'s scheme cannot hash (it gives no bucket:
    cfgcore._eval_py.scheme_bucket and its compiled twin), as report text."""
    o = h * L.HW
    scheme = t.hashes[o + L.H_SCHEME]
    if scheme == L.SCHEME_FLAGD_V3_CBOR:
        return ("for flagd_v3_cbor, a value that is not hex text",)
    if scheme == L.SCHEME_FLAGD_V3_PAIR or (
        scheme == L.SCHEME_FLAGD_V3
        and not t.hashes[o + L.H_SALT_LEN]
        and not t.hashes[o + L.H_SUFFIX_LEN]
    ):
        name = "flagd_v3_pair" if scheme == L.SCHEME_FLAGD_V3_PAIR else "flagd_v3"
        return (f"for {name}, an int outside +-2**64 (no CBOR integer holds it)",)
    return ()


def what_it_serves(tables: Tables, now: float) -> dict[str, Served]:
    """:class:`Served` for every flag of ``tables`` at time ``now`` (epoch seconds)."""
    walker = _Walker(tables, now)
    return {key: _served(walker, fi) for fi, key in enumerate(tables.keys)}


def _served(w: _Walker, fi: int) -> Served:
    t = w.t
    ident, anyone = w.reach(fi, True), w.reach(fi, False)
    state = _state(t, fi, ident)
    names = tuple(sorted(t.variant_names[v] for v in ident))
    why, since = w.why.get(fi, (None, None))
    for_everyone = _state(t, fi, anyone) == state and (state != "constant" or anyone == ident)
    others = tuple(sorted(t.variant_names[v] for v in anyone - ident))
    unhashable = tuple(sorted(w.unhashable.get(fi, ())))
    return Served(t.keys[fi], state, names, for_everyone, others, why, since, unhashable)


def _state(t: Tables, fi: int, variants: frozenset[int]) -> str:
    if t.flags[fi * L.FW + L.F_BOOL]:
        if all(t.is_true[v] for v in variants):
            return "on"
        if not any(t.is_true[v] for v in variants):
            return "off"
        return "varies"
    return "constant" if len(variants) == 1 else "varies"
