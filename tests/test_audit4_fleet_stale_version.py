"""A flag document older than the live one, fourth audit. A process that writes while
its own follower is delivering the version before (read just before the write) used to
log "ignoring flag document version N older than live N+1" at WARNING: an alarm for
what is only the follower lagging behind this process's own write. Now that case is
logged at DEBUG, and an older version from anywhere else (a reload reading a store that
went backwards) still at WARNING. Real Redis, real follower, real flag sets."""

from __future__ import annotations

import logging
import threading

from cfgcore.runtime.flags import LiveFlags
from tests.test_audit4_fleet_auth import _set
from tests.waiting import wait_for

OLDER = "older than live"
BEHIND = "is behind the live"


def _records(caplog, text):
    return [r for r in caplog.records if r.name == "cfgcore.flags" and text in r.getMessage()]


def test_own_write_overtaking_the_follower_is_logged_at_debug(redis_server, stores, caplog):
    other = stores(redis_server.url)
    other.update(_set("one"))  # version 1
    store = stores(redis_server.url)
    entered, release = threading.Event(), threading.Event()

    def gate(doc):  # runs before the flag set's own callback: holds version 2 back
        if doc.version == 2:
            entered.set()
            release.wait(30)

    store.watch(gate)
    live = LiveFlags(store)
    try:
        assert live.document.version == 1
        with caplog.at_level(logging.DEBUG, logger="cfgcore.flags"):
            other.update(_set("two"))  # version 2: the follower reads it, then waits
            assert entered.wait(15)
            live.update(_set("three"), source="test")  # this process writes version 3
            assert live.document.version == 3
            accepted = store.stats["accepted"]
            release.set()  # the follower delivers version 2, now behind the live 3
            assert wait_for(lambda: store.stats["accepted"] > accepted)
        assert live.document.version == 3
        assert live.engine.evaluate("f", {}).value == "three"
        behind = _records(caplog, BEHIND)
        assert [r.levelno for r in behind] == [logging.DEBUG]
        assert "version 2" in behind[0].getMessage() and "live 3" in behind[0].getMessage()
        assert not [r for r in caplog.records if r.levelno >= logging.WARNING and OLDER in
                    r.getMessage()]  # fmt: skip
    finally:
        release.set()
        live.close()


def test_a_reload_reading_an_older_version_than_live_still_warns(redis_server, stores, caplog):
    writer = stores(redis_server.url)
    writer.update(_set("one"))
    r = redis_server.client()
    key = writer.key
    first = r.hgetall(key)  # version 1, as stored
    live = LiveFlags(stores(redis_server.url))
    try:
        live.update(_set("two"), source="test")  # version 2, this process's own write
        assert live.document.version == 2
        r.delete(key)
        r.hset(key, mapping=first)  # the store went back to version 1 (a lost failover)
        with caplog.at_level(logging.DEBUG, logger="cfgcore.flags"):
            assert live.refresh("reload") is False
        assert live.document.version == 2
        assert live.engine.evaluate("f", {}).value == "two"
        older = _records(caplog, OLDER)
        assert [r.levelno for r in older] == [logging.WARNING]
        assert "version 1 older than live 2" in older[0].getMessage()
        assert not _records(caplog, BEHIND)
    finally:
        live.close()
