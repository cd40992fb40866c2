"""The count of users exposed to more than one variant of a test
(``MetricsStore.exposed_in_several``, the report's ``exposed_in_several``): one sort of
the exposed users' keys (NumPy) or set operations on them, where it was a walk over
every exposed user looking each up in the other variants (about 3 s per million users
on a shared 2-core machine, now about 0.05 s). The count must be the walk's, whatever
the exposures: hypothesis against the walk, both implementations, and the users of
the input themselves."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.experiments.exposures import Exposure
from cfgcore.experiments.metrics import (
    _EXPOSED,
    MetricsStore,
    in_several,
    in_several_sets,
)
from tests.fuzz import examples

VARIANTS = ["control", "green", "blue", "stray"]


def _walk(store, test):
    """The count as the store made it before: each exposed user of a variant looked up
    in the later variants, counted once (not if an earlier variant holds it)."""

    def there(users, key):
        i = users.slot(key, admit=False)
        return i >= 0 and bool(users.flags[i] & _EXPOSED)

    tables = [u for (t, _), u in store._data.items() if t == test and u.exposed]
    several = 0
    for i, users in enumerate(tables):
        for j, key in enumerate(users.keys):
            if not key or not users.flags[j] & _EXPOSED:
                continue
            if any(there(o, key) for o in tables[i + 1 :]) and not any(
                there(b, key) for b in tables[:i]
            ):
                several += 1
    return several


def _tables(store, test):
    return [u for (t, _), u in store._data.items() if t == test and u.exposed]


exposures = st.lists(
    st.tuples(
        st.sampled_from(["t", "other"]),
        st.sampled_from(VARIANTS),
        st.one_of(st.integers(0, 60).map(lambda i: f"u{i}"), st.integers(-3, 3)),
    ),
    max_size=300,
)


@settings(max_examples=examples(300), deadline=None)
@given(exposures, st.one_of(st.none(), st.integers(1, 40)))
def test_the_count_is_the_walks(events, cap):
    store = MetricsStore(None, max_users=cap)
    store.write([Exposure(t, v, u, 0.0) for t, v, u in events])
    for test in ("t", "other"):
        count = store.exposed_in_several(test)
        assert count == _walk(store, test) == in_several_sets(_tables(store, test))
        if cap is None:  # every user kept: the input's own users in two variants or more
            variants: dict[str, set[str]] = {}
            for t, v, u in events:
                if t == test:
                    variants.setdefault(str(u), set()).add(v)
            assert count == sum(len(vs) > 1 for vs in variants.values())


def test_large_tables_agree():
    """Tables grown many times over (20,000 users), users in one to four variants."""
    rng = random.Random(7)
    store = MetricsStore(None)
    batch, expected = [], 0
    for i in range(20_000):
        k = rng.choices([1, 2, 3, 4], weights=[90, 6, 3, 1])[0]
        expected += k > 1
        for v in rng.sample(VARIANTS, k):
            batch.append(Exposure("t", v, f"user-{i}", 0.0))
    rng.shuffle(batch)
    store.write(batch)
    tables = _tables(store, "t")
    assert store.exposed_in_several("t") == expected
    assert in_several(tables) == in_several_sets(tables) == _walk(store, "t") == expected


def test_a_test_with_one_variant_exposed_or_none():
    store = MetricsStore(None)
    assert store.exposed_in_several("t") == 0
    store.write([Exposure("t", "control", f"u{i}", 0.0) for i in range(50)])
    assert store.exposed_in_several("t") == 0
    assert in_several(_tables(store, "t")) == in_several_sets(_tables(store, "t")) == 0
