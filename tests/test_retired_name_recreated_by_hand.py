"""An A/B test created again by hand under the name of a retired one is a new run.

Deleting a test (or any write dropping it) records when in the flag document
(``metadata.retired_ab_tests``), and a test created again through the experiment API
under that name records that time as its ``since``: its analysis leaves out the
earlier run's records in the shared logs. A test put back by a hand edit of the flags
file, or written into Redis by another tool, without a ``since`` (or with one earlier
than the retirement) was the earlier run for every reader: its report counted the
deleted test's exposures as its own. Now every process derives the run from the
document alone: such a test is a run starting at the retirement, logged as a warning
naming the file and key path, and an API write of the document stores that ``since``.
Real files, real redis-server, both evaluators, the real CLI.
"""

from __future__ import annotations

import json
import logging
import math
import os
from datetime import datetime, timedelta, timezone
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfgcore.dynamic_config import ABTestConfiguration, DynamicConfigurationManager
from cfgcore.engine import Engine, engine_class
from cfgcore.experiments.abtest import RETIRED, record_cutoffs, record_runs
from cfgcore.experiments.dynamic import state_paths
from cfgcore.experiments.exposures import ExposureRecord, read_log
from cfgcore.runtime.flags import derive
from cfgcore.runtime.redis_store import RedisFlagStore
from cfgcore.snapshot import Flag, SnapshotError, load_snapshot
from tests.conftest import run_cli
from tests.fuzz import examples
from tests.texts import any_text
from tests.waiting import wait_for

NOW = datetime.now(timezone.utc)
OLD_USERS = [f"old-{i}" for i in range(20)]
NEW_USERS = [f"new-{i}" for i in range(12)]


def _test(split: dict[str, float], **kw: Any) -> ABTestConfiguration:
    return ABTestConfiguration(
        "t", "", NOW - timedelta(days=1), NOW + timedelta(days=9), split,
        {k: {"v": k} for k in split}, ["buy"], **kw,
    )  # fmt: skip


def _manager(tmp_path, impl=None, **kw) -> DynamicConfigurationManager:
    # An engine of its own (of the implementation under test): a process of its own
    # for what the flag document says.
    engine = engine_class(impl)() if impl is not None else Engine()
    return DynamicConfigurationManager(state_dir=tmp_path, record_usage=False, engine=engine, **kw)


def _serve(manager, users, buy=True) -> dict[str, int]:
    got = []
    for u in users:
        variant = manager.get_ab_test_variant("t", {"user_id": u})
        assert variant is not None
        if buy:
            assert manager.record_metric("t", "buy", 1.0, user_id=u)
        got.append(variant)
    assert manager.exposures.flush(10) and manager.metrics.flush(10)
    return {v: got.count(v) for v in sorted(set(got))}


