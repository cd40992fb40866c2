"""One judge of "this change moves users an A/B test has enrolled", on every write path.

A flag document that would move the users a started test (one that has served its
variants, exposures logged) has enrolled to another variant is refused wherever it
comes from: a hand edit or another tool's write (reloaded, followed from Redis) and
every write through cfgcore's own API and CLI (each change the manager makes is judged
on the newest stored document, under the store's lock, before it is written). What was
found open:

* a stopped test's ``serve`` (what every user now gets) edited by hand went live,
  while the API refused changing the ``control`` of a stopped test;
* a running test's flag made to serve one variant to everyone with its record left
  active (a hand edit, or ``register_custom_feature_flag`` from a process that had not
  seen the test yet, which wrote a boolean flag over it) went live on every path.

Legitimate changes stay allowed: stopping a test, a new run (a later ``since``),
raising ``layer_percentage``, edits of flags no test uses, creating and deleting tests.
Real managers on real flag files, and a real Redis (tests/redis_server.py).
"""

from __future__ import annotations

import time
from pathlib import Path

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfgcore.dynamic_config import DynamicConfigurationManager
from cfgcore.engine import Engine
from cfgcore.runtime.atomicio import atomic_write
from cfgcore.snapshot import Rule, Snapshot, encode_snapshot, format_for, load_snapshot
from tests.ab_tests import ab_test as _test
from tests.fuzz import examples

TEST = "checkout"
USERS = [{"user_id": f"u{i}"} for i in range(300)]


pytestmark = pytest.mark.usefixtures("private_state")


def _manager(tmp_path, url=None) -> DynamicConfigurationManager:
    where = {"store": url} if url else {"flags_file": str(tmp_path / "flags.yaml")}
    # An engine of its own: a private live set, as another process has.
    return DynamicConfigurationManager(
        **where, state_dir=tmp_path / "state", engine=Engine(), record_usage=False,
        guardrail_check_every=10**9,
    )  # fmt: skip


def _started(m, **kw) -> dict[str, str | None]:
    """``m`` runs the test, every user exposed; their variants."""
    assert m.create_ab_test(_test(**kw)), m.last_error
    return {u["user_id"]: m.get_ab_test_variant(TEST, u) for u in USERS}


def _variants(m) -> dict[str, str | None]:
    return {u["user_id"]: m.get_ab_test_variant(TEST, u) for u in USERS}


def _hand_edit(m, edit) -> None:
    """Another tool rewrites the flags file with ``edit(snapshot)``."""
    path = m.flags_file
    snap = load_snapshot(path)
    atomic_write(path, encode_snapshot(edit(snap), format_for(path)))


def _with(snap: Snapshot, flag=None, **record) -> Snapshot:
    meta = {**snap.experiments[TEST], **record}
    return msgspec.structs.replace(
        snap,
        flags={**snap.flags, TEST: flag if flag is not None else snap.flags[TEST]},
        experiments={**snap.experiments, TEST: meta},
    )


def _serving(snap: Snapshot, variant: str) -> Snapshot:
    flag = snap.flags[TEST]
    when = flag.rules[0].when if flag.rules else None
    return _with(snap, msgspec.structs.replace(flag, rules=[Rule(when=when, serve=variant)]))


def _refused_naming(problems, *paths) -> str:
    text = " ".join(str(p) for p in problems)
    assert TEST in text
    for path in paths:
        assert any(p.path.startswith(path) for p in problems), (path, text)
    return text


# -- hand edits (gap b: a stopped test's served variant) ------------------------------


def test_a_hand_edit_of_a_stopped_tests_serve_is_refused(tmp_path):
    m = _manager(tmp_path)
    try:
        _started(m)
        assert m.stop_ab_test(TEST)
        assert set(_variants(m).values()) == {"control"}
        before = Path(m.flags_file).read_bytes()
        _hand_edit(m, lambda s: _serving(s, "green"))
        assert not m.reload()
        text = _refused_naming(m._live.last_error.problems, f"flags.{TEST}.rules[0]")
        assert "'green'" in text and "'control'" in text
        # The last good document still serves: the control to everyone.
        assert set(_variants(m).values()) == {"control"}
        assert m.get_ab_test_config(TEST) == {"x": 1}
        # Put back by hand: served again, and the file is the tool's to fix.
        atomic_write(m.flags_file, before)
        m.reload()
        assert m._live.last_error is None
    finally:
        m.close()


def test_a_hand_edit_of_a_stopped_tests_control_and_serve_together_is_refused(tmp_path):
    m = _manager(tmp_path)
    try:
        _started(m)
        assert m.stop_ab_test(TEST)
        _hand_edit(m, lambda s: _with(_serving(s, "blue"), control="blue"))
        assert not m.reload()
        _refused_naming(m._live.last_error.problems, f"flags.{TEST}.rules[0]")
        assert set(_variants(m).values()) == {"control"}
    finally:
        m.close()


def test_a_running_test_made_to_serve_one_variant_by_hand_is_refused(tmp_path):
    m = _manager(tmp_path)
    try:
        enrolled = _started(m)
        _hand_edit(m, lambda s: _serving(s, "green"))  # its record left active
        assert not m.reload()
        _refused_naming(m._live.last_error.problems, f"flags.{TEST}.rules[0]")
        assert _variants(m) == enrolled
    finally:
        m.close()


