"""One flag evaluation hashes a value once per distinct hash, on both evaluators.

The rules of a flag mostly hash the same value (the flag's ``bucket_by``; an imported
flag's hashing records, one per rule or gate), and each hash walks the whole value:
1,000 rollout rules over a 100 KB id took 43 ms a check compiled (60 ms for a GrowthBook
import), 22 s in the reference evaluator. Both now remember the buckets one evaluation
computed. These tests check that remembering never changes an answer: rules and gates
that differ in any part of their hash (scheme, seed, salt, suffix, space, attribute)
still get their own bucket, on both evaluators alike.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.engine import engine_class
from cfgcore.snapshot import Flag, Gate, Hashing, Rule, Snapshot
from tests.conftest import IMPLS
from tests.fuzz import examples

ENGINES = [engine_class(module) for module in IMPLS.values()]
SCHEMES = ["murmur3", "flagd_v2", "growthbook_v1", "growthbook_v2"]

hashing = st.builds(
    Hashing,
    scheme=st.sampled_from(SCHEMES),
    by=st.sampled_from([["a"], ["b"], ["a", "b"], ["b", "a"]]),
    salt=st.sampled_from(["", "s", "t", "st"]),
    suffix=st.sampled_from(["", "x", "y"]),
    seed=st.sampled_from([0, 1, 86028157]),
    space=st.sampled_from([2, 3, 100]),
)


@st.composite
def rule(draw):
    gates = draw(st.lists(st.builds(lambda h, lo: Gate(hash=h, lo=lo, hi=lo + 1),
                                    hashing, st.integers(0, 1)), max_size=2))  # fmt: skip
    kind = draw(st.sampled_from(["rollout", "split", "hash"]))
    if kind == "hash":
        h = draw(hashing)
        buckets = [("on", 1), (None, 1), ("off", h.space - 2)] if h.space > 2 else [("on", 1)]
        return Rule(hash=h, buckets=buckets, gates=gates)
    by = draw(st.sampled_from([None, ["a"], ["b"], ["b", "a"]]))
    if kind == "rollout":
        return Rule(serve="on", rollout=draw(st.sampled_from([10, 50, 90])), bucket_by=by,
                    gates=gates)  # fmt: skip
    return Rule(split={"on": 50, "off": 50}, bucket_by=by, gates=gates)


values = st.one_of(st.none(), st.sampled_from(["u1", "u2", "é", "x" * 300]), st.integers(-5, 10**6))


@given(
    st.lists(rule(), min_size=1, max_size=8),
    st.sampled_from([["a"], ["b"], ["a", "b"]]),
    st.dictionaries(st.sampled_from(["a", "b"]), values, max_size=2),
)
@settings(max_examples=examples(400), deadline=None)
def test_both_evaluators_answer_alike_whatever_the_rules_share(rules, bucket_by, ctx):
    snap = Snapshot(flags={"f": Flag(default="none", bucket_by=bucket_by, rules=rules,
                                     variants={"on": 1, "off": 0, "none": -1})})  # fmt: skip
    answers = []
    for cls in ENGINES:
        engine = cls.from_snapshot(snap)
        d = engine.evaluate("f", ctx)
        answers.append((d.variant, d.value, d.reason, d.rule_index))
    assert all(a == answers[0] for a in answers), answers


def test_each_rule_keeps_its_own_hash_when_only_its_salt_differs():
    # Two records alike but for the salt: the second must not reuse the first's bucket.
    # Over 200 users the two rules' answers differ for some (they would agree for all
    # if the second read the first's bucket).
    rules = [
        Rule(hash=Hashing(scheme="murmur3", by=["a"], salt=salt, space=2), buckets=[("on", 1)])
        for salt in ("one:", "two:")
    ]
    for cls in ENGINES:
        first = cls.from_snapshot(Snapshot(flags={"f": Flag(default="off", rules=rules[:1])}))
        second = cls.from_snapshot(Snapshot(flags={"f": Flag(default="off", rules=rules[1:])}))
        both = cls.from_snapshot(Snapshot(flags={"f": Flag(default="off", rules=rules)}))
        users = [{"a": f"user-{i}"} for i in range(200)]
        a = [first.is_enabled("f", u) for u in users]
        b = [second.is_enabled("f", u) for u in users]
        assert a != b  # the salts do put users in different buckets
        either = [x or y for x, y in zip(a, b, strict=True)]
        assert [both.is_enabled("f", u) for u in users] == either
