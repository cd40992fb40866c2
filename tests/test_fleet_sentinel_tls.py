"""TLS to the Sentinels of a ``redis+sentinel://`` store URL (``sentinel_ssl=true``):
the Sentinel connections use the same TLS files as the primary's (``ssl_ca_certs=``,
``ssl_certfile=``, ``ssl_keyfile=``, ``ssl_password_file=``), with the Sentinels'
password file. A real redis-sentinel that takes TLS only (``port 0``, ``tls-port``)
and requires a client certificate, watching a TLS primary; the CA and certificates
are made with ``cryptography`` (tests/test_fleet_tls_key_password.py)."""

from __future__ import annotations

import contextlib
import secrets
import types

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cfgcore.errors import ConfigError
from cfgcore.runtime.redis_store import RedisFlagStore
from cfgcore.runtime.redis_url import parse_redis_url
from tests.redis_server import RedisServer, Sentinel, free_port, refused_port
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
    server_files = {"ssl_ca_certs": str(pki.ca), "ssl_certfile": str(pki.server_cert),
                    "ssl_keyfile": str(pki.server_key)}  # fmt: skip
    sentinel = Sentinel(
        str(tmp_path / "s"), types.SimpleNamespace(port=tls_port), replicas=0,
        conf=f"tls-replication yes\ntls-cert-file {pki.server_cert}\n"
        f"tls-key-file {pki.server_key}\ntls-ca-cert-file {pki.ca}\ntls-auth-clients yes\n",
        tls=server_files, password=sentinel_password,
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
