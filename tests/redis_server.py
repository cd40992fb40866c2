"""Real Redis servers for the fleet tests: Debian's ``redis-server`` (and
``redis-sentinel``) started on free loopback ports in a temp dir, stopped afterwards.

Tests use the fixtures in tests/conftest.py (``redis_server``). Without the binary the
tests skip, saying so; under CI=true they fail, because .ci/run installs it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

SERVER = shutil.which("redis-server")
SENTINEL = shutil.which("redis-sentinel") or SERVER


def free_port() -> int:
    """A loopback port nobody listens on now (the server binds it right after)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# Sockets of refused_port(), held for the rest of the test run.
_REFUSING: list[socket.socket] = []


def refused_port() -> int:
    """A loopback port that refuses connections for the rest of the test run, for a URL
    that must reach nothing: bound (so no other worker's server can take it, as one may
    take a port free_port() gave up) and never listening."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    _REFUSING.append(s)
    return int(s.getsockname()[1])


def wait_for(predicate: Callable[[], object], timeout: float = 10.0, every: float = 0.01) -> object:
    """Poll ``predicate`` until it returns something truthy; AssertionError on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s: {predicate}")
        time.sleep(every)


class RedisServer:
    """One redis-server process on 127.0.0.1; ``kill()`` and ``start()`` again keep the port.

    ``tls``: the redis-py options of a client of this server (``ssl_ca_certs``,
    ``ssl_certfile``, ...): given, it takes TLS only, on ``port`` (``--port 0
    --tls-port PORT``; ``args`` names its own TLS files)."""

    def __init__(
        self,
        directory: str,
        *,
        port: int | None = None,
        args: tuple[str, ...] = (),
        tls: dict[str, Any] | None = None,
    ):
        self.tls = tls
        self.dir = directory
        self.port = port or free_port()
        # A port free_port() picked may be taken by another process (another test
        # worker's server) before this server binds it: then the first start picks
        # another. A port given, or kept for a restart, is not changed.
        self._may_move = port is None
        self.args = args
        self.proc: subprocess.Popen[bytes] | None = None
        self._clients: list[Any] = []
        self._log = os.path.join(directory, "redis.log")
        self._log_from = 0

    @property
    def url(self) -> str:
        return f"{'rediss' if self.tls is not None else 'redis'}://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        for _ in range(5):
            try:
                self._start()
            except RuntimeError:
                if not (self._may_move and self._port_was_taken()):
                    raise
                self.port = free_port()
                continue
            self._may_move = False  # its port from now on, for kill() and start()
            return self
        raise RuntimeError(f"redis-server found no free port; see {self.dir}")

    def _start(self) -> None:
        assert SERVER is not None
        os.makedirs(self.dir, exist_ok=True)
        # (its log is read from here: an earlier start's lines say nothing of this one)
        self._log_from = os.path.getsize(self._log) if os.path.exists(self._log) else 0
        ports = ("--port", "0", "--tls-port") if self.tls is not None else ("--port",)
        cmd = [
            SERVER, *ports, str(self.port), "--bind", "127.0.0.1", "--dir", self.dir,
            "--save", "", "--appendonly", "no", "--protected-mode", "no",
            "--logfile", self._log,
            # a replica's first sync starts at once (the default waits 5 s for more
            # replicas to share one transfer)
            "--repl-diskless-sync-delay", "0", *self.args,
        ]  # fmt: skip
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self._ready, timeout=10)

    def _new_log(self) -> str:
        try:
            with open(self._log, "rb") as fh:
                fh.seek(self._log_from)
                return fh.read().decode(errors="replace")
        except OSError:
            return ""

    def _port_was_taken(self) -> bool:
        return "Address already in use" in self._new_log()

    def _ready(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"redis-server exited ({self.proc.returncode}); see {self.dir}")
        # This process's own "ready" first: another server answering on the port (one
        # that took it before this one could bind it) is not this one.
        if "Ready to accept connections" not in self._new_log():
            return False
        if self.tls is not None:
            import redis

            client = self._connect(socket_timeout=0.5)
            try:
                return bool(client.ping())
            except redis.AuthenticationError:
                return True  # up, and asking for the password the test configured
            except (redis.RedisError, OSError):
                return False
            finally:
                client.close()
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                s.sendall(b"PING\r\n")
                # -NOAUTH: up, and asking for the password the test configured
                return s.recv(16).startswith((b"+PONG", b"-NOAUTH"))
        except OSError:
            return False

    def client(self):
        """A client of this server, closed by :meth:`stop` (the end of the test): one
        left to the collector warns of its socket, and the suite turns that warning into
        a failure of whichever test the collection runs in. (A closed client reconnects
        on its next command, as after a restart.)"""
        client = self._connect()
        self._clients.append(client)
        return client

    def _connect(self, **kwargs: Any):
        import redis

        tls = {"ssl": True, **self.tls} if self.tls is not None else {}
        return redis.Redis(host="127.0.0.1", port=self.port, **tls, **kwargs)

    def kill(self) -> None:
        """SIGKILL: no goodbye to clients, as a crash or a pulled cable."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        self.proc = None

    def stop(self) -> None:
        clients, self._clients = self._clients, []
        for client in clients:
            with contextlib.suppress(Exception):
                client.close()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None


@contextlib.contextmanager
def running(directory: str, **kwargs):
    server = RedisServer(directory, **kwargs).start()
    try:
        yield server
    finally:
        server.stop()


class Sentinel:
    """One redis-sentinel watching ``primary`` as service ``name`` (quorum 1)."""

    def __init__(
        self,
        directory: str,
        primary: Any,
        name: str = "fleet",
        *,
        replicas: int = 1,
        conf: str = "",
        tls: dict[str, Any] | None = None,
        password: str | None = None,
        down_after: int = 1000,
    ) -> None:
        """``primary``: what has the ``port`` to watch (a :class:`RedisServer`);
        ``conf``: more lines for sentinel.conf (TLS to the primary, its own TLS files);
        ``tls``: the redis-py options of a client of this Sentinel (``ssl_ca_certs``,
        ``ssl_certfile``, ...): given, it takes TLS only on its port (``port 0``);
        ``password``: the one it asks its clients for (``requirepass``);
        ``down_after``: milliseconds without an answer before it takes a server for down
        (``SENTINEL SET NAME down-after-milliseconds`` changes it while it runs)."""
        self.down_after = down_after
        self.password = password
        self.replicas = replicas
        self.conf = conf
        self.tls = tls
        self.dir = directory
        self.port = free_port()
        self.name = name
        self.primary = primary
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Sentinel:
        assert SENTINEL is not None
        os.makedirs(self.dir, exist_ok=True)
        conf = os.path.join(self.dir, "sentinel.conf")  # sentinel rewrites it: one per run
        with open(conf, "w") as fh:
            ports = f"port 0\ntls-port {self.port}" if self.tls is not None else f"port {self.port}"
            fh.write(
                f"{ports}\nbind 127.0.0.1\nprotected-mode no\ndir {self.dir}\n"
                f"logfile {os.path.join(self.dir, 'sentinel.log')}\n"
                f"sentinel monitor {self.name} 127.0.0.1 {self.primary.port} 1\n"
                f"sentinel down-after-milliseconds {self.name} {self.down_after}\n"
                f"sentinel failover-timeout {self.name} 10000\n{self.conf}"
                + (f"requirepass {self.password}\n" if self.password is not None else "")
            )
        cmd = [SENTINEL, conf] if SENTINEL.endswith("sentinel") else [SENTINEL, conf, "--sentinel"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self._ready, timeout=10)
        return self

    def client(self):
        import redis

        tls = {"ssl": True, **self.tls} if self.tls is not None else {}
        return redis.Redis(host="127.0.0.1", port=self.port, password=self.password, **tls)

    def _ready(self) -> bool:
        # Ready to fail over: Sentinel has seen every replica answer INFO (until then
        # SENTINEL FAILOVER says NOGOODSLAVE).
        try:
            found = self.client().sentinel_slaves(self.name)
        except Exception:
            return False
        good = [
            r
            for r in found
            if r.get("is_slave")
            and not r.get("is_disconnected")
            and not r.get("is_sdown")
            and r.get("master-link-status") == "ok"
        ]
        return len(good) >= self.replicas

    def primary_port(self) -> int:
        return int(self.client().sentinel_get_master_addr_by_name(self.name)[1])

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None


@contextmanager
def monitored(redis_server) -> Iterator[list[dict[str, Any]]]:
    """Every command the server runs inside the block (scripts' own included), as
    MONITOR reports them; complete when the block ends."""
    r = redis_server.client()
    seen: list[dict[str, Any]] = []
    marker = f"end-of-monitor-{id(seen)}"
    with r.monitor() as m:  # (its OK read: from here every command is reported)
        yield seen
        r.echo(marker)
        while True:
            command = m.next_command()
            if marker in command["command"]:
                break
            seen.append(command)


def reads_of(commands: list[dict[str, Any]], key: str, field: str) -> list[str]:
    """The commands that handed ``field`` of the hash ``key`` (its value) to a script
    or a client (HSCAN included: it sends values with the names)."""
    found = []
    for c in commands:
        words = c["command"].split(" ")
        name = words[0].upper()
        if len(words) < 2 or words[1] != key:
            continue
        if name in ("HGETALL", "HVALS", "HSCAN", "HRANDFIELD") or (
            name in ("HGET", "HMGET") and field in words[2:]
        ):
            found.append(c["command"][:120])
    return found
