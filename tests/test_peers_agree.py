"""The peer SDK adapters in benchmarks/peers.py give cfgcore's answers, offline.

The benchmarks compare cfgcore with these SDKs; the comparison only means something if
every peer does the same work and reaches the same result. These tests drive the real
SDKs (no mocks) through the adapters and check each scenario's answer, that no SDK
opens a network connection, and that close() leaves no thread behind.
"""

from __future__ import annotations

import ipaddress
import os
import sys
import threading
import time
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore._compat import env_flag
from tests.fuzz import examples

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "benchmarks"))
import peers  # noqa: E402

N_FLAGS = 1000
USER_IDS = peers.user_ids(10_000)
IN_CI = env_flag("CI")


def _require(cls: type[peers.Peer]) -> None:
    reason = cls.unavailable_reason()
    if reason is None:
        return
    if IN_CI:
        # CI installs the bench extra: a peer that does not import there is a broken
        # install, not an optional component.
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="module", params=peers.PEER_CLASSES, ids=lambda c: c.name)
def peer(request):
    _require(request.param)
    p = request.param()
    p.setup(N_FLAGS)
    try:
        yield p
    finally:
        p.close()


# -- scenario answers ------------------------------------------------------------------


def test_plain_on_is_true(peer):
    assert peer.plain_on()() is True


@pytest.mark.parametrize("context", [peers.PREMIUM_EU, peers.FREE_US], ids=["premium", "free"])
def test_plain_on_with_dict_context_is_true(peer, context):
    assert peer.plain_on_dict(context)() is True


def test_rule_premium_eu_on_free_us_off(peer):
    assert peer.rule(peers.PREMIUM_EU)() is True
    assert peer.rule(peers.FREE_US)() is False


_SEGMENTS = st.one_of(
    st.sampled_from(["premium", "free", "family", "student", "Premium", "premium "]),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=8),
)
_REGIONS = st.one_of(
    st.sampled_from(["EU", "UK", "US", "eu", "EUR", "BR"]),
    st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=3),
)


@settings(max_examples=examples(40), deadline=None)
@given(
    uid=st.text(alphabet="0123456789abcdef-", min_size=1, max_size=12),
    segment=_SEGMENTS,
    region=_REGIONS,
)
def test_rule_matches_the_specification_for_any_context(peer, uid, segment, region):
    context = {"user_id": uid, "user_segment": segment, "region": region}
    expected = segment == peers.RULE_SEGMENT and region in peers.RULE_REGIONS
    assert peer.rule(context)() is expected


def test_rollout_reaches_a_quarter_of_users(peer):
    rollout = peer.rollout()
    answers = [rollout(uid) for uid in USER_IDS]
    assert all(type(a) is bool for a in answers)
    fraction = sum(answers) / len(answers)
    assert 0.22 <= fraction <= 0.28, fraction


def test_rollout_is_sticky_per_user(peer):
    rollout = peer.rollout()
    first = [rollout(uid) for uid in USER_IDS[:200]]
    assert [rollout(uid) for uid in USER_IDS[:200]] == first


def test_split_follows_50_30_20(peer):
    split = peer.split()
    counts = Counter(split(uid) for uid in USER_IDS)
    assert set(counts) == set(peers.SPLIT_VARIANTS)
    for variant, weight in peers.SPLIT_WEIGHTS:
        assert abs(counts[variant] / len(USER_IDS) - weight / 100) <= 0.02, (variant, counts)


@pytest.mark.parametrize("context", [peers.PREMIUM_EU, peers.FREE_US], ids=["premium", "free"])
def test_all_flags_evaluates_every_flag(peer, context):
    values = peer.all_flags(context)()
    specs = {f.name: f for f in peer.flags}
    assert set(values) == set(specs)
    assert len(values) == N_FLAGS
    for name, spec in specs.items():
        expected = peers.expected_value(spec, context)
        if expected is not None:
            assert values[name] is expected, name
        elif spec.kind == "rollout":
            assert type(values[name]) is bool, name
        else:
            assert values[name] in peers.SPLIT_VARIANTS, name


@pytest.mark.parametrize("context", [peers.PREMIUM_EU, peers.FREE_US], ids=["premium", "free"])
def test_all_flags_agrees_with_single_evaluations(peer, context):
    # The bulk path must be the same evaluation as the single-flag one, not a cache
    # or a shortcut: the hashed flags give the same bucket for the same user.
    values = peer.all_flags(context)()
    uid = context["user_id"]
    assert values[peers.FLAG_ROLLOUT] is peer.rollout()(uid)
    assert values[peers.FLAG_SPLIT] == peer.split()(uid)


