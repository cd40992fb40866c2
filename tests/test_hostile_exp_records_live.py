"""A/B test records of the wrong shape never go live.

The readers that analyse a record (reports, guardrail checks, ``get_ab_test``) refuse
one of the wrong shape, naming the file and key path (test_hostile_exp_review.py), but
the document holding it still went live, on a hand edit of the flags file or a
document written to the Redis store by another tool. Then the changes that rewrite the
test's flag failed on it: ``stop_ab_test`` and a guardrail rollback raised
``SnapshotError ... flags.exp.rules[0].serve: expected str`` for a ``control`` that is
no string, so a broken experiment could not even be stopped. Now the records are
judged where every document goes live (``cfgcore.runtime.flags.derive``): a start with
nothing else to serve fails naming the file and the field; a reload, the file watcher
and a fleet follower refuse the document and the last good one keeps serving (a start
on a Redis store serves the cache file's document). A record that leaves optional
fields out still goes live and can be stopped; every writer of records (the experiment
API, the command line, ``cfgcore publish``) writes documents that pass.

Real files, the real watcher, a real redis-server, both evaluators where it matters.
"""

from __future__ import annotations

import asyncio
import json
import os
from datetime import datetime, timedelta, timezone

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfgcore.dynamic_config import ABTestConfiguration, DynamicConfigurationManager
from cfgcore.engine import engine_class
from cfgcore.errors import ConfigError
from cfgcore.runtime.atomicio import atomic_write
from tests.conftest import run_cli
from tests.fuzz import examples
from tests.test_hostile_exp_review import MALFORMED
from tests.waiting import wait_for, wait_for_async

NOW = datetime.now(timezone.utc)
USERS = [f"u{i}" for i in range(400)]

# The shapes the readers refuse, and a control that names no variant of the test's
# flag (a stop would serve it: the document would not compile).
CASES = [
    *MALFORMED,
    ("control", "nope", "control"),
    ("control", "__none__", "control"),
]


def _test(name: str = "exp", split: dict[str, float] | None = None, **kw) -> ABTestConfiguration:
    split = split or {"control": 50.0, "treatment": 50.0}
    return ABTestConfiguration(
        test_name=name, description="", start_date=NOW - timedelta(days=1),
        end_date=NOW + timedelta(days=1), traffic_split=split,
        configurations={v: {"v": v} for v in split}, success_metrics=["ctr"],
        guardrail_metrics={"errors": "lower_is_better"}, **kw,
    )  # fmt: skip


def _manager(tmp_path, impl, **kw) -> DynamicConfigurationManager:
    return DynamicConfigurationManager(
        state_dir=tmp_path, engine=engine_class(impl)(), record_usage=False, **kw
    )


def _served(m, test: str = "exp") -> dict[str, str | None]:
    return {u: m.get_ab_test_variant(test, {"user_id": u}) for u in USERS}


def _edit(path, change) -> bytes:
    """Rewrite the flags file as an operator would (atomically) through ``change(doc)``;
    the bytes it held before."""
    with open(path, "rb") as fh:
        before = fh.read()
    doc = json.loads(before)
    change(doc)
    atomic_write(os.fspath(path), json.dumps(doc).encode())
    return before


def _set(field, value):
    def change(doc):
        doc["experiments"]["exp"][field] = value

    return change


@pytest.mark.parametrize(("field", "value", "where"), CASES)
def test_a_reload_refuses_a_malformed_record_and_the_live_test_serves_on(
    tmp_path, impl, field, value, where
):
    m = _manager(tmp_path, impl)
    try:
        assert m.create_ab_test(_test())
        record = m.list_ab_tests()["exp"]
        before = _served(m)
        assert {"control", "treatment"} <= set(before.values())
        good = _edit(m.flags_file, _set(field, value))

        assert m.reload() is False
        error = str(m._live.last_error)
        assert m.flags_file in error and f"experiments.exp.{where}" in error, error
        assert _served(m) == before and m.list_ab_tests()["exp"] == record
        assert m.get_ab_test("exp") is not None  # the live record is the good one
        flags = next(c for c in m.health().readiness if c.name == "flags")
        assert flags.status == "warn" and f"experiments.exp.{where}" in flags.detail
        assert m.audit.entries()[-1]["kind"] == "error"
        # An API change applies to the stored document: it says what is wrong with it
        # (not a compile error about the stop's rule), and nothing changes.
        with pytest.raises(ConfigError, match=rf"experiments\.exp\.{where}"):
            m.stop_ab_test("exp")
        assert _served(m) == before

        atomic_write(m.flags_file, good)  # the operator reverts the edit
        m.reload()
        assert m._live.last_error is None
        assert m.stop_ab_test("exp")
        assert set(_served(m).values()) == {"control"}
    finally:
        m.close()


@pytest.mark.parametrize(("field", "value", "where"), CASES)
def test_a_start_on_a_malformed_record_fails_naming_file_and_field(
    tmp_path, impl, field, value, where
):
    m = _manager(tmp_path, impl)
    assert m.create_ab_test(_test())
    m.close()
    _edit(tmp_path / "flags.json", _set(field, value))
    with pytest.raises(ConfigError) as err:
        _manager(tmp_path, impl)
    text = str(err.value)
    assert os.fspath(tmp_path / "flags.json") in text and f"experiments.exp.{where}" in text


