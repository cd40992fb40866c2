"""The A/B test judges of a document that goes live stay linear in its rules.

``rules_ahead_of_split`` (the warning of a rule placed ahead of a running test's split)
matched each rule of the new document against every rule the old one had ahead of the
split with :func:`cfgcore.snapshot.same` (two encodes per comparison), and the judge of
later splits (``moved_users``) did the same for each split past the first: quadratic in
the rules of the test's flag. Both run inside the flag set's swap, on every document
that goes live: a test's flag with 5,000 per-user rules ahead of its split, all edited
at once, took 24 s to judge (the compiler takes 0.1 s for it), and one with 3,000
conditional splits 4 s on every write, even when none of them changed. Each rule is
now looked up once by its encoded bytes (:class:`cfgcore.snapshot.SameSet`). And the
warnings were placed on the audit events of their flags by looking through the events
for each warning (25 s for 5,000 warnings on a change of 5,000 flags, inside the swap
too); each is now found by its key path.

No clock here (the suite runs on shared, noisy machines): the judges' work is counted
as the bytes they encode to compare values as stored (``cfgcore.snapshot._SAME``, what
:func:`cfgcore.snapshot.same` and :class:`~cfgcore.snapshot.SameSet` encode with),
bounded by a small multiple of the documents' own encoded size. The pairwise judges
encoded each rule once per rule it was compared with: thousands of times that size.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator

import msgspec
import pytest

from cfgcore.errors import Problem
from cfgcore.experiments.abtest import judge_rules_ahead, moved_users, rules_ahead_of_split
from cfgcore.experiments.features import with_warnings
from cfgcore.runtime.atomicio import atomic_write
from cfgcore.runtime.events import ConfigChangeEvent
from cfgcore.runtime.flags import derive
from cfgcore.snapshot import (
    Condition,
    Flag,
    Rule,
    SameSet,
    Snapshot,
    encode_snapshot,
    format_for,
    load_snapshot,
)
from tests.ab_tests import yaml_manager_with_test

TEST = "checkout"
# Encoded bytes a judge may compare, per encoded byte of the documents it judges: far
# above what a linear judge needs (each value encoded a few times), far below the
# pairwise judges (each rule encoded once per rule: thousands of times).
PER_BYTE = 20


class _CountingEncoder:
    """``snapshot._SAME`` counting what it encodes."""

    def __init__(self, inner: msgspec.msgpack.Encoder) -> None:
        self.inner = inner
        self.encoded = 0

    def encode(self, value: object) -> bytes:
        out = self.inner.encode(value)
        self.encoded += len(out)
        return out


@pytest.fixture
def compared(monkeypatch) -> Iterator[_CountingEncoder]:
    """The bytes encoded to compare values as stored, from here on."""
    import cfgcore.snapshot as snapshot

    counting = _CountingEncoder(snapshot._SAME)
    monkeypatch.setattr(snapshot, "_SAME", counting)
    yield counting


def _size(*snaps: Snapshot) -> int:
    return sum(len(msgspec.msgpack.encode(s)) for s in snaps)


pytestmark = pytest.mark.usefixtures("private_state")


def _with_rules(snap: Snapshot, rules: list[Rule]) -> Snapshot:
    flag = msgspec.structs.replace(snap.flags[TEST], rules=rules)
    return msgspec.structs.replace(snap, flags={**snap.flags, TEST: flag})


def _per_user(snap: Snapshot, n: int, attr: str) -> Snapshot:
    """``n`` per-user rules ahead of the test's split."""
    ahead = [Rule(when=Condition(attr=attr, eq=f"u{i}"), serve="control") for i in range(n)]
    return _with_rules(snap, [*ahead, *snap.flags[TEST].rules])


@pytest.fixture
def served(tmp_path, impl):
    m = yaml_manager_with_test(tmp_path, impl)
    snap = load_snapshot(m.flags_file)
    yield m, snap
    m.close()


def test_rules_ahead_of_a_split_judged_in_linear_time(served, compared):
    _, snap = served
    n = 5000
    old, new = _per_user(snap, n, "user_id"), _per_user(snap, n, "account")
    compared.encoded = 0
    found = rules_ahead_of_split(old, new, time.time(), "flags.yaml")
    work = compared.encoded / _size(old, new)
    assert work < PER_BYTE, f"{work:.0f} bytes compared per byte to judge {n} rules ahead"
    # Still right: every edited rule told once at its own path, an unchanged one not.
    assert [p.path for p in found] == [f"flags.{TEST}.rules[{i}]" for i in range(n)]
    assert rules_ahead_of_split(old, old, time.time(), "flags.yaml") == []
    # One rule edited among thousands as they were: that one alone.
    one = list(old.flags[TEST].rules)
    one[1234] = Rule(when=Condition(attr="user_id", eq="someone"), serve="control")
    found = rules_ahead_of_split(old, _with_rules(old, one), time.time(), "flags.yaml")
    assert [p.path for p in found] == [f"flags.{TEST}.rules[1234]"]


