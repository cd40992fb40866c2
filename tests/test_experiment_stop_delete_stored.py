"""``stop_ab_test`` and ``delete_ab_test`` judge whether the test exists on the newest
stored document: the one the change is made and written on.

Both first looked the test up in the document this process serves. A test the store
held that this process did not serve (created by another process since this one read
the store, or held by a stored document this process refused) could not be stopped
from here: an operator's stop of a misbehaving test returned False. And a delete of a
test the store no longer held (deleted by another process since) wrote the document
again with a new retirement record and returned True. Now the stop and the delete
land whenever the store takes the write, a test the store does not hold is False with
nothing written, and a stored document refused for another reason is named (file and
key path) in the ConfigError. Real files, a real Redis (tests/redis_server.py), real
managers sharing one store."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfgcore.dynamic_config import DynamicConfigurationManager
from cfgcore.engine import engine_class
from cfgcore.errors import ConfigError
from cfgcore.experiments.abtest import RETIRED
from tests.fuzz import examples
from tests.test_audit5_flags2_served_tests import ab, edit, resplit, served
from tests.test_cli_experiment_stored_test import _refusing_host


@pytest.fixture(autouse=True)
def _quiet_state(tmp_path, monkeypatch):
    for name in ("CFGCORE_CONFIG_DIR", "CFGCORE_FLAG_STORE", "CFGCORE_ACCESS_POLICY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("CFGCORE_USAGE", "0")


@pytest.fixture
def pair(tmp_path, impl):
    """Two managers on one flags file, each with its own live set (as two processes):
    neither watches the file, so neither sees the other's writes until it reloads."""
    path = str(tmp_path / "flags.json")
    a = DynamicConfigurationManager(flags_file=path, engine=engine_class(impl)())
    b = DynamicConfigurationManager(flags_file=path, engine=engine_class(impl)())
    yield a, b
    b.close()
    a.close()


def _stored(m):
    with open(m.flags_file, "rb") as fh:
        return json.load(fh)


def _audited(m, source):
    return [e for e in m.audit.entries() if e.get("source") == source]


def test_a_test_another_process_created_is_stopped_without_a_reload(pair):
    a, b = pair
    assert b.create_ab_test(ab("extra"))
    assert "extra" not in a.list_ab_tests()  # a has not read the store since
    assert a.stop_ab_test("extra", "misbehaving") is True, a.last_error
    record = _stored(a)["experiments"]["extra"]
    assert (record["status"], record["stopped_reason"]) == ("stopped", "misbehaving")
    assert set(served(a, "extra").values()) == {"control"}  # a serves what it wrote
    # Audited as this process's stop of the stored test.
    assert {e["path"] for e in _audited(a, "stop_ab_test")} == {
        "flags.extra",
        "experiments.extra",
    }
    b.reload()
    assert set(served(b, "extra").values()) == {"control"}


def test_a_test_another_process_created_is_deleted_without_a_reload(pair):
    a, b = pair
    assert b.create_ab_test(ab("extra"))
    assert "extra" not in a.list_ab_tests()
    assert a.delete_ab_test("extra") is True, a.last_error
    doc = _stored(a)
    assert "extra" not in doc.get("experiments", {}) and "extra" not in doc["flags"]
    assert "extra" in doc["metadata"][RETIRED]
    assert {e["path"] for e in _audited(a, "delete_ab_test")} == {
        "flags.extra",
        "experiments.extra",
        "metadata",
    }
    assert "extra" not in a.list_ab_tests()


@pytest.mark.parametrize("command", ["stop", "delete"])
def test_a_test_another_process_deleted_is_false_and_nothing_is_written(pair, command):
    """A delete racing another delete (or a stop after it): the second finds no test
    in the store, writes nothing and records no second retirement."""
    a, b = pair
    assert a.create_ab_test(ab("gone"))
    b.reload()
    assert "gone" in b.list_ab_tests()
    assert a.delete_ab_test("gone") is True
    after = _stored(a)
    retired = after["metadata"][RETIRED]["gone"]
    with open(a.flags_file, "rb") as fh:
        written = fh.read()
    act = b.delete_ab_test if command == "delete" else b.stop_ab_test
    assert act("gone") is False
    with open(a.flags_file, "rb") as fh:
        assert fh.read() == written  # nothing written: one retirement, at its time
    assert _stored(a)["metadata"][RETIRED] == {"gone": retired}
    assert _audited(b, f"{command}_ab_test") == []


