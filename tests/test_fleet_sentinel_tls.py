"""TLS to the Sentinels of a ``redis+sentinel://`` store URL (``sentinel_ssl=true``):
the Sentinel connections use the same TLS files as the primary's (``ssl_ca_certs=``,
``ssl_certfile=``, ``ssl_keyfile=``, ``ssl_password_file=``), with the Sentinels'
password file. A real redis-sentinel that takes TLS only (``port 0``, ``tls-port``)
and requires a client certificate, watching a TLS primary; the CA and certificates
are made with ``cryptography`` (tests/test_fleet_tls_key_password.py)."""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import time
import types

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cfgcore.errors import ConfigError
from cfgcore.runtime.redis_store import RedisFlagStore
from cfgcore.runtime.redis_url import parse_redis_url
from tests.redis_server import SENTINEL, RedisServer, Sentinel, free_port, refused_port
from tests.redis_server import wait_for as wait_until
from tests.test_fleet_failover import _replicated, add, write_until_accepted
from tests.test_fleet_processes import Member, proc_env
from tests.test_fleet_tls_key_password import PKI, _password, _set, _texts
from tests.waiting import wait_for


@pytest.fixture
def tls_sentinel(redis_binary, tmp_path):
    """A TLS primary (client certificates required) and a redis-sentinel watching it
    that takes TLS only, requires a client certificate too and asks for a password;
    the client key encrypted with the password in ``key-password``, the Sentinel's
    password in ``sentinel-password``."""
    pki = PKI(tmp_path / "pki")
    key_password = _password()
    pki.identity(pki.client_cert, pki.client_key, key_password)
    key_pw_file = tmp_path / "key-password"
    key_pw_file.write_text(key_password + "\n")
    sentinel_password = f"sentinelpw-{secrets.token_hex(8)}"
    sentinel_pw_file = tmp_path / "sentinel-password"
    sentinel_pw_file.write_text(sentinel_password + "\n")
    tls_port = free_port()
    primary = RedisServer(str(tmp_path / "p"), args=pki.server_args(tls_port)).start()
    sentinel = Sentinel(
        str(tmp_path / "s"), types.SimpleNamespace(port=tls_port), replicas=0,
        conf=pki.sentinel_conf(), tls=pki.admin(), password=sentinel_password,
    )  # fmt: skip
    try:
        sentinel.start()
        assert sentinel.primary_port() == tls_port
        base = (
            f"redis+sentinel://127.0.0.1:{sentinel.port}/{sentinel.name}/0?cache=off"
            f"&poll=0.1&backoff_max=0.2&ssl=true&{pki.query(key_pw_file)}"
            f"&sentinel_password_file={sentinel_pw_file}"
        )
        yield types.SimpleNamespace(
            base=base, sentinel=sentinel, primary=primary, pki=pki,
            secrets=(key_password, sentinel_password),
        )  # fmt: skip
    finally:
        sentinel.stop()
        primary.stop()


def test_the_store_reads_and_follows_through_a_tls_only_sentinel(tls_sentinel):
    """``sentinel_ssl=true``: the Sentinel (which takes TLS only) is asked over TLS,
    with the client certificate, the key unlocked by ``ssl_password_file=`` and the
    Sentinel password from ``sentinel_password_file=``; reads, writes (which ask the
    Sentinel first) and the follower work through it."""
    url = f"{tls_sentinel.base}&sentinel_ssl=true&namespace=t"
    with contextlib.closing(RedisFlagStore(url)) as writer, \
            contextlib.closing(RedisFlagStore(url)) as follower:  # fmt: skip
        _, doc = writer.update(_set("a", "on"))
        assert doc.version == 1
        assert follower.read().version == 1
        seen = []
        follower.watch(lambda d: seen.append(d.version))
        assert wait_for(lambda: follower.connected)
        writer.update(_set("a", "off"))
        assert wait_for(lambda: follower.version == 2 and 2 in seen)
        for store in (writer, follower):
            for text in _texts(store):
                for secret in tls_sentinel.secrets:
                    assert secret not in text, text


def test_without_sentinel_ssl_a_tls_only_sentinel_is_said_unreachable(tls_sentinel):
    """Without the option the Sentinel connection is in clear text, which a TLS-only
    Sentinel drops: the store fails (it does not wait for ever) saying the Sentinels
    could not be reached, and hints at ``sentinel_ssl=true``."""
    with contextlib.closing(RedisFlagStore(f"{tls_sentinel.base}&namespace=u")) as store:
        with pytest.raises(ConfigError) as err:
            store.read()
    msg = str(err.value)
    assert "no Sentinel could be reached" in msg, msg
    assert "sentinel_ssl=true" in msg, msg
    for secret in tls_sentinel.secrets:
        assert secret not in msg


