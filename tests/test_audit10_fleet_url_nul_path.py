"""Values of a store URL that every use refused later, tenth audit: a NUL byte in a file
name, a client name Redis refuses.

``cache=/var/lib/app/flags%00.msgpack`` (a stray ``%00``, or a value built from text
holding one) was taken by the URL parser, and every use of the path failed later with
a bare ``ValueError: embedded null byte``, naming neither the option nor the URL: the
store's first read for ``cache=`` (a start failed with a traceback, not a
configuration error), each connection for ``password_file=`` and the TLS files. Such a
URL is now refused when it is read, naming the option, as every other bad value is;
so is a ``client_name=`` that Redis refuses (a space, a character past printable ASCII),
with which every connection failed and the store read as unreachable.
"""

from __future__ import annotations

import pytest

from cfgcore.errors import ConfigError
from cfgcore.runtime.redis_store import RedisFlagStore
from cfgcore.runtime.redis_url import parse_redis_url

OPTIONS = [
    ("redis", "cache"),
    ("redis", "password_file"),
    ("redis+sentinel", "sentinel_password_file"),
    ("rediss", "ssl_ca_certs"),
    ("rediss", "ssl_certfile"),
]


@pytest.mark.parametrize(("scheme", "option"), OPTIONS)
def test_a_file_name_with_a_nul_byte_is_refused_naming_the_option(scheme, option):
    host = "s1:26379/svc/0" if scheme == "redis+sentinel" else "127.0.0.1:1/0"
    url = f"{scheme}://{host}?namespace=nul&{option}=/tmp/a%00b"
    with pytest.raises(ConfigError, match=f"{option}: a file name holds no NUL byte"):
        parse_redis_url(url)
    with pytest.raises(ConfigError, match=f"{option}: a file name holds no NUL byte"):
        RedisFlagStore(url)


def test_a_socket_path_with_a_nul_byte_is_refused():
    with pytest.raises(ConfigError, match="socket path: a file name holds no NUL byte"):
        parse_redis_url("unix:///tmp/redis%00.sock?namespace=nul")


def test_a_namespace_may_hold_one():
    """A namespace names Redis keys, which hold any bytes (its cache file name is
    percent-encoded): not refused."""
    assert parse_redis_url("redis://h/0?namespace=a%00b").namespace == "a\x00b"


@pytest.mark.parametrize("name", ["my app", "svc\tA", "café"])
def test_a_client_name_redis_refuses_is_refused_when_the_url_is_read(name):
    """Redis refuses ``CLIENT SETNAME`` with a space or any character but printable
    ASCII: every connection of the store failed, its start reading as "Redis
    unreachable" and its follower reconnecting for ever."""
    from urllib.parse import quote

    url = f"redis://127.0.0.1:1/0?namespace=cn&client_name={quote(name)}"
    with pytest.raises(ConfigError, match="client_name: .* which Redis refuses"):
        parse_redis_url(url)


def test_a_client_name_redis_takes_is_taken(redis_server):
    url = f"{redis_server.url}?namespace=cn&cache=off&client_name=svc-a@host!1"
    with RedisFlagStore(url) as store:
        assert store.read().version == 0
        names = [c["name"] for c in redis_server.client().client_list()]
        assert "svc-a@host!1" in names
