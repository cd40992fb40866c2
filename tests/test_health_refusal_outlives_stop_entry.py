"""A refused flag document stands in ``health()`` and in
``cfgcore_flags_last_document_rejected`` while the store holds it, whatever the
fleet's guardrail stop register says meanwhile: an entry of the register passed over
(planted by whoever can write Redis) refuses no document, and told to the flag set after
a document refusal it took that refusal's place in ``LiveFlags.last_error``, so the
flags check said ``ok`` and the gauge 0 while the store held a document the process
refused. Health's ``flag_store`` check names the store once, whichever refusal of the
register it reports (an entry not signed named it twice). Real redis-server."""

from __future__ import annotations

import json

import msgspec
import pytest

from cfgcore.dynamic_config import DynamicConfigurationManager
from cfgcore.engine import engine_class
from cfgcore.errors import ConfigError, StopRegisterError
from cfgcore.runtime.redis_store import RedisFlagStore
from cfgcore.runtime.signing import generate_signing_pair
from cfgcore.snapshot import Flag
from tests.fleet_helpers import add, quiet_fleet  # noqa: F401  (quiet_fleet: an autouse fixture)
from tests.redis_server import wait_for
from tests.test_metrics import value

K1 = generate_signing_pair("k1")


def _check(manager, name: str):
    return next(c for c in manager.health().readiness if c.name == name)


def _uncompilable(snap):
    bad = Flag(default="on", prerequisites=["ghost"])
    return msgspec.structs.replace(snap, flags={**snap.flags, "bad": bad})


def test_a_passed_over_stop_entry_leaves_a_document_refusal_standing(redis_server, tmp_path, impl):
    url = redis_server.url + "?namespace=rs&poll=0.1"
    other = RedisFlagStore(url + "&cache=off")
    other.update(add("one"))
    m = DynamicConfigurationManager(
        store=url + f"&cache={tmp_path / 'c.msgpack'}", engine=engine_class(impl)(),
        log_exposures=False, record_usage=False,
    )  # fmt: skip
    store, live = m.store, m._live
    mine = {"store": store.url}
    try:
        wait_for(lambda: _check(m, "flag_store").status == "ok")  # (following)
        served = live.document.version
        other.update(_uncompilable)  # another process's document, refused here
        wait_for(lambda: live.document_refused)
        refusal = live.last_error
        assert "unknown flag 'ghost'" in str(refusal)
        redis_server.client().hset(store.stops_key, "planted", "garbage")
        # This process's own write reads the register (passing the entry over) and,
        # applied to the refused document, is refused too: nothing written.
        with pytest.raises(ConfigError, match="ghost"):
            m.set_feature_flag("one", False)
        wait_for(lambda: store.stats["stops_rejected"] == 1)
        wait_for(lambda: "guardrail stop register" in _check(m, "flag_store").detail)
        # The document refusal still stands, said by health and the gauge.
        assert live.document_refused and live.last_error is refusal
        assert not isinstance(live.last_error, StopRegisterError)
        flags = _check(m, "flags")
        assert flags.status == "warn" and "unknown flag 'ghost'" in flags.detail, flags
        assert value("cfgcore_flags_last_document_rejected", **mine) == 1
        assert live.document.version == served
        assert m.is_feature_enabled("one") is True  # the last good document serves
        # The entry was told all the same: audited.
        errors = [e for e in m.audit.entries() if e.get("kind") == "error"]
        assert any("guardrail stop register" in json.dumps(e) for e in errors)
        # The store fixed: the refusal ends; the entry still stands on flag_store.
        other.update(lambda s: msgspec.structs.replace(
            s, flags={k: f for k, f in s.flags.items() if k != "bad"}))  # fmt: skip
        wait_for(lambda: not live.document_refused)
        assert _check(m, "flags").status == "ok"
        assert value("cfgcore_flags_last_document_rejected", **mine) == 0
        assert "guardrail stop register" in _check(m, "flag_store").detail
    finally:
        other.close()
        m.close()


@pytest.mark.parametrize("planted", ["junk", "unsigned", "oversized"])
def test_the_flag_store_check_names_the_store_once(redis_server, tmp_path, monkeypatch, planted):
    value_ = "garbage"
    if planted == "unsigned":  # every process of this fleet signs and checks with k1
        monkeypatch.setenv("CFGCORE_FLEET_SIGNING_KEY", K1[0])
        value_ = json.dumps({"at": 1.0, "record": None})
    elif planted == "oversized":
        from cfgcore.runtime.redis_store import MAX_STOP_ENTRY_BYTES

        value_ = "x" * (MAX_STOP_ENTRY_BYTES + 1)
    ns = f"once{planted}"
    url = redis_server.url + f"?namespace={ns}&poll=0.1"
    m = DynamicConfigurationManager(
        store=url + f"&cache={tmp_path / 'c.msgpack'}", log_exposures=False, record_usage=False
    )
    other = RedisFlagStore(url + "&cache=off")
    try:
        wait_for(lambda: _check(m, "flag_store").status == "ok")  # (following)
        redis_server.client().hset(m.store.stops_key, "planted", value_)
        other.update(add("one"))  # a document judged: the register is read
        wait_for(lambda: m.store.stats["stops_rejected"] == 1)
        check = wait_for(lambda: (c := _check(m, "flag_store")).status == "warn" and c)
        assert check.detail.count(m.store.url) == 1, check.detail
        assert f"the guardrail stop register {m.store.stops_key}: " in check.detail
        assert "'planted'" in check.detail
        # (the store's own refusal names it, once, as its file)
        assert str(m.store.stop_register_problem).startswith(f"{m.store.url}: the guardrail")
        assert str(m.store.stop_register_problem).count(m.store.url) == 1
    finally:
        other.close()
        m.close()
