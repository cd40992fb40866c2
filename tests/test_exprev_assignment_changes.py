"""What docs/experiments.md, "Who gets which variant, and what moves a user", says a
change does to the users already assigned, checked with real managers and many users:
the rows an experimenter could not guess (the holdout takes users out of running tests
and gives them back their variant; a new run and a re-created test keep each user's
bucket, so they are no fresh randomisation)."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.dynamic_config import ABTestConfiguration, DynamicConfigurationManager
from tests.fuzz import examples

NOW = datetime.now(timezone.utc)
USERS = [f"user-{i}" for i in range(1500)]


def ab(split=None):
    split = split or {"control": 50.0, "b": 50.0}
    return ABTestConfiguration(
        "t", "", NOW - timedelta(days=1), NOW + timedelta(days=9), split,
        {v: {"v": v} for v in split}, ["m"],
    )  # fmt: skip


def served(m):
    return {u: m.get_ab_test_variant("t", {"user_id": u}) for u in USERS}


@settings(max_examples=examples(10), deadline=None)
@given(first=st.floats(1, 60), second=st.floats(0, 60))
def test_the_holdout_takes_users_out_of_a_running_test_and_gives_them_back(first, second):
    m = DynamicConfigurationManager(persist=False)
    try:
        assert m.create_ab_test(ab())
        before = served(m)
        m.set_holdout_percentage(first)
        during = served(m)
        m.set_holdout_percentage(second)
        after = served(m)
    finally:
        m.close()
    assert all(v is not None for v in before.values())
    out = [u for u in USERS if during[u] is None]
    assert abs(len(out) / len(USERS) - first / 100) < 0.06  # the share asked, give or take
    assert all(during[u] in (None, before[u]) for u in USERS)  # nobody changes variant
    assert all(after[u] in (None, before[u]) for u in USERS)
    if second <= first:  # a smaller holdout gives back users, never takes others
        assert {u for u in USERS if after[u] is None} <= set(out)


def test_a_re_created_test_gives_everyone_their_old_variant():
    m = DynamicConfigurationManager(persist=False)
    try:
        assert m.create_ab_test(ab())
        before = served(m)
        assert m.delete_ab_test("t")
        assert m.create_ab_test(ab())
        assert served(m) == before
    finally:
        m.close()


def test_a_new_run_keeps_each_users_bucket_and_logs_them_again(tmp_path):
    m = DynamicConfigurationManager(state_dir=tmp_path, record_usage=False)
    try:
        assert m.create_ab_test(ab())
        before = served(m)
        with open(m.flags_file, encoding="utf-8") as f:
            doc = json.load(f)
        new = {"control": 20.0, "b": 80.0}  # refused in the same run, allowed in a new one
        doc["experiments"]["t"].update(since=time.time(), traffic_split=new)
        doc["flags"]["t"]["rules"][0]["split"] = new
        with open(m.flags_file, "w", encoding="utf-8") as f:
            json.dump(doc, f)
        assert m.reload(), m.last_error
        after = served(m)
        m.exposures.flush()
        lines = [
            json.loads(x) for x in (tmp_path / "flags.exposures.jsonl").read_text().splitlines()
        ]
    finally:
        m.close()
    moved = [u for u in USERS if after[u] != before[u]]
    assert all(before[u] == "control" and after[u] == "b" for u in moved)  # the range that grew
    assert 0.2 < len(moved) / len(USERS) < 0.4  # 30 % of the buckets
    runs = {}
    for line in lines:
        runs.setdefault(line["user"], []).append(line["run"])
    assert all(len(r) == 2 and r[0] is None and r[1] is not None for r in runs.values())