def test_the_file_watcher_refuses_it_and_takes_the_repair(tmp_path, impl):
    m = _manager(tmp_path, impl)

    async def scenario():
        assert m.create_ab_test(_test())
        before = _served(m)
        version = m._live.document.version
        await m.start_file_watching(debounce_ms=20, poll_interval=0.1)
        try:
            _edit(m.flags_file, _set("control", ["control"]))
            assert await wait_for_async(lambda: m._live.last_error is not None)
            assert "experiments.exp.control: expected a string" in str(m._live.last_error)
            assert m._live.document.version == version and _served(m) == before

            # The repair goes live: a stop written by hand, with a control by name.
            def stop(doc):
                doc["experiments"]["exp"].update(control="control", status="stopped")
                doc["flags"]["exp"]["rules"] = [{"serve": "control"}]

            _edit(m.flags_file, stop)
            assert await wait_for_async(lambda: m._live.last_error is None)
            assert set(_served(m).values()) == {"control"}
        finally:
            await m.stop_file_watching()

    try:
        asyncio.run(scenario())
    finally:
        m.close()


def test_the_configuration_managers_reload_refuses_it_too(tmp_path):
    from cfgcore.config.manager import ConfigurationManager
    from cfgcore.snapshot import Snapshot, encode_snapshot
    from tests.conftest import copy_bundled_config

    config_dir = copy_bundled_config(tmp_path / "config")
    test = _test()
    path = config_dir / "flags.json"
    snap = Snapshot(flags={"exp": test.to_flag()}, experiments={"exp": test.to_metadata()})
    atomic_write(str(path), encode_snapshot(snap, "json"))
    cm = ConfigurationManager(str(config_dir), environ={})
    try:
        cm.load_environment_config("staging")
        version = cm._flags.live().document.version
        _edit(path, _set("traffic_split", "abc"))
        assert not cm.reload()
        assert "experiments.exp.traffic_split" in str(cm.last_error)
        assert cm._flags.live().document.version == version
    finally:
        cm.close()


# -- records that leave optional fields out ----------------------------------------------

OPTIONAL = ["control", "success_metrics", "guardrail_metrics", "metric_types", "status",
            "description", "layer", "layer_percentage"]  # fmt: skip


@settings(
    max_examples=examples(25),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    dropped=st.sets(st.sampled_from(OPTIONAL)),
    order=st.permutations(["control", "b", "c"]),
)
def test_a_record_without_optional_fields_goes_live_and_can_be_stopped(tmp_path, dropped, order):
    """Whatever optional fields a hand-made record leaves out, it goes live, a stop
    serves its control, and the analysis judges the variants against that same one:
    the named ``control``, else the variant called ``control`` wherever the split
    lists it (the guardrail check took the split's first variant, and a rollback then
    served another one to everyone)."""
    state = tmp_path / os.urandom(4).hex()
    split = {v: w for v, w in zip(order, [40.0, 30.0, 30.0], strict=True)}
    m = DynamicConfigurationManager(state_dir=state, record_usage=False)
    try:
        assert m.create_ab_test(_test(split=split, control="control", layer="home"))

        def drop(doc):
            for key in dropped:
                doc["experiments"]["exp"].pop(key, None)

        _edit(m.flags_file, drop)
        assert m.reload() and m._live.last_error is None
        assert m.analyze("exp").control == "control"
        assert m.get_ab_test_config("exp") == {"v": "control"}
        assert m.stop_ab_test("exp")
        assert set(_served(m).values()) <= {"control", None}
        assert m.list_ab_tests()["exp"]["status"] == "stopped"
    finally:
        m.close()
    again = DynamicConfigurationManager(state_dir=state, record_usage=False)  # a start judges it
    again.close()


def test_a_record_naming_no_control_its_flag_serves_is_refused_saying_how_to_fix(tmp_path):
    m = DynamicConfigurationManager(state_dir=tmp_path, record_usage=False)
    try:
        assert m.create_ab_test(_test(split={"a": 50.0, "b": 50.0}))

        def drop(doc):
            for key in ("control", "traffic_split"):
                del doc["experiments"]["exp"][key]

        _edit(m.flags_file, drop)
        assert not m.reload()
        error = str(m._live.last_error)
        assert "experiments.exp.control" in error and "names none" in error
        assert "name the test's control variant" in error
    finally:
        m.close()


# -- every writer of records writes documents that pass ---------------------------------

_names = st.text("abcdefgh", min_size=1, max_size=6)


