"""A store URL whose password runs past the host is a ConfigError, never a ValueError.

The seventh audit (14b006f) hid a password whose '/', '?' or '#' was not percent-encoded
by showing the URL again as ``SCHEME://***@`` and the text after its last '@', parsed
anew; when that text was no valid authority (an IPv6 host with a bracket missing or in
excess) the new parse raised ``ValueError('Invalid IPv6 URL')`` out of
``parse_redis_url``: ``open_store``, ``DynamicConfigurationManager(store=...)`` and the
CLI got an internal error instead of the store URL's error, and a cache file naming such
a URL broke the follower thread that judged it (it expects a ConfigError). Before that
commit such URLs were ConfigErrors.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.errors import ConfigError
from cfgcore.runtime.redis_url import parse_redis_url, redact_url
from tests.fuzz import examples


@pytest.mark.parametrize(
    "url",
    [
        "redis://:paSECRET/ss@[::1:6379/0",
        "redis://user:seSECRET/cret@host]:6379",
        "redis://user:pSECRET?w@[fe80::1/0",
        "rediss://:aSECRET#b@]h[:1/0",
    ],
)
def test_a_spilled_password_before_a_broken_host_is_a_config_error(url):
    with pytest.raises(ConfigError) as err:
        parse_redis_url(url)
    assert "SECRET" not in str(err.value)
    assert "SECRET" not in redact_url(url)


_PIECE = st.sampled_from(
    ["redis://", "rediss://", "unix://", "redis+sentinel://", ":", "/", "?", "#", "@", "[",
     "]", "=", "&", ",", "%", "::1", "h", "6379", "namespace", "db", "x"]
)  # fmt: skip


@settings(max_examples=examples(300), deadline=None)
@given(st.lists(_PIECE, max_size=14).map("".join))
def test_parse_redis_url_raises_only_config_errors(url):
    try:
        parse_redis_url(url)
    except ConfigError:
        pass
    redact_url(url)  # never raises


@pytest.mark.parametrize(
    "url, encoded, service, socket",
    [
        (
            "redis+sentinel://s1:26379,s2:26379/orders@eu/0",
            "redis+sentinel://s1:26379,s2:26379/orders%40eu/0",
            "orders@eu",
            None,
        ),
        ("unix://localhost/run/app@1.sock", "unix://localhost/run/app%401.sock", None,
         "/run/app@1.sock"),
    ],
)  # fmt: skip
def test_an_at_sign_in_a_service_name_or_socket_path_is_refused_saying_how_to_write_it(
    url, encoded, service, socket
):
    """Such URLs parsed before 14b006f; they read as a password running past the host
    now (the two cannot be told apart), and the refusal spoke of a password only, to
    a URL that has none: it names the '@' of a service name or socket path, and %40."""
    with pytest.raises(ConfigError, match="service name or socket path .* %40"):
        parse_redis_url(url)
    parsed = parse_redis_url(encoded)
    assert (parsed.service, parsed.socket_path) == (service, socket)
