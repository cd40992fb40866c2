"""An entry of the guardrail stop register that is no entry cfgcore writes (not JSON, a
name that is not UTF-8, no time, a record that is no mapping: stored by another program
or by hand) is reported as a refused entry is: once while it stays stored, counted
(``stats["stops_rejected"]``), in ``last_error`` and to the store's listeners (the flag
set's health and audit). It was logged as an ERROR at every read of the register (every
write and every document judged), and never reached ``last_error``, the listeners or the
audit log. Real redis-server."""

from __future__ import annotations

import json
import logging

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfgcore.dynamic_config import DynamicConfigurationManager
from cfgcore.errors import StopRegisterError
from tests.fuzz import examples
from tests.redis_server import wait_for

RECORD = {"status": "stopped", "guardrail_stopped_at": 100.0, "control": "control"}
PLANTED = {
    b"not_json": b"\xff\xfe{",
    b"\xff\xfe\x1b[31mname": json.dumps({"at": 1.0, "record": None}).encode(),
    b"no_time": b'{"record": null}',
    b"record_text": b'{"at": 5, "record": "stopped"}',
}


def _planted_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


def test_unreadable_entries_are_reported_once_each_and_the_good_ones_kept(
    redis_server, stores, caplog
):
    store = stores(redis_server.url + "?namespace=unr&cache=off")
    assert store.write_stop_register({"t": (100.0, RECORD)}) == 1
    errors: list[Exception] = []
    store.watch(lambda doc: None, on_error=errors.append)
    redis_server.client().hset(store.stops_key, mapping=PLANTED)
    caplog.set_level(logging.ERROR, logger="cfgcore.fleet")
    for _ in range(3):  # (a start, then a write or a document judged: each reads it)
        assert store.read_stop_register() == {"t": (100.0, RECORD)}
    wait_for(lambda: len(errors) >= len(PLANTED))
    assert store.stats["stops_rejected"] == len(PLANTED) == len(errors)
    assert all(isinstance(e, StopRegisterError) for e in errors)
    said = " ".join(str(e) for e in errors)
    for name in ("not_json", "no_time", "record_text", "[31mname"):
        assert name in said
    assert "\x1b" not in said  # (the name is shown escaped)
    assert all(f"the guardrail stop register {store.stops_key}" in str(e) for e in errors)
    assert store.last_error in {str(e) for e in errors}
    assert len(_planted_lines(caplog)) == len(PLANTED)  # one ERROR each, not one per read
    # Stored again as it was: not news. Changed: reported again.
    store.read_stop_register()
    redis_server.client().hset(store.stops_key, "not_json", b"still not json")
    store.read_stop_register()
    wait_for(lambda: len(errors) == len(PLANTED) + 1)


def test_a_manager_reports_such_an_entry_once_across_its_writes(redis_server, tmp_path, caplog):
    url = redis_server.url + f"?namespace=unm&cache={tmp_path}/flags.msgpack"
    redis_server.client().hset("{unm}:flags:guardrail-stops", "planted", "garbage")
    caplog.set_level(logging.ERROR)
    manager = DynamicConfigurationManager(store=url, log_exposures=False)
    try:
        events = []
        manager.register_change_listener(events.append)
        for i in range(3):
            manager.set_feature_flag("unm_flag", i % 2 == 0)
        assert "'planted' is no entry cfgcore writes" in str(manager.store.last_error)
    finally:
        manager.close()
    lines = [line for line in _planted_lines(caplog) if "'planted'" in line]
    assert len(lines) == 1, lines


@settings(
    max_examples=examples(25),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(name=st.binary(min_size=1, max_size=20), value=st.binary(max_size=60))
def test_whatever_is_planted_is_read_or_reported_once(redis_server, stores, name, value):
    store = stores(redis_server.url + "?namespace=unh&cache=off")
    r = redis_server.client()
    r.delete(store.stops_key)
    r.hset(store.stops_key, name, value)
    before = store.stats["stops_rejected"]
    first = store.read_stop_register()
    again = store.read_stop_register()
    assert first == again
    assert store.stats["stops_rejected"] - before == (0 if first else 1)
