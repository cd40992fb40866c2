"""A refusal of the fleet's guardrail stop register (an entry that is no entry cfgcore
writes, or one not signed by a trusted key with verification keys set) stands in
``health()`` while it stays stored: a ``warn`` on the ``flag_store`` check (the process
stays ready, as with a refused flag document), cleared once the entry is fixed or
removed (the follower checks at each poll while one stands). It showed only until the
next flag document went live, as a refused document on ``flags``, and the store's
``last_error`` kept saying it after the entry was gone. Real redis-server."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfgcore.dynamic_config import DynamicConfigurationManager
from cfgcore.runtime.redis_store import RedisFlagStore
from cfgcore.runtime.signing import generate_signing_pair
from tests.fleet_helpers import add, quiet_fleet  # noqa: F401  (quiet_fleet: an autouse fixture)
from tests.fuzz import examples
from tests.redis_server import wait_for

K1 = generate_signing_pair("k1")


def _check(manager, name: str):
    return next(c for c in manager.health().readiness if c.name == name)


@pytest.mark.parametrize("planted", ["junk", "unsigned"])
def test_a_refused_entry_stands_in_health_until_it_is_removed(
    redis_server, tmp_path, monkeypatch, planted
):
    ns = f"hs{planted}"
    if planted == "unsigned":  # every process of this fleet signs and checks with k1
        monkeypatch.setenv("CFGCORE_FLEET_SIGNING_KEY", K1[0])
        value = json.dumps({"at": 1.0, "record": None})
        said = "is not signed"
    else:
        value, said = "garbage", "'planted' is no entry cfgcore writes"
    url = redis_server.url + f"?namespace={ns}&poll=0.1"
    manager = DynamicConfigurationManager(
        store=url + f"&cache={tmp_path / 'c.msgpack'}", log_exposures=False
    )
    other = RedisFlagStore(url + "&cache=off")
    register = f"{{{ns}}}:flags:guardrail-stops"
    try:
        wait_for(lambda: _check(manager, "flag_store").status == "ok")  # (following)
        redis_server.client().hset(register, "planted", value)
        other.update(add("one"))  # a document judged: the register is read
        wait_for(lambda: manager.store.stats["stops_rejected"] == 1)
        wait_for(lambda: manager.store.version == other.version)
        for _ in range(2):  # and still after the next document went live
            check = wait_for(lambda: (c := _check(manager, "flag_store")).status == "warn" and c)
            assert said in check.detail and "guardrail stop register" in check.detail
            assert f"at version {other.version}" in check.detail
            report = manager.health()
            assert report.ready  # a warning, as a refused flag document's
            # no flag document was refused: the flags check does not say one was
            flags = _check(manager, "flags")
            assert flags.status == "ok", flags.detail
            other.update(add("two"))
            wait_for(lambda: manager.store.version == other.version)
        assert manager.store.stats["stops_rejected"] == 1  # reported once
        redis_server.client().hdel(register, "planted")  # fixed; no document written
        wait_for(lambda: _check(manager, "flag_store").status == "ok")
        assert manager.health().ready and manager.store.last_error is None
    finally:
        other.close()
        manager.close()


@settings(
    max_examples=examples(25),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(name=st.binary(min_size=1, max_size=20), value=st.binary(max_size=60))
def test_whatever_is_refused_stands_until_a_read_finds_it_gone(redis_server, stores, name, value):
    store = stores(redis_server.url + "?namespace=hsh&cache=off")
    r = redis_server.client()
    r.delete(store.stops_key)
    r.hset(store.stops_key, name, value)
    taken = store.read_stop_register()
    if taken:  # (a value that is an entry: nothing to say)
        assert store.stop_register_problem is None
        return
    assert "the guardrail stop register" in str(store.stop_register_problem)
    store._recheck_stop_register()  # a poll: the value is still there
    assert "the guardrail stop register" in str(store.stop_register_problem)
    r.delete(store.stops_key)
    store._recheck_stop_register()
    assert store.stop_register_problem is None