def _handmade(tmp_path, **kw: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Test ``t``'s record and flag (control/c) as a flags file holds them, for a hand
    edit (or another tool) to write: made once in a scratch document of their own."""
    scratch = tmp_path / "scratch"
    m = DynamicConfigurationManager(state_dir=scratch, record_usage=False, engine=Engine())
    try:
        assert m.create_ab_test(_test({"control": 50.0, "c": 50.0}, **kw))
    finally:
        m.close()
    doc = json.loads((scratch / "flags.json").read_text())
    record, flag = doc["experiments"]["t"], doc["flags"]["t"]
    assert "since" not in record
    return record, flag


def _first_run_deleted(manager, flags) -> float:
    """A first run (control/b, 20 buyers), deleted through the API; returns when."""
    assert manager.create_ab_test(_test({"control": 50.0, "b": 50.0}))
    assert sum(_serve(manager, OLD_USERS).values()) == 20
    assert sum(manager.analyze("t").exposures.values()) == 20
    assert manager.delete_ab_test("t")
    when = load_snapshot(flags).metadata[RETIRED]["t"]
    assert isinstance(when, float)
    return when


def _edit(path, edit) -> None:
    """A hand edit: the file read as JSON, edited, written whole (atomically)."""
    with open(path) as f:
        doc = json.load(f)
    edit(doc)
    tmp = f"{path}.edit"
    with open(tmp, "w") as f:
        json.dump(doc, f)
    os.replace(tmp, path)


def _put_back(record, flag, since):
    def edit(doc):
        doc.setdefault("experiments", {})["t"] = {
            **record,
            **({} if since is None else {"since": since}),
        }
        doc["flags"]["t"] = flag

    return edit


def _counts_only_the_new_run(manager, expected, run):
    assert manager.metrics.exposures("t") == expected  # the in-memory summaries
    report = manager.analyze("t")
    assert report.exposures == expected  # not the first run's 20 users too
    assert "b" not in report.srm.observed and not report.srm.mismatch
    assert all(row.successes == 0 for row in report.for_metric("buy"))
    # The request path tagged the new run's records with it.
    paths = state_paths(str(manager.flags_file))
    new = [r for r in read_log(paths["exposures"], ExposureRecord) if r.user.startswith("new")]
    assert len(new) == len(NEW_USERS) and {r.run for r in new} == {run}


def _warnings(caplog, name="t"):
    said = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    return [m for m in said if f"experiments.{name}.since" in m]


@pytest.mark.parametrize("since", ["missing", "earlier"])
@pytest.mark.parametrize("taken", ["reload", "new manager"])
def test_a_test_recreated_by_hand_is_a_run_from_its_retirement(
    tmp_path, impl, caplog, capsys, since, taken
):
    caplog.set_level(logging.WARNING, logger="cfgcore")
    record, flag = _handmade(tmp_path)
    flags = tmp_path / "flags.json"
    manager = _manager(tmp_path, impl)
    try:
        retired = _first_run_deleted(manager, flags)
        written = None if since == "missing" else retired - 3600.0
        _edit(flags, _put_back(record, flag, written))
        if taken == "reload":
            assert manager.reload(), manager.last_error
        else:
            manager.close()
            manager = _manager(tmp_path, impl)
        assert manager.last_error is None
        # Every reader sees the run the document implies, without any write.
        assert manager.list_ab_tests()["t"]["since"] == retired
        assert record_runs(manager.snapshot.experiments) == {"t": retired}
        assert record_cutoffs(manager.snapshot.experiments) == {"t": retired}
        assert load_snapshot(flags).experiments["t"].get("since") == written
        said = _warnings(caplog)
        assert len(said) == 1, said
        assert str(flags) in said[0] and f"since: {retired!r}" in said[0]
        expected = _serve(manager, NEW_USERS, buy=False)
        assert sum(expected.values()) == len(NEW_USERS)
        _counts_only_the_new_run(manager, expected, retired)
        # The command line's report reads the document alone, and agrees.
        code, out, err = run_cli(capsys, "experiment", "report", "t", "--state-dir",
                                 str(tmp_path), "--json")  # fmt: skip
        assert code == 0, err
        assert json.loads(out)["exposures"] == expected
        # An API write of the document (any change) stores the run explicitly.
        manager.set_feature_flag("unrelated_switch", True)
        assert load_snapshot(flags).experiments["t"]["since"] == retired
        assert manager.list_ab_tests()["t"]["since"] == retired
        assert len(_warnings(caplog)) == 1
    finally:
        manager.close()


def test_a_since_later_than_the_retirement_is_kept_as_written(tmp_path, impl, caplog):
    caplog.set_level(logging.WARNING, logger="cfgcore")
    record, flag = _handmade(tmp_path)
    flags = tmp_path / "flags.json"
    manager = _manager(tmp_path, impl)
    try:
        retired = _first_run_deleted(manager, flags)
        later = retired + 0.5
        _edit(flags, _put_back(record, flag, later))
        assert manager.reload(), manager.last_error
        assert manager.list_ab_tests()["t"]["since"] == later
        assert record_runs(manager.snapshot.experiments) == {"t": later}
        assert _warnings(caplog) == []
        expected = _serve(manager, NEW_USERS, buy=False)
        _counts_only_the_new_run(manager, expected, later)
        manager.set_feature_flag("unrelated_switch", True)
        assert load_snapshot(flags).experiments["t"]["since"] == later
    finally:
        manager.close()


def test_a_guardrail_stops_the_run_a_hand_edit_created(tmp_path, impl):
    """The guardrail judges the run it serves and stops that run (a stop for one run
    is refused when the store holds another): the stored record, without a since,
    is the same run."""
    record, flag = _handmade(tmp_path, guardrail_metrics={"err": "lower_is_better"})
    flags = tmp_path / "flags.json"
    manager = _manager(tmp_path, impl, guardrail_min_samples=20, guardrail_check_every=10**9)
    try:
        retired = _first_run_deleted(manager, flags)
        _edit(flags, _put_back(record, flag, None))
        assert manager.reload(), manager.last_error
        for i in range(150):
            user = f"new-{i}"
            variant = manager.get_ab_test_variant("t", {"user_id": user})
            err = 1.0 if variant == "c" else 0.0
            assert manager.record_metric("t", "err", err, user_id=user)
        assert manager.exposures.flush(10) and manager.metrics.flush(10)
        assert manager.check_guardrails("t")
        stored = load_snapshot(flags).experiments["t"]
        assert stored["status"] == "stopped" and stored["since"] == retired
        assert manager.list_ab_tests()["t"]["status"] == "stopped"
    finally:
        manager.close()


@pytest.fixture
def redis_url(redis_server):
    return redis_server.url


def test_a_test_another_tool_writes_into_redis_is_a_new_run_on_every_process(
    redis_url, tmp_path, caplog
):
    caplog.set_level(logging.WARNING, logger="cfgcore")
    record, flag = _handmade(tmp_path)
    managers = [
        DynamicConfigurationManager(
            store=redis_url, state_dir=tmp_path / "svc", record_usage=False, engine=Engine()
        )  # fmt: skip
        for _ in range(2)
    ]
    try:
        first = managers[0]
        assert first.create_ab_test(_test({"control": 50.0, "b": 50.0}))
        assert wait_for(lambda: "t" in managers[1].list_ab_tests())
        assert sum(_serve(managers[1], OLD_USERS).values()) == 20
        assert first.delete_ab_test("t")
        with RedisFlagStore(redis_url) as store:
            retired = store.read().snapshot.metadata[RETIRED]["t"]
            # Another tool's write: the test put back without a since.
            store.update(lambda s: msgspec.structs.replace(
                s, flags={**s.flags, "t": msgspec.convert(flag, Flag)},
                experiments={**s.experiments, "t": record},
            ))  # fmt: skip
        assert wait_for(lambda: all("t" in m.list_ab_tests() for m in managers))
        # Both processes derive the same run from the document; nothing is written back.
        assert [m.list_ab_tests()["t"]["since"] for m in managers] == [retired, retired]
        with RedisFlagStore(redis_url) as store:
            assert "since" not in store.read().snapshot.experiments["t"]
        counts = [_serve(m, NEW_USERS[i::2], buy=False) for i, m in enumerate(managers)]
        expected = {v: sum(c.get(v, 0) for c in counts) for v in ("control", "c")}
        expected = {v: n for v, n in expected.items() if n}
        for m in managers:
            assert m.analyze("t").exposures == expected
        # (one process here: the two managers share the process's record of what it told)
        said = _warnings(caplog)
        assert len(said) == 1 and said[0].startswith(redis_url), said
    finally:
        for m in managers:
            m.close()


# -- hostile metadata ------------------------------------------------------------------

_JUNK = st.recursive(
    st.none() | st.booleans() | st.integers() | st.integers(min_value=2**64)
    | st.sampled_from([10**400, -(10**400)]) | st.floats() | any_text(max_size=5),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(any_text(max_size=3), inner, max_size=3),
    max_leaves=6,
)  # fmt: skip
_WHEN = st.one_of(st.floats(min_value=1e9, max_value=2e9), _JUNK)
_MISSING = object()


#: The end of the year 9999 in epoch seconds: the latest time a record holds.
_LATEST = datetime.max.replace(tzinfo=timezone.utc).timestamp()


def _time(value: Any) -> float | None:
    """``value`` as epoch seconds when it is a time a record may hold (a number, not a
    bool, from 0 to the end of the year 9999), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        seconds = float(value)
    except OverflowError:
        return None
    return seconds if math.isfinite(seconds) and 0 <= seconds <= _LATEST else None


@pytest.fixture(scope="module")
def served_document(tmp_path_factory):
    """A document holding test ``t`` as the experiment API writes it, without ``since``."""
    directory = tmp_path_factory.mktemp("hostile")
    m = DynamicConfigurationManager(state_dir=directory, record_usage=False, engine=Engine())
    try:
        assert m.create_ab_test(_test({"control": 50.0, "c": 50.0}))
    finally:
        m.close()
    return load_snapshot(directory / "flags.json")


@settings(max_examples=examples(300), suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    retired=st.one_of(_JUNK, st.dictionaries(st.sampled_from(["t", "u"]), _WHEN, max_size=2)),
    since=st.one_of(st.just(_MISSING), st.floats(min_value=1e9, max_value=2e9), _JUNK),
)
def test_hostile_retirements_never_raise_and_follow_the_rule(served_document, retired, since):
    record = dict(served_document.experiments["t"])
    if since is not _MISSING:
        record["since"] = since
    snapshot = msgspec.structs.replace(
        served_document,
        experiments={**served_document.experiments, "t": record},
        metadata={**served_document.metadata, RETIRED: retired},
    )
    run = _time(since)
    if since is not _MISSING and since is not None and run is None:
        # A since that is no time: the document is refused, naming it (not served).
        with pytest.raises(SnapshotError) as refused:
            derive(snapshot, "flags.json")
        assert any(p.path == "experiments.t.since" for p in refused.value.problems)
        return
    derived = derive(snapshot, "flags.json")  # never raises
    when = _time(retired.get("t")) if isinstance(retired, dict) else None
    got = derived.experiments["t"]
    if when is not None and (run is None or run < when):
        assert got["since"] == when
        assert record_runs(derived.experiments) == {"t": when}
    else:
        # As written: nothing to derive.
        assert got == record
    assert derived.metadata == snapshot.metadata


@pytest.mark.parametrize(
    "retired",
    ["'soon'", "true", ".nan", ".inf", "-.inf", "[1, 2]", "{a: [1, {b: 2}]}", "null",
     "100000000000000000000000000000000000000000000000000000000000000000000000000000"
     "0000000000000000000000000000000000000000000000000000000000000000000000000000000"
     "00000000000000000000000000000000000000000000000000000000000000000000000000000000"
     "00000000000000000000000000000000000000000000000000000000000000000000000000000000"],
)  # fmt: skip
@pytest.mark.parametrize("whole", [False, True])
def test_a_flags_file_with_hostile_retirements_loads_and_serves(
    tmp_path, impl, served_document, retired, whole
):
    """The same through a real YAML flags file (it carries nan, inf, huge ints): the
    document loads, its test is the run it says, and it serves."""
    text = msgspec.yaml.encode(msgspec.structs.replace(served_document, metadata={}))
    value = retired if whole else "{t: " + retired + "}"
    path = tmp_path / "flags.yaml"
    path.write_bytes(text + f"metadata:\n  {RETIRED}: {value}\n".encode())
    manager = DynamicConfigurationManager(path, state_dir=tmp_path, record_usage=False,
                                          engine=engine_class(impl)())  # fmt: skip
    try:
        assert manager.last_error is None
        assert "since" not in manager.list_ab_tests()["t"]
        assert record_runs(manager.snapshot.experiments) == {"t": None}
        assert sum(_serve(manager, NEW_USERS, buy=False).values()) == len(NEW_USERS)
        assert sum(manager.analyze("t").exposures.values()) == len(NEW_USERS)
    finally:
        manager.close()


def test_a_document_of_many_recreated_tests_names_a_few_and_counts_the_rest(
    served_document, caplog
):
    """Hundreds of tests put back under retired names: a few warnings name tests, one
    counts the rest; each derivation, however many tests, logs a bounded number of lines."""
    record = {k: v for k, v in served_document.experiments["t"].items() if k != "since"}
    names = [f"t{i}" for i in range(300)]
    snapshot = msgspec.structs.replace(
        served_document,
        experiments={n: dict(record) for n in names},
        metadata={RETIRED: dict.fromkeys(names, 1_700_000_000.0)},
    )
    from cfgcore.experiments.abtest import retired_runs

    caplog.set_level(logging.WARNING, logger="cfgcore")
    for origin in ("many-a.json", "many-b.json"):  # (each origin told afresh)
        caplog.clear()
        derived = retired_runs(snapshot, origin)
        assert all(derived.experiments[n]["since"] == 1_700_000_000.0 for n in names)
        said = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert 2 <= len(said) <= 25, len(said)
        assert any(f"{len(names) - len(said) + 1} more A/B tests" in m for m in said), said
        assert all(origin in m for m in said)