def test_later_splits_judged_in_linear_time(served, compared):
    _, snap = served
    n = 4000
    split = snap.flags[TEST].rules[0]
    conditional = [
        msgspec.structs.replace(split, when=Condition(attr="user_id", eq=f"u{i}")) for i in range(n)
    ]
    old = _with_rules(snap, [*conditional, split])
    extra = Rule(when=Condition(attr="plan", eq="pro"), serve="control")
    new = _with_rules(snap, [*conditional, extra, split])
    compared.encoded = 0
    problems = moved_users(derive(old), derive(new), time.time(), "flags.yaml")
    work = compared.encoded / _size(old, new)
    assert work < PER_BYTE, f"{work:.0f} bytes compared per byte to judge {n} splits"
    assert problems == []  # (the same splits, the same weights: nobody moves)
    # A later split that moves users is still found among them.
    moved = list(conditional)
    moved[2500] = msgspec.structs.replace(moved[2500], split={"control": 20, "green": 80})
    problems = moved_users(derive(old), derive(_with_rules(snap, [*moved, split])),
                           time.time(), "flags.yaml")  # fmt: skip
    assert problems and "rules[2500]" in str(problems)


def test_a_swap_of_thousands_of_rules_ahead_is_not_held_up(served, compared):
    m, snap = served
    n = 4000
    fmt = format_for(m.flags_file)
    old, new = _per_user(snap, n, "user_id"), _per_user(snap, n, "account")
    atomic_write(m.flags_file, encode_snapshot(old, fmt))
    assert m.reload(), m.last_error
    atomic_write(m.flags_file, encode_snapshot(new, fmt))
    compared.encoded = 0
    assert m.reload(), m.last_error
    work = compared.encoded / _size(old, new)
    assert work < PER_BYTE, f"{work:.0f} bytes compared per byte to take {n} edited rules"
    assert m.is_feature_enabled(TEST, {"user_id": "x", "account": "u7"}) is not None


def test_same_set_compares_as_same_does():
    kept = SameSet([1, 1, {"a": 1}, Rule(serve=True)])
    assert 1.0 not in kept and True not in kept  # (1, 1.0 and True serve differently)
    assert Rule(serve=True) in kept and Rule(serve=1) not in kept
    assert kept.take(1) and kept.take(1) and not kept.take(1)  # a multiset
    assert kept.take({"a": 1}) and {"a": 1} not in kept
    odd = object()  # not encodable: compared by identity and type, as same() does
    other = SameSet([odd])
    assert odd in other and object() not in other
    assert other.take(odd) and not other.take(odd)


def _event(path: str) -> ConfigChangeEvent:
    return ConfigChangeEvent(path, 1, 2, "file", 3, 0.0, kind="flags")


class _CountingPath(str):
    """An event's key path counting the comparisons made with it."""

    uses = 0

    def startswith(self, *args: object) -> bool:  # type: ignore[override]
        _CountingPath.uses += 1
        return super().startswith(*args)  # type: ignore[arg-type]

    def __eq__(self, other: object) -> bool:
        _CountingPath.uses += 1
        return super().__eq__(other)

    __hash__ = str.__hash__


def test_warnings_placed_on_their_events_in_linear_time():
    events = [_event(f"flags.f{i}") for i in range(5000)] + [_event(f"flags.{TEST}")]
    events = [dataclasses.replace(e, config_path=_CountingPath(e.config_path)) for e in events]
    warnings = [Problem(path=f"flags.{TEST}.rules[{j}]", message="m") for j in range(5000)]
    _CountingPath.uses = 0
    out, left = with_warnings(events, warnings)
    # Each event's path looked at a few times, not once per warning (25 million).
    assert _CountingPath.uses < 4 * len(events), _CountingPath.uses
    assert left == [] and len(out[-1].warnings) == 5000
    assert all(not e.warnings for e in out[:-1])


def test_warnings_go_to_the_event_of_their_flag():
    events = [_event("flags.a"), _event('flags["a.b"]'), _event("flags.ab"), _event("other.x")]
    warnings = [
        Problem(path='flags["a.b"].rules[1]', message="quoted"),
        Problem(path="flags.ab.prerequisites[0]", message="not under a"),
        Problem(path="flags.a.rules[0]", message="a"),
        Problem(path="flags.a", message="a itself"),
        Problem(path="flags.unchanged.rules[0]", message="elsewhere"),
    ]
    out, left = with_warnings(events, warnings)
    said = [[w.split(": ", 1)[-1] for w in e.warnings] for e in out]
    assert said == [["a", "a itself", "elsewhere"], ["quoted"], ["not under a"], []]
    assert left == []
    out, left = with_warnings(events, warnings, rest=False)
    assert [p.message for p in left] == ["elsewhere"]
    assert out[0].warnings == tuple(str(w) for w in warnings[2:4])


def _decoded(snap: Snapshot) -> Snapshot:
    """``snap`` as a store or file gives it: every flag and segment a new object."""
    return msgspec.msgpack.decode(msgspec.msgpack.encode(snap), type=Snapshot)