def test_a_name_the_store_never_held_is_false(pair):
    a, _ = pair
    assert a.create_ab_test(ab())
    with open(a.flags_file, "rb") as fh:
        written = fh.read()
    assert a.stop_ab_test("nosuch") is False
    assert a.delete_ab_test("nosuch") is False
    with open(a.flags_file, "rb") as fh:
        assert fh.read() == written


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=6,
)


@settings(
    max_examples=examples(25),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(entry=JSON.filter(lambda v: not isinstance(v, dict)))
def test_a_stored_entry_that_is_no_record_is_no_test(pair, entry):
    """A hand edit that leaves ``experiments.extra`` something other than a record
    (which no process serves as a test): stop and delete say False, write nothing, and
    raise nothing."""
    a, _ = pair

    def change(doc):
        doc.setdefault("experiments", {})["extra"] = entry
        doc["flags"].setdefault("extra", {"variants": {"on": True}, "default": "on"})

    if "keep" not in a.list_ab_tests():
        assert a.create_ab_test(ab("keep"))
    edit(a, change)
    a.reload()  # (False when the last example left the same document)
    assert a._live.last_error is None and a.snapshot.experiments["extra"] == entry
    with open(a.flags_file, "rb") as fh:
        written = fh.read()
    assert a.stop_ab_test("extra") is False
    assert a.delete_ab_test("extra") is False
    with open(a.flags_file, "rb") as fh:
        assert fh.read() == written


def _bad_flag(doc):
    doc["flags"]["bad"] = {"variants": {"on": True}, "default": "nope"}


@pytest.mark.parametrize("command", ["stop", "delete"])
@pytest.mark.parametrize(
    ("breakage", "where"),
    [(_bad_flag, "flags.bad.default"), (resplit({"control": 30, "green": 70}),
                                         "experiments.checkout.traffic_split")],
    ids=["bad-flag", "moved-users"],
)  # fmt: skip
def test_a_stored_document_refused_for_another_reason_is_named(pair, command, breakage, where):
    """The stored document holds a test this process does not serve, and a problem of
    its own (a flag that does not compile, a split moving the users of a test this
    process serves): the stop or the delete, which keeps that problem, is refused
    naming the file and the key path; nothing is written."""
    a, b = pair
    assert a.create_ab_test(ab())
    assert b.create_ab_test(ab("extra"))
    edit(a, breakage)
    assert a.reload() is False and where in str(a._live.last_error)
    assert "extra" not in a.list_ab_tests()
    with open(a.flags_file, "rb") as fh:
        written = fh.read()
    act = a.delete_ab_test if command == "delete" else a.stop_ab_test
    with pytest.raises(ConfigError) as raised:
        act("extra")
    text = str(raised.value)
    assert a.flags_file in text and where in text, text
    with open(a.flags_file, "rb") as fh:
        assert fh.read() == written
    assert "extra" not in a.list_ab_tests()


# -- a fleet: a host that refuses the stored document ---------------------------------


@pytest.mark.parametrize("command", ["stop", "delete"])
def test_a_host_refusing_the_stored_document_stops_or_deletes_a_test_only_it_holds(
    redis_server, stores, tmp_path, impl, command
):
    """Host B refuses the stored document (put back from before its guardrail stop);
    that document holds ``extra``, which B does not serve. The stop or the delete moves
    nobody: written (the guardrail's stop kept in force), every process takes it."""
    from tests.test_fix10_exp_guardrail_hold import TEST

    b, _, reader = _refusing_host(redis_server, stores, tmp_path, impl, store_has_extra=True)
    try:
        assert "extra" not in b.list_ab_tests()
        assert "extra" in reader.read().snapshot.experiments
        if command == "stop":
            assert b.stop_ab_test("extra") is True, b.last_error
            assert reader.read().snapshot.experiments["extra"]["status"] == "stopped"
        else:
            assert b.delete_ab_test("extra") is True, b.last_error
            assert "extra" not in reader.read().snapshot.experiments
            assert "extra" in reader.read().snapshot.metadata[RETIRED]
        assert reader.read().snapshot.experiments[TEST]["status"] == "stopped"
        assert b._live.last_error is None  # B serves the document it wrote
    finally:
        b.close()
