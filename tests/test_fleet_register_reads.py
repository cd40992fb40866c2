"""How often the fleet's guardrail stop register is read while a host judges a
document: once per document, also while the live document holds a guardrail stop
(the fleet's end of that stop, and the stops the register holds, come from the same
read). Before, such a host read the register twice for every fleet document (once to
tell whether the fleet ended its own stop, once for the stops it holds), and twice for
each of its own writes. A real Redis (tests/redis_server.py),
real managers; a counting wrapper around the store's real read."""

from __future__ import annotations

import msgspec

from cfgcore.experiments.abtest import guardrail_stop
from cfgcore.snapshot import Flag
from tests.redis_server import wait_for
from tests.test_fix10_exp_guardrail_hold import TEST
from tests.test_fix12_experiments_fleet_hold import _manager, _served, _stopped_then_down
from tests.test_fix13_fleet_stop_register import _host


def _counting(store):
    calls = []
    real = store.read_stop_register

    def counting(*args, **kw):
        calls.append(1)
        return real(*args, **kw)

    store.read_stop_register = counting
    return calls


def _with_flag(snap, key):
    return msgspec.structs.replace(
        snap, flags={**snap.flags, key: Flag(variants={"on": True, "off": False},
                                             default="on")},
    )  # fmt: skip


def test_a_fleet_document_costs_one_register_read_while_a_stop_is_live(
    redis_server, stores, tmp_path, impl
):
    base = redis_server.url + "?namespace=ab&poll=0.1"
    url, state = _host(base, tmp_path, "a")
    _stopped_then_down(url, state, impl)
    writer = stores(redis_server.url + "?namespace=ab&cache=off")
    a = _manager(url, state, impl)
    try:
        assert guardrail_stop(a.list_ab_tests()[TEST]) is not None  # the live stop
        assert _served(a) == {"control"}
        calls = _counting(a._live.store)
        for n in range(3):
            doc = writer.update(lambda old, n=n: _with_flag(old, f"other{n}"))[1]
            wait_for(lambda doc=doc: a._live.document.version == doc.version)
        assert a._live.last_error is None
        assert len(calls) == 3  # one read per document
        # the host's own write (judged on the stored document, against the live one
        # as the follower's are, then the register's stops held): one read too
        calls.clear()
        a.set_feature_flag("mine", True)
        assert "mine" in writer.read().snapshot.flags
        assert len(calls) == 1
        assert _served(a) == {"control"}
    finally:
        a.close()