def _reading(snap: Snapshot, n: int, when) -> Snapshot:
    """``n`` rules ahead of the test's split, rule ``i`` reading ``when`` and country ``ci``."""
    ahead = [
        Rule(when=Condition(all=[when, Condition(attr="country", eq=f"c{i}")]), serve="control")
        for i in range(n)
    ]
    return _with_rules(snap, [*ahead, *snap.flags[TEST].rules])


def test_kept_rules_reading_a_large_flag_compare_it_once(served, compared):
    _, snap = served
    n, size = 3000, 4000
    big = Flag(
        rules=[Rule(when=Condition(attr="user_id", eq=f"u{i}"), serve="on") for i in range(size)],
        default="off",
    )
    old = _reading(snap, n, Condition(prerequisite="big"))
    old = msgspec.structs.replace(old, flags={**old.flags, "big": big, "other": Flag(default="x")})
    # Another flag changed: every rule ahead kept, the flag they read as it was.
    new = _decoded(msgspec.structs.replace(old, flags={**old.flags, "other": Flag(default="y")}))
    compared.encoded = 0
    assert rules_ahead_of_split(old, new, time.time(), "flags.yaml") == []
    work = compared.encoded / _size(old, new)
    assert work < PER_BYTE, f"{work:.0f} bytes compared per byte: {n} rules reading a flag"
    # The flag they read changed: each is told, naming it.
    wider = msgspec.structs.replace(big, default="on")
    new = _decoded(msgspec.structs.replace(old, flags={**old.flags, "big": wider}))
    found = rules_ahead_of_split(old, new, time.time(), "flags.yaml")
    assert len(found) == n and all("reads flag 'big'" in p.message for p in found)


def test_kept_rules_using_a_chain_of_segments_walk_it_once(served, compared):
    _, snap = served
    n, depth = 3000, 100
    segments = {
        f"s{k}": Condition(
            all=[
                Condition(segment=f"s{k + 1}"),
                *(Condition(attr="x", eq=f"v{j}") for j in range(10)),
            ]
        )
        for k in range(depth)
    }
    segments[f"s{depth}"] = Condition(attr="y", eq="1")
    old = _reading(snap, n, Condition(segment="s0"))
    old = msgspec.structs.replace(
        old, flags={**old.flags, "other": Flag(default="x")}, segments=segments
    )
    new = _decoded(msgspec.structs.replace(old, flags={**old.flags, "other": Flag(default="y")}))
    compared.encoded = 0
    assert rules_ahead_of_split(old, new, time.time(), "flags.yaml") == []
    work = compared.encoded / _size(old, new)
    assert work < PER_BYTE, f"{work:.0f} bytes compared per byte: {n} rules using segments"
    # A segment deep in the chain changed: each rule is told, naming that one.
    changed = {**segments, "s57": Condition(attr="x", eq="other")}
    new = _decoded(msgspec.structs.replace(old, segments=changed))
    found = rules_ahead_of_split(old, new, time.time(), "flags.yaml")
    assert len(found) == n
    assert all("its condition reads segment 's57', which" in p.message for p in found)


def test_a_process_judging_every_standing_rule_ahead_stays_linear(served, compared):
    """The flag set judges every rule ahead of a running split on each swap (each
    logged once per process, the first time it stands: ``judge_rules_ahead`` with
    ``standing``): thousands of kept rules reading one large flag, or a chain of
    segments, still encode each flag and segment a few times, not once per rule."""
    _, snap = served
    n, size, depth = 3000, 4000, 100
    big = Flag(
        rules=[Rule(when=Condition(attr="user_id", eq=f"u{i}"), serve="on") for i in range(size)],
        default="off",
    )
    segments = {
        f"s{k}": Condition(all=[Condition(segment=f"s{k + 1}"), Condition(attr="x", eq=f"v{k}")])
        for k in range(depth)
    }
    segments[f"s{depth}"] = Condition(prerequisite="big")
    old = _reading(snap, n, Condition(segment="s0"))
    old = msgspec.structs.replace(
        old, flags={**old.flags, "big": big, "other": Flag(default="x")}, segments=segments
    )
    new = _decoded(msgspec.structs.replace(old, flags={**old.flags, "other": Flag(default="y")}))
    for before in (old, None):  # a swap, and a first load
        compared.encoded = 0
        found = judge_rules_ahead(before, new, time.time(), "flags.yaml", standing=True)
        work = compared.encoded / _size(old, new)
        assert work < PER_BYTE, f"{work:.0f} bytes compared per byte: {n} standing rules"
        assert len(found) == n and len({f.key for f in found}) == n
        assert all(f.changed is (before is None) for f in found)
    # The flag they read (through the segments) changed: every situation is another.
    wider = _decoded(msgspec.structs.replace(new, flags={**new.flags, "big": Flag(default="on")}))
    keys = {f.key for f in judge_rules_ahead(new, wider, time.time(), standing=True)}
    assert keys.isdisjoint(f.key for f in found) and len(keys) == n