def test_no_sentinel_listening_is_said_unreachable_without_the_tls_hint(redis_binary):
    url = f"redis+sentinel://127.0.0.1:{refused_port()}/fleet/0?cache=off&namespace=v"
    with contextlib.closing(RedisFlagStore(url)) as store:
        with pytest.raises(ConfigError) as err:
            store.read()
    msg = str(err.value)
    assert "no Sentinel could be reached for 'fleet'" in msg and "Connection refused" in msg
    assert "sentinel_ssl" not in msg


def test_a_sentinel_refusing_the_password_is_not_said_unreachable(redis_server, tmp_path):
    sentinel = Sentinel(str(tmp_path / "s"), redis_server, replicas=0, password="right")
    sentinel.start()
    try:
        url = (
            f"redis+sentinel://127.0.0.1:{sentinel.port}/{sentinel.name}/0?cache=off"
            "&namespace=x&sentinel_password=wrongpw"
        )
        with contextlib.closing(RedisFlagStore(url)) as store:
            with pytest.raises(ConfigError) as err:
                store.read()
    finally:
        sentinel.stop()
    msg = str(err.value)
    assert "no primary found for 'fleet'" in msg and "AuthenticationError" in msg, msg
    assert "could be reached" not in msg and "sentinel_ssl" not in msg and "wrongpw" not in msg


@pytest.mark.parametrize("problem", ["wrong", "missing"])
def test_a_key_password_file_problem_on_the_sentinel_connection_is_named(
    tls_sentinel, tmp_path, problem
):
    """The Sentinel connections load the client key as the primary's do: a wrong
    password or a missing password file is named, not taken for an unreachable
    Sentinel."""
    key_pw_file = tmp_path / "key-password"
    if problem == "wrong":
        key_pw_file.write_text(_password() + "\n")
        expected = (
            f"cannot load the TLS client key {tls_sentinel.pki.client_key} "
            f"(wrong password from ssl_password_file {key_pw_file}?)"
        )
    else:
        key_pw_file.unlink()
        expected = f"cannot read the Redis TLS key password file {key_pw_file}: No such file"
    url = f"{tls_sentinel.base}&sentinel_ssl=true&namespace=w"
    with contextlib.closing(RedisFlagStore(url)) as store:
        with pytest.raises(ConfigError) as err:
            store.read()
    assert expected in str(err.value), str(err.value)
    assert ("no credentials for Redis" in str(err.value)) == (problem == "missing")


def test_sentinel_ssl_is_kept_in_the_commands_cfgcore_prints():
    parsed = parse_redis_url(
        "redis+sentinel://s1:26379/svc/0?ssl=true&sentinel_ssl=true&ssl_ca_certs=/tls/ca.pem"
    )
    assert parsed.options["sentinel_ssl"] is True
    assert "sentinel_ssl=true" in parsed.for_command()


_VALUES = st.sampled_from(["true", "false", "1", "0", "yes", "no", "on", "off", "TRUE"])


@given(
    scheme=st.sampled_from(["redis://h:6379/0", "rediss://h:6380/0", "unix:///run/redis.sock"]),
    value=_VALUES,
)
def test_sentinel_ssl_on_a_url_without_sentinels_is_refused(scheme, value):
    sep = "&" if "?" in scheme else "?"
    with pytest.raises(ConfigError) as err:
        parse_redis_url(f"{scheme}{sep}sentinel_ssl={value}")
    msg = str(err.value)
    assert "sentinel_ssl= is for redis+sentinel:// URLs" in msg, msg


def test_sentinel_ssl_without_ssl_is_refused():
    """The same TLS files serve the primary's connections and the Sentinels': TLS to
    the Sentinels only would send the data, and the Redis password, in clear text."""
    for query in ("sentinel_ssl=true", "ssl=false&sentinel_ssl=true&ssl_ca_certs=/tls/ca.pem"):
        with pytest.raises(ConfigError) as err:
            parse_redis_url(f"redis+sentinel://s1:26379/svc/0?{query}")
        assert "sentinel_ssl=true without ssl=true" in str(err.value)
    # (false asks for nothing: taken)
    parsed = parse_redis_url("redis+sentinel://s1:26379/svc/0?sentinel_ssl=false")
    assert parsed.options["sentinel_ssl"] is False


