"""What the metrics say while a fleet process passes over a guardrail stop register
entry (unsigned, planted by whoever can write Redis): the document it came with goes
live, so no flag document was refused. The flag set counted the entry as a refused
document all the same: ``cfgcore_flag_documents_total{result="rejected"}`` went up (the
``flag_document_rejection_rate`` alert fired) and ``cfgcore_flags_last_document_rejected``
said 1, while ``health()`` (rightly) reported the flags current and the entry in the
``flag_store`` check, and the store counted it where it belongs,
``cfgcore_flag_store_stop_entries_rejected_total``."""

from __future__ import annotations

import msgspec

from cfgcore.runtime.redis_store import RedisFlagStore
from cfgcore.snapshot import Flag
from tests.redis_server import wait_for
from tests.test_fix10_exp_guardrail_hold import TEST, _guarded_test
from tests.test_fix12_experiments_fleet_hold import _manager
from tests.test_fleet_signed_stops import K1, _plant_stop
from tests.test_metrics import value


def _add_flag(url: str, key: str) -> None:
    other = RedisFlagStore(url + "&cache=off")
    try:
        other.update(
            lambda s: msgspec.structs.replace(s, flags={**s.flags, key: Flag(default="on")})
        )
    finally:
        other.close()


def test_a_passed_over_stop_entry_is_not_counted_as_a_refused_document(
    redis_server, tmp_path, impl, monkeypatch
):
    monkeypatch.setenv("CFGCORE_FLEET_SIGNING_KEY", K1[0])  # the fleet signs its entries
    url = redis_server.url + "?namespace=ab&poll=0.1"
    m = _manager(url + f"&cache={tmp_path / 'a.msgpack'}", tmp_path / "a", impl)
    try:
        assert m.create_ab_test(_guarded_test())
        store = m._live.store
        mine = {"store": store.url}
        refused = value("cfgcore_flag_documents_total", result="rejected", **mine)
        accepted = value("cfgcore_flag_documents_total", result="ok", **mine)
        _plant_stop(redis_server, "ab", dict(m._live.source.experiments[TEST]))
        version = store.version
        _add_flag(url, "unrelated")  # another process's write: judged against the register
        wait_for(lambda: m._live.document.version == version + 1)  # it went live
        wait_for(lambda: m._live.last_error is not None)  # the entry was passed over
        assert store.stats["stops_rejected"] == 1
        assert value("cfgcore_flag_store_stop_entries_rejected_total", **mine) == 1
        report = m.health()
        assert report.ready and any("guardrail stop" in r for r in report.reasons)
        assert not any(r.startswith("flags:") for r in report.reasons)
        # no flag document was refused: the metrics say so too
        assert value("cfgcore_flag_documents_total", result="ok", **mine) == accepted + 1
        assert value("cfgcore_flag_documents_total", result="rejected", **mine) == refused
        assert value("cfgcore_flags_last_document_rejected", **mine) == 0
        # a document the process does refuse is still counted and flagged
        served = m._live.document.version
        redis_server.client().hset("{ab}:flags", mapping={"version": 99, "checksum": "x"})
        wait_for(lambda: m._live.document_refused)
        assert m._live.document.version == served  # the last good one serves
        assert value("cfgcore_flag_documents_total", result="rejected", **mine) == refused + 1
        assert value("cfgcore_flags_last_document_rejected", **mine) == 1
    finally:
        m.close()
