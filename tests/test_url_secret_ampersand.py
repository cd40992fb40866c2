"""A secret query option (``ssl_password=``, ``sentinel_password=``) whose value holds an
'&' not percent-encoded.

A query ends a value at the first '&': the rest of such a password read as further
parameters, one unknown, and the store refused the URL with "unknown query parameter
'REST'", quoting the password's tail, while the URL shown beside it (and
:func:`redact_url`) printed that tail in clear after ``ssl_password=***``. Now whatever
follows a secret option up to the next parameter the store knows is shown as ``***``,
and the refusal says to percent-encode the '&' (%26) without naming what followed.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.errors import ConfigError
from cfgcore.runtime.flagstore import open_store
from cfgcore.runtime.redis_url import parse_redis_url, redact_url
from tests.fuzz import examples

_PART = st.text(alphabet="ABCDEFGHJKLMNPQRSTUVWXYZ23456789", min_size=6, max_size=12)

_FORMS = [
    "rediss://h:6379/0?ssl_certfile=/c.pem&ssl_password={pw}",
    "rediss://h:6379/0?ssl_certfile=/c.pem&ssl_password={pw}&namespace=n",
    "redis+sentinel://s1:26379/svc/0?sentinel_password={pw}",
    "redis+sentinel://s1:26379/svc/0?sentinel_password={pw}&wait=1",
    "unix:///tmp/redis.sock?db=1&sentinel_password={pw}",
]


def _shown(url: str) -> str:
    try:
        parsed = parse_redis_url(url)
    except ConfigError as exc:
        shown = str(exc)
    else:
        shown = f"{parsed.redacted()} {parsed.for_command()} {parsed!r}"
    return f"{shown} {redact_url(url)}"


@settings(max_examples=examples(60), deadline=None)
@given(
    head=_PART,
    tail=_PART,
    sep=st.sampled_from(["&", "&x=", "&=", "&&", "&a&", "&+"]),
    form=st.sampled_from(_FORMS),
)
def test_the_rest_of_a_password_after_an_ampersand_is_never_shown(head, tail, sep, form):
    url = form.format(pw=f"{head}{sep}{tail}")
    shown = _shown(url)
    assert head not in shown and tail not in shown, (url, shown)


@pytest.mark.parametrize("form", _FORMS)
def test_such_a_url_is_refused_saying_to_encode_the_ampersand(form):
    url = form.format(pw="HEADpw&ssWORD")
    for parse in (parse_redis_url, open_store):
        with pytest.raises(ConfigError) as err:
            parse(url)
        text = str(err.value)
        assert "%26" in text, text
        assert "ssWORD" not in text and "HEADpw" not in text, text


def test_the_options_after_it_are_still_shown_and_read():
    url = "rediss://h:6379/0?ssl_certfile=/c.pem&ssl_password=pw%26x&namespace=n&wait=1"
    parsed = parse_redis_url(url)
    assert parsed.options["ssl_password"] == "pw&x"
    assert parsed.namespace == "n" and parsed.options["wait"] == 1
    assert redact_url(url) == (
        "rediss://h:6379/0?ssl_certfile=/c.pem&ssl_password=***&namespace=n&wait=1"
    )
    # an unknown parameter that follows no secret is still named
    with pytest.raises(ConfigError, match="unknown query parameter 'colour'"):
        parse_redis_url("rediss://h:6379/0?colour=blue&ssl_certfile=/c.pem&ssl_password=x")
