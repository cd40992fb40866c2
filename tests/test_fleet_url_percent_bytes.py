"""A store URL's percent-escapes that are not UTF-8 (``namespace=a%FF``) are refused.
They were read as U+FFFD: ``namespace=a%FF`` and ``namespace=a%FE`` named one
namespace, so a process configured with one served and wrote the other's flag
document, and a password or cache file name holding such bytes changed silently.
A socket path keeps its bytes (a file name of this machine). Real redis-server."""

from __future__ import annotations

from urllib.parse import quote_from_bytes

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.errors import ConfigError
from cfgcore.runtime.redis_url import parse_redis_url
from cfgcore.snapshot import Flag, Snapshot
from tests.fuzz import examples

SECRET = "hunter2secret"


def add(name):
    def change(snap):
        return Snapshot(flags={**snap.flags, name: Flag(default="on")})

    return change


def test_two_namespaces_of_other_bytes_do_not_share_a_document(redis_server, stores, tmp_path):
    base = redis_server.url + f"?cache={tmp_path}/c.msgpack&namespace="
    with pytest.raises(ConfigError, match="not UTF-8") as err:
        stores(base + "team%FE").update(add("fe_only"))
    assert "namespace=team%FE" in str(err.value)
    with pytest.raises(ConfigError, match="not UTF-8"):
        stores(base + "team%FF").read()
    assert redis_server.client().keys("*") == []  # nothing written anywhere
    # A namespace of UTF-8 text is its bytes, as before.
    stores(base + "caf%C3%A9").update(add("x"))
    assert redis_server.client().exists("{café}:flags".encode())


@pytest.mark.parametrize(
    ("url", "part"),
    [
        (f"redis://:{SECRET}%FF@127.0.0.1/0", "password"),
        (f"redis://user%C3:{SECRET}@127.0.0.1/0", "password"),
        (f"redis+sentinel://:{SECRET}@h:1/svc%FF/0", "the path"),
        (f"redis://:{SECRET}@h/0?cache=/tmp/c%FF.msgpack", "the query"),
        (f"unix://:{SECRET}@/tmp/r.sock?namespace=%FF", "the query"),
    ],
)
def test_such_escapes_anywhere_but_a_socket_path_are_a_url_error(url, part):
    with pytest.raises(ConfigError, match="not UTF-8") as err:
        parse_redis_url(url)
    assert part in str(err.value) and SECRET not in str(err.value)


def test_a_socket_path_keeps_bytes_that_are_not_utf8():
    assert parse_redis_url("unix:///tmp/r%FF.sock?db=1").socket_path == "/tmp/r\udcff.sock"


@settings(max_examples=examples(200), deadline=None)
@given(raw=st.binary(min_size=1, max_size=12))
def test_a_namespace_or_password_is_the_bytes_written_or_refused(raw):
    escaped = quote_from_bytes(raw, safe="")
    for url, read in (
        (f"redis://h/0?namespace={escaped}", lambda u: u.namespace),
        (f"redis://:{escaped}@h/0", lambda u: u.password),
    ):
        try:
            parsed = parse_redis_url(url)
        except ConfigError as exc:
            str(exc).encode("utf-8")
            continue
        assert read(parsed).encode("utf-8") == raw
