"""close() while a write to the Redis store is in flight, third audit. The store's
close() disconnects the connection pool; a write another thread had sent (a flag
change through the manager) then failed inside redis-py with whatever it was doing,
a bare ValueError or AttributeError out of ``set_feature_flag``. It now fails as a
lost connection: a ConfigError saying the store was closed during the write, and
nothing half-written. The write is held in flight deterministically by pausing the
real redis-server's writes (CLIENT PAUSE ... WRITE) until close() has run."""

from __future__ import annotations

import threading

from cfgcore.errors import ConfigError
from cfgcore.runtime.redis_store import RedisFlagStore
from tests.waiting import wait_for


def _in_flight(r, command: str) -> bool:
    listing = r.execute_command("CLIENT", "LIST")
    listing = listing.decode() if isinstance(listing, bytes) else listing
    return any(f"cmd={command}" in line for line in listing.splitlines())


def _blocked(r, command: str) -> bool:
    """A client's ``command`` is waiting (flag b: held by CLIENT PAUSE), not just the
    last one it ran (CLIENT LIST's cmd= names that too)."""
    listing = r.execute_command("CLIENT", "LIST")
    listing = listing.decode() if isinstance(listing, bytes) else listing
    return any(
        f"cmd={command}" in line and "b" in line.split(" flags=", 1)[1].split(" ", 1)[0]
        for line in listing.splitlines()
        if " flags=" in line
    )


def _close_during(r, store, write):
    """Run ``write()`` in a thread, close ``store`` while its script waits in the
    paused server (``r``: a client of it), and return what the write raised or
    returned."""
    out: list[object] = []

    def run():
        try:
            out.append(write())
        except Exception as exc:
            out.append(exc)

    r.execute_command("CLIENT", "PAUSE", "10000", "WRITE")
    t = threading.Thread(target=run)
    try:
        t.start()
        assert wait_for(lambda: _blocked(r, "evalsha"))
        store.close()
        t.join(15)
    finally:
        r.execute_command("CLIENT", "UNPAUSE")
    assert not t.is_alive() and len(out) == 1
    return out[0]


def test_a_store_closed_during_a_write_fails_it_with_a_config_error(redis_server, tmp_path):
    store = RedisFlagStore(redis_server.url + f"?namespace=cr1&cache={tmp_path / 'c.msgpack'}")
    store.read()
    # (clients closed by the test: one left to the collector warns of its socket)
    with redis_server.client() as r:
        result = _close_during(r, store, lambda: store.update(lambda snap: snap))
        assert isinstance(result, ConfigError), repr(result)
        assert "closed during the write" in str(result)
        assert r.hget("{cr1}:flags", "version") is None  # nothing written


def test_a_manager_closed_during_a_flag_change_raises_a_config_error(redis_server, tmp_path):
    from cfgcore.dynamic_config import DynamicConfigurationManager

    url = redis_server.url + f"?namespace=cr2&cache={tmp_path / 'c.msgpack'}"
    m = DynamicConfigurationManager(store=url, state_dir=tmp_path / "state")
    m.set_feature_flag("a", True)
    with redis_server.client() as r:
        result = _close_during(r, m.store, lambda: m.set_feature_flag("a", False))
        m.close()
        assert isinstance(result, ConfigError), repr(result)
        assert m.is_feature_enabled("a", {}) is True  # the change did not go live
        assert int(r.hget("{cr2}:flags", "version")) == 1


def test_a_store_closed_during_a_read_serves_its_cache_or_says_why(redis_server, tmp_path):
    url = redis_server.url + f"?namespace=cr3&cache={tmp_path / 'c.msgpack'}"
    store = RedisFlagStore(url)
    with redis_server.client() as r:
        result = _close_during(r, store, store.read)
    assert isinstance(result, ConfigError), repr(result)  # no cache file yet
    assert "the store was closed" in str(result)


def _die_during_write(tmp_path, *, pause_in_change: bool):
    """Pause Redis writes, start an update, kill the server while an EVALSHA waits
    (the write script when ``pause_in_change``: the pause starts inside ``change``,
    after the document was read; else the read script, the first one the update
    sends); the update's exception and ``last_error``."""
    from tests.redis_server import running

    with running(str(tmp_path / "srv")) as server:
        store = RedisFlagStore(server.url + f"?namespace=unk&cache={tmp_path / 'c.msgpack'}")
        r = server.client()
        try:
            store.read()
            out: list[object] = []

            def change(snap):
                if pause_in_change:
                    r.execute_command("CLIENT", "PAUSE", "10000", "WRITE")
                return snap

            def run():
                try:
                    out.append(store.update(change))
                except Exception as exc:
                    out.append(exc)

            if not pause_in_change:
                r.execute_command("CLIENT", "PAUSE", "10000", "WRITE")
            t = threading.Thread(target=run)
            t.start()
            assert wait_for(lambda: _blocked(r, "evalsha"))
            server.kill()
            t.join(30)
            assert not t.is_alive() and len(out) == 1
            assert isinstance(out[0], ConfigError), repr(out[0])
            return str(out[0]), store.last_error or ""
        finally:
            store.close()
            r.close()


def test_a_write_whose_server_dies_in_flight_says_its_outcome_is_unknown(tmp_path):
    """The script was sent; the server died before replying and cannot be asked
    whether it ran. The write may have landed (a durable server that ran it before
    dying keeps it), so the error must not claim it was not written."""
    error, last = _die_during_write(tmp_path, pause_in_change=True)
    assert "outcome is unknown" in error
    assert "outcome is unknown" in last


def test_a_write_whose_server_dies_before_its_script_is_sent_says_not_written(tmp_path):
    """Fourth audit: the server died while the update was still reading the document,
    so the write script was never sent. This used to say "the outcome is unknown
    (the connection was lost after the write was sent ...)" (this test's predecessor
    paused the read, not the write); nothing can have been written."""
    error, last = _die_during_write(tmp_path, pause_in_change=False)
    assert "cannot write the flag document" in error
    assert "unknown" not in error and "unknown" not in last
