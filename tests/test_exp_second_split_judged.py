"""Every split of a served A/B test's flag is judged, not only the first one.

The judge of a document that moves the users a served test has enrolled
(:func:`cfgcore.experiments.abtest.moved_users`) compared only the flag's first split
rule with the split served before. A hand edit that put a conditional split with the
test's weights ahead of its split (``when: {plan: pro}``) and changed the weights of
the original split, now second, went live: the first split was unchanged, so the
document was taken, and every user outside the condition was re-split (28% of them
moved to another variant in a 50/50 to 20/80 change), while the same change of a flag
with one split is refused on every write path. Each later split a user can reach is now
judged against the test's split too. Real managers on real flag files, both evaluators.
"""

from __future__ import annotations

import msgspec
import pytest

from cfgcore.runtime.atomicio import atomic_write
from cfgcore.snapshot import Condition, Rule, encode_snapshot, format_for, load_snapshot
from tests.ab_tests import yaml_manager_with_test

TEST = "checkout"
USERS = [{"user_id": f"u{i}", "plan": "pro" if i % 10 == 0 else "free"} for i in range(2000)]
PRO = Condition(attr="plan", eq="pro")


pytestmark = pytest.mark.usefixtures("private_state")


@pytest.fixture
def manager(tmp_path, impl):
    m = yaml_manager_with_test(tmp_path, impl)
    yield m
    m.close()


def _variants(m):
    return [m.get_ab_test_variant(TEST, u) for u in USERS]


def _edit_rules(m, rules_of) -> None:
    snap = load_snapshot(m.flags_file)
    flag = snap.flags[TEST]
    flag = msgspec.structs.replace(flag, rules=rules_of(flag.rules[0]))
    snap = msgspec.structs.replace(snap, flags={**snap.flags, TEST: flag})
    atomic_write(m.flags_file, encode_snapshot(snap, format_for(m.flags_file)))


def _resplit(rule, weights):
    return msgspec.structs.replace(rule, split=weights)


def test_a_second_split_that_moves_users_is_refused(manager):
    before = _variants(manager)
    errors = []
    manager.register_change_listener(lambda e: errors.append(e) if e.is_error else None)
    _edit_rules(
        manager,
        lambda split: [
            Rule(when=PRO, split={"control": 50, "green": 50}),
            _resplit(split, {"control": 20, "green": 80}),
        ],
    )
    assert manager.reload() is False
    manager.events.wait_idle(5)
    (event,) = errors
    error = str(event.error)
    assert "flags.checkout.rules[1].split" in error and "30.000%" in error, error
    assert "A/B test 'checkout' has served its variants" in error
    assert _variants(manager) == before


def test_a_conditional_split_ahead_with_the_tests_weights_moves_nobody(manager):
    before = _variants(manager)
    _edit_rules(manager, lambda split: [Rule(when=PRO, split={"control": 50, "green": 50}), split])
    assert manager.reload() is True
    assert _variants(manager) == before


def test_a_split_no_user_reaches_is_not_judged(manager):
    """After the test's unconditional split (bucketed as it is) no user reaches a
    later split: every bucketed user was assigned, the others have no bucket."""
    before = _variants(manager)
    _edit_rules(manager, lambda split: [split, _resplit(split, {"control": 10, "green": 90})])
    assert manager.reload() is True
    assert _variants(manager) == before
