"""Health of a followed Redis store: a follower stuck on a hung server is connected but
confirms nothing, and health must say so rather than "ok"."""

from __future__ import annotations

import signal

from tests.redis_server import wait_for


def test_a_follower_stuck_on_a_hung_server_is_not_ok(redis_server):
    from cfgcore.observability.health import _store_check
    from cfgcore.runtime.redis_store import RedisFlagStore
    from tests.test_fleet_store import add

    # A long socket timeout: while the server is stopped, the follower's poll blocks
    # and the follower stays "connected", as on a half-open connection.
    url = redis_server.url + "?poll=0.05&socket_timeout=30"
    writer, follower = RedisFlagStore(redis_server.url), RedisFlagStore(url)
    try:
        writer.update(add("a"))
        follower.read()
        follower.watch(lambda doc: None)
        wait_for(lambda: follower.connected)
        assert _store_check("flag_store", follower, 0.2).status == "ok"
        redis_server.proc.send_signal(signal.SIGSTOP)
        try:
            check = wait_for(
                lambda: (c := _store_check("flag_store", follower, 0.2)).status != "ok" and c
            )
            assert follower.connected  # still connected: only the age shows the stall
            assert check.status == "warn" and "not confirmed current" in check.detail
        finally:
            redis_server.proc.send_signal(signal.SIGCONT)
        wait_for(lambda: _store_check("flag_store", follower, 0.2).status == "ok")
    finally:
        follower.close()
        writer.close()