@settings(
    max_examples=examples(30),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    variants=st.lists(_names, min_size=2, max_size=4, unique=True),
    control=st.booleans(),
    guardrails=st.dictionaries(_names, st.sampled_from(["lower_is_better", "higher_is_better"]),
                               max_size=2),
    kinds=st.dictionaries(_names, st.sampled_from(["binary", "continuous"]), max_size=2),
    metrics=st.lists(_names, max_size=3),
    layer=st.sampled_from([None, "home"]),
    start=st.booleans(),
)  # fmt: skip
def test_what_the_experiment_api_writes_goes_live_at_every_step(
    tmp_path, variants, control, guardrails, kinds, metrics, layer, start
):
    state = tmp_path / os.urandom(4).hex()
    weights = [100.0 / len(variants)] * len(variants)
    weights[0] += 100.0 - sum(weights)
    test = ABTestConfiguration(
        test_name="exp", description="d", start_date=NOW - timedelta(days=1),
        end_date=NOW + timedelta(days=1), traffic_split=dict(zip(variants, weights, strict=True)),
        configurations={v: {"v": v} for v in variants}, success_metrics=metrics,
        control=variants[-1] if control else None, guardrail_metrics=guardrails,
        metric_types=kinds, layer=layer,
        layer_percentage=50.0 if layer else 100.0,  # (a share needs a layer)
    )  # fmt: skip
    assert test.validate() == []

    def fresh_start() -> None:  # a start judges the stored document on its own
        DynamicConfigurationManager(state_dir=state, record_usage=False).close()

    m = DynamicConfigurationManager(state_dir=state, record_usage=False)
    try:
        assert m.create_ab_test(test, start=start), m.last_error
        fresh_start()
        assert m.stop_ab_test("exp", "done")
        fresh_start()
        assert m.create_ab_test(test), m.last_error  # started again
        fresh_start()
        assert m.delete_ab_test("exp")
        fresh_start()
    finally:
        m.close()


def test_what_the_command_line_writes_goes_live(checkout_test, capsys):
    """``cfgcore experiment create --start`` (the fixture), ``stop``, ``start``: each
    document a start then serves."""
    from cfgcore.experiments.dynamic import DynamicConfigurationManager as Manager

    for argv in (["experiment", "stop", "checkout"], ["experiment", "start", "checkout"]):
        code, _, err = run_cli(capsys, "-q", *argv)
        assert code == 0, err
        Manager(state_dir=checkout_test, record_usage=False).close()


# -- the fleet ---------------------------------------------------------------------------


def _malformed(snap):
    meta = {**snap.experiments["exp"], "control": ["control"]}
    return msgspec.structs.replace(snap, experiments={**snap.experiments, "exp": meta})


def test_a_fleet_follower_refuses_it_and_a_start_serves_the_cache_file(
    redis_server, stores, tmp_path
):
    cache = tmp_path / "flags-cache.msgpack"
    url = redis_server.url + "?namespace=rec&poll=0.1"
    m = DynamicConfigurationManager(store=f"{url}&cache={cache}", state_dir=tmp_path / "state")
    try:
        assert m.create_ab_test(_test())
        before = _served(m)
        version = m._live.document.version
        stores(url + "&cache=off").update(_malformed)  # another tool: no experiment checks
        assert wait_for(lambda: m._live.last_error is not None)
        error = str(m._live.last_error)
        assert "experiments.exp.control: expected a string" in error and "namespace=rec" in error
        assert m._live.document.version == version and _served(m) == before
        # A change through the API applies to the stored document: refused, saying why.
        with pytest.raises(ConfigError, match=r"experiments\.exp\.control"):
            m.stop_ab_test("exp")
    finally:
        m.close()

    # A start on this host: the cache file holds the last good document, which serves;
    # the refusal is reported as a running process reports it.
    again = DynamicConfigurationManager(store=f"{url}&cache={cache}", state_dir=tmp_path / "state")
    try:
        assert again._live.document.version == version and _served(again) == before
        assert "experiments.exp.control" in str(again._live.last_error)
    finally:
        again.close()
    # A start with nothing else to serve fails, naming the store and the field.
    with pytest.raises(ConfigError, match=r"namespace=rec: experiments\.exp\.control"):
        DynamicConfigurationManager(store=f"{url}&cache=off", state_dir=tmp_path / "state")


def test_cfgcore_publish_refuses_a_malformed_record(
    redis_server, tmp_path, bundled_config, capsys, monkeypatch
):
    """``cfgcore publish --flags FILE`` judges the document as every follower would."""
    from cfgcore.snapshot import Snapshot, encode_snapshot

    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("JWT_SIGNING_KEY", "sup3r-s3cret-signing-key-0123456789abcdef")
    test = _test()
    url = redis_server.url + "?namespace=pub&cache=off"
    path = tmp_path / "publish.json"
    argv = ["publish", "--store", url, "--config-dir", str(bundled_config), "--flags", str(path),
            "-e", "staging", "--actor", "oncall"]  # fmt: skip
    snap = Snapshot(flags={"exp": test.to_flag()}, experiments={"exp": test.to_metadata()})
    atomic_write(str(path), encode_snapshot(snap, "json"))
    code, _, err = run_cli(capsys, *argv)
    assert code == 0, err  # what the API writes is published
    atomic_write(str(path), encode_snapshot(_malformed(snap), "json"))
    code, _, err = run_cli(capsys, *argv)
    assert code != 0 and "experiments.exp.control: expected a string" in err, err
