"""A served A/B test changed outside the experiment API, fifth audit. The API refuses a
change that would move users a test has enrolled (a split that re-buckets them, a
variant removed, a layer slice moved), but a hand edit of the flags file (hot reload)
or a document written to the Redis store by another tool went live unchecked: the
moved users kept their logged exposure and their metric events landed in the new
variant. Such a document is now refused like an invalid one (the last good one keeps
serving; last_error, health, the audit log and an ERROR line name the test and what
moved) unless it restarts the test as a new run (a later ``experiments.<test>.since``).
Real files, the real watcher, a real Redis, the real evaluator."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from datetime import datetime, timedelta, timezone

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.dynamic_config import ABTestConfiguration, DynamicConfigurationManager
from cfgcore.errors import ConfigError
from cfgcore.runtime.atomicio import atomic_write
from cfgcore.snapshot import Rule, Snapshot
from tests.fuzz import examples
from tests.waiting import wait_for_async

NOW = datetime.now(timezone.utc)
USERS = [f"user-{i}" for i in range(1500)]


def ab(name="checkout", split=None, *, start=NOW - timedelta(days=1), layer=None, pct=100.0):
    split = split or {"control": 50, "green": 50}
    return ABTestConfiguration(
        test_name=name, description="", start_date=start, end_date=NOW + timedelta(days=30),
        traffic_split=split, configurations={v: {"v": v} for v in split},
        success_metrics=["conversion"], layer=layer, layer_percentage=pct,
    )  # fmt: skip


@pytest.fixture
def manager(tmp_path):
    m = DynamicConfigurationManager(flags_file=str(tmp_path / "flags.json"))
    yield m
    m.close()


def served(m, test="checkout"):
    return {u: m.get_ab_test_variant(test, {"user_id": u}) for u in USERS}


def edit(m, change):
    """Rewrite the flags file as an operator would (atomically), through ``change(doc)``."""
    with open(m.flags_file, encoding="utf-8") as fh:
        doc = json.load(fh)
    change(doc)
    atomic_write(m.flags_file, json.dumps(doc).encode())


def resplit(split):
    def change(doc):
        doc["experiments"]["checkout"]["traffic_split"] = split
        doc["flags"]["checkout"]["rules"][0]["split"] = split
        for v in split:
            doc["flags"]["checkout"]["variants"].setdefault(v, {"v": v})

    return change


def test_a_hand_edited_split_is_refused_on_reload_and_everything_says_why(manager, caplog):
    m = manager
    assert m.create_ab_test(ab())
    before = served(m)
    edit(m, resplit({"control": 30, "green": 70}))
    with caplog.at_level(logging.ERROR, logger="cfgcore.flags"):
        assert not m.reload()
    assert served(m) == before  # the last good document keeps serving
    error = str(m._live.last_error)
    assert "experiments.checkout.traffic_split" in error
    assert "flags.checkout.rules[0].split" in error
    assert "move 20.000% of its users" in error and m.flags_file in error
    assert "experiments.checkout.since" in error  # how to mean it
    assert any("checkout" in r.getMessage() and r.levelno == logging.ERROR for r in caplog.records)
    flags = next(c for c in m.health().readiness if c.name == "flags")
    assert flags.status == "warn" and "checkout" in flags.detail
    refusal = m.audit.entries()[-1]
    assert refusal["kind"] == "error" and "experiments.checkout.traffic_split" in refusal["error"]


def test_a_variant_removed_by_hand_is_refused(manager):
    m = manager
    assert m.create_ab_test(ab(split={"control": 34, "green": 33, "blue": 33}))
    before = served(m)

    def drop_blue(doc):
        resplit({"control": 50, "green": 50})(doc)
        del doc["flags"]["checkout"]["variants"]["blue"]

    edit(m, drop_blue)
    assert not m.reload()
    assert "flags.checkout.rules[0].split" in str(m._live.last_error)
    assert served(m) == before


@pytest.mark.parametrize(
    "where, change",
    [
        ("flags.checkout.rules[0]", lambda f: f.update(salt="checkout-2")),
        ("flags.checkout.rules[0]", lambda f: f.update(bucket_by="session_id")),
        ("flags.checkout.rules[0]", lambda f: f["rules"][0].update(bucket_by="device_id")),
    ],
)
def test_bucketing_users_another_way_by_hand_is_refused(manager, where, change):
    m = manager
    assert m.create_ab_test(ab())
    before = served(m)
    edit(m, lambda doc: change(doc["flags"]["checkout"]))
    assert not m.reload()
    assert where in str(m._live.last_error) and "bucketed again" in str(m._live.last_error)
    assert served(m) == before


def test_a_layer_slice_moved_by_hand_is_refused(manager):
    m = manager
    assert m.create_ab_test(ab(layer="home", pct=30))
    before = served(m)
    assert sum(v is not None for v in before.values()) > 200

    def move(doc):
        doc["experiments"]["checkout"]["layer_offset"] = 50.0

    edit(m, move)
    assert not m.reload()
    assert "experiments.checkout.layer_offset" in str(m._live.last_error)
    assert served(m) == before

    def other_layer(doc):
        doc["experiments"]["checkout"]["layer"] = "search"

    edit(m, other_layer)
    assert not m.reload()
    assert "experiments.checkout.layer" in str(m._live.last_error)
    assert served(m) == before


def test_deleting_an_earlier_unpositioned_test_of_a_layer_moves_the_next_one(manager):
    """Records without a layer_offset are packed in order: deleting the first by hand
    would slide the second's slice to the layer's start."""
    m = manager
    assert m.create_ab_test(ab("first", layer="home", pct=40))
    assert m.create_ab_test(ab("checkout", layer="home", pct=30))

    def unpositioned(doc):
        for meta in doc["experiments"].values():
            meta.pop("layer_offset", None)

    edit(m, unpositioned)
    assert m.reload()  # same slices: nobody moves
    before = served(m)

    def delete_first(doc):
        del doc["experiments"]["first"], doc["flags"]["first"]

    edit(m, delete_first)
    assert not m.reload()
    assert "experiments.checkout.layer_offset" in str(m._live.last_error)
    assert served(m) == before


def test_restarting_the_test_as_a_new_run_goes_live(manager):
    m = manager
    assert m.create_ab_test(ab())
    edit(m, resplit({"control": 30, "green": 70}))
    assert not m.reload()

    def restart(doc):
        resplit({"control": 30, "green": 70})(doc)
        doc["experiments"]["checkout"]["since"] = time.time()

    edit(m, restart)
    assert m.reload() and m._live.last_error is None
    greens = sum(v == "green" for v in served(m).values())
    assert 0.6 * len(USERS) < greens < 0.8 * len(USERS)


@pytest.mark.parametrize(
    "change",
    [
        # stopped by hand: control for everyone, as stop_ab_test does
        lambda doc: (
            doc["experiments"]["checkout"].update(status="stopped", stopped_at=time.time()),
            doc["flags"]["checkout"].update(rules=[{"serve": "control"}]),
        ),
        # a configuration value, the end date, targeting: nobody moves
        lambda doc: doc["flags"]["checkout"]["variants"]["green"].update(v="GREEN"),
        lambda doc: doc["experiments"]["checkout"].update(description="longer run"),
        lambda doc: doc["flags"]["checkout"]["rules"][0].update(
            when={"attr": "x", "exists": False}
        ),
        # a 0 % variant added at the end
        resplit({"control": 50, "green": 50, "blue": 0}),
        # the same split written another way
        resplit({"control": 50.0, "green": 50}),
        # the test deleted
        lambda doc: (doc["experiments"].pop("checkout"), doc["flags"].pop("checkout")),
    ],
)
def test_changes_that_move_nobody_go_live(manager, change):
    m = manager
    assert m.create_ab_test(ab())
    edit(m, change)
    assert m.reload() and m._live.last_error is None


def test_a_test_that_has_not_served_may_change_by_hand(manager):
    m = manager
    assert m.create_ab_test(ab(start=NOW + timedelta(days=2)))
    edit(m, resplit({"control": 10, "green": 90}))
    assert m.reload() and m._live.last_error is None
    assert m.create_ab_test(ab("later"), start=False)  # created, not started
    edit(m, lambda d: d["experiments"]["later"].update(traffic_split={"control": 90, "green": 10}))
    assert m.reload() and m._live.last_error is None


def test_the_file_watcher_refuses_it_too(manager):
    m = manager

    async def scenario():
        assert m.create_ab_test(ab())
        before = served(m)
        await m.start_file_watching(debounce_ms=20, poll_interval=0.1)
        try:
            edit(m, resplit({"control": 30, "green": 70}))
            assert await wait_for_async(lambda: m._live.last_error is not None)
            assert "experiments.checkout.traffic_split" in str(m._live.last_error)
            assert served(m) == before

            def restart(doc):
                resplit({"control": 30, "green": 70})(doc)
                doc["experiments"]["checkout"]["since"] = time.time()

            edit(m, restart)
            assert await wait_for_async(
                lambda: m._live.last_error is None and m.list_ab_tests()["checkout"].get("since")
            )
        finally:
            await m.stop_file_watching()

    asyncio.run(scenario())


def test_a_document_written_to_redis_by_another_tool_is_refused_by_followers(
    redis_server, stores, tmp_path
):
    from tests.redis_server import wait_for

    url = redis_server.url + "?namespace=ab&poll=0.1&cache=off"
    m = DynamicConfigurationManager(store=url, state_dir=tmp_path / "state")
    try:
        assert m.create_ab_test(ab())
        before = served(m)
        version = m._live.document.version
        writer = stores(url)  # another tool writing the document (no experiment checks)

        def moved(snap: Snapshot, since: float | None = None) -> Snapshot:
            split = {"control": 30.0, "green": 70.0}
            meta = {**snap.experiments["checkout"], "traffic_split": split}
            if since is not None:
                meta["since"] = since
            flag = msgspec.structs.replace(snap.flags["checkout"], rules=[Rule(split=split)])
            return msgspec.structs.replace(
                snap, flags={**snap.flags, "checkout": flag},
                experiments={**snap.experiments, "checkout": meta},
            )  # fmt: skip

        writer.update(moved)
        assert wait_for(lambda: m._live.last_error is not None)
        assert "experiments.checkout.traffic_split" in str(m._live.last_error)
        assert m._live.document.version == version and served(m) == before
        # last_error is set first, then the subscribers (the audit among them) are told
        assert wait_for(lambda: m.audit.entries()[-1]["kind"] == "error")

        writer.update(lambda s: moved(s, since=time.time()))
        assert wait_for(lambda: m._live.document.version > version + 1)
        assert m._live.last_error is None and served(m) != before
    finally:
        m.close()


@settings(max_examples=examples(15), deadline=None)
@given(
    old=st.lists(st.integers(0, 10), min_size=2, max_size=4),
    new=st.lists(st.integers(0, 10), min_size=2, max_size=4),
)
def test_a_document_that_goes_live_keeps_every_enrolled_user_in_their_variant(
    tmp_path_factory, old, new
):
    def split(weights):
        if not any(weights):
            weights = [1, *weights[1:]]
        total = sum(weights)
        pct = [w * 100 // total for w in weights]
        pct[0] += 100 - sum(pct)
        return {f"v{i}": p for i, p in enumerate(pct)}

    m = DynamicConfigurationManager(flags_file=str(tmp_path_factory.mktemp("h") / "f.json"))
    try:
        assert m.create_ab_test(ab(split=split(old)))
        before = served(m)
        edit(m, resplit(split(new)))
        if m.reload():
            assert served(m) == before
        else:
            assert split(old) != split(new)
            assert "would move" in str(m._live.last_error)
            assert served(m) == before
    finally:
        m.close()


def test_the_configuration_managers_reload_refuses_it_too(tmp_path):
    """The configuration manager activates flags with its configuration (one reload):
    the same check refuses the reload and keeps both live."""
    from cfgcore.config.manager import ConfigurationManager
    from cfgcore.snapshot import encode_snapshot
    from tests.conftest import copy_bundled_config

    config_dir = copy_bundled_config(tmp_path / "config")
    test = ab()
    snap = Snapshot(
        flags={"checkout": test.to_flag()}, experiments={"checkout": test.to_metadata()}
    )
    path = config_dir / "flags.json"
    atomic_write(str(path), encode_snapshot(snap, "json"))
    cm = ConfigurationManager(str(config_dir), environ={})
    try:
        cm.load_environment_config("staging")
        version = cm._flags.live().document.version

        with open(path, encoding="utf-8") as fh:
            doc = json.load(fh)
        resplit({"control": 30, "green": 70})(doc)
        atomic_write(str(path), json.dumps(doc).encode())
        assert not cm.reload()
        assert "experiments.checkout.traffic_split" in str(cm.last_error)
        assert cm._flags.live().document.version == version
    finally:
        cm.close()


def test_an_api_change_never_carries_a_refused_document_live(manager):
    """The API applies its change to the newest stored document: one refused on reload
    must not go live with it (it did, with any later flag or test change)."""
    m = manager
    assert m.create_ab_test(ab())
    before = served(m)
    edit(m, resplit({"control": 30, "green": 70}))
    assert not m.reload()
    with pytest.raises(ConfigError, match=r"experiments\.checkout\.traffic_split"):
        m.set_holdout_percentage(5)
    assert not m.create_ab_test(ab("other"))
    assert "experiments.checkout.traffic_split" in m.last_error
    assert served(m) == before
    assert m.list_ab_tests()["checkout"]["traffic_split"] == {"control": 50.0, "green": 50.0}
    edit(m, resplit({"control": 50, "green": 50}))  # the operator reverts the edit
    assert m.reload()
    assert m.create_ab_test(ab("other"))
    assert served(m) == before