@pytest.mark.parametrize("value", ["maybe", ""])
def test_sentinel_ssl_takes_a_boolean(value):
    with pytest.raises(ConfigError, match="sentinel_ssl: expected true or false"):
        parse_redis_url(f"redis+sentinel://s1:26379/svc/0?ssl=true&sentinel_ssl={value}")


def _failed_handshakes(logs: list[str]) -> list[str]:
    """The lines of the log files ``logs`` saying a TLS handshake on the server's port
    failed in TLS itself (logged at ``loglevel verbose``): a client speaking clear text
    to it leaves "SSL routines::wrong version number", one refusing its certificate an
    alert. A peer gone during a handshake is not one: Sentinels drop their links to a
    server as they re-point it, and a client whose connect timed out on a loaded machine
    closes its socket; OpenSSL 3 logs that as "Connection reset by peer" or as "SSL
    routines::unexpected eof while reading" (no bytes came at all: a clear-text client
    sends its command first, and that is "wrong version number")."""
    found = []
    for path in logs:
        with open(path, errors="replace") as fh:
            found += [
                line.strip()
                for line in fh
                if "Error accepting a client connection" in line
                and "SSL routines" in line
                and "unexpected eof while reading" not in line
            ]
    return found


def test_the_handshake_check_counts_clear_text_and_not_a_peer_gone(redis_binary, tmp_path):
    """The failover test's log check can fail: against a server taking TLS only, a
    client speaking clear text is counted (named by the server as a wrong version
    number), while a peer that connects and goes without sending anything is not."""
    pki = PKI(tmp_path / "pki")
    server = RedisServer(str(tmp_path / "a"), args=(*pki.tls_args(), "--loglevel", "verbose"),
                         tls=pki.admin()).start()  # fmt: skip
    log = os.path.join(server.dir, "redis.log")
    try:
        with socket.create_connection(("127.0.0.1", server.port)):
            pass  # gone without a byte
        with socket.create_connection(("127.0.0.1", server.port)) as sock:
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")  # what a clear-text client sends first
            sock.settimeout(10)
            with contextlib.suppress(OSError):
                sock.recv(64)  # (the server closes it)
        wait_until(lambda: _failed_handshakes([log]), timeout=10)
        assert server.client().ping()  # (a TLS client is served)
    finally:
        server.stop()
    found = _failed_handshakes([log])
    assert len(found) == 1 and "wrong version number" in found[0], found
    with open(log, errors="replace") as fh:  # (the peer gone was logged, and passed over)
        refused = [line for line in fh if "Error accepting a client connection" in line]
    assert any("unexpected eof while reading" in line for line in refused), refused


