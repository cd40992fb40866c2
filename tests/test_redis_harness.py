"""tests/redis_server.py itself: a server it starts is the one the test talks to."""

from __future__ import annotations

import pytest

from tests import redis_server
from tests.redis_server import RedisServer


def test_a_port_taken_before_the_server_binds_it_is_not_another_servers(
    redis_binary, tmp_path, monkeypatch
):
    # free_port() picks a port nobody listens on, then the server binds it a moment
    # later: another worker's server can take it in between. start() returned once
    # something answered PING there (the other server) while its own process exited,
    # and the test went on against a server it did not start.
    other = RedisServer(str(tmp_path / "other")).start()
    try:
        picks = [other.port]  # the next pick is the taken port, then free ones
        free = redis_server.free_port
        monkeypatch.setattr(redis_server, "free_port", lambda: picks.pop() if picks else free())
        server = RedisServer(str(tmp_path / "mine")).start()
        try:
            assert server.port != other.port
            assert server.proc is not None and server.proc.poll() is None
            assert server.client().ping()
        finally:
            server.stop()
        # a port given (or kept for a restart) is not changed: taken, start() says so
        with pytest.raises(RuntimeError, match="exited"):
            RedisServer(str(tmp_path / "given"), port=other.port).start()
    finally:
        other.stop()


def test_a_refused_port_refuses_connections_and_no_server_can_take_it(redis_binary, tmp_path):
    """A URL that must reach nothing: a connection is refused, and a server started on
    the port (as another worker's may be, on a port free_port() gave up) cannot bind it."""
    import socket

    port = redis_server.refused_port()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2)
    with pytest.raises(RuntimeError, match="exited"):
        RedisServer(str(tmp_path / "late"), port=port).start()
