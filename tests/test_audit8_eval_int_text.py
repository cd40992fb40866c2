"""Audit 8: an int's bucket text is made only for a value that can be hashed.

An int past a double buckets as its decimal text (``details.int_text``), whose cost
grows faster than its size: 3.8 s for a 3.5-million-digit int. The reference
evaluator made that text for every int it bound, so a huge int in an attribute that
is only compared (``lt``) cost seconds a check where the compiled evaluator, which
makes it only in slots some flag buckets by, answered at once. Both evaluators made it
for every int element of a ``has_any`` array in a bucketed slot, though an element is
never hashed: 20,000 ints of 4,000 digits took 15 s a check. Now the text is made for
the attribute's whole value in a bucketed slot only, on both (counted here through
``int_text``, not timed).
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.engine import engine_class
from tests.fuzz import examples
from tests.texts import any_text

BIG = 10**400 + 7  # past a double: no number, but an id that buckets as its text

DOC = {
    "flags": {
        "small": {"rules": [{"when": {"attr": "n", "lt": 5}, "serve": "on"}], "default": "off"},
        "tagged": {
            "rules": [{"when": {"attr": "tags", "has_any": [5, "x"]}, "serve": "on"}],
            "default": "off",
        },
        # tags is bucketed too: its whole value (an int, a str) would be hashed
        "by_tags": {
            "rules": [{"rollout": 50, "serve": "on"}],
            "bucket_by": ["tags", "user_id"],
            "default": "off",
        },
        "split": {
            "variants": {"a": 1, "b": 2, "c": 3},
            "rules": [{"split": {"a": 33, "b": 33, "c": 34}}],
            "default": "a",
        },
    }
}


@pytest.fixture
def spy(impl, monkeypatch):
    calls: list[int] = []
    real = impl.int_text

    def counting(value):
        calls.append(value)
        return real(value)

    monkeypatch.setattr(impl, "int_text", counting)
    return calls


def test_a_compared_int_gets_no_text(impl, spy):
    engine = engine_class(impl).from_snapshot(DOC)
    assert engine.is_enabled("small", {"n": BIG}) is False
    assert engine.is_enabled("small", engine.context({"n": -BIG})) is False
    assert engine.evaluate_all({"n": BIG})["small"] is False
    assert spy == []


def test_array_elements_get_no_text(impl, spy):
    engine = engine_class(impl).from_snapshot(DOC)
    tags = [BIG, BIG + 1, 5]
    assert engine.is_enabled("tagged", {"tags": tags}) is True
    assert engine.is_enabled("tagged", {"tags": (BIG, "y")}) is False
    everything = engine.evaluate_all(engine.context({"tags": [BIG, "x"]}))
    assert everything["tagged"] is True
    assert spy == []


def test_a_hashed_int_still_buckets_as_its_text(impl, spy):
    engine = engine_class(impl).from_snapshot(DOC)
    for uid in (BIG, -BIG, BIG * 3 + 1):
        assert engine.variant("split", {"user_id": uid}) == engine.variant(
            "split", {"user_id": str(uid)}
        )
        assert engine.evaluate("by_tags", {"tags": uid}) == engine.evaluate(
            "by_tags", {"tags": str(uid)}
        )
    assert sorted(set(spy)) == sorted({BIG, -BIG, BIG * 3 + 1})


@settings(max_examples=examples(60), deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["n", "tags", "user_id"]),
        st.one_of(
            st.integers(),
            st.integers(min_value=2**1030, max_value=2**1100),
            st.lists(
                st.one_of(st.integers(min_value=-(2**1100), max_value=2**1100), any_text()),
                max_size=4,
            ),
            any_text(max_size=4),
        ),
        max_size=3,
    )
)
def test_both_evaluators_agree(ctx):
    from tests.conftest import IMPLS

    if "c" not in IMPLS:
        pytest.skip("the compiled extension is not built")
    engines = [engine_class(IMPLS[k]).from_snapshot(DOC) for k in ("c", "py")]
    got = [
        ([e.evaluate(k, ctx) for k in DOC["flags"]], e.evaluate_all(e.context(ctx)))
        for e in engines
    ]
    assert got[0] == got[1]