def test_a_failover_where_servers_and_sentinels_take_tls_only(redis_binary, tmp_path):
    """A primary, two replicas and three Sentinels that all take TLS only (``port 0``:
    no clear-text port to reach) and require client certificates; a writer in this
    process and a follower in its own (``DynamicConfigurationManager(store=URL)``)
    through ``redis+sentinel://`` with ``ssl=true&sentinel_ssl=true``. The primary is
    killed (SIGKILL); while the Sentinels elect one of them (talking TLS to each other)
    and promote a replica, the follower serves the flags it had; after, a write goes
    to the new primary and reaches the follower. No server or Sentinel ever saw a
    failed handshake (a clear-text attempt), and a Sentinel whose certificate comes
    from another CA is refused, named in the error."""
    if SENTINEL is None:
        pytest.skip("redis-sentinel is not installed")
    pki = PKI(tmp_path / "pki")
    key_password = _password()
    pki.identity(pki.client_cert, pki.client_key, key_password)
    key_pw_file = tmp_path / "key-password"
    key_pw_file.write_text(key_password + "\n")
    verbose = ("--loglevel", "verbose")  # (failed TLS handshakes are logged at verbose)
    servers: list[RedisServer] = []
    sentinels: list[Sentinel] = []
    follower: Member | None = None
    try:
        primary = RedisServer(str(tmp_path / "a"), args=(*pki.tls_args(), *verbose),
                              tls=pki.admin()).start()  # fmt: skip
        servers.append(primary)
        for n in "bc":
            args = (*pki.tls_args(), *verbose, "--replicaof", "127.0.0.1", str(primary.port))
            servers.append(RedisServer(str(tmp_path / n), args=args, tls=pki.admin()).start())
        replicas = servers[1:]
        for r in replicas:
            wait_until(lambda r=r: r.client().info("replication")["master_link_status"] == "up")
        # Down after a minute: nothing is promoted until the test has seen the follower
        # lose the primary; then set to 1 s on each Sentinel.
        for i in range(3):
            sentinels.append(Sentinel(
                str(tmp_path / f"s{i}"), primary, replicas=2, tls=pki.admin(),
                conf=pki.sentinel_conf() + "loglevel verbose\n", down_after=60_000,
            ).start())  # fmt: skip
        # (electing the Sentinel that fails over takes a majority: each knows the others)
        for s in sentinels:
            wait_until(lambda s=s: len(_ask(s, "SENTINEL", "SENTINELS", s.name)) == 2, timeout=30)

        hosts = ",".join(f"127.0.0.1:{s.port}" for s in sentinels)
        url = (
            f"redis+sentinel://{hosts}/fleet/0?ssl=true&sentinel_ssl=true"
            f"&{pki.query(key_pw_file)}&namespace=tf&cache=off&backoff_max=0.2"
        )
        follower = Member("follow", url + "&poll=0.2", env=proc_env(tmp_path / "state"))
        assert follower.line()["ready"]
        with contextlib.closing(RedisFlagStore(url + "&wait=1&wait_timeout=2000")) as writer:
            assert write_until_accepted(writer, "w_before") == 1
            served = follower.ask("wait 1 30")
            assert served["version"] == 1 and served["enabled"] == ["w_before"], served
            _replicated(primary, replicas)

            old_port = primary.port
            primary.kill()
            # The follower loses the primary, and serves what it had.
            status = _wait_status(follower, lambda st: st["connected"] is False)
            assert status["version"] == 1 and status["enabled"] == ["w_before"], status
            with pytest.raises(ConfigError):  # (refused at once, never queued)
                writer.update(add("w_lost"))

            for s in sentinels:
                _ask(s, "SENTINEL", "SET", s.name, "down-after-milliseconds", "1000")

            def promoted() -> bool:
                st = follower.ask("status")
                assert st["version"] == 1 and st["enabled"] == ["w_before"], st
                return all(s.primary_port() != old_port for s in sentinels)

            # (a split vote is retried after twice the failover timeout: 20 s)
            wait_until(promoted, timeout=90, every=0.1)
            new_primary = next(r for r in replicas if r.port == sentinels[0].primary_port())

            version = write_until_accepted(writer, "w_after", timeout=60)
            assert version > 1
            assert new_primary.client().hget("{tf}:flags", "version") == str(version).encode()
            served = follower.ask(f"wait {version} 60", timeout=90)
            assert served["version"] == version, served
            assert served["enabled"] == ["w_after", "w_before"], served
            # (it reads the store as it reconnects, and says it is connected after)
            served = _wait_status(follower, lambda st: st["connected"] is True)
            assert served["version"] == version and served["stats"]["reconnects"] >= 1, served
            assert served["errors"] == 0, served

        logs = [os.path.join(s.dir, "redis.log") for s in servers]
        logs += [os.path.join(s.dir, "sentinel.log") for s in sentinels]
        assert _failed_handshakes(logs) == []

        # Verification is on: a Sentinel presenting a certificate of another CA (it
        # takes TLS only too) is refused, and said so, naming it.
        other = PKI(tmp_path / "other-pki")
        rogue = Sentinel(str(tmp_path / "rogue"), new_primary, replicas=0,
                         conf=other.sentinel_conf(), tls=other.admin()).start()  # fmt: skip
        sentinels.append(rogue)
        rogue_url = url.replace(hosts, f"127.0.0.1:{rogue.port}")
        with contextlib.closing(RedisFlagStore(rogue_url)) as store:
            with pytest.raises(ConfigError) as err:
                store.read()
        msg = str(err.value)
        assert f"127.0.0.1:{rogue.port}" in msg and "certificate verify failed" in msg, msg
        assert key_password not in msg
        # ... and passed over for the trusted ones when it is named first
        first = url.replace(hosts, f"127.0.0.1:{rogue.port},{hosts}")
        with contextlib.closing(RedisFlagStore(first)) as store:
            assert store.read().version == version
    finally:
        if follower is not None:
            follower.stop()
        for s in sentinels:
            s.stop()
        for server in reversed(servers):
            server.stop()


def _ask(sentinel: Sentinel, *command: str):
    with contextlib.closing(sentinel.client()) as client:
        return client.execute_command(*command)


def _wait_status(member: Member, predicate, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        status = member.ask("status")
        if predicate(status):
            return status
        assert time.monotonic() < deadline, f"not met within {timeout} s: {status}"
        time.sleep(0.05)
