"""Review of the exposed-only (tracked) events: the memory they hold is bounded by
``max_users``. Before, a user who only tracked events took a slot that no bound
counted, so a flood of tracked events from users who never saw the test grew a
``max_users`` store without limit (5000 slots for max_users=50)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.experiments.exposures import Exposure
from cfgcore.experiments.metrics import MetricsStore
from tests.fuzz import examples


def _slots(store, test="t"):
    return sum(u.used for (t, _v), u in store._data.items() if t == test)


def test_held_events_of_never_exposed_users_are_bounded_by_max_users():
    store = MetricsStore(None, max_users=50)
    for u in range(5000):
        store.record("t", "a", "buy", 1.0, f"u{u}", exposed_only=True)
    # Slots for held events are bounded too (at most max_users of them, beside the
    # max_users users tracked): a flood of tracked events from users who never see
    # the test cannot grow the process without bound.
    assert _slots(store) <= 2 * 50
    assert store.unheld["t"] == 5000 - 50
    assert "t" not in store.untracked  # no user's place was taken: no cap reached
    assert store.users("t", "a") == 0 and store.event_count("t", "a", "buy") == 0


def test_a_held_user_exposed_later_counts_once_and_frees_its_hold():
    store = MetricsStore(None, max_users=3)
    for u in ("a", "b", "c"):
        store.record("t", "v", "buy", 2.0, u, exposed_only=True)
    store.write([Exposure("t", "v", u, 1.0) for u in ("a", "b")])
    # a and b are users now; their held events count; c still holds one.
    assert store.users("t", "v") == 2
    assert store.event_count("t", "v", "buy") == 2
    assert store.tracked("t") == 2
    # Two held-only slots remain free (c holds one): d and e may hold, f may not.
    for u in ("d", "e", "f"):
        store.record("t", "v", "buy", 1.0, u, exposed_only=True)
    store.write([Exposure("t", "v", "c", 2.0)])
    assert store.users("t", "v") == 3 and store.event_count("t", "v", "buy") == 3
    assert _slots(store) <= 2 * 3


def test_forget_releases_a_tests_held_slots():
    store = MetricsStore(None, max_users=5)
    for u in range(5):
        store.record("t", "a", "buy", 1.0, f"u{u}", exposed_only=True)
    store.forget("t")
    for u in range(5):
        store.record("t", "a", "buy", 1.0, f"w{u}", exposed_only=True)
    store.write([Exposure("t", "a", f"w{u}", 1.0) for u in range(5)])
    assert "t" not in store.unheld
    assert store.event_count("t", "a", "buy") == 5


def test_the_report_names_tracked_events_left_out_apart_from_the_user_cap():
    from cfgcore.experiments.analysis import analyze

    store = MetricsStore(None, max_users=4)
    store.write([Exposure("t", "control", "a", 1.0), Exposure("t", "b", "c", 1.0)])
    for u in range(10):
        store.record("t", "control", "buy", 1.0, f"u{u}", exposed_only=True)
    meta = {"traffic_split": {"control": 50, "b": 50}, "success_metrics": ["buy"]}
    report = analyze("t", meta, store)
    # Two users tracked of four: the cap is not reached, the results cover them all.
    assert report.untracked == 0 and "user cap reached" not in report.to_text()
    assert report.unheld == 6
    assert report.to_dict()["user_cap"]["tracked_unexposed_left_out"] == 6
    assert "6 tracked event(s) of users not exposed yet were left out" in report.to_text()


@settings(max_examples=examples(150), deadline=None)
@given(
    cap=st.integers(1, 6),
    ops=st.lists(
        st.tuples(st.sampled_from(["held", "event", "expose"]), st.sampled_from("ab"),
                  st.integers(0, 14)),
        max_size=60,
    ),
)  # fmt: skip
def test_held_slots_stay_within_the_bound_and_every_count_agrees(cap, ops):
    store = MetricsStore(None, max_users=cap)
    for op, variant, u in ops:
        if op == "expose":
            store.write([Exposure("t", variant, f"u{u}", 1.0)])
        else:
            store.record("t", variant, "m", 1.0, f"u{u}", exposed_only=op == "held")
    members = holding = 0
    for (_t, _v), users in store._data.items():
        for i, key in enumerate(users.keys):
            if key:
                if users.flags[i] & 2:
                    members += 1
                else:
                    holding += 1
        assert users.members == sum(1 for i, k in enumerate(users.keys) if k and users.flags[i] & 2)
    assert members == store.tracked("t") <= cap
    assert holding == store._holding.get("t", 0) <= cap