def test_rollouts_with_different_salts_bucket_independently(peer):
    # Every filler rollout is salted by its own name; if a peer ignored the salt all
    # of them would agree for every user. The users are asked in turn, up to the first
    # whose rollouts disagree (each ask evaluates all 1,000 flags).
    values = (peer.all_flags({"user_id": uid})() for uid in USER_IDS[:40])
    rollouts = [f.name for f in peer.flags if f.kind == "rollout"]
    assert any(len({v[name] for name in rollouts}) == 2 for v in values)


# -- isolation: no network, no leftover threads ----------------------------------------

_recording: list[tuple[str, str, object]] | None = None


def _audit(event: str, args: tuple) -> None:
    if _recording is None:
        return
    if event == "socket.connect":
        _recording.append((threading.current_thread().name, event, args[1]))
    elif event == "socket.getaddrinfo":
        # Recorded as (host, port) so a hostname is never mistaken for a unix path.
        _recording.append((threading.current_thread().name, event, (args[0], args[1])))


sys.addaudithook(_audit)


def _is_loopback(address: object) -> bool:
    if isinstance(address, tuple) and address:
        try:
            return ipaddress.ip_address(str(address[0])).is_loopback
        except ValueError:
            return str(address[0]) == "localhost"
    # AF_UNIX paths never leave the machine.
    return isinstance(address, (str, bytes))


@pytest.mark.parametrize("cls", peers.PEER_CLASSES, ids=lambda c: c.name)
def test_peer_runs_offline_and_close_stops_its_threads(cls):
    global _recording
    _require(cls)
    before = set(threading.enumerate())
    _recording = []
    try:
        p = cls()
        p.setup(n_flags=50)
        try:
            assert p.plain_on()() is True
            assert p.plain_on_dict()() is True
            assert p.rule()() is True
            p.rollout()("user-1")
            p.split()("user-1")
            assert len(p.all_flags()()) == 50
        finally:
            p.close()
        p.close()  # idempotent
        seen = list(_recording)
    finally:
        _recording = None

    outside = [r for r in seen if not _is_loopback(r[2])]
    assert outside == [], f"{cls.name} tried to reach the network: {outside}"
    # Connections from other threads could belong to other tests' servers; those in
    # this thread are the SDK's, and an offline SDK opens none, loopback or not.
    mine = [r for r in seen if r[0] == threading.current_thread().name]
    assert mine == [], f"{cls.name} opened sockets: {mine}"

    deadline = time.monotonic() + 5.0
    while True:
        left = [t for t in threading.enumerate() if t not in before and t.is_alive()]
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert left == [], f"{cls.name} left threads running after close(): {left}"


def test_unavailable_reason_names_the_missing_module():
    class Missing(peers.Peer):
        name = "missing"
        distribution = "no-such-sdk"
        requires = ("cfgcore_peer_that_does_not_exist",)

    reason = Missing.unavailable_reason()
    assert reason is not None
    assert "no-such-sdk" in reason and "cfgcore_peer_that_does_not_exist" in reason
    assert set(peers.unavailable_peers()).isdisjoint(c.name for c in peers.available_peers())


def test_scenario_flags_shape():
    flags = peers.scenario_flags(N_FLAGS)
    assert len(flags) == N_FLAGS
    assert len({f.name for f in flags}) == N_FLAGS
    assert [f.name for f in flags[:4]] == [
        peers.FLAG_ON,
        peers.FLAG_ROLLOUT,
        peers.FLAG_RULE,
        peers.FLAG_SPLIT,
    ]
    assert set(Counter(f.kind for f in flags)) == {"on", "off", "rollout", "rule", "split"}
    with pytest.raises(ValueError, match="at least 4"):
        peers.scenario_flags(3)


@pytest.mark.parametrize("cls", peers.PEER_CLASSES, ids=lambda c: c.name)
def test_setup_twice_replaces_the_client(cls):
    _require(cls)
    p = cls()
    p.setup(n_flags=10)
    p.setup(n_flags=20)
    try:
        assert len(p.all_flags()()) == 20
        assert p.plain_on()() is True
    finally:
        p.close()


def test_describe_lists_every_peer_and_scenario():
    table = peers.describe_peers()
    for c in peers.PEER_CLASSES:
        assert set(c.notes) == {
            "plain_on",
            "plain_on_dict",
            "rollout",
            "rule",
            "split",
            "all_flags",
        }, c.name
        assert f"| {c.name} |" in table
