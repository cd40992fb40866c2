"""A NUL byte in a file name of a store URL, tenth audit.

``cache=/var/lib/app/flags%00.msgpack`` (a stray ``%00``, or a value built from text
holding one) was taken by the URL parser, and every use of the path failed later with
a bare ``ValueError: embedded null byte``, naming neither the option nor the URL: the
store's first read for ``cache=`` (a start failed with a traceback, not a
configuration error), each connection for ``password_file=`` and the TLS files. Such a
URL is now refused when it is read, naming the option, as every other bad value is.
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
