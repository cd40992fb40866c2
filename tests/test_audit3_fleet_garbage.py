"""A server that answers like Redis but returns garbage to cfgcore's scripts (a proxy
or another server in front of the store, a misbehaving fork), third audit. The reply
to the read script was indexed as it came: an integer or a short list made ``read()``
(and so opening a manager) raise a bare TypeError or IndexError, and ``update()``
unpacked the write script's reply the same way. Both now refuse a reply of another
shape as a Redis error: ``read()`` serves the cache file or raises a ConfigError naming
the store and the reply, ``update()`` raises a ConfigError and writes nothing, and the
follower keeps retrying, saying why.

The server is a small RESP2 responder on a loopback socket (a real redis-server cannot
be made to answer a script with something else); RESP2 is what cfgcore's clients speak
(fourth audit: redis-py 8's default RESP3 needs HELLO, which a Redis before 6 lacks). A
map is an array of its keys and values there, a null a bulk string of length -1."""

from __future__ import annotations

import socket
import threading

import pytest

from cfgcore.errors import ConfigError
from cfgcore.runtime.redis_store import RedisFlagStore
from tests.waiting import wait_for

GARBAGE = {
    "an integer": b":5\r\n",
    "a short array": b"*2\r\n:1\r\n:2\r\n",
    "an array of arrays": b"*5\r\n*0\r\n*0\r\n*0\r\n*0\r\n*0\r\n",
    "a size that is text": b"*5\r\n$1\r\n1\r\n$2\r\nab\r\n$-1\r\n$2\r\nxy\r\n$3\r\nbig\r\n",
    "a map": b"*2\r\n$1\r\na\r\n:1\r\n",
}


def _commands(buf: bytes) -> tuple[list[list[bytes]], bytes]:
    """The complete RESP commands (arrays of bulk strings) at the start of ``buf``."""
    out = []
    while buf.startswith(b"*"):
        end = buf.find(b"\r\n")
        if end < 0:
            break
        n, pos, args = int(buf[1:end]), end + 2, []
        for _ in range(n):
            e = buf.find(b"\r\n", pos)
            if e < 0:
                return out, buf
            size, start = int(buf[pos + 1 : e]), e + 2
            if len(buf) < start + size + 2:
                return out, buf
            args.append(buf[start : start + size])
            pos = start + size + 2
        else:
            out.append(args)
            buf = buf[pos:]
            continue
        break
    return out, buf


class GarbageServer:
    """Answers connection set-up, SUBSCRIBE and SCRIPT like Redis, every script call
    (EVALSHA, EVAL) with ``reply``, and anything else with +OK."""

    def __init__(self, reply: bytes) -> None:
        self.reply = reply
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        self.scripts = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _answer(self, args: list[bytes]) -> bytes:
        cmd = args[0].upper()
        if cmd == b"HELLO":
            return b"%2\r\n$6\r\nserver\r\n$5\r\nredis\r\n$5\r\nproto\r\n:3\r\n"
        if cmd in (b"EVALSHA", b"EVAL"):
            self.scripts += 1
            return self.reply
        if cmd == b"SCRIPT":
            return b"$40\r\n" + b"0" * 40 + b"\r\n"
        if cmd == b"SUBSCRIBE":
            ch = args[1]
            return b"*3\r\n$9\r\nsubscribe\r\n$%d\r\n%s\r\n:1\r\n" % (len(ch), ch)
        if cmd == b"HMGET":
            return b"*2\r\n$-1\r\n$-1\r\n"
        return b"+OK\r\n"

    def _serve(self, conn: socket.socket) -> None:
        buf = b""
        with conn:
            while True:
                try:
                    data = conn.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                cmds, buf = _commands(buf + data)
                for args in cmds:
                    conn.sendall(self._answer(args))

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(params=sorted(GARBAGE))
def garbage(request):
    server = GarbageServer(GARBAGE[request.param])
    yield server
    server.close()


def test_read_and_update_refuse_a_reply_of_another_shape_with_a_config_error(garbage, tmp_path):
    store = RedisFlagStore(
        f"redis://127.0.0.1:{garbage.port}/0?namespace=g&cache={tmp_path / 'c.msgpack'}"
    )
    try:
        with pytest.raises(ConfigError) as info:
            store.read()
        assert "unexpected reply to the read script" in str(info.value)
        assert f"127.0.0.1:{garbage.port}" in str(info.value)
        with pytest.raises(ConfigError) as info:
            store.update(lambda snap: snap, force=True)
        assert "unexpected reply to the" in str(info.value)
        assert store.stats["writes"] == 0
    finally:
        store.close()


def test_a_follower_of_such_a_server_keeps_retrying_and_says_why(garbage, tmp_path):
    store = RedisFlagStore(
        f"redis://127.0.0.1:{garbage.port}/0?namespace=g&backoff_max=0.05"
        f"&cache={tmp_path / 'c.msgpack'}"
    )
    try:
        store.watch(lambda doc: None)
        assert wait_for(lambda: "unexpected reply to the read script" in str(store.last_error))
        seen = garbage.scripts
        assert wait_for(lambda: garbage.scripts > seen + 2)  # still retrying
        assert store._thread is not None and store._thread.is_alive()
        assert not store.connected
    finally:
        store.close()
