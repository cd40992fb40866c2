"""An A/B test dropped from the flag document by any path is retired as
``delete_ab_test`` retires it.

The shared exposure and metric logs keep a test's records under its name. Deleting
the test through the experiment API records when (``metadata.retired_ab_tests``), and a
test created again under that name is a new run whose report leaves those records
out. A test dropped otherwise (``cfgcore import --force`` onto the live flags file, a
hand edit, ``cfgcore publish --flags`` of a document without it, another tool's write
to the store) was not recorded: a test created again under its name counted the old
run's exposures and events as its own. Now every process that serves the document
records the drop when it sees it (once for the whole fleet). Real files, real
redis-server, real CLI.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.cli import main
from cfgcore.dynamic_config import ABTestConfiguration, DynamicConfigurationManager
from cfgcore.engine import Engine
from cfgcore.experiments.abtest import RETIRED, retire_dropped
from cfgcore.experiments.dynamic import state_paths
from cfgcore.runtime.audit import AuditLog
from cfgcore.runtime.redis_store import RedisFlagStore
from cfgcore.snapshot import Snapshot, encode_snapshot, load_snapshot
from tests.conftest import run_cli
from tests.fuzz import examples
from tests.waiting import wait_for

NOW = datetime.now(timezone.utc)
JWT = "sup3r-s3cret-signing-key-0123456789abcdef"


def _test(split, name="t"):
    return ABTestConfiguration(
        name, "", NOW - timedelta(days=1), NOW + timedelta(days=9), split,
        {k: {"v": k} for k in split}, ["buy"],
    )  # fmt: skip


def _serve(manager, users, buy=True, name="t"):
    for u in users:
        variant = manager.get_ab_test_variant(name, {"user_id": u})
        if buy and variant is not None:
            assert manager.record_metric(name, "buy", 1.0, user_id=u)


def _first_run(manager):
    """A first run (20 buyers, variants control/b), analysed once so the shared-log
    view holds it."""
    assert manager.create_ab_test(_test({"control": 50.0, "b": 50.0}))
    _serve(manager, [f"old-{i}" for i in range(20)])
    assert sum(manager.analyze("t").exposures.values()) == 20


def _second_run(manager):
    """The test created again under its name (control/c, 12 users, none buying); the
    exposures its report must show."""
    assert manager.create_ab_test(_test({"control": 50.0, "c": 50.0})), manager.last_error
    new_users = [f"new-{i}" for i in range(12)]
    _serve(manager, new_users, buy=False)
    variants = [manager.get_ab_test_variant("t", {"user_id": u}) for u in new_users]
    return {v: variants.count(v) for v in ("control", "c")}


def _counts_only_its_own(manager, expected):
    manager.exposures.flush()  # (the summaries count the exposures written)
    manager.metrics.flush()
    assert manager.metrics.exposures("t") == expected  # the in-memory summaries too
    report = manager.analyze("t")
    assert report.exposures == expected  # not the first run's 20 users too
    assert "b" not in report.srm.observed and not report.srm.mismatch
    for row in report.for_metric("buy"):
        assert row.successes == 0  # the first run's buyers are not this run's


def _without_test(doc, name="t"):
    doc = dict(doc)
    doc["flags"] = {k: v for k, v in doc["flags"].items() if k != name}
    doc["experiments"] = {k: v for k, v in doc.get("experiments", {}).items() if k != name}
    return doc


def _edit(path, edit):
    """A hand edit: the file read as JSON, edited, written whole (atomically)."""
    with open(path) as f:
        doc = json.load(f)
    tmp = f"{path}.edit"
    with open(tmp, "w") as f:
        json.dump(edit(doc), f)
    os.replace(tmp, path)


@pytest.fixture
def on_file(tmp_path):
    flags = tmp_path / "flags.json"
    m = DynamicConfigurationManager(flags, state_dir=tmp_path, record_usage=False)
    yield m, flags
    m.close()


def test_a_test_dropped_by_a_hand_edit_is_retired(on_file):
    manager, flags = on_file
    _first_run(manager)
    _edit(flags, _without_test)
    assert manager.reload()
    assert manager.get_ab_test("t") is None
    # The drop is recorded in the document, as delete_ab_test records it.
    assert "t" in load_snapshot(flags).metadata[RETIRED]
    audit = AuditLog.read(state_paths(str(flags))["audit"])
    assert any(e.get("source") == "retire_ab_test" for e in audit)
    _counts_only_its_own(manager, _second_run(manager))


def test_a_hand_edit_that_takes_the_test_out_and_back_in_is_no_retirement(on_file):
    manager, flags = on_file
    _first_run(manager)
    before = manager.list_ab_tests()["t"]

    def reworded(doc):
        # The record written again (its key order changed), same run (no since change).
        doc["experiments"] = {"t": {**doc["experiments"].pop("t"), "description": "again"}}
        return doc

    _edit(flags, reworded)
    assert manager.reload()
    stored = load_snapshot(flags)
    assert RETIRED not in stored.metadata
    assert stored.experiments["t"].get("since") == before.get("since")
    # Its users keep being its own: the next exposure of a logged user is no new one.
    report = manager.analyze("t")
    assert sum(report.exposures.values()) == 20


def test_a_test_dropped_by_import_force_onto_the_live_file_is_retired(on_file, tmp_path, capsys):
    manager, flags = on_file
    _first_run(manager)
    _import_force(capsys, tmp_path, flags)
    assert manager.reload()
    assert manager.get_ab_test("t") is None
    _counts_only_its_own(manager, _second_run(manager))


def test_earlier_retirements_outlive_a_whole_document_replaced(on_file, tmp_path, capsys):
    manager, flags = on_file
    _first_run(manager)
    assert manager.delete_ab_test("t")
    retired = load_snapshot(flags).metadata[RETIRED]["t"]
    # A document written whole without the record of the deletion (an import, a copy
    # of an older file): the retirement stays.
    _edit(flags, lambda doc: {**doc, "metadata": {}, "flags": {**doc["flags"], "x": {
        "variants": {"on": True, "off": False}, "default": "on"}}})  # fmt: skip
    assert manager.reload()
    assert load_snapshot(flags).metadata[RETIRED] == {"t": retired}
    _counts_only_its_own(manager, _second_run(manager))


@pytest.fixture
def redis_url(redis_server):
    return redis_server.url + "?namespace=dropped&cache=off&poll=0.05"


def _stored(url):
    with RedisFlagStore(url) as store:
        return store.read()


def test_a_test_dropped_by_publish_flags_is_retired(
    redis_url, tmp_path, bundled_config, capsys, monkeypatch
):
    manager = DynamicConfigurationManager(store=redis_url, state_dir=tmp_path / "svc",
                                          record_usage=False)  # fmt: skip
    try:
        _first_run(manager)
        doc = _without_test(json.loads(encode_snapshot(_stored(redis_url).snapshot, "json")))
        path = tmp_path / "publish.json"
        path.write_text(json.dumps(doc))
        monkeypatch.setenv("JWT_SIGNING_KEY", JWT)
        code = main(["publish", "--store", redis_url, "--config-dir", str(bundled_config),
                     "--flags", str(path), "--actor", "oncall"])  # fmt: skip
        assert code == 0, capsys.readouterr().err
        assert wait_for(lambda: manager.get_ab_test("t") is None)
        _counts_only_its_own(manager, _second_run(manager))
        assert "t" in _stored(redis_url).snapshot.metadata[RETIRED]
    finally:
        manager.close()


def test_a_fleet_records_one_drop_once(redis_url, tmp_path):
    # Two processes' live sets (an engine each), both serving the test.
    managers = [
        DynamicConfigurationManager(
            store=redis_url, state_dir=tmp_path / f"svc{i}", record_usage=False, engine=Engine()
        )  # fmt: skip
        for i in range(2)
    ]
    try:
        _first_run(managers[0])
        assert wait_for(lambda: managers[1].get_ab_test("t") is not None)
        # Another tool's write to the store: the whole document without the test.
        with RedisFlagStore(redis_url) as store:
            _old, dropped = store.update(lambda s: msgspec.structs.replace(
                s, flags={k: v for k, v in s.flags.items() if k != "t"},
                experiments={k: v for k, v in s.experiments.items() if k != "t"},
            ))  # fmt: skip

        def retired_everywhere():
            return all(RETIRED in m.snapshot.metadata for m in managers)

        assert wait_for(retired_everywhere)
        stored = _stored(redis_url)
        # One write recorded the drop; the other process found it recorded.
        assert stored.version == dropped.version + 1
        assert list(stored.snapshot.metadata[RETIRED]) == ["t"]
        expected = _second_run(managers[1])
        _counts_only_its_own(managers[1], expected)
    finally:
        for m in managers:
            m.close()


def test_a_drop_while_no_process_served_is_found_in_the_cache_file(redis_server, tmp_path):
    """A host's cache file holds the document it served last: a process starting after
    the test was dropped meanwhile records the drop."""
    url = redis_server.url + f"?namespace=offline&cache={tmp_path / 'cache.msgpack'}"
    manager = DynamicConfigurationManager(store=url, state_dir=tmp_path / "svc",
                                          record_usage=False)  # fmt: skip
    try:
        _first_run(manager)
    finally:
        manager.close()
    with RedisFlagStore(redis_server.url + "?namespace=offline&cache=off") as store:
        store.update(lambda s: msgspec.structs.replace(
            s, flags={k: v for k, v in s.flags.items() if k != "t"},
            experiments={k: v for k, v in s.experiments.items() if k != "t"},
        ))  # fmt: skip
    manager = DynamicConfigurationManager(store=url, state_dir=tmp_path / "svc",
                                          record_usage=False)  # fmt: skip
    try:
        assert "t" in _stored(url).snapshot.metadata[RETIRED]
        _counts_only_its_own(manager, _second_run(manager))
    finally:
        manager.close()


_names = st.sampled_from(["a", "b", "c"])
_runs = st.none() | st.floats(1.0, 100.0)


def _doc(tests, retired):
    return Snapshot(
        experiments={n: ({} if r is None else {"since": r}) for n, r in tests.items()},
        metadata={RETIRED: retired} if retired else {},
    )


@given(
    old=st.dictionaries(_names, _runs),
    new=st.dictionaries(_names, _runs),
    old_retired=st.dictionaries(_names, st.floats(1.0, 100.0)),
    new_retired=st.dictionaries(_names, st.floats(1.0, 100.0)),
)
@settings(max_examples=examples(200), deadline=None)
def test_retire_dropped_records_each_drop_once_and_nothing_else(old, new, old_retired, new_retired):
    before, after = _doc(old, old_retired), _doc(new, new_retired)
    result = retire_dropped(before, after)
    assert result.experiments is after.experiments and result.flags is after.flags
    retired = result.metadata.get(RETIRED, {})
    dropped = set(old) - set(new)
    for name in dropped:  # a retirement after the run it ends (any, for a first run)
        assert name in retired and (old[name] is None or retired[name] > old[name])
    for name in set(retired) | set(old_retired) | set(new_retired):
        if name not in dropped:  # kept as either document records it, the later
            assert retired[name] == max(old_retired.get(name, 0), new_retired.get(name, 0))
    # Every process judging the same drop on the newest document writes it once.
    assert retire_dropped(before, result) is result


def _import_force(capsys, tmp_path, flags):
    src = tmp_path / "flagd.json"
    src.write_text(json.dumps({"flags": {"color": {
        "state": "ENABLED", "variants": {"red": "red", "blue": "blue"}, "defaultVariant": "red",
    }}}))  # fmt: skip
    code, _out, err = run_cli(capsys, "import", "flagd", str(src), "--out", str(flags), "--force")
    assert code == 0, err


def test_import_force_retires_the_tests_of_the_file_it_replaces(tmp_path, capsys):
    """Nothing serves the file while it is replaced: the import records the drop."""
    flags = tmp_path / "flags.json"
    manager = DynamicConfigurationManager(flags, state_dir=tmp_path, record_usage=False)
    try:
        _first_run(manager)
    finally:
        manager.close()
    _import_force(capsys, tmp_path, flags)
    assert "t" in load_snapshot(flags).metadata[RETIRED]
    manager = DynamicConfigurationManager(flags, state_dir=tmp_path, record_usage=False)
    try:
        _counts_only_its_own(manager, _second_run(manager))
    finally:
        manager.close()


def test_publish_flags_retires_the_tests_of_the_document_it_replaces(
    redis_server, tmp_path, bundled_config, capsys, monkeypatch
):
    """Nothing serves the store while it is published to: the publish records the drop."""
    url = redis_server.url + "?namespace=offpub&cache=off"
    manager = DynamicConfigurationManager(store=url, state_dir=tmp_path / "svc",
                                          record_usage=False)  # fmt: skip
    try:
        _first_run(manager)
    finally:
        manager.close()
    doc = _without_test(json.loads(encode_snapshot(_stored(url).snapshot, "json")))
    path = tmp_path / "publish.json"
    path.write_text(json.dumps(doc))
    monkeypatch.setenv("JWT_SIGNING_KEY", JWT)
    code = main(["publish", "--store", url, "--config-dir", str(bundled_config),
                 "--flags", str(path), "--actor", "oncall"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    assert "t" in _stored(url).snapshot.metadata[RETIRED]
    manager = DynamicConfigurationManager(store=url, state_dir=tmp_path / "svc",
                                          record_usage=False)  # fmt: skip
    try:
        _counts_only_its_own(manager, _second_run(manager))
    finally:
        manager.close()


def test_a_drop_recorded_at_start_is_audited(redis_server, tmp_path):
    """The retirement a process writes at start (the drop found in its cache file,
    before any manager listened) is in its audit log, as one written while running."""
    url = redis_server.url + f"?namespace=startaudit&cache={tmp_path / 'cache.msgpack'}"
    manager = DynamicConfigurationManager(store=url, state_dir=tmp_path / "svc",
                                          record_usage=False)  # fmt: skip
    try:
        _first_run(manager)
    finally:
        manager.close()
    with RedisFlagStore(redis_server.url + "?namespace=startaudit&cache=off") as store:
        store.update(lambda s: msgspec.structs.replace(
            s, flags={k: v for k, v in s.flags.items() if k != "t"},
            experiments={k: v for k, v in s.experiments.items() if k != "t"},
        ))  # fmt: skip
    manager = DynamicConfigurationManager(store=url, state_dir=tmp_path / "svc",
                                          record_usage=False)  # fmt: skip
    try:
        stored = _stored(url)
        assert "t" in stored.snapshot.metadata[RETIRED]
        audit = AuditLog.read(manager.audit.path)
        retired = [e for e in audit if e.get("source") == "retire_ab_test"]
        assert retired, audit
        assert all(e.get("store_version") in (None, stored.version) for e in retired)
    finally:
        manager.close()
    # Audited once: a manager opening the set again finds nothing more to audit.
    manager = DynamicConfigurationManager(store=url, state_dir=tmp_path / "svc",
                                          record_usage=False)  # fmt: skip
    try:
        audit = AuditLog.read(manager.audit.path)
        assert len([e for e in audit if e.get("source") == "retire_ab_test"]) == len(retired)
    finally:
        manager.close()