@settings(
    max_examples=examples(12),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(served=st.sampled_from(["control", "green", "blue"]), stopped=st.booleans())
def test_a_stopped_test_keeps_serving_its_control(tmp_path_factory, served, stopped):
    """Whatever variant a hand edit serves everyone, only the control goes live: for a
    test stopped already, and for a running one stopped by the edit (its record too)."""
    tmp = tmp_path_factory.mktemp("s")
    m = _manager(tmp)
    try:
        _started(m)
        if stopped:
            assert m.stop_ab_test(TEST)
        record = {} if stopped else {"status": "stopped", "stopped_reason": "by hand",
                                     "stopped_at": time.time()}  # fmt: skip
        _hand_edit(m, lambda s: _with(_serving(s, served), **record))
        went_live = m.reload()
        assert went_live == (served == "control" and not stopped)
        if served != "control":
            _refused_naming(m._live.last_error.problems, f"flags.{TEST}")
        assert set(_variants(m).values()) == ({"control"} if stopped or went_live else
                                              {"control", "green", "blue"})  # fmt: skip
    finally:
        m.close()


# -- API writes (gap a) ---------------------------------------------------------------


def _store_url(request, tmp_path):
    if request.param == "file":
        return None
    server = request.getfixturevalue("redis_server")
    return server.url + f"?namespace=enrol&poll=0.1&cache={tmp_path / 'cache.msgpack'}"


@pytest.fixture(params=["file", "redis"])
def store_url(request, tmp_path):
    return _store_url(request, tmp_path)


def test_an_api_write_over_a_started_tests_flag_is_refused(tmp_path, store_url):
    """A process that has not seen the test yet (it was created by another one since)
    registers a custom flag of its name: the write is judged on the newest stored
    document, where it would take every enrolled user out of the test."""
    stale = _manager(tmp_path, store_url and store_url.split("&cache=")[0] + "&cache=off")
    running = _manager(tmp_path, store_url)
    try:
        if store_url:
            # A process whose follower has not delivered the new document yet.
            stale._live._unwatch()
            stale._live._unwatch = lambda: None
        enrolled = _started(running)
        stored = running.store.read()
        assert TEST not in stale._source.flags  # (not followed or reloaded yet)
        with pytest.raises(Exception) as caught:
            stale.register_custom_feature_flag(TEST, enabled=True)
        problems = getattr(caught.value, "problems", [])
        _refused_naming(problems, f"flags.{TEST}")
        # Nothing written; the test still serves, to this process and the one racing.
        assert running.store.read().version == stored.version
        assert running.store.read().checksum == stored.checksum
        running.reload()
        assert _variants(running) == enrolled
    finally:
        stale.close()
        running.close()


def test_update_ab_test_refuses_another_control_of_a_stopped_test(tmp_path, store_url):
    m = _manager(tmp_path, store_url)
    try:
        _started(m)
        assert m.stop_ab_test(TEST)
        version = m.store.read().version
        assert not m.update_ab_test(TEST, {"control": "green"})
        assert TEST in m.last_error and "control" in m.last_error
        assert m.store.read().version == version
        assert set(_variants(m).values()) == {"control"}
        # A replacement written stopped, likewise.
        assert not m.create_ab_test(_test(control="green"), start=False)
        assert m.store.read().version == version
    finally:
        m.close()


def test_a_redis_document_changing_a_stopped_tests_serve_is_refused(redis_server, stores, tmp_path):
    url = redis_server.url + "?namespace=enrol&poll=0.05&cache=off"
    m = _manager(tmp_path, url)
    try:
        _started(m)
        assert m.stop_ab_test(TEST)
        writer = stores(redis_server.url + "?namespace=enrol&cache=off")
        _old, written = writer.update(lambda s: _serving(s, "green"))
        deadline = time.monotonic() + 10
        while m._live.last_error is None and time.monotonic() < deadline:
            time.sleep(0.02)
        _refused_naming(m._live.last_error.problems, f"flags.{TEST}.rules[0]")
        assert m._live.document.version < written.version
        assert set(_variants(m).values()) == {"control"}
        # A change through the API is not carried live on top of the refused one.
        assert not m.update_ab_test(TEST, {"description": "e"})
    finally:
        m.close()


# -- what stays allowed ---------------------------------------------------------------


def test_legitimate_changes_stay_allowed(tmp_path, store_url):
    m = _manager(tmp_path, store_url)
    try:
        _started(m, layer="home", layer_percentage=40)
        assert m.update_ab_test(TEST, {"layer_percentage": 60}), m.last_error
        assert m.update_ab_test(TEST, {"description": "ramped"}), m.last_error
        assert m.register_custom_feature_flag("unrelated", enabled=True)
        m.set_feature_flag("unrelated", True, 30.0)
        assert m.stop_ab_test(TEST)
        assert m.update_ab_test(TEST, {"description": "stopped"}), m.last_error
        assert m.create_ab_test(_test(), start=True), m.last_error  # resumed
        assert m.stop_ab_test(TEST)
        assert m.delete_ab_test(TEST)
        again = _test(traffic_split={"control": 10, "green": 90},
                      configurations={"control": {"x": 1}, "green": {"x": 2}})  # fmt: skip
        assert m.create_ab_test(again), m.last_error
    finally:
        m.close()


def test_a_new_run_by_hand_may_change_a_stopped_tests_serve(tmp_path):
    m = _manager(tmp_path)
    try:
        _started(m)
        assert m.stop_ab_test(TEST)
        since = int(time.time()) + 1
        _hand_edit(m, lambda s: _with(_serving(s, "green"), control="green", since=since))
        assert m.reload(), m._live.last_error
        assert set(_variants(m).values()) == {"green"}
    finally:
        m.close()


def test_the_flags_file_is_not_written_when_refused(tmp_path):
    m = _manager(tmp_path)
    try:
        _started(m)
        assert m.stop_ab_test(TEST)
        path = Path(m.flags_file)
        before = path.stat().st_mtime_ns, path.read_bytes()
        assert not m.update_ab_test(TEST, {"control": "blue"})
        assert (path.stat().st_mtime_ns, path.read_bytes()) == before
    finally:
        m.close()
