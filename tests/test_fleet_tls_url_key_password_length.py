"""``ssl_password=`` in a store URL longer than OpenSSL takes (1024 bytes).

OpenSSL asks for a key password into a 1024-byte buffer, and the ssl module raises a
ValueError ("password cannot be longer than 1024 bytes") for a longer one. From the URL
it reached redis-py at each connection to a store whose client key is encrypted: a
``read()`` raised that bare ValueError (no ConfigError naming the store, no
``last_error``, the socket left open), and the follower counted it as a connection
lost. The file form (``ssl_password_file=``) was bounded already; the URL's value is now
refused when the URL is parsed, without being shown. Real redis-server with TLS
(tests/test_fleet_tls_key_password.py's fixture).
"""

from __future__ import annotations

import contextlib
from urllib.parse import quote

import pytest

from cfgcore.errors import ConfigError
from cfgcore.runtime.redis_store import RedisFlagStore
from cfgcore.runtime.redis_url import parse_redis_url
from tests import test_fleet_tls_key_password as tls_setup
from tests.test_fleet_tls_key_password import _set, _url

tls = tls_setup.tls  # (the real TLS server fixture)


def _with_url_password(tls, password: str) -> str:
    return _url(tls, tls.pw_file).replace(
        f"ssl_password_file={tls.pw_file}", f"ssl_password={quote(password, safe='')}"
    )


@pytest.mark.parametrize("password", ["x" * 1025, "é" * 513, "k" * 5000])
def test_a_url_key_password_longer_than_openssl_takes_is_refused(tls, password):
    url = _with_url_password(tls, password)
    for make in (parse_redis_url, RedisFlagStore):
        with pytest.raises(ConfigError) as err:
            make(url)
        text = str(err.value)
        assert "ssl_password" in text and "1024 bytes" in text, text
        assert password[:20] not in text


def test_a_long_url_key_password_within_the_limit_unlocks_the_key(tls):
    # 1023 bytes in UTF-8, 512 characters (the key's encryption takes no more)
    password = "é" * 511 + "x"
    tls.pki.identity(tls.pki.client_cert, tls.pki.client_key, password)
    with contextlib.closing(RedisFlagStore(_with_url_password(tls, password))) as store:
        _, doc = store.update(_set("a", "on"))
        assert doc.version == 1 and store.read().version == 1
