"""A store URL holding a lone surrogate (undecodable bytes of an environment variable,
as os.environ hands them over) gets the clear URL error every other bad URL gets, with
the password masked, never a UnicodeEncodeError from deep inside the parser or redis-py."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.errors import ConfigError
from cfgcore.runtime.redis_url import parse_redis_url
from tests.fuzz import examples

SECRET = "hunter2secret"


@pytest.mark.parametrize(
    "url",
    [
        "unix:///tmp/r.sock?namespace=a\udc80b",
        "unix:///tmp/r.sock?n\udc80=1",
        f"unix://:{SECRET}@/tmp/r.sock?namespace=\udcff",
        f"redis://:{SECRET}@host/0?namespace=\udc80",
        "redis://host/0?namespace=\udc80",
        f"redis://:{SECRET}\udc80@host/0",
        "redis://ho\udc80st/0",
        "redis+sentinel://h:26379/serv\udc80ice",
        "rediss://host/0?ssl_ca_certs=/tmp/\udc80.pem",
    ],
)
def test_lone_surrogate_is_a_url_error(url: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_redis_url(url)
    text = str(info.value)
    assert "not valid text" in text
    assert SECRET not in text
    text.encode("utf-8")  # the message itself prints anywhere


def test_socket_path_may_hold_undecodable_bytes() -> None:
    # A file name of this machine (os.fsdecode of non-UTF-8 bytes) stays usable.
    parsed = parse_redis_url("unix:///tmp/r\udc80.sock?namespace=ns&db=2")
    assert parsed.socket_path == "/tmp/r\udc80.sock"
    assert parsed.db == 2 and parsed.namespace == "ns"


def test_error_naming_a_socket_path_with_undecodable_bytes_prints() -> None:
    with pytest.raises(ConfigError) as info:
        parse_redis_url("unix:///tmp/r\udc80.sock?db=x")
    str(info.value).encode("utf-8")


_TEXT = st.text(
    alphabet=st.characters(min_codepoint=1, max_codepoint=0xDFFF, blacklist_characters="#"),
    max_size=12,
)


@settings(max_examples=examples(150), deadline=None)
@given(
    scheme=st.sampled_from(["redis://h/0", "unix:///tmp/r.sock", "redis+sentinel://h:1/s"]),
    key=st.sampled_from(["namespace", "cache", "db", "poll", "client_name", "nope"]),
    value=_TEXT,
)
def test_any_query_text_gives_a_result_or_a_url_error(scheme: str, key: str, value: str) -> None:
    netloc_at = scheme.index("//") + 2
    url = f"{scheme[:netloc_at]}:{SECRET}@{scheme[netloc_at:]}?{key}={value}"
    try:
        parse_redis_url(url)
    except ConfigError as exc:
        text = str(exc)
        text.encode("utf-8")
        assert SECRET not in text


def test_a_store_on_a_socket_path_with_undecodable_bytes_opens_and_names_itself(tmp_path):
    """The socket path a lone surrogate may hold (a file name of this machine): the
    store's URL, shown in every message and hashed into its cache file's name, is
    percent-encoded text, and parsing it back names the same file."""
    from cfgcore.runtime.redis_store import RedisFlagStore

    store = RedisFlagStore(f"unix://{tmp_path}/r\udc80.sock?namespace=ns", cache_dir=tmp_path)
    try:
        store.url.encode("ascii")
        assert "%80" in store.url
        assert parse_redis_url(store.url).socket_path == f"{tmp_path}/r\udc80.sock"
        assert parse_redis_url("unix:///tmp/caf%C3%A9.sock").socket_path == "/tmp/café.sock"
    finally:
        store.close()


def test_an_unparsable_url_with_a_lone_surrogate_is_shown_escaped() -> None:
    with pytest.raises(ConfigError) as info:
        parse_redis_url("redis://[\udc80/0")
    str(info.value).encode("utf-8")
