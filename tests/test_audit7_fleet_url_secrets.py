"""Store URLs whose password holds a '/', '?' or '#' not percent-encoded, seventh audit.

Every URL parser ends the authority at the first '/', '?' or '#', so the rest of such a
password lands in the path, query or fragment, and the part before it reads as a host or
port. The error then quoted the password: ``redis://user:pa/ss@host`` was refused with
"port: expected a number, got 'pa'", ``redis://:pass#word@host`` with the whole URL and
"missing host", ``sentinel_password=ab#cd`` was silently cut to ``ab`` (the '#' began a
fragment) and ``redis://u:12/ab@host`` quoted "ab@host" as the database. (The earlier
hostile-URL test drew its secrets without these characters.) Now such a URL is refused
saying what to percent-encode, every message hides the password up to its '@' and shows
a fragment as ``***``; a URL that does parse never shows it either.
"""

from __future__ import annotations

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from cfgcore.errors import ConfigError
from cfgcore.runtime.flagstore import open_store
from cfgcore.runtime.redis_url import parse_redis_url, redact_url
from tests.fuzz import examples

_PART = st.text(alphabet="ABCDEFGHJKLMNPQRSTUVWXYZ23456789", min_size=6, max_size=12)


def _never_shown(url: str, *parts: str) -> str:
    """What the store shows of ``url`` (the error, or the parsed URL's forms): none of
    ``parts`` in it."""
    try:
        parsed = parse_redis_url(url)
    except ConfigError as exc:
        shown = str(exc)
    else:
        shown = f"{parsed.redacted()} {parsed.for_command()} {parsed!s:.0}"
    shown += " " + redact_url(url)
    for part in parts:
        assert part not in shown, (url, shown)
    return shown


@settings(max_examples=examples(80), deadline=None)
@given(
    head=_PART,
    tail=_PART,
    sep=st.sampled_from(["/", "?", "#", "/?", "?a=", "[", "]", "#/", "@x/", "@/", "@x?"]),
    form=st.sampled_from(
        [
            "redis://user:{pw}@h:6379/0",
            "redis://:{pw}@h:6379/0?namespace=x",
            "rediss://user:{pw}@h/1",
            "redis+sentinel://:{pw}@s1:26379,s2:26379/svc/0",
            "unix://:{pw}@/tmp/redis.sock?db=1",
            "redis://h:6379/0?sentinel_password={pw}",
            "redis://h:6379/0?ssl_password={pw}&namespace=n",
        ]
    ),
)
def test_a_password_that_runs_past_the_authority_is_never_shown(head, tail, sep, form):
    # (unix://:A@/B@/path reads as password A and socket path /B@/path: a valid URL)
    assume(not (form.startswith("unix") and sep == "@/"))
    if "password=" in form and sep not in ("#", "#/"):
        sep = "#"  # ('/' and '?' are plain characters in a query value)
    _never_shown(form.format(pw=f"{head}{sep}{tail}"), head, tail)


@pytest.mark.parametrize(
    "url, hint",
    [
        ("redis://user:HEADpw/ssWORD@h:6379/0", "percent-encoded (%2F, %3F, %23)"),
        ("redis://user:HEADpw?ssWORD@h:6379/0", "percent-encoded (%2F, %3F, %23)"),
        ("redis://:HEADpw#ssWORD@h:6379/0", "percent-encoded (%2F, %3F, %23)"),
        ("redis://u:12/ssWORD@h:6379/0", "percent-encoded (%2F, %3F, %23)"),
        ("redis://h:6379/0?sentinel_password=HEADpw#ssWORD", "percent-encode it as %23"),
    ],
)
def test_such_a_url_is_refused_saying_what_to_encode(url, hint):
    with pytest.raises(ConfigError) as err:
        parse_redis_url(url)
    assert hint in str(err.value)
    assert "ssWORD" not in str(err.value) and "HEADpw" not in str(err.value)
    # open_store (the managers, cfgcore watch --store) says the same
    with pytest.raises(ConfigError) as err2:
        open_store(url)
    assert "ssWORD" not in str(err2.value) and "HEADpw" not in str(err2.value)
    assert hint in str(err2.value)


@pytest.mark.parametrize(
    "url",
    [
        "redis://h:6379/0?cache=/var/lib/app@blue/c.msgpack&namespace=x",
        "redis://h:6379/0?client_name=svc@host",
        "unix:///run/redis@6379.sock?db=1",
        "unix://:pw@/run/redis@6379.sock?db=1",
        "redis://user:p%40ss@h:6379/0?client_name=me@x",
        "redis://user:pa%2Fss%3Fw%23d@h:6379/0",
    ],
)
def test_an_at_sign_where_a_url_may_hold_one_is_still_accepted(url):
    parsed = parse_redis_url(url)
    assert "pa/ss?w#d" not in parsed.redacted()
    if "pa%2F" in url:
        assert parsed.password == "pa/ss?w#d" and parsed.hosts == (("h", 6379),)


def test_the_cli_never_prints_such_a_password(capsys, tmp_path, monkeypatch):
    from tests.conftest import run_cli

    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    for argv in (
        ["watch", "--store", "redis://user:hunter/2SECRET@127.0.0.1:1/0"],
        ["publish", "--store", "redis://:hunter#2SECRET@127.0.0.1:1/0", "--flags-from-cache", "x"],
    ):
        code, out, err = run_cli(capsys, *argv)
        assert code != 0
        assert "2SECRET" not in out + err and "hunter" not in out + err, out + err
        assert "percent-encode" in out + err
