"""A refused ``unix://`` store URL is named as given in the error.

The options of a ``unix://`` URL are judged as a TCP URL's are, and their errors used to
name the URL cfgcore made up for that (``redis://localhost/0?...``), so an operator
looking for a typo in ``unix:///run/redis.sock?...`` read about a URL they never wrote;
other errors showed ``unix:/run/...``, without the ``//``. Passwords stay masked."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cfgcore.errors import ConfigError
from cfgcore.runtime.redis_url import parse_redis_url

SOCKET = "unix:///run/redis/redis.sock"


@pytest.mark.parametrize(
    ("query", "why"),
    [
        ("namespace=a&bogus=1", "unknown query parameter 'bogus'"),
        ("namespace=a&poll=soon", "poll: expected a number"),
        ("namespace=a:b", "namespace: must be non-empty and without ':'"),
        ("namespace=a&ssl_certfile=/x", "without TLS"),
        ("namespace=a&db=x", "db: expected a number"),
    ],
)
def test_the_error_names_the_unix_url_as_written(query, why):
    with pytest.raises(ConfigError) as err:
        parse_redis_url(f"{SOCKET}?{query}")
    text = str(err.value)
    assert why in text
    assert f"{SOCKET}?" in text, text
    assert "redis://localhost" not in text


@given(secret=st.text(st.characters(categories=["L", "N"]), min_size=6, max_size=20))
def test_a_password_in_a_refused_unix_url_is_never_shown(secret):
    for url in (
        f"unix://app:{secret}@/run/redis.sock?namespace=a&bogus=1",
        f"unix:///run/redis.sock?namespace=a&sentinel_password={secret}&bogus=1",
    ):
        with pytest.raises(ConfigError) as err:
            parse_redis_url(url)
        assert secret not in str(err.value)
        assert "unix://" in str(err.value) and "redis://localhost" not in str(err.value)


@pytest.mark.parametrize("scheme", ["redis://127.0.0.1:6379/0", "rediss://h:6380/0", SOCKET])
@pytest.mark.parametrize("option", ["sentinel_password=s3cret", "sentinel_username=app"])
def test_sentinel_credentials_on_a_url_without_sentinels_are_refused(scheme, option):
    """redis-py ignores them there: a deployment that believes it authenticates with them
    would connect without. Refused, naming the option (the password masked)."""
    with pytest.raises(ConfigError) as err:
        parse_redis_url(f"{scheme}?namespace=a&{option}")
    text = str(err.value)
    assert f"{option.split('=')[0]}= is for redis+sentinel:// URLs" in text
    assert "s3cret" not in text


def test_sentinel_credentials_on_a_sentinel_url_are_taken():
    url = parse_redis_url(
        "redis+sentinel://h1:26379,h2:26379/mymaster?namespace=a"
        "&sentinel_password=s3cret&sentinel_username=app"
    )
    assert url.options["sentinel_password"] == "s3cret"
    assert url.options["sentinel_username"] == "app"
